/* router: the route table and the answer to one HTTP request: common checks
 * (method, Host, body), then upgrade (RFC 6455 section 4.2.2), an HTTP
 * endpoint (which takes any method and may have a body read), a built-in
 * endpoint, or a static file. Queues its answer through conn; never
 * touches a socket itself. */
#include "router.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "files.h"
#include "handshake.h"
#include "log.h"

struct route {
    const char *path;           /* "/echo", or a mount point like "/ws" */
    size_t len;
    int prefix;                 /* also every path below it */
    const struct endpoint *ep;
};

struct router {
    struct router_config cfg;
    int static_fd;              /* the static directory, opened once */
    router_stats_fn stats;
    void *stats_ctx;
    router_health_fn health;
    void *health_ctx;
    struct route routes[ROUTER_MAX_ROUTES];
    size_t nroutes;
};

struct router *router_new(const struct router_config *cfg)
{
    struct router *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->cfg = *cfg;
    r->static_fd = open(cfg->static_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (r->static_fd < 0) {
        log_msg(LOG_ERROR, "static directory unreadable static=%s error=\"%s\"", cfg->static_dir, strerror(errno));
        free(r);
        return NULL;
    }
    return r;
}

void router_free(struct router *r)
{
    if (!r)
        return;
    close(r->static_fd);
    free(r);
}

int router_mount(struct router *r, const char *path, int prefix, const struct endpoint *ep)
{
    if (r->nroutes == ROUTER_MAX_ROUTES)
        return -1;
    r->routes[r->nroutes++] = (struct route){path, strlen(path), prefix, ep};
    return 0;
}

void router_set_health(struct router *r, router_health_fn fn, void *ctx)
{
    r->health = fn;
    r->health_ctx = ctx;
}

void router_set_stats(struct router *r, router_stats_fn fn, void *ctx)
{
    r->stats = fn;
    r->stats_ctx = ctx;
}

/* The route for a request path (still percent-encoded), or NULL; *rest is
 * what follows the mount point. */
static const struct route *find_route(const struct router *r, struct http_slice path, struct http_slice *rest)
{
    for (size_t i = 0; i < r->nroutes; i++) {
        const struct route *rt = &r->routes[i];
        if (path.n < rt->len || memcmp(path.p, rt->path, rt->len) != 0)
            continue;
        if (path.n == rt->len || (rt->prefix && path.p[rt->len] == '/')) {
            *rest = (struct http_slice){path.p + rt->len, path.n - rt->len};
            return rt;
        }
    }
    return NULL;
}

/* Refuses requests with a body: wshub takes none outside HTTP endpoints, and
 * a body left unread would be parsed as the next request. Returns 0 when
 * there is no body. */
static int refuse_body(struct conn *c, const struct http_request *req)
{
    uint64_t n;
    if (http_header_get(req, "Transfer-Encoding")) {
        conn_http_text(c, 501, "request bodies (Transfer-Encoding) are not supported", NULL, 0);
        return -1;
    }
    if (http_content_length(req, &n) < 0) {
        conn_http_text(c, 400, "invalid Content-Length", NULL, 0);
        return -1;
    }
    if (n) {
        conn_http_text(c, 413, "request bodies are not accepted", NULL, 0);
        return -1;
    }
    return 0;
}

/* With --allow-origin, a browser's upgrade must come from a listed Origin.
 * Clients that send no Origin (not browsers) carry no one's cookies: allowed. */
static int origin_allowed(const struct router_config *cfg, const struct http_request *req)
{
    const struct http_slice *origin = http_header_get(req, "Origin");
    if (cfg->n_allow_origin == 0 || !origin)
        return 1;
    for (size_t i = 0; i < cfg->n_allow_origin; i++)
        if (http_slice_ieq(*origin, cfg->allow_origin[i]))
            return 1;
    return 0;
}

static void upgrade(struct router *r, struct conn *c, const struct http_request *req, const struct route *rt,
                    struct http_slice rest)
{
    if (!origin_allowed(&r->cfg, req)) {
        conn_http_text(c, 403, "origin not allowed", NULL, 0);
        return;
    }
    struct handshake_result hs;
    if (handshake_check(req, &hs) != 101) {
        const char *extra = hs.status == 426 ? "Sec-WebSocket-Version: 13\r\n"
                            : hs.status == 405 ? "Allow: GET\r\n"
                                               : NULL;
        conn_http_text(c, hs.status, hs.reason, extra, 0);
        return;
    }
    conn_upgrade(c, rt->ep, req, rest, hs.accept);
}

/* A plain GET to an endpoint that can say what an upgrade would get. */
static void check(struct conn *c, const struct http_request *req, const struct route *rt, struct http_slice rest)
{
    struct endpoint_answer ans = {0};
    int status = rt->ep->check(rt->ep->ctx, req, rest, &ans);
    char headers[512];
    snprintf(headers, sizeof(headers), "Cache-Control: no-store\r\n%s", status && ans.headers ? ans.headers : "");
    conn_http_text(c, status ? status : 200, status ? (ans.reason ? ans.reason : "refused") : "ok", headers,
                   http_keep_alive(req));
}

static void serve_file(struct router *r, struct conn *c, const struct http_request *req, int keep_alive)
{
    char path[4096];
    if (http_path_decode(req->path, path, sizeof(path)) < 0) {
        conn_http_text(c, 400, "invalid path", NULL, 0);
        return;
    }
    struct file_result f;
    switch (files_open(r->static_fd, path, &f)) {
    case 200: {
        char headers[512], mtime[64];
        struct tm tm;
        gmtime_r(&f.mtime, &tm);
        strftime(mtime, sizeof(mtime), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        snprintf(headers, sizeof(headers), "Content-Type: %s\r\nLast-Modified: %s\r\nCache-Control: no-cache\r\n",
                 f.content_type, mtime);
        if (conn_http_head(c, 200, headers, f.size, NULL, keep_alive) < 0)
            close(f.fd);
        else
            conn_http_file(c, f.fd, f.size);
        return;
    }
    case 301: {
        char headers[4200];
        snprintf(headers, sizeof(headers), "Location: %.*s/\r\n", (int)req->path.n, req->path.p);
        conn_http_text(c, 301, "moved to the directory's URL", headers, keep_alive);
        return;
    }
    case 403:
        conn_http_text(c, 403, "forbidden", NULL, keep_alive);
        return;
    case 503:
        conn_http_text(c, 503, "server is out of file descriptors or memory", "Retry-After: 1\r\n", keep_alive);
        return;
    default:
        conn_http_text(c, 404, "not found", NULL, keep_alive);
        return;
    }
}

static int peer_may_see_stats(const struct router *r, const struct conn *c)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (conn_peer(c, &ss, &len) < 0)
        return 0;
    return cidr_match_any(r->cfg.stats_allow, r->cfg.n_stats_allow, (struct sockaddr *)&ss);
}

/* /healthz, /stats and /metrics. Returns 1 when path was one of them. */
static int serve_builtin(struct router *r, struct conn *c, const struct http_request *req, int keep_alive)
{
    int json = http_slice_eq(req->path, "/stats"), prom = http_slice_eq(req->path, "/metrics");
    if (http_slice_eq(req->path, "/healthz")) {
        const char *why = NULL;
        if (r->health && !r->health(r->health_ctx, &why))
            conn_http_text(c, 503, why, "Cache-Control: no-store\r\nRetry-After: 1\r\n", keep_alive);
        else
            conn_http_text(c, 200, "ok", "Cache-Control: no-store\r\n", keep_alive);
        return 1;
    }
    if (!json && !prom)
        return 0;
    if (!peer_may_see_stats(r, c)) {
        conn_http_text(c, 403, "stats are not served to this address (see --stats-allow)", NULL, keep_alive);
        return 1;
    }
    struct buf body = {0};
    struct metrics m;
    metrics_begin(&m, &body, json ? METRICS_JSON : METRICS_PROMETHEUS);
    if (r->stats)
        r->stats(r->stats_ctx, &m);
    int rc = metrics_end(&m);
    const char *type = json ? "Content-Type: application/json\r\nCache-Control: no-store\r\n"
                            : "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\nCache-Control: no-store\r\n";
    if (rc < 0)
        conn_http_text(c, 503, "out of memory", "Retry-After: 1\r\n", 0);
    else
        conn_http_head(c, 200, type, body.len, body.data, keep_alive);
    buf_free(&body);
    return 1;
}

void router_handle(void *router, struct conn *c, const struct http_request *req)
{
    struct router *r = router;
    int head = http_slice_eq(req->method, "HEAD");
    int get = http_slice_eq(req->method, "GET");
    struct http_slice rest;
    const struct route *rt = find_route(r, req->path, &rest);
    if (req->version_minor >= 1 && http_header_count(req, "Host") != 1) {
        conn_http_text(c, 400, "an HTTP/1.1 request needs exactly one Host header", NULL, 0);
    } else if (rt && rt->ep->request && !handshake_is_upgrade(req)) {
        rt->ep->request(rt->ep->ctx, c, req, rest);   /* its method, body and answer are its own */
    } else if (!get && !head) {
        conn_http_text(c, 405, "only GET and HEAD are allowed", "Allow: GET, HEAD\r\n", 0);
    } else if (refuse_body(c, req) == 0) {
        if (rt && !rt->ep->request && !handshake_is_upgrade(req) && rt->ep->check)
            check(c, req, rt, rest);
        else if (rt && !rt->ep->request)
            upgrade(r, c, req, rt, rest);
        else if (handshake_is_upgrade(req))
            conn_http_text(c, 404, "no WebSocket endpoint at this path", NULL, 0);
        else if (!serve_builtin(r, c, req, http_keep_alive(req)))
            serve_file(r, c, req, http_keep_alive(req));
    }
}
