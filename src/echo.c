/* echo: app layer endpoint that sends each message back to its sender.
 * Knows nothing of sockets: it only calls conn_send. */
#include "echo.h"

static void echo_message(void *ctx, struct conn *c, enum ws_opcode op, uint8_t *data, size_t len)
{
    (void)ctx;
    if (conn_send(c, op, data, len) < 0)
        conn_close(c, WS_CLOSE_INTERNAL, "out of memory");
}

const struct endpoint echo_endpoint = {
    .name = "echo",
    .message = echo_message,
};
