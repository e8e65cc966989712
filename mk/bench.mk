# bench.mk: the benchmarks and long runs beyond `make bench` (the
# Makefile's: bench/run.sh with build/loadgen). None is part of `make test`.
#   make bench-events   SSE fan-out (bench/events/)
#   make bench-scale    every request at 10k, 100k, 1M tasks (bench/scale/;
#                       10M and PostgreSQL when asked: bench/scale/run.sh)
#   make soak           1,000,000 tasks through one server with retention on:
#                       database size, memory and latency stay flat (bench/soak.sh)
#   make fault          SIGKILL under load, five times: every acknowledged
#                       write is there after the restart (bench/fault.sh)

.DEFAULT_GOAL := all

$(B)/sse_bench: bench/events/sse_bench.c
	@mkdir -p $(@D)
	$(CC) -std=c17 -D_GNU_SOURCE -O2 -pthread $(WARN) -o $@ $< -lm

.PHONY: bench-events
bench-events: all $(B)/sse_bench
	bench/events/run.sh $(B)

$(B)/scale: bench/scale/scale.c
	@mkdir -p $(@D)
	$(CC) -std=c17 -D_GNU_SOURCE -O2 $(WARN) $(shell pkg-config --cflags libpq sqlite3 2>/dev/null) \
		-I/usr/include/postgresql -o $@ $< \
		$(shell pkg-config --libs libcurl libpq sqlite3 2>/dev/null) -lpq -lsqlite3

.PHONY: bench-scale
bench-scale: all $(B)/scale
	TASKMILL_BIN=$(B)/taskmill SCALE_BIN=$(B)/scale bench/scale/run.sh

.PHONY: soak fault
soak: all $(B)/loadgen
	TASKMILL_BIN=$(B)/taskmill LOADGEN_BIN=$(B)/loadgen bench/soak.sh

fault: all
	TASKMILL_BIN=$(B)/taskmill bench/fault.sh
