/* config: the option table, defaults, command-line and config-file parsing,
 * and --help. Never exits: it returns what main should do. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "log.h"

enum kind { K_STRING, K_PORT, K_SECONDS, K_BYTES, K_COUNT, K_LOGLEVEL, K_ORIGINS, K_CIDRS, K_FLAG, K_TLSVER, K_WORKERS,
            K_ROOMS };

struct option_def {
    const char *name;
    enum kind kind;
    size_t offset;
    size_t size;          /* for strings: the buffer size */
    const char *arg;
    const char *help;
    uint64_t min, max;    /* for counts and bytes */
};

#define FIELD(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)

static const struct option_def options[] = {
    {"host", K_STRING, FIELD(host), "ADDR", "address to listen on (IPv4 or IPv6)", 0, 0},
    {"port", K_PORT, FIELD(port), "N", "TCP port to listen on", 0, 0},
    {"static", K_STRING, FIELD(static_dir), "DIR",
     "static files served over HTTP (an installed binary uses PREFIX/share/wshub/static)", 0, 0},
    {"tls-cert", K_STRING, FIELD(tls_cert), "FILE",
     "PEM certificate chain: the port speaks TLS (https, wss); reloaded on SIGHUP; needs --tls-key", 0, 0},
    {"tls-key", K_STRING, FIELD(tls_key), "FILE", "PEM private key of --tls-cert; reloaded on SIGHUP", 0, 0},
    {"tls-min", K_TLSVER, FIELD(tls_min), "VERSION", "lowest TLS version accepted: 1.2 or 1.3", 0, 0},
    {"no-ktls", K_FLAG, FIELD(no_ktls), "",
     "never hand TLS records to the kernel (kernel TLS is used for sending where the kernel offers it)", 0, 0},
    {"handshake-timeout", K_SECONDS, FIELD(handshake_timeout), "S",
     "seconds for an HTTP request or handshake to arrive; 0 = no limit", 0, 0},
    {"close-timeout", K_SECONDS, FIELD(close_timeout), "S",
     "seconds to wait for the peer's close after the server's", 0, 0},
    {"max-message", K_BYTES, FIELD(max_message), "BYTES",
     "largest WebSocket message accepted (suffixes k, m, g); bigger closes with 1009", 1, 1ull << 30},
    {"deflate", K_FLAG, FIELD(deflate), "", "compress messages with clients that offer permessage-deflate", 0, 0},
    {"deflate-min-size", K_BYTES, FIELD(deflate_min_size), "BYTES",
     "with --deflate, messages shorter than this go uncompressed", 0, 1ull << 30},
    {"history", K_COUNT, FIELD(history), "N", "message events kept per room and sent to joiners; 0 = off",
     0, 100000},
    {"max-rooms", K_COUNT, FIELD(max_rooms), "N",
     "rooms kept at once; the least recently used empty one is evicted", 1, 100000000},
    {"max-room-members", K_COUNT, FIELD(max_room_members), "N", "members per room; 0 = unlimited", 0,
     100000000},
    {"rate-limit", K_COUNT, FIELD(rate_limit), "N", "chat lines per second per connection, burst 2N; 0 = off",
     0, 1000000},
    {"max-backlog", K_BYTES, FIELD(max_backlog), "BYTES",
     "unsent output after which a room member is cut off as a slow consumer", 4096, 1ull << 40},
    {"max-line", K_BYTES, FIELD(max_line), "BYTES", "longest chat line; longer gets a too_long error", 1,
     1ull << 40},
    {"presence-limit", K_COUNT, FIELD(presence_limit), "N",
     "rooms with more members send no join/leave events and cut member lists to N; 0 = no limit", 0,
     100000000},
    {"max-binary", K_BYTES, FIELD(max_binary), "BYTES",
     "largest binary message relayed to a room; bigger closes the sender with 1009", 1, 1ull << 30},
    {"binary-rate-limit", K_COUNT, FIELD(binary_rate_limit), "N",
     "binary frames per second per connection, burst 2N; 0 = off", 0, 1000000},
    {"binary-byte-rate", K_BYTES, FIELD(binary_byte_rate), "BYTES",
     "binary bytes per second per connection, burst 2x; 0 = off", 0, 1ull << 31},
    {"history-bytes", K_BYTES, FIELD(history_bytes), "BYTES",
     "history kept per room, in bytes (the oldest events go first)", 1024, 1ull << 40},
    {"history-total-bytes", K_BYTES, FIELD(history_total_bytes), "BYTES",
     "history kept across all rooms; the least recently used rooms lose their oldest first", 1024, 1ull << 40},
    {"max-resume", K_COUNT, FIELD(max_resume), "N",
     "messages a reconnecting client (?since=SEQ&epoch=E) may be sent to fill its gap; follows --history unless set", 0,
     100000},
    {"ping-interval", K_SECONDS, FIELD(ping_interval), "S", "ping a WebSocket quiet this long; 0 = off", 0, 0},
    {"idle-timeout", K_SECONDS, FIELD(idle_timeout), "S",
     "close a WebSocket that sent nothing, not even a pong, this long; 0 = off", 0, 0},
    {"max-conns", K_COUNT, FIELD(max_conns), "N", "open connections; beyond it new ones get 503", 1,
     100000000},
    {"allow-origin", K_ORIGINS, FIELD(allow_origin), "ORIGIN",
     "repeatable: only these Origins may open WebSockets", 0, 0},
    {"stats-allow", K_CIDRS, FIELD(stats_allow), "CIDR",
     "repeatable: addresses that may read /stats and /metrics", 0, 0},
    {"shutdown-timeout", K_SECONDS, FIELD(shutdown_timeout), "S",
     "on SIGTERM/SIGINT, seconds to wait for clients to answer the 1001 close", 0, 0},
    {"redis", K_STRING, FIELD(redis), "URL",
     "join a cluster through Redis: redis://[:PASSWORD@]HOST[:PORT][/DB] or unix:///PATH", 0, 0},
    {"redis-password-file", K_STRING, FIELD(redis_password_file), "FILE",
     "read the Redis password from FILE (one trailing newline ignored)", 0, 0},
    {"redis-prefix", K_STRING, FIELD(redis_prefix), "STR", "prefix of every Redis key, so clusters can share one",
     0, 0},
    {"node-id", K_STRING, FIELD(node_id), "STR", "this node's name in the cluster (default HOSTNAME:PID)", 0, 0},
    {"node-timeout", K_SECONDS, FIELD(node_timeout), "S",
     "with --redis: the members of a node that dies leave their rooms within S seconds; 1 or more", 0, 0},
    {"history-ttl", K_SECONDS, FIELD(history_ttl), "S",
     "with --redis: an idle room's history expires after S seconds; 0 = never", 0, 0},
    {"workers", K_WORKERS, FIELD(workers), "N|auto",
     "worker processes sharing the port under one supervisor; auto = the CPUs we may run on; above 1 needs --redis",
     1, CONFIG_WORKERS_MAX},
    {"auth-secret-file", K_STRING, FIELD(auth_secret_file), "FILE",
     "require connection tokens (JWT) signed with HS256 and the secret in FILE", 0, 0},
    {"auth-public-key", K_STRING, FIELD(auth_public_key), "FILE",
     "require connection tokens (JWT) signed with RS256 or ES256, checked with this PEM public key", 0, 0},
    {"auth-issuer", K_STRING, FIELD(auth_issuer), "STR", "with auth: a token's iss must be STR", 0, 0},
    {"auth-audience", K_STRING, FIELD(auth_audience), "STR", "with auth: a token's aud must hold STR", 0, 0},
    {"auth-leeway", K_SECONDS, FIELD(auth_leeway), "S", "with auth: seconds of clock skew allowed for exp and nbf",
     0, 0},
    {"allow-anonymous", K_FLAG, FIELD(allow_anonymous), "",
     "with auth: clients without a token join as guests (not into --private-room rooms)", 0, 0},
    {"private-room", K_ROOMS, FIELD(private_room), "PATTERN",
     "repeatable: with --allow-anonymous, rooms (NAME or PREFIX*) that guests may not enter", 0, 0},
    {"api-key-file", K_STRING, FIELD(api_key_file), "FILE",
     "turn on the HTTP API under /api/, for callers with the key in FILE (one trailing newline ignored)", 0, 0},
    {"api-allow", K_CIDRS, FIELD(api_allow), "CIDR", "repeatable: only these addresses may call the API", 0, 0},
    {"max-api-body", K_BYTES, FIELD(max_api_body), "BYTES", "largest API request body; bigger gets 413", 2,
     16ull << 20},
    {"api-timeout", K_SECONDS, FIELD(api_timeout), "S",
     "seconds an API post waits for its number (the cluster's) before 504", 0, 0},
    {"daemon", K_FLAG, FIELD(daemon), "", "detach from the terminal and run in the background", 0, 0},
    {"pidfile", K_STRING, FIELD(pidfile), "FILE", "write the pid here; refuse to start if it names a live process",
     0, 0},
    {"log", K_STRING, FIELD(log_file), "FILE", "log file, reopened on SIGHUP (logrotate)", 0, 0},
    {"log-level", K_LOGLEVEL, FIELD(log_level), "LEVEL", "error, warn, info or debug", 0, 0},
    {"config", K_STRING, FIELD(config_file), "FILE", "read `key = value` options from FILE first", 0, 0},
};
#define NOPTIONS (sizeof(options) / sizeof(options[0]))
_Static_assert(NOPTIONS <= 64, "config.given has a bit per option");

void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    strcpy(cfg->host, "0.0.0.0");
    cfg->port = 8080;
    strcpy(cfg->static_dir, "static");
    strcpy(cfg->tls_min, "1.2");
    cfg->handshake_timeout = 10;
    cfg->close_timeout = 5;
    cfg->ping_interval = 30;
    cfg->idle_timeout = 75;
    cfg->shutdown_timeout = 5;
    cfg->max_message = 16u << 20;
    cfg->deflate_min_size = 128;
    cfg->max_conns = 100000;
    cfg->history = 100;
    cfg->max_rooms = 10000;
    cfg->max_room_members = 0;
    cfg->rate_limit = 20;
    cfg->max_backlog = 4u << 20;
    cfg->max_line = 4096;
    cfg->presence_limit = 1000;
    cfg->max_binary = 64u << 10;
    cfg->binary_rate_limit = 120;
    cfg->binary_byte_rate = 512u << 10;
    cfg->history_bytes = 256u << 10;
    cfg->history_total_bytes = 256u << 20;
    cfg->max_resume = cfg->history;
    cfg->max_api_body = 64u << 10;
    cfg->api_timeout = 10;
    strcpy(cfg->redis_prefix, "wshub");
    cfg->node_timeout = 15;
    cfg->auth_leeway = 30;
    cidr_parse("127.0.0.0/8", &cfg->stats_allow[0]);
    cidr_parse("::1", &cfg->stats_allow[1]);
    cfg->n_stats_allow = 2;
    cfg->log_level = LOG_INFO;
    cfg->workers = 1;
}

static const struct option_def *find_option(const char *name, size_t n)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (strlen(options[i].name) == n && memcmp(options[i].name, name, n) == 0)
            return &options[i];
    return NULL;
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    if (!*s || *s == '-' || *s == '+' || *s == ' ')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    unsigned long long mult = 1;
    if (*end == 'k' || *end == 'K')
        mult = 1ull << 10;
    else if (*end == 'm' || *end == 'M')
        mult = 1ull << 20;
    else if (*end == 'g' || *end == 'G')
        mult = 1ull << 30;
    if (mult != 1)
        end++;
    if (*end || v > max / mult)
        return -1;
    *out = v * mult;
    return 0;
}

/* The list a CIDR option fills, and its count. */
static struct cidr *cidr_list(struct config *cfg, const struct option_def *o, size_t **n)
{
    if (o->offset == offsetof(struct config, api_allow)) {
        *n = &cfg->n_api_allow;
        return cfg->api_allow;
    }
    *n = &cfg->n_stats_allow;
    return cfg->stats_allow;
}

/* Stores value into the option's field; on a bad value prints why to err,
 * after `where` (empty, or "FILE:LINE: "), and returns -1. */
static int set_option(struct config *cfg, const struct option_def *o, const char *value, const char *where,
                      FILE *err)
{
    char *field = (char *)cfg + o->offset;
    cfg->given |= 1ull << (o - options);
    unsigned long long v;
    int has_suffix = strpbrk(value, "kKmMgG") != NULL;
    switch (o->kind) {
    case K_STRING:
        if (*value && strlen(value) < o->size) {
            strcpy(field, value);
            return 0;
        }
        fprintf(err, "wshub: %s--%s %s\n", where, o->name, *value ? "is too long" : "must not be empty");
        return -1;
    case K_PORT:
        if (parse_uint(value, 65535, &v) == 0 && v > 0 && !has_suffix) {
            *(int *)field = (int)v;
            return 0;
        }
        fprintf(err, "wshub: %s--%s '%s' must be a port number from 1 to 65535\n", where, o->name, value);
        return -1;
    case K_SECONDS:
        if (parse_uint(value, 86400, &v) == 0 && !has_suffix) {
            *(unsigned *)field = (unsigned)v;
            return 0;
        }
        fprintf(err, "wshub: %s--%s '%s' must be a whole number of seconds from 0 to 86400\n", where, o->name,
                value);
        return -1;
    case K_BYTES:
    case K_COUNT:
        if (parse_uint(value, o->max, &v) == 0 && v >= o->min && !(o->kind == K_COUNT && has_suffix)) {
            *(uint64_t *)field = v;
            return 0;
        }
        fprintf(err, "wshub: %s--%s '%s' must be %s from %llu to %llu%s\n", where, o->name, value,
                o->kind == K_COUNT ? "a number" : "a byte count", (unsigned long long)o->min,
                (unsigned long long)o->max, o->kind == K_BYTES ? " (suffixes k, m, g work)" : "");
        return -1;
    case K_LOGLEVEL: {
        int level = log_level_parse(value);
        if (level >= 0) {
            *(int *)field = level;
            return 0;
        }
        fprintf(err, "wshub: %s--%s '%s' must be error, warn, info or debug\n", where, o->name, value);
        return -1;
    }
    case K_ORIGINS:
        if (cfg->n_allow_origin == CONFIG_LIST_MAX || !*value || strlen(value) >= sizeof(cfg->allow_origin[0])) {
            fprintf(err, "wshub: %s--%s '%s': at most %d origins of up to 255 bytes\n", where, o->name, value,
                    CONFIG_LIST_MAX);
            return -1;
        }
        strcpy(cfg->allow_origin[cfg->n_allow_origin++], value);
        return 0;
    case K_CIDRS: {
        size_t *n;
        struct cidr *list = cidr_list(cfg, o, &n);
        if (*n == CONFIG_LIST_MAX) {
            fprintf(err, "wshub: %s--%s: at most %d ranges\n", where, o->name, CONFIG_LIST_MAX);
            return -1;
        }
        if (cidr_parse(value, &list[*n]) == 0) {
            (*n)++;
            return 0;
        }
        fprintf(err, "wshub: %s--%s '%s' must be an address or ADDR/BITS (BITS up to 32 for IPv4, 128 for IPv6)\n",
                where, o->name, value);
        return -1;
    }
    case K_ROOMS: {
        size_t n = strlen(value), stem = n && value[n - 1] == '*' ? n - 1 : n;
        if (cfg->n_private_room == CONFIG_LIST_MAX) {
            fprintf(err, "wshub: %s--%s: at most %d patterns\n", where, o->name, CONFIG_LIST_MAX);
            return -1;
        }
        if ((stem == 0 && n == 1) || (stem > 0 && command_room_valid(value, stem))) {
            strcpy(cfg->private_room[cfg->n_private_room++], value);
            return 0;
        }
        fprintf(err, "wshub: %s--%s '%s' must be a room name (1 to 64 of A-Z a-z 0-9 _ - .), "
                     "optionally ending in *\n", where, o->name, value);
        return -1;
    }
    case K_TLSVER:
        if (strcmp(value, "1.2") == 0 || strcmp(value, "1.3") == 0) {
            strcpy(field, value);
            return 0;
        }
        fprintf(err, "wshub: %s--%s '%s' must be 1.2 or 1.3\n", where, o->name, value);
        return -1;
    case K_WORKERS:
        if (strcmp(value, "auto") == 0) {
            cfg->workers = 0;
            return 0;
        }
        if (parse_uint(value, o->max, &v) == 0 && v >= o->min && !has_suffix) {
            cfg->workers = (unsigned)v;
            return 0;
        }
        fprintf(err, "wshub: %s--%s '%s' must be auto or a number from %llu to %llu\n", where, o->name, value,
                (unsigned long long)o->min, (unsigned long long)o->max);
        return -1;
    case K_FLAG:
        if (strcmp(value, "true") == 0 || strcmp(value, "yes") == 0 || strcmp(value, "1") == 0) {
            *(int *)field = 1;
            return 0;
        }
        if (strcmp(value, "false") == 0 || strcmp(value, "no") == 0 || strcmp(value, "0") == 0) {
            *(int *)field = 0;
            return 0;
        }
        fprintf(err, "wshub: %s%s '%s' must be true or false\n", where, o->name, value);
        return -1;
    }
    return -1;
}

static int is_list(const struct option_def *o)
{
    return o->kind == K_ORIGINS || o->kind == K_CIDRS || o->kind == K_ROOMS;
}

/* Empties a list option, so a first command-line value replaces the file's. */
static void clear_list(struct config *cfg, const struct option_def *o)
{
    size_t *n;
    if (o->kind == K_ORIGINS) {
        cfg->n_allow_origin = 0;
    } else if (o->kind == K_CIDRS) {
        cidr_list(cfg, o, &n);
        *n = 0;
    } else if (o->kind == K_ROOMS) {
        cfg->n_private_room = 0;
    }
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = '\0';
    return s;
}

int config_parse_file(struct config *cfg, const char *path, FILE *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(err, "wshub: cannot read config file %s: %s\n", path, strerror(errno));
        return 2;
    }
    char line[8192];
    unsigned lineno = 0;
    unsigned long lists_seen = 0;
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f)) {
        lineno++;
        char where[CONFIG_PATH_MAX + 32];
        snprintf(where, sizeof(where), "%s:%u: ", path, lineno);
        if (!strchr(line, '\n') && !feof(f)) {
            fprintf(err, "wshub: %sline too long\n", where);
            rc = 2;
            break;
        }
        for (char *h = strchr(line, '#'); h; h = strchr(h + 1, '#')) {
            if (h == line || h[-1] == ' ' || h[-1] == '\t') {
                *h = '\0';   /* a comment: at the start or after whitespace */
                break;
            }
        }
        char *s = trim(line);
        if (*s == '\0')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            fprintf(err, "wshub: %sexpected `key = value`, got '%s'\n", where, s);
            rc = 2;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        const struct option_def *o = find_option(key, strlen(key));
        if (!o || strcmp(o->name, "config") == 0) {
            fprintf(err, "wshub: %sunknown option '%s'\n", where, key);
            rc = 2;
            break;
        }
        unsigned long bit = 1ul << (o - options);
        if (is_list(o) && !(lists_seen & bit)) {
            clear_list(cfg, o);   /* the file's list replaces the default */
            lists_seen |= bit;
        }
        if (set_option(cfg, o, value, where, err) < 0)
            rc = 2;
    }
    fclose(f);
    return rc;
}

static void print_default(FILE *out, const struct config *d, const struct option_def *o)
{
    const char *field = (const char *)d + o->offset;
    switch (o->kind) {
    case K_STRING:
        fprintf(out, "%s", *field ? field : o->offset == offsetof(struct config, log_file) ? "stderr" : "none");
        break;
    case K_TLSVER: fprintf(out, "%s", field); break;
    case K_PORT: fprintf(out, "%d", *(const int *)field); break;
    case K_SECONDS: fprintf(out, "%u", *(const unsigned *)field); break;
    case K_BYTES:
    case K_COUNT: fprintf(out, "%llu", (unsigned long long)*(const uint64_t *)field); break;
    case K_LOGLEVEL: {
        static const char *const levels[] = {"error", "warn", "info", "debug"};
        fprintf(out, "%s", levels[*(const int *)field]);
        break;
    }
    case K_ORIGINS: fprintf(out, "any"); break;
    case K_CIDRS: {
        size_t *n;
        cidr_list((struct config *)d, o, &n);
        fprintf(out, "%s", *n ? "127.0.0.0/8 and ::1" : "any");
        break;
    }
    case K_ROOMS: fprintf(out, "none"); break;
    case K_FLAG: fprintf(out, "off"); break;
    case K_WORKERS: fprintf(out, "%u", *(const unsigned *)field); break;
    }
}

void config_usage(FILE *out)
{
    struct config d;
    config_defaults(&d);
    fprintf(out, "Usage: wshub [OPTION]...\n"
                 "A WebSocket chat-room server: one thread, one epoll loop.\n\nOptions:\n");
    for (size_t i = 0; i < NOPTIONS; i++) {
        char left[64];
        snprintf(left, sizeof(left), "--%s %s", options[i].name, options[i].arg);
        fprintf(out, "  %-26s %s (default: ", left, options[i].help);
        print_default(out, &d, &options[i]);
        fprintf(out, ")\n");
    }
    fprintf(out, "  %-26s %s\n", "-h, --help", "print this help and exit");
    fprintf(out, "\nIn a --config file each option is a `name = value` line (daemon = true).\n"
                 "Endpoints: /ws/ROOM (chat room; /ws is room lobby), /echo (WebSocket echo),\n"
                 "/healthz, /stats, /metrics; anything else is a static file.\n");
}

/* Finds --config FILE (or --config=FILE) in argv, or NULL. */
static const char *find_config_arg(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            return argv[i + 1];
        if (strncmp(argv[i], "--config=", 9) == 0)
            return argv[i] + 9;
    }
    return NULL;
}

int config_parse_args(struct config *cfg, int argc, char **argv, FILE *out, FILE *err)
{
    struct option longopts[NOPTIONS + 2];
    for (size_t i = 0; i < NOPTIONS; i++)
        longopts[i] = (struct option){options[i].name, options[i].kind == K_FLAG ? no_argument : required_argument,
                                      NULL, (int)(256 + i)};
    longopts[NOPTIONS] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[NOPTIONS + 1] = (struct option){NULL, 0, NULL, 0};

    const char *file = find_config_arg(argc, argv);
    if (file && config_parse_file(cfg, file, err) != 0)
        return 2;

    unsigned long lists_seen = 0;
    opterr = 0;
    optind = 1;
    for (;;) {
        int longindex = -1;
        int c = getopt_long(argc, argv, ":h", longopts, &longindex);
        if (c == -1)
            break;
        if (c == 'h') {
            config_usage(out);
            return 1;
        }
        if (c == '?') {
            fprintf(err, "wshub: unknown option '%s' (see --help)\n", argv[optind - 1]);
            return 2;
        }
        if (c == ':') {
            fprintf(err, "wshub: option '%s' needs a value (see --help)\n", argv[optind - 1]);
            return 2;
        }
        const struct option_def *o = &options[c - 256];
        if (o->kind == K_FLAG) {
            *(int *)((char *)cfg + o->offset) = 1;
            cfg->given |= 1ull << (o - options);
            continue;
        }
        unsigned long bit = 1ul << (c - 256);
        if (is_list(o) && !(lists_seen & bit)) {
            clear_list(cfg, o);
            lists_seen |= bit;
        }
        if (set_option(cfg, o, optarg, "", err) < 0)
            return 2;
    }
    if (optind < argc) {
        fprintf(err, "wshub: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    return 0;
}

int config_given(const struct config *cfg, const char *name)
{
    const struct option_def *o = find_option(name, strlen(name));
    return o && (cfg->given & (1ull << (o - options)));
}

/* Worst-case bytes of a chat event around a line of n bytes: every byte
 * escaped to six (\u0001), plus the envelope (type, room, nick, seq, ts). */
#define EVENT_ENVELOPE 512
/* Worst-case bytes of one nick in a member list: 32 printable bytes, each
 * escaped to at most two, quotes and a comma. */
#define LISTED_NICK (2 * 32 + 3)
/* With sign-in, what a listed authenticated member adds to the "users"
 * object: its nick again, a colon, and a user id of up to 128 bytes escaped. */
#define LISTED_USER (LISTED_NICK + 1 + 2 * 128 + 3)

/* Fits an option that was not given to at most `fit`; if it was given and
 * is larger, prints why and returns -1. */
static int fit(struct config *cfg, uint64_t *value, const char *name, uint64_t fit_to, FILE *err,
               const char *conflict)
{
    if (*value <= fit_to)
        return 0;
    if (!config_given(cfg, name)) {
        *value = fit_to;
        return 0;
    }
    fprintf(err, "wshub: --%s %llu conflicts with %s\n", name, (unsigned long long)*value, conflict);
    return -1;
}

/* The CPUs this process may run on (its affinity mask), at least 1. */
static unsigned cpus_allowed(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) < 0 || CPU_COUNT(&set) < 1)
        return 1;
    return (unsigned)CPU_COUNT(&set);
}

/* The auth options need a key, and exactly one. Returns 0, or -1 after printing why. */
static int check_auth(const struct config *cfg, FILE *err)
{
    if (cfg->auth_secret_file[0] && cfg->auth_public_key[0]) {
        fprintf(err, "wshub: --auth-secret-file conflicts with --auth-public-key: tokens are checked with one "
                     "key (HS256 with a secret, or RS256/ES256 with a public key)\n");
        return -1;
    }
    if (cfg->auth_secret_file[0] || cfg->auth_public_key[0])
        return 0;
    static const char *const needs_key[] = {"allow-anonymous", "private-room", "auth-issuer", "auth-audience",
                                            "auth-leeway"};
    for (size_t i = 0; i < sizeof(needs_key) / sizeof(needs_key[0]); i++) {
        if (config_given(cfg, needs_key[i]) && (i > 0 || cfg->allow_anonymous)) {   /* "allow-anonymous = false" is fine */
            fprintf(err, "wshub: --%s needs --auth-secret-file or --auth-public-key: without a key there are "
                         "no tokens to check\n", needs_key[i]);
            return -1;
        }
    }
    return 0;
}

int config_check(struct config *cfg, FILE *err)
{
    int auto_workers = cfg->workers == 0;
    if (auto_workers)
        cfg->workers = cpus_allowed() < CONFIG_WORKERS_MAX ? cpus_allowed() : CONFIG_WORKERS_MAX;
    if (cfg->workers > 1 && !cfg->redis[0]) {
        fprintf(err, "wshub: --workers %s%u needs --redis: the workers are nodes of one cluster, so that a "
                     "room spans them\n", auto_workers ? "auto = " : "", cfg->workers);
        return 2;
    }
    if (!cfg->tls_cert[0] != !cfg->tls_key[0]) {
        fprintf(err, "wshub: --%s needs --%s: TLS takes a certificate and its key\n",
                cfg->tls_cert[0] ? "tls-cert" : "tls-key", cfg->tls_cert[0] ? "tls-key" : "tls-cert");
        return 2;
    }
    const char *api_only = config_given(cfg, "api-allow") ? "api-allow"
                           : config_given(cfg, "max-api-body") ? "max-api-body"
                           : config_given(cfg, "api-timeout")  ? "api-timeout" : NULL;
    if (!cfg->api_key_file[0] && api_only) {
        fprintf(err, "wshub: --%s needs --api-key-file: the HTTP API is off without a key\n", api_only);
        return 2;
    }
    if (cfg->api_timeout == 0) {
        fprintf(err, "wshub: --api-timeout must be at least 1 second\n");
        return 2;
    }
    if (!cfg->tls_cert[0] && config_given(cfg, "tls-min")) {
        fprintf(err, "wshub: --tls-min needs --tls-cert and --tls-key\n");
        return 2;
    }
    if (check_auth(cfg, err) < 0)
        return 2;
    if (!cfg->tls_cert[0] && cfg->no_ktls) {
        fprintf(err, "wshub: --no-ktls needs --tls-cert and --tls-key\n");
        return 2;
    }
    uint64_t half = cfg->max_backlog / 2;
    char why[256];
    /* One relay of the largest message must fit twice in a member's backlog,
     * so that a member who reads is never cut by a single message. */
    snprintf(why, sizeof(why), "--max-backlog %llu: one relayed message must fit twice in a member's backlog",
             (unsigned long long)cfg->max_backlog);
    if (fit(cfg, &cfg->max_binary, "max-binary", half > 14 ? half - 14 : 1, err, why) < 0)
        return 2;
    if (fit(cfg, &cfg->max_line, "max-line", (half - EVENT_ENVELOPE) / 6, err, why) < 0)
        return 2;
    /* A welcome (member list and history) must fit in the joiner's backlog
     * too; defaults not given share it, half each. */
    if (cfg->presence_limit == 0 && cfg->max_room_members == 0) {
        fprintf(err, "wshub: --presence-limit 0 (no limit) needs --max-room-members: without either, a "
                     "welcome's member list is unbounded and cannot fit --max-backlog\n");
        return 2;
    }
    snprintf(why, sizeof(why), "--max-backlog %llu: a welcome's member list must fit in the joiner's backlog",
             (unsigned long long)cfg->max_backlog);
    uint64_t per_member = LISTED_NICK + (cfg->auth_secret_file[0] || cfg->auth_public_key[0] ? LISTED_USER : 0);
    uint64_t list_max = (half / 2 - EVENT_ENVELOPE) / per_member;
    if (cfg->presence_limit && fit(cfg, &cfg->presence_limit, "presence-limit", list_max, err, why) < 0)
        return 2;
    uint64_t listed = cfg->presence_limit;
    if (cfg->max_room_members && (listed == 0 || cfg->max_room_members < listed))
        listed = cfg->max_room_members;
    uint64_t list_bytes = listed * per_member + EVENT_ENVELOPE;
    if (list_bytes > half / 2 && fit(cfg, &cfg->max_room_members, "max-room-members", list_max, err, why) < 0)
        return 2;
    if (list_bytes > half / 2)
        list_bytes = half / 2;
    snprintf(why, sizeof(why), "--max-backlog %llu: a welcome (history and member list) must fit in the "
             "joiner's backlog", (unsigned long long)cfg->max_backlog);
    if (fit(cfg, &cfg->history_bytes, "history-bytes", half - list_bytes, err, why) < 0)
        return 2;
    snprintf(why, sizeof(why), "--history-total-bytes %llu: one room's history must fit in the total",
             (unsigned long long)cfg->history_total_bytes);
    if (fit(cfg, &cfg->history_bytes, "history-bytes", cfg->history_total_bytes, err, why) < 0)
        return 2;
    if (cfg->binary_byte_rate && cfg->max_binary > 2 * cfg->binary_byte_rate) {
        fprintf(err, "wshub: --max-binary %llu conflicts with --binary-byte-rate %llu: a message over the "
                     "rate's burst (2x) could never pass\n",
                (unsigned long long)cfg->max_binary, (unsigned long long)cfg->binary_byte_rate);
        return 2;
    }
    if (!config_given(cfg, "max-resume"))
        cfg->max_resume = cfg->history;
    if (cfg->node_timeout == 0) {
        fprintf(err, "wshub: --node-timeout 0: a node must be taken for dead after 1 second of silence or more\n");
        return 2;
    }
    if (cfg->ping_interval && cfg->idle_timeout && cfg->idle_timeout <= cfg->ping_interval) {
        fprintf(err, "wshub: --idle-timeout %u conflicts with --ping-interval %u: a client that only "
                     "answers pings would be closed as idle\n", cfg->idle_timeout, cfg->ping_interval);
        return 2;
    }
    return 0;
}
