/* test_redis_link: tests of src/redis_link.c against real redis-server
 * processes (Debian's package), one per test on a free loopback port with a
 * temporary directory, no persistence and a unix socket. Covers: connect,
 * SELECT and heartbeats; 1,000 pipelined commands answered in order; the
 * in-flight bound and the commands that are refused; SIGKILL of the server
 * (down once, every command in flight answered NULL after the down, refused
 * while down, up once after the restart); SIGSTOP (reply and heartbeat
 * timeouts); connect refused and connect timeout; pub/sub with channels,
 * patterns, binary payloads and re-subscription after a restart; EVALSHA
 * after SCRIPT FLUSH; AUTH right and wrong (and the user form); unix socket
 * and IPv6 URLs; freeing with commands in flight and from a callback;
 * pausing reads; and the 16 KiB bound on what one wake-up reads.
 *
 * Every server is killed in the teardown, or by the kernel when its test
 * process dies (PR_SET_PDEATHSIG: a failing test skips its teardown); its
 * files live under one directory that main removes after the run. Every
 * wait is bounded. */
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"
#include "redis_link.h"
#include "redis_url.h"

#define EXPECT(cond, ...) do { if (!(cond)) ck_abort_msg(__VA_ARGS__); } while (0)

#define PASSWORD "s3cret pass"
#define MAX_KEPT 64

/* ---- the redis-server under test ---- */

struct server {
    pid_t pid;
    int port;
    char dir[96];
    char sock[128];
    const char *password;   /* requirepass, or NULL */
};

static struct server srv;
static char base_dir[64];   /* made by main, removed by main */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A loopback port nobody listens on right now. */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void exec_redis(pid_t parent)
{
    char port[16], log[128];
    snprintf(port, sizeof port, "%d", srv.port);
    snprintf(log, sizeof log, "%s/redis.log", srv.dir);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    const char *argv[32] = {"redis-server", "--port", port, "--bind", "127.0.0.1", "-::1",
                            "--save", "", "--appendonly", "no", "--dir", srv.dir,
                            "--logfile", log, "--unixsocket", srv.sock, "--unixsocketperm", "700",
                            "--daemonize", "no"};
    int argc = 20;
    if (srv.password) {
        argv[argc++] = "--requirepass";
        argv[argc++] = srv.password;
    }
    argv[argc] = NULL;
    execvp("redis-server", (char *const *)argv);
    _exit(127);
}

/* True once the server answers anything on its unix socket. */
static int server_answers(void)
{
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectUnixWithTimeout(srv.sock, tv);
    int ok = 0;
    if (c && !c->err) {
        redisReply *r = redisCommand(c, "PING");
        ok = r != NULL;
        if (r)
            freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    return ok;
}

/* Starts redis-server on srv.port (a free one the first time) and waits up
 * to 5 s for it to answer. */
static void server_start(void)
{
    if (!srv.dir[0]) {
        snprintf(srv.dir, sizeof srv.dir, "%s/%d", base_dir, (int)getpid());
        ck_assert_int_eq(mkdir(srv.dir, 0700), 0);
        snprintf(srv.sock, sizeof srv.sock, "%s/redis.sock", srv.dir);
        srv.port = free_port();
    }
    pid_t parent = getpid();
    srv.pid = fork();
    ck_assert_int_ge(srv.pid, 0);
    if (srv.pid == 0)
        exec_redis(parent);
    for (uint64_t end = mono_ms() + 5000; mono_ms() < end; usleep(20000))
        if (server_answers())
            return;
    ck_abort_msg("redis-server did not start on port %d (see %s/redis.log)", srv.port, srv.dir);
}

static void server_signal(int sig)
{
    ck_assert_int_gt(srv.pid, 0);
    ck_assert_int_eq(kill(srv.pid, sig), 0);
}

static void server_kill(void)
{
    if (srv.pid <= 0)
        return;
    kill(srv.pid, SIGKILL);
    waitpid(srv.pid, NULL, 0);
    srv.pid = 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void remove_tree(const char *dir)
{
    nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* ---- the loop and what the links say ---- */

struct kept_message {
    enum redis_link_event event;
    char channel[64];
    char pattern[64];
    char payload[256];
    size_t payload_len;
    int has_pattern, is_pattern;
    long long count;
};

struct fx {
    struct loop *loop;
    struct loop_timer watchdog;
    int timed_out;
    int (*until)(struct fx *);
    int ups, downs;
    char reason[512];
    char trail[8192];        /* U up, D down, r reply, n NULL reply, in order */
    size_t ntrail;
    int messages;
    struct kept_message kept[MAX_KEPT];
    uint64_t seen_messages;  /* at the last before-wait hook */
    uint64_t max_per_wakeup;
    struct redis_link *resub_link;   /* subscribes it to resub_channel whenever it comes up */
    const char *resub_channel;
};

static struct fx F;

static void trail(struct fx *fx, char c)
{
    if (fx->ntrail + 1 < sizeof fx->trail)
        fx->trail[fx->ntrail++] = c;
}

static void on_hook(struct loop *l, void *data)
{
    struct fx *fx = data;
    uint64_t now = (uint64_t)fx->messages;
    if (now - fx->seen_messages > fx->max_per_wakeup)
        fx->max_per_wakeup = now - fx->seen_messages;
    fx->seen_messages = now;
    if (fx->until && fx->until(fx))
        loop_stop(l);
}

static void on_watchdog(struct loop *l, struct loop_timer *t)
{
    struct fx *fx = container_of(t, struct fx, watchdog);
    fx->timed_out = 1;
    loop_stop(l);
}

/* Runs the loop until `until` holds (checked before every wait) or ms pass.
 * Returns whether it holds. */
static int run_until(int (*until)(struct fx *), uint64_t ms)
{
    F.until = until;
    F.timed_out = 0;
    loop_timer_after(F.loop, &F.watchdog, ms);
    ck_assert_int_eq(loop_run(F.loop), 0);
    loop_timer_cancel(F.loop, &F.watchdog);
    F.until = NULL;
    return until ? until(&F) : 1;
}

static void run_for(uint64_t ms)
{
    run_until(NULL, ms);
}

static int one_up(struct fx *fx) { return fx->ups >= 1; }
static int two_ups(struct fx *fx) { return fx->ups >= 2; }
static int one_down(struct fx *fx) { return fx->downs >= 1; }

static void on_state(struct redis_link *l, int up, const char *reason, void *ctx)
{
    struct fx *fx = ctx;
    snprintf(fx->reason, sizeof fx->reason, "%s", reason);
    trail(fx, up ? 'U' : 'D');
    if (!up) {
        fx->downs++;
        return;
    }
    fx->ups++;
    if (l == fx->resub_link)
        ck_assert_int_eq(redis_link_subscribe(l, fx->resub_channel, strlen(fx->resub_channel)), 0);
}

static void copy_bytes(char *dst, size_t dstsz, const char *src, size_t n)
{
    if (n >= dstsz)
        n = dstsz - 1;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

static void on_message(struct redis_link *l, const struct redis_link_message *m, void *ctx)
{
    struct fx *fx = ctx;
    (void)l;
    if (fx->messages < MAX_KEPT) {
        struct kept_message *k = &fx->kept[fx->messages];
        k->event = m->event;
        copy_bytes(k->channel, sizeof k->channel, m->channel, m->channel_len);
        k->has_pattern = m->pattern != NULL;
        if (m->pattern)
            copy_bytes(k->pattern, sizeof k->pattern, m->pattern, m->pattern_len);
        k->payload_len = m->payload_len;
        if (m->payload)
            copy_bytes(k->payload, sizeof k->payload, m->payload, m->payload_len);
        k->is_pattern = m->is_pattern;
        k->count = m->count;
    }
    fx->messages++;
}

static const struct redis_link_callbacks callbacks = {on_state, on_message};

static void setup(void)
{
    memset(&F, 0, sizeof F);
    F.loop = loop_new();
    ck_assert_ptr_nonnull(F.loop);
    F.watchdog.cb = on_watchdog;
    loop_set_before_wait(F.loop, on_hook, &F);
}

static void teardown(void)
{
    loop_free(F.loop);
    server_kill();
    if (srv.dir[0])
        remove_tree(srv.dir);
    memset(&srv, 0, sizeof srv);
}

/* Fast timers, so that failures and recoveries take milliseconds. */
static struct redis_link_options fast(int pubsub)
{
    return (struct redis_link_options){
        .pubsub = pubsub, .connect_timeout_ms = 500, .reply_timeout_ms = 400,
        .ping_interval_ms = 100, .backoff_min_ms = 20, .backoff_max_ms = 200,
    };
}

static struct redis_link *link_to(const char *url_text, struct redis_link_options opt)
{
    struct redis_url u;
    char err[256];
    EXPECT(redis_url_parse(url_text, &u, err, sizeof err) == 0, "%s: %s", url_text, err);
    struct redis_link *l = redis_link_new(F.loop, &u, &opt, &callbacks, &F);
    ck_assert_ptr_nonnull(l);
    return l;
}

static struct redis_link *tcp_link(int db, struct redis_link_options opt)
{
    char url[128];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/%d", srv.port, db);
    return link_to(url, opt);
}

static int ups_wanted;
static int ups_reached(struct fx *fx) { return fx->ups >= ups_wanted; }

/* A new link to the server on TCP, once it is up. */
static struct redis_link *up_link(int db, struct redis_link_options opt)
{
    struct redis_link *l = tcp_link(db, opt);
    ups_wanted = F.ups + 1;
    EXPECT(run_until(ups_reached, 3000), "no link: %s", F.reason);
    ck_assert(redis_link_is_up(l));
    return l;
}

/* ---- replies ---- */

struct replies {
    int calls, nulls, errors;
    int in_order;            /* INCR results came 1, 2, 3, ... */
    long long last_int;
    char last_str[512];
    size_t last_len;
    int last_type;
    size_t elements;
    char element[2][64];
};

static void on_reply(struct redis_link *l, struct redisReply *r, void *privdata)
{
    struct replies *rp = privdata;
    (void)l;
    rp->calls++;
    trail(&F, r ? 'r' : 'n');
    if (!r) {
        rp->nulls++;
        return;
    }
    rp->last_type = r->type;
    rp->errors += r->type == REDIS_REPLY_ERROR;
    if (r->type == REDIS_REPLY_INTEGER) {
        rp->in_order = (rp->calls == 1 || rp->in_order) && r->integer == rp->last_int + 1;
        rp->last_int = r->integer;
    }
    if (r->str) {
        copy_bytes(rp->last_str, sizeof rp->last_str, r->str, r->len);
        rp->last_len = r->len;
    }
    rp->elements = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
    for (size_t i = 0; i < rp->elements && i < 2; i++)
        copy_bytes(rp->element[i], sizeof rp->element[i], r->element[i]->str ? r->element[i]->str : "",
                   r->element[i]->len);
}

static struct replies *answered_target;
static int target_calls;
static int answered(struct fx *fx) { (void)fx; return answered_target->calls >= target_calls; }

/* Runs until rp has had `calls` callbacks (at most 3 s). */
static void wait_replies(struct replies *rp, int calls)
{
    answered_target = rp;
    target_calls = calls;
    EXPECT(run_until(answered, 3000), "%d of %d replies", rp->calls, calls);
}

/* Sends a command and waits for its reply. */
static void roundtrip(struct redis_link *l, struct replies *rp, const char *cmd)
{
    int calls = rp->calls;
    ck_assert_int_eq(redis_link_command(l, on_reply, rp, cmd), 0);
    wait_replies(rp, calls + 1);
}

static struct redis_link_stats stats(const struct redis_link *l)
{
    struct redis_link_stats s;
    redis_link_get_stats(l, &s);
    return s;
}

/* ---- tests ---- */

START_TEST(test_connect_select_ping)
{
    server_start();
    struct redis_link *l = up_link(3, fast(0));
    struct replies rp = {0};

    roundtrip(l, &rp, "CLIENT INFO");
    EXPECT(strstr(rp.last_str, " db=3 "), "not in db 3: %s", rp.last_str);
    roundtrip(l, &rp, "PING");
    ck_assert_int_eq(rp.last_type, REDIS_REPLY_STATUS);
    ck_assert_str_eq(rp.last_str, "PONG");
    run_for(350);                                /* a few heartbeats */
    struct redis_link_stats s = stats(l);
    ck_assert_int_eq(s.connected, 1);
    ck_assert_uint_eq(s.commands, 2);
    ck_assert_uint_eq(s.replies, 2);
    ck_assert_uint_eq(s.in_flight, 0);
    ck_assert_uint_eq(s.reconnects, 0);
    ck_assert_uint_gt(s.rtt_last_us, 0);
    ck_assert_uint_lt(s.rtt_last_us, 400000);
    ck_assert_uint_gt(s.rtt_smoothed_us, 0);
    ck_assert_int_eq(F.ups, 1);
    ck_assert_int_eq(F.downs, 0);
    ck_assert_str_eq(redis_link_reason(l), "");
    redis_link_free(l);
}
END_TEST

START_TEST(test_pipeline_in_order)
{
    server_start();
    struct redis_link *l = up_link(0, fast(0));
    struct replies rp = {0};

    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(redis_link_command(l, on_reply, &rp, "INCR counter"), 0);
    ck_assert_uint_eq(stats(l).in_flight, 1000);
    wait_replies(&rp, 1000);
    ck_assert(rp.in_order);
    ck_assert_int_eq(rp.last_int, 1000);
    ck_assert_int_eq(rp.nulls, 0);

    /* a 1 MiB value, binary, through many reads each way */
    size_t big = 1 << 20;
    char *v = malloc(big);
    for (size_t i = 0; i < big; i++)
        v[i] = (char)(i * 31);
    const char *argv[3] = {"SET", "big", v};
    size_t lens[3] = {3, 3, big};
    ck_assert_int_eq(redis_link_command_argv(l, on_reply, &rp, 3, argv, lens), 0);
    ck_assert_int_eq(redis_link_command(l, on_reply, &rp, "STRLEN big"), 0);
    wait_replies(&rp, 1002);
    ck_assert_int_eq(rp.last_int, (long long)big);
    free(v);
    struct redis_link_stats s = stats(l);
    ck_assert_uint_eq(s.commands, 1002);
    ck_assert_uint_eq(s.replies, 1002);
    ck_assert_uint_eq(s.in_flight, 0);
    redis_link_free(l);
}
END_TEST

START_TEST(test_in_flight_bound_and_refusals)
{
    server_start();
    struct redis_link_options o = fast(0);
    o.max_in_flight = 10;
    struct redis_link *l = up_link(0, o);
    struct replies rp = {0};

    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(redis_link_command(l, on_reply, &rp, "INCR n"), 0);
    ck_assert_int_eq(redis_link_command(l, on_reply, &rp, "INCR n"), -1);
    ck_assert_uint_eq(stats(l).dropped, 1);
    wait_replies(&rp, 10);
    ck_assert_int_eq(redis_link_command(l, on_reply, &rp, "INCR n"), 0);   /* room again */

    /* what would change the connection's replies, or is no command */
    const char *refused[] = {"SUBSCRIBE x", "psubscribe x*", "UNSUBSCRIBE", "MONITOR", "HELLO 3",
                             "RESET", "QUIT", ""};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        EXPECT(redis_link_command(l, on_reply, &rp, refused[i]) == -1, "'%s' accepted", refused[i]);
    ck_assert_int_eq(redis_link_command_argv(l, on_reply, &rp, 0, NULL, NULL), -1);
    ck_assert_int_eq(redis_link_subscribe(l, "x", 1), -1);             /* not a pub/sub link */
    wait_replies(&rp, 11);
    ck_assert_int_eq(rp.last_int, 11);
    ck_assert_int_eq(redis_link_command(l, NULL, NULL, "SET fire and-forget"), 0);
    roundtrip(l, &rp, "GET fire");
    ck_assert_str_eq(rp.last_str, "and-forget");
    redis_link_free(l);
}
END_TEST

START_TEST(test_kill_and_restart)
{
    server_start();
    struct redis_link *l = up_link(0, fast(0));
    struct replies rp = {0};

    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(redis_link_command(l, on_reply, &rp, "INCR n"), 0);
    server_kill();
    EXPECT(run_until(one_down, 3000), "no down");
    ck_assert_int_eq(rp.calls, 50);
    ck_assert_int_eq(rp.nulls, 50);
    EXPECT(strncmp(F.trail, "UD", 2) == 0 && strspn(F.trail + 2, "n") == 50, "order: %s", F.trail);
    EXPECT(strstr(F.reason, "lost the connection to redis://127.0.0.1:"), "reason: %s", F.reason);
    ck_assert_str_eq(redis_link_reason(l), F.reason);
    ck_assert(!redis_link_is_up(l));
    ck_assert_int_eq(redis_link_command(l, on_reply, &rp, "PING"), -1);
    struct redis_link_stats s = stats(l);
    ck_assert_int_eq(s.connected, 0);
    ck_assert_uint_eq(s.failed, 50);
    ck_assert_uint_eq(s.dropped, 1);
    ck_assert_uint_eq(s.in_flight, 0);

    run_for(600);                                /* several failed reconnects: still one down */
    ck_assert_int_eq(F.downs, 1);
    ck_assert_int_eq(F.ups, 1);

    server_start();                              /* same port */
    EXPECT(run_until(two_ups, 3000), "not up again: %s", F.reason);
    run_for(150);
    ck_assert_int_eq(F.ups, 2);
    ck_assert_int_eq(F.downs, 1);
    ck_assert_uint_eq(stats(l).reconnects, 1);
    roundtrip(l, &rp, "INCR n");
    ck_assert_int_eq(rp.last_int, 1);            /* a new, empty server */
    redis_link_free(l);
}
END_TEST

START_TEST(test_reply_timeout)
{
    server_start();
    struct redis_link_options o = fast(0);
    o.ping_interval_ms = 5000;                   /* only the command can time out */
    o.reply_timeout_ms = 300;
    struct redis_link *l = up_link(0, o);
    struct replies rp = {0};

    server_signal(SIGSTOP);
    uint64_t t0 = mono_ms();
    ck_assert_int_eq(redis_link_command(l, on_reply, &rp, "PING"), 0);
    EXPECT(run_until(one_down, 3000), "no down");
    uint64_t took = mono_ms() - t0;
    EXPECT(took >= 250 && took < 900, "down after %llu ms", (unsigned long long)took);
    EXPECT(strstr(F.reason, "no reply from") && strstr(F.reason, "within 300 ms"), "reason: %s", F.reason);
    ck_assert_int_eq(rp.nulls, 1);
    server_signal(SIGCONT);
    EXPECT(run_until(two_ups, 3000), "not up again: %s", F.reason);
    roundtrip(l, &rp, "PING");
    ck_assert_str_eq(rp.last_str, "PONG");
    redis_link_free(l);
}
END_TEST

START_TEST(test_heartbeat_detects_stall)
{
    server_start();
    struct redis_link *l = up_link(0, fast(0));  /* ping 100 ms, reply 400 ms */

    server_signal(SIGSTOP);
    uint64_t t0 = mono_ms();
    EXPECT(run_until(one_down, 3000), "no down");
    uint64_t took = mono_ms() - t0;
    EXPECT(took >= 290 && took < 900, "down after %llu ms", (unsigned long long)took);
    EXPECT(strstr(F.reason, "no reply from"), "reason: %s", F.reason);
    run_for(700);                                /* connects now time out: no second down */
    ck_assert_int_eq(F.downs, 1);
    server_signal(SIGCONT);
    EXPECT(run_until(two_ups, 3000), "not up again: %s", F.reason);
    redis_link_free(l);
}
END_TEST

START_TEST(test_connect_refused)
{
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", free_port());
    struct redis_link *l = link_to(url, fast(0));
    struct replies rp = {0};

    ck_assert_int_eq(redis_link_command(l, on_reply, &rp, "PING"), -1);   /* not up yet */
    EXPECT(run_until(one_down, 3000), "no down");
    EXPECT(strstr(F.reason, "cannot connect to redis://127.0.0.1:") && strstr(F.reason, "refused"),
           "reason: %s", F.reason);
    run_for(500);
    ck_assert_int_eq(F.downs, 1);
    ck_assert_int_eq(F.ups, 0);
    ck_assert_int_eq(rp.calls, 0);
    redis_link_free(l);
}
END_TEST

START_TEST(test_connect_timeout)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);   /* accepts (backlog), never answers */
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", ntohs(a.sin_port));
    struct redis_link_options o = fast(0);
    o.connect_timeout_ms = 300;
    uint64_t t0 = mono_ms();
    struct redis_link *l = link_to(url, o);

    EXPECT(run_until(one_down, 3000), "no down");
    uint64_t took = mono_ms() - t0;
    EXPECT(took >= 280 && took < 900, "down after %llu ms", (unsigned long long)took);
    EXPECT(strstr(F.reason, "no answer within 300 ms"), "reason: %s", F.reason);
    redis_link_free(l);
    close(fd);
}
END_TEST

static int n_messages;
static int got_messages(struct fx *fx) { return fx->messages >= n_messages; }

static void wait_messages(int n)
{
    n_messages = n;
    EXPECT(run_until(got_messages, 3000), "%d of %d pub/sub events", F.messages, n);
}

START_TEST(test_pubsub)
{
    server_start();
    struct redis_link *cmd = up_link(0, fast(0));
    struct redis_link *sub = up_link(0, fast(1));
    struct replies rp = {0};

    ck_assert_int_eq(redis_link_command(sub, on_reply, &rp, "PING"), -1);
    ck_assert_int_eq(redis_link_subscribe(sub, "__wshub_redis_link_heartbeat__", 30), -1);
    ck_assert_int_eq(redis_link_subscribe(sub, "room:a", 6), 0);
    wait_messages(1);
    ck_assert_int_eq(F.kept[0].event, REDIS_LINK_SUBSCRIBED);
    ck_assert_str_eq(F.kept[0].channel, "room:a");
    ck_assert_int_eq(F.kept[0].count, 1);
    ck_assert_int_eq(F.kept[0].is_pattern, 0);
    ck_assert_int_eq(redis_link_psubscribe(sub, "room:*", 6), 0);
    wait_messages(2);
    ck_assert_int_eq(F.kept[1].event, REDIS_LINK_SUBSCRIBED);
    ck_assert_int_eq(F.kept[1].is_pattern, 1);
    ck_assert_int_eq(F.kept[1].count, 2);

    ck_assert_int_eq(redis_link_command(cmd, on_reply, &rp, "PUBLISH room:a %b", "hel\0lo", (size_t)6), 0);
    wait_messages(4);
    ck_assert_int_eq(rp.last_int, 2);            /* once by channel, once by pattern */
    for (int i = 2; i < 4; i++) {
        const struct kept_message *k = &F.kept[i];
        ck_assert_int_eq(k->event, REDIS_LINK_MESSAGE);
        ck_assert_str_eq(k->channel, "room:a");
        ck_assert_uint_eq(k->payload_len, 6);
        ck_assert_mem_eq(k->payload, "hel\0lo", 6);
        if (k->has_pattern)
            ck_assert_str_eq(k->pattern, "room:*");
    }
    ck_assert_int_ne(F.kept[2].has_pattern, F.kept[3].has_pattern);

    ck_assert_int_eq(redis_link_unsubscribe(sub, "room:a", 6), 0);
    wait_messages(5);
    ck_assert_int_eq(F.kept[4].event, REDIS_LINK_UNSUBSCRIBED);
    ck_assert_int_eq(F.kept[4].count, 1);
    roundtrip(cmd, &rp, "PUBLISH room:a again");
    wait_messages(6);
    ck_assert(F.kept[5].has_pattern);
    ck_assert_str_eq(F.kept[5].payload, "again");
    ck_assert_int_eq(redis_link_punsubscribe(sub, "room:*", 6), 0);
    wait_messages(7);
    ck_assert_int_eq(F.kept[6].count, 0);
    run_for(300);                                /* heartbeats go on; nothing else arrives */
    ck_assert_int_eq(F.messages, 7);
    struct redis_link_stats s = stats(sub);
    ck_assert_uint_eq(s.messages, 3);
    ck_assert_uint_eq(s.commands, 4);
    ck_assert_uint_eq(s.in_flight, 0);
    ck_assert_uint_gt(s.rtt_last_us, 0);
    ck_assert_int_eq(F.downs, 0);
    redis_link_free(sub);
    redis_link_free(cmd);
}
END_TEST

static int message_after_restart(struct fx *fx)
{
    return fx->messages > 0 && fx->kept[fx->messages - 1].event == REDIS_LINK_MESSAGE;
}

/* The owner re-subscribes when told the link is up again. */
START_TEST(test_pubsub_resubscribe_after_restart)
{
    server_start();
    struct redis_link *sub = tcp_link(0, fast(1));
    F.resub_link = sub;
    F.resub_channel = "news";
    wait_messages(1);
    server_kill();
    EXPECT(run_until(one_down, 3000), "no down");
    server_start();
    EXPECT(run_until(two_ups, 3000), "not up again: %s", F.reason);
    wait_messages(2);                            /* SUBSCRIBED again */
    ck_assert_int_eq(F.kept[1].event, REDIS_LINK_SUBSCRIBED);
    struct redis_link *cmd = up_link(0, fast(0));
    struct replies rp = {0};
    roundtrip(cmd, &rp, "PUBLISH news hello");
    EXPECT(run_until(message_after_restart, 3000), "no message");
    ck_assert_str_eq(F.kept[2].payload, "hello");
    redis_link_free(cmd);
    redis_link_free(sub);
}
END_TEST

START_TEST(test_evalsha_reloads)
{
    server_start();
    struct redis_link *l = up_link(0, fast(0));
    struct replies rp = {0};
    struct redis_script s;
    redis_script_init(&s, "return {KEYS[1], ARGV[1]}");
    const char *argv[2] = {"key", "arg"};
    size_t lens[2] = {3, 3};

    ck_assert_int_eq(redis_link_script_load(l, &s, on_reply, &rp), 0);
    wait_replies(&rp, 1);
    ck_assert_str_eq(rp.last_str, s.sha1);       /* the SHA1 we compute is Redis's */
    ck_assert_int_eq(redis_link_evalsha(l, &s, on_reply, &rp, 1, 2, argv, lens), 0);
    wait_replies(&rp, 2);
    ck_assert_uint_eq(rp.elements, 2);
    ck_assert_str_eq(rp.element[0], "key");
    ck_assert_str_eq(rp.element[1], "arg");
    ck_assert_uint_eq(stats(l).script_reloads, 0);

    roundtrip(l, &rp, "SCRIPT FLUSH");
    for (int i = 0; i < 3; i++)                  /* pipelined: each may see NOSCRIPT */
        ck_assert_int_eq(redis_link_evalsha(l, &s, on_reply, &rp, 1, 2, argv, lens), 0);
    wait_replies(&rp, 6);
    ck_assert_int_eq(rp.errors, 0);
    ck_assert_uint_eq(rp.elements, 2);
    ck_assert_str_eq(rp.element[1], "arg");
    uint64_t reloads = stats(l).script_reloads;
    ck_assert_uint_ge(reloads, 1);
    ck_assert_uint_le(reloads, 3);
    ck_assert_int_eq(redis_link_evalsha(l, &s, on_reply, &rp, 0, 0, NULL, NULL), 0);
    wait_replies(&rp, 7);
    ck_assert_uint_eq(stats(l).script_reloads, reloads);

    /* a script that does not compile: one answer, the error */
    struct redis_script bad;
    redis_script_init(&bad, "return (");
    ck_assert_int_eq(redis_link_evalsha(l, &bad, on_reply, &rp, 0, 0, NULL, NULL), 0);
    wait_replies(&rp, 8);
    run_for(100);
    ck_assert_int_eq(rp.calls, 8);
    ck_assert_int_eq(rp.errors, 1);
    EXPECT(strstr(rp.last_str, "NOSCRIPT"), "error: %s", rp.last_str);
    ck_assert_int_eq(redis_link_evalsha(l, &s, on_reply, &rp, 3, 2, argv, lens), -1);  /* nkeys > argc */
    redis_link_free(l);
}
END_TEST

START_TEST(test_auth)
{
    srv.password = PASSWORD;
    server_start();
    char url[160];
    snprintf(url, sizeof url, "redis://:s3cret%%20pass@127.0.0.1:%d/1", srv.port);
    struct redis_link *l = link_to(url, fast(0));
    EXPECT(run_until(one_up, 3000), "not up: %s", F.reason);
    struct replies rp = {0};
    roundtrip(l, &rp, "ACL WHOAMI");
    ck_assert_str_eq(rp.last_str, "default");
    redis_link_free(l);

    snprintf(url, sizeof url, "redis://default:s3cret%%20pass@127.0.0.1:%d", srv.port);
    l = link_to(url, fast(1));
    EXPECT(run_until(two_ups, 3000), "user form, pub/sub: not up: %s", F.reason);
    redis_link_free(l);
    ck_assert_int_eq(F.downs, 0);
}
END_TEST

START_TEST(test_auth_wrong_password)
{
    srv.password = PASSWORD;
    server_start();
    char url[160];
    snprintf(url, sizeof url, "redis://:wrong@127.0.0.1:%d", srv.port);
    struct redis_link *l = link_to(url, fast(0));
    EXPECT(run_until(one_down, 3000), "no down");
    EXPECT(strstr(F.reason, "refused AUTH") && strstr(F.reason, "WRONGPASS"), "reason: %s", F.reason);
    EXPECT(!strstr(F.reason, "wrong"), "the password shows: %s", F.reason);
    run_for(500);                                /* retries fail the same way, silently */
    ck_assert_int_eq(F.downs, 1);
    ck_assert_int_eq(F.ups, 0);
    redis_link_free(l);

    F.downs = 0;                                 /* no password at all, both kinds of link */
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", srv.port);
    l = link_to(url, fast(0));
    EXPECT(run_until(one_down, 3000), "no down");
    EXPECT(strstr(F.reason, "NOAUTH"), "reason: %s", F.reason);
    redis_link_free(l);
    F.downs = 0;
    l = link_to(url, fast(1));
    EXPECT(run_until(one_down, 3000), "no down");
    EXPECT(strstr(F.reason, "NOAUTH"), "pub/sub reason: %s", F.reason);
    redis_link_free(l);
}
END_TEST

START_TEST(test_unix_socket)
{
    server_start();
    char url[200];
    snprintf(url, sizeof url, "unix://%s?db=2", srv.sock);
    struct redis_link *l = link_to(url, fast(0));
    EXPECT(run_until(one_up, 3000), "not up: %s", F.reason);
    struct replies rp = {0};
    roundtrip(l, &rp, "CLIENT INFO");
    EXPECT(strstr(rp.last_str, " db=2 "), "not in db 2: %s", rp.last_str);
    EXPECT(strstr(rp.last_str, "laddr=/") || strstr(rp.last_str, "addr=/"), "not the socket: %s", rp.last_str);
    redis_link_free(l);
}
END_TEST

static int ipv6_loopback_works(void)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    int ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

START_TEST(test_ipv6)
{
    if (!ipv6_loopback_works()) {
        fprintf(stderr, "test_ipv6: no IPv6 loopback here, skipped\n");
        return;
    }
    server_start();
    char url[64];
    snprintf(url, sizeof url, "redis://[::1]:%d", srv.port);
    struct redis_link *l = link_to(url, fast(0));
    EXPECT(run_until(one_up, 3000), "not up: %s", F.reason);
    struct replies rp = {0};
    roundtrip(l, &rp, "CLIENT INFO");
    EXPECT(strstr(rp.last_str, "laddr=[::1]:") || strstr(rp.last_str, "laddr=::1:"), "not IPv6: %s", rp.last_str);
    redis_link_free(l);
}
END_TEST

START_TEST(test_free_with_commands_in_flight)
{
    server_start();
    struct redis_link *l = up_link(0, fast(0));
    struct replies rp = {0};
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(redis_link_command(l, on_reply, &rp, "INCR n"), 0);
    redis_link_free(l);                          /* answered before it returns */
    ck_assert_int_eq(rp.calls, 100);
    ck_assert_int_eq(rp.nulls, 100);
    ck_assert_int_eq(F.downs, 0);                /* freeing is no state change */
    run_for(100);
    ck_assert_int_eq(rp.calls, 100);
}
END_TEST

struct free_in_reply {
    struct replies rp;
    struct redis_link *link;
};

static void free_on_first_reply(struct redis_link *l, struct redisReply *r, void *privdata)
{
    struct free_in_reply *f = privdata;
    on_reply(l, r, &f->rp);
    if (f->rp.calls == 1) {
        redis_link_free(l);
        ck_assert_int_eq(f->rp.calls, 10);       /* the other nine, answered NULL at once */
        ck_assert_int_eq(redis_link_command(l, on_reply, &f->rp, "PING"), -1);
    }
}

START_TEST(test_free_from_callback)
{
    server_start();
    struct free_in_reply f = {0};
    f.link = up_link(0, fast(0));
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(redis_link_command(f.link, free_on_first_reply, &f, "INCR n"), 0);
    wait_replies(&f.rp, 10);
    ck_assert_int_eq(f.rp.nulls, 9);
    run_for(100);                                /* freed: no more callbacks, no events */
    ck_assert_int_eq(f.rp.calls, 10);
}
END_TEST

static void free_on_down(struct redis_link *l, int up, const char *reason, void *ctx)
{
    on_state(l, up, reason, ctx);
    if (!up)
        redis_link_free(l);
}

START_TEST(test_free_from_state_callback)
{
    server_start();
    static const struct redis_link_callbacks cb = {free_on_down, NULL};
    struct redis_url u;
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", srv.port);
    ck_assert_int_eq(redis_url_parse(url, &u, NULL, 0), 0);
    struct redis_link_options o = fast(0);
    struct redis_link *l = redis_link_new(F.loop, &u, &o, &cb, &F);
    EXPECT(run_until(one_up, 3000), "not up: %s", F.reason);
    struct replies rp = {0};
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(redis_link_command(l, on_reply, &rp, "INCR n"), 0);
    server_kill();
    EXPECT(run_until(one_down, 3000), "no down");
    ck_assert_int_eq(rp.nulls, 5);
    run_for(300);                                /* no reconnect of a freed link */
    ck_assert_int_eq(F.ups, 1);
}
END_TEST

START_TEST(test_pause_reading)
{
    server_start();
    struct redis_link *cmd = up_link(0, fast(0));
    struct redis_link_options o = fast(1);
    o.reply_timeout_ms = 2000;
    struct redis_link *sub = up_link(0, o);
    ck_assert_int_eq(redis_link_subscribe(sub, "c", 1), 0);
    wait_messages(1);
    redis_link_pause_reading(sub, 1);
    struct replies rp = {0};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(redis_link_command(cmd, on_reply, &rp, "PUBLISH c m%d", i), 0);
    wait_replies(&rp, 3);
    run_for(200);
    ck_assert_int_eq(F.messages, 1);
    redis_link_pause_reading(sub, 0);
    wait_messages(4);
    ck_assert_str_eq(F.kept[3].payload, "m2");
    ck_assert_int_eq(F.downs, 0);
    redis_link_free(sub);
    redis_link_free(cmd);
}
END_TEST

/* 2,000 messages of 100 bytes wait in the socket; one wake-up reads at most
 * 16 KiB of them, so at most about 16384 / 100 are delivered per wake-up. */
START_TEST(test_reading_is_bounded_per_wakeup)
{
    server_start();
    struct redis_link *cmd = up_link(0, fast(0));
    struct redis_link_options o = fast(1);
    o.reply_timeout_ms = 3000;
    struct redis_link *sub = up_link(0, o);
    ck_assert_int_eq(redis_link_subscribe(sub, "c", 1), 0);
    wait_messages(1);
    redis_link_pause_reading(sub, 1);
    char payload[101];
    memset(payload, 'p', 100);
    payload[100] = '\0';
    struct replies rp = {0};
    for (int i = 0; i < 2000; i++)
        ck_assert_int_eq(redis_link_command(cmd, on_reply, &rp, "PUBLISH c %s", payload), 0);
    wait_replies(&rp, 2000);
    F.max_per_wakeup = 0;
    redis_link_pause_reading(sub, 0);
    wait_messages(2001);
    EXPECT(F.max_per_wakeup <= 16384 / 100 + 1, "%llu messages in one wake-up",
           (unsigned long long)F.max_per_wakeup);
    ck_assert_uint_ge(F.max_per_wakeup, 50);
    redis_link_free(sub);
    redis_link_free(cmd);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    strcpy(base_dir, "/tmp/wshub-redis-XXXXXX");
    if (!mkdtemp(base_dir)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    Suite *s = suite_create("redis_link");
    TCase *tc = tcase_create("redis_link");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_connect_select_ping);
    tcase_add_test(tc, test_pipeline_in_order);
    tcase_add_test(tc, test_in_flight_bound_and_refusals);
    tcase_add_test(tc, test_kill_and_restart);
    tcase_add_test(tc, test_reply_timeout);
    tcase_add_test(tc, test_heartbeat_detects_stall);
    tcase_add_test(tc, test_connect_refused);
    tcase_add_test(tc, test_connect_timeout);
    tcase_add_test(tc, test_pubsub);
    tcase_add_test(tc, test_pubsub_resubscribe_after_restart);
    tcase_add_test(tc, test_evalsha_reloads);
    tcase_add_test(tc, test_auth);
    tcase_add_test(tc, test_auth_wrong_password);
    tcase_add_test(tc, test_unix_socket);
    tcase_add_test(tc, test_ipv6);
    tcase_add_test(tc, test_free_with_commands_in_flight);
    tcase_add_test(tc, test_free_from_callback);
    tcase_add_test(tc, test_free_from_state_callback);
    tcase_add_test(tc, test_pause_reading);
    tcase_add_test(tc, test_reading_is_bounded_per_wakeup);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_tree(base_dir);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
