# fuzz.mk: the parsers' fuzzing.
#
# Each tests/fuzz/fuzz_<target>.c is one libFuzzer target.
#   make fuzz                     builds them with clang under $(FUZZ_B) and
#                                 runs each for FUZZ_SECONDS, one after another
#   make fuzz FUZZ_TARGETS=v1_task   just one
# New inputs go to $(FUZZ_B)/corpus/<target>, crashes to
# $(FUZZ_B)/crashes/<target>; copy a crash into tests/fuzz/crashes/<target>/
# once fixed and `make test` replays it forever: each target is also linked
# with tests/fuzz/replay.c into $(B)/tests/fuzz/replay_<target>, one of the
# TEST_BINS, which feeds it the seed corpus and every saved crash.

.DEFAULT_GOAL := all

FUZZ_TARGETS ?= $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_B       ?= build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_SAN      = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

TEST_BINS += $(FUZZ_TARGETS:%=$(B)/tests/fuzz/replay_%)

$(B)/tests/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c tests/fuzz/fuzz.h $(B)/libtaskmill_core.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DFUZZ_DIR='"$(CURDIR)/tests/fuzz"' -DFUZZ_NAME='"$*"' -o $@ \
	    tests/fuzz/fuzz_$*.c tests/fuzz/replay.c $(FUZZ_EXTRA_$*) $(B)/libtaskmill_core.a $(LDLIBS) $(LDFLAGS)

$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(B)/libtaskmill_core.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_EXTRA_$*) $(B)/libtaskmill_core.a $(LDLIBS) $(LDFLAGS)

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_TARGETS:%=$(B)/fuzz/fuzz_%)

fuzz:
	$(MAKE) --no-print-directory B=$(FUZZ_B) CC=$(FUZZ_CC) OPT="-O1 -g" \
	    WARN="$(WARN) -Wno-unknown-warning-option -Wno-format-nonliteral" \
	    SAN="$(FUZZ_SAN) -fsanitize=fuzzer-no-link" FUZZ_TARGETS="$(FUZZ_TARGETS)" fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_B)/corpus/$$t $(FUZZ_B)/crashes/$$t; \
	    dict=tests/fuzz/$$t.dict; [ -f $$dict ] || dict=tests/fuzz/json.dict; \
	    echo "== fuzz $$t for $(FUZZ_SECONDS)s"; \
	    $(FUZZ_B)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -dict=$$dict \
	        -artifact_prefix=$(FUZZ_B)/crashes/$$t/ $(FUZZ_B)/corpus/$$t tests/fuzz/corpus/$$t; \
	done

# The progress-line parser lives in the CLI, outside the core library.
FUZZ_EXTRA_progress_line = src/cli/progress_line.c
$(B)/fuzz/fuzz_progress_line $(B)/tests/fuzz/replay_progress_line: src/cli/progress_line.c
