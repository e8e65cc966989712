# taskmill: make | make run | make test | make bench | make fuzz | make format
#
# `make` builds build/taskmill (optimised). `make test` builds a second tree
# under build/asan with AddressSanitizer and UndefinedBehaviorSanitizer and
# runs the whole suite against it. Generated sources go to $(B)/gen.

B        ?= build
CC       ?= cc
PKGS      = libmicrohttpd jansson sqlite3
# -Wno-format-truncation: error messages are cut to fixed buffers on purpose.
# -Wno-missing-field-initializers: a table entry (a struct route) names only
# the fields it uses; the ones it leaves out are 0 or NULL on purpose.
WARN      = -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wvla -Werror \
            -Wno-format-truncation -Wno-missing-field-initializers
OPT      ?= -O2 -g
SAN      ?=
CFLAGS   += -std=c17 -D_GNU_SOURCE $(OPT) $(SAN) $(WARN) -MMD -MP \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -Iinclude
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
LDFLAGS  += $(SAN)

CORE_SRC  = $(wildcard src/common/*.c src/store/*.c src/server/*.c src/compat/*.c)
CLI_SRC   = $(wildcard src/cli/*.c)
MIGRATIONS = $(sort $(wildcard src/store/migrations/sqlite/*.sql))
GEN_SRC   = $(B)/gen/sqlite_migrations.c

CORE_OBJ  = $(CORE_SRC:%.c=$(B)/obj/%.o) $(GEN_SRC:%.c=%.o)
CLI_OBJ   = $(CLI_SRC:%.c=$(B)/obj/%.o)

UNIT_SRC  = $(wildcard tests/unit/test_*.c tests/store/test_*.c)
INTEG_SRC = $(wildcard tests/integration/test_*.c)
TEST_BINS = $(UNIT_SRC:tests/%.c=$(B)/tests/%) $(INTEG_SRC:tests/%.c=$(B)/tests/%)
TEST_LIBS = $(shell pkg-config --libs libcurl 2>/dev/null)
TEST_HARNESS = $(B)/obj/tests/harness.o

# Each part of the project may add its own rules and TEST_BINS in mk/*.mk.
-include $(sort $(wildcard mk/*.mk))

.PHONY: all run test test-build bench deps format format-check clean
all: $(B)/taskmill $(EXTRA_ALL)

deps:
	@scripts/deps.sh

$(B)/libtaskmill_core.a: $(CORE_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(B)/taskmill: $(CLI_OBJ) $(B)/libtaskmill_core.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(B)/gen/%.o: $(B)/gen/%.c
	$(CC) $(CFLAGS) -Isrc/common -c -o $@ $<

# The folder too: a migration deleted changes no file the list still names.
$(GEN_SRC): $(MIGRATIONS) src/store/migrations/sqlite scripts/embed.sh
	@mkdir -p $(@D)
	scripts/embed.sh sqlite_migrations $(MIGRATIONS) > $@

# One source a command, so that -MMD writes each test's own headers
# (sse_client.h, ...) into $@.d; with harness.c beside it, its file named
# harness.c's alone. Named here so that make does not take the object for
# an intermediate file and delete it after each build.
$(TEST_HARNESS): tests/harness.c tests/harness.h
$(B)/tests/%: tests/%.c $(TEST_HARNESS) $(B)/libtaskmill_core.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(TEST_HARNESS) $(B)/libtaskmill_core.a $(LDLIBS) $(TEST_LIBS) $(LDFLAGS)

# deps.sh first, then a fresh make: the pkg-config flags above were read
# before deps.sh could install the libraries they name.
run:
	@scripts/deps.sh
	$(MAKE) --no-print-directory all
	$(B)/taskmill serve

# The suite runs against the sanitizer build.
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
TEST_B  ?= build/asan
test:
	@scripts/deps.sh --test
	$(MAKE) --no-print-directory B=$(TEST_B) OPT="-O1 -g" SAN="$(SANFLAGS)" test-build
	tests/run.sh $(TEST_B) $(TESTS)

# LD_PRELOAD libraries for the tests (tests/shim/*.c), outside $(B)/tests,
# where run.sh would take them for tests, and without the sanitizers:
# the harness preloads ASan's runtime ahead of them.
TEST_SHIMS = $(patsubst tests/shim/%.c,$(B)/testlib/libth_%.so,$(wildcard tests/shim/*.c))
$(B)/testlib/libth_%.so: tests/shim/%.c
	@mkdir -p $(@D)
	$(CC) -std=c17 -D_GNU_SOURCE -O1 -g -fPIC -shared $(WARN) -o $@ $< -ldl

test-build: $(B)/taskmill $(TEST_BINS) $(TEST_SHIMS)

bench:
	@scripts/deps.sh
	$(MAKE) --no-print-directory all $(B)/loadgen
	bench/run.sh

$(B)/loadgen: bench/loadgen.c
	@mkdir -p $(@D)
	$(CC) -std=c17 -D_GNU_SOURCE -O2 -pthread $(WARN) -o $@ $< -lm

format:
	clang-format -i $(shell git ls-files '*.c' '*.h') $(wildcard bench/*.c tests/*/*.c tests/*.c tests/*.h)

format-check:
	clang-format --dry-run -Werror $(shell git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(shell find $(B)/obj $(B)/tests -name '*.d' 2>/dev/null)
