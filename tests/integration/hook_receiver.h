/*
 * hook_receiver.h: what the webhook tests' receivers share: a listening
 * loopback socket, a way to wake its accept(), reading one request, and
 * checking a delivery's Livepeer-Signature as a receiver would
 * (docs/events.md).
 */
#ifndef TASKMILL_TEST_HOOK_RECEIVER_H
#define TASKMILL_TEST_HOOK_RECEIVER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* A socket listening on a free loopback port (*port), or -1. */
static inline int listen_loopback(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 64)) {
        close(fd);
        return -1;
    }
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* Wakes a thread blocked in accept() on loopback port `port` with a connection of our own. */
static inline void wake_accept(int port) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(c, (struct sockaddr *)&sa, sizeof sa)) {
    }
    close(c);
}

/* Reads one request (headers and a Content-Length body) from c; its bytes in
 * buf (NUL-terminated), the body's offset and length out. False when cut. */
static inline bool read_request(int c, char *buf, size_t cap, size_t *body_at, size_t *body_len) {
    size_t len = 0;
    while (len < cap - 1) {
        ssize_t n = read(c, buf + len, cap - 1 - len);
        if (n <= 0) return false;
        len += (size_t)n;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (!end) continue;
        char *cl = strcasestr(buf, "\r\ncontent-length:");
        size_t clen = cl ? strtoul(cl + 17, NULL, 10) : 0;
        size_t at = (size_t)(end + 4 - buf);
        if (len - at >= clen) {
            *body_at = at;
            *body_len = clen;
            return true;
        }
    }
    return false;
}

/* Whether sig ("t=<ms>,v1=<hex>") is the HMAC-SHA256 of body under secret;
 * *t gets its timestamp (t may be NULL). */
static inline bool signature_ok(const char *secret, const char *sig, const char *body, size_t len,
                                long long *t) {
    long long ts = 0;
    char hex[65] = "";
    if (!sig || sscanf(sig, "t=%lld,v1=%64s", &ts, hex) != 2) return false;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, len, mac, &n);
    char want[65];
    for (unsigned i = 0; i < n; i++)
        snprintf(want + 2 * i, 3, "%02x", mac[i]);
    if (t) *t = ts;
    return CRYPTO_memcmp(want, hex, 64) == 0;
}

#endif
