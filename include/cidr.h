/* cidr: IPv4/IPv6 address ranges ("127.0.0.0/8", "::1", "10.1.2.3") and
 * matching a peer address against a list of them. Pure: no I/O, no allocation. */
#ifndef WSHUB_CIDR_H
#define WSHUB_CIDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cidr {
    uint8_t addr[16];   /* IPv4 in the first 4 bytes */
    uint8_t bits;       /* prefix length */
    uint8_t v6;
};

/* Parses "ADDR" or "ADDR/BITS". Returns 0, or -1 when malformed. */
int cidr_parse(const char *s, struct cidr *out);

/* True when the address (AF_INET or AF_INET6; IPv4-mapped IPv6 counts as
 * IPv4) lies in one of the n ranges. */
int cidr_match_any(const struct cidr *list, size_t n, const struct sockaddr *sa);

#endif
