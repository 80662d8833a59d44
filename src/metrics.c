/* metrics: the JSON and Prometheus renderings of named figures. Keys, names
 * and label values are the program's own constants (no escaping is needed or
 * done). No I/O. */
#include "metrics.h"

#include <stdio.h>
#include <string.h>

static void put(struct metrics *m, const char *text)
{
    if (buf_append(m->out, text, strlen(text)) < 0)
        m->failed = 1;
}

static void putf_u64(struct metrics *m, const char *prefix, uint64_t v, const char *suffix)
{
    char line[256];
    int n = snprintf(line, sizeof(line), "%s%llu%s", prefix, (unsigned long long)v, suffix);
    if (n < 0 || (size_t)n >= sizeof(line) || buf_append(m->out, line, (size_t)n) < 0)
        m->failed = 1;
}

static void json_key(struct metrics *m, int *fields, const char *key)
{
    put(m, (*fields)++ ? ",\"" : "\"");
    put(m, key);
    put(m, "\":");
}

static void prom_header(struct metrics *m, const char *name, enum metrics_type type, const char *help)
{
    put(m, "# HELP ");
    put(m, name);
    put(m, " ");
    put(m, help);
    put(m, "\n# TYPE ");
    put(m, name);
    put(m, type == METRICS_COUNTER ? " counter\n" : " gauge\n");
}

void metrics_begin(struct metrics *m, struct buf *out, enum metrics_format format)
{
    *m = (struct metrics){.out = out, .format = format};
    if (format == METRICS_JSON)
        put(m, "{");
}

void metrics_value(struct metrics *m, const char *json, const char *prom_name, enum metrics_type type,
                   const char *help, uint64_t v)
{
    if (m->format == METRICS_JSON) {
        json_key(m, &m->fields, json);
        putf_u64(m, "", v, "");
    } else {
        prom_header(m, prom_name, type, help);
        put(m, prom_name);
        putf_u64(m, " ", v, "\n");
    }
}

void metrics_group_begin(struct metrics *m, const char *json, const char *prom_name, enum metrics_type type,
                         const char *help, const char *label)
{
    m->group_fields = 0;
    m->group_name = prom_name;
    m->group_label = label;
    if (m->format == METRICS_JSON) {
        json_key(m, &m->fields, json);
        put(m, "{");
    } else {
        prom_header(m, prom_name, type, help);
    }
}

void metrics_group_value(struct metrics *m, const char *label_value, uint64_t v)
{
    if (m->format == METRICS_JSON) {
        json_key(m, &m->group_fields, label_value);
        putf_u64(m, "", v, "");
    } else {
        put(m, m->group_name);
        put(m, "{");
        put(m, m->group_label);
        put(m, "=\"");
        put(m, label_value);
        putf_u64(m, "\"} ", v, "\n");
    }
}

void metrics_group_end(struct metrics *m)
{
    if (m->format == METRICS_JSON)
        put(m, "}");
}

int metrics_end(struct metrics *m)
{
    if (m->format == METRICS_JSON)
        put(m, "}\n");
    return m->failed ? -1 : 0;
}
