/*
 * request.c - what every kind of writer request shares: its status, its
 * message, its callback, cancellation.
 */
#include "store/request.h"

#include <stdarg.h>
#include <stdio.h>

void
store_req_init(struct store_req *r, const struct store_req_ops *ops, store_req_cb *cb,
    void *arg)
{
	r->ops = ops;
	r->cb = cb;
	r->arg = arg;
	r->status = STORE_OK;
	r->errmsg[0] = '\0';
	r->next = NULL;
}

int
store_req_fail(struct store_req *r, int status, const char *fmt, ...)
{
	va_list ap;

	r->status = status;
	va_start(ap, fmt);
	vsnprintf(r->errmsg, sizeof(r->errmsg), fmt, ap);
	va_end(ap);
	return status;
}

void
store_req_cancel(struct store_req *r)
{
	r->cb = NULL;
	atomic_store_explicit(&r->cancelled, 1, memory_order_relaxed);
}

void
store_req_discard(struct store_req *r)
{
	r->ops->free(r);
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
