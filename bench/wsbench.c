/* wsbench: the load generator of wshub.
 *
 * Owns: one process, one thread, one edge-triggered epoll loop that drives
 * thousands of non-blocking WebSocket client connections through one
 * workload and prints exactly one RESULT line (key=value pairs) on stdout;
 * progress and diagnostics go to stderr. With --procs N (echo, connect,
 * idle) it forks N such workers that share the connections, start their
 * measured windows together and report to the parent through shared memory;
 * the parent merges counts and latency histograms into the one RESULT line.
 *   echo       C connections keep D binary messages in flight; round trips.
 *   broadcast  C members of one room, the first P publish closed-loop; every
 *              member checks each publisher's seq (gap = lost, less = reordered).
 *   chat       the same with text chat lines (relayed, or in wshub's JSON): the
 *              numbers, then words drawn at random for every line, so that
 *              a line compresses as chat text does (about 2.5:1 alone).
 *   connect    K handshakes and clean closes, C at a time.
 *   idle       C idle WebSockets held; the server's VmRSS per connection.
 *
 * The client side of RFC 6455: a random 16-byte key per connection, the 101
 * and Sec-WebSocket-Accept checked, every frame masked (32 bytes at a time),
 * server frames parsed incrementally (any split, 7/16/64-bit lengths,
 * fragmented messages, pings answered with pongs, the close handshake).
 * --tls speaks wss:// (OpenSSL, the handshake non-blocking in the same loop,
 * the certificate not verified: a benchmark, not a client to trust).
 * --deflate offers permessage-deflate (RFC 7692, zlib) and follows what the
 * server answers: its messages are inflated (a shared stream reset per
 * message when it answered server_no_context_takeover, a stream per
 * connection otherwise), ours are compressed without context takeover (always
 * allowed) within its client_max_window_bits. The bytes received (frames as
 * on the wire, inside TLS) are counted beside the messages.
 * --port2 spreads the connections over two servers (a cluster's two nodes):
 * every other connection goes to the second port, and deliveries from a
 * publisher on the other node get their own latency figures (p50_cross_us).
 *
 * Must never: block (sockets are non-blocking and every wait is bounded: a
 * connection has 10 s to open, a run that receives nothing for 10 s fails),
 * or cost more per message than the server it measures: no allocation and no
 * system call per message in steady state. Reads go into one shared buffer
 * (a connection keeps only an unfinished frame); frames are built into a
 * per-connection output buffer and sent with one send() per connection per
 * loop iteration, just before epoll_wait.
 *
 * What it costs is reported beside what it measured: its own CPU and the
 * server's (from /proc), and, when the two are pinned to different cores,
 * what else those cores did in the window: the softirq work deferred to
 * their ksoftirqd threads (on loopback a send runs the receiving socket's
 * TCP input on the sender's core, mostly inside the sender's own CPU time),
 * and other processes' time and steal, so that a run on a busy machine is
 * marked noisy=yes rather than trusted.
 * client_saturated / server_saturated say whose cores were full.
 *
 * Exit status: 0 when the run completed with lost = reordered = errors = 0
 * and every connection opened, 1 otherwise (reason on stderr), 2 on bad usage.
 * After the RESULT line every open connection gets a close handshake
 * (bounded to 3 s), so the server counts clean closes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <zlib.h>

#define NS_PER_S        1000000000ull
#define STALL_NS        (10 * NS_PER_S)     /* no byte received this long: stalled */
#define OPEN_TIMEOUT_NS (10 * NS_PER_S)     /* connect + handshake (and close) bound */
#define DRAIN_NS        (10 * NS_PER_S)     /* wait for in-flight messages at the end */
#define GOODBYE_NS      (3 * NS_PER_S)      /* close handshakes after the report */
#define RBUF_SIZE       (256 * 1024)        /* bytes per recv() */
#define RBUF_HEAD       (1024 * 1024)       /* room before it for a connection's leftover */
#define KEEP_CAP        (256 * 1024)        /* drained input buffers up to this stay allocated */
#define KEEP_OUT        (4 * 1024 * 1024)   /* the same for output: no malloc/free per send */
#define MAX_HEAD        8192                /* largest handshake answer accepted */
#define MAX_MESSAGE     (64u << 20)         /* largest message accepted from the server */
#define MAX_EVENTS      1024
#define OPEN_WINDOW     256                 /* handshakes in flight while opening */
#define MAX_REPORTS     10                  /* non-fatal errors printed in full */
#define BCAST_HEAD      16                  /* u32 pub, u32 seq, u64 send ns */
#define CHAT_MIN        40
#define ZCACHE_BITS     10                  /* messages inflated without context kept for reuse: */
#define ZCACHE_N        (1u << ZCACHE_BITS) /* as many as are in flight at once, with room (64 missed 18%) */
#define ZCACHE_MAX      (64 * 1024)         /* largest message so kept */

enum { OP_CONT = 0, OP_TEXT = 1, OP_BINARY = 2, OP_CLOSE = 8, OP_PING = 9, OP_PONG = 10 };

static const char WS_GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* ------------------------------------------------------------------ options */

enum workload { W_ECHO, W_BROADCAST, W_CHAT, W_CONNECT, W_IDLE };

static const char *const workload_names[] = { "echo", "broadcast", "chat", "connect", "idle" };

struct opts {
    enum workload w;
    const char *host;
    long port;
    const char *path;
    long n;             /* connections (echo, idle), members, or total handshakes */
    long inflight;      /* echo: messages in flight per connection */
    long size;          /* message size in bytes */
    long publishers;    /* broadcast, chat */
    long concurrency;   /* connect */
    double duration, warmup;
    long server_pid;
    long sources;       /* 0 = automatic */
    long procs;         /* worker processes sharing the connections */
    long port2;         /* 0, or every other connection goes to this port */
    bool tls;           /* wss:// */
    bool welcome;       /* broadcast, chat: a member counts as open at its first text frame */
    const char *deflate;    /* the permessage-deflate offer, or NULL */
};

/* --deflate's offer: what Chromium sends */
static const char DEFLATE_OFFER[] = "permessage-deflate; client_max_window_bits";

static void usage(FILE *f)
{
    fprintf(f,
        "usage: wsbench WORKLOAD [options]\n"
        "workloads: echo, broadcast, chat, connect, idle\n"
        "  --host ADDR        server IPv4 address (127.0.0.1)\n"
        "  --port N           server port (8080)\n"
        "  --path P           request path (/echo; /ws/bench for broadcast and chat; /ws/idle for idle)\n"
        "  --conns C          connections (echo 1000, idle 10000)\n"
        "  --inflight D       echo: messages in flight per connection (1)\n"
        "  --size S           message bytes (echo 1024, broadcast/chat 64)\n"
        "  --members C        broadcast/chat: members of the room (1000)\n"
        "  --publishers P     broadcast/chat: members that publish (10)\n"
        "  --total K          connect: handshakes in all (10000)\n"
        "  --concurrency C    connect: handshakes at a time (100)\n"
        "  --duration S       seconds measured, or held for idle (10; idle 5)\n"
        "  --warmup S         seconds before measuring (2)\n"
        "  --server-pid PID   read the server's CPU time and memory from /proc\n"
        "  --sources N        bind source addresses 127.0.0.1..N round robin\n"
        "  --procs N          echo, connect, idle: N worker processes share the connections (1)\n"
        "  --tls              wss:// (TLS; the server's certificate is not verified)\n"
        "  --deflate          offer permessage-deflate (as Chromium: %s)\n"
        "  --deflate-offer S  offer this Sec-WebSocket-Extensions value instead\n"
        "  --port2 N          every other connection to this port (two nodes of a cluster)\n"
        "  --welcome          broadcast, chat: a member is open once its first text frame (wshub's\n"
        "                     welcome) came: in a cluster a member is in the room from its welcome\n"
        "SIGUSR1 prints a mark on stderr: the messages counted so far, and when.\n", DEFLATE_OFFER);
}

static bool parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0) || v > 86400)
        return false;
    *out = v;
    return true;
}

static void bad_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("wsbench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    usage(stderr);
    exit(2);
}

/* Sets the defaults that depend on the workload, then reads the options. */
static void parse_args(int argc, char **argv, struct opts *o)
{
    if (argc < 2)
        bad_usage("missing workload");
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(stdout);
        exit(0);
    }
    size_t w;
    for (w = 0; w < sizeof workload_names / sizeof *workload_names; w++)
        if (!strcmp(argv[1], workload_names[w]))
            break;
    if (w == sizeof workload_names / sizeof *workload_names)
        bad_usage("unknown workload '%s'", argv[1]);
    *o = (struct opts){ .w = (enum workload)w, .host = "127.0.0.1", .port = 8080,
                        .inflight = 1, .publishers = 10, .concurrency = 100,
                        .duration = 10, .warmup = 2, .procs = 1 };
    static const char *const paths[] = { "/echo", "/ws/bench", "/ws/bench", "/echo", "/ws/idle" };
    static const long counts[] = { 1000, 1000, 1000, 10000, 10000 };
    static const long sizes[] = { 1024, 64, 64, 0, 0 };
    o->path = paths[w];
    o->n = counts[w];
    o->size = sizes[w];
    if (o->w == W_IDLE)
        o->duration = 5;
    if (o->w == W_CONNECT || o->w == W_IDLE)
        o->warmup = 0;

    for (int i = 2; i < argc; i++) {
        const char *name = argv[i], *val;
        if (!strcmp(name, "--tls")) {
            o->tls = true;
            continue;
        }
        if (!strcmp(name, "--deflate")) {
            o->deflate = DEFLATE_OFFER;
            continue;
        }
        if (!strcmp(name, "--welcome")) {
            o->welcome = true;
            continue;
        }
        char *eq = strchr(name, '=');
        char buf[64];
        if (eq && eq - name < (long)sizeof buf) {     /* --opt=value */
            memcpy(buf, name, (size_t)(eq - name));
            buf[eq - name] = 0;
            name = buf;
            val = eq + 1;
        } else {
            if (i + 1 >= argc)
                bad_usage("%s needs a value", name);
            val = argv[++i];
        }
        bool ok = true;
        if (!strcmp(name, "--host"))
            o->host = val;
        else if (!strcmp(name, "--port"))
            ok = parse_long(val, 1, 65535, &o->port);
        else if (!strcmp(name, "--path"))
            o->path = val;
        else if (!strcmp(name, "--conns") || !strcmp(name, "--members") || !strcmp(name, "--total"))
            ok = parse_long(val, 1, 10000000, &o->n);
        else if (!strcmp(name, "--inflight"))
            ok = parse_long(val, 1, 100000, &o->inflight);
        else if (!strcmp(name, "--size"))
            ok = parse_long(val, 0, MAX_MESSAGE, &o->size);
        else if (!strcmp(name, "--publishers"))
            ok = parse_long(val, 1, 1000000, &o->publishers);
        else if (!strcmp(name, "--concurrency"))
            ok = parse_long(val, 1, 1000000, &o->concurrency);
        else if (!strcmp(name, "--duration"))
            ok = parse_seconds(val, &o->duration);
        else if (!strcmp(name, "--warmup"))
            ok = parse_seconds(val, &o->warmup);
        else if (!strcmp(name, "--server-pid"))
            ok = parse_long(val, 0, INT_MAX, &o->server_pid);
        else if (!strcmp(name, "--sources"))
            ok = parse_long(val, 1, 254, &o->sources);
        else if (!strcmp(name, "--procs"))
            ok = parse_long(val, 1, 64, &o->procs);
        else if (!strcmp(name, "--port2"))
            ok = parse_long(val, 1, 65535, &o->port2);
        else if (!strcmp(name, "--deflate-offer"))
            ok = *(o->deflate = val) && !strpbrk(val, "\r\n");
        else
            bad_usage("unknown option '%s'", name);
        if (!ok)
            bad_usage("bad value '%s' for %s", val, name);
    }
    if (o->path[0] != '/' || strpbrk(o->path, " \r\n"))
        bad_usage("--path must start with / and hold no spaces");
    if ((o->w == W_BROADCAST) && o->size < BCAST_HEAD)
        bad_usage("broadcast needs --size >= %d", BCAST_HEAD);
    if ((o->w == W_CHAT) && o->size < CHAT_MIN)
        bad_usage("chat needs --size >= %d", CHAT_MIN);
    if ((o->w == W_BROADCAST || o->w == W_CHAT) && o->publishers > o->n)
        bad_usage("--publishers (%ld) exceeds --members (%ld)", o->publishers, o->n);
    if (o->w == W_CONNECT && o->concurrency > o->n)
        o->concurrency = o->n;
    if ((o->w == W_ECHO || o->w == W_BROADCAST || o->w == W_CHAT) && o->duration <= 0)
        bad_usage("--duration must be above 0");
    /* Broadcast and chat check every member against every publisher's
     * sequence, which one process must see whole. */
    if (o->procs > 1 && (o->w == W_BROADCAST || o->w == W_CHAT))
        bad_usage("--procs above 1 works for echo, connect and idle, not %s", workload_names[o->w]);
    if (o->port2 && o->procs > 1)
        bad_usage("--port2 works with one process (--procs 1)");
    if (o->procs > o->n)
        bad_usage("--procs (%ld) exceeds the connections (%ld)", o->procs, o->n);
    if (o->w == W_CONNECT && o->procs > o->concurrency)
        bad_usage("--procs (%ld) exceeds --concurrency (%ld)", o->procs, o->concurrency);
}

/* ---------------------------------------------------------- small helpers */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: mask keys and handshake keys; quality is plenty for both. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "wsbench: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return q;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "wsbench: out of memory\n");
        exit(1);
    }
    return p;
}

/* Writes v in decimal at p; returns the number of digits. */
static size_t put_u64(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

/* Reads a decimal number ending at a space; advances *p past the space. */
static bool get_u64(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    const uint8_t *s = *p;
    uint64_t v = 0;
    if (s >= end || *s < '0' || *s > '9')
        return false;
    while (s < end && *s >= '0' && *s <= '9' && s - *p < 20)
        v = v * 10 + (uint64_t)(*s++ - '0');
    if (s >= end || *s != ' ')
        return false;
    *p = s + 1;
    *out = v;
    return true;
}

/* ------------------------------------------------------ latency histogram */

/* Log-linear buckets over nanoseconds: exact below 128, then 64 buckets per
 * power of two (1.6 % resolution); the maximum is kept exactly. */
#define HIST_SUB 64
#define HIST_N   (2 * HIST_SUB + 57 * HIST_SUB)

struct hist {
    uint64_t n, max;
    uint64_t bucket[HIST_N];
};

static unsigned hist_index(uint64_t v)
{
    if (v < 2 * HIST_SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);       /* >= 7 */
    unsigned sub = (unsigned)(v >> (e - 6)) - HIST_SUB;
    return HIST_SUB + (e - 6) * HIST_SUB + sub;
}

static uint64_t hist_value(unsigned i)
{
    if (i < 2 * HIST_SUB)
        return i;
    unsigned e = (i - HIST_SUB) / HIST_SUB + 6, sub = (i - HIST_SUB) % HIST_SUB;
    uint64_t lo = (uint64_t)(HIST_SUB + sub) << (e - 6);
    return lo + (1ull << (e - 6)) / 2;                       /* middle of the bucket */
}

static inline void hist_add(struct hist *h, uint64_t v)
{
    h->bucket[hist_index(v)]++;
    h->n++;
    if (v > h->max)
        h->max = v;
}

static uint64_t hist_quantile(const struct hist *h, double q)
{
    if (!h->n)
        return 0;
    uint64_t want = (uint64_t)ceil(q * (double)h->n), seen = 0;
    if (want < 1)
        want = 1;
    for (unsigned i = 0; i < HIST_N; i++) {
        seen += h->bucket[i];
        if (seen >= want) {
            uint64_t v = hist_value(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}

/* ----------------------------------------------------------- byte buffers */

struct bbuf {
    uint8_t *data;
    size_t len, cap;
};

static void bbuf_reserve(struct bbuf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return;
    size_t cap = b->cap ? b->cap * 2 : 512;
    while (cap - b->len < extra)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

static void bbuf_append(struct bbuf *b, const void *p, size_t n)
{
    bbuf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void bbuf_free(struct bbuf *b)
{
    free(b->data);
    *b = (struct bbuf){ 0 };
}

/* ------------------------------------------------- connections and bench */

enum cstate { C_FREE, C_CONNECTING, C_TLS, C_HANDSHAKE, C_OPEN, C_CLOSING };

struct conn {
    int fd;
    uint8_t state;
    uint8_t pending;        /* on the flush list (survives reuse of the slot) */
    uint8_t sent_close, got_close;
    uint8_t frag_op;        /* opcode of the fragmented message being reassembled */
    char key[25];           /* Sec-WebSocket-Key, base64 */
    uint64_t t_start;       /* when connect() was called */
    struct bbuf in;         /* unparsed remainder (a split frame or head) */
    struct bbuf out;        /* bytes not yet sent, from out_off */
    size_t out_off;
    struct bbuf msg;        /* fragments of the message being reassembled */
    uint32_t seq_sent, seq_recv, inflight;   /* echo */
    SSL *ssl;               /* --tls */
    z_stream *inf;          /* inflater of a server that keeps its context */
    uint8_t pmd;            /* permessage-deflate negotiated */
    uint8_t pmd_shared;     /* the server answered server_no_context_takeover */
    uint8_t pmd_bits;       /* our window: the server's client_max_window_bits */
    uint8_t frag_z;         /* the message being reassembled is compressed */
    uint8_t awaiting;       /* --welcome: open, not yet counted (no text frame yet) */
};

struct bench {
    struct opts o;
    int ep;
    struct sockaddr_in dst, dst2;   /* dst2: --port2 */
    uint32_t sources, next_source;
    SSL_CTX *ssl_ctx;               /* --tls */
    z_stream zin;                   /* shared inflater (server_no_context_takeover) */
    z_stream zout[16];              /* shared deflaters, by window bits */
    uint16_t zout_ready;            /* which of zout are initialised */
    bool zin_ready;
    struct bbuf zbuf;               /* an inflated message */
    struct zcache { struct bbuf in, out; } zcache[ZCACHE_N];   /* shared inflater's recent results */
    struct bbuf zsend;              /* a deflated message to send */
    uint64_t rng;
    uint64_t now;                   /* refreshed after each epoll_wait and read */

    struct conn *c;
    uint32_t nslots;
    uint32_t *free_slots, nfree;    /* stack; slot 0 on top at start */
    uint32_t *flush, nflush;        /* connections with output this iteration */
    uint8_t *rbuf;                  /* RBUF_HEAD + RBUF_SIZE */
    struct epoll_event *events;

    /* progress */
    uint64_t started, opening, opened, finished;
    uint64_t last_progress, last_scan;
    bool holding;                   /* idle hold: silence is expected */
    bool measuring, stopping;
    bool goodbye;                   /* closing after the report: nothing counts */

    /* workload state */
    uint8_t *pat;                   /* echo payload pattern, size + 256 bytes */
    uint64_t *ring;                 /* echo: send times, inflight per connection */
    uint8_t *tmpl;                  /* broadcast/chat payload being built */
    uint32_t *pub_seq;              /* last seq sent per publisher */
    uint32_t *last_seq;             /* members x publishers: last seq seen */
    uint64_t outstanding;           /* deliveries still expected */

    /* results */
    uint64_t count, reads, reads_window;
    uint64_t rx_bytes, rx_window;   /* bytes received (frames, inside TLS); in the window */
    uint64_t msg_bytes, msg_window; /* message bytes delivered (inflated) */
    uint64_t pmd_conns;             /* connections that negotiated permessage-deflate */
    struct hist hist_cross;         /* --port2: deliveries from the other node */
    double open_s;                  /* seconds to open every connection */

    /* cores: the server's and ours (sched_getaffinity), for the cost report */
    cpu_set_t srv_set, cli_set;
    int nsrv_cpus, ncli_cpus;
    bool pinned;                    /* both known, and no core in common */

    /* --procs: a worker's pipes to the parent (-1 when alone) */
    int up_fd, down_fd;
    uint64_t go;                    /* when the workload started (every worker alike) */
    struct hist hist;
    uint64_t lost, reordered, errors, reports;
    bool failed;
    char why[512];
};

static void fail(struct bench *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_error(struct bench *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Ends the run: the first reason is the one reported. */
static void fail(struct bench *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->why, sizeof b->why, fmt, ap);
    va_end(ap);
    b->failed = true;
}

/* Counts an error that does not end the run; prints the first few. */
static void note_error(struct bench *b, const char *fmt, ...)
{
    if (b->goodbye)
        return;
    b->errors++;
    if (b->reports++ >= MAX_REPORTS)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("wsbench: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static inline uint32_t conn_id(const struct bench *b, const struct conn *c)
{
    return (uint32_t)(c - b->c);
}

/* Closes the socket and frees what the connection owns; the slot goes back
 * on the free stack (its pending flag stays: the flush list may name it). */
static void conn_finish(struct bench *b, struct conn *c)
{
    if (c->state == C_FREE)
        return;
    if (c->state == C_CONNECTING || c->state == C_TLS || c->state == C_HANDSHAKE)
        b->opening--;
    if (c->ssl)
        SSL_free(c->ssl);
    c->ssl = NULL;
    if (c->inf) {
        inflateEnd(c->inf);
        free(c->inf);
        c->inf = NULL;
    }
    close(c->fd);
    bbuf_free(&c->in);
    bbuf_free(&c->out);
    bbuf_free(&c->msg);
    c->state = C_FREE;
    c->fd = -1;
    b->free_slots[b->nfree++] = conn_id(b, c);
}

/* A connection went wrong: counted, and the run ends with this reason. */
static void conn_fail(struct bench *b, struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void conn_fail(struct bench *b, struct conn *c, const char *fmt, ...)
{
    char msg[400];
    if (b->goodbye) {
        conn_finish(b, c);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    b->errors++;
    fail(b, "connection %u to %s:%ld%s: %s", conn_id(b, c), b->o.host, b->o.port, b->o.path, msg);
    conn_finish(b, c);
}

/* ------------------------------------------------- the byte stream: TCP or TLS */

static char tls_err[200];           /* OpenSSL's reason for the last TLS failure */

/* errno for an SSL call that returned r <= 0: EAGAIN to wait for the socket,
 * 0 for the end of the stream, another errno (EPROTO: tls_err says why). */
static int tls_errno(SSL *ssl, int r)
{
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return EAGAIN;
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0;
    if (e == SSL_ERROR_SYSCALL && errno)
        return errno;
    unsigned long code = ERR_peek_last_error();
    if (code)
        ERR_error_string_n(code, tls_err, sizeof tls_err);
    else
        snprintf(tls_err, sizeof tls_err, "TLS error %d", e);
    return EPROTO;
}

/* Why the last io_recv or io_send failed. */
static const char *io_error(const struct conn *c)
{
    return c->ssl && errno == EPROTO ? tls_err : strerror(errno);
}

/* recv() or SSL_read(): bytes, 0 at the end of the stream, -1 with errno. */
static ssize_t io_recv(struct conn *c, void *buf, size_t len)
{
    if (!c->ssl)
        return recv(c->fd, buf, len, 0);
    ERR_clear_error();
    int n = SSL_read(c->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    if (n > 0)
        return n;
    errno = tls_errno(c->ssl, n);
    return errno ? -1 : 0;
}

/* send() or SSL_write() (partial writes allowed): bytes, or -1 with errno. */
static ssize_t io_send(struct conn *c, const void *buf, size_t len)
{
    if (!c->ssl)
        return send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    ERR_clear_error();
    int n = SSL_write(c->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    if (n > 0)
        return n;
    errno = tls_errno(c->ssl, n);
    if (!errno)
        errno = EPIPE;
    return -1;
}

/* ------------------------------------------------------------ sending */

static inline void mark_pending(struct bench *b, struct conn *c)
{
    if (!c->pending) {
        c->pending = 1;
        b->flush[b->nflush++] = conn_id(b, c);
    }
}

/* dst = src XOR the 4-byte mask: 32 bytes per step (GCC vector extension,
 * SSE2 or AVX as the target allows), then 8, then single bytes. */
typedef uint64_t u64x4 __attribute__((vector_size(32)));

static void mask_copy(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t mask[4])
{
    uint64_t k;
    memcpy(&k, mask, 4);
    memcpy((uint8_t *)&k + 4, mask, 4);
    const u64x4 kv = { k, k, k, k };
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        u64x4 v;
        memcpy(&v, src + i, 32);
        v ^= kv;
        memcpy(dst + i, &v, 32);
    }
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        w ^= k;
        memcpy(dst + i, &w, 8);
    }
    for (; i < n; i++)
        dst[i] = src[i] ^ mask[i & 3];
}

/* A message compressed (RFC 7692: raw deflate, flushed, without the final
 * 00 00 ff ff) into b->zsend, with a fresh context every time (always allowed
 * to the sender) and the window the server allowed us. */
static bool deflate_msg(struct bench *b, struct conn *c, const void *payload, size_t len)
{
    unsigned bits = c->pmd_bits < 9 ? 9 : c->pmd_bits;     /* zlib's raw deflate takes 9..15 */
    z_stream *z = &b->zout[bits];
    if (!(b->zout_ready & 1u << bits)) {
        if (deflateInit2(z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -(int)bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            fail(b, "deflateInit2 failed");
            return false;
        }
        b->zout_ready |= (uint16_t)(1u << bits);
    } else {
        deflateReset(z);
    }
    b->zsend.len = 0;
    bbuf_reserve(&b->zsend, deflateBound(z, len) + 16);
    z->next_in = (Bytef *)payload;
    z->avail_in = (uInt)len;
    z->next_out = b->zsend.data;
    z->avail_out = (uInt)b->zsend.cap;
    if (deflate(z, Z_SYNC_FLUSH) != Z_OK || z->avail_in || b->zsend.cap - z->avail_out < 4) {
        fail(b, "deflate failed");
        return false;
    }
    b->zsend.len = b->zsend.cap - z->avail_out - 4;         /* without 00 00 ff ff */
    return true;
}

/* Appends one masked frame to the connection's output; sent at the flush.
 * Data frames are compressed where permessage-deflate was negotiated. */
static void queue_frame(struct bench *b, struct conn *c, int op, const void *payload, size_t len)
{
    uint8_t rsv = 0;
    if (c->pmd && len && (op == OP_TEXT || op == OP_BINARY)) {
        if (!deflate_msg(b, c, payload, len))
            return;
        payload = b->zsend.data;
        len = b->zsend.len;
        rsv = 0x40;
    }
    bbuf_reserve(&c->out, len + 14);
    uint8_t *p = c->out.data + c->out.len;
    size_t h;
    p[0] = (uint8_t)(0x80 | rsv | op);
    if (len < 126) {
        p[1] = (uint8_t)(0x80 | len);
        h = 2;
    } else if (len <= 0xffff) {
        p[1] = 0x80 | 126;
        p[2] = (uint8_t)(len >> 8);
        p[3] = (uint8_t)len;
        h = 4;
    } else {
        p[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            p[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        h = 10;
    }
    uint32_t key = (uint32_t)rng_next(&b->rng);
    memcpy(p + h, &key, 4);
    mask_copy(p + h + 4, payload, len, p + h);
    c->out.len += h + 4 + len;
    mark_pending(b, c);
}

/* One send() of everything queued (another only when the kernel took part of
 * it); the rest waits for the EPOLLOUT edge (registered from the start: with
 * edge triggering it costs nothing until the send buffer fills up). */
static void flush_conn(struct bench *b, struct conn *c)
{
    if (c->state == C_FREE || c->state == C_CONNECTING || c->state == C_TLS || c->out_off == c->out.len)
        return;
    while (c->out_off < c->out.len) {   /* until done or EAGAIN: epoll is edge-triggered */
        ssize_t n = io_send(c, c->out.data + c->out_off, c->out.len - c->out_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            conn_fail(b, c, "send: %s", io_error(c));
            return;
        }
        if (n <= 0)
            break;
        c->out_off += (size_t)n;
    }
    if (c->out_off == c->out.len) {
        c->out_off = c->out.len = 0;
        if (c->out.cap > KEEP_OUT)
            bbuf_free(&c->out);
    }
}

static void flush_all(struct bench *b)
{
    for (uint32_t i = 0; i < b->nflush; i++) {
        struct conn *c = &b->c[b->flush[i]];
        c->pending = 0;
        flush_conn(b, c);
    }
    b->nflush = 0;
}

/* ------------------------------------------------------------- workloads */

/* echo: payload of message seq is pat[seq % 256 ...], its send time in ring. */
static void echo_send(struct bench *b, struct conn *c)
{
    uint32_t seq = c->seq_sent++;
    b->ring[(size_t)conn_id(b, c) * (size_t)b->o.inflight + seq % (uint32_t)b->o.inflight] = b->now;
    queue_frame(b, c, OP_BINARY, b->pat + (seq & 255), (size_t)b->o.size);
    c->inflight++;
}

static void echo_received(struct bench *b, struct conn *c, int op, const uint8_t *p, size_t n)
{
    if (op != OP_BINARY || !c->inflight) {
        note_error(b, "connection %u: unexpected %s message of %zu bytes", conn_id(b, c),
                   op == OP_TEXT ? "text" : "binary", n);
        return;
    }
    uint32_t seq = c->seq_recv++;
    uint64_t sent = b->ring[(size_t)conn_id(b, c) * (size_t)b->o.inflight + seq % (uint32_t)b->o.inflight];
    c->inflight--;
    if (n != (size_t)b->o.size || memcmp(p, b->pat + (seq & 255), n))
        note_error(b, "connection %u: echo %u differs from what was sent (%zu bytes)", conn_id(b, c), seq, n);
    if (b->measuring) {
        b->count++;
        hist_add(&b->hist, b->now - sent);
    }
    if (!b->stopping)
        echo_send(b, c);
}

/* n bytes of words drawn at random, separated by spaces (the last one cut). */
static void chat_words(struct bench *b, char *s, size_t n)
{
    static const char *const words[64] = {
        "the", "of", "and", "to", "in", "is", "you", "that", "it", "he", "was", "for", "on", "are",
        "as", "with", "his", "they", "at", "be", "this", "have", "from", "or", "one", "had", "by",
        "word", "but", "not", "what", "all", "were", "we", "when", "your", "can", "said", "there",
        "use", "each", "which", "she", "do", "how", "their", "if", "will", "up", "other", "about",
        "out", "many", "then", "them", "these", "so", "some", "her", "would", "make", "like",
        "meeting", "tomorrow",
    };
    uint64_t r = 0;
    for (size_t i = 0, k = 0; i < n; k++) {
        if (!(k % 10))
            r = rng_next(&b->rng);
        const char *w = words[r & 63];
        r >>= 6;
        for (; *w && i < n; w++)
            s[i++] = *w;
        if (i < n)
            s[i++] = ' ';
    }
}

/* broadcast/chat: publisher pub (connection pub) sends its next message. */
static void publish(struct bench *b, uint32_t pub)
{
    struct conn *c = &b->c[pub];
    uint32_t seq = ++b->pub_seq[pub];
    uint64_t t = now_ns();
    size_t size = (size_t)b->o.size;
    b->outstanding += (uint64_t)b->o.n;
    if (b->o.w == W_BROADCAST) {
        memcpy(b->tmpl, &pub, 4);
        memcpy(b->tmpl + 4, &seq, 4);
        memcpy(b->tmpl + 8, &t, 8);           /* host (little-endian) byte order */
        queue_frame(b, c, OP_BINARY, b->tmpl, size);
        return;
    }
    char *s = (char *)b->tmpl;
    size_t k = put_u64(s, pub);
    s[k++] = ' ';
    k += put_u64(s + k, seq);
    s[k++] = ' ';
    k += put_u64(s + k, t);
    s[k++] = ' ';
    if (k > size) {
        fail(b, "chat line prefix (%zu bytes) does not fit --size %zu", k, size);
        return;
    }
    chat_words(b, s + k, size - k);
    queue_frame(b, c, OP_TEXT, b->tmpl, size);
}

/* Member m got message seq of publisher pub, sent at t_send. */
static void delivered(struct bench *b, struct conn *c, uint32_t pub, uint32_t seq, uint64_t t_send)
{
    uint32_t m = conn_id(b, c);
    if (pub >= (uint32_t)b->o.publishers || seq == 0 || seq > b->pub_seq[pub]) {
        note_error(b, "member %u: message from unknown publisher %u seq %u", m, pub, seq);
        return;
    }
    uint32_t *last = &b->last_seq[(size_t)m * (size_t)b->o.publishers + pub];
    if (seq == *last + 1) {
        b->outstanding--;
    } else if (seq > *last + 1) {
        uint32_t gap = seq - *last - 1;
        if (b->lost == 0)
            fprintf(stderr, "wsbench: member %u lost %u message(s) of publisher %u before seq %u\n",
                    m, gap, pub, seq);
        b->lost += gap;
        b->outstanding -= (uint64_t)gap + 1;
    } else {
        if (b->reordered == 0)
            fprintf(stderr, "wsbench: member %u got seq %u of publisher %u after seq %u\n",
                    m, seq, pub, *last);
        b->reordered++;
        return;
    }
    *last = seq;
    if (b->measuring) {
        b->count++;
        hist_add(&b->hist, b->now - t_send);
        if (b->o.port2 && ((m ^ pub) & 1))     /* published on the other node */
            hist_add(&b->hist_cross, b->now - t_send);
    }
    if (m == pub && seq == b->pub_seq[pub] && !b->stopping)
        publish(b, pub);
}

/* --welcome: c's first text frame (its welcome) makes it count as open. */
static void welcomed(struct bench *b, struct conn *c, int op)
{
    if (c->awaiting && op == OP_TEXT) {
        c->awaiting = 0;
        b->opened++;
    }
}

static void broadcast_received(struct bench *b, struct conn *c, int op, const uint8_t *p, size_t n)
{
    welcomed(b, c, op);
    if (op == OP_TEXT)              /* wshub's join/welcome events */
        return;
    if (n != (size_t)b->o.size) {
        note_error(b, "member %u: binary message of %zu bytes, expected %ld", conn_id(b, c), n, b->o.size);
        return;
    }
    uint32_t pub, seq;
    uint64_t t;
    memcpy(&pub, p, 4);
    memcpy(&seq, p + 4, 4);
    memcpy(&t, p + 8, 8);
    delivered(b, c, pub, seq, t);
}

/* The chat line inside a frame: the frame itself, or the "text" of wshub's
 * message event. Returns 0 to ignore the frame, 1 with the line, -1 when the
 * server reported an error event. */
static int chat_line(const uint8_t *p, size_t n, const uint8_t **line, size_t *len)
{
    if (n == 0 || p[0] != '{') {
        *line = p;
        *len = n;
        return 1;
    }
    static const char type_key[] = "\"type\":\"", text_key[] = "\"text\":\"";
    const uint8_t *t = memmem(p, n, type_key, sizeof type_key - 1);
    if (!t)
        return 0;
    t += sizeof type_key - 1;
    size_t rest = n - (size_t)(t - p);
    if (rest >= 6 && !memcmp(t, "error\"", 6))
        return -1;
    if (rest < 8 || memcmp(t, "message\"", 8))
        return 0;
    const uint8_t *s = memmem(p, n, text_key, sizeof text_key - 1);
    if (!s)
        return 0;
    s += sizeof text_key - 1;
    const uint8_t *e = memchr(s, '"', n - (size_t)(s - p));
    if (!e)
        return 0;
    *line = s;
    *len = (size_t)(e - s);
    return 1;
}

static void chat_received(struct bench *b, struct conn *c, int op, const uint8_t *p, size_t n)
{
    welcomed(b, c, op);
    if (op != OP_TEXT)
        return;
    const uint8_t *line;
    size_t len;
    int r = chat_line(p, n, &line, &len);
    if (r < 0) {
        note_error(b, "member %u: server sent an error event: %.*s", conn_id(b, c),
                   (int)(n > 200 ? 200 : n), p);
        fail(b, "the server refused chat lines (an error event; run wshub with --rate-limit 0)");
        return;
    }
    if (r == 0 || len == 0 || line[0] < '0' || line[0] > '9')
        return;                     /* some other event or greeting */
    const uint8_t *q = line, *end = line + len;
    uint64_t pub, seq, t;
    if (len != (size_t)b->o.size || !get_u64(&q, end, &pub) || !get_u64(&q, end, &seq) ||
        !get_u64(&q, end, &t) || pub > UINT32_MAX || seq > UINT32_MAX) {
        note_error(b, "member %u: malformed chat line of %zu bytes: %.*s", conn_id(b, c), len,
                   (int)(len > 60 ? 60 : len), line);
        return;
    }
    delivered(b, c, (uint32_t)pub, (uint32_t)seq, t);
}

static void on_message(struct bench *b, struct conn *c, int op, const uint8_t *p, size_t n)
{
    b->msg_bytes += n;
    switch (b->o.w) {
    case W_ECHO:      echo_received(b, c, op, p, n); break;
    case W_BROADCAST: broadcast_received(b, c, op, p, n); break;
    case W_CHAT:      chat_received(b, c, op, p, n); break;
    case W_CONNECT:
    case W_IDLE:      break;
    }
}

/* The handshake is complete: connect closes at once, the rest wait. */
static void on_open(struct bench *b, struct conn *c)
{
    c->state = C_OPEN;
    b->opening--;
    if (b->o.welcome && (b->o.w == W_BROADCAST || b->o.w == W_CHAT)) {
        c->awaiting = 1;            /* counted at its welcome (see welcomed) */
        return;
    }
    b->opened++;
    if (b->o.w == W_CONNECT || b->o.w == W_IDLE) {
        b->count++;
        hist_add(&b->hist, b->now - c->t_start);
    }
    if (b->o.w == W_CONNECT) {
        static const uint8_t normal[2] = { 1000 >> 8, 1000 & 255 };
        queue_frame(b, c, OP_CLOSE, normal, 2);
        c->sent_close = 1;
        c->state = C_CLOSING;
        c->t_start = b->now;        /* the close has 10 s too */
    }
}

/* ------------------------------------------------------------- receiving */

static void on_close_frame(struct bench *b, struct conn *c, const uint8_t *p, size_t n)
{
    unsigned code = n >= 2 ? (unsigned)p[0] << 8 | p[1] : 1005;
    c->got_close = 1;
    if (!c->sent_close) {
        queue_frame(b, c, OP_CLOSE, p, n >= 2 ? 2 : 0);
        c->sent_close = 1;
        c->state = C_CLOSING;
        conn_fail(b, c, "the server closed the WebSocket with code %u%s%.*s", code,
                  n > 2 ? ": " : "", n > 2 ? (int)(n - 2) : 0, (const char *)p + 2);
        return;
    }
    if (code != 1000)
        note_error(b, "connection %u: the server answered our close 1000 with %u", conn_id(b, c), code);
    c->state = C_CLOSING;
}

/* Inflates n bytes of a compressed message into b->zbuf (RFC 7692: with
 * 00 00 ff ff appended); false (the connection failed) on bad data or a
 * message over MAX_MESSAGE. */
static bool inflate_feed(struct bench *b, struct conn *c, z_stream *z, const uint8_t *p, size_t n)
{
    z->next_in = (Bytef *)p;
    z->avail_in = (uInt)n;
    for (;;) {
        bbuf_reserve(&b->zbuf, 16384);
        z->next_out = b->zbuf.data + b->zbuf.len;
        z->avail_out = (uInt)(b->zbuf.cap - b->zbuf.len);
        int r = inflate(z, Z_SYNC_FLUSH);
        b->zbuf.len = b->zbuf.cap - z->avail_out;
        if (r == Z_STREAM_END)      /* a final block: the next bytes start afresh */
            r = inflateReset(z);
        if (r != Z_OK && r != Z_BUF_ERROR) {
            conn_fail(b, c, "invalid compressed data (%s)", z->msg ? z->msg : "zlib");
            return false;
        }
        if (b->zbuf.len > MAX_MESSAGE) {
            conn_fail(b, c, "compressed message inflates over %u bytes", MAX_MESSAGE);
            return false;
        }
        if (!z->avail_in && z->avail_out)
            return true;
        if (r == Z_BUF_ERROR && z->avail_out)
            return true;
    }
}

/* The message compressed in p[0..n) inflated: *out, *outlen (valid until the next call). */
static bool inflate_msg(struct bench *b, struct conn *c, const uint8_t *p, size_t n,
                        const uint8_t **out, size_t *outlen)
{
    static const uint8_t tail[4] = { 0, 0, 0xff, 0xff };
    z_stream *z = c->inf;
    /* Without context takeover the same bytes inflate to the same message:
     * a broadcast compressed once reaches every member alike, and is inflated
     * once here too (the generator must stay cheaper than the server); a
     * small cache, as the messages of several publishers interleave. */
    struct zcache *e = NULL;
    if (c->pmd_shared && n >= 8 && n <= ZCACHE_MAX) {
        uint64_t h1, h2;
        memcpy(&h1, p, 8);
        memcpy(&h2, p + n - 8, 8);
        e = &b->zcache[((h1 ^ h2 * 0x9e3779b97f4a7c15ull) * 0x9e3779b97f4a7c15ull + n) >> (64 - ZCACHE_BITS)];
        if (e->in.len == n && !memcmp(e->in.data, p, n)) {
            *out = e->out.data;
            *outlen = e->out.len;
            return true;
        }
    }
    if (c->pmd_shared) {
        z = &b->zin;
        if (!b->zin_ready && inflateInit2(z, -15) == Z_OK)
            b->zin_ready = true;
        else if (b->zin_ready)
            inflateReset(z);
        else
            z = NULL;
    } else if (!z) {
        z = c->inf = xcalloc(1, sizeof *z);
        if (inflateInit2(z, -15) != Z_OK) {
            free(z);
            z = c->inf = NULL;
        }
    }
    if (!z) {
        conn_fail(b, c, "inflateInit2 failed");
        return false;
    }
    b->zbuf.len = 0;
    if (!inflate_feed(b, c, z, p, n) || !inflate_feed(b, c, z, tail, sizeof tail))
        return false;
    *out = b->zbuf.data;
    *outlen = b->zbuf.len;
    if (e && b->zbuf.len <= ZCACHE_MAX) {
        e->in.len = e->out.len = 0;
        bbuf_append(&e->in, p, n);
        bbuf_append(&e->out, b->zbuf.data, b->zbuf.len);
    }
    return true;
}

/* A complete message: inflated first when it came compressed. */
static void deliver(struct bench *b, struct conn *c, bool z, int op, const uint8_t *p, size_t n)
{
    if (z && !inflate_msg(b, c, p, n, &p, &n))
        return;
    on_message(b, c, op, p, n);
}

static void on_frame(struct bench *b, struct conn *c, bool fin, bool z, int op, const uint8_t *p, size_t n)
{
    if (op >= 8) {
        if (!fin || n > 125)
            conn_fail(b, c, "malformed control frame (opcode %d, %zu bytes)", op, n);
        else if (op == OP_PING && !c->sent_close)
            queue_frame(b, c, OP_PONG, p, n);
        else if (op == OP_CLOSE)
            on_close_frame(b, c, p, n);
        else if (op != OP_PING && op != OP_PONG)
            conn_fail(b, c, "reserved opcode %d", op);
        return;
    }
    if (c->got_close) {
        conn_fail(b, c, "data frame after the close frame");
        return;
    }
    if (op == OP_CONT) {
        if (!c->frag_op) {
            conn_fail(b, c, "continuation frame without a message");
            return;
        }
        if (c->msg.len + n > MAX_MESSAGE) {
            conn_fail(b, c, "message over %u bytes", MAX_MESSAGE);
            return;
        }
        bbuf_append(&c->msg, p, n);
        if (fin) {
            int mop = c->frag_op;
            c->frag_op = 0;
            deliver(b, c, c->frag_z, mop, c->msg.data, c->msg.len);
            if (c->state != C_FREE) {
                c->msg.len = 0;
                if (c->msg.cap > KEEP_CAP)
                    bbuf_free(&c->msg);
            }
        }
        return;
    }
    if (op != OP_TEXT && op != OP_BINARY) {
        conn_fail(b, c, "reserved opcode %d", op);
        return;
    }
    if (c->frag_op) {
        conn_fail(b, c, "new message inside a fragmented one");
        return;
    }
    if (fin) {
        deliver(b, c, z, op, p, n);
    } else {
        c->frag_op = (uint8_t)op;
        c->frag_z = z;
        bbuf_append(&c->msg, p, n);
    }
}

/* Parses every complete frame in p; returns the bytes consumed. */
static size_t parse_frames(struct bench *b, struct conn *c, const uint8_t *p, size_t len)
{
    size_t off = 0;
    while (len - off >= 2 && c->state != C_FREE) {
        const uint8_t *f = p + off;
        size_t avail = len - off, hdr = 2;
        uint64_t plen = f[1] & 0x7f;
        if (plen == 126) {
            if (avail < 4)
                break;
            plen = (uint64_t)f[2] << 8 | f[3];
            hdr = 4;
        } else if (plen == 127) {
            if (avail < 10)
                break;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = plen << 8 | f[2 + i];
            hdr = 10;
        }
        int op = f[0] & 0x0f;
        bool z = f[0] & 0x40;
        if ((f[0] & 0x30) || (z && (!c->pmd || op == OP_CONT || op >= 8))) {
            conn_fail(b, c, "frame with RSV bits set (opcode %d%s)", op,
                      c->pmd ? "" : ", permessage-deflate not negotiated");
            break;
        }
        if (f[1] & 0x80) {
            conn_fail(b, c, "masked frame from the server");
            break;
        }
        if (plen > MAX_MESSAGE) {
            conn_fail(b, c, "frame of %" PRIu64 " bytes", plen);
            break;
        }
        if (avail - hdr < plen)
            break;
        off += hdr + (size_t)plen;
        on_frame(b, c, f[0] & 0x80, z, op, f + hdr, (size_t)plen);
    }
    return off;
}

/* "Sec-WebSocket-Accept" for the connection's key. */
static void accept_for(const char *key, char out[29])
{
    char in[64];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int n = snprintf(in, sizeof in, "%s%s", key, WS_GUID);
    EVP_Digest(in, (size_t)n, md, &mdlen, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
}

/* The value of header name (lower case, with the colon) in the head s[0..n),
 * trimmed; NULL when absent. */
static const char *header_value(const char *s, size_t n, const char *name, size_t *len)
{
    size_t k = strlen(name);
    const char *line = memchr(s, '\r', n);
    for (line = line ? line + 2 : s + n; line < s + n - 2;) {
        const char *e = memchr(line, '\r', (size_t)(s + n - line));
        if (!e)
            break;
        if ((size_t)(e - line) >= k && !strncasecmp(line, name, k)) {
            const char *v = line + k;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            *len = (size_t)(e - v);
            return v;
        }
        line = e + 2;
    }
    return NULL;
}

/* The server's Sec-WebSocket-Extensions answer: permessage-deflate with its
 * parameters, nothing else, and only when we offered it. */
static bool check_extensions(struct bench *b, struct conn *c, const char *v, size_t n)
{
    char buf[256], *save = NULL;
    if (!b->o.deflate || n >= sizeof buf) {
        conn_fail(b, c, "the server answered extensions '%.*s' that were not offered", (int)n, v);
        return false;
    }
    memcpy(buf, v, n);
    buf[n] = 0;
    c->pmd_bits = 15;
    bool ok = true;
    int i = 0;
    for (char *t = strtok_r(buf, ";", &save); t && ok; t = strtok_r(NULL, ";", &save), i++) {
        while (*t == ' ' || *t == '\t')
            t++;
        char *e = t + strlen(t);
        while (e > t && (e[-1] == ' ' || e[-1] == '\t'))
            *--e = 0;
        char *val = strchr(t, '=');
        if (val) {
            *val++ = 0;
            size_t vl = strlen(val);
            if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
                val[vl - 1] = 0;
                val++;
            }
        }
        long bits;
        if (i == 0)
            ok = !strcasecmp(t, "permessage-deflate") && !val;
        else if (!strcasecmp(t, "server_no_context_takeover") || !strcasecmp(t, "client_no_context_takeover"))
            ok = !val;
        else if (!strcasecmp(t, "server_max_window_bits") || !strcasecmp(t, "client_max_window_bits"))
            ok = val && parse_long(val, 8, 15, &bits);
        else
            ok = false;
        if (ok && i > 0 && !strcasecmp(t, "server_no_context_takeover"))
            c->pmd_shared = 1;
        if (ok && i > 0 && !strcasecmp(t, "client_max_window_bits"))
            c->pmd_bits = (uint8_t)bits;
    }
    if (!ok || i == 0) {
        conn_fail(b, c, "cannot follow the server's extensions answer '%.*s'", (int)n, v);
        return false;
    }
    c->pmd = 1;
    b->pmd_conns++;
    return true;
}

/* Checks the server's answer head (ending in CRLFCRLF). */
static bool check_upgrade(struct bench *b, struct conn *c, const uint8_t *p, size_t n)
{
    const char *s = (const char *)p, *eol = memchr(s, '\r', n);
    if (n < 12 || memcmp(s, "HTTP/1.1 101", 12)) {
        conn_fail(b, c, "the server answered '%.*s' instead of 101", (int)(eol - s), s);
        return false;
    }
    char want[29];
    accept_for(c->key, want);
    size_t len;
    const char *v = header_value(s, n, "sec-websocket-accept:", &len);
    if (!v) {
        conn_fail(b, c, "101 answer without Sec-WebSocket-Accept");
        return false;
    }
    if (len != 28 || memcmp(v, want, 28)) {
        conn_fail(b, c, "wrong Sec-WebSocket-Accept '%.*s' (expected %s)", (int)len, v, want);
        return false;
    }
    v = header_value(s, n, "sec-websocket-extensions:", &len);
    return !v || check_extensions(b, c, v, len);
}

/* Consumes the handshake answer, then frames; returns the bytes consumed. */
static size_t conn_input(struct bench *b, struct conn *c, const uint8_t *p, size_t len)
{
    size_t off = 0;
    if (c->state == C_HANDSHAKE) {
        const uint8_t *end = memmem(p, len, "\r\n\r\n", 4);
        if (!end) {
            if (len > MAX_HEAD)
                conn_fail(b, c, "handshake answer over %d bytes", MAX_HEAD);
            return 0;
        }
        off = (size_t)(end - p) + 4;
        if (!check_upgrade(b, c, p, off))
            return off;
        on_open(b, c);
    }
    return off + parse_frames(b, c, p + off, len - off);
}

/* The server closed TCP: clean after the close handshake, an error before. */
static void conn_eof(struct bench *b, struct conn *c)
{
    if (c->got_close) {
        b->finished++;
        conn_finish(b, c);
    } else if (c->state == C_HANDSHAKE) {
        conn_fail(b, c, "the server closed the connection during the handshake");
    } else {
        conn_fail(b, c, "the server closed TCP without a close frame");
    }
}

/* One read (at most RBUF_SIZE bytes) and everything it completes: 1 when the
 * read filled the buffer, so more may be waiting (epoll is edge-triggered),
 * 0 after a short read, -1 on EAGAIN, EOF or error (TLS: 1 after any read).
 * A small leftover is copied in front of the shared buffer; a big one (a
 * large frame still arriving) is read into in place. */
static int conn_read_once(struct bench *b, struct conn *c)
{
    size_t have = c->in.len;
    uint8_t *base;
    ssize_t n;
    if (have <= RBUF_HEAD) {
        base = b->rbuf + RBUF_HEAD - have;
        if (have)
            memcpy(base, c->in.data, have);
        do
            n = io_recv(c, b->rbuf + RBUF_HEAD, RBUF_SIZE);
        while (n < 0 && errno == EINTR);
    } else {
        bbuf_reserve(&c->in, RBUF_SIZE);
        base = c->in.data;
        do
            n = io_recv(c, c->in.data + have, RBUF_SIZE);
        while (n < 0 && errno == EINTR);
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            conn_fail(b, c, "recv: %s", io_error(c));
        return -1;
    }
    if (n == 0) {
        conn_eof(b, c);
        return -1;
    }
    b->reads++;
    b->rx_bytes += (uint64_t)n;
    b->now = now_ns();
    b->last_progress = b->now;
    size_t total = have + (size_t)n;
    size_t used = conn_input(b, c, base, total);
    if (c->state == C_FREE)
        return -1;
    size_t keep = total - used;
    if (base == c->in.data) {
        memmove(c->in.data, c->in.data + used, keep);
        c->in.len = keep;
    } else {
        c->in.len = 0;
        if (keep)
            bbuf_append(&c->in, base + used, keep);
    }
    if (!c->in.len && c->in.cap > KEEP_CAP)
        bbuf_free(&c->in);
    return n == RBUF_SIZE || c->ssl;    /* TLS: a read is one record; on to WANT_READ */
}

/* Reads while reads fill the buffer; until EAGAIN or EOF when the peer has
 * closed or is closing (a FIN queued behind the data brings no new edge). */
static void conn_readable(struct bench *b, struct conn *c, uint32_t ev)
{
    bool to_end = ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR);
    for (;;) {
        int r = conn_read_once(b, c);
        if (r < 0 || c->state == C_FREE || b->failed)
            return;
        if (r == 0 && !to_end && !c->got_close)
            return;
    }
}

/* ------------------------------------------------------------ connecting */

static void make_key(struct bench *b, char out[25])
{
    uint64_t raw[2] = { rng_next(&b->rng), rng_next(&b->rng) };
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)raw, 16);
}

/* Starts one non-blocking connect in a free slot. */
static void conn_start(struct bench *b)
{
    uint32_t id = b->free_slots[--b->nfree];
    struct conn *c = &b->c[id];
    uint8_t pending = c->pending;
    memset(c, 0, sizeof *c);
    c->pending = pending;
    c->fd = -1;
    c->t_start = now_ns();
    b->started++;
    b->opening++;
    c->state = C_CONNECTING;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        b->free_slots[b->nfree++] = id;
        c->state = C_FREE;
        b->opening--;
        b->errors++;
        fail(b, "socket: %s (%" PRIu64 " connections started)", strerror(errno), b->started);
        return;
    }
    c->fd = fd;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (b->sources > 1) {
        struct sockaddr_in src = { .sin_family = AF_INET,
                                   .sin_addr.s_addr = htonl(0x7f000001u + b->next_source++ % b->sources) };
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
            conn_fail(b, c, "bind to %s: %s", inet_ntoa(src.sin_addr), strerror(errno));
            return;
        }
    }
    const struct sockaddr_in *dst = b->o.port2 && (id & 1) ? &b->dst2 : &b->dst;   /* --port2: odd ids */
    if (connect(fd, (const struct sockaddr *)dst, sizeof *dst) < 0 && errno != EINPROGRESS) {
        conn_fail(b, c, "connect: %s", strerror(errno));
        return;
    }
    struct epoll_event e = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u32 = id };
    if (epoll_ctl(b->ep, EPOLL_CTL_ADD, fd, &e) < 0)
        conn_fail(b, c, "epoll_ctl: %s", strerror(errno));
}

/* The byte stream is up (TCP, or TLS over it): send the upgrade request. */
static void send_upgrade(struct bench *b, struct conn *c)
{
    make_key(b, c->key);
    char req[1024], ext[300] = "";
    if (b->o.deflate)
        snprintf(ext, sizeof ext, "Sec-WebSocket-Extensions: %s\r\n", b->o.deflate);
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%ld\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
                     b->o.path, b->o.host, b->o.port, c->key, ext);
    if (n < 0 || (size_t)n >= sizeof req) {
        conn_fail(b, c, "request too long");
        return;
    }
    c->state = C_HANDSHAKE;
    bbuf_append(&c->out, req, (size_t)n);
    flush_conn(b, c);
}

/* One step of the TLS handshake; the upgrade request once it is done. */
static void tls_step(struct bench *b, struct conn *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        send_upgrade(b, c);
        return;
    }
    errno = tls_errno(c->ssl, r);
    if (errno != EAGAIN)
        conn_fail(b, c, "TLS handshake: %s", errno ? io_error(c) : "the server closed the connection");
}

/* TCP is up (or failed): TLS first with --tls, then the upgrade request. */
static void conn_connected(struct bench *b, struct conn *c, uint32_t ev)
{
    int err = 0;
    socklen_t len = sizeof err;
    if ((ev & (EPOLLERR | EPOLLHUP)) && getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if ((ev & (EPOLLERR | EPOLLHUP)) && !err)
        err = ECONNRESET;
    if (err) {
        conn_fail(b, c, "connect: %s", strerror(err));
        return;
    }
    if (!b->ssl_ctx) {
        send_upgrade(b, c);
        return;
    }
    c->ssl = SSL_new(b->ssl_ctx);
    if (!c->ssl || !SSL_set_fd(c->ssl, c->fd)) {
        conn_fail(b, c, "SSL_new failed");
        return;
    }
    SSL_set_connect_state(c->ssl);
    c->state = C_TLS;
    tls_step(b, c);
}

static void on_event(struct bench *b, uint32_t id, uint32_t ev)
{
    struct conn *c = &b->c[id];
    if (c->state == C_FREE)
        return;
    if (c->state == C_CONNECTING) {
        conn_connected(b, c, ev);
        return;
    }
    if (c->state == C_TLS) {
        tls_step(b, c);
        return;
    }
    if (ev & EPOLLOUT || c->ssl)        /* TLS may want a read before it can write */
        flush_conn(b, c);
    if (c->state != C_FREE && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)))
        conn_readable(b, c, ev);
}

/* ------------------------------------------------------------- the loop */

/* Once a second: connections that did not open (or close) within 10 s. */
static void check_deadlines(struct bench *b)
{
    if (b->now - b->last_scan < NS_PER_S)
        return;
    b->last_scan = b->now;
    for (uint32_t i = 0; i < b->nslots && !b->failed; i++) {
        struct conn *c = &b->c[i];
        if (c->state == C_FREE || c->state == C_OPEN || b->now - c->t_start < OPEN_TIMEOUT_NS)
            continue;
        if (c->state == C_CONNECTING)
            conn_fail(b, c, "TCP connect not completed within 10 s");
        else if (c->state == C_TLS)
            conn_fail(b, c, "TLS handshake not completed within 10 s");
        else if (c->state == C_HANDSHAKE)
            conn_fail(b, c, "no handshake answer within 10 s");
        else if (b->o.w == W_CONNECT)
            conn_fail(b, c, "close handshake not completed within 10 s");
    }
    if (!b->failed && !b->holding && b->now - b->last_progress > STALL_NS)
        fail(b, "stalled: nothing received for 10 s (%" PRIu64 " of %ld connections open%s)",
             b->opened - b->finished, b->o.n, b->stopping ? ", waiting for the last messages" : "");
}

/* Starts connections while there are slots and the handshake window allows. */
static void open_more(struct bench *b)
{
    uint64_t window = b->o.w == W_CONNECT ? (uint64_t)b->o.concurrency : OPEN_WINDOW;
    while (!b->failed && b->nfree && b->started < (uint64_t)b->o.n && b->opening < window)
        conn_start(b);
}

/* SIGUSR1 asks for a mark: the messages counted so far, and when, on
 * stderr, so that a profiler watching the server for a while (bench/profile.sh)
 * knows how many messages its window saw. */
static volatile sig_atomic_t marks_wanted;
static unsigned marks_done;

static void on_sigusr1(int sig)
{
    (void)sig;
    marks_wanted++;
}

/* One iteration: flush what was queued, wait, handle what came. */
static void step(struct bench *b, int timeout_ms)
{
    flush_all(b);
    int n = epoll_wait(b->ep, b->events, MAX_EVENTS, timeout_ms);
    b->now = now_ns();
    while (marks_done != (unsigned)marks_wanted)
        fprintf(stderr, "wsbench: mark %u count=%" PRIu64 " t_ns=%" PRIu64 " measuring=%d\n", ++marks_done,
                b->count, b->now, b->measuring);
    if (n < 0 && errno != EINTR)
        fail(b, "epoll_wait: %s", strerror(errno));
    for (int i = 0; i < n && !b->failed; i++)
        on_event(b, b->events[i].data.u32, b->events[i].events);
    check_deadlines(b);
}

/* Runs the loop until done(b), the deadline (0: none) or a failure. */
static void run_until(struct bench *b, bool (*done)(struct bench *), uint64_t deadline)
{
    b->now = now_ns();
    while (!b->failed && !(done && done(b)) && !(deadline && b->now >= deadline)) {
        open_more(b);
        int t = 100;
        if (deadline) {
            uint64_t left_ms = (deadline - b->now) / 1000000 + 1;
            if (left_ms < (uint64_t)t)
                t = (int)left_ms;
        }
        step(b, t);
    }
    flush_all(b);
}

static bool all_open(struct bench *b) { return b->opened >= (uint64_t)b->o.n; }
static bool all_finished(struct bench *b) { return b->finished >= (uint64_t)b->o.n; }
static bool echo_drained(struct bench *b)
{
    for (uint32_t i = 0; i < b->nslots; i++)
        if (b->c[i].inflight)
            return false;
    return true;
}
static bool bcast_drained(struct bench *b) { return b->outstanding == 0; }

/* ----------------------------------------------------- server and client */

static double self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* utime + stime of the server in seconds; -1 when it cannot be read. */
static double server_cpu(long pid)
{
    if (!pid)
        return 0;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* VmRSS of the server in kB; -1 when it cannot be read. */
static long server_rss_kb(long pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/* Sums of /proc/stat's fields over a set of cores, in clock ticks, and the
 * time of the cores' ksoftirqd threads. A process's own CPU time includes
 * the softirq work the kernel did in its context (on loopback, a send runs
 * the receiving socket's TCP input there), which /proc/stat counts as
 * softirq: so what a process cost its core is its own time plus the work
 * deferred to ksoftirqd, and the rest of the core's busy time is others'. */
struct coresnap {
    uint64_t busy;      /* user + nice + system + irq + softirq + steal */
    uint64_t sirq;      /* irq + softirq, in any context */
    uint64_t steal;     /* taken by the hypervisor */
    uint64_t kthr;      /* the cores' ksoftirqd threads */
};

/* utime + stime of a process in clock ticks; 0 when it cannot be read. */
static uint64_t pid_ticks(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return ut + st;
}

#define MAX_KSOFTIRQD 64
static long ksoftirqd_pid[CPU_SETSIZE < 1024 ? CPU_SETSIZE : 1024];

/* Finds the ksoftirqd/N threads of the cores in set (kernel threads: children of pid 2). */
static void find_ksoftirqd(const cpu_set_t *set)
{
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d)) && found < MAX_KSOFTIRQD) {
        char path[300], comm[64];
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        unsigned cpu;
        if (fgets(comm, sizeof comm, f) && sscanf(comm, "ksoftirqd/%u", &cpu) == 1 &&
            cpu < sizeof ksoftirqd_pid / sizeof *ksoftirqd_pid && CPU_ISSET(cpu, set)) {
            ksoftirqd_pid[cpu] = strtol(e->d_name, NULL, 10);
            found++;
        }
        fclose(f);
    }
    closedir(d);
}

static void read_cores(const cpu_set_t *set, struct coresnap *out)
{
    *out = (struct coresnap){ 0 };
    for (unsigned cpu = 0; cpu < sizeof ksoftirqd_pid / sizeof *ksoftirqd_pid; cpu++)
        if (ksoftirqd_pid[cpu] && CPU_ISSET(cpu, set))
            out->kthr += pid_ticks(ksoftirqd_pid[cpu]);
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        unsigned cpu;
        unsigned long long v[8] = { 0 };
        if (strncmp(line, "cpu", 3) || line[3] < '0' || line[3] > '9')
            continue;
        if (sscanf(line + 3, "%u %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6], &v[7]) < 8 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, set))
            continue;
        out->busy += v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
        out->sirq += v[5] + v[6];
        out->steal += v[7];
    }
    fclose(f);
}

/* Which cores the server and this process may run on; pinned when they
 * are disjoint, so that what else ran on them can be told apart. */
static void learn_cores(struct bench *b)
{
    CPU_ZERO(&b->cli_set);
    CPU_ZERO(&b->srv_set);
    if (sched_getaffinity(0, sizeof b->cli_set, &b->cli_set) == 0)
        b->ncli_cpus = CPU_COUNT(&b->cli_set);
    if (b->o.server_pid && sched_getaffinity((pid_t)b->o.server_pid, sizeof b->srv_set, &b->srv_set) == 0)
        b->nsrv_cpus = CPU_COUNT(&b->srv_set);
    cpu_set_t both;
    CPU_AND(&both, &b->cli_set, &b->srv_set);
    b->pinned = b->ncli_cpus > 0 && b->nsrv_cpus > 0 && CPU_COUNT(&both) == 0;
    if (b->pinned) {
        CPU_OR(&both, &b->cli_set, &b->srv_set);
        find_ksoftirqd(&both);
    }
}

/* The measured window: what it cost the client and the server, and what
 * else their cores did meanwhile. */
struct window {
    uint64_t t0, t1;
    double cpu0, cpu1, srv0, srv1;
    struct coresnap sc0, sc1, cc0, cc1;     /* server's and client's cores */
};

/* The server's CPU and both sets of cores: by a lone wsbench at its window's
 * edges, by the parent of --procs workers at the common window's edges. */
static void snap_system(struct bench *b, bool end, struct window *w)
{
    double *srv = end ? &w->srv1 : &w->srv0;
    *srv = server_cpu(b->o.server_pid);
    if (b->pinned) {
        read_cores(&b->srv_set, end ? &w->sc1 : &w->sc0);
        read_cores(&b->cli_set, end ? &w->cc1 : &w->cc0);
    }
}

static void window_open(struct bench *b, struct window *w, bool reset)
{
    if (reset) {
        b->count = 0;
        memset(&b->hist, 0, sizeof b->hist);
        memset(&b->hist_cross, 0, sizeof b->hist_cross);
    }
    b->rx_window = b->rx_bytes;
    b->msg_window = b->msg_bytes;
    w->t0 = now_ns();
    w->cpu0 = self_cpu();
    b->reads_window = b->reads;
    if (b->up_fd >= 0)
        return;                     /* the parent watches the server */
    snap_system(b, false, w);
    if (w->srv0 < 0)
        fail(b, "cannot read /proc/%ld/stat (is --server-pid right?)", b->o.server_pid);
}

static void window_close(struct bench *b, struct window *w)
{
    w->t1 = now_ns();
    w->cpu1 = self_cpu();
    b->reads_window = b->reads - b->reads_window;
    b->rx_window = b->rx_bytes - b->rx_window;
    b->msg_window = b->msg_bytes - b->msg_window;
    if (b->up_fd >= 0) {
        if (write(b->up_fd, "w", 1) < 0)    /* tell the parent the window is over */
            fail(b, "pipe to the parent: %s", strerror(errno));
        return;
    }
    snap_system(b, true, w);
    if (w->srv1 < 0) {
        fail(b, "the server (pid %ld) is gone", b->o.server_pid);
        w->srv1 = w->srv0;
    }
}

/* ------------------------------------------------------------- workloads */

static void open_all(struct bench *b)
{
    bool alone = b->up_fd < 0;
    if (alone)
        fprintf(stderr, "wsbench: opening %ld connections to %s:%ld%s (%u source address%s)\n",
                b->o.n, b->o.host, b->o.port, b->o.path, b->sources, b->sources > 1 ? "es" : "");
    uint64_t t0 = now_ns();
    double cpu0 = self_cpu(), srv0 = server_cpu(b->o.server_pid);
    b->last_progress = t0;
    run_until(b, all_open, 0);
    b->open_s = (double)(now_ns() - t0) / 1e9;
    if (!b->failed && alone)
        fprintf(stderr, "wsbench: %ld connections open in %.2f s (cpu: client %.2f s, server %.2f s)\n",
                b->o.n, (double)(now_ns() - t0) / 1e9, self_cpu() - cpu0,
                server_cpu(b->o.server_pid) - srv0);
}

/* Every connection is open: a lone wsbench goes on at once; a --procs worker
 * tells the parent (what: 'r' ready, 'h' done holding) and waits for the
 * parent's go, the time every worker's workload starts from, so that their
 * measured windows coincide. False when the parent is gone. */
static bool barrier(struct bench *b, char what)
{
    if (b->up_fd < 0) {
        b->go = now_ns();
        return true;
    }
    if (write(b->up_fd, &what, 1) != 1)
        return false;
    uint64_t go;
    ssize_t n;
    do
        n = read(b->down_fd, &go, sizeof go);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof go) {
        fail(b, "the parent process is gone");
        return false;
    }
    b->go = go;
    b->now = now_ns();
    b->last_progress = b->now;
    return true;
}

/* Warm up until go + warmup, measure for --duration (to a deadline shared
 * by every worker), stop sending and wait for what is in flight. */
static void measure(struct bench *b, struct window *w, bool (*drained)(struct bench *))
{
    b->last_progress = now_ns();
    uint64_t start = b->go + (uint64_t)(b->o.warmup * 1e9);
    if (b->o.warmup > 0) {
        if (b->up_fd < 0)
            fprintf(stderr, "wsbench: warming up for %.1f s\n", b->o.warmup);
        run_until(b, NULL, start);
    }
    if (b->failed)
        return;
    if (b->up_fd < 0)
        fprintf(stderr, "wsbench: measuring for %.1f s\n", b->o.duration);
    window_open(b, w, true);
    b->measuring = true;
    run_until(b, NULL, (w->t0 > start ? w->t0 : start) + (uint64_t)(b->o.duration * 1e9));
    b->measuring = false;
    window_close(b, w);
    if (b->failed)
        return;
    b->stopping = true;
    run_until(b, drained, now_ns() + DRAIN_NS);
}

static void run_echo(struct bench *b, struct window *w)
{
    open_all(b);
    if (b->failed || !barrier(b, 'r'))
        return;
    b->now = now_ns();
    for (uint32_t i = 0; i < b->nslots; i++)
        for (long k = 0; k < b->o.inflight; k++)
            echo_send(b, &b->c[i]);
    measure(b, w, echo_drained);
    if (!b->failed && !echo_drained(b)) {
        uint64_t missing = 0;
        for (uint32_t i = 0; i < b->nslots; i++)
            missing += b->c[i].inflight;
        b->lost += missing;
        fail(b, "%" PRIu64 " messages never came back", missing);
    }
}

static void run_broadcast(struct bench *b, struct window *w)
{
    open_all(b);
    if (b->failed || !barrier(b, 'r'))
        return;
    for (uint32_t p = 0; p < (uint32_t)b->o.publishers; p++)
        publish(b, p);
    measure(b, w, bcast_drained);
    if (!b->failed && b->outstanding) {
        uint64_t missing = 0;
        for (uint64_t m = 0; m < (uint64_t)b->o.n; m++)
            for (uint32_t p = 0; p < (uint32_t)b->o.publishers; p++)
                missing += b->pub_seq[p] - b->last_seq[m * (uint64_t)b->o.publishers + p];
        b->lost += missing;
        fail(b, "%" PRIu64 " deliveries never arrived", missing);
    }
}

static void run_connect(struct bench *b, struct window *w)
{
    if (b->up_fd < 0)
        fprintf(stderr, "wsbench: %ld handshakes to %s:%ld%s, %ld at a time\n",
                b->o.n, b->o.host, b->o.port, b->o.path, b->o.concurrency);
    if (!barrier(b, 'r'))
        return;
    window_open(b, w, true);
    b->last_progress = w->t0;
    run_until(b, all_finished, 0);
    window_close(b, w);
}

static void run_idle(struct bench *b, struct window *w, long *rss0, long *rss1)
{
    if (b->o.server_pid && (*rss0 = server_rss_kb(b->o.server_pid)) < 0) {
        fail(b, "cannot read /proc/%ld/status (is --server-pid right?)", b->o.server_pid);
        return;
    }
    open_all(b);
    if (b->failed || !barrier(b, 'r'))
        return;
    if (b->up_fd < 0)
        fprintf(stderr, "wsbench: holding %ld idle connections for %.1f s\n", b->o.n, b->o.duration);
    window_open(b, w, false);    /* count: the handshakes */
    b->holding = true;
    run_until(b, NULL, b->go + (uint64_t)(b->o.duration * 1e9));
    window_close(b, w);
    if (b->up_fd >= 0)           /* hold on while the parent reads the server's memory */
        barrier(b, 'h');
    if (b->o.server_pid && !b->failed && (*rss1 = server_rss_kb(b->o.server_pid)) < 0)
        fail(b, "the server (pid %ld) is gone", b->o.server_pid);
}

static bool all_closed(struct bench *b) { return b->nfree == b->nslots; }

/* After the report: a close handshake on every open connection, so the
 * server sees clean closes; bounded, and nothing in it changes the result. */
static void goodbye(struct bench *b)
{
    static const uint8_t normal[2] = { 1000 >> 8, 1000 & 255 };
    b->goodbye = b->stopping = b->holding = true;
    b->failed = false;
    b->now = now_ns();
    for (uint32_t i = 0; i < b->nslots; i++) {
        struct conn *c = &b->c[i];
        if (c->state == C_CONNECTING || c->state == C_TLS || c->state == C_HANDSHAKE) {
            conn_finish(b, c);
        } else if (c->state == C_OPEN) {
            queue_frame(b, c, OP_CLOSE, normal, 2);
            c->sent_close = 1;
            c->state = C_CLOSING;
        }
    }
    b->o.n = 0;                     /* open no more */
    run_until(b, all_closed, now_ns() + GOODBYE_NS);
}

/* ------------------------------------------------------------------ setup */

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Connections per source address before another is used: a bit under half
 * the ephemeral port range. Linux's connect() tries even ports first; once
 * they are taken every connect() walks the whole range (opening 19000
 * connections from one address costs ~8 s of kernel CPU instead of 0.6 s). */
static long per_source(void)
{
    long lo = 32768, hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &lo, &hi) != 2 || hi < lo)
            lo = 32768, hi = 60999;
        fclose(f);
    }
    long n = (hi - lo + 1) * 45 / 100;
    return n < 1000 ? 1000 : n;
}

/* Source addresses for o->n connections to dst: more than one on loopback
 * when one address would run short of ephemeral ports. */
static uint32_t auto_sources(const struct opts *o, struct in_addr dst)
{
    if ((ntohl(dst.s_addr) >> 24) != 127)
        return 1;
    long per = per_source();
    return (uint32_t)((o->n + per - 1) / per);
}

/* --tls: a client context that trusts any certificate (the benchmark's
 * self-signed one) and offers ALPN http/1.1; it drops its buffers while a
 * connection is idle only where connections are idle (idle, connect), so
 * that the busy workloads do not pay an allocation per read. */
static SSL_CTX *tls_client_ctx(enum workload w)
{
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              (w == W_IDLE || w == W_CONNECT ? SSL_MODE_RELEASE_BUFFERS : 0));
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
    return ctx;
}

/* Allocates everything the run needs up front; false (with a reason) if it cannot. */
static bool bench_init(struct bench *b)
{
    struct opts *o = &b->o;
    b->dst.sin_family = AF_INET;
    b->dst.sin_port = htons((uint16_t)o->port);
    if (inet_pton(AF_INET, o->host, &b->dst.sin_addr) != 1) {
        fail(b, "--host %s is not a numeric IPv4 address", o->host);
        return false;
    }
    b->dst2 = b->dst;
    b->dst2.sin_port = htons((uint16_t)o->port2);
    if (o->tls && !(b->ssl_ctx = tls_client_ctx(o->w))) {
        fail(b, "cannot set up TLS: %s", ERR_reason_error_string(ERR_get_error()));
        return false;
    }
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, 0) != sizeof seed)
        seed = now_ns() ^ (uint64_t)getpid() << 32;
    b->rng = seed | 1;

    b->nslots = (uint32_t)(o->w == W_CONNECT ? o->concurrency : o->n);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if ((uint64_t)b->nslots + 16 > (uint64_t)rl.rlim_cur) {
        fail(b, "%u connections need more descriptors than the open-file limit (%llu)", b->nslots,
             (unsigned long long)rl.rlim_cur);
        return false;
    }
    b->sources = (uint32_t)o->sources;
    if (!b->sources)
        b->sources = auto_sources(o, b->dst.sin_addr);

    b->ep = epoll_create1(EPOLL_CLOEXEC);
    if (b->ep < 0) {
        fail(b, "epoll_create1: %s", strerror(errno));
        return false;
    }
    b->c = xcalloc(b->nslots, sizeof *b->c);
    b->free_slots = xcalloc(b->nslots, sizeof *b->free_slots);
    b->flush = xcalloc(b->nslots, sizeof *b->flush);
    for (uint32_t i = 0; i < b->nslots; i++) {
        b->c[i].fd = -1;
        b->free_slots[b->nfree++] = b->nslots - 1 - i;
    }
    b->rbuf = xcalloc(1, RBUF_HEAD + RBUF_SIZE);
    b->events = xcalloc(MAX_EVENTS, sizeof *b->events);
    if (o->w == W_ECHO) {
        b->pat = xcalloc(1, (size_t)o->size + 256);
        for (size_t i = 0; i < (size_t)o->size + 256; i++)
            b->pat[i] = (uint8_t)(i * 7 + (i >> 8));
        b->ring = xcalloc((size_t)b->nslots * (size_t)o->inflight, sizeof *b->ring);
    }
    if (o->w == W_BROADCAST || o->w == W_CHAT) {
        b->tmpl = xcalloc(1, (size_t)o->size + 64);    /* + room for a too-long chat prefix */
        b->pub_seq = xcalloc((size_t)o->publishers, sizeof *b->pub_seq);
        b->last_seq = xcalloc((size_t)o->n * (size_t)o->publishers, sizeof *b->last_seq);
    }
    return true;
}

/* ----------------------------------------------------------------- report */

static void report(struct bench *b, const struct window *w, long rss0, long rss1)
{
    const struct opts *o = &b->o;
    double secs = w->t1 > w->t0 ? (double)(w->t1 - w->t0) / 1e9 : 0;
    double ccpu = w->cpu1 - w->cpu0, scpu = w->srv1 - w->srv0;
    printf("RESULT workload=%s", workload_names[o->w]);
    if (o->w == W_BROADCAST || o->w == W_CHAT)
        printf(" members=%ld conns=%ld publishers=%ld", o->n, o->n, o->publishers);
    else
        printf(" conns=%ld", o->n);
    if (o->w == W_ECHO)
        printf(" inflight=%ld", o->inflight);
    if (o->w == W_CONNECT)
        printf(" concurrency=%ld", o->concurrency);
    /* idle: the rate is of opening (connections per second until all were open) */
    double per_s = o->w == W_IDLE ? b->open_s : secs;
    printf(" size=%ld duration=%.3f count=%" PRIu64 " rate=%.1f", o->size, secs, b->count,
           per_s > 0 ? (double)b->count / per_s : 0.0);
    printf(" p50_us=%.1f p99_us=%.1f max_us=%.1f", (double)hist_quantile(&b->hist, 0.50) / 1e3,
           (double)hist_quantile(&b->hist, 0.99) / 1e3, (double)b->hist.max / 1e3);
    printf(" lost=%" PRIu64 " reordered=%" PRIu64 " errors=%" PRIu64, b->lost, b->reordered, b->errors);

    /* Who was the limit. Pinned to disjoint cores, a side is saturated when
     * its cores were busy (with anything) 90% of the window; otherwise when
     * its process used 90% of one core per process. A side's own cost: its
     * processes' time plus its cores' ksoftirqd; noise: the rest of its
     * cores' busy time (other processes, steal). */
    long procs = o->procs > 0 ? o->procs : 1;
    bool csat, ssat, noisy = false, have_cores = b->pinned && secs >= 0.1;
    double tick = 1.0 / (double)sysconf(_SC_CLK_TCK);
    double s_own = scpu, c_own = ccpu, s_sirq = 0, c_sirq = 0, s_noise = 0, c_noise = 0;
    if (have_cores) {
        s_own += (double)(w->sc1.kthr - w->sc0.kthr) * tick;
        c_own += (double)(w->cc1.kthr - w->cc0.kthr) * tick;
        double s_busy = (double)(w->sc1.busy - w->sc0.busy) * tick, c_busy = (double)(w->cc1.busy - w->cc0.busy) * tick;
        s_sirq = (double)(w->sc1.sirq - w->sc0.sirq) * tick;
        c_sirq = (double)(w->cc1.sirq - w->cc0.sirq) * tick;
        s_noise = fmax(0, s_busy - s_own);
        c_noise = fmax(0, c_busy - c_own);
        double s_cap = secs * b->nsrv_cpus, c_cap = secs * b->ncli_cpus;
        ssat = fmax(s_busy, s_own) >= 0.9 * s_cap;
        csat = fmax(c_busy, c_own) >= 0.9 * c_cap;
        noisy = s_noise >= 0.05 * s_cap || c_noise >= 0.05 * c_cap;
    } else {
        long ccores = b->ncli_cpus > 0 && b->ncli_cpus < procs ? b->ncli_cpus : procs;
        ssat = secs >= 0.1 && scpu >= 0.9 * secs;
        csat = secs >= 0.1 && ccpu >= 0.9 * secs * (double)ccores;
    }
    bool bound = secs >= 0.1 && csat && !ssat;
    printf(" client_cpu_s=%.3f server_cpu_s=%.3f client_bound=%s", ccpu, scpu, bound ? "yes" : "no");
    printf(" procs=%ld client_saturated=%s server_saturated=%s", procs, csat ? "yes" : "no", ssat ? "yes" : "no");
    if (secs > 0)
        printf(" client_cpu_pct=%.0f server_cpu_pct=%.0f", 100 * ccpu / secs, 100 * scpu / secs);
    if (have_cores)
        printf(" client_core_pct=%.0f server_core_pct=%.0f client_sirq_pct=%.0f server_sirq_pct=%.0f"
               " client_noise_pct=%.0f server_noise_pct=%.0f noisy=%s",
               100 * c_own / secs, 100 * s_own / secs, 100 * c_sirq / secs, 100 * s_sirq / secs,
               100 * c_noise / secs, 100 * s_noise / secs, noisy ? "yes" : "no");
    else
        printf(" noisy=unknown");
    if (b->count && o->w != W_IDLE) {
        printf(" client_ns_per_msg=%.0f server_ns_per_msg=%.0f", ccpu * 1e9 / (double)b->count,
               scpu * 1e9 / (double)b->count);
        /* with the work deferred to their cores' ksoftirqd */
        if (have_cores)
            printf(" client_core_ns_per_msg=%.0f server_core_ns_per_msg=%.0f",
                   c_own * 1e9 / (double)b->count, s_own * 1e9 / (double)b->count);
    }
    if (o->w == W_IDLE) {
        long per = rss1 >= 0 && rss0 >= 0 ? (rss1 - rss0) * 1024 / o->n : 0;
        printf(" rss_per_conn=%ld rss_before_kb=%ld rss_after_kb=%ld", per, rss0 < 0 ? 0 : rss0,
               rss1 < 0 ? 0 : rss1);
    }
    printf(" tls=%s deflate=%" PRIu64, o->tls ? "yes" : "no", b->pmd_conns);
    if (o->w != W_IDLE && o->w != W_CONNECT && b->count)
        printf(" rx_bytes=%" PRIu64 " rx_bytes_per_msg=%.1f msg_bytes_per_msg=%.1f", b->rx_window,
               (double)b->rx_window / (double)b->count, (double)b->msg_window / (double)b->count);
    if (o->port2)
        printf(" cross=%" PRIu64 " p50_cross_us=%.1f p99_cross_us=%.1f", b->hist_cross.n,
               (double)hist_quantile(&b->hist_cross, 0.50) / 1e3, (double)hist_quantile(&b->hist_cross, 0.99) / 1e3);
    printf(" open_s=%.3f opened=%" PRIu64 " sources=%u\n", b->open_s,
           o->w == W_CONNECT ? b->finished : b->opened, b->sources);
    fflush(stdout);
}

/* Runs the workload in this process; returns with the window closed. */
static void run_workload(struct bench *b, struct window *w, long *rss0, long *rss1)
{
    if (bench_init(b)) {
        switch (b->o.w) {
        case W_ECHO:      run_echo(b, w); break;
        case W_BROADCAST:
        case W_CHAT:      run_broadcast(b, w); break;
        case W_CONNECT:   run_connect(b, w); break;
        case W_IDLE:      run_idle(b, w, rss0, rss1); break;
        }
    }
    if (w->t1 == 0 && w->t0 != 0)
        window_close(b, w);
}

/* The end-of-run checks that make a run fail. */
static void final_checks(struct bench *b)
{
    uint64_t done = b->o.w == W_CONNECT ? b->finished : b->opened;
    if (!b->failed && done < (uint64_t)b->o.n)
        fail(b, "only %" PRIu64 " of %ld connections opened", done, b->o.n);
    if (!b->failed && (b->lost || b->reordered || b->errors))
        fail(b, "lost=%" PRIu64 " reordered=%" PRIu64 " errors=%" PRIu64, b->lost, b->reordered, b->errors);
}

/* ------------------------------------------------------------ --procs */

/* What a worker hands its parent, in memory shared across the fork. */
struct wres {
    bool ran, failed;
    char why[512];
    uint64_t count, lost, reordered, errors, reads, reads_window, opened, finished;
    uint64_t rx_window, msg_window, pmd_conns;
    uint64_t t0, t1;
    double cpu, open_s;
    struct hist hist;
};

static int worker(struct bench *b, long i, struct wres *res, int up, int down)
{
    struct opts *o = &b->o;
    long k = o->procs;
    o->n = o->n / k + (i < o->n % k);
    o->concurrency = o->concurrency / k + (i < o->concurrency % k);
    o->server_pid = 0;              /* the parent watches the server */
    b->up_fd = up;
    b->down_fd = down;
    b->next_source = (uint32_t)i;   /* workers begin on different source addresses */
    struct window w = { 0 };
    long rss0 = -1, rss1 = -1;
    run_workload(b, &w, &rss0, &rss1);
    final_checks(b);
    res->ran = true;
    res->failed = b->failed;
    memcpy(res->why, b->why, sizeof res->why);
    res->count = b->count;
    res->lost = b->lost;
    res->reordered = b->reordered;
    res->errors = b->errors;
    res->reads = b->reads;
    res->reads_window = b->reads_window;
    res->rx_window = b->rx_window;
    res->msg_window = b->msg_window;
    res->pmd_conns = b->pmd_conns;
    res->opened = b->opened;
    res->finished = b->finished;
    res->t0 = w.t0;
    res->t1 = w.t1;
    res->cpu = w.cpu1 - w.cpu0;
    res->open_s = b->open_s;
    res->hist = b->hist;
    close(up);                      /* the parent stops waiting for this one */
    goodbye(b);
    return b->failed ? 1 : 0;
}

/* Reads one byte from each worker still there: the signal it sends at a
 * step. A worker that exited instead (it failed) is left out from then on. */
static void await_workers(const int *up, bool *alive, long n, char want)
{
    for (long i = 0; i < n; i++) {
        if (!alive[i])
            continue;
        char c = 0;
        ssize_t r;
        do
            r = read(up[i], &c, 1);
        while (r < 0 && errno == EINTR);
        if (r != 1 || c != want)
            alive[i] = false;
    }
}

static void release_workers(const int *down, const bool *alive, long n, uint64_t go)
{
    for (long i = 0; i < n; i++)
        if (alive[i] && write(down[i], &go, sizeof go) != (ssize_t)sizeof go)
            continue;               /* it is gone; its result says why */
}

static void sleep_until(uint64_t t)
{
    struct timespec ts = { .tv_sec = (time_t)(t / NS_PER_S), .tv_nsec = (long)(t % NS_PER_S) };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* N workers share the connections; this process times the common window,
 * watches the server, merges the results and prints the one RESULT line. */
static int run_procs(struct bench *b)
{
    struct opts *o = &b->o;
    long n = o->procs;
    if (inet_pton(AF_INET, o->host, &b->dst.sin_addr) != 1) {
        fprintf(stderr, "wsbench: FAILED: --host %s is not a numeric IPv4 address\n", o->host);
        return 1;
    }
    if (!o->sources)
        o->sources = auto_sources(o, b->dst.sin_addr);
    b->sources = (uint32_t)o->sources;
    struct wres *res = mmap(NULL, (size_t)n * sizeof *res, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (res == MAP_FAILED) {
        fprintf(stderr, "wsbench: FAILED: mmap: %s\n", strerror(errno));
        return 1;
    }
    memset(res, 0, (size_t)n * sizeof *res);
    int up[64], down[64];
    pid_t pid[64];
    bool alive[64];
    long rss0 = -1, rss1 = -1;
    if (o->w == W_IDLE && o->server_pid && (rss0 = server_rss_kb(o->server_pid)) < 0) {
        fprintf(stderr, "wsbench: FAILED: cannot read /proc/%ld/status (is --server-pid right?)\n", o->server_pid);
        return 1;
    }
    fprintf(stderr, "wsbench: %ld worker processes share %ld connections to %s:%ld%s\n", n, o->n, o->host,
            o->port, o->path);
    fflush(stdout);
    fflush(stderr);
    for (long i = 0; i < n; i++) {
        int u[2], d[2];
        if (pipe2(u, O_CLOEXEC) < 0 || pipe2(d, O_CLOEXEC) < 0) {
            fprintf(stderr, "wsbench: FAILED: pipe: %s\n", strerror(errno));
            return 1;
        }
        pid[i] = fork();
        if (pid[i] < 0) {
            fprintf(stderr, "wsbench: FAILED: fork: %s\n", strerror(errno));
            return 1;
        }
        if (pid[i] == 0) {
            close(u[0]);
            close(d[1]);
            for (long j = 0; j < i; j++) {
                close(up[j]);
                close(down[j]);
            }
            _exit(worker(b, i, &res[i], u[1], d[0]));
        }
        close(u[1]);
        close(d[0]);
        up[i] = u[0];
        down[i] = d[1];
        alive[i] = true;
    }

    learn_cores(b);
    struct window w = { 0 };
    await_workers(up, alive, n, 'r');              /* every connection open */
    /* The window's start: now, before the workers are released (runnable, this
     * process could otherwise lose its core to them for the whole run), or
     * after the warm-up, asleep until then (a sleeper is woken promptly). */
    uint64_t go = now_ns();
    if (o->warmup <= 0)
        snap_system(b, false, &w);
    release_workers(down, alive, n, go);
    bool any = false;
    for (long i = 0; i < n; i++)
        any |= alive[i];
    if (o->warmup > 0 && any) {
        sleep_until(go + (uint64_t)(o->warmup * 1e9));
        snap_system(b, false, &w);
    }
    await_workers(up, alive, n, 'w');              /* every window closed */
    snap_system(b, true, &w);
    if (o->w == W_IDLE) {
        await_workers(up, alive, n, 'h');
        if (o->server_pid)
            rss1 = server_rss_kb(o->server_pid);
        release_workers(down, alive, n, go);
    }
    int code = 0;
    for (long i = 0; i < n; i++) {
        int st;
        while (waitpid(pid[i], &st, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            code = 1;
        close(up[i]);
        close(down[i]);
    }

    /* merge into b, as if one process had done it all */
    w.t0 = UINT64_MAX;
    for (long i = 0; i < n; i++) {
        struct wres *r = &res[i];
        if (!r->ran) {
            fail(b, "worker %ld ended without a result", i);
            continue;
        }
        if (r->failed)
            fail(b, "worker %ld: %s", i, r->why);
        b->count += r->count;
        b->lost += r->lost;
        b->reordered += r->reordered;
        b->errors += r->errors;
        b->reads += r->reads;
        b->reads_window += r->reads_window;
        b->rx_window += r->rx_window;
        b->msg_window += r->msg_window;
        b->pmd_conns += r->pmd_conns;
        b->opened += r->opened;
        b->finished += r->finished;
        b->open_s = fmax(b->open_s, r->open_s);
        w.cpu1 += r->cpu;
        if (r->t0 && r->t0 < w.t0)
            w.t0 = r->t0;
        if (r->t1 > w.t1)
            w.t1 = r->t1;
        for (unsigned j = 0; j < HIST_N; j++)
            b->hist.bucket[j] += r->hist.bucket[j];
        b->hist.n += r->hist.n;
        if (r->hist.max > b->hist.max)
            b->hist.max = r->hist.max;
    }
    if (w.t0 == UINT64_MAX)
        w.t0 = w.t1 = 0;
    if (w.srv1 < 0 || w.srv0 < 0)
        fail(b, "cannot read the server's CPU time (pid %ld)", o->server_pid);
    report(b, &w, rss0, rss1);
    final_checks(b);
    if (b->failed || code) {
        fprintf(stderr, "wsbench: FAILED: %s\n", b->failed ? b->why : "a worker failed");
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct bench bench;      /* large (histogram); one per process */
    struct bench *b = &bench;
    parse_args(argc, argv, &b->o);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = { .sa_handler = on_sigusr1 };    /* no SA_RESTART: epoll_wait returns */
    sigaction(SIGUSR1, &sa, NULL);
    raise_nofile();
    b->up_fd = b->down_fd = -1;
    /* libcrypto loads its configuration on first use: do it now, not on the
     * first handshake inside a measured window (and once, before any fork) */
    char dummy[29];
    accept_for("dGhlIHNhbXBsZSBub25jZQ==", dummy);
    if (b->o.procs > 1)
        return run_procs(b);

    learn_cores(b);
    struct window w = { 0 };
    long rss0 = -1, rss1 = -1;
    run_workload(b, &w, &rss0, &rss1);
    report(b, &w, rss0, rss1);
    if (b->reads_window && (b->o.w == W_ECHO || b->o.w == W_BROADCAST || b->o.w == W_CHAT))
        fprintf(stderr, "wsbench: %" PRIu64 " reads in all, %.1f messages counted per read in the window\n",
                b->reads, b->count && b->reads_window ? (double)b->count / (double)b->reads_window : 0.0);
    final_checks(b);
    bool failed = b->failed;
    char why[sizeof b->why];
    memcpy(why, b->why, sizeof why);
    goodbye(b);
    if (failed) {
        fprintf(stderr, "wsbench: FAILED: %s\n", why);
        return 1;
    }
    return 0;
}
