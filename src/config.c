/* config: the option table, defaults, command-line parsing and --help.
 * Never exits: it returns what main should do. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

enum kind { K_STRING, K_PORT, K_SECONDS, K_BYTES, K_COUNT, K_LOGLEVEL };

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
    {"static", K_STRING, FIELD(static_dir), "DIR", "directory of static files served over HTTP", 0, 0},
    {"handshake-timeout", K_SECONDS, FIELD(handshake_timeout), "S",
     "seconds allowed for an HTTP request or handshake to arrive", 0, 0},
    {"close-timeout", K_SECONDS, FIELD(close_timeout), "S",
     "seconds to wait for the peer's close frame before dropping TCP", 0, 0},
    {"max-message", K_BYTES, FIELD(max_message), "BYTES",
     "largest WebSocket message accepted (suffixes k, m, g); bigger closes with 1009", 1, 1ull << 40},
    {"history", K_COUNT, FIELD(history), "N", "message events kept per room and sent to joiners; 0 = off",
     0, 100000},
    {"max-rooms", K_COUNT, FIELD(max_rooms), "N", "rooms kept at once; the least recently used empty one is evicted",
     1, 100000000},
    {"max-room-members", K_COUNT, FIELD(max_room_members), "N", "members per room; 0 = unlimited", 0, 100000000},
    {"rate-limit", K_COUNT, FIELD(rate_limit), "N", "chat lines per second per connection, burst 2N; 0 = off",
     0, 1000000},
    {"max-backlog", K_BYTES, FIELD(max_backlog), "BYTES",
     "unsent output after which a room member is cut off as a slow consumer", 1024, 1ull << 40},
    {"max-line", K_BYTES, FIELD(max_line), "BYTES", "longest chat line; longer gets a too_long error", 1,
     1ull << 40},
    {"log-level", K_LOGLEVEL, FIELD(log_level), "LEVEL", "error, warn, info or debug", 0, 0},
};
#define NOPTIONS (sizeof(options) / sizeof(options[0]))

void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    strcpy(cfg->host, "0.0.0.0");
    cfg->port = 8080;
    strcpy(cfg->static_dir, "static");
    cfg->handshake_timeout = 10;
    cfg->close_timeout = 5;
    cfg->max_message = 16u << 20;
    cfg->history = 100;
    cfg->max_rooms = 10000;
    cfg->max_room_members = 0;
    cfg->rate_limit = 20;
    cfg->max_backlog = 4u << 20;
    cfg->max_line = 4096;
    cfg->log_level = LOG_INFO;
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    if (!*s || *s == '-' || *s == '+')
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

/* Stores value into the option's field; on a bad value prints why to err and returns -1. */
static int set_option(struct config *cfg, const struct option_def *o, const char *value, FILE *err)
{
    char *field = (char *)cfg + o->offset;
    unsigned long long v;
    int has_suffix = strpbrk(value, "kKmMgG") != NULL;
    switch (o->kind) {
    case K_STRING:
        if (*value && strlen(value) < o->size) {
            strcpy(field, value);
            return 0;
        }
        fprintf(err, "wshub: --%s %s\n", o->name, *value ? "is too long" : "must not be empty");
        return -1;
    case K_PORT:
        if (parse_uint(value, 65535, &v) == 0 && v > 0 && !has_suffix) {
            *(int *)field = (int)v;
            return 0;
        }
        fprintf(err, "wshub: --%s '%s' must be a port number from 1 to 65535\n", o->name, value);
        return -1;
    case K_SECONDS:
        if (parse_uint(value, 86400, &v) == 0 && !has_suffix) {
            *(unsigned *)field = (unsigned)v;
            return 0;
        }
        fprintf(err, "wshub: --%s '%s' must be a whole number of seconds from 0 to 86400\n", o->name, value);
        return -1;
    case K_BYTES:
    case K_COUNT:
        if (parse_uint(value, o->max, &v) == 0 && v >= o->min && !(o->kind == K_COUNT && has_suffix)) {
            *(uint64_t *)field = v;
            return 0;
        }
        fprintf(err, "wshub: --%s '%s' must be %s from %llu to %llu%s\n", o->name, value,
                o->kind == K_COUNT ? "a number" : "a byte count", (unsigned long long)o->min,
                (unsigned long long)o->max, o->kind == K_BYTES ? " (suffixes k, m, g work)" : "");
        return -1;
    case K_LOGLEVEL: {
        int level = log_level_parse(value);
        if (level >= 0) {
            *(int *)field = level;
            return 0;
        }
        fprintf(err, "wshub: --%s '%s' must be error, warn, info or debug\n", o->name, value);
        return -1;
    }
    }
    return -1;
}

static void print_default(FILE *out, const struct config *d, const struct option_def *o)
{
    const char *field = (const char *)d + o->offset;
    switch (o->kind) {
    case K_STRING: fprintf(out, "%s", field); break;
    case K_PORT: fprintf(out, "%d", *(const int *)field); break;
    case K_SECONDS: fprintf(out, "%u", *(const unsigned *)field); break;
    case K_BYTES:
    case K_COUNT: fprintf(out, "%llu", (unsigned long long)*(const uint64_t *)field); break;
    case K_LOGLEVEL: {
        static const char *const levels[] = {"error", "warn", "info", "debug"};
        fprintf(out, "%s", levels[*(const int *)field]);
        break;
    }
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
    fprintf(out, "\nEndpoints: /ws/ROOM (chat room; /ws is room lobby), /echo (WebSocket echo);\n"
                 "anything else is a static file.\n");
}

int config_parse_args(struct config *cfg, int argc, char **argv, FILE *out, FILE *err)
{
    struct option longopts[NOPTIONS + 2];
    for (size_t i = 0; i < NOPTIONS; i++)
        longopts[i] = (struct option){options[i].name, required_argument, NULL, (int)(256 + i)};
    longopts[NOPTIONS] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[NOPTIONS + 1] = (struct option){NULL, 0, NULL, 0};

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
        if (set_option(cfg, &options[c - 256], optarg, err) < 0)
            return 2;
    }
    if (optind < argc) {
        fprintf(err, "wshub: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    return 0;
}
