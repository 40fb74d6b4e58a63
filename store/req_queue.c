/*
 * req_queue.c - the queue runner's writer requests: claim due rows,
 * renew the claims of rows being delivered, report attempts, deliver a
 * full mailbox's row once it has room.  Each
 * does what its synchronous store_queue_* twin does, with the time taken
 * when the writer applies it.
 */
#include "store/request.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct req_queue {
	struct store_req base;		/* first */
	char *owner;
	/* claim */
	unsigned lease;
	size_t max;
	struct store_queue_entry *claimed;
	size_t nclaimed;
	/* report */
	struct store_retry retry;
	struct store_attempt *attempts;
	size_t nattempts;
	/* deliver local */
	int64_t id;
	/* renew */
	int64_t *ids;
	size_t nids;
};

static void
req_queue_free(struct store_req *base)
{
	struct req_queue *r = (struct req_queue *)base;

	store_queue_list_free(&r->claimed, r->nclaimed);
	for (size_t i = 0; i < r->nattempts; i++)
		free((char *)r->attempts[i].error);
	free(r->attempts);
	free(r->ids);
	free(r->owner);
	free(r);
}

static int
req_claim_apply(struct store *s, struct store_req *base)
{
	struct req_queue *r = (struct req_queue *)base;

	/* apply runs once; starting from nothing keeps the list from ever leaking. */
	store_queue_list_free(&r->claimed, r->nclaimed);
	r->nclaimed = 0;
	return s->be->queue_claim(s, r->owner, (int64_t)time(NULL), r->lease, r->max,
	    &r->claimed, &r->nclaimed);
}

static int
req_report_apply(struct store *s, struct store_req *base)
{
	struct req_queue *r = (struct req_queue *)base;

	return s->be->queue_report(s, r->owner, (int64_t)time(NULL), &r->retry, r->attempts,
	    r->nattempts);
}

static int
req_local_apply(struct store *s, struct store_req *base)
{
	struct req_queue *r = (struct req_queue *)base;

	return s->be->queue_deliver_local(s, r->id, r->owner, (int64_t)time(NULL));
}

static int
req_renew_apply(struct store *s, struct store_req *base)
{
	struct req_queue *r = (struct req_queue *)base;

	return s->be->queue_renew(s, r->owner, r->ids, r->nids,
	    (int64_t)time(NULL) + (int64_t)r->lease);
}

static const struct store_req_ops req_renew_ops = {
	.name = "queue renew",
	.apply = req_renew_apply,
	.free = req_queue_free,
};

static const struct store_req_ops req_claim_ops = {
	.name = "queue claim",
	.apply = req_claim_apply,
	.free = req_queue_free,
};

static const struct store_req_ops req_report_ops = {
	.name = "queue report",
	.apply = req_report_apply,
	.free = req_queue_free,
};

static const struct store_req_ops req_local_ops = {
	.name = "queue deliver local",
	.apply = req_local_apply,
	.free = req_queue_free,
};

static struct req_queue *
req_queue_new(const struct store_req_ops *ops, const char *owner, store_req_cb *cb, void *arg)
{
	struct req_queue *r = xcalloc(1, sizeof(*r));

	store_req_init(&r->base, ops, cb, arg);
	r->owner = owner ? xstrdup(owner) : NULL;
	return r;
}

struct store_req *
store_req_queue_claim(const char *owner, unsigned lease, size_t max, store_req_cb *cb,
    void *arg)
{
	struct req_queue *r = req_queue_new(&req_claim_ops, owner, cb, arg);

	r->lease = lease;
	r->max = max;
	return &r->base;
}

/*
 * Hand the claimed rows over; a request that failed claimed nothing
 * (its transaction was rolled back, even if apply had filled the list).
 */
void
store_req_queue_claimed(struct store_req *req, struct store_queue_entry **out, size_t *n)
{
	struct req_queue *r = (struct req_queue *)req;

	*out = NULL;
	*n = 0;
	if (req->ops != &req_claim_ops || req->status != STORE_OK)
		return;
	*out = r->claimed;
	*n = r->nclaimed;
	r->claimed = NULL;
	r->nclaimed = 0;
}

struct store_req *
store_req_queue_report(const char *owner, const struct store_retry *retry,
    const struct store_attempt *v, size_t n, store_req_cb *cb, void *arg)
{
	struct req_queue *r = req_queue_new(&req_report_ops, owner, cb, arg);

	r->retry = *retry;
	r->attempts = xreallocarray(NULL, n ? n : 1, sizeof(*v));
	r->nattempts = n;
	for (size_t i = 0; i < n; i++) {
		r->attempts[i] = v[i];
		r->attempts[i].error = v[i].error ? xstrdup(v[i].error) : NULL;
		r->attempts[i].status = STORE_OK;
		r->attempts[i].failed = 0;
	}
	return &r->base;
}

const struct store_attempt *
store_req_queue_attempts(const struct store_req *req, size_t *n)
{
	const struct req_queue *r = (const struct req_queue *)req;

	if (req->ops != &req_report_ops) {
		*n = 0;
		return NULL;
	}
	*n = r->nattempts;
	return r->attempts;
}

struct store_req *
store_req_queue_deliver_local(int64_t id, const char *owner, store_req_cb *cb, void *arg)
{
	struct req_queue *r = req_queue_new(&req_local_ops, owner, cb, arg);

	r->id = id;
	return &r->base;
}

struct store_req *
store_req_queue_renew(const char *owner, const int64_t *ids, size_t n, unsigned lease,
    store_req_cb *cb, void *arg)
{
	struct req_queue *r = req_queue_new(&req_renew_ops, owner, cb, arg);

	r->ids = xreallocarray(NULL, n ? n : 1, sizeof(*ids));
	memcpy(r->ids, ids, n * sizeof(*ids));
	r->nids = n;
	r->lease = lease;
	return &r->base;
}
