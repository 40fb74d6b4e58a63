/*
 * read.c - a loop's reads, run at once (SQLite) or on reader threads with
 * connections of their own (PostgreSQL).
 */
#include "store/backend.h"

#include <stdio.h>
#include <stdlib.h>

struct store_readers {
	struct store *inline_store;	/* SQLite: the loop's connection */
	struct worker_pool *pool;	/* PostgreSQL */
	struct store **stores;		/* the threads' connections */
	unsigned n;
};

static void
read_work(struct worker_job *job)
{
	struct store_read *r = COMPLETION_OWNER(job, struct store_read, job);

	r->work(job->ctx, r);
}

static void
read_done(struct worker_job *job, int cancelled)
{
	struct store_read *r = COMPLETION_OWNER(job, struct store_read, job);

	r->done(r, cancelled);
}

int
store_readers_new(const struct store_config *cfg, struct event_base *base,
    struct store *loop_store, unsigned nthreads, struct store_readers **out, char *err,
    size_t errlen)
{
	struct store_readers *rd = xcalloc(1, sizeof(*rd));
	int status;

	*out = NULL;
	if (cfg->backend == STORE_BACKEND_SQLITE) {
		rd->inline_store = loop_store;
		*out = rd;
		return STORE_OK;
	}
	rd->stores = xcalloc(nthreads, sizeof(*rd->stores));
	for (rd->n = 0; rd->n < nthreads; rd->n++) {
		status = store_open(cfg, 0, &rd->stores[rd->n], err, errlen);
		if (status != STORE_OK) {
			store_readers_free(&rd);
			return status;
		}
	}
	rd->pool = worker_pool_new_ctx(base, (int)nthreads, "store reader", (void *const *)rd->stores);
	*out = rd;
	return STORE_OK;
}

void
store_readers_free(struct store_readers **rdp)
{
	struct store_readers *rd = *rdp;

	if (rd == NULL)
		return;
	worker_pool_free(&rd->pool);
	for (unsigned i = 0; i < rd->n; i++)
		store_close(&rd->stores[i]);
	free(rd->stores);
	free(rd);
	*rdp = NULL;
}

int
store_read_submit(struct store_readers *rd, struct store_read *r)
{
	r->now = 0;
	if (rd->pool == NULL) {
		r->now = 1;
		r->work(rd->inline_store, r);
		r->done(r, 0);
		return 1;
	}
	r->job.work = read_work;
	r->job.done = read_done;
	worker_submit(rd->pool, &r->job);
	return 0;
}

void
store_read_cancel(struct store_read *r)
{
	if (!r->now)
		worker_cancel(&r->job);
}
