/*
 * v1_tokens: the admin API for tokens, for managing them from afar (the
 * same as `taskmill token create|list|revoke` on the store's host):
 *
 *   POST   /v1/tokens      {"role","namespace","name"?,"expires_in"?} -> 201
 *                          with the token and its "secret", shown this once
 *   GET    /v1/tokens      every token, revoked and expired ones too
 *   GET    /v1/tokens/{id}
 *   DELETE /v1/tokens/{id} revokes; the next request with it gets 401
 *
 * Admin tokens only. Writes are store ops (durable before the reply);
 * reads are served on the calling thread. The new token and its bearer
 * string live in r->owned until the request ends.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/buf.h"
#include "../common/timeutil.h"
#include "../common/xalloc.h"
#include "server_int.h"
#include "v1_decode.h"

struct token_create {
    struct token *token;
    char bearer[TOKEN_STRING_LEN + 1];
};

static void token_create_free(void *p) {
    struct token_create *c = p;
    token_free(c->token);
    memset(c->bearer, 0, sizeof c->bearer);
    free(c);
}

/* The token id in the path, or a 404 reply. */
static const char *path_token_id(struct req *r) {
    if (token_id_is_valid(r->param[0])) return r->param[0];
    struct tm_error e;
    err_set(&e, TM_ENOT_FOUND, "", "token '%.64s' not found", r->param[0]);
    reply_error(r, &e);
    return NULL;
}

static void tokens_created(struct req *r) {
    if (reply_if_op_failed(r)) return;
    struct token_create *c = r->owned;
    struct buf b;
    buf_init(&b);
    token_json_write(&b, c->token, time_now_ms());
    b.len--; /* reopen the object to add the secret */
    json_put_key(&b, "secret", false);
    json_put_str(&b, c->bearer);
    buf_putc(&b, '}');
    auth_turn_on(r->srv); /* the first token ends open mode now, not at the next request */
    reply_add_location(r, "tokens", c->token->id);
    reply_add_header(r, "Cache-Control", "no-store"); /* the secret: for no cache to keep */
    reply_json(r, 201, &b);
}

/* Decodes the create body; on success *out is the new token. */
static int tokens_decode(json_t *obj, struct token_create **out, struct tm_error *e) {
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        if (strcmp(key, "role") && strcmp(key, "namespace") && strcmp(key, "name") &&
            strcmp(key, "expires_in"))
            return err_set(e, TM_EINVALID, key, "unknown field '%.64s'", key);
    }
    enum token_role role;
    const char *role_s = json_string_value(json_object_get(obj, "role"));
    if (!role_s || token_role_parse(role_s, &role))
        return err_set(e, TM_EINVALID, "role",
                       "'role' must be 'admin', 'client', 'worker' or 'reader'");
    const char *ns = json_string_value(json_object_get(obj, "namespace"));
    if (!ns || !v1_is_name(ns, 64))
        return err_set(e, TM_EINVALID, "namespace", "'namespace' must be 1-64 of [A-Za-z0-9._-]");
    json_t *jname = json_object_get(obj, "name");
    const char *name = json_string_value(jname);
    if (jname && !json_is_null(jname) &&
        (!name || json_string_length(jname) == 0 || json_string_length(jname) > 128 ||
         strlen(name) != json_string_length(jname)))
        return err_set(e, TM_EINVALID, "name", "'name' must be a string of 1 to 128 bytes");
    json_t *jexp = json_object_get(obj, "expires_in");
    int64_t expires_ms = 0;
    if (jexp && !json_is_null(jexp) &&
        (!json_is_string(jexp) || token_parse_duration(json_string_value(jexp), &expires_ms)))
        return err_set(e, TM_EINVALID, "expires_in",
                       "'expires_in' must be a duration such as '90d' or '12h' (units s m h d "
                       "w) of at most ten years (3660d)");
    struct token_create *c = xcalloc(1, sizeof *c);
    int64_t now = time_now_ms();
    c->token = token_new(role, ns, name, now, expires_ms ? now + expires_ms : 0, c->bearer);
    *out = c;
    return 0;
}

static void tokens_create(struct req *r) {
    if (req_json_body(r, false)) return;
    struct tm_error e;
    err_clear(&e);
    struct token_create *c = NULL;
    if (tokens_decode(r->json, &c, &e)) {
        reply_error(r, &e);
        return;
    }
    r->owned = c;
    r->owned_free = token_create_free;
    store_op_init(&r->op, STORE_OP_TOKEN_CREATE);
    r->op.token = c->token;
    fprintf(stderr, "taskmill: auth: token '%s' (%s, namespace '%s') created by '%s'\n",
            c->token->id, token_role_name(c->token->role), c->token->namespace,
            r->token_id[0] ? r->token_id : "open mode");
    req_submit(r, tokens_created);
}

static void tokens_list(struct req *r) {
    struct token **t = NULL;
    size_t n = 0;
    struct tm_error e;
    err_clear(&e);
    if (store_token_list(req_store(r), &t, &n, &e)) {
        reply_error(r, &e);
        return;
    }
    int64_t now = time_now_ms();
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"tokens\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) buf_putc(&b, ',');
        token_json_write(&b, t[i], now);
    }
    buf_puts(&b, "]}");
    tokens_free(t, n);
    reply_json(r, 200, &b);
}

static void tokens_get(struct req *r) {
    const char *id = path_token_id(r);
    if (!id) return;
    struct token *t = NULL;
    struct tm_error e;
    err_clear(&e);
    if (store_token_get(req_store(r), id, &t, &e)) {
        reply_error(r, &e);
        return;
    }
    struct buf b;
    buf_init(&b);
    token_json_write(&b, t, time_now_ms());
    token_free(t);
    reply_json(r, 200, &b);
}

/* Logged once the store has it: a token that does not exist is a 404,
 * and no revocation. */
static void tokens_revoked(struct req *r) {
    if (reply_if_op_failed(r)) return;
    fprintf(stderr, "taskmill: auth: token '%s' revoked by '%s'\n", r->op.id,
            r->token_id[0] ? r->token_id : "open mode");
    reply_empty(r, 204);
}

static void tokens_revoke(struct req *r) {
    const char *id = path_token_id(r);
    if (!id) return;
    store_op_init(&r->op, STORE_OP_TOKEN_REVOKE);
    memcpy(r->op.id, id, TOKEN_ID_LEN + 1);
    req_submit(r, tokens_revoked);
}

/*
 * GET /v1/whoami: who the caller is, for any role: {"open", "role",
 * "namespace", "token_id", "name"}. In open mode (no token configured)
 * open is true and the role admin; otherwise a request without a token
 * gets 401 like any other.
 */
static void tokens_whoami(struct req *r) {
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"open\":");
    json_put_bool(&b, !r->token_id[0]);
    json_put_key(&b, "role", false);
    json_put_str(&b, token_role_name(r->role));
    json_put_key(&b, "namespace", false);
    json_put_str(&b, r->role == TOKEN_ADMIN ? NULL : r->ns);
    json_put_key(&b, "token_id", false);
    json_put_str(&b, r->token_id[0] ? r->token_id : NULL);
    struct token *t = NULL;
    struct tm_error e;
    err_clear(&e);
    if (r->token_id[0]) store_token_get(req_store(r), r->token_id, &t, &e);
    json_put_key(&b, "name", false);
    json_put_str(&b, t ? t->name : NULL);
    if (t && r->role == TOKEN_ADMIN) { /* an admin token still has a home namespace */
        json_put_key(&b, "token_namespace", false);
        json_put_str(&b, t->namespace);
    }
    buf_putc(&b, '}');
    token_free(t);
    reply_json(r, 200, &b);
}

const struct route v1_tokens_routes[] = {
    {"GET", "/v1/whoami", tokens_whoami, PERM_READ | PERM_WORKER},
    {"POST", "/v1/tokens", tokens_create, PERM_ADMIN},
    {"GET", "/v1/tokens", tokens_list, PERM_ADMIN},
    {"GET", "/v1/tokens/:id", tokens_get, PERM_ADMIN},
    {"DELETE", "/v1/tokens/:id", tokens_revoke, PERM_ADMIN},
    {NULL, NULL, NULL, 0},
};
