/* test_command: unit tests for src/command.c, the sans-I/O chat line parser
 * and the nick and room name rules of chat protocol version 1 (README "Chat
 * protocol, version 1"). Checks each command form, the argument it points at
 * (pointer and length into the line, no copies), and nick/room edge cases:
 * length limits, controls, C1 controls, Unicode spaces, invalid UTF-8. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"

/* Parses a NUL-terminated line (without the NUL) into *c. */
static void parse(const char *line, struct command *c)
{
    memset(c, 0xA5, sizeof(*c));   /* garbage: the parser must set every field */
    command_parse(line, strlen(line), c);
}

/* Asserts that c's argument is exactly want and lies inside line. */
static void assert_arg(const struct command *c, const char *line, const char *want)
{
    size_t n = strlen(want);
    ck_assert_uint_eq(c->arg_len, n);
    ck_assert_ptr_nonnull(c->arg);
    ck_assert_msg(c->arg >= line && c->arg + c->arg_len <= line + strlen(line),
                  "arg does not point into the line");
    ck_assert_msg(memcmp(c->arg, want, n) == 0, "arg is \"%.*s\", want \"%s\"", (int)c->arg_len,
                  c->arg, want);
}

START_TEST(parse_empty)
{
    struct command c;
    memset(&c, 0xA5, sizeof(c));
    command_parse("", 0, &c);
    ck_assert_int_eq(c.kind, CMD_EMPTY);
    ck_assert_uint_eq(c.arg_len, 0);
}
END_TEST

START_TEST(parse_message)
{
    const char *line = "hello";
    struct command c;
    parse(line, &c);
    ck_assert_int_eq(c.kind, CMD_MESSAGE);
    assert_arg(&c, line, "hello");
    ck_assert_ptr_eq(c.arg, line);
}
END_TEST

START_TEST(parse_message_with_spaces_and_utf8)
{
    const char *line = " hi there \xc3\xa9 /me ";
    struct command c;
    parse(line, &c);
    ck_assert_int_eq(c.kind, CMD_MESSAGE);
    assert_arg(&c, line, line);
}
END_TEST

START_TEST(parse_double_slash_is_message)
{
    const char *line = "//etc";
    struct command c;
    parse(line, &c);
    ck_assert_int_eq(c.kind, CMD_MESSAGE);
    assert_arg(&c, line, "/etc");
    ck_assert_ptr_eq(c.arg, line + 1);
}
END_TEST

START_TEST(parse_double_slash_alone)
{
    const char *line = "//";
    struct command c;
    parse(line, &c);
    ck_assert_int_eq(c.kind, CMD_MESSAGE);
    assert_arg(&c, line, "/");
}
END_TEST

START_TEST(parse_slash_alone_is_unknown)
{
    const char *line = "/";
    struct command c;
    parse(line, &c);
    ck_assert_int_eq(c.kind, CMD_UNKNOWN);
    ck_assert_uint_eq(c.arg_len, 0);
}
END_TEST

START_TEST(parse_me)
{
    const char *line = "/me waves";
    struct command c;
    parse(line, &c);
    ck_assert_int_eq(c.kind, CMD_ACTION);
    assert_arg(&c, line, "waves");
    ck_assert_ptr_eq(c.arg, line + 4);
}
END_TEST

START_TEST(parse_me_keeps_inner_spaces)
{
    const char *line = "/me waves  at  you";
    struct command c;
    parse(line, &c);
    ck_assert_int_eq(c.kind, CMD_ACTION);
    assert_arg(&c, line, "waves  at  you");
}
END_TEST

START_TEST(parse_me_without_text_is_unknown)
{
    const char *line = "/me";
    struct command c;
    parse(line, &c);
    ck_assert_int_eq(c.kind, CMD_UNKNOWN);
    assert_arg(&c, line, "me");
}
END_TEST

START_TEST(parse_nick)
{
    const char *line = "/nick bob";
    struct command c;
    parse(line, &c);
    ck_assert_int_eq(c.kind, CMD_NICK);
    assert_arg(&c, line, "bob");
    ck_assert_ptr_eq(c.arg, line + 6);
}
END_TEST

START_TEST(parse_nick_without_name)
{
    const char *line = "/nick";
    struct command c;
    parse(line, &c);
    ck_assert_int_eq(c.kind, CMD_NICK);
    ck_assert_uint_eq(c.arg_len, 0);
}
END_TEST

START_TEST(parse_nick_with_space_in_name)
{
    const char *line = "/nick a b";
    struct command c;
    parse(line, &c);
    ck_assert_int_eq(c.kind, CMD_NICK);
    assert_arg(&c, line, "a b");
    ck_assert_int_eq(command_nick_valid(c.arg, c.arg_len), 0);
}
END_TEST

START_TEST(parse_who)
{
    const char *line = "/who";
    struct command c;
    parse(line, &c);
    ck_assert_int_eq(c.kind, CMD_WHO);
}
END_TEST

START_TEST(parse_who_with_argument_is_unknown)
{
    const char *line = "/who x";
    struct command c;
    parse(line, &c);
    ck_assert_int_eq(c.kind, CMD_UNKNOWN);
    assert_arg(&c, line, "who");
}
END_TEST

START_TEST(parse_unknown_command_word)
{
    const char *line = "/bogus x";
    struct command c;
    parse(line, &c);
    ck_assert_int_eq(c.kind, CMD_UNKNOWN);
    assert_arg(&c, line, "bogus");
    ck_assert_ptr_eq(c.arg, line + 1);
}
END_TEST

START_TEST(parse_command_word_matches_whole_word)
{
    /* "/mex" and "/nickname" are other words, not /me or /nick. */
    static const char *const lines[] = {"/mex hi", "/nickname bob", "/whois"};
    static const char *const words[] = {"mex", "nickname", "whois"};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        struct command c;
        parse(lines[i], &c);
        ck_assert_msg(c.kind == CMD_UNKNOWN, "%s: kind %d", lines[i], (int)c.kind);
        assert_arg(&c, lines[i], words[i]);
    }
}
END_TEST

START_TEST(parse_uses_length_not_nul)
{
    /* The line is a length-delimited slice: bytes after len are not part of it. */
    const char *buf = "/nick bobEXTRA";
    struct command c;
    command_parse(buf, 9, &c);
    ck_assert_int_eq(c.kind, CMD_NICK);
    ck_assert_uint_eq(c.arg_len, 3);
    ck_assert_int_eq(memcmp(c.arg, "bob", 3), 0);
}
END_TEST

START_TEST(parse_token)
{
    const char *line = "/token abc.def.ghi";
    struct command c;
    parse(line, &c);
    ck_assert_int_eq(c.kind, CMD_TOKEN);
    assert_arg(&c, line, "abc.def.ghi");
    parse("/token", &c);
    ck_assert_int_eq(c.kind, CMD_UNKNOWN);
}
END_TEST

START_TEST(parse_kick_with_and_without_reason)
{
    const char *line = "/kick bob spamming the room";
    struct command c;
    parse(line, &c);
    ck_assert_int_eq(c.kind, CMD_KICK);
    assert_arg(&c, line, "bob");
    ck_assert_uint_eq(c.reason_len, strlen("spamming the room"));
    ck_assert_int_eq(memcmp(c.reason, "spamming the room", c.reason_len), 0);
    parse("/kick bob", &c);
    ck_assert_int_eq(c.kind, CMD_KICK);
    ck_assert_uint_eq(c.arg_len, 3);
    ck_assert_uint_eq(c.reason_len, 0);
    static const char *const bad[] = {"/kick", "/kick ", "/kick  bob"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        parse(bad[i], &c);
        ck_assert_msg(c.kind == CMD_UNKNOWN, "%s: kind %d", bad[i], (int)c.kind);
    }
}
END_TEST

/* ---- nicks ---- */

static int nick_ok(const char *s)
{
    return command_nick_valid(s, strlen(s));
}

/* n copies of the UTF-8 sequence u, NUL-terminated, in a static buffer. */
static const char *repeat(const char *u, size_t n)
{
    static char out[512];
    size_t k = strlen(u);
    ck_assert_uint_lt(n * k, sizeof(out));
    for (size_t i = 0; i < n; i++)
        memcpy(out + i * k, u, k);
    out[n * k] = '\0';
    return out;
}

START_TEST(nick_simple)
{
    ck_assert_int_ne(nick_ok("bob"), 0);
    ck_assert_int_ne(nick_ok("a"), 0);
    ck_assert_int_ne(nick_ok("guest-12"), 0);
    ck_assert_int_ne(nick_ok("x_y.z!@#"), 0);
}
END_TEST

START_TEST(nick_empty)
{
    ck_assert_int_eq(command_nick_valid("", 0), 0);
    ck_assert_int_eq(command_nick_valid("bob", 0), 0);
}
END_TEST

START_TEST(nick_length_limit)
{
    ck_assert_int_ne(nick_ok(repeat("a", 32)), 0);
    ck_assert_int_eq(nick_ok(repeat("a", 33)), 0);
    /* bytes, not characters: 16 x U+00E9 is 32 bytes, 17 is 34 */
    ck_assert_int_ne(nick_ok(repeat("\xc3\xa9", 16)), 0);
    ck_assert_int_eq(nick_ok(repeat("\xc3\xa9", 17)), 0);
    /* 11 x U+65E5 is 33 bytes */
    ck_assert_int_ne(nick_ok(repeat("\xe6\x97\xa5", 10)), 0);
    ck_assert_int_eq(nick_ok(repeat("\xe6\x97\xa5", 11)), 0);
}
END_TEST

START_TEST(nick_spaces_and_controls)
{
    static const char *const bad[] = {
        "a b", " ab", "ab ", "a\tb", "a\nb", "a\rb", "a\x7f" "b", "a\x01" "b", "\x1f",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!nick_ok(bad[i]), "bad nick #%zu accepted", i);
    /* an embedded NUL (length given explicitly) */
    ck_assert_int_eq(command_nick_valid("a\0b", 3), 0);
}
END_TEST

START_TEST(nick_unicode_spaces_and_c1)
{
    static const char *const bad[] = {
        "a\xc2\x85" "b",     /* U+0085 NEL (C1) */
        "a\xc2\x80" "b",     /* U+0080 (C1) */
        "a\xc2\x9f" "b",     /* U+009F (C1) */
        "a\xc2\xa0" "b",     /* U+00A0 no-break space */
        "a\xe2\x80\xa8" "b", /* U+2028 line separator */
        "a\xe2\x80\xa9" "b", /* U+2029 paragraph separator */
        "a\xe3\x80\x80" "b", /* U+3000 ideographic space */
        "a\xe2\x80\x8b" "b", /* U+200B zero-width space */
        "a\xe2\x80\x83" "b", /* U+2003 em space */
        "a\xe1\x9a\x80" "b", /* U+1680 ogham space mark */
        "a\xe2\x81\x9f" "b", /* U+205F medium mathematical space */
        "a\xe2\x80\xaf" "b", /* U+202F narrow no-break space */
        "a\xef\xbb\xbf" "b", /* U+FEFF zero-width no-break space */
        "a\xe2\x81\xa6" "b", /* U+2066 left-to-right isolate */
        "a\xe2\x81\xa9" "b", /* U+2069 pop directional isolate */
        "a\xe2\x81\xa0" "b", /* U+2060 word joiner */
        "a\xe2\x80\xae" "b", /* U+202E right-to-left override */
        "a\xc2\xad" "b",     /* U+00AD soft hyphen */
        "a\xd8\x9c" "b",     /* U+061C Arabic letter mark */
        "a\xe1\xa0\x8e" "b", /* U+180E Mongolian vowel separator */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!nick_ok(bad[i]), "nick with forbidden character #%zu accepted", i);
}
END_TEST

START_TEST(nick_printable_unicode)
{
    ck_assert_int_ne(nick_ok("Zo\xc3\xab"), 0);                     /* Zoë */
    ck_assert_int_ne(nick_ok("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"), 0); /* 日本語 */
    ck_assert_int_ne(nick_ok("\xf0\x9f\x98\x80"), 0);               /* 😀 */
    ck_assert_int_ne(nick_ok("a\xc2\xa1" "b"), 0);                  /* U+00A1, just past NBSP */
}
END_TEST

START_TEST(nick_invalid_utf8)
{
    ck_assert_int_eq(nick_ok("\xff"), 0);
    ck_assert_int_eq(nick_ok("ab\xff"), 0);
    ck_assert_int_eq(nick_ok("ab\xc3"), 0);          /* truncated 2-byte sequence */
    ck_assert_int_eq(nick_ok("\xc3"), 0);
    ck_assert_int_eq(nick_ok("\xe6\x97"), 0);        /* truncated 3-byte sequence */
    ck_assert_int_eq(nick_ok("\xc0\xaf"), 0);        /* overlong '/' */
    ck_assert_int_eq(nick_ok("\xed\xa0\x80"), 0);    /* surrogate U+D800 */
    ck_assert_int_eq(nick_ok("\x80" "ab"), 0);       /* lone continuation */
    /* a valid nick cut inside its last code point by the length */
    ck_assert_int_eq(command_nick_valid("Zo\xc3\xab", 3), 0);
}
END_TEST

/* ---- rooms ---- */

static int room_ok(const char *s)
{
    return command_room_valid(s, strlen(s));
}

START_TEST(room_valid_names)
{
    ck_assert_int_ne(room_ok("lobby"), 0);
    ck_assert_int_ne(room_ok("a"), 0);
    ck_assert_int_ne(room_ok("A-z_0.9"), 0);
    ck_assert_int_ne(room_ok("..."), 0);
}
END_TEST

START_TEST(room_length_limit)
{
    ck_assert_int_ne(room_ok(repeat("r", 64)), 0);
    ck_assert_int_eq(room_ok(repeat("r", 65)), 0);
    ck_assert_int_eq(command_room_valid("", 0), 0);
    ck_assert_int_eq(command_room_valid("lobby", 0), 0);
}
END_TEST

START_TEST(room_invalid_characters)
{
    static const char *const bad[] = {"a b", "a/b", "a*b", "\xc3\xa9", "a?b", "a%20", "a\tb", "a:b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!room_ok(bad[i]), "room \"%s\" accepted", bad[i]);
    ck_assert_int_eq(command_room_valid("a\0b", 3), 0);
}
END_TEST

static Suite *command_suite(void)
{
    Suite *s = suite_create("command");
    TCase *p = tcase_create("parse");
    tcase_add_test(p, parse_empty);
    tcase_add_test(p, parse_message);
    tcase_add_test(p, parse_message_with_spaces_and_utf8);
    tcase_add_test(p, parse_double_slash_is_message);
    tcase_add_test(p, parse_double_slash_alone);
    tcase_add_test(p, parse_slash_alone_is_unknown);
    tcase_add_test(p, parse_me);
    tcase_add_test(p, parse_me_keeps_inner_spaces);
    tcase_add_test(p, parse_me_without_text_is_unknown);
    tcase_add_test(p, parse_nick);
    tcase_add_test(p, parse_nick_without_name);
    tcase_add_test(p, parse_nick_with_space_in_name);
    tcase_add_test(p, parse_who);
    tcase_add_test(p, parse_who_with_argument_is_unknown);
    tcase_add_test(p, parse_unknown_command_word);
    tcase_add_test(p, parse_command_word_matches_whole_word);
    tcase_add_test(p, parse_uses_length_not_nul);
    tcase_add_test(p, parse_token);
    tcase_add_test(p, parse_kick_with_and_without_reason);
    suite_add_tcase(s, p);

    TCase *n = tcase_create("nick");
    tcase_add_test(n, nick_simple);
    tcase_add_test(n, nick_empty);
    tcase_add_test(n, nick_length_limit);
    tcase_add_test(n, nick_spaces_and_controls);
    tcase_add_test(n, nick_unicode_spaces_and_c1);
    tcase_add_test(n, nick_printable_unicode);
    tcase_add_test(n, nick_invalid_utf8);
    suite_add_tcase(s, n);

    TCase *r = tcase_create("room");
    tcase_add_test(r, room_valid_names);
    tcase_add_test(r, room_length_limit);
    tcase_add_test(r, room_invalid_characters);
    suite_add_tcase(s, r);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(command_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
