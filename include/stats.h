/* stats: the server's counters and gauges, and their two renderings: /stats
 * JSON and /metrics Prometheus text. Plain data: whoever does a thing counts
 * it; rendering does no I/O. */
#ifndef WSHUB_STATS_H
#define WSHUB_STATS_H

#include <stdint.h>

#include "buf.h"

/* Why a connection ended. */
enum stats_close {
    STATS_CLOSE_NORMAL,
    STATS_CLOSE_IDLE,
    STATS_CLOSE_PROTOCOL,
    STATS_CLOSE_SLOW,
    STATS_CLOSE_RATE,
    STATS_CLOSE_LIMIT,
    STATS_CLOSE_SHUTDOWN,
    STATS_CLOSE_ERROR,
    STATS_CLOSE_COUNT
};

struct stats {
    uint64_t conns_http, conns_ws;   /* open now */
    uint64_t accepted;
    uint64_t rooms;                  /* filled in by the application before rendering */
    uint64_t messages_in, messages_out;
    uint64_t bytes_in, bytes_out;
    uint64_t frames_broadcast;       /* filled in by the application before rendering */
    uint64_t pings_sent;
    uint64_t closed[STATS_CLOSE_COUNT];
};

/* The name of a close reason as it appears in /stats and /metrics. */
const char *stats_close_name(enum stats_close why);

/* Appends the /stats JSON document. Returns 0 or -1 (no memory). */
int stats_render_json(const struct stats *s, uint64_t uptime_s, struct buf *out);

/* Appends the /metrics Prometheus text exposition. Returns 0 or -1. */
int stats_render_prometheus(const struct stats *s, uint64_t uptime_s, struct buf *out);

#endif
