/*
 * token: see token.h. Secrets come from getrandom(2) through
 * id_random_bytes; hashes from libcrypto's EVP interface; the comparison
 * is CRYPTO_memcmp, whose time does not depend on where bytes differ.
 */
#include "token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "id.h"
#include "xalloc.h"

static const char *const token_role_names[TOKEN_ROLE_COUNT] = {"admin", "client", "worker",
                                                               "reader"};

const char *token_role_name(enum token_role role) {
    return (unsigned)role < TOKEN_ROLE_COUNT ? token_role_names[role] : "?";
}

int token_role_parse(const char *s, enum token_role *out) {
    for (int i = 0; i < TOKEN_ROLE_COUNT; i++) {
        if (s && strcmp(s, token_role_names[i]) == 0) {
            *out = (enum token_role)i;
            return 0;
        }
    }
    return -1;
}

static void token_hex(const unsigned char *bytes, size_t n, char *out) {
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[bytes[i] >> 4];
        out[2 * i + 1] = hex[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

static bool token_is_hex(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

bool token_id_is_valid(const char *s) {
    return s && strlen(s) == TOKEN_ID_LEN && token_is_hex(s, TOKEN_ID_LEN);
}

void token_hash_secret(const char *secret, unsigned char out[TOKEN_HASH_LEN]) {
    unsigned int len = 0;
    if (!EVP_Digest(secret, strlen(secret), out, &len, EVP_sha256(), NULL) ||
        len != TOKEN_HASH_LEN) {
        fputs("taskmill: SHA-256 is not available from libcrypto\n", stderr);
        abort();
    }
}

bool token_secret_matches(const struct token *t, const char *secret) {
    unsigned char h[TOKEN_HASH_LEN];
    token_hash_secret(secret, h);
    return CRYPTO_memcmp(h, t->hash, TOKEN_HASH_LEN) == 0;
}

bool token_is_active(const struct token *t, int64_t now_ms) {
    return t->revoked_at == 0 && (t->expires_at == 0 || now_ms < t->expires_at);
}

struct token *token_new(enum token_role role, const char *ns, const char *name, int64_t created_at,
                        int64_t expires_at, char bearer[TOKEN_STRING_LEN + 1]) {
    struct token *t = xcalloc(1, sizeof *t);
    unsigned char raw[TOKEN_SECRET_LEN / 2];
    id_random_bytes(raw, TOKEN_ID_LEN / 2);
    token_hex(raw, TOKEN_ID_LEN / 2, t->id);
    id_random_bytes(raw, sizeof raw);
    char secret[TOKEN_SECRET_LEN + 1];
    token_hex(raw, sizeof raw, secret);
    token_hash_secret(secret, t->hash);
    snprintf(bearer, TOKEN_STRING_LEN + 1, "tm_%s_%s", t->id, secret);
    OPENSSL_cleanse(raw, sizeof raw);
    OPENSSL_cleanse(secret, sizeof secret);
    t->role = role;
    t->namespace = xstrdup(ns);
    t->name = name ? xstrdup(name) : NULL;
    t->created_at = created_at;
    t->expires_at = expires_at;
    return t;
}

void token_free(struct token *t) {
    if (!t) return;
    free(t->namespace);
    free(t->name);
    free(t);
}

void tokens_free(struct token **t, size_t n) {
    if (!t) return;
    for (size_t i = 0; i < n; i++)
        token_free(t[i]);
    free(t);
}

int token_parse(const char *s, size_t n, char id[TOKEN_ID_LEN + 1],
                char secret[TOKEN_SECRET_LEN + 1]) {
    if (n != TOKEN_STRING_LEN || memcmp(s, "tm_", 3) != 0 || s[3 + TOKEN_ID_LEN] != '_')
        return TM_EUNAUTHENTICATED;
    const char *pid = s + 3, *psec = s + 3 + TOKEN_ID_LEN + 1;
    if (!token_is_hex(pid, TOKEN_ID_LEN) || !token_is_hex(psec, TOKEN_SECRET_LEN))
        return TM_EUNAUTHENTICATED;
    memcpy(id, pid, TOKEN_ID_LEN);
    id[TOKEN_ID_LEN] = '\0';
    memcpy(secret, psec, TOKEN_SECRET_LEN);
    secret[TOKEN_SECRET_LEN] = '\0';
    return 0;
}

int token_parse_bearer(const char *header, char id[TOKEN_ID_LEN + 1],
                       char secret[TOKEN_SECRET_LEN + 1]) {
    if (!header) return TM_EUNAUTHENTICATED;
    const char *p = header;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
        return TM_EUNAUTHENTICATED;
    p += 6;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strcspn(p, " \t");
    const char *rest = p + n;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    if (*rest) return TM_EUNAUTHENTICATED;
    return token_parse(p, n, id, secret);
}

int token_parse_duration(const char *s, int64_t *ms) {
    static const int64_t ten_years_ms = 10LL * 366 * 24 * 3600 * 1000;
    if (!s || !*s) return -1;
    int64_t total = 0;
    while (*s) {
        int64_t n = 0;
        int digits = 0;
        for (; *s >= '0' && *s <= '9'; s++, digits++) {
            n = n * 10 + (*s - '0');
            if (n > ten_years_ms / 1000) return -1;
        }
        int64_t unit;
        switch (*s) {
        case 's':
            unit = 1000;
            break;
        case 'm':
            unit = 60 * 1000;
            break;
        case 'h':
            unit = 3600 * 1000;
            break;
        case 'd':
            unit = 24 * 3600 * 1000;
            break;
        case 'w':
            unit = 7 * 24 * 3600 * 1000;
            break;
        default:
            return -1;
        }
        if (!digits || n > (ten_years_ms - total) / unit) return -1;
        total += n * unit;
        s++;
    }
    if (total <= 0) return -1;
    *ms = total;
    return 0;
}

const char *token_status(const struct token *t, int64_t now_ms) {
    if (t->revoked_at) return "revoked";
    return token_is_active(t, now_ms) ? "active" : "expired";
}

void token_json_write(struct buf *b, const struct token *t, int64_t now_ms) {
    buf_puts(b, "{\"id\":");
    json_put_str(b, t->id);
    json_put_key(b, "name", false);
    json_put_str(b, t->name);
    json_put_key(b, "role", false);
    json_put_str(b, token_role_name(t->role));
    json_put_key(b, "namespace", false);
    json_put_str(b, t->namespace);
    json_put_key(b, "status", false);
    json_put_str(b, token_status(t, now_ms));
    json_put_key(b, "created_at", false);
    json_put_time(b, t->created_at);
    json_put_key(b, "expires_at", false);
    json_put_time(b, t->expires_at);
    json_put_key(b, "revoked_at", false);
    json_put_time(b, t->revoked_at);
    buf_putc(b, '}');
}
