/*
 * The token module alone: the bearer string's shape, parsing the header,
 * hashing and the constant-time check, activity, roles and durations.
 */
#include <stdio.h>
#include <stdlib.h>

#include "../src/common/buf.h"
#include "../src/common/token.h"
#include "harness.h"

static void test_new_token_round_trip(void) {
    char bearer[TOKEN_STRING_LEN + 1];
    struct token *t = token_new(TOKEN_CLIENT, "acme", "ci", 1000, 0, bearer);
    CHECK_INT(strlen(bearer), TOKEN_STRING_LEN);
    CHECK(strncmp(bearer, "tm_", 3) == 0);
    CHECK(strncmp(bearer + 3, t->id, TOKEN_ID_LEN) == 0);
    char header[200], id[TOKEN_ID_LEN + 1], secret[TOKEN_SECRET_LEN + 1];
    snprintf(header, sizeof header, "Bearer %s", bearer);
    CHECK_INT(token_parse_bearer(header, id, secret), 0);
    CHECK_STR(id, t->id);
    CHECK(token_secret_matches(t, secret));
    secret[0] = secret[0] == 'a' ? 'b' : 'a';
    CHECK(!token_secret_matches(t, secret));
    /* The secret is not in the struct: only its hash. */
    CHECK(memmem(t, sizeof *t, bearer + 3 + TOKEN_ID_LEN + 1, 16) == NULL);
    char bearer2[TOKEN_STRING_LEN + 1];
    struct token *t2 = token_new(TOKEN_CLIENT, "acme", NULL, 1000, 0, bearer2);
    CHECK(strcmp(bearer, bearer2) != 0);
    CHECK(strcmp(t->id, t2->id) != 0);
    token_free(t);
    token_free(t2);
    token_free(NULL);
}

static void test_parse_bearer_refusals(void) {
    char id[TOKEN_ID_LEN + 1], secret[TOKEN_SECRET_LEN + 1];
    const char *good =
        "tm_0123456789abcdef_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char h[256];
    snprintf(h, sizeof h, "  bEaReR \t%s  ", good);
    CHECK_INT(token_parse_bearer(h, id, secret), 0);
    const char *bad[] = {
        NULL,
        "",
        "Bearer",
        "Bearer ",
        "Basic abc",
        "Bearertm_x",
        "Bearer "
        "tm_0123456789abcdef_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
        "Bearer "
        "tm_0123456789abcdeF_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "Bearer "
        "xx_0123456789abcdef_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "Bearer "
        "tm_0123456789abcdef-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_INT(token_parse_bearer(bad[i], id, secret), TM_EUNAUTHENTICATED);
    snprintf(h, sizeof h, "Bearer %s extra", good);
    CHECK_INT(token_parse_bearer(h, id, secret), TM_EUNAUTHENTICATED);
}

static void test_active_revoked_expired(void) {
    struct token t = {.expires_at = 0, .revoked_at = 0};
    CHECK(token_is_active(&t, 5));
    CHECK_STR(token_status(&t, 5), "active");
    t.expires_at = 10;
    CHECK(token_is_active(&t, 9));
    CHECK(!token_is_active(&t, 10));
    CHECK_STR(token_status(&t, 10), "expired");
    t.revoked_at = 3;
    CHECK(!token_is_active(&t, 5));
    CHECK_STR(token_status(&t, 5), "revoked");
}

static void test_roles_and_durations(void) {
    enum token_role r;
    const char *names[] = {"admin", "client", "worker", "reader"};
    for (int i = 0; i < 4; i++) {
        CHECK_INT(token_role_parse(names[i], &r), 0);
        CHECK_INT(r, i);
        CHECK_STR(token_role_name(r), names[i]);
    }
    CHECK_INT(token_role_parse("root", &r), -1);
    CHECK_INT(token_role_parse(NULL, &r), -1);
    int64_t ms;
    CHECK_INT(token_parse_duration("90d", &ms), 0);
    CHECK_INT(ms, 90LL * 86400 * 1000);
    CHECK_INT(token_parse_duration("1h30m", &ms), 0);
    CHECK_INT(ms, 5400LL * 1000);
    CHECK_INT(token_parse_duration("2w1s", &ms), 0);
    CHECK_INT(ms, (14LL * 86400 + 1) * 1000);
    const char *bad[] = {"", "d", "10", "10x", "0s", "-1d", "99999999999999999999d", "3700d"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_INT(token_parse_duration(bad[i], &ms), -1);
}

static void test_json_has_no_secret(void) {
    char bearer[TOKEN_STRING_LEN + 1];
    struct token *t = token_new(TOKEN_ADMIN, "default", "a \"quoted\" name", 1000, 2000, bearer);
    struct buf b;
    buf_init(&b);
    token_json_write(&b, t, 1500);
    json_t *j = json_loads(b.p, 0, NULL);
    buf_release(&b);
    CHECK(j);
    CHECK_STR(th_str(j, "role"), "admin");
    CHECK_STR(th_str(j, "status"), "active");
    CHECK_STR(th_str(j, "name"), "a \"quoted\" name");
    CHECK(th_get(j, "secret") == NULL && th_get(j, "hash") == NULL);
    json_decref(j);
    token_free(t);
}

static const struct th_test tests[] = {
    {"a new token's bearer string parses back and verifies", test_new_token_round_trip},
    {"malformed Authorization values are refused", test_parse_bearer_refusals},
    {"active, revoked, expired", test_active_revoked_expired},
    {"roles and durations", test_roles_and_durations},
    {"the JSON form carries neither secret nor hash", test_json_has_no_secret},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv);
}
