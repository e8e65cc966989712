/*
 * TLS through libmicrohttpd: a self-signed certificate made at test time
 * with the openssl command, the server started with --tls-cert and
 * --tls-key, and libcurl talking to it with that certificate as its CA.
 * A client without the CA, or speaking plain HTTP, gets nothing.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "sec_util.h"

static struct th_server srv;
static char certdir[256], cert[300], key[300];

static size_t tls_sink(char *data, size_t size, size_t nmemb, void *cls) {
    struct th_resp *r = cls;
    size_t n = size * nmemb, have = r->body ? strlen(r->body) : 0;
    r->body = realloc(r->body, have + n + 1);
    memcpy(r->body + have, data, n);
    r->body[have + n] = '\0';
    return n;
}

/* A request over HTTPS trusting `ca` (NULL: the system's CAs). Status or -1. */
static long tls_request(const char *url, const char *ca, const char *method, const char *body,
                        char **out) {
    CURL *c = curl_easy_init();
    struct th_resp r = {0};
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tls_sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    if (ca) curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    if (body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    long status = -1;
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (out)
        *out = r.body;
    else
        free(r.body);
    return status;
}

static void test_https_with_the_ca(void) {
    CHECK(strncmp(srv.url, "https://", 8) == 0);
    char url[256];
    snprintf(url, sizeof url, "%s/healthz", srv.url);
    CHECK_INT(tls_request(url, cert, "GET", NULL, NULL), 200);
    snprintf(url, sizeof url, "%s/v1/tasks", srv.url);
    char *body = NULL;
    CHECK_INT(tls_request(url, cert, "POST", "{\"type\":\"over-tls\"}", &body), 201);
    CHECK(body && strstr(body, "over-tls"));
    free(body);
}

static void test_untrusted_or_plain_refused(void) {
    /* The harness's client trusts only the system's CAs. */
    CHECK_INT(th_http(&srv, "GET", "/healthz", NULL)->status, -1);
    char url[256];
    snprintf(url, sizeof url, "http://%s/healthz", srv.url + strlen("https://"));
    CHECK(tls_request(url, NULL, "GET", NULL, NULL) != 200);
}

/* GET /healthz over TLS versions min to max only, trusting the test's
 * certificate, with OpenSSL's security level 0 so that this client would
 * speak the old versions itself. Status, or -1 when no TLS session came. */
static long tls_get_versions(long min, long max) {
    char url[256];
    snprintf(url, sizeof url, "%s/healthz", srv.url);
    CURL *c = curl_easy_init();
    struct th_resp r = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tls_sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_CAINFO, cert);
    curl_easy_setopt(c, CURLOPT_SSLVERSION, min | max);
    curl_easy_setopt(c, CURLOPT_SSL_CIPHER_LIST, "DEFAULT:@SECLEVEL=0");
    long status = -1;
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    free(r.body);
    return status;
}

/* TLS 1.0 and 1.1 are refused (RFC 8996); 1.2 and 1.3 are served. */
static void test_old_tls_versions_refused(void) {
    CHECK_INT(tls_get_versions(CURL_SSLVERSION_TLSv1_0, CURL_SSLVERSION_MAX_TLSv1_0), -1);
    CHECK_INT(tls_get_versions(CURL_SSLVERSION_TLSv1_1, CURL_SSLVERSION_MAX_TLSv1_1), -1);
    CHECK_INT(tls_get_versions(CURL_SSLVERSION_TLSv1_0, CURL_SSLVERSION_MAX_TLSv1_1), -1);
    CHECK_INT(tls_get_versions(CURL_SSLVERSION_TLSv1_2, CURL_SSLVERSION_MAX_TLSv1_2), 200);
    CHECK_INT(tls_get_versions(CURL_SSLVERSION_TLSv1_3, CURL_SSLVERSION_MAX_TLSv1_3), 200);
}

/* Starts a server with these TLS flags (it must refuse); its exit status, its words in said. */
static int serve_tls(char *said, size_t n, const char *flags) {
    return sec_cli(said, n, "%s serve --listen 127.0.0.1:0 --store sqlite:%s/x.db %s 2>&1",
                   sec_bin(), certdir, flags);
}

static void test_bad_tls_config_refused(void) {
    char flags[1024], said[1024];
    snprintf(flags, sizeof flags, "--tls-cert %s", cert);
    CHECK_INT(serve_tls(said, sizeof said, flags), 1);
    snprintf(flags, sizeof flags, "--tls-cert %s --tls-key %s/missing.pem", cert, certdir);
    CHECK_INT(serve_tls(said, sizeof said, flags), 1);
    /* A key that is not a key, a certificate that is not one: the file is named. */
    snprintf(flags, sizeof flags, "--tls-cert %s --tls-key %s", cert, cert);
    CHECK_INT(serve_tls(said, sizeof said, flags), 1);
    CHECK(strstr(said, "holds no PEM private key") != NULL);
    snprintf(flags, sizeof flags, "--tls-cert %s --tls-key %s", key, key);
    CHECK_INT(serve_tls(said, sizeof said, flags), 1);
    CHECK(strstr(said, "holds no PEM certificate") != NULL);
    CHECK(strstr(said, key) != NULL);
    /* PEM of the right kinds that do not go together: the pair is named. */
    char other[600];
    snprintf(other, sizeof other,
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s/other.key -out %s/other.pem "
             "-days 2 -subj /CN=other >/dev/null 2>&1",
             certdir, certdir);
    CHECK_INT(system(other), 0);
    snprintf(flags, sizeof flags, "--tls-cert %s --tls-key %s/other.key", cert, certdir);
    CHECK_INT(serve_tls(said, sizeof said, flags), 1);
    bool named = strstr(said, "are not a certificate and its private key that TLS can use");
    if (!named) printf("    said: %s\n", said);
    CHECK(named);
}

/* Starts a server with these TLS flags, stopped (SIGINT) after 3 s if it
 * does start; its exit status, its words in said. */
static int serve_tls_bounded(char *said, size_t n, const char *flags) {
    return sec_cli(said, n,
                   "timeout --preserve-status -s INT 3 %s serve --listen 127.0.0.1:0 --store "
                   "sqlite:%s/y.db %s 2>&1",
                   sec_bin(), certdir, flags);
}

/* A key file every user can read is refused, naming it and its mode; a
 * group may read it. */
static void test_key_open_to_others_refused(void) {
    char open_key[300], flags[1024], said[2048], cmd[700];
    snprintf(open_key, sizeof open_key, "%s/open-key.pem", certdir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && chmod 644 '%s'", key, open_key, open_key);
    CHECK_INT(system(cmd), 0);
    snprintf(flags, sizeof flags, "--tls-cert %s --tls-key %s", cert, open_key);
    CHECK_INT(serve_tls_bounded(said, sizeof said, flags), 1);
    bool named = strstr(said, "is open to every user of this host (mode 0644)") &&
                 strstr(said, open_key) && strstr(said, "chmod o-rwx");
    if (!named) printf("    said: %s\n", said);
    CHECK(named);
    snprintf(cmd, sizeof cmd, "chmod 604 '%s'", open_key);
    CHECK_INT(system(cmd), 0);
    CHECK_INT(serve_tls_bounded(said, sizeof said, flags), 1);
    CHECK(strstr(said, "(mode 0604)") != NULL);
    /* 640 (a group such as ssl-cert) starts, and stops at the SIGINT. */
    snprintf(cmd, sizeof cmd, "chmod 640 '%s'", open_key);
    CHECK_INT(system(cmd), 0);
    CHECK_INT(serve_tls_bounded(said, sizeof said, flags), 0);
    CHECK(strstr(said, "taskmill listening on https://") != NULL);
}

static void test_cli_with_ca_file(void) {
    char out[4096];
    CHECK_INT(sec_cli(out, sizeof out, "TASKMILL_URL=%s TASKMILL_CA_FILE=%s %s list 2>&1", srv.url,
                      cert, sec_bin()),
              0);
    CHECK(strstr(out, "over-tls") != NULL);
    CHECK(sec_cli(out, sizeof out, "TASKMILL_URL=%s TASKMILL_CA_FILE= %s list 2>&1", srv.url,
                  sec_bin()) != 0);
}

/* The server's count of connections closed for a late head, over TLS; -1 when unread. */
static long long tls_head_timeouts(const struct th_server *s) {
    char url[200], *body = NULL;
    snprintf(url, sizeof url, "%s/metrics", s->url);
    long long n = -1;
    const char *series = "taskmill_connections_closed_total{reason=\"head_timeout\"} ";
    const char *p;
    if (tls_request(url, cert, "GET", NULL, &body) == 200 && body && (p = strstr(body, series)))
        n = atoll(p + strlen(series));
    free(body);
    return n;
}

/* A request's head sent a byte at a time over TLS (openssl s_client),
 * each well within the idle timeout: closed at --head-timeout-seconds,
 * where it once held its connection as long as it dripped. (s_client
 * may not end when the server closes, so the server's count says when.)
 * The idle timeout is the head's 4 s: with 2 s, a dripping shell held up
 * 2 s between two bytes had its head closed as idle, never counted. */
static void test_head_dripped(void) {
    struct th_server s;
    CHECK(th_server_start(&s, "--tls-cert", cert, "--tls-key", key, "--idle-timeout-seconds", "4",
                          "--head-timeout-seconds", "4", NULL) == 0);
    const char *port = strrchr(s.url, ':') + 1;
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "(printf 'GET /healthz HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nX-Slow: '; "
             "i=0; while [ $i -lt 45 ]; do printf a; sleep 0.3; i=$((i+1)); done) 2>/dev/null | "
             "timeout 20 openssl s_client -connect 127.0.0.1:%s -quiet >/dev/null 2>&1",
             port);
    long long t0 = th_now_ms();
    FILE *drip = popen(cmd, "r");
    CHECK(drip);
    bool ok;
    TRY_WAIT_UNTIL(ok, tls_head_timeouts(&s) == 1, 20000, "the dripping connection to be closed");
    long long at = th_now_ms() - t0;
    pclose(drip);
    printf("closed by %lld ms after it opened\n", at);
    CHECK(ok);
    CHECK(at >= 4000 - 100); /* not before its deadline */
    th_server_free(&s);
}

static const struct th_test tests[] = {
    {"HTTPS with the self-signed certificate as CA", test_https_with_the_ca},
    {"an untrusting client or plain HTTP gets nothing", test_untrusted_or_plain_refused},
    {"TLS 1.0 and 1.1 are refused, 1.2 and 1.3 served", test_old_tls_versions_refused},
    {"a half or broken TLS configuration is refused", test_bad_tls_config_refused},
    {"a key file open to every user is refused; 640 is served", test_key_open_to_others_refused},
    {"the CLI speaks https:// with TASKMILL_CA_FILE", test_cli_with_ca_file},
    {"a head dripped a byte at a time over TLS is closed at --head-timeout-seconds",
     test_head_dripped},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    snprintf(certdir, sizeof certdir, "%s/taskmill-tls-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(certdir)) return 1;
    snprintf(cert, sizeof cert, "%s/cert.pem", certdir);
    snprintf(key, sizeof key, "%s/key.pem", certdir);
    char out[256];
    int rc = sec_cli(out, sizeof out,
                     "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 1 "
                     "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1,DNS:localhost "
                     ">/dev/null 2>&1",
                     key, cert);
    if (rc != 0) th_fail(__FILE__, __LINE__, "openssl could not make a certificate");
    if (rc == 0 && th_server_start(&srv, "--tls-cert", cert, "--tls-key", key, NULL))
        th_fail(__FILE__, __LINE__, "server did not start");
    int res = th_main(tests, argc, argv);
    th_server_free(&srv);
    snprintf(out, sizeof out, "rm -rf '%s'", certdir);
    if (system(out)) {
    }
    return res || th_failed();
}
