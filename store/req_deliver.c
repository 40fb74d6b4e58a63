/*
 * req_deliver.c - the writer request that deposits one message: in local
 * mailboxes and in the queue, as store_deliver() does.
 */
#include "store/request.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct req_deliver {
	struct store_req base;		/* first */
	struct store_delivery d;	/* points into the owned copies below */
	struct store_rcpt_local *local;
	char **remote;
	int64_t *consume;
	void *data;
	struct store_delivery_result res;
};

static int
req_deliver_apply(struct store *s, struct store_req *base)
{
	struct req_deliver *r = (struct req_deliver *)base;

	store_delivery_result_clear(&r->res);
	memset(&r->res, 0, sizeof(r->res));
	return s->be->deliver(s, &r->d, &r->res);
}

static int
req_deliver_send(struct store *s, struct store_req *base)
{
	struct req_deliver *r = (struct req_deliver *)base;

	store_delivery_result_clear(&r->res);
	memset(&r->res, 0, sizeof(r->res));
	return s->be->deliver_send(s, &r->d);
}

static int
req_deliver_recv(struct store *s, struct store_req *base)
{
	struct req_deliver *r = (struct req_deliver *)base;

	return s->be->deliver_recv(s, &r->d, &r->res);
}

static int
req_deliver_resolve(struct store *s, struct store_req *base)
{
	struct req_deliver *r = (struct req_deliver *)base;

	if (s->be->deliver_resolve == NULL || r->d.qid == NULL)
		return store_fail(s, STORE_ERROR, "the batch committed, but the answer to this"
		    " delivery was lost with the connection");
	return s->be->deliver_resolve(s, &r->d, &r->res);
}

static size_t
req_deliver_users(const struct store_req *base, int64_t *out, size_t max)
{
	const struct req_deliver *r = (const struct req_deliver *)base;
	size_t n = 0;

	if (out == NULL)
		return r->d.nlocal;
	for (size_t i = 0; i < r->d.nlocal && n < max; i++)
		out[n++] = r->d.local[i].user_id;
	return n;
}

static void
req_deliver_free(struct store_req *base)
{
	struct req_deliver *r = (struct req_deliver *)base;

	for (size_t i = 0; i < r->d.nlocal; i++) {
		free((char *)r->local[i].prefix);
		free((char *)r->local[i].address);
	}
	free(r->local);
	store_delivery_result_clear(&r->res);
	for (size_t i = 0; i < r->d.nremote; i++)
		free(r->remote[i]);
	free(r->remote);
	free(r->consume);
	free((char *)r->d.sender);
	free((char *)r->d.qid);
	free(r->data);
	if (r->d.fd >= 0)
		close(r->d.fd);
	free(r);
}

static const struct store_req_ops req_deliver_ops = {
	.name = "deliver",
	.apply = req_deliver_apply,
	.send = req_deliver_send,
	.recv = req_deliver_recv,
	.resolve = req_deliver_resolve,
	.users = req_deliver_users,
	.drop_cancelled = 1,
	.free = req_deliver_free,
};

/*
 * Copy everything of d the request needs, so the caller may go away.  A
 * spool file is duplicated, not read: a descriptor limit (EMFILE) then
 * fails this one request with a temporary error, through its callback.
 */
struct store_req *
store_req_deliver(const struct store_delivery *d, store_req_cb *cb, void *arg)
{
	struct req_deliver *r = xcalloc(1, sizeof(*r));

	store_req_init(&r->base, &req_deliver_ops, cb, arg);
	r->d = *d;
	r->d.sender = xstrdup(d->sender ? d->sender : "");
	r->d.qid = d->qid ? xstrdup(d->qid) : NULL;
	r->d.fd = -1;
	r->d.data = NULL;
	if (d->fd >= 0) {
		r->d.fd = fcntl(d->fd, F_DUPFD_CLOEXEC, 0);
		if (r->d.fd < 0)
			store_req_fail(&r->base, STORE_ERROR,
			    "cannot keep the spooled message: %s", strerror(errno));
	} else if (d->len > 0) {
		r->data = xmalloc(d->len);
		memcpy(r->data, d->data, d->len);
		r->d.data = r->data;
	}
	r->local = xcalloc(d->nlocal, sizeof(*r->local));
	for (size_t i = 0; i < d->nlocal; i++) {
		r->local[i].user_id = d->local[i].user_id;
		r->local[i].prefix = d->local[i].prefix ? xstrdup(d->local[i].prefix) : NULL;
		r->local[i].address = d->local[i].address ? xstrdup(d->local[i].address) : NULL;
	}
	r->d.local = r->local;
	r->remote = xcalloc(d->nremote, sizeof(*r->remote));
	for (size_t i = 0; i < d->nremote; i++)
		r->remote[i] = xstrdup(d->remote[i]);
	r->d.remote = (const char *const *)r->remote;
	r->consume = xcalloc(d->nconsume ? d->nconsume : 1, sizeof(*r->consume));
	if (d->nconsume)
		memcpy(r->consume, d->consume, d->nconsume * sizeof(*r->consume));
	r->d.consume = r->consume;
	return &r->base;
}

const struct store_delivery_result *
store_req_delivery(const struct store_req *req)
{
	if (req->ops != &req_deliver_ops)
		return NULL;
	return &((const struct req_deliver *)req)->res;
}
