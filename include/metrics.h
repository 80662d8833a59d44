/* metrics: writes counters and gauges in one of two renderings, the /stats
 * JSON object and the /metrics Prometheus text exposition, so that each layer
 * names and writes its own figures and the two renderings never disagree. A
 * third form records the figures as plain structs (for the workers' shared
 * region), and sets of records from several processes are rendered summed,
 * each also with a per-set label. Pure: appends to memory it is given, no
 * I/O, no globals. */
#ifndef WSHUB_METRICS_H
#define WSHUB_METRICS_H

#include <stdint.h>

#include "buf.h"

enum metrics_format { METRICS_JSON, METRICS_PROMETHEUS, METRICS_RECORD };

/* How a figure adds up across processes (Prometheus: the first is a counter,
 * the others gauges). */
enum metrics_type {
    METRICS_COUNTER,  /* a running total: summed */
    METRICS_GAUGE,    /* an amount now (connections, bytes held): summed */
    METRICS_LEVEL,    /* a gauge that is not an amount (uptime, a latency, a 0/1 state): the highest */
    METRICS_ID,       /* names something (a pid): shown per set only, never summed */
};

/* One figure as written, with its names copied (it may travel to another
 * process). A group member has label and label_value set. */
struct metrics_record {
    char json[48];
    char prom[64];
    char help[160];
    char label[16];
    char label_value[32];
    uint32_t type;           /* enum metrics_type */
    uint64_t value;
};

/* The records one process wrote. */
struct metrics_set {
    const struct metrics_record *rec;
    size_t n;
};

struct metrics {
    struct buf *out;
    enum metrics_format format;
    int failed;              /* an append ran out of memory */
    int fields;              /* JSON: fields written at this level */
    int group_fields;        /* JSON: fields written in the open group */
    const char *group_name;  /* Prometheus: the open group's metric name */
    const char *group_label; /* Prometheus and records: the open group's label name */
    const char *group_json;  /* records: the open group's JSON key, */
    const char *group_help;  /* its help */
    enum metrics_type group_type;
    struct metrics_record *rec; /* records: where they go, */
    size_t n_rec, cap_rec;      /* how many were written, and room for */
};

/* Starts a document in out (JSON: the opening brace). */
void metrics_begin(struct metrics *m, struct buf *out, enum metrics_format format);

/* Starts recording figures into rec (room for cap); m->n_rec counts them.
 * metrics_end returns -1 if they did not fit. */
void metrics_begin_records(struct metrics *m, struct metrics_record *rec, size_t cap);

/* One figure: "json_key":v in JSON; HELP, TYPE and `prom_name v` in Prometheus. */
void metrics_value(struct metrics *m, const char *json_key, const char *prom_name, enum metrics_type type,
                   const char *help, uint64_t v);

/* A family of figures told apart by one label: "json_key":{...} in JSON, one
 * HELP and TYPE for prom_name in Prometheus. Add members with
 * metrics_group_value, then call metrics_group_end. */
void metrics_group_begin(struct metrics *m, const char *json_key, const char *prom_name, enum metrics_type type,
                         const char *help, const char *label);

/* One member of the open group: "label_value":v, or prom_name{label="label_value"} v. */
void metrics_group_value(struct metrics *m, const char *label_value, uint64_t v);

/* Closes the open group. */
void metrics_group_end(struct metrics *m);

/* Writes the figures of n sets (each set the records of one process, in the
 * same order) as one server's: each figure summed over the sets (METRICS_LEVEL:
 * the highest; METRICS_ID: not at all), and per set i, in Prometheus the same
 * figure with the label set_label="i" beside the summed one, in JSON an array
 * under the key set_label "s" of objects {"set_label":i, its figures...}. The
 * set with the most records gives the order; a figure missing from a set
 * counts as 0 there. */
void metrics_sum(struct metrics *m, const struct metrics_set *sets, size_t n, const char *set_label);

/* Ends the document (JSON: closing brace and newline). Returns 0, or -1 if
 * any append ran out of memory (the text is then incomplete). */
int metrics_end(struct metrics *m);

#endif
