/*
 * health: what /metrics counts from this node's own requests (health.c).
 *
 * The v1 handlers that finish a claim, a completion or a failure hand the
 * resulting op here once it succeeded: claims feed the time-queued
 * histogram, completions and failures the time-running histogram and the
 * per-type outcome counters. Only ops this node served are seen, so on
 * several nodes each reports its own share and Prometheus sums them.
 * Thread-safe (one mutex); borrows op for the call.
 */
#ifndef TASKMILL_HEALTH_H
#define TASKMILL_HEALTH_H

struct store_op;

/* Records what a successful claim, complete or fail op says; other ops are ignored. */
void health_observe(const struct store_op *op);

#endif
