/* metrics: the JSON and Prometheus renderings of named figures, their
 * recorded form, and the summed rendering of several processes' records.
 * Keys, names and label values are the program's own constants (no escaping
 * is needed or done). No I/O. */
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

/* Copies a name into a record's field; a name too long fails the document
 * (a help text is cut instead: it names nothing). */
static void copy_name(struct metrics *m, char *dst, size_t size, const char *src, int is_help)
{
    size_t n = strlen(src);
    if (n >= size) {
        m->failed |= !is_help;
        n = size - 1;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void record(struct metrics *m, const char *json, const char *prom, enum metrics_type type, const char *help,
                   const char *label, const char *label_value, uint64_t v)
{
    if (m->n_rec == m->cap_rec) {
        m->failed = 1;
        return;
    }
    struct metrics_record *r = &m->rec[m->n_rec++];
    copy_name(m, r->json, sizeof(r->json), json, 0);
    copy_name(m, r->prom, sizeof(r->prom), prom, 0);
    copy_name(m, r->help, sizeof(r->help), help, 1);
    copy_name(m, r->label, sizeof(r->label), label, 0);
    copy_name(m, r->label_value, sizeof(r->label_value), label_value, 0);
    r->type = type;
    r->value = v;
}

void metrics_begin_records(struct metrics *m, struct metrics_record *rec, size_t cap)
{
    *m = (struct metrics){.format = METRICS_RECORD, .rec = rec, .cap_rec = cap};
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
    if (m->format == METRICS_RECORD) {
        record(m, json, prom_name, type, help, "", "", v);
    } else if (m->format == METRICS_JSON) {
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
    m->group_json = json;
    m->group_help = help;
    m->group_type = type;
    if (m->format == METRICS_RECORD)
        return;
    if (m->format == METRICS_JSON) {
        json_key(m, &m->fields, json);
        put(m, "{");
    } else {
        prom_header(m, prom_name, type, help);
    }
}

void metrics_group_value(struct metrics *m, const char *label_value, uint64_t v)
{
    if (m->format == METRICS_RECORD) {
        record(m, m->group_json, m->group_name, m->group_type, m->group_help, m->group_label, label_value, v);
    } else if (m->format == METRICS_JSON) {
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

static int same_figure(const struct metrics_record *a, const struct metrics_record *b)
{
    return strcmp(a->prom, b->prom) == 0 && strcmp(a->label_value, b->label_value) == 0;
}

/* The value of figure t in set s (at index k when the sets agree), 0 when absent. */
static int value_in(const struct metrics_set *s, size_t k, const struct metrics_record *t, uint64_t *v)
{
    if (k < s->n && same_figure(&s->rec[k], t)) {
        *v = s->rec[k].value;
        return 1;
    }
    for (size_t j = 0; j < s->n; j++) {
        if (same_figure(&s->rec[j], t)) {
            *v = s->rec[j].value;
            return 1;
        }
    }
    *v = 0;
    return 0;
}

static uint64_t summed(const struct metrics_set *sets, size_t n, size_t k, const struct metrics_record *t)
{
    uint64_t total = 0, v;
    for (size_t i = 0; i < n; i++) {
        value_in(&sets[i], k, t, &v);
        total = t->type == METRICS_LEVEL ? (v > total ? v : total) : total + v;
    }
    return total;
}

/* One Prometheus line of figure r: its label if any, and set_label="set" when set >= 0. */
static void prom_line(struct metrics *m, const struct metrics_record *r, const char *set_label, long set, uint64_t v)
{
    put(m, r->prom);
    if (r->label[0] || set >= 0)
        put(m, "{");
    if (r->label[0]) {
        put(m, r->label);
        put(m, "=\"");
        put(m, r->label_value);
        put(m, set >= 0 ? "\"," : "\"}");
    }
    if (set >= 0) {
        put(m, set_label);
        putf_u64(m, "=\"", (uint64_t)set, "\"}");
    }
    putf_u64(m, " ", v, "\n");
}

/* Writes records rec[0..n) as JSON fields at the open level: group members
 * (consecutive records with one key and a label) as one object. With sets,
 * each value is the figure summed over them and METRICS_ID figures are left
 * out; without, the records' own values. */
static void json_records(struct metrics *m, int *fields, const struct metrics_record *rec, size_t n,
                         const struct metrics_set *sets, size_t nsets)
{
    for (size_t k = 0; k < n; k++) {
        const struct metrics_record *r = &rec[k];
        if (sets && r->type == METRICS_ID)
            continue;
        uint64_t v = sets ? summed(sets, nsets, k, r) : r->value;
        if (!r->label[0]) {
            json_key(m, fields, r->json);
            putf_u64(m, "", v, "");
            continue;
        }
        int first = k == 0 || !rec[k - 1].label[0] || strcmp(rec[k - 1].json, r->json) != 0;
        int last = k + 1 == n || !rec[k + 1].label[0] || strcmp(rec[k + 1].json, r->json) != 0;
        if (first) {
            json_key(m, fields, r->json);
            put(m, "{");
            m->group_fields = 0;
        }
        json_key(m, &m->group_fields, r->label_value);
        putf_u64(m, "", v, "");
        if (last)
            put(m, "}");
    }
}

void metrics_sum(struct metrics *m, const struct metrics_set *sets, size_t n, const char *set_label)
{
    const struct metrics_set *t = NULL;   /* the fullest set gives the order */
    for (size_t i = 0; i < n; i++)
        if (sets[i].n && (!t || sets[i].n > t->n))
            t = &sets[i];
    if (!t)
        return;
    if (m->format == METRICS_JSON) {
        json_records(m, &m->fields, t->rec, t->n, sets, n);
        char key[64];
        snprintf(key, sizeof(key), "%ss", set_label);
        json_key(m, &m->fields, key);
        put(m, "[");
        for (size_t i = 0; i < n; i++) {
            int fields = 0;
            put(m, i ? ",{" : "{");
            json_key(m, &fields, set_label);
            putf_u64(m, "", i, "");
            json_records(m, &fields, sets[i].rec, sets[i].n, NULL, 0);
            put(m, "}");
        }
        put(m, "]");
        return;
    }
    for (size_t k = 0; k < t->n; k++) {
        const struct metrics_record *r = &t->rec[k];
        if (k == 0 || strcmp(t->rec[k - 1].prom, r->prom) != 0)
            prom_header(m, r->prom, (enum metrics_type)r->type, r->help);
        if (r->type != METRICS_ID)
            prom_line(m, r, set_label, -1, summed(sets, n, k, r));
        for (size_t i = 0; i < n; i++) {
            uint64_t v;
            if (value_in(&sets[i], k, r, &v))
                prom_line(m, r, set_label, (long)i, v);
        }
    }
}

int metrics_end(struct metrics *m)
{
    if (m->format == METRICS_JSON)
        put(m, "}\n");
    return m->failed ? -1 : 0;
}
