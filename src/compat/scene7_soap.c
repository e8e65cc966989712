/*
 * scene7_soap: see scene7_soap.h. The request parser of the Scene7 view.
 *
 * Order of defence: the size cap and a raw scan for '<!DOCTYPE' (and NUL
 * bytes) come first, so libxml2 never sees a DTD; libxml2 then parses with
 * XML_PARSE_NONET, without XML_PARSE_NOENT / DTDLOAD / DTDATTR / HUGE (so
 * its own depth and size limits stay on), forced to UTF-8, with errors
 * kept off stderr. After parsing, a document that still has a DTD subset
 * or an entity reference node is refused. Only then are the elements read.
 *
 * Threading: libxml2 is initialised once (pthread_once); each call has its
 * own parser context and document. Ownership and errors: see the header.
 */
#include "scene7_soap.h"

#include <ctype.h>
#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <strings.h>

#include "../common/cron.h"
#include "../common/timeutil.h"
#include "../common/xalloc.h"

#define SOAP11_NS        "http://schemas.xmlsoap.org/soap/envelope/"
#define XSI_NS           "http://www.w3.org/2001/XMLSchema-instance"
#define DETAIL_MAX_DEPTH 8
#define DETAIL_MAX_NODES 1000

#define SCENE7_OP_NAME(id, name) name,
static const char *const scene7_op_names[SCENE7_OP_COUNT] = {NULL, SCENE7_OPS(SCENE7_OP_NAME)};
#undef SCENE7_OP_NAME

const char *scene7_op_name(enum scene7_op op) {
    return op > SCENE7_OP_NONE && op < SCENE7_OP_COUNT ? scene7_op_names[op] : NULL;
}

/* The job-detail elements of submitJob and the Job Types constant each
 * maps to; the last four have no documented constant (our names). */
static const char *const scene7_job_kinds[][2] = {
    {"imageServingPublishJob", "ImageServingPublish"},
    {"imageRenderingPublishJob", "ImageRenderingPublish"},
    {"videoPublishJob", "VideoPublish"},
    {"serverDirectoryPublishJob", "ServerDirectoryPublish"},
    {"uploadDirectoryJob", "UploadFromServerDirectory"},
    {"uploadUrlsJob", "UrlUpload"},
    {"optimizeImagesJob", "ImageOptimization"},
    {"ripPdfsJob", "RipPdfs"},
    {"reprocessAssetsJob", "ReprocessAssets"},
    {"automatedSetGenerationJob", "AutomatedSetGeneration"},
    {"exportJob", "Export"},
};

const char *scene7_job_type_of(const char *job_kind) {
    for (size_t i = 0; i < sizeof scene7_job_kinds / sizeof scene7_job_kinds[0]; i++)
        if (strcmp(scene7_job_kinds[i][0], job_kind) == 0) return scene7_job_kinds[i][1];
    return NULL;
}

static int scene7_fail(struct scene7_fault *f, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int scene7_fail(struct scene7_fault *f, int code, const char *fmt, ...) {
    f->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->reason, sizeof f->reason, fmt, ap);
    va_end(ap);
    return -1;
}

static void scene7_xml_init_once(void) {
    xmlInitParser();
}

static bool node_is(const xmlNode *n, const char *ns, const char *local) {
    if (n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, local) != 0) return false;
    if (!ns) return true;
    return n->ns && n->ns->href && strcmp((const char *)n->ns->href, ns) == 0;
}

/* The next element sibling from n (n included); NULL at the end. Text
 * other than white space between elements is refused through *bad. */
static xmlNode *next_element(xmlNode *n, bool *bad) {
    for (; n; n = n->next) {
        if (n->type == XML_ELEMENT_NODE) return n;
        if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
            for (const xmlChar *c = n->content; c && *c; c++)
                if (*c != ' ' && *c != '\t' && *c != '\r' && *c != '\n') *bad = true;
        } else if (n->type == XML_ENTITY_REF_NODE || n->type == XML_ENTITY_NODE) {
            *bad = true;
        }
    }
    return NULL;
}

static bool is_nil(const xmlNode *n) {
    for (const xmlAttr *a = n->properties; a; a = a->next) {
        if (strcmp((const char *)a->name, "nil") != 0 || !a->ns || !a->ns->href ||
            strcmp((const char *)a->ns->href, XSI_NS) != 0)
            continue;
        const xmlNode *v = a->children;
        return v && v->content &&
               (strcmp((const char *)v->content, "true") == 0 ||
                strcmp((const char *)v->content, "1") == 0);
    }
    return false;
}

/*
 * The text of a leaf element, copied, at most max bytes; NULL with *f set
 * when it has element children, an entity reference or is too long.
 */
static char *leaf_text(const xmlNode *n, size_t max, struct scene7_fault *f) {
    size_t len = 0;
    for (const xmlNode *c = n->children; c; c = c->next) {
        if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
            len += c->content ? strlen((const char *)c->content) : 0;
        } else if (c->type == XML_COMMENT_NODE || c->type == XML_PI_NODE) {
            continue;
        } else {
            scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER, "'%.64s' must hold text only",
                        (const char *)n->name);
            return NULL;
        }
        if (len > max) {
            scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER, "'%.64s' is longer than %zu bytes",
                        (const char *)n->name, max);
            return NULL;
        }
    }
    char *s = xmalloc(len + 1), *p = s;
    for (const xmlNode *c = n->children; c; c = c->next) {
        if ((c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE) || !c->content)
            continue;
        size_t k = strlen((const char *)c->content);
        memcpy(p, c->content, k);
        p += k;
    }
    *p = '\0';
    return s;
}

/* Trims XML white space (xsd:int, xsd:dateTime use whiteSpace collapse). */
static char *trim(char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

static bool has_control(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n' && *s != '\r') return true;
    return false;
}

/* A job-detail element as JSON: leaf elements are strings, repeated
 * names become arrays, attributes are dropped. NULL with *f on refusal. */
static json_t *detail_json(const xmlNode *n, int depth, int *nodes, struct scene7_fault *f) {
    if (depth > DETAIL_MAX_DEPTH || ++*nodes > DETAIL_MAX_NODES) {
        scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER,
                    "the job detail is nested deeper than %d or holds more than %d elements",
                    DETAIL_MAX_DEPTH, DETAIL_MAX_NODES);
        return NULL;
    }
    bool has_child = false;
    for (const xmlNode *c = n->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE) has_child = true;
    if (!has_child) {
        char *s = leaf_text(n, SCENE7_TEXT_MAX, f);
        if (!s) return NULL;
        json_t *v = json_string(s);
        free(s);
        if (!v)
            scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER, "'%.64s' is not valid UTF-8",
                        (const char *)n->name);
        return v;
    }
    json_t *obj = json_object();
    bool bad = false;
    for (xmlNode *c = next_element(n->children, &bad); c; c = next_element(c->next, &bad)) {
        json_t *v = detail_json(c, depth + 1, nodes, f);
        if (!v) {
            json_decref(obj);
            return NULL;
        }
        const char *key = (const char *)c->name;
        json_t *old = json_object_get(obj, key);
        if (!old) {
            json_object_set_new(obj, key, v);
        } else if (json_is_array(old)) {
            json_array_append_new(old, v);
        } else {
            json_t *arr = json_array();
            json_array_append(arr, old);
            json_array_append_new(arr, v);
            json_object_set_new(obj, key, arr);
        }
    }
    if (bad) {
        json_decref(obj);
        scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER, "'%.64s' mixes text and elements",
                    (const char *)n->name);
        return NULL;
    }
    return obj;
}

static int parse_auth(xmlNode *h, struct scene7_auth *a, struct scene7_fault *f) {
    if (a->present) return scene7_fail(f, SCENE7_FAULT_INVALID_REQUEST_XML, "'authHeader' repeats");
    a->present = true;
    bool bad = false;
    for (xmlNode *c = next_element(h->children, &bad); c; c = next_element(c->next, &bad)) {
        const char *name = (const char *)c->name;
        char **slot = strcmp(name, "user") == 0       ? &a->user
                      : strcmp(name, "password") == 0 ? &a->password
                                                      : NULL;
        bool status = strcmp(name, "faultHttpStatusCode") == 0;
        if (!slot && !status) continue; /* locale, appName, appVersion, gzipResponse */
        if (is_nil(c)) continue;
        char *s = leaf_text(c, SCENE7_TEXT_MAX, f);
        if (!s) return -1;
        if (slot) {
            if (*slot) {
                free(s);
                return scene7_fail(f, SCENE7_FAULT_INVALID_REQUEST_XML, "'authHeader/%s' repeats",
                                   name);
            }
            *slot = s;
            continue;
        }
        char *t = trim(s), *end = NULL;
        long v = strtol(t, &end, 10);
        /* 1xx would make a fault look like an upgrade or a continue to a proxy. */
        bool ok = *t && *end == '\0' && (v == 200 || (v >= 400 && v <= 599));
        free(s);
        if (!ok)
            return scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER,
                               "'faultHttpStatusCode' must be 200 or 400-599");
        a->fault_http_status = (int)v;
    }
    if (bad)
        return scene7_fail(f, SCENE7_FAULT_INVALID_REQUEST_XML, "'authHeader' holds stray text");
    return 0;
}

/* ---- execSchedule: Quartz style to taskmill cron ---- */

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A day field that restricts nothing: cron.h's "only the other counts". */
static bool day_is_open(const char *field) {
    return strcmp(field, "*") == 0 || strcmp(field, "?") == 0;
}

/* Appends a Quartz day-of-week field with its numbers moved from 1-7
 * (Sunday 1) to cron's 0-6; names and steps are copied as they are. */
static int dow_append(char *out, size_t n, size_t *len, const char *dow, const char *sent,
                      struct scene7_fault *f) {
    for (const char *p = dow; *p;) {
        char tmp[8];
        size_t k = 0;
        if (*p >= '0' && *p <= '9') {
            const char *start = p;
            long v = 0;
            while (*p >= '0' && *p <= '9' && v < 1000)
                v = v * 10 + (*p++ - '0');
            bool step = start > dow && start[-1] == '/';
            if (!step && (v < 1 || v > 7))
                return scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER,
                                   "'execSchedule' day-of-week '%.32s' is out of range 1-7 "
                                   "(1 = Sunday)",
                                   sent);
            k = (size_t)snprintf(tmp, sizeof tmp, "%ld", step ? v : v - 1);
        } else {
            tmp[k++] = *p++;
        }
        if (*len + k >= n)
            return scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER, "'execSchedule' is too long");
        memcpy(out + *len, tmp, k);
        *len += k;
        out[*len] = '\0';
    }
    return 0;
}

/* Quartz's fields as it numbers them (day-of-week 1 = Sunday to 7), with
 * the names it takes; the year is not here: it must be '*'. */
static const struct quartz_field {
    const char *name; /* as faults say it */
    int lo, hi;
    const char *names; /* 3-letter names, value lo first; NULL: numbers only */
} quartz_fields[6] = {
    {"second", 0, 59, NULL},
    {"minute", 0, 59, NULL},
    {"hour", 0, 23, NULL},
    {"day-of-month", 1, 31, NULL},
    {"month", 1, 12, "JANFEBMARAPRMAYJUNJULAUGSEPOCTNOVDEC"},
    {"day-of-week", 1, 7, "SUNMONTUEWEDTHUFRISAT"},
};

/* A whole value of field q, a number or (month, day-of-week) a name in
 * any case; false when [s, s+len) is neither or outside lo..hi. */
static bool quartz_value(const struct quartz_field *q, const char *s, size_t len, int *out) {
    if (len == 0) return false;
    if (s[0] >= '0' && s[0] <= '9') {
        int v = 0;
        for (size_t i = 0; i < len; i++) {
            if (s[i] < '0' || s[i] > '9') return false;
            if (v <= q->hi) v = v * 10 + (s[i] - '0');
        }
        if (v < q->lo || v > q->hi) return false;
        *out = v;
        return true;
    }
    if (!q->names || len != 3) return false;
    for (int i = 0; q->names[3 * i]; i++) {
        if (strncasecmp(s, q->names + 3 * i, 3) == 0) {
            *out = q->lo + i;
            return true;
        }
    }
    return false;
}

/*
 * Copies one Quartz field to out, its ranges read as Quartz's
 * CronExpression reads them:
 *   - a range whose end comes before its start (FRI-MON, NOV-FEB, 22-2)
 *     wraps round the field: it is written as the two ranges it stands
 *     for, on from the start to the field's last value, then round from
 *     its first, a step (a-b/s) carried across the wrap (6-2/2 is FRI,
 *     SUN);
 *   - a range of names (MON-FRI, FRI-MON, NOV-FEB) takes no step: Quartz
 *     drops what follows its '/', so MON-FRI/2 is every day MON to FRI.
 *     It is written without the step (in numbers where it wraps);
 *   - a range of a name and a number (FRI-2) is refused, as Quartz
 *     refuses it.
 * Other elements are copied as they are, for cron_parse (or dow_append)
 * to check: a bound out of range or not a value is refused there, as
 * Quartz refuses it.
 */
static int quartz_unwrap(const struct quartz_field *q, const char *field, char *out, size_t n,
                         struct scene7_fault *f) {
    size_t len = 0;
    out[0] = '\0';
    for (const char *p = field;; p++) {
        /* Every element, empty ones too, for cron_parse to refuse those. */
        size_t el = strcspn(p, ",");
        const char *sep = p == field ? "" : ",";
        const char *slash = memchr(p, '/', el);
        size_t base = slash ? (size_t)(slash - p) : el;
        const char *dash = memchr(p, '-', base);
        size_t ll = dash ? (size_t)(dash - p) : 0, rl = dash ? base - ll - 1 : 0;
        int a, b, k;
        bool range = dash && quartz_value(q, p, ll, &a) && quartz_value(q, dash + 1, rl, &b);
        bool lname = range && isalpha((unsigned char)p[0]);
        if (range && lname != (bool)isalpha((unsigned char)dash[1]))
            return scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER,
                               "'execSchedule' %s range '%.*s' mixes a name and a number: write "
                               "both as names or both as numbers",
                               q->name, (int)(base > 32 ? 32 : base), p);
        if (range && (b < a || (lname && slash))) {
            int step = 1, span = q->hi - q->lo + 1;
            if (slash) {
                size_t sl = el - base - 1;
                int given = 0;
                bool digits = sl > 0;
                for (size_t i = 0; i < sl && digits; i++) {
                    digits = slash[1 + i] >= '0' && slash[1 + i] <= '9';
                    if (digits && given <= span) given = given * 10 + (slash[1 + i] - '0');
                }
                /* After names Quartz drops a step, whatever its number. */
                if (!digits || (!lname && (given < 1 || given > span)))
                    return scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER,
                                       "'execSchedule' %s step '%.*s' is not a number in 1-%d",
                                       q->name, (int)(sl > 32 ? 32 : sl), slash + 1, span);
                if (!lname) step = given;
            }
            char st[8] = "";
            if (step > 1) snprintf(st, sizeof st, "/%d", step);
            if (b >= a) { /* names, as sent, without the step */
                k = snprintf(out + len, n - len, "%s%.*s", sep, (int)base, p);
            } else {
                /* The values a, a+step, ... up to b + span, each past hi
                 * taken round (less span): `round` is the first of those. */
                int round = a + (q->hi - a) / step * step + step - span;
                k = round <= b ? snprintf(out + len, n - len, "%s%d-%d%s,%d-%d%s", sep, a, q->hi,
                                          st, round, b, st)
                               : snprintf(out + len, n - len, "%s%d-%d%s", sep, a, q->hi, st);
            }
        } else {
            k = snprintf(out + len, n - len, "%s%.*s", sep, (int)el, p);
        }
        if (k < 0 || (size_t)k >= n - len)
            return scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER, "'execSchedule' is too long");
        len += (size_t)k;
        p += el;
        if (!*p) break;
    }
    return 0;
}

int scene7_exec_schedule_cron(const char *text, char *out, size_t n, struct scene7_fault *f) {
    char copy[SCENE7_SCHEDULE_MAX + 1];
    if (strlen(text) > SCENE7_SCHEDULE_MAX)
        return scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER,
                           "'execSchedule' is longer than %d bytes", SCENE7_SCHEDULE_MAX);
    snprintf(copy, sizeof copy, "%s", text);
    char *field[8];
    int nf = 0;
    for (char *p = copy; *p && nf < 8;) {
        while (is_space(*p))
            p++;
        if (!*p) break;
        field[nf++] = p;
        while (*p && !is_space(*p))
            p++;
        if (*p) *p++ = '\0';
    }
    if (nf < 5 || nf > 7)
        return scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER,
                           "'execSchedule' must have 5 to 7 fields: seconds minutes hours "
                           "day-of-month month [day-of-week [year]]");
    if (nf == 7 && strcmp(field[6], "*") != 0)
        return scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER,
                           "'execSchedule' year '%.32s' is not supported: give '*' or no year",
                           field[6]);
    const char *dom = field[3], *dow = nf >= 6 ? field[5] : "?";
    if (strpbrk(dom, "LWlw"))
        return scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER,
                           "'execSchedule' day-of-month '%.32s': 'L' and 'W' are not supported",
                           dom);
    if (strpbrk(dow, "Ll#"))
        return scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER,
                           "'execSchedule' day-of-week '%.32s': 'L' and '#' are not supported",
                           dow);
    if (!day_is_open(dom) && !day_is_open(dow))
        return scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER,
                           "'execSchedule' restricts both the day of the month and the day of the "
                           "week; put '?' in one of them");
    /* Wrap-around ranges become two ranges, field by field, in Quartz's
     * numbers; day-of-week moves to cron's numbers after. */
    char unwrapped[6][CRON_MAX_TEXT + 1];
    const char *quartz[6] = {field[0], field[1], field[2], dom, field[4], dow};
    for (int i = 0; i < 6; i++)
        if (quartz_unwrap(&quartz_fields[i], quartz[i], unwrapped[i], sizeof unwrapped[i], f))
            return -1;
    int k = snprintf(out, n, "%s %s %s %s %s ", unwrapped[0], unwrapped[1], unwrapped[2],
                     unwrapped[3], unwrapped[4]);
    if (k < 0 || (size_t)k >= n)
        return scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER, "'execSchedule' is too long");
    size_t len = (size_t)k;
    if (dow_append(out, n, &len, unwrapped[5], quartz[5], f)) return -1;
    struct cron_expr c;
    struct tm_error e;
    err_clear(&e);
    if (cron_parse(out, &c, &e)) {
        const char *msg = e.message;
        if (strncmp(msg, "'cron' ", 7) == 0) msg += 7;
        /* cron_parse quotes what it read: say so where that is not what
         * was sent (a range rewritten, the day-of-week renumbered). */
        bool same =
            strcmp(unwrapped[5], quartz[5]) == 0 && strpbrk(quartz[5], "0123456789") == NULL;
        for (int i = 0; i < 5; i++)
            same = same && strcmp(unwrapped[i], quartz[i]) == 0;
        if (same) return scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER, "'execSchedule' %s", msg);
        return scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER,
                           "'execSchedule' %s (in the expression as read: '%.96s', day-of-week "
                           "0 = Sunday)",
                           msg, out);
    }
    return 0;
}

/* ---- Parameters ---- */

/* What each operation takes: bit per parameter, required ones separately. */
enum {
    P_COMPANY = 1 << 0,
    P_JOB_HANDLE = 1 << 1,
    P_ORIGINAL_NAME = 1 << 2,
    P_JOB_NAME = 1 << 3,
    P_USER_HANDLE = 1 << 4,
    P_LOCALE = 1 << 5,
    P_EXEC_TIME = 1 << 6,
    P_EXEC_SCHEDULE = 1 << 7,
    P_DESCRIPTION = 1 << 8,
    P_DETAIL = 1 << 9,
    P_SORT_BY = 1 << 10,
    P_SORT_DIRECTION = 1 << 11,
    P_START_DATE = 1 << 12,
    P_END_DATE = 1 << 13,
    P_NUM_ROWS = 1 << 14,
    P_LOG_TYPES = 1 << 15,
    P_RECORDS_PER_PAGE = 1 << 16,
    P_RESULTS_PAGE = 1 << 17,
};

static const struct {
    unsigned allowed, required;
} scene7_op_params[SCENE7_OP_COUNT] = {
    [SCENE7_OP_SUBMIT_JOB] = {P_COMPANY | P_JOB_NAME | P_USER_HANDLE | P_LOCALE | P_EXEC_TIME |
                                  P_EXEC_SCHEDULE | P_DESCRIPTION | P_DETAIL,
                              P_COMPANY | P_JOB_NAME | P_DETAIL},
    [SCENE7_OP_GET_ACTIVE_JOBS] = {P_COMPANY | P_JOB_HANDLE | P_ORIGINAL_NAME, 0},
    [SCENE7_OP_STOP_JOB] = {P_COMPANY | P_JOB_HANDLE, P_COMPANY | P_JOB_HANDLE},
    [SCENE7_OP_PAUSE_JOB] = {P_COMPANY | P_JOB_HANDLE, P_COMPANY | P_JOB_HANDLE},
    [SCENE7_OP_RESUME_JOB] = {P_COMPANY | P_JOB_HANDLE, P_COMPANY | P_JOB_HANDLE},
    [SCENE7_OP_EXECUTE_JOB] = {P_COMPANY | P_JOB_HANDLE, P_COMPANY | P_JOB_HANDLE},
    [SCENE7_OP_DELETE_JOB] = {P_COMPANY | P_JOB_HANDLE, P_COMPANY | P_JOB_HANDLE},
    [SCENE7_OP_GET_SCHEDULED_JOBS] = {P_COMPANY | P_JOB_HANDLE | P_ORIGINAL_NAME, P_COMPANY},
    [SCENE7_OP_GET_JOB_LOGS] = {P_COMPANY | P_USER_HANDLE | P_SORT_BY | P_SORT_DIRECTION |
                                    P_START_DATE | P_END_DATE | P_NUM_ROWS,
                                0},
    [SCENE7_OP_GET_JOB_LOG_DETAILS] = {P_COMPANY | P_JOB_HANDLE | P_ORIGINAL_NAME | P_LOG_TYPES |
                                           P_RECORDS_PER_PAGE | P_RESULTS_PAGE | P_SORT_BY |
                                           P_SORT_DIRECTION,
                                       P_COMPANY},
};

/* Each parameter: its bit, its length cap and, for one kept as sent, its
 * char * field in struct scene7_request (0: parsed by parse_value, or
 * logTypeArray). */
#define TEXT(field) offsetof(struct scene7_request, field)
static const struct {
    const char *name;
    unsigned bit;
    size_t max;
    size_t text;
} scene7_params[] = {
    {"companyHandle", P_COMPANY, SCENE7_HANDLE_MAX, TEXT(company_handle)},
    {"jobHandle", P_JOB_HANDLE, SCENE7_HANDLE_MAX, TEXT(job_handle)},
    {"originalName", P_ORIGINAL_NAME, SCENE7_HANDLE_MAX, TEXT(original_name)},
    {"jobName", P_JOB_NAME, SCENE7_HANDLE_MAX, TEXT(job_name)},
    {"userHandle", P_USER_HANDLE, SCENE7_HANDLE_MAX, TEXT(user_handle)},
    {"locale", P_LOCALE, 64, TEXT(locale)},
    {"execTime", P_EXEC_TIME, 64, 0},
    {"execSchedule", P_EXEC_SCHEDULE, SCENE7_SCHEDULE_MAX, 0},
    {"description", P_DESCRIPTION, SCENE7_TEXT_MAX, TEXT(description)},
    {"sortBy", P_SORT_BY, 64, 0},
    {"sortDirection", P_SORT_DIRECTION, 64, 0},
    {"startDate", P_START_DATE, 64, 0},
    {"endDate", P_END_DATE, 64, 0},
    {"numRows", P_NUM_ROWS, 64, 0},
    {"logTypeArray", P_LOG_TYPES, 0, 0},
    {"recordsPerPage", P_RECORDS_PER_PAGE, 64, 0},
    {"resultsPage", P_RESULTS_PAGE, 64, 0},
};
#undef TEXT
#define NPARAMS (sizeof scene7_params / sizeof scene7_params[0])

/* The field of parameter i kept as sent, or NULL. */
static char **param_slot(struct scene7_request *r, size_t i) {
    return scene7_params[i].text ? (char **)((char *)r + scene7_params[i].text) : NULL;
}

void scene7_request_release(struct scene7_request *r) {
    if (!r) return;
    free(r->auth.user);
    free(r->auth.password);
    for (size_t i = 0; i < NPARAMS; i++)
        if (param_slot(r, i)) free(*param_slot(r, i));
    free(r->job_kind);
    json_decref(r->job_detail);
    free(r->exec_schedule);
    free(r->exec_cron);
    for (size_t i = 0; i < r->nlog_types; i++)
        free(r->log_types[i]);
    free(r->log_types);
    memset(r, 0, sizeof *r);
}

/* The sort fields each operation takes, by name (any case). */
static const struct {
    const char *name;
    enum scene7_sort sort;
    enum scene7_op op;
} scene7_sorts[] = {
    {"JobName", SCENE7_SORT_JOB_NAME, SCENE7_OP_GET_JOB_LOGS},
    {"LogType", SCENE7_SORT_LOG_TYPE, SCENE7_OP_GET_JOB_LOGS},
    {"StartDate", SCENE7_SORT_START_DATE, SCENE7_OP_GET_JOB_LOGS},
    {"CompanyName", SCENE7_SORT_COMPANY_NAME, SCENE7_OP_GET_JOB_LOGS},
    {"UserId", SCENE7_SORT_USER_ID, SCENE7_OP_GET_JOB_LOGS},
    {"Email", SCENE7_SORT_EMAIL, SCENE7_OP_GET_JOB_LOGS},
    {"FileErrorCount", SCENE7_SORT_FILE_ERROR_COUNT, SCENE7_OP_GET_JOB_LOGS},
    {"FileWarningCount", SCENE7_SORT_FILE_WARNING_COUNT, SCENE7_OP_GET_JOB_LOGS},
    {"FileSuccessCount", SCENE7_SORT_FILE_SUCCESS_COUNT, SCENE7_OP_GET_JOB_LOGS},
    {"Date", SCENE7_SORT_DATE, SCENE7_OP_GET_JOB_LOG_DETAILS},
    {"LogType", SCENE7_SORT_LOG_TYPE, SCENE7_OP_GET_JOB_LOG_DETAILS},
};

/* An xsd:int in [lo, hi]; larger values are taken as `cap` when cap > 0. */
static int parse_int(const char *name, char *s, int64_t lo, int64_t hi, int64_t cap, int64_t *out,
                     struct scene7_fault *f) {
    char *t = trim(s), *end = NULL;
    errno = 0;
    long long v = strtoll(t, &end, 10);
    if (!*t || *end || errno || v < lo || v > INT32_MAX || (!cap && v > hi))
        return scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER,
                           "'%.64s' must be an integer from %lld to %lld", name, (long long)lo,
                           (long long)hi);
    *out = cap && v > hi ? cap : v;
    return 0;
}

/* logTypeArray: a StringArray, its strings in `items` elements. */
static int parse_log_types(xmlNode *n, struct scene7_request *r, struct scene7_fault *f) {
    bool bad = false;
    for (xmlNode *c = next_element(n->children, &bad); c; c = next_element(c->next, &bad)) {
        if (strcmp((const char *)c->name, "items") != 0)
            return scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER,
                               "'logTypeArray' holds 'items' elements only, not '%.64s'",
                               (const char *)c->name);
        if (r->nlog_types == SCENE7_LOG_TYPES_MAX)
            return scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER,
                               "'logTypeArray' holds more than %d items", SCENE7_LOG_TYPES_MAX);
        char *s = leaf_text(c, 64, f);
        if (!s) return -1;
        char *t = trim(s);
        if (!*t || has_control(t)) {
            free(s);
            return scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER,
                               "'logTypeArray' items must be Log Type constants");
        }
        if (!r->log_types) r->log_types = xcalloc(SCENE7_LOG_TYPES_MAX, sizeof *r->log_types);
        r->log_types[r->nlog_types++] = xstrdup(t);
        free(s);
    }
    if (bad)
        return scene7_fail(f, SCENE7_FAULT_INVALID_REQUEST_XML, "'logTypeArray' holds stray text");
    return 0;
}

/* A typed parameter's value into r; s is the element's text, freed here. */
static int parse_value(struct scene7_request *r, unsigned bit, const char *name, char *s,
                       struct scene7_fault *f) {
    int rc = 0;
    char *t = trim(s);
    switch (bit) {
    case P_EXEC_TIME:
    case P_START_DATE:
    case P_END_DATE: {
        int64_t ms = 0;
        if (time_parse_rfc3339(t, &ms)) {
            rc = scene7_fail(
                f, SCENE7_FAULT_INVALID_PARAMETER,
                "'%.64s' must be an xsd:dateTime with a time zone, from 1970 to 9999 UTC", name);
            break;
        }
        if (bit == P_EXEC_TIME) {
            r->has_exec_time = true;
            r->exec_time_ms = ms;
        } else if (bit == P_START_DATE) {
            r->has_start_date = true;
            r->start_date_ms = ms;
        } else {
            r->has_end_date = true;
            r->end_date_ms = ms;
        }
        break;
    }
    case P_EXEC_SCHEDULE:
        if (!*t) break; /* empty: absent */
        r->exec_cron = xmalloc(CRON_MAX_TEXT + 1);
        r->exec_schedule = xstrdup(t);
        rc = scene7_exec_schedule_cron(t, r->exec_cron, CRON_MAX_TEXT + 1, f);
        break;
    case P_NUM_ROWS:
        rc = parse_int(name, t, 1, SCENE7_ROWS_MAX, SCENE7_ROWS_MAX, &r->num_rows, f);
        break;
    case P_RECORDS_PER_PAGE:
        rc = parse_int(name, t, 1, SCENE7_ROWS_MAX, SCENE7_ROWS_MAX, &r->records_per_page, f);
        break;
    case P_RESULTS_PAGE:
        rc = parse_int(name, t, 1, INT32_MAX, 0, &r->results_page, f);
        break;
    case P_SORT_DIRECTION:
        if (strcasecmp(t, "Ascending") == 0)
            r->sort_direction = 1;
        else if (strcasecmp(t, "Descending") == 0)
            r->sort_direction = -1;
        else
            rc = scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER,
                             "'sortDirection' must be Ascending or Descending");
        break;
    case P_SORT_BY:
        for (size_t i = 0; i < sizeof scene7_sorts / sizeof scene7_sorts[0]; i++)
            if (scene7_sorts[i].op == r->op && strcasecmp(t, scene7_sorts[i].name) == 0)
                r->sort_by = scene7_sorts[i].sort;
        if (r->sort_by == SCENE7_SORT_DEFAULT)
            rc = scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER,
                             r->op == SCENE7_OP_GET_JOB_LOGS
                                 ? "'sortBy' must be a Job Log Sort Field (JobName, LogType, "
                                   "StartDate, CompanyName, UserId, Email, FileErrorCount, "
                                   "FileWarningCount, FileSuccessCount)"
                                 : "'sortBy' must be Date or LogType");
        break;
    default:
        break;
    }
    free(s);
    return rc;
}

static int parse_params(xmlNode *param, struct scene7_request *r, struct scene7_fault *f) {
    const char *opname = scene7_op_name(r->op);
    unsigned allowed = scene7_op_params[r->op].allowed, seen = 0;
    bool bad = false;
    for (xmlNode *c = next_element(param->children, &bad); c; c = next_element(c->next, &bad)) {
        const char *name = (const char *)c->name;
        if (c->ns && c->ns->href && strcmp((const char *)c->ns->href, SCENE7_NS) != 0)
            return scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER,
                               "'%.64s' of '%sParam' is in an unknown namespace", name, opname);
        size_t i = 0;
        while (i < NPARAMS && strcmp(scene7_params[i].name, name) != 0)
            i++;
        unsigned bit = i < NPARAMS ? scene7_params[i].bit : 0;
        if (!bit && (allowed & P_DETAIL) && scene7_job_type_of(name)) bit = P_DETAIL;
        if (!bit || !(allowed & bit))
            return scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER,
                               "'%.64s' is not a parameter of '%.64s'", name, opname);
        if (seen & bit) {
            if (bit == P_DETAIL)
                return scene7_fail(
                    f, SCENE7_FAULT_INVALID_PARAMETER,
                    "'%.64s' takes exactly one job-detail element; '%.64s' is a second", opname,
                    name);
            return scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER, "'%.64s' repeats", name);
        }
        if (is_nil(c)) continue;
        seen |= bit;
        if (bit == P_DETAIL) {
            int nodes = 0;
            r->job_detail = detail_json(c, 0, &nodes, f);
            if (!r->job_detail) return -1;
            if (!json_is_object(r->job_detail)) { /* <uploadUrlsJob/> or text only */
                json_decref(r->job_detail);
                r->job_detail = json_object();
            }
            r->job_kind = xstrdup(name);
            continue;
        }
        if (bit == P_LOG_TYPES) {
            if (parse_log_types(c, r, f)) return -1;
            continue;
        }
        char *s = leaf_text(c, scene7_params[i].max, f);
        if (!s) return -1;
        if (has_control(s)) {
            free(s);
            return scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER,
                               "'%.64s' must not contain control characters", name);
        }
        char **slot = param_slot(r, i);
        if (!slot) {
            if (parse_value(r, bit, name, s, f)) return -1;
        } else if (!*s) {
            free(s); /* an empty parameter counts as absent */
            seen &= ~bit;
        } else {
            *slot = s;
        }
    }
    if (bad)
        return scene7_fail(f, SCENE7_FAULT_INVALID_REQUEST_XML, "'%sParam' holds stray text",
                           opname);
    if (r->exec_schedule && r->has_exec_time)
        return scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER,
                           "'execTime' and 'execSchedule' exclude each other");
    if (r->has_start_date && r->has_end_date && r->end_date_ms < r->start_date_ms)
        return scene7_fail(f, SCENE7_FAULT_INVALID_PARAMETER,
                           "'endDate' must not be before 'startDate'");
    unsigned missing = scene7_op_params[r->op].required & ~seen;
    if (missing & P_DETAIL)
        return scene7_fail(f, SCENE7_FAULT_MISSING_PARAMETER,
                           "'%.64s' needs one job-detail element (e.g. 'uploadUrlsJob')", opname);
    for (size_t i = 0; i < NPARAMS; i++)
        if (missing & scene7_params[i].bit)
            return scene7_fail(f, SCENE7_FAULT_MISSING_PARAMETER, "'%.64s' needs '%.64s'", opname,
                               scene7_params[i].name);
    return 0;
}

/* A raw scan, before libxml2, linear in the body: no DOCTYPE (so no entity
 * declarations), no NUL, and at most SCENE7_ELEMENTS_MAX elements and
 * SCENE7_ATTRS_MAX attributes (SCENE7_ELEMENT_ATTRS_MAX on one element),
 * so that no document makes libxml2 (whose duplicate-attribute check is
 * quadratic) or the readers after it spend more than a bounded time.
 * Comments, CDATA and processing instructions are skipped whole. */
static int scene7_precheck(const char *body, size_t len, struct scene7_fault *f) {
    if (len == 0)
        return scene7_fail(f, SCENE7_FAULT_INVALID_REQUEST_XML, "the request body is empty");
    if (len > SCENE7_SOAP_MAX_BYTES)
        return scene7_fail(f, SCENE7_FAULT_INVALID_REQUEST_XML, "the request exceeds %d bytes",
                           SCENE7_SOAP_MAX_BYTES);
    if (memchr(body, '\0', len))
        return scene7_fail(f, SCENE7_FAULT_INVALID_REQUEST_XML,
                           "the request must be UTF-8 XML (it holds NUL bytes)");
    const char *end = body + len;
    long elements = 0, attrs = 0;
    for (const char *p = body; (p = memchr(p, '<', (size_t)(end - p))) != NULL;) {
        size_t left = (size_t)(end - p);
        const char *close = NULL;
        if (left >= 9 && memcmp(p, "<!DOCTYPE", 9) == 0)
            return scene7_fail(f, SCENE7_FAULT_INVALID_REQUEST_XML,
                               "a SOAP message must not contain a DOCTYPE");
        if (left >= 4 && memcmp(p, "<!--", 4) == 0) {
            close = memmem(p + 4, left - 4, "-->", 3);
        } else if (left >= 9 && memcmp(p, "<![CDATA[", 9) == 0) {
            close = memmem(p + 9, left - 9, "]]>", 3);
        } else if (left >= 2 && (p[1] == '?' || p[1] == '!')) {
            close = memchr(p, '>', left);
        } else if (left >= 2 && p[1] == '/') {
            close = memchr(p, '>', left);
        } else {
            /* A start tag: count it and its attributes (each '=' outside quotes). */
            if (++elements > SCENE7_ELEMENTS_MAX)
                return scene7_fail(f, SCENE7_FAULT_INVALID_REQUEST_XML,
                                   "the request has more than %d elements", SCENE7_ELEMENTS_MAX);
            long here = 0;
            char quote = 0;
            const char *q = p + 1;
            for (; q < end && (quote || *q != '>'); q++) {
                if (quote) {
                    if (*q == quote) quote = 0;
                } else if (*q == '"' || *q == '\'') {
                    quote = *q;
                } else if (*q == '=') {
                    if (++here > SCENE7_ELEMENT_ATTRS_MAX)
                        return scene7_fail(f, SCENE7_FAULT_INVALID_REQUEST_XML,
                                           "an element of the request has more than %d attributes",
                                           SCENE7_ELEMENT_ATTRS_MAX);
                    if (++attrs > SCENE7_ATTRS_MAX)
                        return scene7_fail(f, SCENE7_FAULT_INVALID_REQUEST_XML,
                                           "the request has more than %d attributes",
                                           SCENE7_ATTRS_MAX);
                }
            }
            close = q < end ? q : NULL;
        }
        if (!close) break; /* unterminated: libxml2 refuses it, cheaply */
        p = close + 1;
    }
    return 0;
}

/* The text of the first element named `name` (any prefix) in [p, end),
 * trimmed, into out; false when there is none or it does not fit. */
static bool peek_leaf(const char *p, const char *end, const char *name, char *out, size_t n) {
    size_t nl = strlen(name);
    for (; (p = memchr(p, '<', (size_t)(end - p))) != NULL; p++) {
        const char *q = p + 1;
        if (q < end && *q == '/') continue;
        const char *colon = NULL;
        while (q < end &&
               (isalnum((unsigned char)*q) || *q == '_' || *q == '-' || *q == '.' || *q == ':')) {
            if (*q == ':') colon = q;
            q++;
        }
        const char *local = colon ? colon + 1 : p + 1;
        if ((size_t)(q - local) != nl || memcmp(local, name, nl) != 0) continue;
        const char *gt = memchr(q, '>', (size_t)(end - q));
        if (!gt || gt[-1] == '/') return false;
        const char *text = gt + 1, *lt = memchr(text, '<', (size_t)(end - text));
        if (!lt) return false;
        while (text < lt && isspace((unsigned char)*text))
            text++;
        while (lt > text && isspace((unsigned char)lt[-1]))
            lt--;
        if ((size_t)(lt - text) >= n) return false;
        memcpy(out, text, (size_t)(lt - text));
        out[lt - text] = '\0';
        return true;
    }
    return false;
}

int scene7_soap_peek_auth(const char *body, size_t len, char *user, size_t user_n, char *password,
                          size_t password_n) {
    if (len > SCENE7_AUTH_PEEK_BYTES) len = SCENE7_AUTH_PEEK_BYTES;
    const char *end = body + len;
    /* The authHeader element (any prefix), up to its end tag. */
    static const char name[] = "authHeader";
    const char *start = NULL;
    for (const char *p = body; (p = memmem(p, (size_t)(end - p), name, sizeof name - 1)) != NULL;
         p++) {
        const char *b = p;
        while (b > body && (isalnum((unsigned char)b[-1]) || b[-1] == '_' || b[-1] == '-' ||
                            b[-1] == '.' || b[-1] == ':'))
            b--;
        const char *after = p + sizeof name - 1;
        if (b > body && b[-1] == '<' && (b == p || p[-1] == ':') && after < end &&
            (*after == '>' || isspace((unsigned char)*after))) {
            start = after;
            break;
        }
    }
    if (!start) return 0;
    const char *stop = start;
    for (const char *p = start; (p = memmem(p, (size_t)(end - p), name, sizeof name - 1)) != NULL;
         p++) {
        const char *b = p;
        while (b > start && b[-1] != '<' && b[-1] != '>')
            b--;
        if (b > start && b[-1] == '<' && *b == '/') {
            stop = b - 1;
            break;
        }
    }
    if (stop == start) return 0; /* no end tag in the look: not there */
    user[0] = password[0] = '\0';
    peek_leaf(start, stop, "user", user, user_n);
    peek_leaf(start, stop, "password", password, password_n);
    return 1;
}

int scene7_soap_parse(const char *body, size_t len, struct scene7_request *out,
                      struct scene7_fault *f) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    memset(out, 0, sizeof *out);
    f->code = 0;
    f->reason[0] = '\0';
    if (scene7_precheck(body, len, f)) return -1;
    pthread_once(&once, scene7_xml_init_once);
    xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
    if (!ctxt) return scene7_fail(f, SCENE7_FAULT_EXCEPTION, "out of memory");
    int opts = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_IGNORE_ENC;
    xmlDocPtr doc = xmlCtxtReadMemory(ctxt, body, (int)len, "soap.xml", "UTF-8", opts);
    int rc = -1;
    if (!doc || !ctxt->wellFormed) {
        scene7_fail(f, SCENE7_FAULT_INVALID_REQUEST_XML, "the request is not well-formed XML");
        goto out;
    }
    if (doc->intSubset || doc->extSubset) {
        scene7_fail(f, SCENE7_FAULT_INVALID_REQUEST_XML,
                    "a SOAP message must not contain a DOCTYPE");
        goto out;
    }
    xmlNode *env = xmlDocGetRootElement(doc);
    if (!env || !node_is(env, SOAP11_NS, "Envelope")) {
        scene7_fail(f, SCENE7_FAULT_INVALID_REQUEST_XML,
                    "the root element must be a SOAP 1.1 'Envelope' (namespace '%.64s')",
                    SOAP11_NS);
        goto out;
    }
    bool bad = false;
    xmlNode *c = next_element(env->children, &bad), *body_el = NULL;
    if (c && node_is(c, SOAP11_NS, "Header")) {
        for (xmlNode *h = next_element(c->children, &bad); h; h = next_element(h->next, &bad)) {
            if (strcmp((const char *)h->name, "authHeader") == 0) {
                if (parse_auth(h, &out->auth, f)) goto out;
                continue;
            }
            xmlChar *mu =
                xmlGetNsProp(h, (const xmlChar *)"mustUnderstand", (const xmlChar *)SOAP11_NS);
            bool must = mu && strcmp((const char *)mu, "1") == 0;
            xmlFree(mu);
            if (must) {
                scene7_fail(f, SCENE7_FAULT_INVALID_REQUEST_XML,
                            "header '%.64s' must be understood and is not", (const char *)h->name);
                goto out;
            }
        }
        c = next_element(c->next, &bad);
    }
    if (c && node_is(c, SOAP11_NS, "Body")) {
        body_el = c;
        c = next_element(c->next, &bad);
    }
    if (!body_el || c || bad) {
        scene7_fail(f, SCENE7_FAULT_INVALID_REQUEST_XML,
                    "the envelope must hold an optional 'Header' and one 'Body'");
        goto out;
    }
    xmlNode *param = next_element(body_el->children, &bad);
    if (!param || next_element(param->next, &bad) || bad) {
        scene7_fail(f, SCENE7_FAULT_INVALID_REQUEST_XML,
                    "the 'Body' must hold exactly one element");
        goto out;
    }
    if (!param->ns || !param->ns->href || strcmp((const char *)param->ns->href, SCENE7_NS) != 0) {
        scene7_fail(f, SCENE7_FAULT_INVALID_REQUEST_XML, "'%.64s' must be in the namespace '%.64s'",
                    (const char *)param->name, SCENE7_NS);
        goto out;
    }
    const char *pname = (const char *)param->name;
    size_t plen = strlen(pname);
    for (int op = SCENE7_OP_NONE + 1; op < SCENE7_OP_COUNT; op++) {
        const char *n = scene7_op_names[op];
        size_t k = strlen(n);
        if (plen == k + 5 && memcmp(pname, n, k) == 0 && strcmp(pname + k, "Param") == 0)
            out->op = (enum scene7_op)op;
    }
    if (out->op == SCENE7_OP_NONE) {
        scene7_fail(f, SCENE7_FAULT_INVALID_REQUEST_XML, "unknown operation element '%.64s'",
                    pname);
        goto out;
    }
    rc = parse_params(param, out, f);
out:
    xmlFreeDoc(doc);
    xmlFreeParserCtxt(ctxt);
    return rc;
}

static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int scene7_basic_parse(const char *header, char *user, size_t user_n, char *password,
                       size_t password_n) {
    if (!header || strncasecmp(header, "Basic", 5) != 0 || (header[5] != ' ' && header[5] != '\t'))
        return -1;
    const char *p = header + 5;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strlen(p);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (n == 0 || n % 4 || n > 4 * ((user_n + password_n + 2) / 3)) return -1;
    char out[(SCENE7_TEXT_MAX * 2 + 4)];
    if (n / 4 * 3 >= sizeof out) return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            unsigned char ch = (unsigned char)p[i + k];
            v[k] = ch == '=' ? -2 : b64_value(ch);
            if (v[k] == -1) return -1;
        }
        bool last = i + 4 == n;
        if (v[0] < 0 || v[1] < 0 || (v[2] == -2 && v[3] != -2) || (!last && (v[2] < 0 || v[3] < 0)))
            return -1;
        out[o++] = (char)(v[0] << 2 | v[1] >> 4);
        if (v[2] >= 0) out[o++] = (char)((v[1] & 15) << 4 | v[2] >> 2);
        if (v[3] >= 0) out[o++] = (char)((v[2] & 3) << 6 | v[3]);
    }
    out[o] = '\0';
    if (memchr(out, '\0', o)) return -1;
    char *colon = memchr(out, ':', o);
    if (!colon) return -1;
    size_t ul = (size_t)(colon - out), pl = o - ul - 1;
    if (ul >= user_n || pl >= password_n) return -1;
    memcpy(user, out, ul);
    user[ul] = '\0';
    memcpy(password, colon + 1, pl);
    password[pl] = '\0';
    return 0;
}
