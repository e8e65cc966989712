/*
 * sailpoint_parse: see sailpoint_parse.h. The patch is decoded with
 * jansson after the depth pre-scan of json_parse (so hostile nesting costs
 * nothing); forms are scanned in place. Pure and thread-safe.
 */
#include "sailpoint_parse.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../common/json_parse.h"
#include "../common/timeutil.h"

#define SP_PATCH_MAX_OPS 32

static const char *const sp_status_names[] = {"SUCCESS", "WARNING", "ERROR", "TERMINATED",
                                              "TEMPERROR"};
static const enum task_status sp_status_values[] = {TASK_SUCCESS, TASK_WARNING, TASK_ERROR,
                                                    TASK_TERMINATED, TASK_TEMPERROR};

static int sp_patch_op(json_t *op, size_t i, struct sailpoint_patch *out, struct tm_error *e) {
    char field[32];
    snprintf(field, sizeof field, "[%zu]", i);
    if (!json_is_object(op))
        return err_set(e, TM_EINVALID, field, "patch operation %zu must be an object", i);
    const char *k;
    json_t *v;
    json_object_foreach(op, k, v) {
        if (strcmp(k, "op") && strcmp(k, "path") && strcmp(k, "value") && strcmp(k, "from"))
            return err_set(e, TM_EINVALID, k, "patch operation %zu has an unknown member '%.32s'",
                           i, k);
    }
    const char *verb = json_string_value(json_object_get(op, "op"));
    const char *path = json_string_value(json_object_get(op, "path"));
    if (!verb) return err_set(e, TM_EINVALID, "op", "patch operation %zu needs a string 'op'", i);
    if (!path)
        return err_set(e, TM_EINVALID, "path", "patch operation %zu needs a string 'path'", i);
    static const char *const paths[] = {"/completionStatus", "/completed", "/progress",
                                        "/percentComplete"};
    int which = -1;
    for (int p = 0; p < 4; p++)
        if (strcmp(path, paths[p]) == 0) which = p;
    if (which < 0)
        return err_set(e, TM_EINVALID, "path",
                       "path '%.64s' cannot be patched; use '/completionStatus', '/completed', "
                       "'/progress' or '/percentComplete'",
                       path);
    if (strcmp(verb, "replace") != 0 && strcmp(verb, "add") != 0)
        return err_set(e, TM_EINVALID, "op",
                       "op '%.16s' is not supported on '%.64s'; use 'replace'", verb, path);
    json_t *value = json_object_get(op, "value");
    if (!value) return err_set(e, TM_EINVALID, "value", "patch operation %zu needs a 'value'", i);
    const char *s = json_string_value(value);
    switch (which) {
    case 0:
        for (size_t n = 0; s && n < sizeof sp_status_names / sizeof sp_status_names[0]; n++) {
            if (strcasecmp(s, sp_status_names[n]) == 0) {
                out->status = sp_status_values[n];
                return 0;
            }
        }
        return err_set(e, TM_EINVALID, "completionStatus",
                       "'completionStatus' must be SUCCESS, WARNING, ERROR, TERMINATED or "
                       "TEMPERROR");
    case 1:
        if (!s || time_parse_rfc3339(s, &out->completed_ms) || out->completed_ms <= 0)
            return err_set(e, TM_EINVALID, "completed",
                           "'completed' must be an RFC 3339 date-time after 1970");
        return 0;
    case 2:
        if (!s) return err_set(e, TM_EINVALID, "progress", "'progress' must be a string");
        if (strlen(s) >= sizeof out->progress)
            return err_set(e, TM_EINVALID, "progress", "'progress' is longer than %zu bytes",
                           sizeof out->progress - 1);
        snprintf(out->progress, sizeof out->progress, "%s", s);
        out->has_progress = true;
        return 0;
    default:
        if (!json_is_integer(value) || json_integer_value(value) < 0 ||
            json_integer_value(value) > 100)
            return err_set(e, TM_EINVALID, "percentComplete",
                           "'percentComplete' must be an integer from 0 to 100");
        out->percent = (int)json_integer_value(value);
        out->has_percent = true;
        return 0;
    }
}

int sailpoint_patch_parse(const char *body, size_t n, int max_depth, struct sailpoint_patch *out,
                          struct tm_error *e) {
    memset(out, 0, sizeof *out);
    if (json_depth(body, n) > max_depth)
        return err_set(e, TM_EINVALID, "", "the patch is nested deeper than %d", max_depth);
    char why[200];
    json_t *doc = json_load_strict(body, n, why, sizeof why, NULL, 0);
    if (!doc) return err_set(e, TM_EMALFORMED, "", "the patch is not valid JSON: %s", why);
    int rc = 0;
    if (!json_is_array(doc)) {
        rc = err_set(e, TM_EINVALID, "", "the patch must be a JSON array of operations");
    } else if (json_array_size(doc) > SP_PATCH_MAX_OPS) {
        rc = err_set(e, TM_EINVALID, "", "the patch holds more than %d operations",
                     SP_PATCH_MAX_OPS);
    } else {
        size_t i;
        json_t *op;
        json_array_foreach(doc, i, op) {
            if ((rc = sp_patch_op(op, i, out, e))) break;
        }
    }
    json_decref(doc);
    return rc;
}

static int sp_hex(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent- and plus-decodes [p, p+n) into out. */
static int sp_urldecode(const char *p, size_t n, char *out, size_t outlen) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)p[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%' && i + 2 < n && sp_hex(p[i + 1]) >= 0 && sp_hex(p[i + 2]) >= 0) {
            c = sp_hex(p[i + 1]) * 16 + sp_hex(p[i + 2]);
            i += 2;
        }
        if (c == 0 || o + 1 >= outlen) return TM_EINVALID;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

static const char *sp_memmem(const char *h, size_t hn, const char *n, size_t nn) {
    if (nn == 0 || hn < nn) return NULL;
    for (size_t i = 0; i + nn <= hn; i++)
        if (h[i] == n[0] && memcmp(h + i, n, nn) == 0) return h + i;
    return NULL;
}

bool sailpoint_form_type_ok(const char *content_type) {
    return !content_type ||
           strncasecmp(content_type, "application/x-www-form-urlencoded", 33) == 0 ||
           strncasecmp(content_type, "multipart/form-data", 19) == 0;
}

/* Whether the part whose head is h..h+hn is named `name`: the `name`
 * parameter (its key in any case, not `filename`) of its
 * Content-Disposition, a token or a quoted string with \-escapes. .NET's
 * MultipartFormDataContent, which the PowerShell SDK sends, leaves a name
 * that is a token unquoted (`name=grant_type`): a search for
 * `name="grant_type"` missed it, and found `filename="grant_type"`. */
static bool sp_part_named(const char *h, size_t hn, const char *name) {
    const char *end = h + hn;
    for (const char *line = h; line < end;) {
        const char *eol = sp_memmem(line, (size_t)(end - line), "\r\n", 2);
        if (!eol) eol = end;
        if (eol - line > 20 && strncasecmp(line, "content-disposition:", 20) == 0) {
            const char *q = memchr(line + 20, ';', (size_t)(eol - line - 20));
            while (q && q < eol) {
                q++;
                while (q < eol && (*q == ' ' || *q == '\t'))
                    q++;
                const char *k = q;
                while (q < eol && *q != '=' && *q != ';' && *q != ' ' && *q != '\t')
                    q++;
                size_t kl = (size_t)(q - k);
                while (q < eol && (*q == ' ' || *q == '\t'))
                    q++;
                if (q >= eol || *q != '=') continue; /* a parameter with no value */
                q++;
                while (q < eol && (*q == ' ' || *q == '\t'))
                    q++;
                bool is_name = kl == 4 && strncasecmp(k, "name", 4) == 0;
                const char *want = name;
                bool same = true;
                if (q < eol && *q == '"') {
                    for (q++; q < eol && *q != '"'; q++) {
                        if (*q == '\\' && q + 1 < eol) q++;
                        same = same && *want && *want == *q;
                        if (*want) want++;
                    }
                    if (q < eol) q++; /* the closing quote */
                } else {
                    for (; q < eol && *q != ';' && *q != ' ' && *q != '\t'; q++) {
                        same = same && *want && *want == *q;
                        if (*want) want++;
                    }
                }
                if (is_name) return same && !*want;
                q = memchr(q, ';', (size_t)(eol - q));
            }
        }
        line = eol + 2;
    }
    return false;
}

/* Walks the form's fields named `name`: calls each(value, length, cls) on
 * each until it returns nonzero (that value), or returns TM_ENOT_FOUND
 * after the last; TM_EINVALID when the body is not a form. A field is
 * known by its name alone, not decoded ("client%5Fid" is another name). */
static int sp_form_walk(const char *content_type, const char *body, size_t n, const char *name,
                        int (*each)(const char *v, size_t vl, bool encoded, void *cls), void *cls) {
    size_t nl = strlen(name);
    if (!content_type || strncasecmp(content_type, "application/x-www-form-urlencoded", 33) == 0) {
        const char *p = body, *end = body + n;
        while (p < end) {
            const char *amp = memchr(p, '&', (size_t)(end - p));
            const char *stop = amp ? amp : end;
            const char *eq = memchr(p, '=', (size_t)(stop - p));
            int rc;
            if (eq && (size_t)(eq - p) == nl && memcmp(p, name, nl) == 0 &&
                (rc = each(eq + 1, (size_t)(stop - eq - 1), true, cls)))
                return rc;
            p = stop + 1;
        }
        return TM_ENOT_FOUND;
    }
    if (strncasecmp(content_type, "multipart/form-data", 19) != 0) return TM_EINVALID;
    const char *bp = strstr(content_type, "boundary=");
    if (!bp) return TM_EINVALID;
    bp += 9;
    char delim[120];
    size_t bl = strcspn(bp, "; ");
    if (*bp == '"') {
        bp++;
        bl = strcspn(bp, "\"");
    }
    if (bl == 0 || bl > 70) return TM_EINVALID;
    int dl = snprintf(delim, sizeof delim, "--%.*s", (int)bl, bp);
    const char *p = sp_memmem(body, n, delim, (size_t)dl), *end = body + n;
    while (p) {
        p += dl;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') break; /* the closing delimiter */
        const char *hdr_end = sp_memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!hdr_end) break;
        const char *next = sp_memmem(hdr_end + 4, (size_t)(end - hdr_end - 4), delim, (size_t)dl);
        if (!next) break;
        if (sp_part_named(p, (size_t)(hdr_end - p), name)) {
            const char *v = hdr_end + 4;
            size_t vl = (size_t)(next - v);
            if (vl >= 2 && v[vl - 2] == '\r' && v[vl - 1] == '\n') vl -= 2;
            int rc = each(v, vl, false, cls);
            if (rc) return rc;
        }
        p = next;
    }
    return TM_ENOT_FOUND;
}

struct sp_form_out {
    char *out;
    size_t outlen;
};

/* The first value: decoded into out; 0, or TM_EINVALID when it does not fit. */
static int sp_form_copy(const char *v, size_t vl, bool encoded, void *cls) {
    struct sp_form_out *o = cls;
    if (encoded) return sp_urldecode(v, vl, o->out, o->outlen) ? TM_EINVALID : 1;
    if (vl >= o->outlen || memchr(v, '\0', vl)) return TM_EINVALID;
    memcpy(o->out, v, vl);
    o->out[vl] = '\0';
    return 1;
}

int sailpoint_form_get(const char *content_type, const char *body, size_t n, const char *name,
                       char *out, size_t outlen) {
    struct sp_form_out o = {out, outlen};
    int rc = sp_form_walk(content_type, body, n, name, sp_form_copy, &o);
    return rc == 1 ? 0 : rc;
}

static int sp_form_one(const char *v, size_t vl, bool encoded, void *cls) {
    (void)v;
    (void)vl;
    (void)encoded;
    ++*(int *)cls;
    return 0;
}

int sailpoint_form_count(const char *content_type, const char *body, size_t n, const char *name) {
    int count = 0;
    return sp_form_walk(content_type, body, n, name, sp_form_one, &count) == TM_EINVALID ? -1
                                                                                         : count;
}
