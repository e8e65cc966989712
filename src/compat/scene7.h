/*
 * scene7: the Adobe Scene7 IPS view (SOAP 1.1): the projection of the
 * canonical task onto ActiveJob / TaskProgress / TaskItemProgress, the
 * SOAP replies and faults, and the routes (scene7_routes, in http.h).
 * docs/compat.md has the field mapping and the choices made where the
 * public material is silent.
 *
 * The writers here are pure (task in, XML text out) so tests can call
 * them; the handlers in scene7.c run on libmicrohttpd threads like every
 * other handler and keep no data of their own.
 */
#ifndef TASKMILL_SCENE7_H
#define TASKMILL_SCENE7_H

#include "../common/buf.h"
#include "../common/task.h"

/* The WSDL text (scene7_wsdl.c); SCENE7_WSDL_ADDRESS marks the service URL. */
#define SCENE7_WSDL_ADDRESS "@SCENE7_ADDRESS@"
extern const char scene7_wsdl[];

/* Writes text with XML escaping; characters XML 1.0 cannot carry become '?'. */
void scene7_xml_text(struct buf *b, const char *s);
/* Writes one ActiveJob's elements (no enclosing tag), in XSD order. */
void scene7_active_job_write(struct buf *b, const struct task *t);
/* The Active Job States and taskState values a task shows. */
const char *scene7_job_state(const struct task *t);
const char *scene7_task_state(const struct task *t);

#endif
