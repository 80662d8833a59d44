/* utf8: incremental UTF-8 validator, a small DFA over byte classes built from
 * Unicode table 3-7. Pure layer: no I/O, no allocation, no state but the caller's. */
#include "utf8.h"

#include <string.h>

/* Byte classes. */
enum {
    C_ASCII,  /* 00..7F */
    C_CONT1,  /* 80..8F */
    C_CONT2,  /* 90..9F */
    C_CONT3,  /* A0..BF */
    C_BAD,    /* C0, C1, F5..FF */
    C_LEAD2,  /* C2..DF */
    C_E0,     /* E0: next A0..BF */
    C_LEAD3,  /* E1..EC, EE, EF */
    C_ED,     /* ED: next 80..9F (no surrogates) */
    C_F0,     /* F0: next 90..BF */
    C_LEAD4,  /* F1..F3 */
    C_F4,     /* F4: next 80..8F */
    NCLASS
};

/* States: 0 accept; 1..3 need that many continuation bytes; 4 after E0; 5 after
 * ED; 6 after F0; 7 after F4; 8 reject. */
enum { S_ACC = 0, S_1 = 1, S_2 = 2, S_3 = 3, S_E0 = 4, S_ED = 5, S_F0 = 6, S_F4 = 7, S_REJ = 8 };

static const uint8_t transitions[9][NCLASS] = {
    /*         ASCII  CONT1  CONT2  CONT3  BAD    LEAD2  E0     LEAD3  ED     F0     LEAD4  F4 */
    [S_ACC] = {S_ACC, S_REJ, S_REJ, S_REJ, S_REJ, S_1,   S_E0,  S_2,   S_ED,  S_F0,  S_3,   S_F4},
    [S_1]   = {S_REJ, S_ACC, S_ACC, S_ACC, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ},
    [S_2]   = {S_REJ, S_1,   S_1,   S_1,   S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ},
    [S_3]   = {S_REJ, S_2,   S_2,   S_2,   S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ},
    [S_E0]  = {S_REJ, S_REJ, S_REJ, S_1,   S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ},
    [S_ED]  = {S_REJ, S_1,   S_1,   S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ},
    [S_F0]  = {S_REJ, S_REJ, S_2,   S_2,   S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ},
    [S_F4]  = {S_REJ, S_2,   S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ},
    [S_REJ] = {S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ},
};

static uint8_t byte_class(uint8_t b)
{
    if (b < 0x80) return C_ASCII;
    if (b < 0x90) return C_CONT1;
    if (b < 0xA0) return C_CONT2;
    if (b < 0xC0) return C_CONT3;
    if (b < 0xC2) return C_BAD;
    if (b < 0xE0) return C_LEAD2;
    if (b == 0xE0) return C_E0;
    if (b == 0xED) return C_ED;
    if (b < 0xF0) return C_LEAD3;
    if (b == 0xF0) return C_F0;
    if (b < 0xF4) return C_LEAD4;
    if (b == 0xF4) return C_F4;
    return C_BAD;
}

uint32_t utf8_validate(uint32_t state, const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (state == S_ACC) {
            /* ASCII fast path: skip 8 bytes at a time while no high bit is set. */
            while (n - i >= 8) {
                uint64_t w;
                memcpy(&w, s + i, 8);
                if (w & 0x8080808080808080ull)
                    break;
                i += 8;
            }
            while (i < n && s[i] < 0x80)
                i++;
            if (i == n)
                break;
        }
        state = transitions[state][byte_class(s[i])];
        if (state == S_REJ)
            return UTF8_REJECT;
        i++;
    }
    return state;
}

int utf8_is_valid(const uint8_t *s, size_t n)
{
    return utf8_validate(UTF8_ACCEPT, s, n) == UTF8_ACCEPT;
}
