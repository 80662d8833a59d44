/* server: the listening socket, accepting until EAGAIN, shedding load when
 * out of file descriptors (a reserve fd), the live/pending/dead connection
 * lists, the route table, and the work done before each wait: flush pending
 * output, then free connections closed during the iteration. */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

static void before_wait(struct loop *l, void *data);

static int listen_on(const struct config *cfg)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *res;
    char port[16];
    snprintf(port, sizeof(port), "%d", cfg->port);
    int rc = getaddrinfo(cfg->host, port, &hints, &res);
    if (rc != 0) {
        log_msg(LOG_ERROR, "listen failed host=%s error=\"%s\"", cfg->host, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 4096) < 0) {
        log_msg(LOG_ERROR, "listen failed host=%s port=%d error=\"%s\"", cfg->host, cfg->port, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* Answers a connection we will not serve with a 503 and closes it, logging
 * at most once a second. */
static void refuse(struct server *srv, int fd, const char *why)
{
    uint64_t now = loop_now(srv->loop);
    if (srv->fd_warned_ms == 0 || now - srv->fd_warned_ms >= 1000) {
        log_msg(LOG_WARN, "refusing connections status=503 reason=\"%s\" open=%zu", why, srv->nconns);
        srv->fd_warned_ms = now;
    }
    char response[256];
    int n = snprintf(response, sizeof(response),
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
                     strlen(why) + 1, why);
    send(fd, response, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    close(fd);
    srv->stats.accepted++;
    srv->stats.closed[STATS_CLOSE_LIMIT]++;
}

/* Out of descriptors: give up the reserve fd, accept one waiting connection,
 * refuse it, then take the reserve back. Returns 0 if one was shed. */
static int shed_one(struct server *srv)
{
    if (srv->reserve_fd < 0)
        return -1;
    close(srv->reserve_fd);
    int fd = accept4(srv->listener.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0)
        refuse(srv, fd, "server is out of file descriptors");
    srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return fd >= 0 ? 0 : -1;
}

static void on_accept(struct loop *l, struct loop_io *io, uint32_t events)
{
    (void)l;
    (void)events;
    struct server *srv = container_of(io, struct server, listener);
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof(peer);
        int fd = accept4(io->fd, (struct sockaddr *)&peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if ((errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) &&
                shed_one(srv) == 0)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_msg(LOG_WARN, "accept failed error=\"%s\"", strerror(errno));
            return;
        }
        if (srv->nconns >= srv->cfg->max_conns) {
            refuse(srv, fd, "server is at its connection limit");
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *c = conn_new(srv, fd);
        if (!c) {
            log_msg(LOG_WARN, "conn setup failed error=\"%s\"", strerror(errno));
            continue;
        }
        c->next = srv->conns;
        if (srv->conns)
            srv->conns->prev = c;
        srv->conns = c;
        srv->nconns++;
        srv->stats.accepted++;
        if (log_enabled(LOG_DEBUG)) {
            char host[64], port[16];
            if (getnameinfo((struct sockaddr *)&peer, peer_len, host, sizeof(host), port, sizeof(port),
                            NI_NUMERICHOST | NI_NUMERICSERV) != 0)
                strcpy(host, "?"), strcpy(port, "?");
            log_msg(LOG_DEBUG, "conn open fd=%d peer=%s:%s open=%zu", fd, host, port, srv->nconns);
        }
    }
}

#define HOUSEKEEPING_MS 1000
#define TRIM_FREE_BYTES (1024 * 1024)

/* After a burst (a thousand joins, a big message) the allocator keeps the freed
 * memory; give whole free pages back so RSS follows what is really in use. */
static void on_housekeeping(struct loop *l, struct loop_timer *t)
{
    struct mallinfo2 mi = mallinfo2();
    if (mi.fordblks > TRIM_FREE_BYTES)
        malloc_trim(0);
    loop_timer_after(l, t, HOUSEKEEPING_MS);
}

struct server *server_new(struct loop *loop, const struct config *cfg)
{
    struct server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return NULL;
    srv->loop = loop;
    srv->cfg = cfg;
    srv->started_ms = loop_now(loop);
    srv->pending_tail = &srv->pending;
    pool_init(&srv->conn_pool, sizeof(struct conn), 64);
    srv->static_fd = open(cfg->static_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (srv->static_fd < 0) {
        log_msg(LOG_ERROR, "static directory unreadable static=%s error=\"%s\"", cfg->static_dir, strerror(errno));
        free(srv);
        return NULL;
    }
    srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    srv->listener.fd = listen_on(cfg);
    srv->listener.cb = on_accept;
    if (srv->listener.fd < 0 || loop_io_add(loop, &srv->listener, LOOP_READ) < 0) {
        if (srv->listener.fd >= 0)
            close(srv->listener.fd);
        close(srv->static_fd);
        close(srv->reserve_fd);
        free(srv);
        return NULL;
    }
    loop_set_before_wait(loop, before_wait, srv);
    srv->housekeeping.cb = on_housekeeping;
    loop_timer_after(loop, &srv->housekeeping, HOUSEKEEPING_MS);
    return srv;
}

/* Frees closed connections, except those still on the flush list (a pass may
 * stop before reaching them): they are freed once a pass has taken them off. */
static void free_dead(struct server *srv)
{
    struct conn **p = &srv->dead;
    while (*p) {
        struct conn *c = *p;
        if (c->flags & CONN_F_PENDING) {
            p = &c->next;
            continue;
        }
        *p = c->next;
        pool_free(&srv->conn_pool, c);
    }
}

void server_free(struct server *srv)
{
    if (!srv)
        return;
    while (srv->conns)
        conn_abort(srv->conns);
    for (struct conn *c = srv->pending; c; c = c->pending_next)
        c->flags &= (uint16_t)~CONN_F_PENDING;
    srv->pending = NULL;
    srv->pending_tail = &srv->pending;
    free_dead(srv);
    if (srv->listener.fd >= 0) {
        loop_io_del(srv->loop, &srv->listener);
        close(srv->listener.fd);
    }
    loop_timer_cancel(srv->loop, &srv->shutdown_timer);
    loop_timer_cancel(srv->loop, &srv->housekeeping);
    pool_destroy(&srv->conn_pool);
    close(srv->static_fd);
    if (srv->reserve_fd >= 0)
        close(srv->reserve_fd);
    free(srv);
}

int server_route(struct server *srv, const char *path, int prefix, const struct endpoint *ep)
{
    if (srv->nroutes == SERVER_MAX_ROUTES)
        return -1;
    srv->routes[srv->nroutes++] = (struct route){path, prefix, ep};
    return 0;
}

const struct endpoint *server_find_route(const struct server *srv, const char *path, size_t len)
{
    for (size_t i = 0; i < srv->nroutes; i++) {
        const struct route *r = &srv->routes[i];
        size_t n = strlen(r->path);
        if (len == n && memcmp(path, r->path, n) == 0)
            return r->ep;
        if (r->prefix && len > n && memcmp(path, r->path, n) == 0 && path[n] == '/')
            return r->ep;
    }
    return NULL;
}

void server_want_flush(struct server *srv, struct conn *c)
{
    if (c->state == CONN_DEAD || (c->flags & CONN_F_PENDING))
        return;
    c->flags |= CONN_F_PENDING;
    c->pending_next = NULL;
    *srv->pending_tail = c;
    srv->pending_tail = &c->pending_next;
}

void server_conn_dead(struct server *srv, struct conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    log_msg(LOG_DEBUG, "conn close fd=%d why=%s open=%zu", c->io.fd, stats_close_name(c->why), srv->nconns);
    c->prev = NULL;
    c->next = srv->dead;
    srv->dead = c;
}

/* Connections written per pass before input is looked at again: a broadcast
 * to thousands then lets the publishers' next messages join the queues of the
 * members not yet written, so they go out in the same sendmsg. */
#define FLUSH_SLICE 128

static void before_wait(struct loop *l, void *data)
{
    struct server *srv = data;
    for (unsigned n = 0; srv->pending; n++) {
        if (n == FLUSH_SLICE) {
            loop_wake(l);   /* look at input before writing to the rest */
            break;
        }
        struct conn *c = srv->pending;
        srv->pending = c->pending_next;
        if (!srv->pending)
            srv->pending_tail = &srv->pending;
        c->flags &= (uint16_t)~CONN_F_PENDING;
        conn_flush(c);
    }
    free_dead(srv);
    if (srv->stopping && srv->nconns == 0)
        loop_stop(l);
}

void server_set_stats_source(struct server *srv, server_stats_fn fn, void *ctx)
{
    srv->stats_fill = fn;
    srv->stats_ctx = ctx;
}

const struct stats *server_stats(struct server *srv)
{
    if (srv->stats_fill)
        srv->stats_fill(srv->stats_ctx, &srv->stats);
    return &srv->stats;
}

static void on_shutdown_timeout(struct loop *l, struct loop_timer *t)
{
    struct server *srv = container_of(t, struct server, shutdown_timer);
    log_msg(LOG_WARN, "shutdown timeout: dropping the remaining connections open=%zu", srv->nconns);
    loop_stop(l);
}

void server_shutdown(struct server *srv)
{
    if (srv->stopping) {
        log_msg(LOG_WARN, "second signal: stopping now open=%zu", srv->nconns);
        loop_stop(srv->loop);
        return;
    }
    srv->stopping = 1;
    loop_io_del(srv->loop, &srv->listener);
    close(srv->listener.fd);
    srv->listener.fd = -1;
    log_msg(LOG_INFO, "shutting down open=%zu timeout_s=%u", srv->nconns, srv->cfg->shutdown_timeout);
    for (struct conn *c = srv->conns, *next; c; c = next) {
        next = c->next;
        conn_shutdown(c);
    }
    srv->shutdown_timer.cb = on_shutdown_timeout;
    loop_timer_after(srv->loop, &srv->shutdown_timer, srv->cfg->shutdown_timeout * 1000ull);
}
