/*
 * http_head: reads the head of an HTTP/1.1 request for the fast path
 * (http_fast.c), without I/O.
 *
 * It accepts only the plainest requests: GET or POST, a path with no
 * query, no percent-escape and no '+', version HTTP/1.1, one Host of a
 * host and an optional port, header lines of token names and
 * visible-ASCII values ended by CRLF (with no white space at a value's
 * end), a body framed by one Content-Length of decimal digits or none, and
 * no Transfer-Encoding, Expect or Upgrade. Everything else is HEAD_PASS:
 * not refused, but handed to libmicrohttpd, which serves or refuses it as
 * it always has. So the fast path never has to be right about an unusual
 * request; it only has to recognise the usual one.
 *
 * Except for what libmicrohttpd 0.9.75 cannot be handed, which is
 * HEAD_BAD, refused by the fast path itself: a NUL in a field line (its
 * copy of a line ends there, unseen: a value is cut short, and a line
 * that starts with one ends the head), a value with another control
 * character but tab (refused on its side too, but with a NUL before or
 * after it would not be), and a folded line (obs-fold, which it adds to
 * the field's name, so the field is lost under another; RFC 9112 5.2
 * allows the 400). To find these, a head that is not plain is read on to
 * its end, unless a line of it is one libmicrohttpd answers at once, or
 * cannot be split as it splits it: then it is passed on when that line is
 * in.
 */
#ifndef TASKMILL_HTTP_HEAD_H
#define TASKMILL_HTTP_HEAD_H

#include <stdbool.h>
#include <stddef.h>

enum http_head_result {
    HEAD_PARTIAL, /* the head is not all there yet */
    HEAD_OK,      /* a plain request: the fields below are set */
    HEAD_PASS,    /* not one the fast path serves: hand the connection on */
    HEAD_BAD,     /* a field line the fast path refuses: method, target, bad, bad_name set */
};

/* Why a head is HEAD_BAD. */
enum http_head_bad {
    HEAD_BAD_CTL,      /* a value holds a control character but tab */
    HEAD_BAD_NUL_NAME, /* a NUL before the colon (bad_name: what comes before it) */
    HEAD_BAD_FOLD,     /* obs-fold: a line that goes on the field before (bad_name) */
};

#define HTTP_HEAD_FIELDS_MAX 32

/* A piece of the input: offset and length (the input may move). */
struct http_span {
    size_t off, len;
};

struct http_head {
    struct http_span method, path;
    struct http_span target;   /* the request target as sent (set for HEAD_BAD too) */
    enum http_head_bad bad;    /* HEAD_BAD: why */
    struct http_span bad_name; /* HEAD_BAD: the field refused */
    struct http_span name[HTTP_HEAD_FIELDS_MAX], value[HTTP_HEAD_FIELDS_MAX];
    int nfields;
    size_t head_len;       /* through the blank line */
    size_t content_length; /* 0 when there is none */
    bool close;            /* "Connection: close": close after the reply */
};

/*
 * Reads the head at p[0..n). HEAD_PARTIAL while no blank line has come,
 * n < head_max and each line in is one of a plain head (a line that is
 * not makes it HEAD_PASS at once). A head of head_max bytes or more
 * without a blank line, one that counts more than head_max as
 * libmicrohttpd's side counts it (the request line, and each field as
 * "Name: value" CRLF), or a Content-Length over body_max, is HEAD_PASS.
 * Values lose their leading spaces and tabs; a value with trailing ones
 * is HEAD_PASS (libmicrohttpd keeps them). A value with a control
 * character (but tab; a bare CR ends the line as libmicrohttpd does not,
 * so that is HEAD_PASS, and libmicrohttpd's side refuses it) is HEAD_BAD
 * once its line is in, whatever the rest of the head; so is a NUL before a
 * line's colon, or in a line without one.
 */
enum http_head_result http_head_parse(const char *p, size_t n, size_t head_max, size_t body_max,
                                      struct http_head *h);

/* Whether s[0..n) is a Host value (RFC 9112 3.2), or an absolute-form
 * target's authority: uri-host [":" port] (RFC 3986 3.2.2, 3.2.3), where
 * uri-host is an IPv6 address in brackets or a name (an IPv4 address is
 * one too) and port is digits, maybe none; no userinfo (RFC 9110 4.2.4). */
bool http_host_valid(const char *s, size_t n);

#endif
