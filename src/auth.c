/* auth: connection-token policy for chat upgrades: finding the token in a
 * request, verifying it with the configured key (jwt), private rooms and
 * guests, and the 401/403 answers. Reads key files only in auth_new. Must
 * never put a token into a reason, a header or a log line. */
#include "auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#define PEM_MAX 16384
#define REALM "Bearer realm=\"wshub\""

struct auth {
    struct auth_config cfg;
    struct jwt_key *key;
};

/* Reads at most size bytes of path into out. Returns the count, or -1 with
 * the reason in err; size bytes read means the file may be longer. */
static long read_file(const char *path, void *out, size_t size, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    size_t n = fread(out, 1, size, f);
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        snprintf(err, errlen, "cannot read %s", path);
        return -1;
    }
    return (long)n;
}

long auth_read_secret(const char *path, uint8_t *out, size_t size, char *err, size_t errlen)
{
    long n = read_file(path, out, size, err, errlen);
    if (n < 0)
        return -1;
    if ((size_t)n == size) {
        snprintf(err, errlen, "%s: the secret is longer than %zu bytes", path, size - 1);
        return -1;
    }
    if (n && out[n - 1] == '\n')
        n--;
    if (n && out[n - 1] == '\r')
        n--;
    if (!n) {
        snprintf(err, errlen, "%s is empty", path);
        return -1;
    }
    return n;
}

static const char *or_null(const char *s)
{
    return s && *s ? s : NULL;
}

struct auth *auth_new(const struct auth_config *cfg, char *err, size_t errlen)
{
    struct auth *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->cfg = *cfg;
    a->cfg.issuer = or_null(cfg->issuer);
    a->cfg.audience = or_null(cfg->audience);
    if (or_null(cfg->secret_file)) {
        uint8_t secret[AUTH_SECRET_MAX];
        long n = auth_read_secret(cfg->secret_file, secret, sizeof(secret), err, errlen);
        if (n > 0 && !(a->key = jwt_key_secret(secret, (size_t)n)))
            snprintf(err, errlen, "out of memory");
        OPENSSL_cleanse(secret, sizeof(secret));
    } else if (or_null(cfg->public_key_file)) {
        char *pem = malloc(PEM_MAX);
        long n = pem ? read_file(cfg->public_key_file, pem, PEM_MAX, err, errlen) : -1;
        if (!pem)
            snprintf(err, errlen, "out of memory");
        else if (n == PEM_MAX)
            snprintf(err, errlen, "%s is longer than %d bytes", cfg->public_key_file, PEM_MAX - 1);
        else if (n >= 0) {
            char why[256] = "";
            a->key = jwt_key_public_pem(pem, (size_t)n, why, sizeof(why));
            if (!a->key)
                snprintf(err, errlen, "%s: %s", cfg->public_key_file, why);
        }
        free(pem);
    } else {
        snprintf(err, errlen, "no key: give a secret file or a public key file");
    }
    if (!a->key) {
        free(a);
        return NULL;
    }
    return a;
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    jwt_key_free(a->key);
    free(a);
}

const char *auth_alg(const struct auth *a)
{
    return jwt_key_alg(a->key);
}

unsigned auth_leeway(const struct auth *a)
{
    return a->cfg.leeway;
}

enum jwt_error auth_verify(const struct auth *a, const char *token, size_t len, int64_t now, struct jwt_claims *out)
{
    struct jwt_expect ex = {.now = now, .leeway = a->cfg.leeway, .issuer = a->cfg.issuer,
                            .audience = a->cfg.audience};
    return jwt_verify(a->key, token, len, &ex, out);
}

/* Calls fn on each item of every Sec-WebSocket-Protocol header (a comma
 * list, optional whitespace trimmed) until it returns non-zero; returns that. */
static int each_protocol(const struct http_request *req, int (*fn)(struct http_slice item, void *arg), void *arg)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        if (!http_slice_ieq(req->headers[i].name, "Sec-WebSocket-Protocol"))
            continue;
        struct http_slice v = req->headers[i].value;
        size_t k = 0;
        while (k < v.n) {
            size_t start = k;
            while (k < v.n && v.p[k] != ',')
                k++;
            size_t end = k++;
            while (start < end && (v.p[start] == ' ' || v.p[start] == '\t'))
                start++;
            while (end > start && (v.p[end - 1] == ' ' || v.p[end - 1] == '\t'))
                end--;
            int rc = end > start ? fn((struct http_slice){v.p + start, end - start}, arg) : 0;
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int is_protocol(struct http_slice item, void *arg)
{
    return http_slice_eq(item, arg);
}

int auth_protocol_offered(const struct http_request *req, const char *protocol)
{
    return each_protocol(req, is_protocol, (void *)protocol);
}

#define BEARER_PROTOCOL "bearer."

static int bearer_protocol(struct http_slice item, void *arg)
{
    size_t n = sizeof(BEARER_PROTOCOL) - 1;
    if (item.n <= n || strncasecmp(item.p, BEARER_PROTOCOL, n) != 0)
        return 0;
    *(struct http_slice *)arg = (struct http_slice){item.p + n, item.n - n};
    return 1;
}

/* Where the token was looked for, and what was found. */
enum found { FOUND_NONE, FOUND_TOKEN, FOUND_MALFORMED };

/* Finds the token: the Authorization header (which, when present, must be
 * one "Bearer TOKEN"), else a "bearer.TOKEN" subprotocol, else ?token=. The
 * query's token is decoded into qbuf. */
static enum found find_token(const struct http_request *req, struct http_slice *tok, char *qbuf, size_t qsize,
                             const char **why)
{
    size_t nauth = http_header_count(req, "Authorization");
    if (nauth) {
        const struct http_slice *v = http_header_get(req, "Authorization");
        size_t k = 6;
        if (nauth > 1 || v->n <= k || strncasecmp(v->p, "Bearer", k) != 0 || v->p[k] != ' ') {
            *why = "malformed Authorization header: use Bearer TOKEN";
            return FOUND_MALFORMED;
        }
        while (k < v->n && v->p[k] == ' ')
            k++;
        *tok = (struct http_slice){v->p + k, v->n - k};
        return tok->n ? FOUND_TOKEN : FOUND_MALFORMED;
    }
    if (each_protocol(req, bearer_protocol, tok))
        return FOUND_TOKEN;
    long n = http_query_get(req->query, "token", qbuf, qsize);
    if (n == -1)
        return FOUND_NONE;
    if (n <= 0) {
        *why = n == 0 ? "malformed token: ?token= is empty" : "malformed token: ?token= is badly encoded or too long";
        return FOUND_MALFORMED;
    }
    *tok = (struct http_slice){qbuf, (size_t)n};
    return FOUND_TOKEN;
}

static int room_private(const struct auth *a, const char *room)
{
    for (size_t i = 0; i < a->cfg.n_private_rooms; i++)
        if (jwt_pattern_match(a->cfg.private_rooms[i], room))
            return 1;
    return 0;
}

/* Refuses with status and reason; error is RFC 6750's code, or NULL when the
 * request carried no token at all. */
static void refuse(struct auth_result *r, int status, const char *reason, const char *error)
{
    r->status = status;
    r->authenticated = 0;
    r->reason = reason;
    if (error)
        snprintf(r->header, sizeof(r->header), "WWW-Authenticate: " REALM ", error=\"%s\", error_description=\"%s\"\r\n",
                 error, reason);
    else
        snprintf(r->header, sizeof(r->header), "WWW-Authenticate: " REALM "\r\n");
}

void auth_decide(const struct auth *a, const struct http_request *req, const char *room, int64_t now,
                 struct auth_result *r)
{
    memset(r, 0, sizeof(*r));
    char qbuf[JWT_MAX_TOKEN + 2];
    struct http_slice tok = {0};
    const char *why = NULL;
    switch (find_token(req, &tok, qbuf, sizeof(qbuf), &why)) {
    case FOUND_MALFORMED:
        refuse(r, 401, why ? why : "malformed token", "invalid_request");
        return;
    case FOUND_NONE:
        if (!a->cfg.allow_anonymous)
            refuse(r, 401, "missing token: send Authorization: Bearer TOKEN, the subprotocol bearer.TOKEN "
                           "or ?token=TOKEN", NULL);
        else if (room_private(a, room))
            refuse(r, 403, "this room is private: sign in with a token", NULL);
        return;
    case FOUND_TOKEN:
        break;
    }
    enum jwt_error e = auth_verify(a, tok.p, tok.n, now, &r->claims);
    if (e != JWT_OK) {
        refuse(r, 401, jwt_error_text(e), "invalid_token");
        return;
    }
    if (!jwt_room_allowed(&r->claims, room)) {
        refuse(r, 403, "the token does not allow this room", "insufficient_scope");
        return;
    }
    r->authenticated = 1;
}
