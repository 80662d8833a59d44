/* stats: renders the counters as JSON and as Prometheus text. No I/O. */
#include "stats.h"

#include <stdio.h>
#include <string.h>

static const char *const close_names[STATS_CLOSE_COUNT] = {
    "normal", "idle", "protocol_error", "slow_consumer", "rate_limit", "limit_reached", "shutdown", "error",
};

const char *stats_close_name(enum stats_close why)
{
    return close_names[why];
}

static int raw(struct buf *out, const char *text)
{
    return buf_append(out, text, strlen(text));
}

/* Appends printf-formatted text. */
static int put(struct buf *out, const char *fmt, unsigned long long v)
{
    char line[256];
    int n = snprintf(line, sizeof(line), fmt, v);
    return buf_append(out, line, (size_t)n);
}

int stats_render_json(const struct stats *s, uint64_t uptime_s, struct buf *out)
{
    int rc = 0;
    rc |= put(out, "{\"uptime_seconds\":%llu", uptime_s);
    rc |= put(out, ",\"connections\":{\"http\":%llu", s->conns_http);
    rc |= put(out, ",\"websocket\":%llu}", s->conns_ws);
    rc |= put(out, ",\"connections_accepted\":%llu", s->accepted);
    rc |= put(out, ",\"rooms\":%llu", s->rooms);
    rc |= put(out, ",\"messages_in\":%llu", s->messages_in);
    rc |= put(out, ",\"messages_out\":%llu", s->messages_out);
    rc |= put(out, ",\"bytes_in\":%llu", s->bytes_in);
    rc |= put(out, ",\"bytes_out\":%llu", s->bytes_out);
    rc |= put(out, ",\"frames_broadcast\":%llu", s->frames_broadcast);
    rc |= put(out, ",\"pings_sent\":%llu", s->pings_sent);
    rc |= raw(out, ",\"closed\":{");
    for (int i = 0; i < STATS_CLOSE_COUNT; i++) {
        char fmt[64];
        snprintf(fmt, sizeof(fmt), "%s\"%s\":%%llu", i ? "," : "", close_names[i]);
        rc |= put(out, fmt, s->closed[i]);
    }
    rc |= raw(out, "}}\n");
    return rc ? -1 : 0;
}

/* One metric with HELP and TYPE lines. */
static int metric(struct buf *out, const char *name, const char *type, const char *help, uint64_t v)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
                     (unsigned long long)v);
    return buf_append(out, line, (size_t)n);
}

int stats_render_prometheus(const struct stats *s, uint64_t uptime_s, struct buf *out)
{
    int rc = 0;
    rc |= metric(out, "wshub_uptime_seconds", "gauge", "Seconds since the server started.", uptime_s);
    rc |= put(out,
              "# HELP wshub_connections Open connections by type.\n"
              "# TYPE wshub_connections gauge\nwshub_connections{type=\"http\"} %llu\n",
              s->conns_http);
    rc |= put(out, "wshub_connections{type=\"websocket\"} %llu\n", s->conns_ws);
    rc |= metric(out, "wshub_connections_accepted_total", "counter", "Connections accepted.", s->accepted);
    rc |= metric(out, "wshub_rooms", "gauge", "Chat rooms kept, with members or history.", s->rooms);
    rc |= metric(out, "wshub_messages_received_total", "counter", "WebSocket messages received.", s->messages_in);
    rc |= metric(out, "wshub_messages_sent_total", "counter", "WebSocket messages queued to clients.",
                 s->messages_out);
    rc |= metric(out, "wshub_bytes_received_total", "counter", "Bytes read from sockets.", s->bytes_in);
    rc |= metric(out, "wshub_bytes_sent_total", "counter", "Bytes written to sockets.", s->bytes_out);
    rc |= metric(out, "wshub_frames_broadcast_total", "counter", "Frames encoded once and fanned out to a room.",
                 s->frames_broadcast);
    rc |= metric(out, "wshub_pings_sent_total", "counter", "Keepalive pings sent.", s->pings_sent);
    rc |= raw(out, "# HELP wshub_connections_closed_total Connections ended, by reason.\n"
                   "# TYPE wshub_connections_closed_total counter\n");
    for (int i = 0; i < STATS_CLOSE_COUNT; i++) {
        char fmt[96];
        snprintf(fmt, sizeof(fmt), "wshub_connections_closed_total{reason=\"%s\"} %%llu\n", close_names[i]);
        rc |= put(out, fmt, s->closed[i]);
    }
    return rc ? -1 : 0;
}
