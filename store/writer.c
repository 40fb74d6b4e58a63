/*
 * writer.c - group commit.
 *
 * Daemons never write to the store on their event loop.  They hand
 * requests to a writer thread, which takes everything queued since its
 * last round, opens one BEGIN IMMEDIATE transaction, applies each request
 * inside its own savepoint (a request that fails is rolled back alone),
 * and commits once: one fsync for the whole batch.  Finished requests go
 * back to the loop through a completion queue; their callbacks run there.  If the
 * commit itself fails, every request of that batch fails with the error
 * and nothing of it is visible; later batches are unaffected.
 */
#include "store/backend.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/completion.h"

#define WRITER_BATCH_MAX	1024

enum req_type { REQ_DELIVER, REQ_MAILBOX, REQ_LOCK };

struct store_req {
	enum req_type type;
	store_req_cb *cb;		/* NULL once cancelled */
	void *arg;
	int status;
	char errmsg[512];
	struct store_req *next;
	struct completion_item finished;

	/* REQ_DELIVER: owned copies of the caller's delivery. */
	struct store_delivery d;
	struct store_rcpt_local *local;
	char **remote;
	void *data;
	struct store_delivery_result res;

	/* REQ_MAILBOX: delete, mark seen, unlock (owner set); REQ_LOCK: take the lock */
	int64_t user_id;
	int64_t *uids;
	size_t nuids;
	int64_t *seen;
	size_t nseen;
	char *owner;
	unsigned lease;
};

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
writer_req_free(struct store_req *r)
{
	for (size_t i = 0; i < r->d.nlocal; i++)
		free((char *)r->local[i].prefix);
	free(r->local);
	for (size_t i = 0; i < r->d.nremote; i++)
		free(r->remote[i]);
	free(r->remote);
	free((char *)r->d.sender);
	free((char *)r->d.qid);
	free(r->data);
	if (r->d.fd >= 0)
		close(r->d.fd);
	free(r->uids);
	free(r->seen);
	free(r->owner);
	free(r);
}

struct store_req *
store_req_deliver(const struct store_delivery *d, store_req_cb *cb, void *arg)
{
	struct store_req *r = xcalloc(1, sizeof(*r));

	r->type = REQ_DELIVER;
	r->cb = cb;
	r->arg = arg;
	r->d = *d;
	r->d.sender = xstrdup(d->sender ? d->sender : "");
	r->d.qid = d->qid ? xstrdup(d->qid) : NULL;
	r->d.fd = -1;
	if (d->fd >= 0) {
		r->d.fd = fcntl(d->fd, F_DUPFD_CLOEXEC, 0);
		if (r->d.fd < 0)
			fatal("store: dup of a spool file failed: %s", strerror(errno));
	} else if (d->len > 0) {
		r->data = xmalloc(d->len);
		memcpy(r->data, d->data, d->len);
	}
	r->d.data = r->data;
	r->local = xcalloc(d->nlocal, sizeof(*r->local));
	for (size_t i = 0; i < d->nlocal; i++) {
		r->local[i].user_id = d->local[i].user_id;
		r->local[i].prefix = d->local[i].prefix ? xstrdup(d->local[i].prefix) : NULL;
	}
	r->d.local = r->local;
	r->remote = xcalloc(d->nremote, sizeof(*r->remote));
	for (size_t i = 0; i < d->nremote; i++)
		r->remote[i] = xstrdup(d->remote[i]);
	r->d.remote = (const char *const *)r->remote;
	return r;
}

static int64_t *
copy_ids(const int64_t *v, size_t n)
{
	int64_t *c = xreallocarray(NULL, n, sizeof(*v));

	if (n)
		memcpy(c, v, n * sizeof(*v));
	return c;
}

struct store_req *
store_req_pop3_quit(int64_t user_id, const char *owner, const int64_t *del, size_t ndel,
    const int64_t *seen, size_t nseen, store_req_cb *cb, void *arg)
{
	struct store_req *r = xcalloc(1, sizeof(*r));

	r->type = REQ_MAILBOX;
	r->cb = cb;
	r->arg = arg;
	r->d.fd = -1;
	r->user_id = user_id;
	r->uids = copy_ids(del, ndel);
	r->nuids = ndel;
	r->seen = copy_ids(seen, nseen);
	r->nseen = nseen;
	r->owner = owner ? xstrdup(owner) : NULL;
	return r;
}

struct store_req *
store_req_delete(int64_t user_id, const int64_t *uids, size_t n, store_req_cb *cb, void *arg)
{
	return store_req_pop3_quit(user_id, NULL, uids, n, NULL, 0, cb, arg);
}

struct store_req *
store_req_pop3_lock(int64_t user_id, const char *owner, unsigned lease_seconds,
    store_req_cb *cb, void *arg)
{
	struct store_req *r = store_req_pop3_quit(user_id, owner, NULL, 0, NULL, 0, cb, arg);

	r->type = REQ_LOCK;
	r->lease = lease_seconds;
	return r;
}

void
store_req_cancel(struct store_req *r)
{
	r->cb = NULL;
}

int
store_req_status(const struct store_req *r)
{
	return r->status;
}

const char *
store_req_errmsg(const struct store_req *r)
{
	return r->errmsg;
}

const struct store_delivery_result *
store_req_delivery(const struct store_req *r)
{
	return &r->res;
}

static int
writer_apply(struct store *s, struct store_req *r)
{
	switch (r->type) {
	case REQ_DELIVER:
		memset(&r->res, 0, sizeof(r->res));
		return s->be->deliver(s, &r->d, &r->res);
	case REQ_MAILBOX: {
		int st = s->be->entries_delete(s, r->user_id, r->uids, r->nuids);

		for (size_t i = 0; i < r->nseen && st == STORE_OK; i++) {
			st = s->be->entry_set_flags(s, r->user_id, r->seen[i], STORE_FLAG_SEEN);
			if (st == STORE_NOTFOUND)	/* deleted meanwhile (umboxctl mail del) */
				st = STORE_OK;
		}
		if (st == STORE_OK && r->owner)
			st = s->be->pop3_unlock(s, r->user_id, r->owner, NULL);
		return st;
	}
	case REQ_LOCK:
		return s->be->pop3_lock(s, r->user_id, r->owner, (int64_t)time(NULL), r->lease);
	}
	return STORE_INVALID;
}

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
		r->status = writer_apply(s, r);
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
	writer_req_free(r);
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

void
store_writer_submit(struct store_writer *w, struct store_req *r)
{
	r->next = NULL;
	r->finished.fn = writer_finished;
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
