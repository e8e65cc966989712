/*
 * web: the dashboard's static files (web/, embedded by mk/core.mk as
 * web_assets[]) at GET / (index.html) and GET /ui/<file>.
 *
 * The routes are public: the page holds no data of its own, and every
 * API call it makes carries the viewer's token. Each reply has an ETag (a
 * hash of the file, computed once) and `Cache-Control: no-cache`, so a
 * browser keeps its copy and asks again with If-None-Match, and gets 304
 * until a new binary serves a changed file. The page gets a strict
 * Content-Security-Policy: its own scripts, styles and API only.
 *
 * Threading: the table is read-only; the ETags are filled once under
 * pthread_once and read-only after that.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../common/embedded.h"
#include "http.h"

extern const struct embedded_file web_assets[]; /* $(B)/gen/web_assets.c */

#define WEB_MAX_FILES 64
#define WEB_ETAG_LEN  19 /* '"' + 16 hex + '"' + NUL */

static char web_etags[WEB_MAX_FILES][WEB_ETAG_LEN];
static pthread_once_t web_etags_once = PTHREAD_ONCE_INIT;

/* FNV-1a, 64 bits: enough to tell two versions of a file apart. */
static uint64_t web_hash(const char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static void web_etags_fill(void) {
    for (size_t i = 0; i < WEB_MAX_FILES && web_assets[i].name; i++)
        snprintf(web_etags[i], sizeof web_etags[i], "\"%016llx\"",
                 (unsigned long long)web_hash(web_assets[i].data, web_assets[i].len));
}

static const char *web_content_type(const char *name) {
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0) return types[i].type;
    return "application/octet-stream";
}

/* True when an If-None-Match header names the ETag (or is '*'). */
static bool web_etag_matches(const char *inm, const char *etag) {
    size_t elen = strlen(etag);
    const char *p = inm;
    while (*p) {
        p += strspn(p, " \t,");
        size_t n = strcspn(p, ",");
        size_t m = n;
        while (m > 0 && (p[m - 1] == ' ' || p[m - 1] == '\t'))
            m--;
        const char *v = p;
        if (m >= 2 && v[0] == 'W' && v[1] == '/') {
            v += 2;
            m -= 2;
        }
        if ((m == 1 && v[0] == '*') || (m == elen && memcmp(v, etag, elen) == 0)) return true;
        p += n;
    }
    return false;
}

static void web_serve(struct req *r, const char *name) {
    pthread_once(&web_etags_once, web_etags_fill);
    size_t i = 0;
    while (i < WEB_MAX_FILES && web_assets[i].name && strcmp(web_assets[i].name, name) != 0)
        i++;
    if (i == WEB_MAX_FILES || !web_assets[i].name) {
        struct tm_error e;
        err_set(&e, TM_ENOT_FOUND, "", "no dashboard file '%.100s'", name);
        reply_error(r, &e);
        return;
    }
    const char *type = web_content_type(name);
    reply_add_header(r, "ETag", web_etags[i]);
    reply_add_header(r, "Cache-Control", "no-cache");
    if (strncmp(type, "text/html", 9) == 0)
        reply_add_header(r, "Content-Security-Policy",
                         "default-src 'none'; script-src 'self'; style-src 'self'; "
                         "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                         "form-action 'none'; frame-ancestors 'none'");
    const char *inm = req_header(r, "If-None-Match");
    if (inm && web_etag_matches(inm, web_etags[i])) {
        reply_empty(r, 304);
        return;
    }
    struct buf b;
    buf_init(&b);
    buf_put(&b, web_assets[i].data, web_assets[i].len);
    reply_body(r, 200, &b, type);
}

static void web_index(struct req *r) {
    web_serve(r, "index.html");
}

static void web_asset(struct req *r) {
    web_serve(r, r->param[0]);
}

const struct route web_routes[] = {
    {"GET", "/", web_index, PERM_PUBLIC},
    {"GET", "/ui/:file", web_asset, PERM_PUBLIC},
    {NULL, NULL, NULL, 0},
};
