/*
 * writer.c - group commit.
 *
 * Daemons never wait for the store on their event loop.  They hand
 * requests to a writer, which takes everything queued since its last
 * round, opens one transaction, applies each request, and commits once:
 * one fsync for the whole batch.  A request that fails is rolled
 * back alone: in a savepoint of its own where the backend has them
 * (SQLite); else (PostgreSQL, where a batch's savepoints would overflow
 * the server's subtransaction cache) the batch runs again request by
 * request unless the failure wrote nothing.  Finished requests go
 * back to the loop through a completion queue; their callbacks run there.
 * If the commit itself fails, every request of that batch fails with the
 * error and nothing of it is visible; later batches are unaffected.
 *
 * What a request does is its own business (request.h): the writer only
 * calls its apply and, once the callback has run, its free.
 *
 * On SQLite several event loops share one thread, which waits for the
 * disk: each has a handle of its own (store_writer_attach) with its own
 * completion queue, and a request remembers the queue it came through,
 * so its answer wakes the loop that asked.  A batch wakes each loop once
 * at most.
 *
 * On PostgreSQL a commit waits for the server, not the disk, and every
 * loop has a writer of its own: a connection of the loop's, and batches
 * run one after another in a coroutine on the loop (lib/coro.h), the
 * same code as on the thread but waiting in coro_poll, so the loop serves
 * its sessions while a batch is at the server.  A batch gathers what the
 * loop's sessions submitted while the one before it was out, and its
 * callbacks run on the loop as soon as it is done.
 */
#include "store/request.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/coro.h"

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
	struct writer_thread *t;	/* NULL: a writer of the loop's own */
	struct completion_queue *done;	/* this handle's loop */
	int owner;			/* the first handle: stops the thread when freed */
	/* A writer of the loop's own (PostgreSQL): */
	struct store *s;
	struct coro *co;		/* runs one batch at a time */
	struct store_req *batch;	/* the one it runs */
	/* Submitted from any thread, as on the thread: */
	pthread_mutex_t lock;
	struct store_req *queue, **tail;
	int kicked;			/* kick is on its way to the loop */
	struct completion_item kick;
};

static void
writer_set_error(struct store_req *r, int status, const char *msg)
{
	r->status = status;
	snprintf(r->errmsg, sizeof(r->errmsg), "%s", msg);
}

/*
 * One batch with savepoints: a transaction around every request, each
 * in a savepoint.  A request's own failure undoes only its savepoint; a
 * failed BEGIN, RELEASE or COMMIT fails the whole batch.
 */
static void
writer_run_savepoints(struct store *s, struct store_req *batch)
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

/*
 * Without savepoints: every request of the list in one transaction.  A
 * request refused cleanly (it wrote nothing) fails alone; any other
 * failure rolls everything back and returns -1, with that request's
 * error set and s->retry saying whether trying again may pass.
 * Otherwise 0, each request's status final.
 */
static int
writer_run_whole(struct store *s, struct store_req *list)
{
	struct store_req *r;
	int status;

	s->retry = 0;
	if ((status = s->be->begin(s)) != STORE_OK) {
		for (r = list; r; r = r->next)
			writer_set_error(r, status, s->errmsg);
		return 0;
	}
	for (r = list; r; r = r->next) {
		s->clean = 0;
		if ((r->status = r->ops->apply(s, r)) == STORE_OK)
			continue;
		writer_set_error(r, r->status, s->errmsg);
		if (!s->clean) {
			int retry = s->retry;

			s->be->rollback(s);
			s->retry = retry;
			return -1;
		}
	}
	if ((status = s->be->commit(s)) != STORE_OK) {
		for (r = list; r; r = r->next)
			if (r->status == STORE_OK)
				writer_set_error(r, status, s->errmsg);
	}
	return 0;
}

/* The user rows the list's requests write, for locking them first. */
static int64_t *
writer_users(struct store_req *list, size_t *n)
{
	struct store_req *r;
	int64_t *v;
	size_t max = 0;

	for (r = list; r; r = r->next)
		max += r->ops->users ? r->ops->users(r, NULL, 0) : 0;
	v = xcalloc(max + 1, sizeof(*v));
	*n = 0;
	for (r = list; r; r = r->next)
		if (r->ops->users)
			*n += r->ops->users(r, v + *n, max - *n);
	return v;
}

/*
 * The batch committed without r's answer: its outcome, where its kind can
 * learn it from the store (a delivery, by its queue ID); else a temporary
 * error, stored or not (a client that sends again may store it twice).
 */
static void
writer_resolve(struct store *s, struct store_req *r)
{
	if (r->ops->resolve == NULL) {
		writer_set_error(r, STORE_ERROR, "the batch committed, but the answer to this"
		    " request was lost with the connection");
		return;
	}
	s->clean = 0;
	if ((r->status = r->ops->resolve(s, r)) != STORE_OK)
		writer_set_error(r, r->status, s->errmsg);
}

/*
 * writer_run_whole in one round trip: every request of the list, and
 * COMMIT, sent in the backend's pipeline before any answer is read.  The
 * same outcomes; and when the connection goes after COMMIT went out, a
 * batch that committed keeps it: the requests whose answers were read
 * have them, the others a temporary error (stored or not, their answers
 * are lost: a client that sends again may store a message twice, never
 * lose one).
 */
static int
writer_run_pipeline(struct store *s, struct store_req *list)
{
	struct store_req *r;
	size_t nusers;
	int64_t *users = writer_users(list, &nusers);
	int status, end, spoiled = 0, retry = 0;
	char why[sizeof(s->errmsg)];

	s->retry = 0;
	status = s->be->pipe_begin(s, users, nusers);
	free(users);
	if (status != STORE_OK) {
		for (r = list; r; r = r->next)
			writer_set_error(r, status, s->errmsg);
		return s->retry ? -1 : 0;
	}
	for (r = list; r && !spoiled; r = r->next) {
		s->clean = 0;
		if ((r->status = r->ops->send(s, r)) == STORE_OK)
			continue;
		writer_set_error(r, r->status, s->errmsg);
		spoiled = !s->clean;
	}
	if (spoiled) {
		s->be->pipe_end(s, 0);	/* COMMIT never went out */
		return -1;
	}
	/* Answers come for what was sent: requests still STORE_OK, in order. */
	if ((status = s->be->pipe_commit(s)) != STORE_OK) {
		snprintf(why, sizeof(why), "%s", s->errmsg);
		retry = s->retry;
		r = list;
	} else {
		for (r = list; r; r = r->next) {
			if (r->status != STORE_OK)
				continue;
			s->clean = 0;
			if ((r->status = r->ops->recv(s, r)) == STORE_OK)
				continue;
			writer_set_error(r, r->status, s->errmsg);
			if ((spoiled = !s->clean)) {
				r = r->next;	/* the first whose answer was not read */
				break;
			}
		}
	}
	if ((end = s->be->pipe_end(s, 1)) == STORE_OK) {
		for (; r; r = r->next)
			if (r->status == STORE_OK)
				writer_resolve(s, r);
		return 0;
	}
	if (spoiled)
		return -1;
	if (status == STORE_OK) {	/* COMMIT failed */
		status = end;
		snprintf(why, sizeof(why), "%s", s->errmsg);
		retry = s->retry;
	}
	for (r = list; r; r = r->next)
		if (r->status == STORE_OK)
			writer_set_error(r, status, why);
	s->retry = retry;
	return retry ? -1 : 0;
}

/* Tries of one transaction that met another's locks (a deadlock, say). */
#define WRITER_TRIES	4

/*
 * The list in one transaction, again after a short random wait while it
 * conflicts; in one round trip (pipe) if the backend and every request can.
 */
static int
writer_run_tries(struct store *s, struct store_req *list, int pipe)
{
	for (unsigned t = 1; ; t++) {
		if ((pipe ? writer_run_pipeline(s, list) : writer_run_whole(s, list)) == 0)
			return 0;
		if (!s->retry || t == WRITER_TRIES)
			return -1;
		coro_sleep((int)(1 + arc4random_uniform(10u << t)));
	}
}

/*
 * Without savepoints: the list whole, or when a request failed in a way
 * that spoils the transaction, each request in one of its own, so that
 * the failure is that request's alone.
 */
static void
writer_run_list(struct store *s, struct store_req *list, int pipe)
{
	struct store_req *r, *next;

	if (list == NULL || writer_run_tries(s, list, pipe) == 0 || list->next == NULL)
		return;
	for (r = list; r; r = next) {
		next = r->next;
		r->next = NULL;
		r->status = STORE_OK;
		r->errmsg[0] = '\0';
		writer_run_tries(s, r, pipe);
		r->next = next;
	}
}

/*
 * Run one batch; returns it, perhaps in another order.  A request that
 * may be dropped once cancelled, and was, is not run.  Without
 * savepoints, the requests that can go in one round trip go first, as
 * one transaction, and the others after them as another.
 */
static struct store_req *
writer_run_batch(struct store *s, struct store_req *batch)
{
	struct store_req *pipe = NULL, **pt = &pipe, *rest = NULL, **rt = &rest;
	struct store_req *gone = NULL, **gt = &gone, *r, *next;

	for (r = batch; r; r = next) {
		next = r->next;
		r->next = NULL;
		if (r->ops->drop_cancelled &&
		    atomic_load_explicit(&r->cancelled, memory_order_relaxed)) {
			writer_set_error(r, STORE_ERROR, "cancelled");
			*gt = r;
			gt = &r->next;
		} else if (!s->be->savepoint && s->be->pipe_begin && r->ops->send) {
			*pt = r;
			pt = &r->next;
		} else {
			*rt = r;
			rt = &r->next;
		}
	}
	if (s->be->savepoint && rest)
		writer_run_savepoints(s, rest);
	else if (!s->be->savepoint) {
		writer_run_list(s, pipe, 1);
		writer_run_list(s, rest, 0);
	}
	*rt = gone;
	*pt = rest;
	return pipe;
}

/* Up to WRITER_BATCH_MAX requests off the list; the rest wait for the next round. */
static struct store_req *
writer_take(struct store_req **list, struct store_req ***tail)
{
	struct store_req *batch = *list, *r, **end = &batch;
	size_t n = 0;

	for (r = batch; r && n < WRITER_BATCH_MAX; r = r->next, n++)
		end = &r->next;
	*list = *end;
	*end = NULL;
	if (*list == NULL)
		*tail = list;
	return batch;
}

static void *
writer_main(void *arg)
{
	struct writer_thread *w = arg;

	for (;;) {
		struct store_req *batch, *r, *next;

		pthread_mutex_lock(&w->lock);
		while (w->pending == NULL && !w->stop)
			pthread_cond_wait(&w->wake, &w->lock);
		if (w->pending == NULL && w->stop) {
			pthread_mutex_unlock(&w->lock);
			break;
		}
		batch = writer_take(&w->pending, &w->pending_tail);
		pthread_mutex_unlock(&w->lock);

		batch = writer_run_batch(w->s, batch);

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

/* ---- a writer of the loop's own ---- */

static void loop_writer_next(struct store_writer *w);

/* In the coroutine. */
static void
loop_writer_run(void *arg)
{
	struct store_writer *w = arg;

	w->batch = writer_run_batch(w->s, w->batch);
}

/* On the loop's stack, the batch done: its callbacks, then the next batch. */
static void
loop_writer_done(void *arg)
{
	struct store_writer *w = arg;
	struct store_req *r = w->batch, *next;

	w->batch = NULL;
	for (; r; r = next) {
		next = r->next;
		writer_finished(&r->finished);
	}
	loop_writer_next(w);
}

static void
loop_writer_next(struct store_writer *w)
{
	if (w->batch != NULL || coro_busy(w->co))
		return;
	pthread_mutex_lock(&w->lock);
	w->batch = writer_take(&w->queue, &w->tail);
	pthread_mutex_unlock(&w->lock);
	if (w->batch)
		coro_start(w->co, loop_writer_run, loop_writer_done, w);
}

/* On the loop, once per submission that found the writer without a kick on its way. */
static void
loop_writer_kicked(struct completion_item *item)
{
	struct store_writer *w = COMPLETION_OWNER(item, struct store_writer, kick);

	pthread_mutex_lock(&w->lock);
	w->kicked = 0;
	pthread_mutex_unlock(&w->lock);
	loop_writer_next(w);
}

static int
loop_writer_new(const struct store_config *cfg, struct event_base *base,
    struct store_writer **out, char *err, size_t errlen)
{
	struct store_writer *w;
	int status;

	if ((w = writer_handle_new(NULL, base, 0)) == NULL) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return STORE_ERROR;
	}
	if ((status = store_open(cfg, 0, &w->s, err, errlen)) != STORE_OK) {
		completion_queue_free(&w->done);
		free(w);
		return status;
	}
	w->co = coro_new(base);
	pthread_mutex_init(&w->lock, NULL);
	w->kick.fn = loop_writer_kicked;
	w->tail = &w->queue;
	*out = w;
	return STORE_OK;
}

/*
 * Every batch submitted, to its end and its callbacks; the loop need not
 * run.  Past the deadline, how many requests are left.
 */
static unsigned
loop_writer_finish(struct store_writer *w, int64_t deadline)
{
	struct store_req *r;
	unsigned n = 0;

	for (;;) {
		completion_run(w->done);	/* a kick, refusals: they may submit more */
		loop_writer_next(w);
		if (w->batch == NULL)
			return 0;
		if (coro_run_out(w->co, deadline) != 0)	/* each batch's end starts the next */
			break;
	}
	for (r = w->batch; r; r = r->next)
		n++;
	pthread_mutex_lock(&w->lock);
	for (r = w->queue; r; r = r->next)
		n++;
	pthread_mutex_unlock(&w->lock);
	return n;
}

static void
loop_writer_free(struct store_writer *w)
{
	loop_writer_finish(w, -1);
	pthread_mutex_destroy(&w->lock);
	coro_free(&w->co);
	store_close(&w->s);
}

/* ---- the writer thread ---- */

int
store_writer_new(const struct store_config *cfg, struct event_base *base,
    struct store_writer **out, char *err, size_t errlen)
{
	struct writer_thread *t;
	int status;

	if (cfg->backend == STORE_BACKEND_POSTGRESQL)
		return loop_writer_new(cfg, base, out, err, errlen);
	t = xcalloc(1, sizeof(*t));
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
store_writer_attach(struct store_writer *w, const struct store_config *cfg,
    struct event_base *base, struct store_writer **out, char *err, size_t errlen)
{
	if (w->t == NULL)
		return loop_writer_new(cfg, base, out, err, errlen);
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
	if (t == NULL) {
		int kick;

		pthread_mutex_lock(&w->lock);
		*w->tail = r;
		w->tail = &r->next;
		kick = !w->kicked;
		w->kicked = 1;
		pthread_mutex_unlock(&w->lock);
		if (kick)
			completion_post(w->done, &w->kick);
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

unsigned
store_writer_finish(struct store_writer *w, int64_t deadline)
{
	return w && w->t == NULL ? loop_writer_finish(w, deadline) : 0;
}

void
store_writer_free(struct store_writer **wp)
{
	struct store_writer *w = *wp;

	if (w == NULL)
		return;
	if (w->t == NULL)
		loop_writer_free(w);
	else if (w->owner)
		writer_thread_stop(w->t);
	completion_queue_free(&w->done);
	free(w);
	*wp = NULL;
}
