/* handshake: the server side of the RFC 6455 opening handshake (section 4.2):
 * checks an upgrade request and computes Sec-WebSocket-Accept with libcrypto.
 * Pure layer: no I/O, no allocation. */
#ifndef WSHUB_HANDSHAKE_H
#define WSHUB_HANDSHAKE_H

#include "http.h"

#define HANDSHAKE_ACCEPT_LEN 28   /* base64 of a 20-byte SHA-1, without NUL */

/* The outcome of checking an upgrade request. */
struct handshake_result {
    int status;           /* 101 when acceptable, else the HTTP status to refuse with */
    const char *reason;   /* on refusal: one line saying why */
    char accept[HANDSHAKE_ACCEPT_LEN + 1]; /* on 101: Sec-WebSocket-Accept value */
};

/* True when the request asks for a WebSocket upgrade at all (an Upgrade header
 * naming websocket), whether or not the rest of it is valid. */
int handshake_is_upgrade(const struct http_request *req);

/* Checks req against RFC 6455 section 4.2.1: GET, HTTP/1.1, Host, Upgrade has
 * websocket, Connection has Upgrade, Sec-WebSocket-Version 13 (else 426), one
 * Sec-WebSocket-Key of 16 base64-encoded bytes. Fills res; returns res->status. */
int handshake_check(const struct http_request *req, struct handshake_result *res);

/* Does libcrypto's one-time setup (OpenSSL 3 loads its default provider on
 * the first digest) at start, so the first client does not pay for it. */
void handshake_init(void);

/* Computes base64(SHA-1(key + GUID)) into out (HANDSHAKE_ACCEPT_LEN + 1 bytes). */
void handshake_accept_key(const char *key, size_t key_len, char *out);

/* True when s is exactly 24 base64 characters that decode to 16 bytes. */
int handshake_key_valid(const char *s, size_t n);

#endif
