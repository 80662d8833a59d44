/* config: every option of the server in one struct, read from the command
 * line and an optional `key = value` file. One table describes each option
 * (name, kind, default, limits, help), so --help, the file, parsing and
 * validation can never disagree. */
#ifndef WSHUB_CONFIG_H
#define WSHUB_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cidr.h"

#define CONFIG_LIST_MAX 32
#define CONFIG_PATH_MAX 4096
#define CONFIG_WORKERS_MAX 128
#define CONFIG_PATTERN_MAX 66   /* a room name (64) and a trailing '*', with the NUL */

struct config {
    char host[256];
    int port;
    char static_dir[CONFIG_PATH_MAX];
    char tls_cert[CONFIG_PATH_MAX];   /* PEM certificate chain; empty = plain TCP */
    char tls_key[CONFIG_PATH_MAX];    /* PEM private key */
    char tls_min[4];                  /* "1.2" or "1.3" */
    int no_ktls;                      /* never use kernel TLS */
    unsigned handshake_timeout;   /* seconds */
    unsigned close_timeout;       /* seconds to wait for the peer's close */
    unsigned ping_interval;       /* seconds, 0 = no pings */
    unsigned idle_timeout;        /* seconds, 0 = never */
    unsigned shutdown_timeout;    /* seconds */
    uint64_t max_message;         /* bytes */
    int deflate;                  /* negotiate permessage-deflate */
    uint64_t deflate_min_size;    /* bytes: shorter messages go uncompressed */
    uint64_t max_conns;
    uint64_t history;             /* message events kept per room */
    uint64_t max_rooms;
    uint64_t max_room_members;    /* 0 = unlimited */
    uint64_t rate_limit;          /* chat lines per second, 0 = off */
    uint64_t max_backlog;         /* bytes */
    uint64_t max_line;            /* bytes */
    uint64_t presence_limit;      /* members; 0 = no limit */
    uint64_t max_binary;          /* bytes of a binary message relayed to a room */
    uint64_t binary_rate_limit;   /* binary frames per second per connection, 0 = off */
    uint64_t binary_byte_rate;    /* binary bytes per second per connection, 0 = off */
    uint64_t history_bytes;       /* bytes of history per room */
    uint64_t history_total_bytes; /* bytes of history across all rooms */
    uint64_t max_resume;          /* messages a resuming client may be sent; default --history */
    char allow_origin[CONFIG_LIST_MAX][256];
    size_t n_allow_origin;        /* 0 = every origin allowed */
    struct cidr stats_allow[CONFIG_LIST_MAX];
    size_t n_stats_allow;
    unsigned workers;             /* worker processes; 0 = auto until config_check */
    char api_key_file[CONFIG_PATH_MAX];   /* the HTTP API's key; empty = no API */
    struct cidr api_allow[CONFIG_LIST_MAX];
    size_t n_api_allow;                   /* 0 = every address may call the API */
    uint64_t max_api_body;                /* bytes of an API request body */
    unsigned api_timeout;                 /* seconds a post waits for its number */
    int daemon;
    char pidfile[CONFIG_PATH_MAX];
    char log_file[CONFIG_PATH_MAX];   /* empty = stderr */
    int log_level;                /* LOG_ERROR .. LOG_DEBUG */
    char config_file[CONFIG_PATH_MAX];
    char redis[CONFIG_PATH_MAX];          /* redis:// or unix:// URL; empty = one node, in memory */
    char redis_password_file[CONFIG_PATH_MAX];
    char redis_prefix[128];
    char node_id[128];                    /* empty = HOSTNAME:PID */
    unsigned node_timeout;                /* seconds of silence after which a node is taken for dead */
    unsigned history_ttl;                 /* seconds an idle room's history lives in Redis; 0 = for ever */
    char auth_secret_file[CONFIG_PATH_MAX];   /* HS256 secret; empty = none */
    char auth_public_key[CONFIG_PATH_MAX];    /* PEM public key (RS256/ES256); empty = none */
    char auth_issuer[256];                    /* empty = iss not checked */
    char auth_audience[256];                  /* empty = aud not checked */
    unsigned auth_leeway;                     /* seconds of clock skew for exp and nbf */
    int allow_anonymous;                      /* with auth: token-less clients come in as guests */
    char private_room[CONFIG_LIST_MAX][CONFIG_PATTERN_MAX];   /* rooms guests may not enter */
    size_t n_private_room;
    uint64_t given;               /* bit i: the i-th option was set explicitly */
};

/* Fills cfg with the defaults. */
void config_defaults(struct config *cfg);

/* Parses argv into cfg (after config_defaults), reading --config FILE first so
 * that command-line options win. Returns 0 to run, 1 when --help was printed
 * to out, or 2 after printing a one-line error to err (the exit code for bad
 * usage). */
int config_parse_args(struct config *cfg, int argc, char **argv, FILE *out, FILE *err);

/* True when the option called name was set on the command line or in the file. */
int config_given(const struct config *cfg, const char *name);

/* Checks the options against each other (every limit against every other it
 * multiplies with) and fits the defaults of options not given to the limits
 * that were; --workers auto becomes the number of CPUs we may run on. Returns 0, or 2 after printing which options conflict and why. */
int config_check(struct config *cfg, FILE *err);

/* Reads `key = value` lines from path into cfg. Returns 0, or 2 after printing
 * "wshub: FILE:LINE: problem" to err. */
int config_parse_file(struct config *cfg, const char *path, FILE *err);

/* Prints the usage text listing every option with its default. */
void config_usage(FILE *out);

#endif
