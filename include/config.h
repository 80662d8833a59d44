/* config: every option of the server in one struct, parsed from the command
 * line. One table describes each option (name, value kind, default, help), so
 * --help, parsing and validation can never disagree. */
#ifndef WSHUB_CONFIG_H
#define WSHUB_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct config {
    char host[256];
    int port;
    char static_dir[4096];
    unsigned handshake_timeout;   /* seconds */
    unsigned close_timeout;       /* seconds to wait for the peer's close */
    uint64_t max_message;         /* bytes */
    uint64_t history;             /* message events kept per room */
    uint64_t max_rooms;
    uint64_t max_room_members;    /* 0 = unlimited */
    uint64_t rate_limit;          /* chat lines per second, 0 = off */
    uint64_t max_backlog;         /* bytes */
    uint64_t max_line;            /* bytes */
    int log_level;                /* LOG_ERROR .. LOG_DEBUG */
};

/* Fills cfg with the defaults. */
void config_defaults(struct config *cfg);

/* Parses argv into cfg (after config_defaults). Returns 0 to run, 1 when --help
 * was printed to out, or 2 after printing a one-line error to err (the exit code
 * for bad usage). */
int config_parse_args(struct config *cfg, int argc, char **argv, FILE *out, FILE *err);

/* Prints the usage text listing every option with its default. */
void config_usage(FILE *out);

#endif
