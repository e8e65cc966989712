/*
 * The webhook destination checks alone: the address classifier
 * (webhook_addr_is_private and its IPv4 and IPv6 halves), which runs on
 * every connection a delivery opens, and webhook_url_check, which sees
 * only the URL's syntax and literal addresses and never resolves a name.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

#include "../src/server/webhook.h"
#include "harness.h"

/* Whether the classifier refuses a textual address (v4 or v6). */
static int addr_private(const char *text) {
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    if (inet_pton(AF_INET, text, &v4.sin_addr) == 1)
        return webhook_addr_is_private((struct sockaddr *)&v4);
    if (inet_pton(AF_INET6, text, &v6.sin6_addr) == 1)
        return webhook_addr_is_private((struct sockaddr *)&v6);
    return -1;
}

static void test_private_ranges(void) {
    static const char *const refused[] = {
        "0.0.0.0", "0.1.2.3", "10.0.0.1", "100.64.0.1", "100.127.255.254", "127.0.0.1",
        "127.255.255.255", "169.254.169.254", "172.16.0.1", "172.31.255.255", "192.0.0.1",
        "192.0.0.170", "192.0.2.5", "192.88.99.1", "192.168.1.1", "198.18.0.1", "198.19.255.255",
        "198.51.100.7", "203.0.113.9", "224.0.0.1", "239.255.255.250", "240.0.0.1",
        "255.255.255.255",
        /* IPv6 */
        "::", "::1", "::127.0.0.1", "::8.8.8.8", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
        "::ffff:0:127.0.0.1", "64:ff9b::127.0.0.1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::1",
        "2002:7f00:1::", "2002:a9fe:a9fe::1", "2002:c0a8:101::", "2001::1", "2001:0:4136:e378::1",
        "2001:db8::1", "3fff::1", "100::1", "5f00::1", "fc00::1", "fd12:3456::1", "fe80::1",
        "febf::1", "fec0::1", "feff::1", "ff02::1", "ff0e::1"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        if (addr_private(refused[i]) != 1) {
            th_fail(__FILE__, __LINE__, "'%s' should be private", refused[i]);
            return;
        }
    }
}

static void test_public_ranges(void) {
    static const char *const allowed[] = {"1.1.1.1",
                                          "8.8.8.8",
                                          "100.63.255.255",
                                          "100.128.0.1",
                                          "172.15.255.255",
                                          "172.32.0.1",
                                          "192.0.1.1",
                                          "192.169.0.1",
                                          "198.17.255.255",
                                          "198.20.0.1",
                                          "223.255.255.255",
                                          "::ffff:8.8.8.8",
                                          "64:ff9b::808:808",
                                          "2002:808:808::1",
                                          "2606:4700:4700::1111",
                                          "2a00:1450:4001::200e",
                                          "2001:4860:4860::8888"};
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        if (addr_private(allowed[i]) != 0) {
            th_fail(__FILE__, __LINE__, "'%s' should be public", allowed[i]);
            return;
        }
    }
    struct sockaddr other = {.sa_family = AF_UNIX};
    CHECK(webhook_addr_is_private(&other));
}

static void test_url_check_is_syntax_and_literals(void) {
    struct tm_error e;
    static const char *const refused[] = {
        "ftp://example.com/",
        "http://",
        "http://127.0.0.1/",
        "http://127.1/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://[::1]:8080/x",
        "http://[::127.0.0.1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[64:ff9b::7f00:1]/",
        "http://[2002:7f00:1::]/",
        "http://[fec0::1]/",
        "http://[fe80::1%25eth0]/",
        "http://198.18.0.1/",
        "http://192.0.0.8/",
        "http://localhost:8080/",
        "http://LOCALHOST./",
        "http://a.b.localhost/",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        err_clear(&e);
        if (webhook_url_check(refused[i], false, &e) != TM_EINVALID ||
            strcmp(e.field, "url") != 0) {
            th_fail(__FILE__, __LINE__, "'%s' should be refused", refused[i]);
            return;
        }
    }
    /* Names are not resolved: one that does not exist is accepted here and
     * checked (and failed) when a delivery connects. */
    static const char *const allowed[] = {
        "https://hooks.example.com/x",
        "http://does-not-exist.invalid/hook",
        "http://8.8.8.8/",
        "http://[2606:4700:4700::1111]:443/",
        "http://notlocalhost/",
    };
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        err_clear(&e);
        if (webhook_url_check(allowed[i], false, &e) != 0) {
            th_fail(__FILE__, __LINE__, "'%s' should be accepted: %s", allowed[i], e.message);
            return;
        }
    }
    err_clear(&e);
    CHECK_INT(webhook_url_check("http://127.0.0.1:9/", true, &e), 0);
    CHECK_INT(webhook_url_check("ftp://127.0.0.1:9/", true, &e), TM_EINVALID);
}

static const struct th_test tests[] = {
    {"loopback, private and special ranges are refused", test_private_ranges},
    {"public unicast is allowed, embedded IPv4 decides", test_public_ranges},
    {"the URL check reads syntax and literal addresses only",
     test_url_check_is_syntax_and_literals},
    {NULL, NULL},
};

int main(int argc, char **argv) {
    return th_main(tests, argc, argv);
}
