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
 *
 * Several event loops share one thread: each has a handle of its own
 * (store_writer_attach) with its own completion queue, and a request
 * remembers the queue it came through, so its answer wakes the loop that
 * asked.  A batch wakes each loop once at most.
 */
#include "store/request.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WRITER_BATCH_MAX	1024

/* The thread and its pending requests, shared by every handle. */
struct writer_thread {
	struct store *s;		/* the writer thread's own connection */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct store_req *pending, **pending_tail;
	int stop;
};

struct store_writer {
	struct writer_thread *t;
	struct completion_queue *done;	/* this handle's loop */
	int owner;			/* the first handle: stops the thread when freed */
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
	struct writer_thread *w = arg;

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
			completion_post(r->done, &r->finished);
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

static struct store_writer *
writer_handle_new(struct writer_thread *t, struct event_base *base, int owner)
{
	struct store_writer *w = xcalloc(1, sizeof(*w));

	if ((w->done = completion_queue_new(base)) == NULL) {
		free(w);
		return NULL;
	}
	w->t = t;
	w->owner = owner;
	return w;
}

int
store_writer_new(const struct store_config *cfg, struct event_base *base,
    struct store_writer **out, char *err, size_t errlen)
{
	struct writer_thread *t = xcalloc(1, sizeof(*t));
	int status;

	if ((status = store_open(cfg, 0, &t->s, err, errlen)) != STORE_OK) {
		free(t);
		return status;
	}
	t->pending_tail = &t->pending;
	if ((*out = writer_handle_new(t, base, 1)) == NULL) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		store_close(&t->s);
		free(t);
		return STORE_ERROR;
	}
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->wake, NULL);
	if (pthread_create(&t->thread, NULL, writer_main, t) != 0)
		fatal("store: cannot start the writer thread");
	pthread_setname_np(t->thread, "store writer");
	return STORE_OK;
}

int
store_writer_attach(struct store_writer *w, struct event_base *base,
    struct store_writer **out, char *err, size_t errlen)
{
	if ((*out = writer_handle_new(w->t, base, 0)) == NULL) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return STORE_ERROR;
	}
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
	struct writer_thread *t = w->t;

	r->next = NULL;
	r->finished.fn = writer_finished;
	r->done = w->done;
	if (r->status != STORE_OK) {
		completion_post(w->done, &r->finished);
		return;
	}
	pthread_mutex_lock(&t->lock);
	*t->pending_tail = r;
	t->pending_tail = &r->next;
	pthread_cond_signal(&t->wake);
	pthread_mutex_unlock(&t->lock);
}

/* The first handle's free finishes the thread's work and stops it. */
static void
writer_thread_stop(struct writer_thread *t)
{
	pthread_mutex_lock(&t->lock);
	t->stop = 1;
	pthread_cond_signal(&t->wake);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->wake);
	store_close(&t->s);
	free(t);
}

void
store_writer_free(struct store_writer **wp)
{
	struct store_writer *w = *wp;

	if (w == NULL)
		return;
	if (w->owner)
		writer_thread_stop(w->t);
	completion_queue_free(&w->done);
	free(w);
	*wp = NULL;
}
