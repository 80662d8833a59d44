/* server: the one server context. Owns the listening socket, the list of live
 * connections, the pending-write and dead lists, the shared receive buffer and
 * the route table from paths to endpoints. Passed explicitly; no globals. */
#ifndef WSHUB_SERVER_H
#define WSHUB_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "conn.h"
#include "loop.h"
#include "pool.h"
#include "stats.h"

#define SERVER_MAX_ROUTES 8
#define SERVER_RX_SIZE (64 * 1024)
#define SERVER_MAX_HEAD (8 * 1024)

struct route {
    const char *path;           /* "/echo", or a prefix ending in '/' */
    int prefix;                 /* match path and anything below it */
    const struct endpoint *ep;
};

/* Fills in the application's figures (rooms, broadcasts) before stats are shown. */
typedef void (*server_stats_fn)(void *ctx, struct stats *s);

struct server {
    struct loop *loop;
    const struct config *cfg;
    struct stats stats;
    uint64_t started_ms;
    server_stats_fn stats_fill;
    void *stats_ctx;
    int stopping;               /* shutting down: no new connections */
    struct loop_timer shutdown_timer;
    struct loop_timer housekeeping; /* once a second: hands freed memory back */
    struct loop_io listener;
    int reserve_fd;             /* spare fd, given up to shed a connection when out of fds */
    int static_fd;              /* the static directory, opened once */
    struct conn *conns;         /* live connections */
    struct conn *pending;       /* connections with output to flush before the next wait, */
    struct conn **pending_tail; /* in the order they got it (first in, first written) */
    struct conn *dead;          /* closed connections, freed before the next wait */
    struct pool conn_pool;      /* where connections live */
    size_t nconns;
    uint64_t fd_warned_ms;      /* when running out of fds was last logged */
    struct route routes[SERVER_MAX_ROUTES];
    size_t nroutes;
    uint8_t rx[SERVER_MAX_HEAD + SERVER_RX_SIZE]; /* reads land here; leftovers go to conn->in */
};

/* Binds and listens per cfg and registers with the loop. NULL on failure (logged). */
struct server *server_new(struct loop *loop, const struct config *cfg);

/* Closes every connection and the listener, and frees the server. */
void server_free(struct server *srv);

/* Serves endpoint ep at path (exact) or below it (prefix). Returns 0 or -1 if full. */
int server_route(struct server *srv, const char *path, int prefix, const struct endpoint *ep);

/* The endpoint for a request path (still percent-encoded), or NULL. */
const struct endpoint *server_find_route(const struct server *srv, const char *path, size_t len);

/* Registers the application's stats filler. */
void server_set_stats_source(struct server *srv, server_stats_fn fn, void *ctx);

/* Brings the stats up to date (application figures included) for showing. */
const struct stats *server_stats(struct server *srv);

/* Starts a graceful shutdown: stop accepting, close every connection (1001
 * for WebSockets), and stop the loop once all are gone or after
 * shutdown_timeout seconds. A second call stops the loop at once. */
void server_shutdown(struct server *srv);

/* Puts c on the list flushed before the next wait (once). */
void server_want_flush(struct server *srv, struct conn *c);

/* Moves c from the live list to the dead list (its fd is already closed). */
void server_conn_dead(struct server *srv, struct conn *c);

#endif
