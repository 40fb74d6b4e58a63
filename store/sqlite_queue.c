/*
 * sqlite_queue.c - the outbound queue in SQLite: listing and managing
 * rows (umboxctl queue), and the runner's side: claims with a lease,
 * attempts reported, full mailboxes delivered once they have room.
 *
 * Rows are added with their message in sqlite_mail.c.  Every write here
 * is one short transaction, or part of the writer's when it runs there.
 */
#include "store/sqlite_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void
sq_row_queue(sqlite3_stmt *st, struct store_queue_entry *e)
{
	const unsigned char *qid = sqlite3_column_text(st, 2);

	e->id = sqlite3_column_int64(st, 0);
	e->message_id = sqlite3_column_int64(st, 1);
	if (qid)
		snprintf(e->qid, sizeof(e->qid), "%s", qid);
	else
		snprintf(e->qid, sizeof(e->qid), "%010" PRIX64, (uint64_t)e->message_id);
	e->sender = sq_col_strdup(st, 3);
	e->recipient = sq_col_strdup(st, 4);
	e->domain = sq_col_strdup(st, 5);
	e->kind = (enum store_kind)sqlite3_column_int(st, 6);
	e->local_user_id = sqlite3_column_int64(st, 7);	/* NULL reads as 0 */
	e->size = (uint64_t)sqlite3_column_int64(st, 8);
	e->attempts = (unsigned)sqlite3_column_int64(st, 9);
	e->next_attempt = sqlite3_column_int64(st, 10);
	e->last_attempt = sqlite3_column_int64(st, 11);
	e->last_error = sq_col_strdup(st, 12);
	e->status = sqlite3_column_int(st, 13) == STORE_QUEUE_FAILED ? STORE_QUEUE_FAILED :
	    STORE_QUEUE_QUEUED;
	e->held = sqlite3_column_int(st, 14);
	e->claimed_by = sq_col_strdup(st, 15);
	e->claimed_until = sqlite3_column_int64(st, 16);
	e->created_at = sqlite3_column_int64(st, 17);
	if (e->sender == NULL)
		e->sender = xstrdup("");
	if (e->last_error == NULL)
		e->last_error = xstrdup("");
}

/* Every row of a bound statement into a new array. */
static int
sq_queue_rows(struct store *s, sqlite3_stmt *st, struct store_queue_entry **out, size_t *n)
{
	struct store_queue_entry *v = NULL;
	size_t k = 0, cap = 0;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (k == cap) {
			cap = cap ? cap * 2 : 16;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		memset(&v[k], 0, sizeof(v[k]));
		sq_row_queue(st, &v[k++]);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store_queue_list_free(&v, k);
		return sq_fail(s, rc, "list queue");
	}
	*out = v;
	*n = k;
	return STORE_OK;
}

int
sq_queue_list(struct store *s, int64_t id, struct store_queue_entry **out, size_t *n)
{
	sqlite3_stmt *st;

	if (id > 0) {
		st = sq_stmt(s, SQ_QUEUE_GET);
		sqlite3_bind_int64(st, 1, id);
	} else
		st = sq_stmt(s, SQ_QUEUE_LIST);
	return sq_queue_rows(s, st, out, n);
}

int
sq_queue_failed(struct store *s, size_t max, struct store_queue_entry **out, size_t *n)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_QUEUE_FAILED);

	sqlite3_bind_int64(st, 1, (int64_t)(max > INT64_MAX ? INT64_MAX : max));
	sqlite3_bind_int64(st, 2, (int64_t)time(NULL));
	return sq_queue_rows(s, st, out, n);
}

/* Run a statement on row id; STORE_NOTFOUND when it touched nothing. */
static int
sq_queue_touch(struct store *s, sqlite3_stmt *st, int64_t id, const char *what)
{
	int status = sq_exec_stmt(s, st, what);

	if (status == STORE_OK && sqlite3_changes(sq_of(s)->db) == 0)
		status = store_fail(s, STORE_NOTFOUND, "no queue entry %" PRId64, id);
	return status;
}

int
sq_queue_del(struct store *s, int64_t id)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_QUEUE_DEL);

	sqlite3_bind_int64(st, 1, id);
	return sq_queue_touch(s, st, id, "delete queue entry");
}

int
sq_queue_hold(struct store *s, int64_t id, int held)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_QUEUE_HOLD);

	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, held ? 1 : 0);
	return sq_queue_touch(s, st, id, held ? "hold queue entry" : "release queue entry");
}

static int
sq_queue_exists(struct store *s, int64_t id)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_QUEUE_EXISTS);
	int rc;

	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return STORE_OK;
	if (rc == SQLITE_DONE)
		return store_fail(s, STORE_NOTFOUND, "no queue entry %" PRId64, id);
	return sq_fail(s, rc, "get queue entry");
}

int
sq_queue_flush(struct store *s, int64_t id, int64_t now, size_t *n)
{
	sqlite3_stmt *st;
	int status;

	if (id > 0) {
		st = sq_stmt(s, SQ_QUEUE_FLUSH_ONE);
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, now);
	} else {
		st = sq_stmt(s, SQ_QUEUE_FLUSH_ALL);
		sqlite3_bind_int64(st, 1, now);
	}
	if ((status = sq_exec_stmt(s, st, "flush queue")) != STORE_OK)
		return status;
	*n = (size_t)sqlite3_changes(sq_of(s)->db);
	if (id > 0 && *n == 0)
		return sq_queue_exists(s, id);
	return STORE_OK;
}

/*
 * Pick the claimable rows (one more than max, to see whether the last
 * message-and-domain group goes on), keep what store_queue_claim_keep()
 * says, then stamp each row with the claim.  One transaction: two
 * runners never claim the same row.
 */
int
sq_queue_claim(struct store *s, const char *owner, int64_t now, unsigned lease, size_t max,
    struct store_queue_entry **out, size_t *n)
{
	struct store_queue_entry *v = NULL;
	sqlite3_stmt *st;
	size_t k = 0, keep;
	int own, status;

	if (max > INT32_MAX)
		max = INT32_MAX;
	if ((status = sq_txn_begin(s, &own)) != STORE_OK)
		return status;
	st = sq_stmt(s, SQ_QUEUE_CLAIMABLE);
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, (int64_t)max + 1);
	if ((status = sq_queue_rows(s, st, &v, &k)) != STORE_OK)
		return sq_txn_end(s, own, status);
	keep = store_queue_claim_keep(v, k, max);
	for (size_t i = 0; i < keep && status == STORE_OK; i++) {
		st = sq_stmt(s, SQ_QUEUE_CLAIM);
		sqlite3_bind_int64(st, 1, v[i].id);
		sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, now + (int64_t)lease);
		status = sq_exec_stmt(s, st, "claim queue entry");
		free(v[i].claimed_by);
		v[i].claimed_by = xstrdup(owner);
		v[i].claimed_until = now + (int64_t)lease;
	}
	status = sq_txn_end(s, own, status);
	for (size_t i = keep; i < k; i++)
		store_queue_entry_clear(&v[i]);
	if (status != STORE_OK) {
		store_queue_list_free(&v, keep);
		return status;
	}
	if (keep == 0)
		xfree(&v);
	*out = v;
	*n = keep;
	return STORE_OK;
}

int
sq_queue_release_claims(struct store *s, const char *prefix)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_QUEUE_UNCLAIM_PREFIX);

	sqlite3_bind_text(st, 1, prefix, -1, SQLITE_STATIC);
	return sq_exec_stmt(s, st, "release queue claims");
}

int
sq_queue_renew(struct store *s, const char *owner, const int64_t *ids, size_t n, int64_t until)
{
	int own, status;

	if ((status = sq_txn_begin(s, &own)) != STORE_OK)
		return status;
	for (size_t i = 0; i < n && status == STORE_OK; i++) {
		sqlite3_stmt *st = sq_stmt(s, SQ_QUEUE_RENEW);

		sqlite3_bind_int64(st, 1, ids[i]);
		sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, until);
		status = sq_exec_stmt(s, st, "renew queue claim");
	}
	return sq_txn_end(s, own, status);
}

int
sq_queue_next_due(struct store *s, int64_t *when)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_QUEUE_NEXT_DUE);
	int rc = sqlite3_step(st), status = STORE_OK;

	if (rc != SQLITE_ROW)
		status = sq_fail(s, rc, "next due queue entry");
	else if (sqlite3_column_type(st, 0) == SQLITE_NULL)
		status = store_fail(s, STORE_NOTFOUND, "nothing is waiting in the queue");
	else
		*when = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return status;
}

/*
 * Whether owner may write row id's outcome: the row is there, queued,
 * and not claimed by someone else.  Reads its attempts and age.
 */
static int
sq_queue_state(struct store *s, int64_t id, const char *owner, unsigned *attempts,
    int64_t *created)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_QUEUE_STATE);
	int rc, status = STORE_OK;

	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *by = sqlite3_column_text(st, 2);

		*attempts = (unsigned)sqlite3_column_int64(st, 0);
		*created = sqlite3_column_int64(st, 1);
		if (sqlite3_column_int(st, 3) != STORE_QUEUE_QUEUED)
			status = store_fail(s, STORE_NOTFOUND, "queue entry %" PRId64
			    " has failed already", id);
		else if (owner && by && strcmp((const char *)by, owner) != 0)
			status = store_fail(s, STORE_LOCKED, "queue entry %" PRId64
			    " is claimed by %s", id, by);
	} else if (rc == SQLITE_DONE)
		status = store_fail(s, STORE_NOTFOUND, "no queue entry %" PRId64, id);
	else
		status = sq_fail(s, rc, "get queue entry");
	sqlite3_reset(st);
	return status;
}

/* One attempt's outcome; a row-level refusal goes into a->status, not the result. */
static int
sq_queue_attempt(struct store *s, const char *owner, int64_t now,
    const struct store_retry *retry, struct store_attempt *a)
{
	char error[STORE_QUEUE_ERROR_MAX];
	unsigned attempts = 0;
	int64_t created = 0;
	sqlite3_stmt *st;
	int status;

	a->status = STORE_OK;
	a->failed = 0;
	if (a->result == STORE_ATTEMPT_DELIVERED) {
		st = sq_stmt(s, SQ_QUEUE_DEL);
		sqlite3_bind_int64(st, 1, a->id);
		status = sq_queue_touch(s, st, a->id, "delete queue entry");
		if (status == STORE_NOTFOUND)
			a->status = status;
		return status == STORE_NOTFOUND ? STORE_OK : status;
	}
	status = sq_queue_state(s, a->id, owner, &attempts, &created);
	if (status == STORE_NOTFOUND || status == STORE_LOCKED) {
		a->status = status;
		return STORE_OK;
	}
	if (status != STORE_OK)
		return status;
	if (attempts < UINT32_MAX)
		attempts++;
	a->failed = a->result == STORE_ATTEMPT_FAILED ||
	    now - created >= (int64_t)retry->lifetime;
	store_queue_clean_error(a->error ? a->error : "", error, sizeof(error));
	st = sq_stmt(s, SQ_QUEUE_ATTEMPT);
	sqlite3_bind_int64(st, 1, a->id);
	sqlite3_bind_int64(st, 2, (int64_t)attempts);
	sqlite3_bind_text(st, 3, error, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, a->failed ? now :
	    now + (int64_t)store_queue_backoff(attempts, retry->initial, retry->max));
	sqlite3_bind_int64(st, 5, now);
	sqlite3_bind_int(st, 6, a->failed ? STORE_QUEUE_FAILED : STORE_QUEUE_QUEUED);
	return sq_exec_stmt(s, st, "record attempt");
}

int
sq_queue_report(struct store *s, const char *owner, int64_t now,
    const struct store_retry *retry, struct store_attempt *v, size_t n)
{
	int own, status;

	if ((status = sq_txn_begin(s, &own)) != STORE_OK)
		return status;
	for (size_t i = 0; i < n && status == STORE_OK; i++)
		status = sq_queue_attempt(s, owner, now, retry, &v[i]);
	return sq_txn_end(s, own, status);
}

/*
 * The row's mailbox, message and prefix; the quota check of
 * sq_check_quota() (sqlite_mail.c): usage + prefix + message must not
 * exceed a non-zero quota.
 */
static int
sq_queue_local_body(struct store *s, int64_t id, const char *owner, int64_t now)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_QUEUE_LOCAL);
	int64_t user_id, message_id;
	uint64_t size, quota, used, total;
	int kind, rc, status;
	void *prefix = NULL;
	size_t plen;
	char login[80];

	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		if (rc == SQLITE_DONE)
			return store_fail(s, STORE_NOTFOUND, "no queue entry %" PRId64, id);
		return sq_fail(s, rc, "get queue entry");
	}
	if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
		sqlite3_reset(st);
		return store_fail(s, STORE_INVALID, "queue entry %" PRId64 " is not for a local"
		    " mailbox", id);
	}
	if (sqlite3_column_int(st, 5) != STORE_QUEUE_QUEUED) {
		sqlite3_reset(st);
		return store_fail(s, STORE_NOTFOUND, "queue entry %" PRId64 " has failed already",
		    id);
	}
	if (owner && sqlite3_column_type(st, 4) != SQLITE_NULL &&
	    strcmp((const char *)sqlite3_column_text(st, 4), owner) != 0) {
		status = store_fail(s, STORE_LOCKED, "queue entry %" PRId64 " is claimed by %s", id,
		    sqlite3_column_text(st, 4));
		sqlite3_reset(st);
		return status;
	}
	user_id = sqlite3_column_int64(st, 0);
	message_id = sqlite3_column_int64(st, 1);
	kind = sqlite3_column_int(st, 2);
	plen = (size_t)sqlite3_column_bytes(st, 3);
	prefix = xmalloc(plen + 1);
	if (plen)
		memcpy(prefix, sqlite3_column_blob(st, 3), plen);
	size = (uint64_t)sqlite3_column_int64(st, 6);
	quota = (uint64_t)sqlite3_column_int64(st, 7);
	used = (uint64_t)sqlite3_column_int64(st, 8);
	snprintf(login, sizeof(login), "%s", sqlite3_column_text(st, 9));
	sqlite3_reset(st);

	total = size + plen;
	if (quota != 0 && (used + total > quota || used + total < used)) {
		free(prefix);
		return store_fail(s, STORE_QUOTA, "mailbox %s still has no room (%" PRIu64 " + %"
		    PRIu64 " > %" PRIu64 " bytes)", login, used, total, quota);
	}
	st = sq_stmt(s, SQ_ENTRY_ADD);
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_int64(st, 2, message_id);
	sqlite3_bind_int(st, 3, kind);
	sqlite3_bind_blob(st, 4, prefix, (int)plen, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (int64_t)total);
	sqlite3_bind_int64(st, 6, now);
	status = sq_exec_stmt(s, st, "store mailbox entry");
	free(prefix);
	if (status != STORE_OK)
		return status;
	/* The entry now references the message, so deleting the row keeps it. */
	st = sq_stmt(s, SQ_QUEUE_DEL);
	sqlite3_bind_int64(st, 1, id);
	return sq_queue_touch(s, st, id, "delete queue entry");
}

int
sq_queue_deliver_local(struct store *s, int64_t id, const char *owner, int64_t now)
{
	int own, status;

	if ((status = sq_txn_begin(s, &own)) != STORE_OK)
		return status;
	status = sq_queue_local_body(s, id, owner, now);
	return sq_txn_end(s, own, status);
}
