/*
 * v1_docs: what the definition and schedule resources share: the
 * namespace a new one goes to, the JSON of one (its checked body with id,
 * namespace and times; a schedule's firing state too), listing and delete.
 */
#ifndef TASKMILL_V1_DOCS_H
#define TASKMILL_V1_DOCS_H

#include "http.h"

/* Takes "namespace" out of r->json: the token's own, or (admin) the one
 * given, or "default". Writes it into ns. 0, or -1 with e set. */
int v1_doc_namespace(struct req *r, char ns[65], struct tm_error *e);
/* A new doc in ns, owned by the request (freed with it). */
struct store_doc *v1_doc_new(struct req *r, const char *ns);
/* Replies with the doc's JSON. */
void v1_doc_reply(struct req *r, int status, const struct store_doc *d);
void v1_doc_write(struct buf *b, const struct store_doc *d);
/*
 * POST (key NULL: create, 201 with Location) or PUT (replace the one named
 * key, 200) of a definition or schedule: the namespace taken out of the
 * body, `check` on the rest (0, or -1 with e set), then the store op.
 */
void v1_doc_put(struct req *r, enum store_doc_kind k, const char *key,
                int (*check)(struct req *r, const char *ns, struct tm_error *e));
/* GET of the collection: {"<key>": [...]}. */
void v1_doc_list_reply(struct req *r, enum store_doc_kind k, const char *key);
/* The definition or schedule r->param[0] names (id or name), read now:
 * 0, or -1 after replying (404 or the store's error). */
int v1_doc_path_get(struct req *r, enum store_doc_kind k, struct store_doc *d);
/* GET of r->param[0] (id or name). */
void v1_doc_get_reply(struct req *r, enum store_doc_kind k);
/* DELETE of r->param[0] (id or name): 204. */
void v1_doc_delete(struct req *r, enum store_doc_kind k);

#endif
