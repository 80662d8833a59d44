/* shm_stats: the shared region of the workers' figures and health. Owns the
 * mapping and its layout: the supervisor's header (pids, restarts) and one
 * slot per worker under a sequence lock (odd while its worker writes). A
 * process writes only its own part: the supervisor the header, worker i slot
 * i; readers copy a slot and retry if it changed underneath. Must never
 * block on another process or trust a slot whose writer is gone. */
#include "shm_stats.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Records a slot holds: a worker's own figures, then the supervisor's three
 * added when rendering. */
#define SLOT_RECORDS 128
#define SUPERVISOR_RECORDS 3
#define READ_TRIES 1000

struct shm_worker {            /* written by the supervisor only */
    _Atomic int pid;           /* 0 while not running */
    _Atomic uint64_t restarts;
};

struct shm_slot {              /* written by its worker only */
    _Atomic uint32_t seq;      /* odd while being written */
    int32_t pid;               /* the writer */
    uint64_t heartbeat_ms;
    uint32_t healthy;
    char why[96];
    uint32_t n;
    struct metrics_record rec[SLOT_RECORDS];
};

struct shm_stats {             /* process-local handle, copied by fork */
    unsigned n;
    struct shm_worker *workers;
    struct shm_slot *slots;
    size_t size;
    char why[160];
};

struct shm_stats *shm_stats_new(unsigned n)
{
    struct shm_stats *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    size_t head = (n * sizeof(struct shm_worker) + 63) & ~(size_t)63;
    s->size = head + n * sizeof(struct shm_slot);
    void *p = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        free(s);
        return NULL;
    }
    s->n = n;
    s->workers = p;
    s->slots = (struct shm_slot *)((char *)p + head);
    return s;
}

void shm_stats_free(struct shm_stats *s)
{
    if (!s)
        return;
    munmap(s->workers, s->size);
    free(s);
}

void shm_stats_set_pid(struct shm_stats *s, unsigned i, pid_t pid, int restarted)
{
    atomic_store(&s->workers[i].pid, (int)pid);
    if (restarted)
        atomic_fetch_add(&s->workers[i].restarts, 1);
}

void shm_stats_publish(struct shm_stats *s, unsigned i, shm_stats_write_fn write, void *ctx, int healthy,
                       const char *why, uint64_t now_ms)
{
    struct shm_slot *sl = &s->slots[i];
    /* even: a predecessor that died mid-write left it odd */
    uint32_t q = atomic_load_explicit(&sl->seq, memory_order_relaxed) & ~1u;
    atomic_store_explicit(&sl->seq, q + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    struct metrics m;
    metrics_begin_records(&m, sl->rec, SLOT_RECORDS - SUPERVISOR_RECORDS);
    write(ctx, &m);
    sl->n = (uint32_t)m.n_rec;
    sl->pid = (int32_t)getpid();
    sl->heartbeat_ms = now_ms;
    sl->healthy = healthy ? 1 : 0;
    snprintf(sl->why, sizeof(sl->why), "%s", healthy || !why ? "" : why);
    atomic_store_explicit(&sl->seq, q + 2, memory_order_release);
}

/* Copies slot i whole, as one write left it. Returns 0, or -1 when its writer
 * stays in the middle of a write (it died there, or is stopped). */
static int read_slot(const struct shm_stats *s, unsigned i, struct shm_slot *copy)
{
    struct shm_slot *sl = &s->slots[i];
    for (int tries = 0; tries < READ_TRIES; tries++) {
        uint32_t q1 = atomic_load_explicit(&sl->seq, memory_order_acquire);
        if (!(q1 & 1)) {
            memcpy((char *)copy + sizeof(copy->seq), (char *)sl + sizeof(sl->seq), sizeof(*sl) - sizeof(sl->seq));
            atomic_thread_fence(memory_order_acquire);
            if (atomic_load_explicit(&sl->seq, memory_order_relaxed) == q1)
                return 0;
        }
        sched_yield();
    }
    return -1;
}

/* Whether worker i is serving; *why says why not. copy receives its slot. */
static int worker_healthy(struct shm_stats *s, unsigned i, uint64_t now_ms, struct shm_slot *copy, int *current)
{
    int pid = atomic_load(&s->workers[i].pid);
    *current = pid && read_slot(s, i, copy) == 0 && copy->pid == pid;
    if (!pid)
        snprintf(s->why, sizeof(s->why), "worker %u is not running", i);
    else if (!*current)
        snprintf(s->why, sizeof(s->why), "worker %u is starting", i);
    else if (now_ms > copy->heartbeat_ms && now_ms - copy->heartbeat_ms > SHM_STATS_STALE_MS)
        snprintf(s->why, sizeof(s->why), "worker %u has not answered for %llu ms", i,
                 (unsigned long long)(now_ms - copy->heartbeat_ms));
    else if (!copy->healthy)
        snprintf(s->why, sizeof(s->why), "worker %u: %s", i, copy->why);
    else
        return 1;
    return 0;
}

int shm_stats_healthy(struct shm_stats *s, uint64_t now_ms, const char **why)
{
    struct shm_slot *copy = malloc(sizeof(*copy));
    if (!copy) {
        *why = "out of memory";
        return 0;
    }
    int ok = 1, current;
    for (unsigned i = 0; i < s->n && ok; i++)
        ok = worker_healthy(s, i, now_ms, copy, &current);
    free(copy);
    *why = s->why;
    return ok;
}

int shm_stats_render(struct shm_stats *s, uint64_t now_ms, struct metrics *m)
{
    struct shm_slot *copies = malloc(s->n * sizeof(*copies));
    struct metrics_set *sets = malloc(s->n * sizeof(*sets));
    if (!copies || !sets) {
        free(copies);
        free(sets);
        return -1;
    }
    for (unsigned i = 0; i < s->n; i++) {
        struct shm_slot *c = &copies[i];
        int current, healthy = worker_healthy(s, i, now_ms, c, &current);
        if (!current)
            c->n = 0;
        struct metrics rm;
        metrics_begin_records(&rm, c->rec + c->n, SLOT_RECORDS - c->n);
        metrics_value(&rm, "pid", "wshub_worker_pid", METRICS_ID, "The worker's process id (0 while not running).",
                      (uint64_t)atomic_load(&s->workers[i].pid));
        metrics_value(&rm, "worker_restarts", "wshub_worker_restarts_total", METRICS_COUNTER,
                      "Times the supervisor started a worker again after it died.",
                      atomic_load(&s->workers[i].restarts));
        metrics_value(&rm, "workers_healthy", "wshub_workers_healthy", METRICS_GAUGE,
                      "Workers running, healthy and answering (1 per worker).", (uint64_t)healthy);
        sets[i] = (struct metrics_set){.rec = c->rec, .n = c->n + rm.n_rec};
    }
    metrics_value(m, "worker_processes", "wshub_workers", METRICS_GAUGE, "Worker processes the supervisor keeps.", s->n);
    metrics_sum(m, sets, s->n, "worker");
    free(copies);
    free(sets);
    return 0;
}
