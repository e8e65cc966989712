/*
 * resolve_log: an LD_PRELOAD library for the tests that appends the host
 * name of every getaddrinfo call to the file TH_RESOLVE_LOG names, one a
 * line, then resolves it as the next getaddrinfo would (ASan's, then
 * libc's). A test reads the file to know, without timing anything, whether
 * the server resolved a name (tests/harness.h: th_server_start_resolve_log).
 *
 * Built without the sanitizers, outside $(B)/tests (run.sh would take it
 * for a test). Thread-safe: each line is one write(2) with O_APPEND, and
 * curl resolves on threads of its own.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int (*getaddrinfo_fn)(const char *, const char *, const struct addrinfo *,
                              struct addrinfo **);

static getaddrinfo_fn resolve_log_next(void) {
    static getaddrinfo_fn next;
    getaddrinfo_fn f = __atomic_load_n(&next, __ATOMIC_ACQUIRE);
    if (!f) {
        void *sym = dlsym(RTLD_NEXT, "getaddrinfo");
        memcpy(&f, &sym, sizeof f);
        __atomic_store_n(&next, f, __ATOMIC_RELEASE);
    }
    return f;
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res) {
    const char *path = getenv("TH_RESOLVE_LOG");
    if (path && *path && node) {
        char line[1024];
        size_t n = strnlen(node, sizeof line - 1);
        memcpy(line, node, n);
        line[n++] = '\n';
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0) {
            if (write(fd, line, n) < 0) {
                /* nothing to do: the test then misses the line and says so */
            }
            close(fd);
        }
    }
    getaddrinfo_fn f = resolve_log_next();
    return f ? f(node, service, hints, res) : EAI_SYSTEM;
}
