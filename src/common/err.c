/*
 * err: see err.h. The lookups index the table generated from TM_ERR_MAP.
 */
#include "err.h"

#include <stdio.h>
#include <string.h>

#include "utf8.h"

struct err_entry {
    const char *slug;
    int status;
    const char *message;
};

static const struct err_entry err_table[] = {
#define TM_ERR_ROW(name, slug, status, msg) {slug, status, msg},
    TM_ERR_MAP(TM_ERR_ROW)
#undef TM_ERR_ROW
};

static const struct err_entry *err_lookup(int code) {
    int i = code - TM_ERR_FIRST_ - 1;
    if (i < 0 || i >= (int)(sizeof err_table / sizeof err_table[0]))
        return &err_table[TM_EINTERNAL - TM_ERR_FIRST_ - 1];
    return &err_table[i];
}

const char *err_slug(int code) {
    return err_lookup(code)->slug;
}

int err_http_status(int code) {
    return err_lookup(code)->status;
}

const char *err_default_message(int code) {
    return err_lookup(code)->message;
}

int err_set(struct tm_error *e, int code, const char *field, const char *fmt, ...) {
    if (!e) return code;
    e->code = code;
    /* A name longer than field holds is left out, not cut: a cut name
     * names nothing that was sent (the message quotes it, cut). */
    if (!field || strlen(field) >= sizeof e->field) field = "";
    snprintf(e->field, sizeof e->field, "%s", field);
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof e->message, fmt, ap);
        va_end(ap);
    } else {
        snprintf(e->message, sizeof e->message, "%s", err_default_message(code));
    }
    /* What it quotes, cut by a precision or the buffer, stays UTF-8. */
    utf8_scrub(e->field);
    utf8_scrub(e->message);
    return code;
}

void err_clear(struct tm_error *e) {
    e->code = TM_OK;
    e->field[0] = '\0';
    e->message[0] = '\0';
}

int err_once(const char *const *names, unsigned n, unsigned *seen, const char *key,
             struct tm_error *e) {
    for (unsigned i = 0; i < n && i < 32; i++) {
        if (strcmp(key, names[i]) != 0) continue;
        if (*seen & (1u << i))
            return err_set(e, TM_EINVALID, key, "'%.64s' is given more than once", key);
        *seen |= 1u << i;
    }
    return 0;
}
