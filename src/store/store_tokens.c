/*
 * store_tokens: API tokens on the store's side: the create, revoke and purge ops
 * applied by the writer thread, and the reads the server makes on every
 * authenticated request.
 *
 * Threading: store_token_apply runs on the writer thread inside its
 * transaction, so a token write commits (and is fsynced) like any other;
 * the reads run on any thread and see every committed write, which is
 * what makes a revocation take effect on the next request.
 * Ownership: tokens read here belong to the caller (token_free).
 * Errors: TM_ENOT_FOUND for an unknown id; TM_EINTERNAL ("storage error")
 * with the backend's own message in the log.
 */
#include <stdio.h>

#include "../common/token.h"
#include "store_int.h"

int store_token_apply(struct store *s, struct store_op *op, int64_t now) {
    const struct store_backend *be = store_base_of(s)->backend;
    if (op->kind == STORE_OP_TOKEN_CREATE) {
        int rc = be->token_insert(s, op->token);
        if (rc == TM_ECONFLICT)
            return err_set(&op->err, rc, "id", "token '%.64s' exists already", op->token->id);
        return rc;
    }
    if (op->kind == STORE_OP_TOKEN_PURGE) return be->token_purge(s, now, &op->fired);
    int rc = be->token_revoke(s, op->id, now);
    if (rc == TM_ENOT_FOUND) return err_set(&op->err, rc, "", "token '%.64s' not found", op->id);
    return rc;
}

static int store_token_error(int rc, struct tm_error *e, const char *id) {
    if (rc == TM_ENOT_FOUND) return err_set(e, rc, "", "token '%.64s' not found", id ? id : "");
    return err_set(e, TM_EINTERNAL, "", "storage error");
}

int store_token_get(struct store *s, const char *id, struct token **out, struct tm_error *e) {
    *out = NULL;
    int rc = store_base_of(s)->backend->token_get(s, id, out);
    return rc ? store_token_error(rc, e, id) : 0;
}

int store_token_list(struct store *s, struct token ***out, size_t *n, struct tm_error *e) {
    *out = NULL;
    *n = 0;
    int rc = store_base_of(s)->backend->token_list(s, out, n);
    return rc ? store_token_error(rc, e, NULL) : 0;
}

int store_token_any(struct store *s, bool *any, struct tm_error *e) {
    *any = false;
    int rc = store_base_of(s)->backend->token_any(s, any);
    return rc ? store_token_error(rc, e, NULL) : 0;
}
