/*
 * webhook: signed delivery of task events to webhooks, Livepeer's way.
 *
 * Deliveries are rows the store queues in the transaction of each event
 * (store.h), so they survive restarts. A pool of sender threads reads the
 * due ones, at most one in flight per webhook (webhook.c tells how), POSTs
 * Livepeer's body signed with `Livepeer-Signature:
 * t=<ms>,v1=<hex HMAC-SHA256 of the raw body>`, and records each outcome
 * through the store's writer, judged by the status as soon as the answer's
 * headers are in (its body is not read): 2xx delivered; network errors and 5xx
 * retried with exponential backoff (first delay doubling up to a cap, a
 * bounded number of attempts); other statuses failed at once.
 *
 * Destinations on loopback, private, link-local or otherwise non-public
 * addresses are refused unless the operator allowed them: literal ones
 * when a webhook is created (never resolving a name there), and every
 * address when a connection is opened. Deliveries never use a proxy.
 *
 * Threading: webhook_sender_wake may be called from any thread (the event
 * hub calls it after a commit, on the store's writer or feed thread; it
 * never waits for a store read); the rest from the server's start and stop.
 */
#ifndef TASKMILL_WEBHOOK_H
#define TASKMILL_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

struct webhook_sender;

struct webhook_sender *webhook_sender_new(struct store *s, const struct events_config *cfg);
/* A commit queued deliveries: look now (counted as a wake-up). `ws` is a
 * struct webhook_sender. */
void webhook_sender_wake(void *ws);
/* Stops the threads (attempts in flight are abandoned and stay pending). */
void webhook_sender_stop(struct webhook_sender *ws);
void webhook_sender_free(struct webhook_sender *ws);

/* Until when (wall ms) this node's circuit breaker holds webhook `id`, or
 * 0 when it does not: none of its deliveries is tried before then. Any
 * thread; `ws` may be NULL. */
int64_t webhook_sender_held_until(struct webhook_sender *ws, const char *id);

/* Webhook `id` has a new url: this node's circuit breaker forgets its
 * streak and lifts its hold (earned by the old destination), and the
 * senders look for due deliveries. Other nodes keep theirs until they
 * end. Any thread; `ws` may be NULL. */
void webhook_sender_forget(struct webhook_sender *ws, const char *id);

struct webhook_sender_stats {
    uint64_t attempts, delivered, failed, retried;
    uint64_t wakeups; /* calls of webhook_sender_wake */
};
void webhook_sender_get_stats(struct webhook_sender *ws, struct webhook_sender_stats *out);

/* Opens a delivery body, up to the task: {"id","webhookId","createdAt",
 * "timestamp","event","payload":{"task": ... for a body writer
 * (events_config.webhook_body) to finish with the task and "}}". */
void webhook_body_begin(struct buf *b, const struct webhook_delivery *d, int64_t now);

/* Checks a destination without resolving it: http(s), a valid URL, and
 * (unless allowed) a host that is neither `localhost` nor a literal
 * non-public address. Names are checked when each connection is opened.
 * TM_EINVALID with the reason in e. */
int webhook_url_check(const char *url, bool allow_private, struct tm_error *e);
/*
 * The destination classifier, pure: true for addresses a webhook must not
 * reach unless allowed (loopback, private, link-local, CGNAT, multicast,
 * documentation, benchmarking and reserved blocks). An IPv6 address that
 * embeds an IPv4 one (mapped, translated, NAT64 64:ff9b::/96, 6to4
 * 2002::/16) is judged by the IPv4 address. IPv4 in host order; a family
 * other than AF_INET and AF_INET6 is private.
 */
bool webhook_ipv4_is_private(uint32_t addr);
bool webhook_ipv6_is_private(const unsigned char addr[16]);
struct sockaddr;
bool webhook_addr_is_private(const struct sockaddr *sa);
/* Lowercase hex HMAC-SHA256 of body under secret. */
void webhook_sign(const char *secret, const char *body, size_t len, char hex[65]);

#endif
