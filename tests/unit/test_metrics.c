/* test_metrics: unit tests for src/metrics.c, the JSON and Prometheus
 * renderings of named figures: exact text of both for values and labelled
 * groups, one HELP and TYPE line per family, and failure reported when an
 * append runs out of room; the recorded form, and several processes' records
 * rendered summed with per-set figures (levels: the highest, ids: per set
 * only, a figure one set lacks counted as 0). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

/* Writes the same figures in the given format. */
static int write_sample(struct buf *out, enum metrics_format format)
{
    struct metrics m;
    metrics_begin(&m, out, format);
    metrics_value(&m, "uptime_seconds", "x_uptime_seconds", METRICS_GAUGE, "Seconds up.", 42);
    metrics_group_begin(&m, "closed", "x_closed_total", METRICS_COUNTER, "Closes by reason.", "reason");
    metrics_group_value(&m, "normal", 7);
    metrics_group_value(&m, "idle", 0);
    metrics_group_end(&m);
    metrics_value(&m, "bytes", "x_bytes_total", METRICS_COUNTER, "Bytes.", 18446744073709551615ull);
    return metrics_end(&m);
}

static char *text(struct buf *b)
{
    buf_append(b, "", 1);
    return (char *)b->data;
}

START_TEST(test_json)
{
    struct buf b = {0};
    ck_assert_int_eq(write_sample(&b, METRICS_JSON), 0);
    ck_assert_str_eq(text(&b), "{\"uptime_seconds\":42,\"closed\":{\"normal\":7,\"idle\":0},"
                               "\"bytes\":18446744073709551615}\n");
    buf_free(&b);
}
END_TEST

START_TEST(test_prometheus)
{
    struct buf b = {0};
    ck_assert_int_eq(write_sample(&b, METRICS_PROMETHEUS), 0);
    ck_assert_str_eq(text(&b), "# HELP x_uptime_seconds Seconds up.\n# TYPE x_uptime_seconds gauge\n"
                               "x_uptime_seconds 42\n"
                               "# HELP x_closed_total Closes by reason.\n# TYPE x_closed_total counter\n"
                               "x_closed_total{reason=\"normal\"} 7\nx_closed_total{reason=\"idle\"} 0\n"
                               "# HELP x_bytes_total Bytes.\n# TYPE x_bytes_total counter\n"
                               "x_bytes_total 18446744073709551615\n");
    buf_free(&b);
}
END_TEST

START_TEST(test_empty_documents)
{
    struct buf b = {0};
    struct metrics m;
    metrics_begin(&m, &b, METRICS_JSON);
    ck_assert_int_eq(metrics_end(&m), 0);
    ck_assert_str_eq(text(&b), "{}\n");
    buf_free(&b);
    metrics_begin(&m, &b, METRICS_PROMETHEUS);
    ck_assert_int_eq(metrics_end(&m), 0);
    ck_assert_uint_eq(b.len, 0);
    buf_free(&b);
}
END_TEST

/* A buffer that cannot grow (its length at the 4 GiB limit) makes every append
 * fail: the document reports it instead of passing for whole. */
START_TEST(test_failure_is_reported)
{
    struct buf b = {.data = NULL, .len = UINT32_MAX, .cap = UINT32_MAX};
    struct metrics m;
    metrics_begin(&m, &b, METRICS_JSON);
    metrics_value(&m, "a", "a", METRICS_GAUGE, "A.", 1);
    ck_assert_int_eq(metrics_end(&m), -1);
}
END_TEST

/* Records what one process would write: uptime (a level), a pid (an id),
 * closes by reason, bytes. */
static size_t record_sample(struct metrics_record *rec, size_t cap, uint64_t up, uint64_t pid, uint64_t normal,
                            uint64_t bytes, int with_bytes)
{
    struct metrics m;
    metrics_begin_records(&m, rec, cap);
    metrics_value(&m, "up", "x_up", METRICS_LEVEL, "Up.", up);
    metrics_value(&m, "pid", "x_pid", METRICS_ID, "Pid.", pid);
    metrics_group_begin(&m, "closed", "x_closed_total", METRICS_COUNTER, "Closes.", "reason");
    metrics_group_value(&m, "normal", normal);
    metrics_group_value(&m, "idle", 1);
    metrics_group_end(&m);
    if (with_bytes)
        metrics_value(&m, "bytes", "x_bytes_total", METRICS_COUNTER, "Bytes.", bytes);
    ck_assert_int_eq(metrics_end(&m), 0);
    return m.n_rec;
}

/* Two sets summed (the first lacks bytes) must render exactly as expected. */
static void check_sum(enum metrics_format format, const char *expected)
{
    static struct metrics_record r0[8], r1[8];
    struct metrics_set sets[2] = {{r0, record_sample(r0, 8, 5, 100, 2, 10, 0)},
                                  {r1, record_sample(r1, 8, 7, 200, 3, 20, 1)}};
    struct buf b = {0};
    struct metrics m;
    metrics_begin(&m, &b, format);
    metrics_sum(&m, sets, 2, "worker");
    ck_assert_int_eq(metrics_end(&m), 0);
    ck_assert_str_eq(text(&b), expected);
    buf_free(&b);
}

START_TEST(test_records)
{
    struct metrics_record rec[8];
    ck_assert_uint_eq(record_sample(rec, 8, 5, 100, 2, 10, 1), 5);
    ck_assert_str_eq(rec[2].json, "closed");
    ck_assert_str_eq(rec[2].prom, "x_closed_total");
    ck_assert_str_eq(rec[2].help, "Closes.");
    ck_assert_str_eq(rec[2].label, "reason");
    ck_assert_str_eq(rec[3].label_value, "idle");
    ck_assert_uint_eq(rec[3].value, 1);
    ck_assert_uint_eq(rec[1].type, METRICS_ID);
    ck_assert_str_eq(rec[4].label, "");
    struct metrics m;   /* no room: reported */
    metrics_begin_records(&m, rec, 2);
    metrics_value(&m, "a", "a", METRICS_GAUGE, "A.", 1);
    metrics_value(&m, "b", "b", METRICS_GAUGE, "B.", 1);
    metrics_value(&m, "c", "c", METRICS_GAUGE, "C.", 1);
    ck_assert_uint_eq(m.n_rec, 2);
    ck_assert_int_eq(metrics_end(&m), -1);
}
END_TEST

START_TEST(test_sum_json)
{
    check_sum(METRICS_JSON, "{\"up\":7,\"closed\":{\"normal\":5,\"idle\":2},\"bytes\":20,\"workers\":["
                               "{\"worker\":0,\"up\":5,\"pid\":100,\"closed\":{\"normal\":2,\"idle\":1}},"
                               "{\"worker\":1,\"up\":7,\"pid\":200,\"closed\":{\"normal\":3,\"idle\":1},"
                               "\"bytes\":20}]}\n");
}
END_TEST

START_TEST(test_sum_prometheus)
{
    check_sum(METRICS_PROMETHEUS, "# HELP x_up Up.\n# TYPE x_up gauge\nx_up 7\nx_up{worker=\"0\"} 5\nx_up{worker=\"1\"} 7\n"
                               "# HELP x_pid Pid.\n# TYPE x_pid gauge\nx_pid{worker=\"0\"} 100\nx_pid{worker=\"1\"} 200\n"
                               "# HELP x_closed_total Closes.\n# TYPE x_closed_total counter\n"
                               "x_closed_total{reason=\"normal\"} 5\nx_closed_total{reason=\"normal\",worker=\"0\"} 2\n"
                               "x_closed_total{reason=\"normal\",worker=\"1\"} 3\n"
                               "x_closed_total{reason=\"idle\"} 2\nx_closed_total{reason=\"idle\",worker=\"0\"} 1\n"
                               "x_closed_total{reason=\"idle\",worker=\"1\"} 1\n"
                               "# HELP x_bytes_total Bytes.\n# TYPE x_bytes_total counter\nx_bytes_total 20\n"
                               "x_bytes_total{worker=\"1\"} 20\n");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("render");
    tcase_add_test(tc, test_json);
    tcase_add_test(tc, test_prometheus);
    tcase_add_test(tc, test_empty_documents);
    tcase_add_test(tc, test_failure_is_reported);
    tcase_add_test(tc, test_records);
    tcase_add_test(tc, test_sum_json);
    tcase_add_test(tc, test_sum_prometheus);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
