/* router: what an HTTP request means. Common checks (method, Host, body),
 * then a WebSocket upgrade to the endpoint mounted at the path (RFC 6455
 * section 4.2.2, with the Origin allow-list), the built-in /healthz /stats
 * /metrics, or a static file. Session layer: it answers through conn and
 * never touches a socket; it knows endpoints only by their interface. */
#ifndef WSHUB_ROUTER_H
#define WSHUB_ROUTER_H

#include <stddef.h>

#include "buf.h"
#include "cidr.h"
#include "conn.h"
#include "http.h"
#include "metrics.h"

#define ROUTER_MAX_ROUTES 8
#define ROUTER_ORIGIN_MAX 256

struct router_config {
    const char *static_dir;                       /* served below "/" */
    const char (*allow_origin)[ROUTER_ORIGIN_MAX]; /* n_allow_origin entries; none = every origin */
    size_t n_allow_origin;
    const struct cidr *stats_allow;               /* who may read /stats and /metrics */
    size_t n_stats_allow;
};

/* Writes every figure of the server for /stats or /metrics into m. */
typedef void (*router_stats_fn)(void *ctx, struct metrics *m);

struct router;

/* Opens the static directory. NULL on failure (logged). */
struct router *router_new(const struct router_config *cfg);

/* Frees the router. */
void router_free(struct router *r);

/* Mounts ep at path (exact) or at path and below (prefix; the endpoint gets
 * the rest of the path). Returns 0, or -1 when the table is full. */
int router_mount(struct router *r, const char *path, int prefix, const struct endpoint *ep);

/* Sets who writes the figures for /stats and /metrics. */
void router_set_stats(struct router *r, router_stats_fn fn, void *ctx);

/* Says whether the server can serve: 1, or 0 with *why (a one-line reason). */
typedef int (*router_health_fn)(void *ctx, const char **why);

/* Sets who /healthz asks: it answers 503 with the reason while fn says 0. */
void router_set_health(struct router *r, router_health_fn fn, void *ctx);

/* Answers one request on c; a server_request_fn with the router as ctx. */
void router_handle(void *router, struct conn *c, const struct http_request *req);

#endif
