/*
 * v1_docs: what the definition and schedule resources share: the
 * namespace a new one goes to, the JSON of one (its checked body with id,
 * namespace and times; a schedule's firing state too), and the handlers of
 * create, replace, list, get and delete, which each resource's route table
 * names with its struct v1_doc_type as the route's data.
 */
#ifndef TASKMILL_V1_DOCS_H
#define TASKMILL_V1_DOCS_H

#include "http.h"

/* A resource kept as store docs, for the handlers below (a route's data). */
struct v1_doc_type {
    enum store_doc_kind kind;
    const char *collection; /* "definitions": its path under /v1/ and its list's key */
    /* Checks r->json, the body of a POST or PUT going to namespace ns (its
     * "namespace" taken out already): 0, or -1 with e set. */
    int (*check)(struct req *r, const char *ns, struct tm_error *e);
};

/* Takes "namespace" out of r->json: the token's own, or (admin) the one
 * given, or "default". Writes it into ns. 0, or -1 with e set. */
int v1_doc_namespace(struct req *r, char ns[65], struct tm_error *e);
/* A new doc in ns, owned by the request (freed with it). */
struct store_doc *v1_doc_new(struct req *r, const char *ns);
/* Replies with the doc's JSON. */
void v1_doc_reply(struct req *r, int status, const struct store_doc *d);
void v1_doc_write(struct buf *b, const struct store_doc *d);
/* The definition or schedule r->param[0] names (id or name), read now:
 * 0, or -1 after replying (404 or the store's error). */
int v1_doc_path_get(struct req *r, enum store_doc_kind k, struct store_doc *d);

/*
 * Route handlers; r->route->data is the struct v1_doc_type. POST of the
 * collection creates (201 with Location), PUT of r->param[0] (id or name)
 * replaces (200): the namespace taken out of the body, the type's check on
 * the rest, then the store op. GET of the collection lists
 * ({"<collection>": [...]}); GET of r->param[0] reads one; DELETE of it
 * answers 204.
 */
void v1_doc_create(struct req *r);
void v1_doc_replace(struct req *r);
void v1_doc_list(struct req *r);
void v1_doc_get(struct req *r);
void v1_doc_delete(struct req *r);

/* The five routes above for a resource's route table, with who may call
 * each: `collection` a string literal ("definitions"), `type` its struct
 * v1_doc_type. */
#define V1_DOC_ROUTES(collection, type)                                                   \
    {"POST", "/v1/" collection, v1_doc_create, PERM_OWNER, .data = &(type)},              \
        {"GET", "/v1/" collection, v1_doc_list, PERM_READ, .data = &(type)},              \
        {"GET", "/v1/" collection "/:id", v1_doc_get, PERM_READ, .data = &(type)},        \
        {"PUT", "/v1/" collection "/:id", v1_doc_replace, PERM_OWNER, .data = &(type)}, { \
        "DELETE", "/v1/" collection "/:id", v1_doc_delete, PERM_OWNER, .data = &(type)    \
    }

#endif
