/* supervisor: the parent of the worker processes. Owns their pids, the
 * restart backoff, the ready pipe (a worker writes its index once it
 * listens) and the signals of the supervising process (signalfd on its own
 * loop). It never serves a connection, never reads a worker's figures, and
 * never outlives a stop: workers that do not close in time are killed. */
#include "supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "loop.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 30000
#define STABLE_MS 10000      /* a worker that ran this long starts the backoff afresh */
#define KILL_GRACE_MS 5000   /* after --shutdown-timeout, before SIGKILL */

struct worker {
    struct supervisor *sup;
    unsigned index;
    pid_t pid;                /* 0 while not running */
    unsigned restarts;
    unsigned quick_deaths;    /* deaths in a row within STABLE_MS of starting */
    uint64_t started_ms;
    int listened;             /* this start reported listening */
    struct loop_timer restart;
};

struct supervisor {
    struct loop *loop;
    struct supervisor_config cfg;
    supervisor_worker_fn fn;
    void *arg;
    struct worker *w;
    unsigned running;
    int all_listened;         /* every worker listened once: we are ready */
    int stopping;
    int rc;
    pid_t self;
    int ready_w;              /* the workers' end of the ready pipe */
    struct loop_io ready;
    struct loop_io sig;
    struct loop_timer kill_timer;
};

/* In the new child: drop the supervisor's loop, signals and memory, then be
 * worker w. Never returns. */
static void become_worker(struct supervisor *sup, struct worker *w)
{
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != sup->self)
        _exit(1);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_UNBLOCK, &chld, NULL);
    close(sup->sig.fd);
    close(sup->ready.fd);
    loop_free(sup->loop);
    daemon_child();
    struct supervisor_worker me = {.index = w->index, .restarts = w->restarts, .ready_fd = sup->ready_w};
    supervisor_worker_fn fn = sup->fn;
    void *arg = sup->arg;
    free(sup->w);
    int rc = fn(arg, &me);
    close(me.ready_fd);
    exit(rc);
}

static int spawn(struct supervisor *sup, struct worker *w)
{
    pid_t pid = fork();
    if (pid < 0) {
        log_msg(LOG_ERROR, "worker fork failed worker=%u error=\"%s\"", w->index, strerror(errno));
        return -1;
    }
    if (pid == 0)
        become_worker(sup, w);
    w->pid = pid;
    w->listened = 0;
    w->started_ms = loop_now(sup->loop);
    sup->running++;
    shm_stats_set_pid(sup->cfg.stats, w->index, pid, w->restarts > 0);
    log_msg(LOG_INFO, "worker started worker=%u pid=%ld restarts=%u", w->index, (long)pid, w->restarts);
    return 0;
}

static void on_restart(struct loop *l, struct loop_timer *t)
{
    struct worker *w = container_of(t, struct worker, restart);
    w->restarts++;
    if (spawn(w->sup, w) < 0) {
        w->restarts--;
        loop_timer_after(l, t, BACKOFF_MAX_MS);
    }
}

/* Sends sig to every running worker. */
static void signal_workers(struct supervisor *sup, int sig)
{
    for (unsigned i = 0; i < sup->cfg.workers; i++)
        if (sup->w[i].pid > 0)
            kill(sup->w[i].pid, sig);
}

static void on_kill_timer(struct loop *l, struct loop_timer *t)
{
    (void)l;
    struct supervisor *sup = container_of(t, struct supervisor, kill_timer);
    log_msg(LOG_WARN, "workers did not stop in time, killing them running=%u", sup->running);
    signal_workers(sup, SIGKILL);
}

/* Stops every worker with sig (SIGTERM: each closes its clients with 1001). */
static void stop_all(struct supervisor *sup, int sig)
{
    int again = sup->stopping;
    sup->stopping = 1;
    for (unsigned i = 0; i < sup->cfg.workers; i++)
        loop_timer_cancel(sup->loop, &sup->w[i].restart);
    signal_workers(sup, sig);
    if (!again)
        loop_timer_after(sup->loop, &sup->kill_timer, sup->cfg.shutdown_timeout * 1000ull + KILL_GRACE_MS);
    if (sup->running == 0)
        loop_stop(sup->loop);
}

static void describe_status(int status, char *out, size_t size)
{
    if (WIFSIGNALED(status))
        snprintf(out, size, "signal=%s", sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status)) : "?");
    else
        snprintf(out, size, "status=%d", WEXITSTATUS(status));
}

static void worker_exited(struct supervisor *sup, struct worker *w, int status)
{
    char how[64];
    describe_status(status, how, sizeof(how));
    uint64_t now = loop_now(sup->loop);
    int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    w->pid = 0;
    sup->running--;
    shm_stats_set_pid(sup->cfg.stats, w->index, 0, 0);
    if (sup->stopping) {
        log_msg(clean ? LOG_INFO : LOG_WARN, "worker stopped worker=%u %s", w->index, how);
        if (!clean)
            sup->rc = 1;
        if (sup->running == 0)
            loop_stop(sup->loop);
        return;
    }
    if (!sup->all_listened && !w->listened) {
        log_msg(LOG_ERROR, "worker could not start worker=%u %s", w->index, how);
        sup->rc = WIFEXITED(status) && WEXITSTATUS(status) ? WEXITSTATUS(status) : 1;
        stop_all(sup, SIGTERM);
        return;
    }
    if (now - w->started_ms >= STABLE_MS)
        w->quick_deaths = 0;
    uint64_t delay = BACKOFF_FIRST_MS;
    for (unsigned i = 0; i < w->quick_deaths && delay < BACKOFF_MAX_MS; i++)
        delay *= 2;
    if (delay > BACKOFF_MAX_MS)
        delay = BACKOFF_MAX_MS;
    w->quick_deaths++;
    log_msg(LOG_ERROR, "worker died worker=%u %s restart_in_ms=%llu", w->index, how, (unsigned long long)delay);
    loop_timer_after(sup->loop, &w->restart, delay);
}

static void reap(struct supervisor *sup)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (unsigned i = 0; i < sup->cfg.workers; i++) {
            if (sup->w[i].pid == pid) {
                worker_exited(sup, &sup->w[i], status);
                break;
            }
        }
    }
}

static void on_signal(struct loop *l, struct loop_io *io, uint32_t events)
{
    (void)l;
    (void)events;
    struct supervisor *sup = container_of(io, struct supervisor, sig);
    struct signalfd_siginfo si;
    while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        int signo = (int)si.ssi_signo;
        if (signo == SIGCHLD) {
            reap(sup);
        } else if (signo == SIGHUP) {
            if (log_reopen() < 0)
                log_msg(LOG_ERROR, "log reopen failed error=\"%s\"", strerror(errno));
            log_msg(LOG_INFO, "reload: passing SIGHUP to the workers running=%u", sup->running);
            signal_workers(sup, SIGHUP);
        } else {
            log_msg(LOG_INFO, "signal received signal=%s stopping workers=%u", sigabbrev_np(signo), sup->running);
            daemon_stopping();
            stop_all(sup, signo);
        }
    }
}

static void on_ready(struct loop *l, struct loop_io *io, uint32_t events)
{
    (void)l;
    (void)events;
    struct supervisor *sup = container_of(io, struct supervisor, ready);
    unsigned char idx[64];
    ssize_t n;
    while ((n = read(io->fd, idx, sizeof(idx))) > 0) {
        for (ssize_t k = 0; k < n; k++)
            if (idx[k] < sup->cfg.workers && sup->w[idx[k]].pid > 0)
                sup->w[idx[k]].listened = 1;
    }
    if (sup->all_listened)
        return;
    for (unsigned i = 0; i < sup->cfg.workers; i++)
        if (!sup->w[i].listened)
            return;
    sup->all_listened = 1;
    log_msg(LOG_INFO, "all workers listening workers=%u supervisor_pid=%ld", sup->cfg.workers, (long)sup->self);
    daemon_ready();
}

void supervisor_listening(const struct supervisor_worker *w)
{
    unsigned char idx = (unsigned char)w->index;
    if (write(w->ready_fd, &idx, 1) < 0)
        log_msg(LOG_WARN, "cannot tell the supervisor error=\"%s\"", strerror(errno));
}

/* The loop, the signalfd and the ready pipe. Returns 0 or -1 (logged). */
static int setup(struct supervisor *sup)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int p[2] = {-1, -1};
    sup->loop = loop_new();
    sup->sig.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    sup->sig.cb = on_signal;
    if (!sup->loop || sup->sig.fd < 0 || pipe2(p, O_CLOEXEC) < 0 || fcntl(p[0], F_SETFL, O_NONBLOCK) < 0 ||
        loop_io_add(sup->loop, &sup->sig, LOOP_READ) < 0) {
        log_msg(LOG_ERROR, "supervisor setup failed error=\"%s\"", strerror(errno));
        return -1;
    }
    sup->ready.fd = p[0];
    sup->ready.cb = on_ready;
    sup->ready_w = p[1];
    if (loop_io_add(sup->loop, &sup->ready, LOOP_READ) < 0) {
        log_msg(LOG_ERROR, "supervisor setup failed error=\"%s\"", strerror(errno));
        return -1;
    }
    return 0;
}

int supervisor_run(const struct supervisor_config *cfg, supervisor_worker_fn fn, void *arg)
{
    struct supervisor sup = {.cfg = *cfg, .fn = fn, .arg = arg, .self = getpid(), .ready_w = -1,
                             .ready = {.fd = -1}, .sig = {.fd = -1}};
    sup.kill_timer.cb = on_kill_timer;
    sup.w = calloc(cfg->workers, sizeof(*sup.w));
    int rc = sup.w && setup(&sup) == 0 ? 0 : 1;
    log_msg(LOG_INFO, "supervisor starting workers=%u pid=%ld", cfg->workers, (long)sup.self);
    for (unsigned i = 0; rc == 0 && i < cfg->workers; i++) {
        sup.w[i] = (struct worker){.sup = &sup, .index = i, .restart = {.cb = on_restart}};
        if (spawn(&sup, &sup.w[i]) < 0) {
            rc = 1;
            stop_all(&sup, SIGTERM);
        }
    }
    if (sup.running > 0 && loop_run(sup.loop) < 0)
        rc = 1;
    if (rc == 0)
        rc = sup.rc;
    for (unsigned i = 0; sup.w && i < cfg->workers; i++)
        loop_timer_cancel(sup.loop, &sup.w[i].restart);
    if (sup.loop)
        loop_timer_cancel(sup.loop, &sup.kill_timer);
    if (sup.sig.fd >= 0)
        close(sup.sig.fd);
    if (sup.ready.fd >= 0)
        close(sup.ready.fd);
    if (sup.ready_w >= 0)
        close(sup.ready_w);
    loop_free(sup.loop);
    free(sup.w);
    return rc;
}
