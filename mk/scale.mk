# scale.mk: bench/scale (issue 16): grows a store to millions of tasks and
# times every request at each size. `make bench-scale` runs it on SQLite
# with the default sizes (10k, 100k, 1M); see bench/scale/run.sh for more.

$(B)/scale: bench/scale/scale.c
	@mkdir -p $(@D)
	$(CC) -std=c17 -D_GNU_SOURCE -O2 $(WARN) $(shell pkg-config --cflags libpq sqlite3 2>/dev/null) \
		-I/usr/include/postgresql -o $@ $< \
		$(shell pkg-config --libs libcurl libpq sqlite3 2>/dev/null) -lpq -lsqlite3

.PHONY: bench-scale
bench-scale: all $(B)/scale
	TASKMILL_BIN=$(B)/taskmill SCALE_BIN=$(B)/scale bench/scale/run.sh
