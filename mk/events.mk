# events.mk: the build rules of issue 6 (event log, SSE, webhooks).
#
# Webhook deliveries are sent with libcurl and signed with OpenSSL's
# libcrypto (HMAC-SHA256; security.mk links it already, kept here too so
# this part builds alone). bench/events/ holds the SSE fan-out benchmark.

.DEFAULT_GOAL := all

LDLIBS += $(shell pkg-config --libs libcurl 2>/dev/null) -lcrypto

$(B)/sse_bench: bench/events/sse_bench.c
	@mkdir -p $(@D)
	$(CC) -std=c17 -D_GNU_SOURCE -O2 -pthread $(WARN) -o $@ $< -lm

.PHONY: bench-events
bench-events: all $(B)/sse_bench
	bench/events/run.sh $(B)
