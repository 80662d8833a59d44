/* handshake: server side of the RFC 6455 opening handshake: validates an
 * upgrade request and computes Sec-WebSocket-Accept (SHA-1 and base64 from
 * libcrypto). Pure layer: no I/O, no allocation. */
#include "handshake.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <string.h>

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static int is_b64(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

int handshake_key_valid(const char *s, size_t n)
{
    if (n != 24 || s[22] != '=' || s[23] != '=')
        return 0;
    for (size_t i = 0; i < 22; i++)
        if (!is_b64(s[i]))
            return 0;
    return 1;
}

void handshake_accept_key(const char *key, size_t key_len, char *out)
{
    unsigned char digest[SHA_DIGEST_LENGTH];
    char joined[128];
    size_t glen = sizeof(ws_guid) - 1;
    if (key_len > sizeof(joined) - glen)
        key_len = sizeof(joined) - glen;
    memcpy(joined, key, key_len);
    memcpy(joined + key_len, ws_guid, glen);
    SHA1((const unsigned char *)joined, key_len + glen, digest);
    EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH);
    out[HANDSHAKE_ACCEPT_LEN] = '\0';
}

void handshake_init(void)
{
    char accept[HANDSHAKE_ACCEPT_LEN + 1];
    handshake_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, accept);
}

int handshake_is_upgrade(const struct http_request *req)
{
    const struct http_slice *up = http_header_get(req, "Upgrade");
    return up && http_list_has_token(*up, "websocket");
}

static int refuse(struct handshake_result *res, int status, const char *reason)
{
    res->status = status;
    res->reason = reason;
    return status;
}

int handshake_check(const struct http_request *req, struct handshake_result *res)
{
    memset(res, 0, sizeof(*res));
    if (!http_slice_eq(req->method, "GET"))
        return refuse(res, 405, "a WebSocket upgrade must use GET");
    if (req->version_minor < 1)
        return refuse(res, 400, "a WebSocket upgrade requires HTTP/1.1");
    if (http_header_count(req, "Host") != 1)
        return refuse(res, 400, "missing or repeated Host header");
    const struct http_slice *up = http_header_get(req, "Upgrade");
    if (!up || !http_list_has_token(*up, "websocket"))
        return refuse(res, 400, "Upgrade header must name websocket");
    int conn_upgrade = 0;
    for (size_t i = 0; i < req->nheaders; i++)
        if (http_slice_ieq(req->headers[i].name, "Connection") &&
            http_list_has_token(req->headers[i].value, "Upgrade"))
            conn_upgrade = 1;
    if (!conn_upgrade)
        return refuse(res, 400, "Connection header must contain Upgrade");
    const struct http_slice *ver = http_header_get(req, "Sec-WebSocket-Version");
    if (!ver || http_header_count(req, "Sec-WebSocket-Version") != 1 || !http_slice_ieq(*ver, "13"))
        return refuse(res, 426, "only WebSocket version 13 is supported");
    const struct http_slice *key = http_header_get(req, "Sec-WebSocket-Key");
    if (!key || http_header_count(req, "Sec-WebSocket-Key") != 1)
        return refuse(res, 400, "missing or repeated Sec-WebSocket-Key");
    if (!handshake_key_valid(key->p, key->n))
        return refuse(res, 400, "Sec-WebSocket-Key must be 16 bytes in base64");
    handshake_accept_key(key->p, key->n, res->accept);
    res->status = 101;
    return 101;
}
