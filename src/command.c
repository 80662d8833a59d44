/* command: chat line parsing and nick/room name rules. Pure: no I/O. */
#include "command.h"

#include <stdint.h>
#include <string.h>

#include "utf8.h"

static int word_is(const char *w, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(w, lit, n) == 0;
}

void command_parse(const char *line, size_t len, struct command *cmd)
{
    memset(cmd, 0, sizeof(*cmd));
    if (len == 0) {
        cmd->kind = CMD_EMPTY;
        return;
    }
    if (line[0] != '/' || (len > 1 && line[1] == '/')) {
        int escaped = line[0] == '/';
        cmd->kind = CMD_MESSAGE;
        cmd->arg = line + escaped;
        cmd->arg_len = len - (size_t)escaped;
        return;
    }
    size_t w = 1;
    while (w < len && line[w] != ' ')
        w++;
    const char *word = line + 1;
    size_t wn = w - 1;
    const char *arg = line + w;
    size_t an = len - w;
    if (an > 0) {   /* drop the one separating space */
        arg++;
        an--;
    }
    cmd->arg = arg;
    cmd->arg_len = an;
    if (word_is(word, wn, "me") && an > 0) {
        cmd->kind = CMD_ACTION;
    } else if (word_is(word, wn, "nick")) {
        cmd->kind = CMD_NICK;
    } else if (word_is(word, wn, "who") && an == 0) {
        cmd->kind = CMD_WHO;
    } else if (word_is(word, wn, "token") && an > 0) {
        cmd->kind = CMD_TOKEN;
    } else if (word_is(word, wn, "kick") && an > 0 && arg[0] != ' ') {
        cmd->kind = CMD_KICK;
        size_t n = 0;
        while (n < an && arg[n] != ' ')
            n++;
        cmd->arg_len = n;
        cmd->reason = arg + n + (n < an);
        cmd->reason_len = an - n - (n < an);
    } else {
        cmd->kind = CMD_UNKNOWN;
        cmd->arg = word;
        cmd->arg_len = wn;
    }
}

/* Decodes the code point at s (valid UTF-8 assumed) and returns its length. */
static size_t decode(const uint8_t *s, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] < 0xE0) {
        *cp = ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if (s[0] < 0xF0) {
        *cp = ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    *cp = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
          ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
}

static int printable(uint32_t cp)
{
    if (cp <= 0x20 || (cp >= 0x7F && cp <= 0xA0))
        return 0;   /* C0 controls, space, DEL, C1 controls, no-break space */
    if (cp == 0x00AD || cp == 0x061C || cp == 0x1680 || cp == 0x180E || (cp >= 0x2000 && cp <= 0x200F) ||
        (cp >= 0x2028 && cp <= 0x202F) || (cp >= 0x205F && cp <= 0x206F) || cp == 0x3000 || cp == 0xFEFF)
        return 0;   /* Unicode spaces, invisible format and bidi characters that let one nick pose as another */
    return 1;
}

int command_nick_valid(const char *s, size_t n)
{
    if (n == 0 || n > COMMAND_NICK_MAX || !utf8_is_valid((const uint8_t *)s, n))
        return 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += decode((const uint8_t *)s + i, &cp);
        if (!printable(cp))
            return 0;
    }
    return 1;
}

int command_room_valid(const char *s, size_t n)
{
    if (n == 0 || n > COMMAND_ROOM_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-' || c == '.'))
            return 0;
    }
    return 1;
}
