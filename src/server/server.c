/*
 * server: starting and stopping a server (server.h): the store, auth, the
 * event hub, the webhook senders, the listening socket and the HTTP daemon
 * (http.c), in that order, and back in reverse. http.c is the HTTP glue
 * only: requests, routes and replies.
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/xalloc.h"
#include "event_hub.h"
#include "server_int.h"
#include "v1_decode.h"
#include "webhook.h"

/* Binds host:port (port 0 picks a free one); returns the socket or -1.
 * With reuse_port, other processes may bind the same port (SO_REUSEPORT)
 * and the kernel spreads new connections over them. */
static int server_listen(const char *listen_addr, bool reuse_port, char *bound, size_t boundlen) {
    char host[256];
    const char *colon = strrchr(listen_addr, ':');
    /* PORT is 1 to 5 digits up to 65535: getaddrinfo takes more ("99999" wrapped to
     * 34463, an empty one is 0: a port no one asked for) and service names. */
    size_t ndig = colon ? strspn(colon + 1, "0123456789") : 0;
    if (!colon || colon == listen_addr || ndig == 0 || ndig > 5 || colon[1 + ndig] != '\0' ||
        atoi(colon + 1) > 65535) {
        fprintf(stderr,
                "taskmill: --listen wants HOST:PORT with PORT a number from 0 to 65535 (0 picks "
                "a free one), got '%s'\n",
                listen_addr);
        return -1;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen_addr), listen_addr);
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int gai = getaddrinfo(host, colon + 1, &hints, &ai);
    if (gai) {
        fprintf(stderr, "taskmill: cannot resolve '%s': %s\n", listen_addr, gai_strerror(gai));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd >= 0 && reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 1024)) {
        fprintf(stderr, "taskmill: cannot listen on '%s': %s\n", listen_addr, strerror(errno));
        if (fd >= 0) close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    char addr[INET6_ADDRSTRLEN];
    int port;
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof addr);
        port = ntohs(s6->sin6_port);
        snprintf(bound, boundlen, "[%s]:%d", addr, port);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof addr);
        port = ntohs(s4->sin_port);
        snprintf(bound, boundlen, "%s:%d", addr, port);
    }
    return fd;
}

/* Reads a whole (small) file into a NUL-terminated string, or NULL. */
static char *server_read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    struct buf b;
    buf_init(&b);
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0 && b.len < (1u << 20))
        buf_put(&b, tmp, n);
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad) {
        buf_release(&b);
        return NULL;
    }
    return b.p ? buf_detach(&b) : xstrdup("");
}

/* The tasks that schedules launch are decoded as a submit is (store_options.make_task). */
static int server_make_task(void *cls, json_t *body, const char *ns, struct task **out,
                            struct tm_error *e) {
    struct server *srv = cls;
    return v1_decode_task(body, &srv->cfg.limits, ns, out, e);
}

/* TLS material, when configured: 0, or -1 with a message. */
static int server_load_tls(struct server *srv) {
    const struct server_config *cfg = &srv->cfg;
    if (!cfg->tls_cert_path && !cfg->tls_key_path) return 0;
    if (!cfg->tls_cert_path || !cfg->tls_key_path) {
        fprintf(stderr, "taskmill: TLS needs both '--tls-cert' and '--tls-key'\n");
        return -1;
    }
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        fprintf(stderr, "taskmill: this libmicrohttpd was built without TLS\n");
        return -1;
    }
    srv->tls_cert = server_read_file(cfg->tls_cert_path);
    srv->tls_key = server_read_file(cfg->tls_key_path);
    if (!srv->tls_cert || !srv->tls_key) {
        fprintf(stderr, "taskmill: cannot read '%s': %s\n",
                srv->tls_cert ? cfg->tls_key_path : cfg->tls_cert_path, strerror(errno));
        return -1;
    }
    /* GnuTLS's own words for a file of the wrong kind ("The requested data were not
     * available") name neither file. */
    if (!strstr(srv->tls_cert, "-----BEGIN CERTIFICATE-----")) {
        fprintf(
            stderr,
            "taskmill: '--tls-cert %s' holds no PEM certificate (-----BEGIN CERTIFICATE-----)\n",
            cfg->tls_cert_path);
        return -1;
    }
    if (!strstr(srv->tls_key, "-----BEGIN") || !strstr(srv->tls_key, "PRIVATE KEY-----")) {
        fprintf(
            stderr,
            "taskmill: '--tls-key %s' holds no PEM private key (-----BEGIN ... PRIVATE KEY-----)\n",
            cfg->tls_key_path);
        return -1;
    }
    /* A key every user of the host can read is no longer the server's
     * alone: refused, as ssh and PostgreSQL refuse theirs. A group may
     * read it (Debian's ssl-cert). */
    struct stat st;
    if (stat(cfg->tls_key_path, &st) == 0 && (st.st_mode & S_IRWXO)) {
        fprintf(stderr,
                "taskmill: '--tls-key %s' is open to every user of this host (mode %04o); "
                "'chmod o-rwx' it (600, or 640 for a group such as ssl-cert)\n",
                cfg->tls_key_path, (unsigned)(st.st_mode & 07777));
        return -1;
    }
    return 0;
}

static void server_free(struct server *srv) {
    if (srv->listen_fd >= 0) close(srv->listen_fd);
    auth_watch_stop(srv);
    event_hub_stop(srv->hub);
    webhook_sender_stop(srv->webhooks);
    store_close(srv->store);
    conn_limit_release(srv);
    event_hub_free(srv->hub);
    webhook_sender_free(srv->webhooks);
    auth_release(srv);
    key_table_release(&srv->token_waiters);
    key_table_release(&srv->token_unsent);
    pthread_mutex_destroy(&srv->wait_lock);
    if (srv->tls_key) memset(srv->tls_key, 0, strlen(srv->tls_key));
    free(srv->tls_key);
    free(srv->tls_cert);
    free(srv);
}

int server_start(const struct server_config *cfg, struct server **out) {
    struct server *srv = xcalloc(1, sizeof *srv);
    key_table_init(&srv->token_waiters, 64);
    key_table_init(&srv->token_unsent, 64);
    pthread_mutex_init(&srv->wait_lock, NULL);
    LIST_INIT(&srv->wait_list);
    srv->cfg = *cfg;
    conn_limit_init(srv);
    srv->listen_fd = -1;
    struct tm_error e;
    err_clear(&e);
    if (srv->cfg.events.task_max_bytes <= 0)
        srv->cfg.events.task_max_bytes = STORE_EVENT_TASK_MAX_BYTES;
    struct store_options so = {
        .relaxed = cfg->relaxed,
        .relaxed_flush_ms = cfg->relaxed_flush_ms > 0 ? cfg->relaxed_flush_ms : -1,
        .sqlite_exclusive = cfg->sqlite_exclusive,
        .sole_server = true,
        .events_max_age_ms = cfg->events.max_age_ms,
        .events_max_count = cfg->events.max_count,
        .event_task_max_bytes = (size_t)srv->cfg.events.task_max_bytes,
        .attributes_max_keys = cfg->limits.attributes_max_keys,
        .attributes_max_bytes = cfg->limits.attributes_max_bytes,
        .webhooks_max = cfg->limits.webhooks_max,
        .query_timeout_ms = cfg->limits.query_timeout_ms,
        .finished_max_age_ms = (int64_t)cfg->limits.finished_max_age_seconds * 1000,
        .read_cache_bytes = cfg->read_cache_mb > 0 ? (int64_t)cfg->read_cache_mb << 20 : -1,
        .make_task = server_make_task,
        .make_task_cls = srv};
    if (server_load_tls(srv)) goto fail;
    if (store_open(cfg->store_url, &so, &srv->store, &e)) {
        fprintf(stderr, "taskmill: %s\n", e.message);
        goto fail;
    }
    if (auth_init(srv)) goto fail;
    srv->webhooks = webhook_sender_new(srv->store, &cfg->events);
    srv->hub = event_hub_new(srv->store, &cfg->events, cfg->limits.streams_max,
                             cfg->limits.streams_per_token_max, webhook_sender_wake, srv->webhooks);
    if (auth_watch_start(srv)) goto fail;
    char bound[300];
    srv->listen_fd = server_listen(cfg->listen, cfg->reuse_port, bound, sizeof bound);
    if (srv->listen_fd < 0) goto fail;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    bool loopback = getsockname(srv->listen_fd, (struct sockaddr *)&ss, &sl) == 0 &&
                    auth_addr_is_loopback((struct sockaddr *)&ss);
    bool open_mode = !atomic_load(&srv->auth_on);
    /* The command that makes a token in this store: 'taskmill token' reads
     * ./taskmill.db unless told otherwise. */
    char create[640];
    const char *shown = cfg->store_shown ? cfg->store_shown : cfg->store_url;
    if (!shown || strcmp(shown, "sqlite:./taskmill.db") == 0)
        snprintf(create, sizeof create, "taskmill token create");
    else if (shown[strspn(shown,
                          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                          "_./:@%=+,-")] == '\0')
        snprintf(create, sizeof create, "taskmill token create --store %s", shown);
    else
        snprintf(create, sizeof create, "taskmill token create --store \"%s\"", shown);
    if (open_mode && !loopback && !cfg->insecure_no_auth) {
        fprintf(stderr,
                "taskmill: refusing to listen on '%s' without authentication: the store holds "
                "no API token. Create one ('%s --role admin --namespace default'), listen on "
                "127.0.0.1, or pass '--insecure-no-auth'\n",
                cfg->listen, create);
        goto fail;
    }
    if (http_daemon_start(srv)) goto fail;
    printf("taskmill listening on %s://%s\n", srv->tls_cert ? "https" : "http", bound);
    fflush(stdout);
    char create_or_post[700];
    snprintf(create_or_post, sizeof create_or_post, "'%s', or POST /v1/tokens", create);
    if (open_mode)
        fprintf(stderr,
                "taskmill: no API token in the store: authentication is off%s until "
                "one is created (%s)\n",
                loopback ? " and only this host (loopback) can connect"
                         : " (--insecure-no-auth: ANYONE who can reach this address is admin)",
                cfg->sqlite_exclusive ? "POST /v1/tokens: with --sqlite-exclusive no other "
                                        "process, 'taskmill token' included, can open the store"
                                      : create_or_post);
    else
        fprintf(stderr, "taskmill: authentication on: every request needs a bearer token\n");
    *out = srv;
    return 0;
fail:
    server_free(srv);
    return -1;
}

void server_stop(struct server *srv) {
    if (!srv) return;
    /* New requests get 503 from here on. Not MHD_quiesce_daemon: in
     * libmicrohttpd 0.9.75 it races its own epoll workers removing the listen
     * socket, and the loser aborts the process ("Failed to remove listen FD
     * from epoll set"). */
    atomic_store(&srv->stopping, true);
    auth_watch_stop(srv);
    /* Event streams end; the webhook sender stops before the store it writes to. */
    event_hub_stop(srv->hub);
    webhook_sender_stop(srv->webhooks);
    /* Parked claims and long-polls are answered; their connections resume. */
    store_stop(srv->store);
    usleep(100 * 1000);
    http_daemon_stop(srv);
    server_free(srv);
}
