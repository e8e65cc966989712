/*
 * token: API tokens, their roles, and the bearer string a client sends.
 *
 * A token has an id (public: it names the token in lists and logs), a
 * role, a namespace, an optional name and expiry. The client holds the
 * string `tm_<id>_<secret>`; the secret is 256 random bits and is never
 * stored: the store keeps its SHA-256 only, and a presented secret is
 * checked by hashing it and comparing in constant time. Because the id is
 * part of the string, checking a token is one lookup by id, not a scan.
 *
 * Pure apart from randomness (getrandom) and hashing (libcrypto); no I/O,
 * no clock: callers pass now_ms. Thread-safe. A struct token owns its
 * strings; token_free frees them.
 */
#ifndef TASKMILL_TOKEN_H
#define TASKMILL_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define TOKEN_ID_LEN     16 /* hex characters */
#define TOKEN_SECRET_LEN 64 /* hex characters: 32 random bytes */
#define TOKEN_HASH_LEN   32 /* SHA-256 */
/* "tm_" id "_" secret */
#define TOKEN_STRING_LEN (3 + TOKEN_ID_LEN + 1 + TOKEN_SECRET_LEN)

/* Stored as their names, never as numbers. */
enum token_role { TOKEN_ADMIN, TOKEN_CLIENT, TOKEN_WORKER, TOKEN_READER, TOKEN_ROLE_COUNT };

/* A bit per role, for the route tables' permission masks. */
#define TOKEN_ROLE_BIT(role) (1u << (role))

struct token {
    char id[TOKEN_ID_LEN + 1];
    enum token_role role;
    char *namespace; /* the token's scope; admin tokens see every namespace */
    char *name;      /* a label for people, or NULL */
    unsigned char hash[TOKEN_HASH_LEN];
    int64_t created_at; /* wall ms */
    int64_t expires_at; /* wall ms; 0 = never */
    int64_t revoked_at; /* wall ms; 0 = not revoked */
};

const char *token_role_name(enum token_role role);
/* 0, or -1 when s names no role. */
int token_role_parse(const char *s, enum token_role *out);

/*
 * Makes a new token with a fresh id and secret. Writes the bearer string
 * (the only copy of the secret there will ever be) into `bearer`. The
 * caller owns the token. ns and name are copied; name may be NULL.
 */
struct token *token_new(enum token_role role, const char *ns, const char *name, int64_t created_at,
                        int64_t expires_at, char bearer[TOKEN_STRING_LEN + 1]);
/* Frees the token and its strings. NULL is fine. */
void token_free(struct token *t);
void tokens_free(struct token **t, size_t n);

/*
 * Parses an Authorization header value, "Bearer tm_<id>_<secret>" (the
 * scheme case-insensitive, spaces around the token allowed), into id and
 * secret. Returns 0, or TM_EUNAUTHENTICATED when the value is not one.
 * Pure; never reads past the NUL.
 */
int token_parse_bearer(const char *header, char id[TOKEN_ID_LEN + 1],
                       char secret[TOKEN_SECRET_LEN + 1]);
/* Parses the bare string "tm_<id>_<secret>" (n bytes, no NUL needed). */
int token_parse(const char *s, size_t n, char id[TOKEN_ID_LEN + 1],
                char secret[TOKEN_SECRET_LEN + 1]);
/* True when s is TOKEN_ID_LEN lowercase hex characters. */
bool token_id_is_valid(const char *s);

/* SHA-256 of the secret. */
void token_hash_secret(const char *secret, unsigned char out[TOKEN_HASH_LEN]);
/* Whether the secret hashes to t->hash; constant time in the secret. */
bool token_secret_matches(const struct token *t, const char *secret);
/* Neither revoked nor expired at now_ms. */
bool token_is_active(const struct token *t, int64_t now_ms);

/*
 * Parses a duration: one or more <integer><unit> with units s, m, h, d, w
 * ("90d", "1h30m"). Returns 0 and sets *ms (at most ten years), or -1.
 */
int token_parse_duration(const char *s, int64_t *ms);

struct buf;
/* Writes the token as a JSON object (never the hash) with its status at
 * now_ms: "active", "revoked" or "expired". */
void token_json_write(struct buf *b, const struct token *t, int64_t now_ms);
/* "active", "revoked" or "expired". */
const char *token_status(const struct token *t, int64_t now_ms);

#endif
