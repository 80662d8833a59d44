/* api_body: the API's request bodies, decoded by jansson (duplicate keys
 * refused, no NUL in strings) and checked field by field into fixed structs;
 * nicks and room names by chat's own rules (command). Pure: no I/O, nothing
 * kept between calls; never writes past a field's buffer. */
#include "api_body.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"

__attribute__((format(printf, 4, 5)))
static int refuse(struct api_error *err, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    err->status = status;
    err->code = code;
    return status;
}

/* The body as a JSON object, or NULL with err set. */
static json_t *decode(const char *body, size_t len, struct api_error *err)
{
    json_error_t je;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!j) {
        refuse(err, 400, "malformed_json", "the body is not JSON: %s (at byte %d)", je.text, je.position);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        refuse(err, 422, "invalid_body", "the body must be a JSON object");
        return NULL;
    }
    return j;
}

/* Refuses any field not named in `known` (NULL-terminated). Returns 0 or the status. */
static int only_fields(json_t *obj, const char *const *known, struct api_error *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        size_t i = 0;
        while (known[i] && strcmp(known[i], key) != 0)
            i++;
        if (!known[i])
            return refuse(err, 422, "invalid_body", "unknown field \"%.40s\"", key);
    }
    return 0;
}

/* Copies string field `name` (1 to max bytes) into out. Returns 1 when copied,
 * 0 when absent, or -1 with err set (not a string, empty, too long). */
static int string_field(json_t *obj, const char *name, size_t max, char *out, struct api_error *err)
{
    json_t *v = json_object_get(obj, name);
    if (!v)
        return 0;
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max) {
        refuse(err, 422, "invalid_body", "\"%s\" must be a string of 1 to %zu bytes", name, max);
        return -1;
    }
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 1;
}

int api_body_post(const char *body, size_t len, uint64_t max_text, struct api_post *out, struct api_error *err)
{
    static const char *const known[] = {"text", "nick", NULL};
    memset(out, 0, sizeof(*out));
    json_t *j = decode(body, len, err);
    if (!j)
        return err->status;
    json_t *text = json_object_get(j, "text");
    int nick = 0, rc = only_fields(j, known, err);
    if (!rc && (nick = string_field(j, "nick", API_NICK_MAX, out->nick, err)) < 0)
        rc = err->status;
    else if (!rc && nick && !command_nick_valid(out->nick, strlen(out->nick)))
        rc = refuse(err, 422, "invalid_body", "\"nick\" must be 1 to 32 bytes of printable UTF-8 without spaces");
    else if (!rc && (!json_is_string(text) || json_string_length(text) == 0 || json_string_length(text) > max_text))
        rc = refuse(err, 422, "invalid_body", "\"text\" must be a string of 1 to %llu bytes",
                    (unsigned long long)max_text);
    else if (!rc && !(out->text = malloc(json_string_length(text) + 1)))
        rc = refuse(err, 503, "unavailable", "out of memory");
    if (!rc) {
        out->text_len = json_string_length(text);
        memcpy(out->text, json_string_value(text), out->text_len + 1);
        if (!nick)
            strcpy(out->nick, API_DEFAULT_NICK);
    }
    json_decref(j);
    if (rc)
        api_post_clear(out);
    return rc;
}

void api_post_clear(struct api_post *p)
{
    free(p->text);
    p->text = NULL;
    p->text_len = 0;
}

int api_body_disconnect(const char *body, size_t len, struct api_disconnect *out, struct api_error *err)
{
    static const char *const known[] = {"user", "room", "nick", "reason", NULL};
    memset(out, 0, sizeof(*out));
    json_t *j = decode(body, len, err);
    if (!j)
        return err->status;
    int rc = only_fields(j, known, err);
    int user = 0, room = 0, nick = 0, reason = 0;
    if (!rc && ((user = string_field(j, "user", API_USER_MAX, out->user, err)) < 0 ||
                (room = string_field(j, "room", API_ROOM_MAX, out->room, err)) < 0 ||
                (nick = string_field(j, "nick", API_NICK_MAX, out->nick, err)) < 0 ||
                (reason = string_field(j, "reason", API_REASON_MAX, out->reason, err)) < 0))
        rc = err->status;
    json_decref(j);
    if (rc)
        return rc;
    if (user == (room || nick))
        return refuse(err, 422, "invalid_body", "give either \"user\", or \"room\" and \"nick\"");
    if (!user && !(room && nick))
        return refuse(err, 422, "invalid_body", "\"room\" and \"nick\" go together");
    if (room && !command_room_valid(out->room, strlen(out->room)))
        return refuse(err, 422, "invalid_body", "\"room\" must be 1 to 64 of A-Z a-z 0-9 _ - .");
    if (nick && !command_nick_valid(out->nick, strlen(out->nick)))
        return refuse(err, 422, "invalid_body", "\"nick\" must be 1 to 32 bytes of printable UTF-8 without spaces");
    out->by_user = user;
    if (!reason)
        strcpy(out->reason, "removed by the application");
    return 0;
}
