/* shm_stats: the figures and health of every worker process, in one
 * shared-memory region the supervisor maps before it forks. A header written
 * only by the supervisor (each worker's pid and restarts), then one slot per
 * worker written only by that worker (its figures as metrics records, its
 * health, a heartbeat), under a sequence lock so a reader never sees half a
 * write. Any worker renders the whole server from it. Main layer: it knows
 * metrics records and clocks, nothing of the layers that wrote them. */
#ifndef WSHUB_SHM_STATS_H
#define WSHUB_SHM_STATS_H

#include <stdint.h>
#include <sys/types.h>

#include "metrics.h"

/* A worker whose heartbeat is older than this counts as unhealthy (hung). */
#define SHM_STATS_STALE_MS 3000
/* How often a worker should publish (its heartbeat). */
#define SHM_STATS_PUBLISH_MS 500

struct shm_stats;

/* Writes a process's own figures (the layers' *_metrics functions). */
typedef void (*shm_stats_write_fn)(void *ctx, struct metrics *m);

/* Maps the region for n workers (MAP_SHARED | MAP_ANONYMOUS). NULL on
 * failure (errno set). */
struct shm_stats *shm_stats_new(unsigned n);

/* Unmaps it (in each process that holds it). */
void shm_stats_free(struct shm_stats *s);

/* Supervisor: worker i runs as pid (0 = not running). restarted counts one restart. */
void shm_stats_set_pid(struct shm_stats *s, unsigned i, pid_t pid, int restarted);

/* Worker i: records its figures (write(ctx, m)), its health (healthy, and why
 * not) and a heartbeat at now_ms (CLOCK_MONOTONIC, the same in every process). */
void shm_stats_publish(struct shm_stats *s, unsigned i, shm_stats_write_fn write, void *ctx, int healthy,
                       const char *why, uint64_t now_ms);

/* Any worker: 1 when every worker runs, is healthy and published within
 * SHM_STATS_STALE_MS of now_ms; else 0 with *why naming the first that is not
 * (valid until the next call). */
int shm_stats_healthy(struct shm_stats *s, uint64_t now_ms, const char **why);

/* Any worker: writes the whole server's figures, summed over the workers'
 * slots, with per-worker figures (label "worker"), plus the supervisor's
 * (workers, each one's pid and restarts, healthy workers). Returns -1 when
 * out of memory (nothing written). */
int shm_stats_render(struct shm_stats *s, uint64_t now_ms, struct metrics *m);

#endif
