/* json: JSON string escaping and number formatting into a struct buf.
 * Pure layer: no I/O, allocation only through buf. */
#include "json.h"

#include <string.h>

int json_append_string(struct buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    /* Worst case every byte becomes \u00XX: reserve once, then write in place. */
    if (n > (UINT32_MAX - 2) / 6 || buf_reserve(b, n * 6 + 2) < 0)
        return -1;
    uint8_t *o = b->data + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = (uint8_t)hex[c >> 4];
            *o++ = (uint8_t)hex[c & 15];
        }
    }
    *o++ = '"';
    b->len = (uint32_t)(o - b->data);
    return 0;
}

int json_append_cstring(struct buf *b, const char *s)
{
    return json_append_string(b, s, strlen(s));
}

int json_append_u64(struct buf *b, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return buf_append(b, tmp + sizeof(tmp) - n, n);
}

int json_append_raw(struct buf *b, const char *raw)
{
    return buf_append(b, raw, strlen(raw));
}
