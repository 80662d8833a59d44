/* fuzz_api: libFuzzer harness for src/api_body.c, the HTTP API's JSON
 * bodies. The input is a request body. Properties:
 *  - parsing never crashes, leaks or reads past the input, whatever the bytes;
 *  - a refusal is 400, 422 or 503 with a code and a message;
 *  - an accepted post has a text of 1 to max_text bytes with no NUL, and a
 *    nick chat itself would accept;
 *  - an accepted disconnect names a user, or a valid room and nick, never
 *    both, and a reason that fits a close frame;
 *  - the same body parsed again gives the same verdict.
 * Deterministic; no state survives a run. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "api_body.h"
#include "command.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)
#define MAX_TEXT 64

static void check_error(int rc, const struct api_error *err)
{
    CHECK(rc == err->status);
    CHECK(rc == 400 || rc == 422 || rc == 503);
    CHECK(err->code && err->code[0] && err->message[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    struct api_error err;
    struct api_post post;
    int rc = api_body_post(body, size, MAX_TEXT, &post, &err);
    if (rc) {
        check_error(rc, &err);
        CHECK(post.text == NULL);
    } else {
        CHECK(post.text_len >= 1 && post.text_len <= MAX_TEXT);
        CHECK(strlen(post.text) == post.text_len);
        CHECK(command_nick_valid(post.nick, strlen(post.nick)));
        api_post_clear(&post);
        CHECK(post.text == NULL);
    }
    struct api_post again;
    int rc2 = api_body_post(body, size, MAX_TEXT, &again, &err);
    CHECK(rc2 == rc);
    api_post_clear(&again);

    struct api_disconnect d;
    rc = api_body_disconnect(body, size, &d, &err);
    if (rc) {
        check_error(rc, &err);
    } else if (d.by_user) {
        CHECK(d.user[0] && strlen(d.user) <= API_USER_MAX && !d.room[0] && !d.nick[0]);
    } else {
        CHECK(!d.user[0] && command_room_valid(d.room, strlen(d.room)));
        CHECK(command_nick_valid(d.nick, strlen(d.nick)));
    }
    if (!rc)
        CHECK(d.reason[0] && strlen(d.reason) <= API_REASON_MAX);
    return 0;
}
