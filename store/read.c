/*
 * read.c - a loop's reads: at once on the loop's own connection (SQLite),
 * or one after another in a coroutine on the loop, with a reader
 * connection of the loop's (PostgreSQL).
 *
 * A read submitted on PostgreSQL never starts inside store_read_submit:
 * its owner learns of it only once the call has returned.  It starts on
 * the loop's next turn, or as soon as the read before it has ended.
 */
#include "store/backend.h"

#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "lib/coro.h"

struct store_readers {
	struct store *store;		/* the loop's (SQLite) or our own (PostgreSQL) */
	int own;
	/* PostgreSQL: */
	struct coro *coro;		/* where reads run, one at a time */
	struct event *kick;		/* starts the queue's first on the loop's turn */
	struct store_read *running, *queue, **tail;
};

static void
read_run(void *arg)
{
	struct store_readers *rd = arg;
	struct store_read *r = rd->running;

	if (!r->cancelled)
		r->work(rd->store, r);
}

static void read_next(struct store_readers *rd);

/* On the loop's own stack, the coroutine idle again. */
static void
read_finished(void *arg)
{
	struct store_readers *rd = arg;
	struct store_read *r = rd->running;

	rd->running = NULL;
	r->done(r, r->cancelled);	/* may free r, and submit more */
	read_next(rd);
}

static void
read_next(struct store_readers *rd)
{
	struct store_read *r = rd->queue;

	if (r == NULL || rd->running != NULL || coro_busy(rd->coro))
		return;
	if ((rd->queue = r->next) == NULL)
		rd->tail = &rd->queue;
	rd->running = r;
	coro_start(rd->coro, read_run, read_finished, rd);
}

static void
read_kick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	read_next(arg);
}

int
store_readers_new(const struct store_config *cfg, struct event_base *base,
    struct store *loop_store, struct store_readers **out, char *err, size_t errlen)
{
	struct store_readers *rd = xcalloc(1, sizeof(*rd));
	int status;

	*out = NULL;
	if (cfg->backend == STORE_BACKEND_SQLITE) {
		rd->store = loop_store;
		*out = rd;
		return STORE_OK;
	}
	if ((status = store_open(cfg, 0, &rd->store, err, errlen)) != STORE_OK) {
		free(rd);
		return status;
	}
	rd->own = 1;
	rd->coro = coro_new(base);
	rd->kick = event_new(base, -1, 0, read_kick, rd);
	rd->tail = &rd->queue;
	*out = rd;
	return STORE_OK;
}

unsigned
store_readers_finish(struct store_readers *rd, int64_t deadline)
{
	unsigned n = 1;		/* the one running */

	if (rd == NULL || rd->coro == NULL)
		return 0;
	read_next(rd);
	while (coro_busy(rd->coro))	/* each read's end starts the next */
		if (coro_run_out(rd->coro, deadline) != 0) {
			for (struct store_read *r = rd->queue; r; r = r->next)
				n++;
			return n;
		}
	return 0;
}

void
store_readers_free(struct store_readers **rdp)
{
	struct store_readers *rd = *rdp;

	if (rd == NULL)
		return;
	if (rd->coro) {
		store_readers_finish(rd, -1);
		event_free(rd->kick);
		coro_free(&rd->coro);
	}
	if (rd->own)
		store_close(&rd->store);
	free(rd);
	*rdp = NULL;
}

int
store_read_submit(struct store_readers *rd, struct store_read *r)
{
	r->now = 0;
	r->cancelled = 0;
	r->next = NULL;
	if (rd->coro == NULL) {
		r->now = 1;
		r->work(rd->store, r);
		r->done(r, 0);
		return 1;
	}
	*rd->tail = r;
	rd->tail = &r->next;
	if (rd->running == NULL)
		event_active(rd->kick, 0, 0);
	return 0;
}

void
store_read_cancel(struct store_read *r)
{
	if (!r->now)
		r->cancelled = 1;
}
