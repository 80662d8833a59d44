/* utf8: incremental UTF-8 validator (Unicode table 3-7: no overlongs, no
 * surrogates, nothing above U+10FFFF). Pure layer: no I/O, no allocation.
 * State carries across calls, so a code point may be split anywhere. */
#ifndef WSHUB_UTF8_H
#define WSHUB_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define UTF8_ACCEPT 0u   /* at a code point boundary */
#define UTF8_REJECT 8u   /* an invalid byte was seen; stays rejected */

/* Validates n more bytes starting from *state (UTF8_ACCEPT at the start of a
 * text). Returns the new state: UTF8_ACCEPT at a boundary, UTF8_REJECT on the
 * first invalid byte (fail fast), anything else inside a code point. ASCII runs
 * are checked 8 bytes at a time. */
uint32_t utf8_validate(uint32_t state, const uint8_t *s, size_t n);

/* True when s[0..n) is complete, valid UTF-8. */
int utf8_is_valid(const uint8_t *s, size_t n);

#endif
