/* command: the chat protocol's client side, sans-I/O: splits one chat line
 * into a command and its argument, and says which nicks and room names are
 * well formed. No I/O, no allocation, no state. */
#ifndef WSHUB_COMMAND_H
#define WSHUB_COMMAND_H

#include <stddef.h>

#define COMMAND_NICK_MAX 32
#define COMMAND_ROOM_MAX 64

enum command_kind {
    CMD_EMPTY,    /* an empty line: ignored */
    CMD_MESSAGE,  /* plain text, or "//..." meaning text starting with '/' */
    CMD_ACTION,   /* /me TEXT */
    CMD_NICK,     /* /nick NAME */
    CMD_WHO,      /* /who */
    CMD_TOKEN,    /* /token TOKEN: a fresh connection token */
    CMD_KICK,     /* /kick NICK [REASON] */
    CMD_UNKNOWN,  /* any other /command, or a known one used wrongly */
};

struct command {
    enum command_kind kind;
    const char *arg;   /* MESSAGE/ACTION: the text; NICK: the name; TOKEN: the token; KICK: the
                          target's nick; UNKNOWN: the command word */
    size_t arg_len;
    const char *reason; /* KICK: the reason after the nick (may be empty) */
    size_t reason_len;
};

/* Parses one chat line (valid UTF-8, as the frame layer guarantees). */
void command_parse(const char *line, size_t len, struct command *cmd);

/* True when s is a well-formed nick: 1 to 32 bytes of valid, printable UTF-8
 * with no spaces (no controls, no C1 controls, no Unicode space characters). */
int command_nick_valid(const char *s, size_t n);

/* True when s is a well-formed room name: 1 to 64 of A-Z a-z 0-9 _ - . */
int command_room_valid(const char *s, size_t n);

#endif
