/*
 * request.h - the writer's requests, as seen inside store/.
 *
 * A request is an object that knows how to apply itself inside the
 * writer's transaction and how to free itself; the writer (writer.c)
 * only batches requests, wraps each in a savepoint, commits and hands
 * the finished ones back to the loop.  Each kind of write lives in a
 * file of its own (req_deliver.c, req_mailbox.c, ...) that embeds
 * struct store_req first in its own struct and fills in an ops table;
 * a new kind is a new file and nothing else.
 */
#ifndef UMBOX_STORE_REQUEST_H
#define UMBOX_STORE_REQUEST_H

#include <stdatomic.h>

#include "lib/completion.h"
#include "store/backend.h"

struct store_req_ops {
	const char *name;	/* the kind, for messages */
	/*
	 * On the writer thread, inside the batch's transaction and a
	 * savepoint of the request's own: do the work through s->be.
	 * Returns a store status; on failure s->errmsg says why, and
	 * everything the request did is rolled back.
	 */
	int (*apply)(struct store *s, struct store_req *req);
	/*
	 * Optional, for a backend that runs a batch in one round trip
	 * (store_backend.pipe_begin): send the request's work without
	 * waiting, and later, in the same order, read the answers.  users
	 * lists the user rows it writes (at most max), to be locked first;
	 * with out NULL, it counts them.
	 */
	int (*send)(struct store *s, struct store_req *req);
	int (*recv)(struct store *s, struct store_req *req);
	/*
	 * Optional: the batch committed but this request's answer was lost
	 * with the connection; learn its outcome from the store (a status as
	 * recv's).  Without, the request fails with a temporary error.
	 */
	int (*resolve)(struct store *s, struct store_req *req);
	size_t (*users)(const struct store_req *req, int64_t *out, size_t max);
	/*
	 * A request cancelled before the writer takes it up is not run:
	 * whoever submitted it has answered for it already (a client told
	 * to try again later).
	 */
	int drop_cancelled;
	/* On the loop, after the callback: release what the kind owns, and req. */
	void (*free)(struct store_req *req);
};

struct store_req {
	const struct store_req_ops *ops;
	store_req_cb *cb;		/* NULL once cancelled */
	atomic_int cancelled;		/* the same, for the writer's thread */
	void *arg;
	int status;			/* set before submit: failed, never applied */
	char errmsg[512];
	struct store_req *next;		/* the writer's pending list */
	struct completion_queue *done;	/* where the answer goes: the submitting loop's */
	struct completion_item finished;
};

/* Fill in the common part; the kind's constructor calls this first. */
void store_req_init(struct store_req *r, const struct store_req_ops *ops,
    store_req_cb *cb, void *arg);

/*
 * Fail a request before it reaches the store (a resource it needs could
 * not be had); submitting it then only delivers this status through the
 * callback, on the loop, as for any other result.  Returns status.
 */
int store_req_fail(struct store_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
