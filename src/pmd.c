/* pmd: reads Sec-WebSocket-Extensions values (RFC 6455 section 9.1 grammar,
 * with RFC 7230's optional whitespace, empty list elements, tokens and
 * quoted strings) and decides on permessage-deflate offers (RFC 7692 section
 * 7). Pure layer: never allocates, never does I/O, never reads past the
 * value it is given. */
#include "pmd.h"

#include <stdio.h>
#include <string.h>

/* RFC 7230 tchar. */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

struct scan {
    const char *p;
    size_t i, n;
};

static int peek(const struct scan *s)
{
    return s->i < s->n ? (unsigned char)s->p[s->i] : -1;
}

static void skip_ows(struct scan *s)
{
    while (s->i < s->n && (s->p[s->i] == ' ' || s->p[s->i] == '\t'))
        s->i++;
}

/* Reads 1*tchar into *t. Returns 0 when there is none. */
static int scan_token(struct scan *s, struct http_slice *t)
{
    size_t start = s->i;
    while (s->i < s->n && is_tchar((unsigned char)s->p[s->i]))
        s->i++;
    *t = (struct http_slice){s->p + start, s->i - start};
    return s->i > start;
}

/* A parameter's value once unescaped: its length and first two bytes, all a
 * window-bits value needs. */
struct value {
    size_t n;
    char c[2];
};

static void value_put(struct value *v, char c)
{
    if (v->n < sizeof(v->c))
        v->c[v->n] = c;
    v->n++;
}

/* Reads a token or a quoted string whose unescaped content is a token (RFC
 * 6455 section 9.1). Returns 0 when it is neither. */
static int scan_value(struct scan *s, struct value *v)
{
    memset(v, 0, sizeof(*v));
    if (peek(s) != '"') {
        struct http_slice t;
        if (!scan_token(s, &t))
            return 0;
        for (size_t k = 0; k < t.n; k++)
            value_put(v, t.p[k]);
        return 1;
    }
    s->i++;
    for (;;) {
        int c = peek(s);
        if (c < 0)
            return 0;              /* no closing quote */
        s->i++;
        if (c == '"')
            return v->n > 0;
        if (c == '\\') {           /* quoted-pair: HTAB, SP, VCHAR or obs-text */
            c = peek(s);
            if (c < 0 || (c < 0x20 && c != '\t') || c == 0x7F)
                return 0;
            s->i++;
        } else if ((c < 0x20 && c != '\t') || c == 0x7F) {
            return 0;              /* not qdtext */
        }
        if (!is_tchar((unsigned char)c))
            return 0;              /* unescaped, the value must be a token */
        value_put(v, (char)c);
    }
}

/* 8..15 written as RFC 7692 section 7.1.2 says (no sign, no leading zero), or 0. */
static uint8_t window_bits(const struct value *v)
{
    if (v->n == 1 && (v->c[0] == '8' || v->c[0] == '9'))
        return (uint8_t)(v->c[0] - '0');
    if (v->n == 2 && v->c[0] == '1' && v->c[1] >= '0' && v->c[1] <= '5')
        return (uint8_t)(10 + v->c[1] - '0');
    return 0;
}

enum { SEEN_SNCT = 1, SEEN_CNCT = 2, SEEN_SMWB = 4, SEEN_CMWB = 8 };

/* Adds one parameter (v NULL when it has no value) to an offer being read.
 * Returns 0 when the offer must be declined: an unknown or repeated
 * parameter, or a bad value. */
static int apply_param(struct pmd_params *o, unsigned *seen, struct http_slice name, const struct value *v)
{
    unsigned bit;
    if (http_slice_eq(name, "server_no_context_takeover"))
        bit = SEEN_SNCT;
    else if (http_slice_eq(name, "client_no_context_takeover"))
        bit = SEEN_CNCT;
    else if (http_slice_eq(name, "server_max_window_bits"))
        bit = SEEN_SMWB;
    else if (http_slice_eq(name, "client_max_window_bits"))
        bit = SEEN_CMWB;
    else
        return 0;
    if (*seen & bit)
        return 0;
    *seen |= bit;
    switch (bit) {
    case SEEN_SNCT:
        o->server_no_context_takeover = 1;
        return v == NULL;
    case SEEN_CNCT:
        o->client_no_context_takeover = 1;
        return v == NULL;
    case SEEN_SMWB:
        o->server_max_window_bits = v ? window_bits(v) : 0;
        return o->server_max_window_bits != 0;
    default:
        o->client_max_window_bits = v ? window_bits(v) : PMD_BITS_NO_VALUE;
        return o->client_max_window_bits != 0;
    }
}

enum pmd_verdict pmd_parse(const char *value, size_t len, struct pmd_params *offer)
{
    struct scan s = {value, 0, len};
    int accepted = 0;
    for (;;) {
        skip_ows(&s);
        if (peek(&s) < 0)
            break;
        if (peek(&s) == ',') {     /* an empty list element */
            s.i++;
            continue;
        }
        struct http_slice name;
        if (!scan_token(&s, &name))
            return PMD_MALFORMED;
        int ours = !accepted && http_slice_eq(name, "permessage-deflate"), ok = 1;
        struct pmd_params p = {0};
        unsigned seen = 0;
        for (;;) {
            skip_ows(&s);
            if (peek(&s) < 0 || peek(&s) == ',')
                break;
            if (peek(&s) != ';')
                return PMD_MALFORMED;
            s.i++;
            skip_ows(&s);
            struct http_slice pname;
            if (!scan_token(&s, &pname))
                return PMD_MALFORMED;
            skip_ows(&s);
            struct value v;
            int has_value = peek(&s) == '=';
            if (has_value) {
                s.i++;
                skip_ows(&s);
                if (!scan_value(&s, &v))
                    return PMD_MALFORMED;
            }
            if (ours && ok)
                ok = apply_param(&p, &seen, pname, has_value ? &v : NULL);
        }
        if (ours && ok) {
            *offer = p;
            accepted = 1;
        }
        if (peek(&s) == ',')
            s.i++;
    }
    return accepted ? PMD_ACCEPT : PMD_DECLINE;
}

enum pmd_verdict pmd_negotiate(const struct http_request *req, struct pmd_params *offer)
{
    enum pmd_verdict verdict = PMD_DECLINE;
    for (size_t i = 0; i < req->nheaders; i++) {
        if (!http_slice_ieq(req->headers[i].name, "Sec-WebSocket-Extensions"))
            continue;
        struct pmd_params p;
        enum pmd_verdict v = pmd_parse(req->headers[i].value.p, req->headers[i].value.n, &p);
        if (v == PMD_MALFORMED)
            return PMD_MALFORMED;
        if (v == PMD_ACCEPT && verdict != PMD_ACCEPT) {
            *offer = p;
            verdict = PMD_ACCEPT;
        }
    }
    return verdict;
}

size_t pmd_response(const struct pmd_params *offer, char *out, size_t size)
{
    int n = snprintf(out, size, "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    if (n > 0 && (size_t)n < size && offer->server_max_window_bits)
        n += snprintf(out + n, size - (size_t)n, "; server_max_window_bits=%u", offer->server_max_window_bits);
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

unsigned pmd_server_window_bits(const struct pmd_params *offer)
{
    unsigned bits = offer->server_max_window_bits ? offer->server_max_window_bits : 15;
    return bits < 9 ? 9 : bits;
}
