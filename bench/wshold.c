/* wshold: the holder of bench/scale.sh. One process, one epoll loop, up to
 * its descriptor limit of chat WebSockets, all from one loopback source
 * address, spread over rooms; it answers pings, and on SIGUSR1 its connection
 * number r (r < --rooms, when it owns it) says "bcast" in room r; every
 * connection then waits for that message of its room. It prints one line per
 * phase on stdout, with CLOCK_MONOTONIC nanoseconds (the same clock in every
 * process, so the script can compare processes):
 *   start T        it began to connect
 *   open N T       every connection got its welcome (T: when the last did)
 *   sent T         the broadcasts left (publisher only)
 *   recv N T       N connections got their room's broadcast, the last at T
 *   fail WHY       a connection failed (exit 1)
 * Must never: allocate or make a system call per connection per event
 * beyond its read and its pong; check more than a holder needs (the upgrade's
 * status line, frame lengths; wsbench does the RFC's checks). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RBUF (256 * 1024)
#define BCAST_TIMEOUT_NS (120 * 1000000000ull)

struct conn {
    int fd;
    uint8_t upgraded, welcomed, got;
    char *pend;                /* an unfinished frame or response head */
    uint32_t plen;
};

static struct conn *conns;
static long n, rooms, offset, opened, welcomed, got, next_open;
static int ep, port, publish;
static long in_flight = 64;    /* handshakes at once */
static struct in_addr src, dst;
static uint64_t last_got_ns, sent_ns;
static uint8_t rbuf[RBUF];

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void fail(const char *why, long i)
{
    printf("fail %s conn=%ld errno=%s\n", why, i, strerror(errno));
    exit(1);
}

static void open_one(long i)
{
    struct conn *c = &conns[i];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    if (fd < 0)
        fail("socket", i);
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr = src};
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        fail("bind", i);
    a = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = dst};
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 && errno != EINPROGRESS)
        fail("connect", i);
    c->fd = fd;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.u64 = (uint64_t)i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        fail("epoll_ctl", i);
    opened++;
}

static void send_all(long i, const void *p, size_t len)
{
    if (send(conns[i].fd, p, len, MSG_NOSIGNAL) != (ssize_t)len)
        fail("send", i);
}

/* A masked client frame (mask key 0: the payload goes as it is). */
static void send_frame(long i, int opcode, const void *p, size_t len)
{
    uint8_t f[2 + 4 + 125];
    f[0] = (uint8_t)(0x80 | opcode);
    f[1] = (uint8_t)(0x80 | len);
    memset(f + 2, 0, 4);
    memcpy(f + 6, p, len);
    send_all(i, f, 6 + len);
}

/* Handles complete frames in p[0..len); returns the bytes used. */
static size_t frames(long i, const uint8_t *p, size_t len)
{
    struct conn *c = &conns[i];
    size_t used = 0;
    while (len - used >= 2) {
        const uint8_t *h = p + used;
        uint64_t plen = h[1] & 0x7f;
        size_t hl = 2;
        if (plen == 126) {
            if (len - used < 4)
                break;
            plen = (uint64_t)h[2] << 8 | h[3];
            hl = 4;
        } else if (plen == 127) {
            if (len - used < 10)
                break;
            plen = 0;
            for (int k = 0; k < 8; k++)
                plen = plen << 8 | h[2 + k];
            hl = 10;
        }
        if (len - used < hl + plen)
            break;
        int op = h[0] & 0x0f;
        const char *body = (const char *)h + hl;
        if (op == 9) {
            send_frame(i, 0xA, body, plen);
        } else if (op == 8) {
            fail("closed by the server", i);
        } else if (op == 1 && !c->welcomed && plen > 16 && memmem(body, plen, "\"welcome\"", 9)) {
            c->welcomed = 1;
            if (++welcomed == n) {
                printf("open %ld %llu\n", n, (unsigned long long)now_ns());
                fflush(stdout);
            }
        } else if (op == 1 && !c->got && memmem(body, plen, "\"text\":\"bcast\"", 14)) {
            c->got = 1;
            got++;
            last_got_ns = now_ns();
        }
        used += hl + plen;
    }
    return used;
}

/* Handles what arrived on connection i (data in p[0..len)). */
static void input(long i, uint8_t *p, size_t len)
{
    struct conn *c = &conns[i];
    if (c->plen) {   /* join the unfinished part */
        char *joined = realloc(c->pend, c->plen + len);
        if (!joined)
            fail("out of memory", i);
        memcpy(joined + c->plen, p, len);
        c->pend = joined;
        p = (uint8_t *)joined;
        len += c->plen;
    }
    size_t used = 0;
    if (!c->upgraded) {
        uint8_t *end = memmem(p, len, "\r\n\r\n", 4);
        if (end) {
            if (len < 12 || memcmp(p, "HTTP/1.1 101", 12) != 0) {
                const uint8_t *eol = memchr(p, '\r', len);
                printf("fail upgrade refused: %.*s", (int)(eol ? eol - p : 0), (const char *)p);
                errno = 0;
                fail("", i);
            }
            c->upgraded = 1;
            used = (size_t)(end + 4 - p);
            if (next_open < n)
                open_one(next_open++);
        }
    }
    if (c->upgraded)
        used += frames(i, p + used, len - used);
    size_t left = len - used;
    if (left && (uint8_t *)c->pend != p) {
        char *keep = malloc(left);
        if (!keep)
            fail("out of memory", i);
        memcpy(keep, p + used, left);
        free(c->pend);
        c->pend = keep;
    } else if (left) {
        memmove(c->pend, p + used, left);
    } else {
        free(c->pend);
        c->pend = NULL;
    }
    c->plen = (uint32_t)left;
}

static void on_event(long i, uint32_t events)
{
    struct conn *c = &conns[i];
    if (events & EPOLLOUT) {
        char req[256];
        int len = snprintf(req, sizeof(req),
                           "GET /ws/r%ld HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                           (offset + i) % rooms);
        send_all(i, req, (size_t)len);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = (uint64_t)i};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    if (events & EPOLLIN) {
        ssize_t r = recv(c->fd, rbuf, sizeof(rbuf), 0);
        if (r > 0)
            input(i, rbuf, (size_t)r);
        else if (r == 0 || (errno != EAGAIN && errno != EINTR))
            fail("connection lost", i);
    } else if (events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
        fail("connection error", i);
    }
}

static void broadcast(void)
{
    sent_ns = now_ns();
    for (long r = 0; r < rooms && r < n; r++)
        send_frame(r, 1, "bcast", 5);
    printf("sent %llu\n", (unsigned long long)sent_ns);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc != 8 && argc != 9) {
        fprintf(stderr, "usage: wshold SRC_ADDR DST_ADDR PORT CONNS ROOMS OFFSET PUBLISH(0|1) [IN_FLIGHT]\n");
        return 2;
    }
    if (argc == 9)
        in_flight = atol(argv[8]);
    if (!inet_aton(argv[1], &src) || !inet_aton(argv[2], &dst))
        return 2;
    port = atoi(argv[3]);
    n = atol(argv[4]);
    rooms = atol(argv[5]);
    offset = atol(argv[6]);
    publish = atoi(argv[7]);
    if (n <= 0 || rooms <= 0 || in_flight <= 0 || (publish && offset % rooms))
        return 2;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    conns = calloc((size_t)n, sizeof(*conns));
    ep = epoll_create1(0);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_NONBLOCK);
    struct epoll_event sev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    if (!conns || ep < 0 || sfd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &sev) < 0)
        return 1;
    printf("start %llu\n", (unsigned long long)now_ns());
    fflush(stdout);
    while (next_open < n && next_open < in_flight)
        open_one(next_open++);
    static struct epoll_event evs[1024];
    int reported = 0;
    for (;;) {
        int k = epoll_wait(ep, evs, 1024, 1000);
        for (int e = 0; e < k; e++) {
            if (evs[e].data.u64 != UINT64_MAX) {
                on_event((long)evs[e].data.u64, evs[e].events);
                continue;
            }
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
                if (si.ssi_signo == SIGTERM)
                    return 0;
                if (publish)
                    broadcast();
                sent_ns = sent_ns ? sent_ns : now_ns();
            }
        }
        if (!reported && (got == n || (sent_ns && now_ns() - sent_ns > BCAST_TIMEOUT_NS))) {
            reported = 1;
            printf("recv %ld %llu\n", got, (unsigned long long)last_got_ns);
            fflush(stdout);
        }
    }
}
