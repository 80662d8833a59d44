/* pmd: the permessage-deflate offer (RFC 7692 section 7) read from a
 * Sec-WebSocket-Extensions header (RFC 6455 section 9.1: a list of
 * extensions, each a token with `;`-separated parameters whose values are
 * tokens or quoted strings) and the server's answer to it. Pure layer: bytes
 * in, a decision out; no I/O, no allocation, no zlib.
 *
 * What the server answers: it accepts the first offer it can (every valid
 * one), always with server_no_context_takeover (each message it sends is
 * compressed on its own, so one compressed frame serves every member of a
 * room) and client_no_context_takeover (RFC 7692 section 7.1.1.2 lets a
 * server include it in any response: no inflate window outlives a message),
 * plus server_max_window_bits=N when the offer limited the server's window.
 * It leaves client_max_window_bits out: it inflates with the largest window,
 * so any window the client uses is fine. */
#ifndef WSHUB_PMD_H
#define WSHUB_PMD_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"

#define PMD_BITS_NO_VALUE 1   /* client_max_window_bits given without a value */

/* The parameters of one permessage-deflate offer. */
struct pmd_params {
    uint8_t server_no_context_takeover;   /* 1 when present */
    uint8_t client_no_context_takeover;   /* 1 when present */
    uint8_t server_max_window_bits;       /* 8..15, 0 when absent */
    uint8_t client_max_window_bits;       /* 8..15, PMD_BITS_NO_VALUE, or 0 when absent */
};

enum pmd_verdict {
    PMD_MALFORMED = -1, /* the header breaks RFC 6455's grammar: refuse the upgrade (400) */
    PMD_DECLINE = 0,    /* no acceptable permessage-deflate offer: open without compression */
    PMD_ACCEPT = 1,     /* *offer holds the offer accepted */
};

/* Reads one Sec-WebSocket-Extensions value and picks the first
 * permessage-deflate offer it may accept, declining offers with an unknown
 * parameter, a repeated one, or a bad value (RFC 7692 section 7), and
 * skipping other extensions. The whole value is checked, so a grammar error
 * after an acceptable offer still makes it PMD_MALFORMED. */
enum pmd_verdict pmd_parse(const char *value, size_t len, struct pmd_params *offer);

/* pmd_parse over every Sec-WebSocket-Extensions header of req in order, as
 * if they were one comma-separated list: the first acceptable offer wins,
 * and a malformed header anywhere makes the whole PMD_MALFORMED. */
enum pmd_verdict pmd_negotiate(const struct http_request *req, struct pmd_params *offer);

/* Writes the Sec-WebSocket-Extensions value that accepts offer into out
 * (NUL-terminated). Returns its length, or 0 when size is too small
 * (PMD_RESPONSE_MAX always suffices). */
size_t pmd_response(const struct pmd_params *offer, char *out, size_t size);
#define PMD_RESPONSE_MAX 112

/* The zlib window bits to compress with under offer: its
 * server_max_window_bits, or 15. 8 becomes 9, zlib's smallest raw window:
 * zlib never refers back more than 2^bits - 262 bytes, so a 9-bit window
 * stays within the 256 bytes a client asking for 8 keeps. */
unsigned pmd_server_window_bits(const struct pmd_params *offer);

#endif
