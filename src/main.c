/* main: parses options into the config, checks them against each other,
 * prepares the process (log, pid file, open-file limit, TLS context, daemon),
 * gives each module its own small config, wires server, router and endpoints
 * (routes, stats, signals) and runs the loop; with --workers N > 1 it hands
 * the process to the supervisor, and each worker it forks runs the same
 * wiring with its own node id, log tag and slot of the shared stats. The only
 * place that reads struct config and the only place that exits. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "auth.h"
#include "broker_redis.h"
#include "chat.h"
#include "config.h"
#include "daemon.h"
#include "echo.h"
#include "handshake.h"
#include "log.h"
#include "loop.h"
#include "pmdz.h"
#include "router.h"
#include "server.h"
#include "shm_stats.h"
#include "supervisor.h"
#include "tls.h"
#include "token_cmd.h"

struct signals {
    struct loop_io io;
    struct server *srv;
    struct tls_ctx *tls;   /* reloaded on SIGHUP; NULL without TLS */
};

/* Who this process is when it is one of several workers. */
struct worker_role {
    const struct supervisor_worker *w;
    struct shm_stats *stats;
    uint64_t started_ms;       /* when the supervisor started (CLOCK_MONOTONIC) */
};

/* What /stats and /metrics show: the process, then each layer's own figures;
 * in a worker, every worker's through the shared stats. */
struct figures {
    struct loop *loop;
    uint64_t started_ms;
    struct server *srv;
    struct chat *chat;
    struct api *api;                  /* NULL without --api-key-file */
    struct pmdz *deflate;
    const struct worker_role *role;   /* NULL when alone */
    struct loop_timer heartbeat;      /* a worker publishes its figures and health */
};

static void write_figures(void *ctx, struct metrics *m)
{
    struct figures *f = ctx;
    metrics_value(m, "uptime_seconds", "wshub_uptime_seconds", METRICS_LEVEL, "Seconds since the server started.",
                  (loop_now(f->loop) - f->started_ms) / 1000);
    server_metrics(f->srv, m);
    chat_metrics(f->chat, m);
    if (f->api)
        api_metrics(f->api, m);
    if (f->deflate)
        pmdz_metrics(f->deflate, m);
}

static int chat_health(void *chat, const char **why)
{
    return chat_healthy(chat, why);
}

/* A worker's own figures and health into its slot of the shared stats. */
static void publish(struct figures *f)
{
    const char *why = NULL;
    int healthy = chat_healthy(f->chat, &why);
    shm_stats_publish(f->role->stats, f->role->w->index, write_figures, f, healthy, why, loop_now(f->loop));
}

static void on_heartbeat(struct loop *l, struct loop_timer *t)
{
    publish(container_of(t, struct figures, heartbeat));
    loop_timer_after(l, t, SHM_STATS_PUBLISH_MS);
}

static void write_all_figures(void *ctx, struct metrics *m)
{
    struct figures *f = ctx;
    publish(f);
    if (shm_stats_render(f->role->stats, loop_now(f->loop), m) < 0)
        m->failed = 1;
}

static int all_healthy(void *ctx, const char **why)
{
    struct figures *f = ctx;
    publish(f);
    return shm_stats_healthy(f->role->stats, loop_now(f->loop), why);
}

/* SIGHUP: new connections get the certificate and key as the files are now;
 * a file that does not load leaves the current ones in use. */
static void reload_tls(struct tls_ctx *tls)
{
    char msg[1024];
    if (tls_ctx_reload(tls, msg, sizeof(msg)) < 0) {
        log_msg(LOG_ERROR, "tls reload failed, keeping the current certificate error=\"%s\"", msg);
        return;
    }
    tls_ctx_describe(tls, msg, sizeof(msg));
    log_msg(LOG_INFO, "tls reloaded %s", msg);
}

static void on_signal(struct loop *l, struct loop_io *io, uint32_t events)
{
    (void)l;
    (void)events;
    struct signals *sig = container_of(io, struct signals, io);
    struct signalfd_siginfo si;
    while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            if (log_reopen() < 0)
                log_msg(LOG_ERROR, "log reopen failed error=\"%s\"", strerror(errno));
            else
                log_msg(LOG_INFO, "log reopened");
            if (sig->tls)
                reload_tls(sig->tls);
            continue;
        }
        log_msg(LOG_INFO, "signal received signal=%s", sigabbrev_np((int)si.ssi_signo));
        daemon_stopping();
        server_shutdown(sig->srv);
    }
}

/* An installed binary finds its static files at ../share/wshub/static next
 * to itself; otherwise the default stays ./static. */
static void find_static_dir(struct config *cfg)
{
    char exe[PATH_MAX], dir[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (config_given(cfg, "static") || n <= 0)
        return;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return;
    *slash = '\0';
    snprintf(dir, sizeof(dir), "%s/../share/wshub/static", exe);
    struct stat st;
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && strlen(dir) < sizeof(cfg->static_dir))
        strcpy(cfg->static_dir, dir);
}

/* Makes a relative path absolute, since a daemon changes to /. Returns 0 or -1. */
static int absolute(char *path, size_t size)
{
    char cwd[PATH_MAX], tmp[PATH_MAX * 2];
    if (!path[0] || path[0] == '/')
        return 0;
    if (!getcwd(cwd, sizeof(cwd)))
        return -1;
    int n = snprintf(tmp, sizeof(tmp), "%s/%s", cwd, path);
    if (n < 0 || (size_t)n >= size)
        return -1;
    memcpy(path, tmp, (size_t)n + 1);
    return 0;
}

/* Bytes of an HTTP request head (request line and headers). */
#define MAX_REQUEST_HEAD (8 * 1024)

/* Descriptors the server holds besides connections (stdio, epoll, listener,
 * signalfd, static directory, log, reserve, and a file being sent). */
#define FDS_RESERVED 16

/* Raises the soft open-file limit to what --max-conns needs, up to the hard limit. */
static void raise_fd_limit(uint64_t max_conns)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    rlim_t need = (rlim_t)max_conns + FDS_RESERVED;
    if (rl.rlim_cur >= need)
        return;
    rlim_t want = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need ? rl.rlim_max : need;
    if (want > rl.rlim_cur) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            want = 0;
    }
    if (want < need) {
        getrlimit(RLIMIT_NOFILE, &rl);
        log_msg(LOG_WARN,
                "open-file limit too low for --max-conns limit=%llu hard=%llu fit=%llu max_conns=%llu",
                (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
                (unsigned long long)(rl.rlim_cur > FDS_RESERVED ? rl.rlim_cur - FDS_RESERVED : 0),
                (unsigned long long)max_conns);
    }
}

/* The broker chat publishes through: one node in memory, or a Redis cluster. */
static int memory_broker(struct broker *b, const struct broker_handler *h, void *arg)
{
    (void)arg;
    return broker_memory_init(b, h);
}

static int redis_broker(struct broker *b, const struct broker_handler *h, void *arg)
{
    return broker_redis_init(b, h, arg);
}

/* HOSTNAME:PID, the default --node-id. */
static void default_node_id(char *out, size_t size)
{
    char host[200];
    if (gethostname(host, sizeof(host)) < 0)
        strcpy(host, "localhost");
    host[sizeof(host) - 1] = '\0';
    snprintf(out, size, "%s:%ld", host, (long)getpid());
}

/* Parses --redis and reads --redis-password-file. Returns 0, or -1 after
 * printing why (exit 2). */
static int redis_options(const struct config *cfg, struct redis_url *url)
{
    char err[256];
    if (redis_url_parse(cfg->redis, url, err, sizeof(err)) < 0) {
        fprintf(stderr, "wshub: --redis: %s\n", err);
        return -1;
    }
    if (cfg->redis_password_file[0] &&
        redis_password_file_read(cfg->redis_password_file, url->password, sizeof(url->password), err,
                                 sizeof(err)) < 0) {
        fprintf(stderr, "wshub: --redis-password-file: %s\n", err);
        return -1;
    }
    return 0;
}


/* The options, parsed and checked, and what follows from them. */
struct setup {
    struct config cfg;
    struct redis_url redis_url;
    char node_id[256];
    struct auth *auth;          /* connection tokens (read once, shared by workers); NULL = off */
    char api_key[API_KEY_MAX + 1];   /* the HTTP API's key (read once); empty = no API */
};

/* Reads --api-key-file into key. Returns 0, or -1 after printing why (exit 2). */
static int api_key_option(const struct config *cfg, char *key, size_t size)
{
    char err[256];
    if (redis_password_file_read(cfg->api_key_file, key, size, err, sizeof(err)) < 0) {
        fprintf(stderr, "wshub: --api-key-file: %s\n", err);
        return -1;
    }
    return 0;
}

/* Loads the token key the options name. NULL after printing why (exit 2). */
static struct auth *auth_from_config(const struct config *cfg)
{
    struct auth_config ac = {
        .secret_file = cfg->auth_secret_file, .public_key_file = cfg->auth_public_key,
        .issuer = cfg->auth_issuer, .audience = cfg->auth_audience, .leeway = cfg->auth_leeway,
        .allow_anonymous = cfg->allow_anonymous,
        .private_rooms = cfg->private_room, .n_private_rooms = cfg->n_private_room,
    };
    char err[512];
    struct auth *a = auth_new(&ac, err, sizeof(err));
    if (!a)
        fprintf(stderr, "wshub: --%s: %s\n", cfg->auth_secret_file[0] ? "auth-secret-file" : "auth-public-key", err);
    return a;
}

/* Loads the certificate and key. NULL after saying why (exit 2). */
static struct tls_ctx *make_tls(const struct config *cfg)
{
    char err[1024];
    struct tls_ctx *tls = tls_ctx_new(cfg->tls_cert, cfg->tls_key, cfg->tls_min, !cfg->no_ktls, err, sizeof(err));
    if (!tls) {
        fprintf(stderr, "wshub: %s\n", err);
        log_msg(LOG_ERROR, "tls setup failed error=\"%s\"", err);
    }
    return tls;
}

/* Runs one server until it stops: the whole of wshub in this process, or in
 * one worker (role). Takes tls (NULL without TLS). Returns the exit status. */
static int serve(const struct setup *st, struct tls_ctx *tls, const struct worker_role *role)
{
    const struct config *cfg = &st->cfg;
    struct transport tls_transport = {.ops = &transport_tls_ops, .ctx = tls};
    struct chat_config chat_cfg = {
        .hub = {.history = cfg->history, .history_bytes = cfg->history_bytes,
                .history_total_bytes = cfg->history_total_bytes, .max_rooms = cfg->max_rooms,
                .max_members = cfg->max_room_members, .max_backlog = cfg->max_backlog},
        .rate_limit = (uint32_t)cfg->rate_limit,
        .binary_rate_limit = (uint32_t)cfg->binary_rate_limit,
        .binary_byte_rate = (uint32_t)cfg->binary_byte_rate,
        .max_line = cfg->max_line,
        .max_binary = cfg->max_binary,
        .presence_limit = cfg->presence_limit,
        .max_resume = cfg->max_resume,
        .auth = st->auth,
    };
    struct router_config router_cfg = {
        .static_dir = cfg->static_dir,
        .allow_origin = cfg->allow_origin, .n_allow_origin = cfg->n_allow_origin,
        .stats_allow = cfg->stats_allow, .n_stats_allow = cfg->n_stats_allow,
    };
    struct server_config server_cfg = {
        .host = cfg->host, .port = cfg->port, .reuse_port = role != NULL, .max_conns = cfg->max_conns,
        .shutdown_timeout = cfg->shutdown_timeout,
        .transport = tls ? &tls_transport : NULL,
        .limits = {.handshake_timeout = cfg->handshake_timeout, .close_timeout = cfg->close_timeout,
                   .ping_interval = cfg->ping_interval, .idle_timeout = cfg->idle_timeout,
                   .max_message = cfg->max_message, .max_head = MAX_REQUEST_HEAD,
                   .max_body = st->api_key[0] ? cfg->max_api_body : 0},
    };
    struct pmdz *deflate = cfg->deflate ? pmdz_new(cfg->deflate_min_size) : NULL;
    server_cfg.limits.deflate = deflate;
    struct loop *loop = cfg->deflate && !deflate ? NULL : loop_new();
    chat_cfg.loop = loop;
    /* A worker is a node of its own: NODE/wI, and NODE/wI.R after R restarts. */
    char node_id[300];
    if (!role)
        snprintf(node_id, sizeof(node_id), "%s", st->node_id);
    else if (role->w->restarts == 0)
        snprintf(node_id, sizeof(node_id), "%s/w%u", st->node_id, role->w->index);
    else
        snprintf(node_id, sizeof(node_id), "%s/w%u.%u", st->node_id, role->w->index, role->w->restarts);
    struct broker_redis_config redis_cfg = {
        .loop = loop, .url = st->redis_url, .prefix = cfg->redis_prefix, .node_id = node_id,
        .history = cfg->history, .history_ttl = cfg->history_ttl,
        .node_timeout_ms = (uint64_t)cfg->node_timeout * 1000u,
        .roster_max = cfg->presence_limit,
    };
    struct chat *chat = !loop ? NULL
                        : cfg->redis[0] ? chat_new(&chat_cfg, redis_broker, &redis_cfg)
                                        : chat_new(&chat_cfg, memory_broker, NULL);
    struct api_config api_cfg = {.key = st->api_key, .key_len = strlen(st->api_key), .allow = cfg->api_allow,
                                 .n_allow = cfg->n_api_allow, .max_body = cfg->max_api_body, .max_text = cfg->max_line,
                                 .wait_ms = cfg->api_timeout * 1000u};
    struct api *api = chat && api_cfg.key_len ? api_new(&api_cfg, chat) : NULL;
    struct router *router = chat && (api || !api_cfg.key_len) ? router_new(&router_cfg) : NULL;
    struct server *srv = router ? server_new(loop, &server_cfg, router_handle, router) : NULL;
    if (!srv) {
        fprintf(stderr, "wshub: cannot start (see the log)\n");
        router_free(router);
        chat_free(chat);
        api_free(api);
        loop_free(loop);
        tls_ctx_free(tls);
        pmdz_free(deflate);
        return 1;
    }
    struct figures figures = {.loop = loop, .started_ms = role ? role->started_ms : loop_now(loop), .srv = srv,
                              .chat = chat, .api = api, .deflate = deflate, .role = role,
                              .heartbeat = {.cb = on_heartbeat}};
    router_mount(router, "/echo", 0, &echo_endpoint);
    router_mount(router, "/ws", 1, chat_endpoint(chat));
    if (api)
        router_mount(router, "/api", 1, api_endpoint(api));
    router_set_stats(router, role ? write_all_figures : write_figures, &figures);
    if (role)
        router_set_health(router, all_healthy, &figures);
    else
        router_set_health(router, chat_health, chat);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    struct signals sig = {.io = {.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC), .cb = on_signal},
                          .srv = srv, .tls = tls};
    if (sig.io.fd < 0 || loop_io_add(loop, &sig.io, LOOP_READ) < 0) {
        log_msg(LOG_ERROR, "signalfd failed error=\"%s\"", strerror(errno));
        return 1;
    }

    log_msg(LOG_INFO, "listening host=%s port=%d static=%s pid=%ld node=%s", cfg->host, cfg->port, cfg->static_dir,
            (long)getpid(), node_id);
    if (tls) {
        char about[1024];
        tls_ctx_describe(tls, about, sizeof(about));
        log_msg(LOG_INFO, "tls on min=%s %s", cfg->tls_min, about);
    }
    if (st->auth && (!role || role->w->index == 0))
        log_msg(LOG_INFO, "auth on alg=%s anonymous=%d private_rooms=%zu leeway_s=%u", auth_alg(st->auth),
                cfg->allow_anonymous, cfg->n_private_room, cfg->auth_leeway);
    if (cfg->n_allow_origin == 0 && (!role || role->w->index == 0))
        log_msg(LOG_WARN, "origin check off: no --allow-origin given, WebSockets from every Origin are allowed");
    if (role) {
        on_heartbeat(loop, &figures.heartbeat);
        supervisor_listening(role->w);
    }
    daemon_ready();
    int rc = loop_run(loop) == 0 ? 0 : 1;

    loop_timer_cancel(loop, &figures.heartbeat);
    close(sig.io.fd);
    server_free(srv);
    router_free(router);
    chat_free(chat);
    api_free(api);
    loop_free(loop);
    tls_ctx_free(tls);
    pmdz_free(deflate);
    return rc;
}

/* What every worker process starts from. */
struct supervised {
    const struct setup *st;
    struct shm_stats *stats;
    uint64_t started_ms;
};

static int run_worker(void *arg, const struct supervisor_worker *w)
{
    struct supervised *sv = arg;
    char tag[16];
    snprintf(tag, sizeof(tag), "w%u", w->index);
    log_set_tag(tag);
    struct tls_ctx *tls = NULL;
    int rc = 2;
    if (!sv->st->cfg.tls_cert[0] || (tls = make_tls(&sv->st->cfg))) {
        struct worker_role role = {.w = w, .stats = sv->stats, .started_ms = sv->started_ms};
        rc = serve(sv->st, tls, &role);
    }
    shm_stats_free(sv->stats);
    log_msg(LOG_INFO, "stopped pid=%ld", (long)getpid());
    return rc;
}

/* --workers N > 1: this process supervises N workers, each serving. */
static int supervise(const struct setup *st)
{
    /* The workers' listeners share the port (SO_REUSEPORT), which would let
     * them join another server's group on it: the port must be free first. */
    struct server_config probe = {.host = st->cfg.host, .port = st->cfg.port};
    if (server_port_free(&probe) < 0) {
        fprintf(stderr, "wshub: cannot listen on %s port %d (see the log)\n", st->cfg.host, st->cfg.port);
        return 1;
    }
    struct shm_stats *stats = shm_stats_new(st->cfg.workers);
    if (!stats) {
        log_msg(LOG_ERROR, "cannot map the shared stats error=\"%s\"", strerror(errno));
        return 1;
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    struct supervised sv = {.st = st, .stats = stats,
                            .started_ms = (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u};
    struct supervisor_config sc = {.workers = st->cfg.workers, .shutdown_timeout = st->cfg.shutdown_timeout,
                                   .stats = stats};
    int rc = supervisor_run(&sc, run_worker, &sv);
    shm_stats_free(stats);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "token") == 0)
        return token_command(argc - 1, argv + 1);
    static struct setup st;
    struct config *cfg = &st.cfg;
    config_defaults(cfg);
    int rc = config_parse_args(cfg, argc, argv, stdout, stderr);
    if (rc == 1)
        return 0;
    if (rc != 0)
        return rc;
    if (config_check(cfg, stderr) != 0)
        return 2;
    if (cfg->redis[0] && redis_options(cfg, &st.redis_url) < 0)
        return 2;
    if (cfg->api_key_file[0] && api_key_option(cfg, st.api_key, sizeof(st.api_key)) < 0)
        return 2;
    find_static_dir(cfg);
    struct stat sb;
    if (stat(cfg->static_dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "wshub: --static '%s' is not a directory\n", cfg->static_dir);
        return 2;
    }
    if (absolute(cfg->static_dir, sizeof(cfg->static_dir)) < 0 || absolute(cfg->log_file, sizeof(cfg->log_file)) < 0 ||
        absolute(cfg->pidfile, sizeof(cfg->pidfile)) < 0 || absolute(cfg->tls_cert, sizeof(cfg->tls_cert)) < 0 ||
        absolute(cfg->tls_key, sizeof(cfg->tls_key)) < 0) {
        fprintf(stderr, "wshub: cannot make the --static/--log/--pidfile/--tls-cert/--tls-key paths absolute\n");
        return 2;
    }
    log_set_level((enum log_level)cfg->log_level);
    if (cfg->log_file[0] && log_open(cfg->log_file) < 0) {
        fprintf(stderr, "wshub: cannot open log file %s: %s\n", cfg->log_file, strerror(errno));
        return 1;
    }
    pid_t running = cfg->pidfile[0] ? pidfile_running(cfg->pidfile) : 0;
    if (running) {
        fprintf(stderr, "wshub: already running as pid %ld (pid file %s)\n", (long)running, cfg->pidfile);
        log_msg(LOG_ERROR, "already running pid=%ld pidfile=%s", (long)running, cfg->pidfile);
        return 1;
    }
    raise_fd_limit(cfg->max_conns);
    signal(SIGPIPE, SIG_IGN);
    handshake_init();
    /* Checked here, so a bad certificate stops the start; with workers each
     * loads its own (a restarted worker then reads the files as they are). */
    struct tls_ctx *tls = NULL;
    if (cfg->tls_cert[0] && !(tls = make_tls(cfg)))
        return 2;
    if ((cfg->auth_secret_file[0] || cfg->auth_public_key[0]) && !(st.auth = auth_from_config(cfg))) {
        tls_ctx_free(tls);
        return 2;
    }
    if (cfg->workers > 1) {
        tls_ctx_free(tls);
        tls = NULL;
    }

    /* Detach first, so the pid file names the daemon and is there before the
     * port is open: whoever sees us listening also finds the pid file. */
    if (cfg->daemon && daemon_detach() < 0) {
        fprintf(stderr, "wshub: cannot detach: %s\n", strerror(errno));
        tls_ctx_free(tls);
        auth_free(st.auth);
        return 1;
    }
    if (cfg->pidfile[0] && pidfile_write(cfg->pidfile) < 0) {
        fprintf(stderr, "wshub: cannot write pid file %s: %s\n", cfg->pidfile, strerror(errno));
        log_msg(LOG_ERROR, "pidfile write failed pidfile=%s error=\"%s\"", cfg->pidfile, strerror(errno));
        tls_ctx_free(tls);
        auth_free(st.auth);
        return 1;
    }
    if (cfg->node_id[0])
        snprintf(st.node_id, sizeof(st.node_id), "%s", cfg->node_id);
    else
        default_node_id(st.node_id, sizeof(st.node_id));
    rc = cfg->workers > 1 ? supervise(&st) : serve(&st, tls, NULL);
    auth_free(st.auth);
    if (cfg->pidfile[0])
        pidfile_remove(cfg->pidfile);
    log_msg(LOG_INFO, "stopped pid=%ld", (long)getpid());
    return rc;
}
