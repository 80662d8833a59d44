/* fuzz_command: libFuzzer harness for src/command.c, the chat line parser and
 * the nick and room name rules. The input is one chat line (any bytes: the
 * parser must not care whether the frame layer checked them).
 *  - command_parse's argument points inside the line (exact-size buffer);
 *  - the kind and argument agree with a reference parser written here from
 *    command.h and the README's chat protocol: "" is EMPTY; a line not
 *    starting with '/' is a MESSAGE of the whole line; "//x" is a MESSAGE of
 *    "/x"; "/me TEXT" (TEXT not empty) is an ACTION; "/nick[ NAME]" a NICK;
 *    "/who" with no argument (one trailing
 *    space is the dropped separator) a WHO; anything else starting with '/' is UNKNOWN with the
 *    command word as argument;
 *  - command_nick_valid true implies 1..32 bytes of valid UTF-8 with no byte
 *    < 0x21, no 0x7F, no C1 control, no Unicode space (Zs), no line or
 *    paragraph separator, no zero-width or bidi control; false on valid UTF-8
 *    of printable ASCII only is a bug too (that much is certain);
 *  - command_room_valid is exactly 1..64 of [A-Za-z0-9_.-].
 * Both rules are tried on the whole line and on the parsed argument.
 * Deterministic; no state survives a run. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "utf8.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

/* Decodes strict UTF-8 into code points; returns the count or -1 if invalid. */
static long ref_decode(const uint8_t *s, size_t n, uint32_t *cps)
{
    size_t i = 0;
    long k = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            len = 1, cp = c, min = 0;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return -1;
        }
        if (n - i < len)
            return -1;
        for (size_t j = 1; j < len; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return -1;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return -1;
        cps[k++] = cp;
        i += len;
    }
    return k;
}

/* Code points no nick may hold, whatever else the rules allow. */
static int forbidden_in_nick(uint32_t cp)
{
    if (cp <= 0x20 || (cp >= 0x7F && cp <= 0x9F))
        return 1;   /* C0, space, DEL, C1 */
    switch (cp) {   /* Unicode Zs */
    case 0x00A0: case 0x1680: case 0x202F: case 0x205F: case 0x3000:
        return 1;
    }
    if (cp >= 0x2000 && cp <= 0x200A)
        return 1;
    if (cp == 0x2028 || cp == 0x2029)   /* line and paragraph separators */
        return 1;
    if ((cp >= 0x200B && cp <= 0x200F) || (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) ||
        cp == 0xFEFF || cp == 0x2060 || cp == 0x061C)
        return 1;   /* zero-width, bidi embeddings, overrides and isolates, BOM, word joiner, ALM */
    return 0;
}

static void check_nick(const char *s, size_t n)
{
    int ok = command_nick_valid(s, n);
    CHECK(ok == 0 || ok == 1);
    int ascii_printable = n >= 1 && n <= COMMAND_NICK_MAX;
    for (size_t i = 0; i < n && ascii_printable; i++)
        ascii_printable = (uint8_t)s[i] > 0x20 && (uint8_t)s[i] < 0x7F;
    if (ascii_printable)
        CHECK(ok);
    if (!ok)
        return;
    CHECK(n >= 1 && n <= COMMAND_NICK_MAX);
    CHECK(utf8_is_valid((const uint8_t *)s, n));
    for (size_t i = 0; i < n; i++)
        CHECK((uint8_t)s[i] >= 0x21 && (uint8_t)s[i] != 0x7F);
    uint32_t cps[COMMAND_NICK_MAX];
    long k = ref_decode((const uint8_t *)s, n, cps);
    CHECK(k >= 1);
    for (long i = 0; i < k; i++)
        CHECK(!forbidden_in_nick(cps[i]));
}

static void check_room(const char *s, size_t n)
{
    int want = n >= 1 && n <= COMMAND_ROOM_MAX;
    for (size_t i = 0; i < n && want; i++) {
        char c = s[i];
        want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
               c == '-' || c == '.';
    }
    CHECK(!!command_room_valid(s, n) == want);
}

static int starts_word(const char *line, size_t len, const char *w)
{
    size_t n = strlen(w);
    return len >= n && memcmp(line, w, n) == 0 && (len == n || line[n] == ' ');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *line = malloc(size ? size : 1);   /* exact size: no NUL after it */
    CHECK(line != NULL);
    memcpy(line, data, size);

    struct command cmd;
    memset(&cmd, 0x5a, sizeof cmd);
    command_parse(line, size, &cmd);
    CHECK(cmd.kind >= CMD_EMPTY && cmd.kind <= CMD_UNKNOWN);
    if (cmd.kind != CMD_EMPTY) {
        CHECK(cmd.arg >= line && cmd.arg <= line + size);
        CHECK(cmd.arg_len <= (size_t)(line + size - cmd.arg));
    }

    /* the reference */
    if (size == 0) {
        CHECK(cmd.kind == CMD_EMPTY);
    } else if (line[0] != '/') {
        CHECK(cmd.kind == CMD_MESSAGE && cmd.arg == line && cmd.arg_len == size);
    } else if (size >= 2 && line[1] == '/') {
        CHECK(cmd.kind == CMD_MESSAGE && cmd.arg == line + 1 && cmd.arg_len == size - 1);
    } else {
        const char *sp = memchr(line, ' ', size);
        size_t wend = sp ? (size_t)(sp - line) : size;   /* the command word is line[1..wend) */
        const char *rest = sp ? sp + 1 : line + size;
        size_t rn = (size_t)(line + size - rest);
        if (starts_word(line, size, "/me") && rn > 0) {
            CHECK(cmd.kind == CMD_ACTION && cmd.arg == rest && cmd.arg_len == rn);
        } else if (starts_word(line, size, "/nick")) {
            CHECK(cmd.kind == CMD_NICK && cmd.arg == rest && cmd.arg_len == rn);
        } else if (starts_word(line, size, "/who") && rn == 0) {   /* "/who" or "/who " */
            CHECK(cmd.kind == CMD_WHO && cmd.arg_len == 0);
        } else if (starts_word(line, size, "/token") && rn > 0) {
            CHECK(cmd.kind == CMD_TOKEN && cmd.arg == rest && cmd.arg_len == rn);
        } else if (starts_word(line, size, "/kick") && rn > 0 && rest[0] != ' ') {
            const char *gap = memchr(rest, ' ', rn);   /* the nick, then one space, then the reason */
            size_t nn = gap ? (size_t)(gap - rest) : rn;
            CHECK(cmd.kind == CMD_KICK && cmd.arg == rest && cmd.arg_len == nn);
            CHECK(cmd.reason == (gap ? gap + 1 : rest + rn) && cmd.reason_len == (gap ? rn - nn - 1 : 0));
        } else {
            CHECK(cmd.kind == CMD_UNKNOWN && cmd.arg == line + 1 && cmd.arg_len == wend - 1);
        }
    }
    /* MESSAGE text: the input less one leading '/' for "//", else all of it */
    if (cmd.kind == CMD_MESSAGE) {
        size_t skip = size >= 2 && line[0] == '/' && line[1] == '/';
        CHECK(cmd.arg_len == size - skip && memcmp(cmd.arg, data + skip, cmd.arg_len) == 0);
    }

    check_nick(line, size);
    check_room(line, size);
    if (cmd.kind != CMD_EMPTY) {
        check_nick(cmd.arg, cmd.arg_len);
        check_room(cmd.arg, cmd.arg_len);
    }
    /* the input is never written */
    CHECK(memcmp(line, data, size) == 0);
    free(line);
    return 0;
}
