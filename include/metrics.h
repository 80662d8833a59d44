/* metrics: writes counters and gauges in one of two renderings, the /stats
 * JSON object and the /metrics Prometheus text exposition, so that each layer
 * names and writes its own figures and the two renderings never disagree.
 * Pure: appends text to a buffer, no I/O, no globals. */
#ifndef WSHUB_METRICS_H
#define WSHUB_METRICS_H

#include <stdint.h>

#include "buf.h"

enum metrics_format { METRICS_JSON, METRICS_PROMETHEUS };
enum metrics_type { METRICS_COUNTER, METRICS_GAUGE };

struct metrics {
    struct buf *out;
    enum metrics_format format;
    int failed;              /* an append ran out of memory */
    int fields;              /* JSON: fields written at this level */
    int group_fields;        /* JSON: fields written in the open group */
    const char *group_name;  /* Prometheus: the open group's metric name */
    const char *group_label; /* Prometheus: the open group's label name */
};

/* Starts a document in out (JSON: the opening brace). */
void metrics_begin(struct metrics *m, struct buf *out, enum metrics_format format);

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

/* Ends the document (JSON: closing brace and newline). Returns 0, or -1 if
 * any append ran out of memory (the text is then incomplete). */
int metrics_end(struct metrics *m);

#endif
