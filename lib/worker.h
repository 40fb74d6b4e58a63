/*
 * worker.h - run blocking work (password hashing) off the event loop.
 *
 * A small pool of threads takes jobs; each job's work() runs on a worker
 * thread, then its done() runs back on the loop's thread.  A job whose
 * owner went away is cancelled: its work() is skipped if it has not
 * started, and done() still runs (so the job can free itself) but with
 * cancelled set, and must not touch its owner.
 */
#ifndef UMBOX_WORKER_H
#define UMBOX_WORKER_H

#include "lib/completion.h"

struct event_base;
struct worker_pool;

struct worker_job {
	void (*work)(struct worker_job *job);			/* on a worker thread */
	void (*done)(struct worker_job *job, int cancelled);	/* on the loop */
	int cancelled;		/* set by worker_cancel on the loop thread */
	void *ctx;		/* while work() runs: its thread's context (worker_pool_new_ctx) */
	struct worker_job *next;		/* the pool's queue */
	struct completion_item finished;	/* the pool's way back to the loop */
};

struct worker_pool *worker_pool_new(struct event_base *base, int nthreads);
/*
 * A pool whose thread i hands ctx[i] to the jobs it runs (a connection
 * of its own, say); name is the threads' name.  The caller keeps ctx.
 */
struct worker_pool *worker_pool_new_ctx(struct event_base *base, int nthreads, const char *name,
    void *const *ctx);
void worker_submit(struct worker_pool *p, struct worker_job *job);
void worker_cancel(struct worker_job *job);
/* Finish queued jobs (their done() runs), stop the threads. */
void worker_pool_free(struct worker_pool **p);

#endif
