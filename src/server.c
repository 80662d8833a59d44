/* server: the listening socket, accepting until EAGAIN, shedding load when
 * out of file descriptors (a reserve fd), the memory of every connection and
 * the lists it is on, and the safe point before each wait: tell endpoints of
 * closed connections, flush pending output (in slices, first in first out),
 * then free connections that died during the iteration. Nothing is freed
 * anywhere else. */
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
#include "pool.h"
#include "response.h"

#define SERVER_RX_SIZE (64 * 1024)
/* Slots come in chunks of about 200 KiB: past malloc's mmap threshold, so
 * they lie apart from the heap, where the short-lived buffers of a burst
 * (a thousand joins) would otherwise pin the pages around them. */
#define SLOTS_PER_CHUNK 1024

/* The server's record of one connection: its list links, then the connection. */
struct slot {
    struct slot *prev, *next;   /* live list, then dead list */
    struct slot *pending_next;  /* flush list: NULL when not on it, LIST_END when last */
    struct slot *closed_next;   /* connections whose endpoint must be told: the same */
    _Alignas(8) unsigned char conn[];   /* struct conn needs no more than 8 */
};
_Static_assert(sizeof(struct slot) == 32, "a slot header is in every connection");

/* The next pointer of the last slot on a list, so that a NULL one means "not on it". */
static struct slot list_end;
#define LIST_END (&list_end)

/* The slot after one whose next pointer is next: NULL at the end. */
static struct slot *after(struct slot *next)
{
    return next == LIST_END ? NULL : next;
}

struct server {
    struct loop *loop;
    struct server_config cfg;
    struct conn_env env;
    struct conn_stats stats;
    struct response_date date;
    struct transport transport;
    server_request_fn on_request;
    void *request_ctx;
    int stopping;               /* shutting down: no new connections */
    struct loop_timer shutdown_timer;
    struct loop_timer housekeeping; /* once a second: hands freed memory back */
    struct loop_io listener;
    int reserve_fd;             /* spare fd, given up to shed a connection when out of fds */
    struct slot *live;
    struct slot *pending;       /* to flush before the next wait, */
    struct slot **pending_tail; /* in the order they got output (first in, first written) */
    struct slot *closed;        /* closed with an endpoint to tell */
    struct slot *dead;          /* socket closed, freed at the safe point */
    struct pool slots;
    size_t nconns;
    uint64_t accepted;
    uint64_t fd_warned_ms;      /* when running out of fds was last logged */
    uint8_t *rx;                /* reads land here; leftovers go to the connection */
    struct conn_tx tx;          /* the cork */
};

static struct slot *slot_of(struct conn *c)
{
    return (struct slot *)((unsigned char *)c - offsetof(struct slot, conn));
}

static struct conn *conn_of(struct slot *s)
{
    return (struct conn *)s->conn;
}

static void before_wait(struct loop *l, void *data);

/* A listening socket per cfg; with probe, only bound (to see that the port
 * is free), then closed, and 0 returned. -1 on failure (logged). */
static int listen_on(const struct server_config *cfg, int probe)
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
        (cfg->reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || (!probe && listen(fd, 4096) < 0)) {
        log_msg(LOG_ERROR, "listen failed host=%s port=%d error=\"%s\"", cfg->host, cfg->port, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    } else if (probe) {
        close(fd);
        fd = 0;
    }
    freeaddrinfo(res);
    return fd;
}

int server_port_free(const struct server_config *cfg)
{
    struct server_config alone = *cfg;
    alone.reuse_port = 0;
    return listen_on(&alone, 1);
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
    srv->transport.ops->refuse(srv->transport.ctx, fd, response, (size_t)n);
    close(fd);
    srv->accepted++;
    srv->stats.closed[CONN_CLOSE_LIMIT]++;
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

static void log_conn_open(struct server *srv, int fd, const struct sockaddr_storage *peer, socklen_t peer_len)
{
    char host[64], port[16];
    if (getnameinfo((const struct sockaddr *)peer, peer_len, host, sizeof(host), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        strcpy(host, "?"), strcpy(port, "?");
    log_msg(LOG_DEBUG, "conn open fd=%d peer=%s:%s open=%zu", fd, host, port, srv->nconns);
}

/* Sets up a connection for an accepted socket and puts it on the live list. */
static void adopt(struct server *srv, int fd)
{
    struct slot *s = pool_alloc(&srv->slots);
    if (!s) {
        close(fd);
        log_msg(LOG_WARN, "conn setup failed error=\"out of memory\"");
        return;
    }
    if (!conn_init(s->conn, &srv->env, fd)) {
        pool_free(&srv->slots, s);
        log_msg(LOG_WARN, "conn setup failed error=\"%s\"", strerror(errno));
        return;
    }
    s->next = srv->live;
    if (srv->live)
        srv->live->prev = s;
    srv->live = s;
    srv->nconns++;
    srv->accepted++;
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
        if (srv->nconns >= srv->cfg.max_conns) {
            refuse(srv, fd, "server is at its connection limit");
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        adopt(srv, fd);
        if (log_enabled(LOG_DEBUG))
            log_conn_open(srv, fd, &peer, peer_len);
    }
}

/* conn_env callbacks. */
static void env_request(void *ctx, struct conn *c, const struct http_request *req)
{
    struct server *srv = ctx;
    srv->on_request(srv->request_ctx, c, req);
}

static void env_want_flush(void *ctx, struct conn *c)
{
    struct server *srv = ctx;
    struct slot *s = slot_of(c);
    if (s->pending_next)
        return;
    s->pending_next = LIST_END;
    *srv->pending_tail = s;
    srv->pending_tail = &s->pending_next;
}

static void env_closed(void *ctx, struct conn *c)
{
    struct server *srv = ctx;
    struct slot *s = slot_of(c);
    if (s->closed_next)
        return;
    s->closed_next = srv->closed ? srv->closed : LIST_END;
    srv->closed = s;
}

static void env_dead(void *ctx, struct conn *c)
{
    struct server *srv = ctx;
    struct slot *s = slot_of(c);
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->live = s->next;
    if (s->next)
        s->next->prev = s->prev;
    srv->nconns--;
    s->prev = NULL;
    s->next = srv->dead;
    srv->dead = s;
}

#define HOUSEKEEPING_MS 1000
#define TRIM_FREE_BYTES (1024 * 1024)

/* After a burst (a thousand joins, a big message) the allocator keeps the freed
 * memory; give whole free pages back so RSS follows what is really in use. */
static void on_housekeeping(struct loop *l, struct loop_timer *t)
{
    buf_cache_trim();
    struct mallinfo2 mi = mallinfo2();
    if (mi.fordblks > TRIM_FREE_BYTES)
        malloc_trim(0);
    loop_timer_after(l, t, HOUSEKEEPING_MS);
}

struct server *server_new(struct loop *loop, const struct server_config *cfg, server_request_fn on_request,
                          void *ctx)
{
    struct server *srv = calloc(1, sizeof(*srv));
    size_t rx_size = cfg->limits.max_head + cfg->limits.max_body + SERVER_RX_SIZE;
    uint8_t *rx = srv ? malloc(rx_size) : NULL;
    if (!rx) {
        free(srv);
        log_msg(LOG_ERROR, "server setup failed error=\"out of memory\"");
        return NULL;
    }
    srv->loop = loop;
    srv->cfg = *cfg;
    srv->rx = rx;
    srv->on_request = on_request;
    srv->request_ctx = ctx;
    srv->pending_tail = &srv->pending;
    srv->transport = cfg->transport ? *cfg->transport : (struct transport){.ops = &transport_tcp_ops};
    srv->env = (struct conn_env){
        .loop = loop, .rx = rx, .rx_size = rx_size, .tx = &srv->tx, .limits = &srv->cfg.limits, .stats = &srv->stats,
        .transport = &srv->transport, .date = &srv->date, .ctx = srv,
        .request = env_request, .want_flush = env_want_flush, .closed = env_closed, .dead = env_dead,
    };
    pool_init(&srv->slots, sizeof(struct slot) + conn_size(), SLOTS_PER_CHUNK);
    srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    srv->listener.fd = listen_on(cfg, 0);
    srv->listener.cb = on_accept;
    if (srv->listener.fd < 0 || loop_io_add(loop, &srv->listener, LOOP_READ) < 0) {
        if (srv->listener.fd >= 0)
            close(srv->listener.fd);
        if (srv->reserve_fd >= 0)
            close(srv->reserve_fd);
        pool_destroy(&srv->slots);
        free(rx);
        free(srv);
        return NULL;
    }
    loop_set_before_wait(loop, before_wait, srv);
    srv->housekeeping.cb = on_housekeeping;
    loop_timer_after(loop, &srv->housekeeping, HOUSEKEEPING_MS);
    return srv;
}

/* Tells endpoints of the connections that closed; their leave events may
 * close more (slow consumers), which the same loop handles. */
static void tell_closed(struct server *srv)
{
    while (srv->closed) {
        struct slot *s = srv->closed;
        srv->closed = after(s->closed_next);
        s->closed_next = NULL;
        conn_detach_endpoint(conn_of(s));
    }
}

/* Frees dead connections, except those still on the flush list (a pass may
 * stop before reaching them): they are freed once a pass has taken them off. */
static void free_dead(struct server *srv)
{
    struct slot **p = &srv->dead;
    while (*p) {
        struct slot *s = *p;
        if (s->pending_next) {
            p = &s->next;
            continue;
        }
        *p = s->next;
        pool_free(&srv->slots, s);
    }
}

void server_free(struct server *srv)
{
    if (!srv)
        return;
    while (srv->live)
        conn_abort(conn_of(srv->live));
    tell_closed(srv);
    for (struct slot *s = srv->pending, *next; s; s = next) {
        next = after(s->pending_next);
        s->pending_next = NULL;
    }
    srv->pending = NULL;
    srv->pending_tail = &srv->pending;
    free_dead(srv);
    if (srv->listener.fd >= 0) {
        loop_io_del(srv->loop, &srv->listener);
        close(srv->listener.fd);
    }
    loop_timer_cancel(srv->loop, &srv->shutdown_timer);
    loop_timer_cancel(srv->loop, &srv->housekeeping);
    pool_destroy(&srv->slots);
    if (srv->reserve_fd >= 0)
        close(srv->reserve_fd);
    free(srv->rx);
    free(srv);
}

/* Connections written per pass before input is looked at again: a broadcast
 * to thousands then lets the publishers' next messages join the queues of the
 * members not yet written, so they go out in the same write. */
#define FLUSH_SLICE 128

/* The safe point: nothing that a callback of this iteration could still
 * hold is freed before here. */
static void before_wait(struct loop *l, void *data)
{
    struct server *srv = data;
    unsigned n = 0;
    for (;;) {
        tell_closed(srv);
        if (!srv->pending)
            break;
        if (n++ == FLUSH_SLICE) {
            loop_wake(l);   /* look at input before writing to the rest */
            break;
        }
        struct slot *s = srv->pending;
        srv->pending = after(s->pending_next);
        if (!srv->pending)
            srv->pending_tail = &srv->pending;
        s->pending_next = NULL;
        conn_flush(conn_of(s));
    }
    free_dead(srv);
    if (srv->stopping && srv->nconns == 0)
        loop_stop(l);
}

void server_metrics(struct server *srv, struct metrics *m)
{
    const struct conn_stats *st = &srv->stats;
    metrics_group_begin(m, "connections", "wshub_connections", METRICS_GAUGE, "Open connections by type.", "type");
    metrics_group_value(m, "http", st->http);
    metrics_group_value(m, "websocket", st->websocket);
    metrics_group_end(m);
    metrics_value(m, "connections_accepted", "wshub_connections_accepted_total", METRICS_COUNTER,
                  "Connections accepted.", srv->accepted);
    metrics_value(m, "messages_in", "wshub_messages_received_total", METRICS_COUNTER,
                  "WebSocket messages received.", st->messages_in);
    metrics_value(m, "messages_out", "wshub_messages_sent_total", METRICS_COUNTER,
                  "WebSocket messages queued to clients.", st->messages_out);
    metrics_value(m, "bytes_in", "wshub_bytes_received_total", METRICS_COUNTER, "Bytes read from sockets.",
                  st->bytes_in);
    metrics_value(m, "bytes_out", "wshub_bytes_sent_total", METRICS_COUNTER, "Bytes written to sockets.",
                  st->bytes_out);
    metrics_value(m, "pings_sent", "wshub_pings_sent_total", METRICS_COUNTER, "Keepalive pings sent.",
                  st->pings_sent);
    metrics_group_begin(m, "closed", "wshub_connections_closed_total", METRICS_COUNTER,
                        "Connections ended, by reason.", "reason");
    for (int i = 0; i < CONN_CLOSE_COUNT; i++)
        metrics_group_value(m, conn_close_name((enum conn_close_why)i), st->closed[i]);
    metrics_group_end(m);
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
    log_msg(LOG_INFO, "shutting down open=%zu timeout_s=%u", srv->nconns, srv->cfg.shutdown_timeout);
    for (struct slot *s = srv->live, *next; s; s = next) {
        next = s->next;
        conn_shutdown(conn_of(s));
    }
    srv->shutdown_timer.cb = on_shutdown_timeout;
    loop_timer_after(srv->loop, &srv->shutdown_timer, srv->cfg.shutdown_timeout * 1000ull);
}
