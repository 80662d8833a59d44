/* test_json: unit tests for src/json.c, JSON text appended to a struct buf.
 * Checks string escaping byte for byte (quotes, backslash, the short escapes,
 * other C0 controls as lowercase \u00XX, DEL and non-ASCII UTF-8 passed
 * through, embedded NUL), decimal u64 formatting, appending after existing
 * content, and a round trip through a small independent JSON string decoder. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"

/* Asserts that b holds exactly want[0..n). */
static void assert_bytes(const struct buf *b, const char *want, size_t n)
{
    ck_assert_msg(b->len == n && (n == 0 || memcmp(b->data, want, n) == 0),
                  "got [%.*s] (%zu bytes), want [%.*s] (%zu bytes)", (int)b->len,
                  b->data ? (const char *)b->data : "", (size_t)b->len, (int)n, want, n);
}

/* Escapes s[0..n) into a fresh buffer and compares with want (NUL-terminated). */
static void check_escape(const char *s, size_t n, const char *want)
{
    struct buf b = {0};
    ck_assert_int_eq(json_append_string(&b, s, n), 0);
    assert_bytes(&b, want, strlen(want));
    buf_free(&b);
}

#define ESC(lit, want) check_escape((lit), sizeof(lit) - 1, (want))

START_TEST(string_empty)
{
    ESC("", "\"\"");
}
END_TEST

START_TEST(string_plain)
{
    ESC("hello, world", "\"hello, world\"");
    ESC("/<>'&{}[]:", "\"/<>'&{}[]:\"");   /* no needless escapes */
}
END_TEST

START_TEST(string_quote_and_backslash)
{
    ESC("\"", "\"\\\"\"");
    ESC("\\", "\"\\\\\"");
    ESC("a\"b\\c", "\"a\\\"b\\\\c\"");
    ESC("\\\"", "\"\\\\\\\"\"");
}
END_TEST

START_TEST(string_short_escapes)
{
    ESC("\n", "\"\\n\"");
    ESC("\r", "\"\\r\"");
    ESC("\t", "\"\\t\"");
    ESC("\b", "\"\\b\"");
    ESC("\f", "\"\\f\"");
    ESC("a\r\nb\tc", "\"a\\r\\nb\\tc\"");
}
END_TEST

START_TEST(string_other_controls_lowercase_hex)
{
    ESC("\x01", "\"\\u0001\"");
    ESC("\x1f", "\"\\u001f\"");
    ESC("\x0b", "\"\\u000b\"");   /* vertical tab has no short escape in JSON */
    ESC("\x1b[0m", "\"\\u001b[0m\"");
    ESC("\x07", "\"\\u0007\"");
    ESC("\x1a", "\"\\u001a\"");
}
END_TEST

START_TEST(string_every_control)
{
    /* Each of 0x00..0x1f escapes to 2 or 6 bytes, never passes through. */
    static const char shorts[] = {'\b', 'b', '\t', 't', '\n', 'n', '\f', 'f', '\r', 'r'};
    for (unsigned c = 0; c < 0x20; c++) {
        char in = (char)c, want[16] = "\"\\u00xx\"";
        static const char hex[] = "0123456789abcdef";
        want[5] = hex[c >> 4];
        want[6] = hex[c & 15];
        for (size_t k = 0; k < sizeof(shorts); k += 2)
            if (c == (unsigned char)shorts[k]) {
                want[2] = shorts[k + 1];
                want[3] = '"';
                want[4] = '\0';
            }
        check_escape(&in, 1, want);
    }
}
END_TEST

START_TEST(string_del_passes_through)
{
    ESC("\x7f", "\"\x7f\"");
    ESC("a\x7f" "b", "\"a\x7f" "b\"");
}
END_TEST

START_TEST(string_utf8_passes_through)
{
    ESC("\xc3\xa9", "\"\xc3\xa9\"");                          /* é */
    ESC("\xe6\x97\xa5\xe6\x9c\xac", "\"\xe6\x97\xa5\xe6\x9c\xac\"");  /* 日本 */
    ESC("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"");          /* 😀 */
    ESC("\xe2\x80\xa8", "\"\xe2\x80\xa8\"");                  /* U+2028 */
    ESC("\xc2\x85", "\"\xc2\x85\"");                          /* U+0085 */
}
END_TEST

START_TEST(string_embedded_nul)
{
    ESC("a\0b", "\"a\\u0000b\"");
    ESC("\0", "\"\\u0000\"");
}
END_TEST

START_TEST(string_length_not_nul)
{
    /* Only n bytes are read. */
    check_escape("abcdef", 3, "\"abc\"");
}
END_TEST

START_TEST(cstring)
{
    struct buf b = {0};
    ck_assert_int_eq(json_append_cstring(&b, "say \"hi\"\n"), 0);
    assert_bytes(&b, "\"say \\\"hi\\\"\\n\"", 14);
    buf_free(&b);
}
END_TEST

START_TEST(string_large)
{
    /* 10000 controls: the worst case, every byte becomes six. */
    size_t n = 10000;
    char *in = malloc(n);
    ck_assert_ptr_nonnull(in);
    memset(in, 0x01, n);
    struct buf b = {0};
    ck_assert_int_eq(json_append_raw(&b, "x"), 0);
    ck_assert_int_eq(json_append_string(&b, in, n), 0);
    ck_assert_uint_eq(b.len, 1 + 2 + 6 * n);
    ck_assert_int_eq(b.data[1], '"');
    ck_assert_int_eq(b.data[b.len - 1], '"');
    for (size_t i = 0; i < n; i++)
        if (memcmp(b.data + 2 + 6 * i, "\\u0001", 6) != 0)
            ck_abort_msg("escape %zu is wrong", i);
    free(in);
    buf_free(&b);
}
END_TEST

static void check_u64(uint64_t v, const char *want)
{
    struct buf b = {0};
    ck_assert_int_eq(json_append_u64(&b, v), 0);
    assert_bytes(&b, want, strlen(want));
    buf_free(&b);
}

START_TEST(u64_values)
{
    check_u64(0, "0");
    check_u64(1, "1");
    check_u64(9, "9");
    check_u64(10, "10");
    check_u64(1795000000000ull, "1795000000000");
    check_u64(UINT64_MAX / 10, "1844674407370955161");
    check_u64(10000000000000000000ull, "10000000000000000000");
    check_u64(18446744073709551615ull, "18446744073709551615");
}
END_TEST

START_TEST(append_after_existing_content)
{
    struct buf b = {0};
    ck_assert_int_eq(json_append_raw(&b, "{\"type\":\"message\",\"text\":"), 0);
    ck_assert_int_eq(json_append_string(&b, "a\"\n\x01", 4), 0);
    ck_assert_int_eq(json_append_raw(&b, ",\"seq\":"), 0);
    ck_assert_int_eq(json_append_u64(&b, 42), 0);
    ck_assert_int_eq(json_append_raw(&b, ",\"nick\":"), 0);
    ck_assert_int_eq(json_append_cstring(&b, "Zo\xc3\xab"), 0);
    ck_assert_int_eq(json_append_raw(&b, ",\"e\":"), 0);
    ck_assert_int_eq(json_append_string(&b, "", 0), 0);
    ck_assert_int_eq(json_append_raw(&b, "}"), 0);
    const char *want =
        "{\"type\":\"message\",\"text\":\"a\\\"\\n\\u0001\",\"seq\":42,\"nick\":\"Zo\xc3\xab\",\"e\":\"\"}";
    assert_bytes(&b, want, strlen(want));
    buf_free(&b);
}
END_TEST

START_TEST(append_across_growth)
{
    /* Many small appends: earlier content survives every reallocation. */
    struct buf b = {0};
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(json_append_string(&b, "\t", 1), 0);
        ck_assert_int_eq(json_append_u64(&b, (uint64_t)i % 10), 0);
    }
    ck_assert_uint_eq(b.len, 1000 * 5);
    for (int i = 0; i < 1000; i++) {
        char want[6] = {'"', '\\', 't', '"', (char)('0' + i % 10), 0};
        if (memcmp(b.data + 5 * i, want, 5) != 0)
            ck_abort_msg("chunk %d is wrong", i);
    }
    buf_free(&b);
}
END_TEST

/* ---- round trip ---- */

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static size_t put_utf8(uint8_t *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | cp >> 6);
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | cp >> 12);
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | cp >> 18);
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes one JSON string literal that must span all of in[0..n) (RFC 8259
 * section 7): raw control characters are an error. Writes the bytes to out
 * and returns their number, or -1 when the literal is malformed. */
static long json_decode_string(const uint8_t *in, size_t n, uint8_t *out)
{
    size_t i = 0, o = 0;
    if (n < 2 || in[0] != '"' || in[n - 1] != '"')
        return -1;
    for (i = 1; i < n - 1;) {
        uint8_t c = in[i++];
        if (c < 0x20 || c == '"')
            return -1;
        if (c != '\\') {
            out[o++] = c;
            continue;
        }
        if (i >= n - 1)
            return -1;
        c = in[i++];
        switch (c) {
        case '"': out[o++] = '"'; break;
        case '\\': out[o++] = '\\'; break;
        case '/': out[o++] = '/'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            uint32_t cp = 0;
            if (i + 4 > n - 1)
                return -1;
            for (int k = 0; k < 4; k++) {
                int h = hexval(in[i++]);
                if (h < 0)
                    return -1;
                cp = cp << 4 | (uint32_t)h;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {   /* high surrogate: a low one must follow */
                uint32_t lo = 0;
                if (i + 6 > n - 1 || in[i] != '\\' || in[i + 1] != 'u')
                    return -1;
                i += 2;
                for (int k = 0; k < 4; k++) {
                    int h = hexval(in[i++]);
                    if (h < 0)
                        return -1;
                    lo = lo << 4 | (uint32_t)h;
                }
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return -1;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return -1;
            }
            o += put_utf8(out + o, cp);
            break;
        }
        default:
            return -1;
        }
    }
    return (long)o;
}

START_TEST(decoder_self_check)
{
    /* The decoder must reject what is not a JSON string, or the round trip proves nothing. */
    uint8_t out[64];
    ck_assert_int_eq(json_decode_string((const uint8_t *)"\"a\nb\"", 5, out), -1);
    ck_assert_int_eq(json_decode_string((const uint8_t *)"\"a\"b\"", 5, out), -1);
    ck_assert_int_eq(json_decode_string((const uint8_t *)"\"a\\\"", 4, out), -1);
    ck_assert_int_eq(json_decode_string((const uint8_t *)"\"\\x41\"", 6, out), -1);
    ck_assert_int_eq(json_decode_string((const uint8_t *)"\"\\u00g1\"", 8, out), -1);
    ck_assert_int_eq(json_decode_string((const uint8_t *)"\"\\ud83d\"", 8, out), -1);
    const char *ok = "\"\\u00e9\\ud83d\\ude00\\/\"";
    ck_assert_int_eq(json_decode_string((const uint8_t *)ok, strlen(ok), out), 2 + 4 + 1);
    ck_assert_int_eq(memcmp(out, "\xc3\xa9\xf0\x9f\x98\x80/", 7), 0);
}
END_TEST

struct sample {
    const char *s;
    size_t n;
};
#define S(lit) {(lit), sizeof(lit) - 1}

static const struct sample samples[] = {
    S(""),
    S("plain"),
    S("\""),
    S("\\"),
    S("\\\\\"\"\\"),
    S("\\u0041"),                    /* looks like an escape, must stay literal */
    S("\\n is not a newline"),
    S("line\nbreak\r\n\ttab"),
    S("\b\f\x01\x02\x1e\x1f"),
    S("\0"),
    S("a\0b\0"),
    S("\x7f"),
    S("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80"),
    S("\xe2\x80\xa8\xe2\x80\xa9"),   /* U+2028 U+2029 */
    S("\xef\xbb\xbf" "bom"),
    S("</script><!--"),
    S("{\"type\":\"message\",\"text\":\"hi\"}"),
    S("\"\\\n\r\t\b\f\x01\x7f\xc3\xa9\0end"),
};

START_TEST(round_trip)
{
    const struct sample *t = &samples[_i];
    struct buf b = {0};
    uint8_t out[256];
    ck_assert_int_eq(json_append_string(&b, t->s, t->n), 0);
    long got = json_decode_string(b.data, b.len, out);
    ck_assert_msg(got >= 0, "sample %d: output [%.*s] is not a JSON string", _i, (int)b.len, b.data);
    ck_assert_msg((size_t)got == t->n && memcmp(out, t->s, t->n) == 0,
                  "sample %d: decoded %ld bytes, want %zu", _i, got, t->n);
    buf_free(&b);
}
END_TEST

START_TEST(round_trip_every_byte)
{
    /* Every byte value alone and between ASCII neighbours. Bytes >= 0x80 are not
     * valid UTF-8 alone, but pass through byte for byte. */
    for (unsigned c = 0; c < 256; c++) {
        char in[3] = {'x', (char)c, 'y'};
        struct buf b = {0};
        uint8_t out[16];
        ck_assert_int_eq(json_append_string(&b, in, 3), 0);
        long got = json_decode_string(b.data, b.len, out);
        if (got != 3 || memcmp(out, in, 3) != 0)
            ck_abort_msg("byte 0x%02x: decoded %ld bytes", c, got);
        buf_free(&b);
    }
}
END_TEST

static Suite *json_suite(void)
{
    Suite *s = suite_create("json");
    TCase *e = tcase_create("escape");
    tcase_add_test(e, string_empty);
    tcase_add_test(e, string_plain);
    tcase_add_test(e, string_quote_and_backslash);
    tcase_add_test(e, string_short_escapes);
    tcase_add_test(e, string_other_controls_lowercase_hex);
    tcase_add_test(e, string_every_control);
    tcase_add_test(e, string_del_passes_through);
    tcase_add_test(e, string_utf8_passes_through);
    tcase_add_test(e, string_embedded_nul);
    tcase_add_test(e, string_length_not_nul);
    tcase_add_test(e, cstring);
    tcase_add_test(e, string_large);
    suite_add_tcase(s, e);

    TCase *n = tcase_create("number");
    tcase_add_test(n, u64_values);
    suite_add_tcase(s, n);

    TCase *a = tcase_create("append");
    tcase_add_test(a, append_after_existing_content);
    tcase_add_test(a, append_across_growth);
    suite_add_tcase(s, a);

    TCase *r = tcase_create("round_trip");
    tcase_add_test(r, decoder_self_check);
    tcase_add_loop_test(r, round_trip, 0, (int)(sizeof(samples) / sizeof(samples[0])));
    tcase_add_test(r, round_trip_every_byte);
    suite_add_tcase(s, r);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(json_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
