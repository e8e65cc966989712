# compat.mk: the build rules of issue 5 (the SailPoint, Livepeer and
# Scene7 compatibility views under src/compat/).
#
# The Scene7 view reads SOAP with libxml2 (Debian libxml2-dev), linked
# into the core library's users; its parser is fuzzed like the others
# (tests/fuzz/fuzz_scene7_soap.c, picked up by security.mk's wildcard).

.DEFAULT_GOAL := all

CFLAGS += $(shell pkg-config --cflags libxml-2.0 2>/dev/null)
LDLIBS += $(shell pkg-config --libs libxml-2.0 2>/dev/null)
