# libtaskmill (the C client library), its pkg-config file, the CLI's link
# against it, the examples, and the tests under tests/cli/.
#
# The library's objects are built position-independent with hidden
# visibility (only TM_API symbols are exported from the .so) and serve
# both build/libtaskmill.a and build/libtaskmill.so.

# mk/*.mk is included before the Makefile's `all`; keep it the default goal.
.DEFAULT_GOAL := all

CLIENT_SRC  = $(wildcard src/client/*.c) src/common/xalloc.c
CLIENT_OBJ  = $(CLIENT_SRC:%.c=$(B)/obj/pic/%.o)
CLIENT_LIBS = $(shell pkg-config --libs libcurl jansson 2>/dev/null) -lpthread
CLIENT_SOVERSION = 1

EXTRA_ALL += $(B)/libtaskmill.a $(B)/libtaskmill.so $(B)/taskmill.pc $(B)/examples/progress_demo

$(B)/obj/pic/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -c -o $@ $<

# The archive holds one object, its parts linked together and every symbol but
# TM_API's made local: a program linking it statically may have its own xmalloc
# or sse_parser_feed (gnulib has an xmalloc) without a clash.
$(B)/libtaskmill.a: $(CLIENT_OBJ)
	@mkdir -p $(@D)
	rm -f $@ $(B)/obj/pic/libtaskmill.o
	$(CC) -r -nostdlib -o $(B)/obj/pic/libtaskmill.o $^
	objcopy --localize-hidden $(B)/obj/pic/libtaskmill.o
	$(AR) rcs $@ $(B)/obj/pic/libtaskmill.o

$(B)/libtaskmill.so.$(CLIENT_SOVERSION): $(CLIENT_OBJ)
	$(CC) -shared $(LDFLAGS) -Wl,-soname,libtaskmill.so.$(CLIENT_SOVERSION) -o $@ $^ $(CLIENT_LIBS)

$(B)/libtaskmill.so: $(B)/libtaskmill.so.$(CLIENT_SOVERSION)
	ln -sf libtaskmill.so.$(CLIENT_SOVERSION) $@

# A pkg-config file for the build tree: PKG_CONFIG_PATH=build pkg-config --libs taskmill.
# Its Libs carry a runtime path to the build tree, so a program linked with it runs
# as it is (mk/install.mk writes the installed one the same way).
TM_VERSION := $(shell sed -n 's/^\#define TASKMILL_VERSION "\(.*\)"/\1/p' src/common/version.h)
$(B)/taskmill.pc: mk/client.mk src/common/version.h
	@mkdir -p $(@D)
	printf '%s\n' 'prefix=$(abspath .)' 'includedir=$${prefix}/include' 'libdir=$(abspath $(B))' '' \
	  'Name: taskmill' 'Description: C client library for the taskmill task server' \
	  'Version: $(TM_VERSION)' 'Requires: jansson' 'Requires.private: libcurl' \
	  'Cflags: -I$${includedir}' 'Libs: -L$${libdir} -Wl,-rpath,$${libdir} -ltaskmill' \
	  'Libs.private: -lpthread' > $@

# The CLI is built on the library (prerequisites merge with the Makefile's rule).
$(B)/taskmill: $(B)/libtaskmill.a
$(B)/taskmill: LDLIBS += $(CLIENT_LIBS)

$(B)/examples/%: examples/%.c $(B)/libtaskmill.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(B)/libtaskmill.a $(CLIENT_LIBS) $(LDFLAGS)

# Tests under tests/cli/ also link the library and the pure parts of the CLI.
CLI_TEST_SRC = $(wildcard tests/cli/test_*.c)
TEST_BINS   += $(CLI_TEST_SRC:tests/%.c=$(B)/tests/%)
CLI_TEST_OBJ = $(B)/obj/src/cli/progress_line.o

$(B)/tests/cli/%: tests/cli/%.c $(TEST_HARNESS) $(CLI_TEST_OBJ) \
                  $(B)/libtaskmill.a $(B)/libtaskmill_core.a $(B)/examples/progress_demo
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests -Isrc -o $@ $< $(TEST_HARNESS) $(CLI_TEST_OBJ) $(CLI_TEST_OBJ_$*) \
	  $(B)/libtaskmill.a $(B)/libtaskmill_core.a $(LDLIBS) $(CLIENT_LIBS) -lutil $(LDFLAGS)

# test_sse calls the library's SSE parser, which the archive keeps to itself.
CLI_TEST_OBJ_test_sse = $(B)/obj/pic/src/client/sse.o
$(B)/tests/cli/test_sse: $(B)/obj/pic/src/client/sse.o

# The SSE parser tm_watch reads event streams with lives in the library, outside the core
# (mk/security.mk's FUZZ_EXTRA_ pattern).
FUZZ_EXTRA_sse = src/client/sse.c
$(B)/fuzz/fuzz_sse $(B)/tests/fuzz/replay_sse: src/client/sse.c src/client/sse.h

# tests/cli/test_install.c installs and links the shared library and the .pc file, which
# `make test-build` does not otherwise build.
$(B)/tests/cli/test_install: $(B)/libtaskmill.so $(B)/taskmill.pc
