/* api: the HTTP API for the application behind the chat, an HTTP endpoint
 * mounted at /api: post into a room, list rooms, read a room's members and
 * history, disconnect users. Every request needs the API key (Authorization:
 * Bearer KEY, compared in constant time), from an allowed address; repeated
 * failures from one address are throttled. Bodies are JSON (api_body);
 * answers are JSON, errors {"error":{"code","message"}}. App layer: it
 * answers through conn, posts and disconnects through chat, reads the hub
 * (in a cluster, the cluster's rooms through chat's broker); it never
 * touches a socket and never logs a key. */
#ifndef WSHUB_API_H
#define WSHUB_API_H

#include <stddef.h>
#include <stdint.h>

#include "chat.h"
#include "cidr.h"
#include "conn.h"
#include "metrics.h"

#define API_KEY_MAX 512           /* bytes of the API key */
#define API_AUTH_BURST 10         /* failed keys an address may send at once ... */
#define API_AUTH_RATE 1           /* ... and then per second; past that 429, key not checked */

struct api_config {
    const char *key;              /* the API key (copied as its SHA-256) */
    size_t key_len;
    const struct cidr *allow;     /* who may call the API; n_allow 0 = any address */
    size_t n_allow;
    size_t max_body;              /* bytes of a request body (--max-api-body) */
    uint64_t max_text;            /* bytes of a posted message's text (--max-line) */
    unsigned wait_ms;             /* how long a post waits for its number before 504 */
};

struct api;

/* Creates the API over chat. NULL if out of memory. */
struct api *api_new(const struct api_config *cfg, struct chat *chat);

/* Frees the API, after the server and chat (whose broker may still report
 * on posts that were waiting). */
void api_free(struct api *a);

/* The endpoint to mount at /api (prefix). */
const struct endpoint *api_endpoint(const struct api *a);

/* Writes the API's figures: requests, refused keys, throttled, posts, disconnects. */
void api_metrics(struct api *a, struct metrics *m);

#endif
