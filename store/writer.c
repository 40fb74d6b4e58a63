/*
 * writer.c - group commit.
 *
 * Daemons never write to the store on their event loop.  They hand
 * requests to a writer thread, which takes everything queued since its
 * last round, opens one BEGIN IMMEDIATE transaction, applies each request
 * inside its own savepoint (a request that fails is rolled back alone),
 * and commits once: one fsync for the whole batch.  Finished requests go
 * back to the loop through a completion queue; their callbacks run there.
 * If the commit itself fails, every request of that batch fails with the
 * error and nothing of it is visible; later batches are unaffected.
 *
 * What a request does is its own business (request.h): the writer only
 * calls its apply and, once the callback has run, its free.
 */
#include "store/request.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WRITER_BATCH_MAX	1024

struct store_writer {
	struct store *s;		/* the writer thread's own connection */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct store_req *pending, **pending_tail;
	struct completion_queue *done;
	int stop;
};

static void
writer_set_error(struct store_req *r, int status, const char *msg)
{
	r->status = status;
	snprintf(r->errmsg, sizeof(r->errmsg), "%s", msg);
}

/*
 * One batch: a transaction around every request, each in a savepoint.
 * A request's own failure undoes only its savepoint; a failed BEGIN,
 * RELEASE or COMMIT fails the whole batch.
 */
static void
writer_run_batch(struct store *s, struct store_req *batch)
{
	struct store_req *r;
	int status;

	if ((status = s->be->begin(s)) != STORE_OK) {
		for (r = batch; r; r = r->next)
			writer_set_error(r, status, s->errmsg);
		return;
	}
	for (r = batch; r; r = r->next) {
		if ((status = s->be->savepoint(s)) != STORE_OK)
			break;
		r->status = r->ops->apply(s, r);
		if (r->status != STORE_OK)
			writer_set_error(r, r->status, s->errmsg);
		if ((status = s->be->release(s, r->status == STORE_OK)) != STORE_OK)
			break;
	}
	if (status == STORE_OK)
		status = s->be->commit(s);
	else
		s->be->rollback(s);
	if (status != STORE_OK) {
		for (r = batch; r; r = r->next)
			if (r->status == STORE_OK)
				writer_set_error(r, status, s->errmsg);
	}
}

static void *
writer_main(void *arg)
{
	struct store_writer *w = arg;

	for (;;) {
		struct store_req *batch, *r, *next, **tail;
		size_t n = 0;

		pthread_mutex_lock(&w->lock);
		while (w->pending == NULL && !w->stop)
			pthread_cond_wait(&w->wake, &w->lock);
		if (w->pending == NULL && w->stop) {
			pthread_mutex_unlock(&w->lock);
			break;
		}
		/* Take up to WRITER_BATCH_MAX requests; the rest wait for the next round. */
		batch = w->pending;
		tail = &batch;
		for (r = batch; r && n < WRITER_BATCH_MAX; r = r->next, n++)
			tail = &r->next;
		w->pending = *tail;
		*tail = NULL;
		if (w->pending == NULL)
			w->pending_tail = &w->pending;
		pthread_mutex_unlock(&w->lock);

		writer_run_batch(w->s, batch);

		/* Once posted, a request may be freed by the loop: read next first. */
		for (r = batch; r; r = next) {
			next = r->next;
			completion_post(w->done, &r->finished);
		}
	}
	return NULL;
}

/* A finished request, on the loop's thread: its callback, then it is freed. */
static void
writer_finished(struct completion_item *item)
{
	struct store_req *r = COMPLETION_OWNER(item, struct store_req, finished);

	if (r->cb)
		r->cb(r, r->arg);
	r->ops->free(r);
}

int
store_writer_new(const char *path, struct event_base *base,
    struct store_writer **out, char *err, size_t errlen)
{
	struct store_writer *w = xcalloc(1, sizeof(*w));
	int status;

	if ((status = store_open(path, 0, &w->s, err, errlen)) != STORE_OK) {
		free(w);
		return status;
	}
	w->pending_tail = &w->pending;
	if ((w->done = completion_queue_new(base)) == NULL) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		store_close(&w->s);
		free(w);
		return STORE_ERROR;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0)
		fatal("store: cannot start the writer thread");
	*out = w;
	return STORE_OK;
}

/*
 * Queue a request for the next batch.  One that already failed (it
 * could not be made whole) skips the store: its callback runs on the
 * loop's next turn, never from inside this call.
 */
void
store_writer_submit(struct store_writer *w, struct store_req *r)
{
	r->next = NULL;
	r->finished.fn = writer_finished;
	if (r->status != STORE_OK) {
		completion_post(w->done, &r->finished);
		return;
	}
	pthread_mutex_lock(&w->lock);
	*w->pending_tail = r;
	w->pending_tail = &r->next;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
}

void
store_writer_free(struct store_writer **wp)
{
	struct store_writer *w = *wp;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = 1;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	completion_queue_free(&w->done);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->wake);
	store_close(&w->s);
	free(w);
	*wp = NULL;
}
