/*
 * req_mailbox.c - writer requests on one mailbox: delete entries, POP3
 * QUIT (delete, mark retrieved, unlock, together), take the POP3 lock.
 */
#include "store/request.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct req_mailbox {
	struct store_req base;		/* first */
	int64_t user_id;
	int64_t *del;
	size_t ndel;
	int64_t *seen;
	size_t nseen;
	char *owner;			/* quit: the lock to release; lock: its owner */
	unsigned lease;
};

static int64_t *
copy_ids(const int64_t *v, size_t n)
{
	int64_t *c = xreallocarray(NULL, n ? n : 1, sizeof(*v));

	if (n)
		memcpy(c, v, n * sizeof(*v));
	return c;
}

static void
req_mailbox_free(struct store_req *base)
{
	struct req_mailbox *r = (struct req_mailbox *)base;

	free(r->del);
	free(r->seen);
	free(r->owner);
	free(r);
}

static int
req_quit_apply(struct store *s, struct store_req *base)
{
	struct req_mailbox *r = (struct req_mailbox *)base;
	int st;

	/*
	 * The lock given back first: a session's changes count only while it
	 * is its own.  Another node may have taken the mailbox over (this one
	 * was paused or cut off past its heartbeat), and two sessions must
	 * never both commit.  A release alone has nothing left to give back.
	 */
	if (r->owner && (st = s->be->pop3_unlock(s, r->user_id, r->owner, NULL)) != STORE_OK) {
		if (st != STORE_NOTFOUND)
			return st;
		if (r->ndel || r->nseen)
			return store_fail(s, STORE_LOCKED, "another session took the mailbox over");
	}
	st = s->be->entries_delete(s, r->user_id, r->del, r->ndel);

	for (size_t i = 0; i < r->nseen && st == STORE_OK; i++) {
		st = s->be->entry_set_flags(s, r->user_id, r->seen[i], STORE_FLAG_SEEN);
		if (st == STORE_NOTFOUND)	/* deleted meanwhile (umboxctl mail del) */
			st = STORE_OK;
	}
	return st;
}

static int
req_lock_apply(struct store *s, struct store_req *base)
{
	struct req_mailbox *r = (struct req_mailbox *)base;

	return s->be->pop3_lock(s, r->user_id, r->owner, (int64_t)time(NULL), r->lease);
}

static const struct store_req_ops req_quit_ops = {
	.name = "pop3 quit",
	.apply = req_quit_apply,
	.free = req_mailbox_free,
};

static const struct store_req_ops req_lock_ops = {
	.name = "pop3 lock",
	.apply = req_lock_apply,
	.free = req_mailbox_free,
};

static struct req_mailbox *
req_mailbox_new(const struct store_req_ops *ops, int64_t user_id, const char *owner,
    store_req_cb *cb, void *arg)
{
	struct req_mailbox *r = xcalloc(1, sizeof(*r));

	store_req_init(&r->base, ops, cb, arg);
	r->user_id = user_id;
	r->owner = owner ? xstrdup(owner) : NULL;
	return r;
}

struct store_req *
store_req_pop3_quit(int64_t user_id, const char *owner, const int64_t *del, size_t ndel,
    const int64_t *seen, size_t nseen, store_req_cb *cb, void *arg)
{
	struct req_mailbox *r = req_mailbox_new(&req_quit_ops, user_id, owner, cb, arg);

	r->del = copy_ids(del, ndel);
	r->ndel = ndel;
	r->seen = copy_ids(seen, nseen);
	r->nseen = nseen;
	return &r->base;
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
	struct req_mailbox *r = req_mailbox_new(&req_lock_ops, user_id, owner, cb, arg);

	r->lease = lease_seconds;
	return &r->base;
}
