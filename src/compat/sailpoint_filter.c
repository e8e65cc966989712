/*
 * sailpoint_filter: see sailpoint_filter.h. A hand-written tokenizer and
 * recursive-descent parser over a byte range; recursion is bounded by
 * FILTER_MAX_DEPTH and the tree by FILTER_MAX_NODES / FILTER_MAX_VALUES,
 * so hostile input costs at most SAILPOINT_FILTER_MAX_BYTES of work.
 * Pure and thread-safe. On error nothing is returned: the partial tree is
 * freed here.
 */
#include "sailpoint_filter.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/buf.h"
#include "../common/timeutil.h"
#include "../common/xalloc.h"

enum sp_tok { SP_END, SP_LPAREN, SP_RPAREN, SP_COMMA, SP_STRING, SP_WORD, SP_BAD };

struct sp_parser {
    const char *p, *end, *start;
    enum sp_tok tok;
    struct buf text; /* the token's text (strings unescaped) */
    size_t tok_at;   /* offset of the token */
    int depth, nodes, values;
    struct tm_error *e;
};

static int sp_fail(struct sp_parser *ps, const char *what) {
    char near[40];
    size_t n = ps->text.len < 24 ? ps->text.len : 24;
    if (ps->tok == SP_END)
        snprintf(near, sizeof near, "the end");
    else
        snprintf(near, sizeof near, "'%.*s'", (int)n, ps->text.p ? ps->text.p : "");
    for (char *c = near; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f) *c = '?';
    return err_set(ps->e, TM_EINVALID, "filters", "'filters' is not valid: %s at offset %zu (%s)",
                   what, ps->tok_at, near);
}

static bool sp_is_word_char(unsigned char c) {
    return c > ' ' && c != '(' && c != ')' && c != ',' && c != '"' && c != 0x7f;
}

/* Reads the next token into ps->tok / ps->text. */
static void sp_next(struct sp_parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
    buf_clear(&ps->text);
    ps->tok_at = (size_t)(ps->p - ps->start);
    if (ps->p == ps->end) {
        ps->tok = SP_END;
        return;
    }
    char c = *ps->p;
    if (c == '(' || c == ')' || c == ',') {
        ps->tok = c == '(' ? SP_LPAREN : c == ')' ? SP_RPAREN : SP_COMMA;
        buf_putc(&ps->text, c);
        ps->p++;
        return;
    }
    if (c == '"') {
        ps->p++;
        while (ps->p < ps->end && *ps->p != '"') {
            if (*ps->p == '\\' && ps->p + 1 < ps->end) ps->p++;
            if (*ps->p == '\0') {
                ps->tok = SP_BAD;
                return;
            }
            buf_putc(&ps->text, *ps->p++);
        }
        if (ps->p == ps->end) {
            ps->tok = SP_BAD; /* unterminated */
            return;
        }
        ps->p++;
        ps->tok = SP_STRING;
        if (!ps->text.p) buf_puts(&ps->text, "");
        return;
    }
    if (!sp_is_word_char((unsigned char)c)) {
        buf_putc(&ps->text, c);
        ps->p++;
        ps->tok = SP_BAD;
        return;
    }
    while (ps->p < ps->end && sp_is_word_char((unsigned char)*ps->p))
        buf_putc(&ps->text, *ps->p++);
    ps->tok = SP_WORD;
}

static bool sp_word_is(const struct sp_parser *ps, const char *w) {
    return ps->tok == SP_WORD && strcmp(ps->text.p, w) == 0;
}

static bool sp_is_field_name(const char *s) {
    if (!isalpha((unsigned char)*s) && *s != '_') return false;
    for (s++; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.') return false;
    return true;
}

static bool sp_is_number(const char *s, bool *integral) {
    const char *p = s;
    *integral = true;
    if (*p == '-' || *p == '+') p++;
    if (!isdigit((unsigned char)*p)) return false;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p == '.') {
        *integral = false;
        p++;
        if (!isdigit((unsigned char)*p)) return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        *integral = false;
        p++;
        if (*p == '-' || *p == '+') p++;
        if (!isdigit((unsigned char)*p)) return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    return *p == '\0';
}

/* Reads the current token as a value into v and moves on. */
static int sp_value(struct sp_parser *ps, struct filter_value *v) {
    if (++ps->values > FILTER_MAX_VALUES) return sp_fail(ps, "too many values");
    memset(v, 0, sizeof *v);
    if (ps->tok == SP_STRING) {
        v->kind = FILTER_VAL_STR;
        v->str = xstrdup(ps->text.p);
        sp_next(ps);
        return 0;
    }
    if (ps->tok == SP_BAD) return sp_fail(ps, "unterminated string or unexpected character");
    if (ps->tok != SP_WORD) return sp_fail(ps, "expected a value");
    const char *w = ps->text.p;
    bool integral;
    if (strcmp(w, "true") == 0 || strcmp(w, "false") == 0) {
        v->kind = FILTER_VAL_BOOL;
        v->i = w[0] == 't';
    } else if (strcmp(w, "null") == 0) {
        v->kind = FILTER_VAL_NULL;
    } else if (sp_is_number(w, &integral)) {
        errno = 0;
        if (integral) {
            v->kind = FILTER_VAL_INT;
            v->i = strtoll(w, NULL, 10);
        } else {
            v->kind = FILTER_VAL_REAL;
            v->d = strtod(w, NULL);
        }
        if (errno == ERANGE) return sp_fail(ps, "number out of range");
    } else if (strlen(w) >= 10 && isdigit((unsigned char)w[0]) && w[4] == '-') {
        char tmp[64];
        if (strlen(w) == 10)
            snprintf(tmp, sizeof tmp, "%sT00:00:00Z", w);
        else
            snprintf(tmp, sizeof tmp, "%.63s", w);
        if (strlen(w) >= sizeof tmp || time_parse_rfc3339(tmp, &v->i))
            return sp_fail(ps, "not a valid date-time");
        v->kind = FILTER_VAL_TIME;
    } else {
        return sp_fail(ps,
                       "an unquoted value must be a number, true, false, null or a "
                       "date-time; quote strings");
    }
    sp_next(ps);
    return 0;
}

static int sp_or(struct sp_parser *ps, struct filter_expr **out);

static struct filter_expr *sp_node(struct sp_parser *ps, enum filter_op op) {
    if (++ps->nodes > FILTER_MAX_NODES) return NULL;
    return filter_expr_new(op);
}

static const struct {
    const char *name;
    enum filter_op op;
} sp_ops[] = {
    {"eq", FILTER_EQ}, {"ne", FILTER_NE}, {"gt", FILTER_GT},         {"ge", FILTER_GE},
    {"lt", FILTER_LT}, {"le", FILTER_LE}, {"sw", FILTER_SW},         {"co", FILTER_CO},
    {"in", FILTER_IN}, {"ca", FILTER_CA}, {"isnull", FILTER_ISNULL}, {"pr", FILTER_PR},
};

/* FIELD op ... */
static int sp_comparison(struct sp_parser *ps, struct filter_expr **out) {
    if (ps->tok != SP_WORD || !sp_is_field_name(ps->text.p) || sp_word_is(ps, "and") ||
        sp_word_is(ps, "or"))
        return sp_fail(ps, "expected a field name, 'not' or '('");
    char *name = xstrdup(ps->text.p);
    sp_next(ps);
    int op = -1;
    for (size_t i = 0; ps->tok == SP_WORD && i < sizeof sp_ops / sizeof sp_ops[0]; i++)
        if (strcmp(ps->text.p, sp_ops[i].name) == 0) op = (int)sp_ops[i].op;
    if (op < 0) {
        free(name);
        return sp_fail(ps,
                       "expected an operator (eq, ne, gt, ge, lt, le, sw, co, in, ca, "
                       "isnull, pr)");
    }
    struct filter_expr *x = sp_node(ps, (enum filter_op)op);
    if (!x) {
        free(name);
        return sp_fail(ps, "the filter is too long");
    }
    x->name = name;
    x->nocase = true;
    sp_next(ps);
    int rc = 0;
    if (op == FILTER_IN || op == FILTER_CA) {
        if (ps->tok != SP_LPAREN) {
            rc = sp_fail(ps, "expected '(' and a list of values");
            goto out;
        }
        sp_next(ps);
        size_t cap = 0;
        for (;;) {
            if (x->nvalues == cap) {
                cap = cap ? cap * 2 : 4;
                x->values = xrealloc(x->values, cap * sizeof *x->values);
            }
            x->nvalues++;
            if ((rc = sp_value(ps, &x->values[x->nvalues - 1]))) {
                x->nvalues--;
                goto out;
            }
            if (ps->tok == SP_RPAREN) break;
            if (ps->tok != SP_COMMA) {
                rc = sp_fail(ps, "expected ',' or ')'");
                goto out;
            }
            sp_next(ps);
        }
        sp_next(ps);
    } else if (op != FILTER_ISNULL && op != FILTER_PR) {
        x->values = xcalloc(1, sizeof *x->values);
        x->nvalues = 1;
        if ((rc = sp_value(ps, &x->values[0]))) {
            x->nvalues = 0;
            goto out;
        }
    }
out:
    if (rc) {
        filter_expr_free(x);
        return rc;
    }
    *out = x;
    return 0;
}

static int sp_not(struct sp_parser *ps, struct filter_expr **out) {
    if (++ps->depth > FILTER_MAX_DEPTH) return sp_fail(ps, "nested too deeply");
    int rc;
    if (sp_word_is(ps, "not")) {
        sp_next(ps);
        struct filter_expr *inner = NULL;
        if ((rc = sp_not(ps, &inner))) goto out;
        struct filter_expr *x = sp_node(ps, FILTER_NOT);
        if (!x) {
            filter_expr_free(inner);
            rc = sp_fail(ps, "the filter is too long");
            goto out;
        }
        x->left = inner;
        *out = x;
    } else if (ps->tok == SP_LPAREN) {
        sp_next(ps);
        if ((rc = sp_or(ps, out))) goto out;
        if (ps->tok != SP_RPAREN) {
            filter_expr_free(*out);
            *out = NULL;
            rc = sp_fail(ps, "expected ')'");
            goto out;
        }
        sp_next(ps);
    } else {
        rc = sp_comparison(ps, out);
    }
out:
    ps->depth--;
    return rc;
}

/* One level of a left-associative binary operator: and (over not) or or (over and). */
static int sp_binary(struct sp_parser *ps, struct filter_expr **out, const char *word,
                     enum filter_op op, int (*sub)(struct sp_parser *, struct filter_expr **)) {
    struct filter_expr *left = NULL;
    int rc = sub(ps, &left);
    if (rc) return rc;
    while (sp_word_is(ps, word)) {
        sp_next(ps);
        struct filter_expr *right = NULL;
        if ((rc = sub(ps, &right))) {
            filter_expr_free(left);
            return rc;
        }
        struct filter_expr *x = sp_node(ps, op);
        if (!x) {
            filter_expr_free(left);
            filter_expr_free(right);
            return sp_fail(ps, "the filter is too long");
        }
        x->left = left;
        x->right = right;
        left = x;
    }
    *out = left;
    return 0;
}

static int sp_and(struct sp_parser *ps, struct filter_expr **out) {
    return sp_binary(ps, out, "and", FILTER_AND, sp_not);
}

static int sp_or(struct sp_parser *ps, struct filter_expr **out) {
    return sp_binary(ps, out, "or", FILTER_OR, sp_and);
}

int sailpoint_filter_parse(const char *s, size_t n, struct filter_expr **out, struct tm_error *e) {
    *out = NULL;
    if (n > SAILPOINT_FILTER_MAX_BYTES)
        return err_set(e, TM_EINVALID, "filters", "'filters' is longer than %d bytes",
                       SAILPOINT_FILTER_MAX_BYTES);
    struct sp_parser ps = {.p = s, .end = s + n, .start = s, .e = e};
    buf_init(&ps.text);
    sp_next(&ps);
    int rc;
    if (ps.tok == SP_END) {
        rc = sp_fail(&ps, "the filter is empty");
        goto out;
    }
    if ((rc = sp_or(&ps, out))) goto out;
    if (ps.tok != SP_END) {
        filter_expr_free(*out);
        *out = NULL;
        rc = sp_fail(&ps, ps.tok == SP_BAD ? "unexpected or unterminated text"
                                           : "expected 'and', 'or' or the end");
    }
out:
    buf_release(&ps.text);
    return rc;
}

int sailpoint_sorters_parse(const char *s, bool *ascending, struct tm_error *e) {
    const char *p = s;
    bool any = false;
    do {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && (*p == ' '))
            p++, len--;
        while (len && p[len - 1] == ' ')
            len--;
        bool desc = len && *p == '-';
        if (len == (desc ? 8u : 7u) && memcmp(p + desc, "created", 7) == 0) {
            *ascending = !desc;
            any = true;
        } else {
            char shown[40];
            snprintf(shown, sizeof shown, "%.*s", (int)(len < 32 ? len : 32), p);
            for (char *c = shown; *c; c++)
                if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f) *c = '?';
            return err_set(e, TM_EINVALID, "sorters",
                           "sorter '%.64s' is not supported; use 'created' or '-created'", shown);
        }
        p = comma ? comma + 1 : NULL;
    } while (p);
    return any ? 0 : err_set(e, TM_EINVALID, "sorters", "'sorters' is empty");
}
