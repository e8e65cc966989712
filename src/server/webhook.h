/*
 * webhook: signed delivery of task events to webhooks, Livepeer's way.
 *
 * Deliveries are rows the store queues in the transaction of each event
 * (store.h), so they survive restarts. One sender thread reads the due
 * ones, POSTs Livepeer's body signed with `Livepeer-Signature:
 * t=<ms>,v1=<hex HMAC-SHA256 of the raw body>`, and records each outcome
 * through the store's writer: 2xx delivered; network errors and 5xx
 * retried with exponential backoff (first delay doubling up to a cap, a
 * bounded number of attempts); other statuses failed at once.
 *
 * Destinations on loopback, private, link-local or otherwise non-public
 * addresses are refused (when a webhook is created and again when each
 * connection is opened) unless the operator allowed them.
 *
 * Threading: webhook_sender_wake may be called from any thread (the store
 * writer calls it); the rest from the server's start and stop.
 */
#ifndef TASKMILL_WEBHOOK_H
#define TASKMILL_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

struct webhook_sender;

struct webhook_sender *webhook_sender_new(struct store *s, const struct events_config *cfg);
/* New deliveries were queued: look now. `ws` is a struct webhook_sender. */
void webhook_sender_wake(void *ws);
/* Stops the thread (an attempt in flight is abandoned and stays pending). */
void webhook_sender_stop(struct webhook_sender *ws);
void webhook_sender_free(struct webhook_sender *ws);

struct webhook_sender_stats {
    uint64_t attempts, delivered, failed, retried;
};
void webhook_sender_get_stats(struct webhook_sender *ws, struct webhook_sender_stats *out);

/* Checks a destination: http(s), a host that resolves, and (unless allowed)
 * only public addresses. TM_EINVALID with the reason in e. */
int webhook_url_check(const char *url, bool allow_private, struct tm_error *e);
/* Lowercase hex HMAC-SHA256 of body under secret. */
void webhook_sign(const char *secret, const char *body, size_t len, char hex[65]);

#endif
