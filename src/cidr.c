/* cidr: address range parsing and matching. Pure: no I/O. */
#include "cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

int cidr_parse(const char *s, struct cidr *out)
{
    char addr[64];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    if (n == 0 || n >= sizeof(addr))
        return -1;
    memcpy(addr, s, n);
    addr[n] = '\0';
    memset(out, 0, sizeof(*out));
    unsigned max;
    if (inet_pton(AF_INET, addr, out->addr) == 1) {
        max = 32;
    } else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
        out->v6 = 1;
        max = 128;
    } else {
        return -1;
    }
    out->bits = (uint8_t)max;
    if (slash) {
        char *end;
        const char *b = slash + 1;
        if (*b < '0' || *b > '9')
            return -1;
        unsigned long bits = strtoul(b, &end, 10);
        if (*end || bits > max)
            return -1;
        out->bits = (uint8_t)bits;
    }
    return 0;
}

static int prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xFFu << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

int cidr_match_any(const struct cidr *list, size_t n, const struct sockaddr *sa)
{
    uint8_t addr[16];
    int v6;
    if (sa->sa_family == AF_INET) {
        memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        v6 = 0;
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            memcpy(addr, a6->s6_addr + 12, 4);
            v6 = 0;
        } else {
            memcpy(addr, a6->s6_addr, 16);
            v6 = 1;
        }
    } else {
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if (list[i].v6 == v6 && prefix_equal(list[i].addr, addr, list[i].bits))
            return 1;
    return 0;
}
