/* json: appending JSON text to a byte buffer: string literals escaped for any
 * valid UTF-8 input (quotes, backslashes, control characters; everything else
 * passes through), and unsigned numbers. Pure layer: no I/O. */
#ifndef WSHUB_JSON_H
#define WSHUB_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Appends s[0..n) as a quoted JSON string. Returns 0 or -1 (no memory). */
int json_append_string(struct buf *b, const char *s, size_t n);

/* Appends a NUL-terminated string as a quoted JSON string. */
int json_append_cstring(struct buf *b, const char *s);

/* Appends an unsigned integer in decimal. */
int json_append_u64(struct buf *b, uint64_t v);

/* Appends NUL-terminated raw JSON (punctuation, keys) as is. */
int json_append_raw(struct buf *b, const char *raw);

#endif
