/* server: the one server context. Owns the listening socket, every
 * connection's memory and the lists it is on (live, to flush, closed, dead),
 * the shared receive buffer, and the work done before each wait: tell
 * endpoints of closed connections, flush output, free the dead. It gives each
 * connection a conn_env and knows nothing of routes, endpoints or HTTP. */
#ifndef WSHUB_SERVER_H
#define WSHUB_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "loop.h"
#include "metrics.h"

struct server;

struct server_config {
    const char *host;            /* numeric IPv4 or IPv6 address */
    int port;
    int reuse_port;              /* SO_REUSEPORT: one of several workers' listeners on the port */
    uint64_t max_conns;          /* open connections; beyond it a 503 */
    unsigned shutdown_timeout;   /* seconds to wait for clients to answer the 1001 */
    const struct transport *transport;   /* the listener's (TLS); NULL = plain TCP */
    struct conn_limits limits;
};

/* Answers one HTTP request on a connection (the router's entry point). */
typedef void (*server_request_fn)(void *ctx, struct conn *c, const struct http_request *req);

/* Binds and listens per cfg (copied) and registers with the loop; every
 * request goes to on_request(ctx, ...). NULL on failure (logged). */
struct server *server_new(struct loop *loop, const struct server_config *cfg, server_request_fn on_request,
                          void *ctx);

/* Whether the port of cfg can be bound without SO_REUSEPORT, i.e. nothing
 * (not even another group of workers) holds it: 0, or -1 (logged, e.g.
 * "Address already in use"). Workers check it once before they start. */
int server_port_free(const struct server_config *cfg);

/* Closes every connection and the listener, and frees the server. */
void server_free(struct server *srv);

/* Writes the session layer's figures: connections, bytes, messages, pings, closes. */
void server_metrics(struct server *srv, struct metrics *m);

/* Starts a graceful shutdown: stop accepting, close every connection (1001
 * for WebSockets), and stop the loop once all are gone or after
 * shutdown_timeout seconds. A second call stops the loop at once. */
void server_shutdown(struct server *srv);

#endif
