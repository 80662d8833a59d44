/* supervisor: with --workers N > 1, the process that forks N single-threaded
 * workers (each a whole wshub on the same port, SO_REUSEPORT), starts again
 * one that dies (with backoff, logged, counted in the shared stats), passes
 * SIGHUP on, stops them all on SIGTERM/SIGINT, and tells the starter and
 * systemd it is ready once every worker listens. Main layer: it knows
 * processes and signals, nothing of what a worker serves. */
#ifndef WSHUB_SUPERVISOR_H
#define WSHUB_SUPERVISOR_H

#include "shm_stats.h"

struct supervisor_config {
    unsigned workers;
    unsigned shutdown_timeout;   /* seconds the workers have to close; 5 s more, then SIGKILL */
    struct shm_stats *stats;     /* mapped before run: pids and restarts go here */
};

/* What a worker process is told about itself. */
struct supervisor_worker {
    unsigned index;       /* 0 .. workers-1 */
    unsigned restarts;    /* how many times this index was started again */
    int ready_fd;         /* for supervisor_listening */
};

/* The body of a worker process; its return value is the worker's exit status. */
typedef int (*supervisor_worker_fn)(void *arg, const struct supervisor_worker *w);

/* Runs the supervisor until it is stopped: forks the workers, each running
 * fn(arg, w) in a child that dies with the supervisor (PR_SET_PDEATHSIG).
 * Returns the exit status: 0 after a stop where every worker exited 0; a
 * worker's status (or 1) when one could not start at first. */
int supervisor_run(const struct supervisor_config *cfg, supervisor_worker_fn fn, void *arg);

/* In a worker: tells the supervisor it listens (once per start). */
void supervisor_listening(const struct supervisor_worker *w);

#endif
