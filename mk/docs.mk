# docs.mk: tests/docs/, the test that runs every shell block of README.md
# and docs/*.md against a live server (tests/docs/test_docs.c says how).

.DEFAULT_GOAL := all

TEST_BINS += $(patsubst tests/%.c,$(B)/tests/%,$(wildcard tests/docs/test_*.c))

# docs/cli.md links a program against the build tree's library with its .pc file.
$(B)/tests/docs/test_docs: $(B)/libtaskmill.a $(B)/libtaskmill.so $(B)/taskmill.pc
