/* api_body: the JSON request bodies of the HTTP API, parsed with jansson and
 * checked into plain structs: a message to post ({"text", "nick"}) and whom
 * to disconnect ({"user"} or {"room", "nick"}, with an optional "reason").
 * Pure: no I/O, no globals; what it allocates it hands back (api_post_clear).
 * Every refusal is a status (400: not JSON; 422: JSON of the wrong shape),
 * a code and a one-line message. */
#ifndef WSHUB_API_BODY_H
#define WSHUB_API_BODY_H

#include <stddef.h>
#include <stdint.h>

#define API_NICK_MAX 32      /* bytes of a nick (as chat's) */
#define API_ROOM_MAX 64      /* bytes of a room name (as chat's) */
#define API_USER_MAX 128     /* bytes of a user id */
#define API_REASON_MAX 120   /* bytes of a close reason (a close frame holds 123) */
#define API_DEFAULT_NICK "api"

/* Why a body was refused. */
struct api_error {
    int status;              /* 400, 422, or 503 (out of memory) */
    const char *code;        /* "malformed_json", "invalid_body" */
    char message[200];
};

/* A message to post: text (its bytes, NUL-terminated, no NUL inside) and nick. */
struct api_post {
    char *text;
    size_t text_len;
    char nick[API_NICK_MAX + 1];
};

/* Whom to disconnect: every connection of user, or the member nick of room. */
struct api_disconnect {
    int by_user;
    char user[API_USER_MAX + 1];
    char room[API_ROOM_MAX + 1];
    char nick[API_NICK_MAX + 1];
    char reason[API_REASON_MAX + 1];
};

/* Parses {"text": "...", "nick": "..."} (nick optional, API_DEFAULT_NICK when
 * absent; text 1 to max_text bytes; no other field). Returns 0 (free out with
 * api_post_clear), or err->status. */
int api_body_post(const char *body, size_t len, uint64_t max_text, struct api_post *out, struct api_error *err);

/* Frees what api_body_post put into p. */
void api_post_clear(struct api_post *p);

/* Parses {"user": "ID"} or {"room": "R", "nick": "N"}, each with an optional
 * "reason" (default: "removed by the application"). Returns 0 or err->status. */
int api_body_disconnect(const char *body, size_t len, struct api_disconnect *out, struct api_error *err);

#endif
