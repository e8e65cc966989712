/*
 * utf8: well-formed UTF-8, checked as jansson checks its input (a lead
 * byte 0xC2..0xF4, continuation bytes 0x80..0xBF, no overlong form, no
 * surrogate, nothing past U+10FFFF).
 *
 * Error messages quote what a client sent with printf's "%.64s", and a
 * message buffer has a fixed size: either can cut a multi-byte character
 * in two. Every reply body must still be UTF-8 (JSON, RFC 8259 section
 * 8.1; XML 1.0), so err_set scrubs what it formats.
 */
#ifndef TASKMILL_UTF8_H
#define TASKMILL_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* The length of the character at s (s < end): 1 for a byte below 0x80, 2
 * to 4 for a well-formed sequence ending at or before end, 0 when none
 * starts there. */
size_t utf8_char_len(const char *s, const char *end);
/* Whether the n bytes at s are well-formed UTF-8 (a NUL counts as one). */
bool utf8_valid(const char *s, size_t n);
/* Replaces, in place, each of the n bytes of s that is a NUL or starts no
 * well-formed character with '?': what is left is a string of n bytes
 * jansson takes (binary output, a line cut inside a character). */
void utf8_scrub_n(char *s, size_t n);
/* utf8_scrub_n on the string s. Returns s. */
char *utf8_scrub(char *s);

#endif
