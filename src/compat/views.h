/*
 * views: the compatibility views, as the server is handed them. The
 * `serve` command (src/cli/serve.c) is the one place that assembles them:
 * it passes compat_views to server_start (server_config.views) and
 * Livepeer's webhook body writer to the webhook sender
 * (events_config.webhook_body). src/server knows none of them.
 *
 * Each view is one or more route tables with its API's error writer and
 * that writer's Content-Type (docs/compat.md):
 *   SailPoint TaskStatus  /beta, /v2024, /v2025 task-status; /oauth/token
 *   Livepeer Task         /api/task
 *   Scene7 IPS (SOAP 1.1) /scene7 (text/xml faults)
 */
#ifndef TASKMILL_VIEWS_H
#define TASKMILL_VIEWS_H

#include "../server/http.h"

/* The views' tables, NULL-ended, in the order the router tries them. */
extern const struct route_table compat_views[];

/* Each view's routes and error writer (sailpoint.c, livepeer.c, scene7.c). */
extern const struct route sailpoint_routes[];       /* /beta, /v2024, /v2025 task-status */
extern const struct route sailpoint_oauth_routes[]; /* POST /oauth/token */
void sailpoint_write_error(struct buf *b, int status, const struct tm_error *e);
void sailpoint_oauth_write_error(struct buf *b, int status, const struct tm_error *e);
extern const struct route livepeer_routes[]; /* /api/task (livepeer.h) */
void livepeer_error_write(struct buf *b, int status, const struct tm_error *e);
/* Livepeer's webhook delivery body for one attempt (events_config.webhook_body). */
void livepeer_webhook_body(struct buf *b, const struct webhook_delivery *d, int64_t now);
extern const struct route scene7_routes[]; /* /scene7 SOAP 1.1 and WSDL (scene7.h) */
void scene7_error_write(struct buf *b, int status, const struct tm_error *e);

#endif
