/* test_metrics: unit tests for src/metrics.c, the JSON and Prometheus
 * renderings of named figures: exact text of both for values and labelled
 * groups, one HELP and TYPE line per family, and failure reported when an
 * append runs out of room. */
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

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("render");
    tcase_add_test(tc, test_json);
    tcase_add_test(tc, test_prometheus);
    tcase_add_test(tc, test_empty_documents);
    tcase_add_test(tc, test_failure_is_reported);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
