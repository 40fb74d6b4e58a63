/*
 * pg_queue.c - the outbound queue in PostgreSQL: the rules of
 * sqlite_queue.c.  Several nodes run queue runners on one database, so a
 * claim takes its candidate rows FOR UPDATE SKIP LOCKED (two runners
 * claiming at once get different rows, neither waits), and an outcome is
 * written only by the runner whose claim the row carries.
 */
#include "store/pg_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PG_QUEUE_COLS "SELECT q.id, q.message_id, m.qid, q.sender, q.recipient," \
	" q.domain, q.kind, q.local_user_id, m.size, q.attempts, q.next_attempt," \
	" q.last_attempt, q.last_error, q.status, q.held, q.claimed_by, q.claimed_until," \
	" q.created_at FROM queue q JOIN messages m ON m.id = q.message_id "
/* As SQ_LOCAL_ROOM: a full mailbox's row waiting for room that has room now. */
#define PG_LOCAL_ROOM " AND q.last_error = 'mailbox full' AND EXISTS (SELECT 1 FROM users u" \
	" WHERE u.id = q.local_user_id" \
	" AND (u.quota = 0 OR u.used + m.size + length(q.prefix) <= u.quota))"

static void
pg_row_queue(struct store *s, const PGresult *r, int i, void *elem)
{
	struct store_queue_entry *e = elem;

	e->id = pg_col_i64(r, i, 0);
	e->message_id = pg_col_i64(r, i, 1);
	if (!PQgetisnull(r, i, 2))
		snprintf(e->qid, sizeof(e->qid), "%s", PQgetvalue(r, i, 2));
	else
		snprintf(e->qid, sizeof(e->qid), "%010" PRIX64, (uint64_t)e->message_id);
	e->sender = xstrdup(PQgetvalue(r, i, 3));
	e->recipient = pg_col_str(r, i, 4);
	e->domain = pg_col_str(r, i, 5);
	e->kind = (enum store_kind)pg_col_i64(r, i, 6);
	e->local_user_id = PQgetisnull(r, i, 7) ? 0 : pg_col_i64(r, i, 7);
	e->size = (uint64_t)pg_col_i64(r, i, 8);
	e->attempts = (unsigned)pg_col_i64(r, i, 9);
	e->next_attempt = pg_col_i64(r, i, 10);
	e->last_attempt = pg_col_i64(r, i, 11);
	e->last_error = xstrdup(PQgetvalue(r, i, 12));
	e->status = pg_col_i64(r, i, 13) == STORE_QUEUE_FAILED ? STORE_QUEUE_FAILED :
	    STORE_QUEUE_QUEUED;
	e->held = pg_col_bool(r, i, 14);
	e->claimed_by = pg_col_str(r, i, 15);
	e->claimed_until = pg_col_i64(r, i, 16);
	e->created_at = pg_col_i64(r, i, 17);
}

static int
pg_queue_rows(struct store *s, const char *sql, int n, const char *const *v,
    struct store_queue_entry **out, size_t *count)
{
	return pg_rows(s, "list queue", sql, n, v, sizeof(**out), pg_row_queue, out, count);
}

int
pg_queue_list(struct store *s, int64_t id, struct store_queue_entry **out, size_t *n)
{
	char idbuf[PG_INT_LEN];
	const char *v[] = { pg_i64(idbuf, id) };

	if (id > 0)
		return pg_queue_rows(s, PG_QUEUE_COLS "WHERE q.id = $1", 1, v, out, n);
	return pg_queue_rows(s, PG_QUEUE_COLS "ORDER BY q.id", 0, NULL, out, n);
}

/*
 * Not while another row of the message is being tried or is due to be:
 * one bounce per message and pass over it.
 */
int
pg_queue_failed(struct store *s, size_t max, struct store_queue_entry **out, size_t *n)
{
	char maxbuf[PG_INT_LEN], now[PG_INT_LEN];
	const char *v[] = { pg_i64(maxbuf, (int64_t)(max > INT64_MAX ? INT64_MAX : max)),
	    pg_i64(now, (int64_t)time(NULL)) };

	return pg_queue_rows(s, PG_QUEUE_COLS "WHERE q.status = 1 AND NOT q.held"
	    " AND NOT EXISTS (SELECT 1 FROM queue o WHERE o.message_id = q.message_id"
	    " AND o.status = 0 AND NOT o.held AND (o.claimed_until > $2 OR o.next_attempt <= $2))"
	    " ORDER BY q.message_id, q.id LIMIT $1", 2, v, out, n);
}

/* Rows may be due that no runner has seen: every node's runner is told. */
static int
pg_queue_wake(struct store *s, int status)
{
	if (status == STORE_OK)
		pg_exec(s, "wake the queue runners", "SELECT pg_notify('" STORE_QUEUE_CHANNEL "',"
		    " '')", 0, NULL);
	return status;
}

static int
pg_queue_touch(struct store *s, const char *what, const char *sql, int n,
    const char *const *v, int64_t id)
{
	char missing[64];

	snprintf(missing, sizeof(missing), "no queue entry %" PRId64, id);
	return pg_exec_one(s, what, sql, n, v, missing);
}

int
pg_queue_del(struct store *s, int64_t id)
{
	char idbuf[PG_INT_LEN];
	const char *v[] = { pg_i64(idbuf, id) };

	return pg_queue_touch(s, "delete queue entry", "DELETE FROM queue WHERE id = $1", 1, v,
	    id);
}

int
pg_queue_hold(struct store *s, int64_t id, int held)
{
	char idbuf[PG_INT_LEN];
	const char *v[] = { pg_i64(idbuf, id), held ? "t" : "f" };

	int status = pg_queue_touch(s, held ? "hold queue entry" : "release queue entry",
	    "UPDATE queue SET held = $2 WHERE id = $1", 2, v, id);

	return held ? status : pg_queue_wake(s, status);
}

int
pg_queue_flush(struct store *s, int64_t id, int64_t now, size_t *n)
{
	char idbuf[PG_INT_LEN], nowbuf[PG_INT_LEN];
	const char *v[] = { pg_i64(nowbuf, now), pg_i64(idbuf, id) };
	int status;
	PGresult *r = pg_run(s, &status, "flush queue", "UPDATE queue"
	    " SET next_attempt = least(next_attempt, $1)"
	    " WHERE status = 0 AND NOT held AND ($2 = 0 OR id = $2)", 2, v);

	if (r == NULL)
		return status;
	*n = (size_t)strtoull(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	if (*n > 0)
		pg_queue_wake(s, STORE_OK);
	if (id > 0 && *n == 0) {
		r = pg_run(s, &status, "get queue entry", "SELECT 1 FROM queue WHERE id = $1",
		    1, v + 1);
		if (r && PQntuples(r) == 0)
			status = store_fail(s, STORE_NOTFOUND, "no queue entry %" PRId64, id);
		PQclear(r);
	}
	return status;
}

/*
 * The claimable rows (due by the clock, or a full mailbox's row whose
 * mailbox has room now), locked and skipping any another runner has
 * locked, one more than max; then stamp the ones kept.
 */
int
pg_queue_claim(struct store *s, const char *owner, int64_t now, unsigned lease, size_t max,
    struct store_queue_entry **out, size_t *n)
{
	char nowbuf[PG_INT_LEN], limit[PG_INT_LEN], until[PG_INT_LEN];
	const char *v[] = { pg_i64(nowbuf, now), NULL };
	struct store_queue_entry *list = NULL;
	int64_t *ids;
	size_t k = 0, keep;
	int own, status;

	if (max > INT32_MAX)
		max = INT32_MAX;
	v[1] = pg_i64(limit, (int64_t)max + 1);
	if ((status = pg_txn_begin(s, &own)) != STORE_OK)
		return status;
	status = pg_queue_rows(s, PG_QUEUE_COLS "WHERE q.status = 0 AND NOT q.held"
	    " AND q.claimed_until <= $1 AND (q.next_attempt <= $1"
	    " OR (q.local_user_id IS NOT NULL" PG_LOCAL_ROOM "))"
	    " ORDER BY q.message_id, q.domain, q.id LIMIT $2 FOR UPDATE OF q SKIP LOCKED",
	    2, v, &list, &k);
	if (status != STORE_OK)
		return pg_txn_end(s, own, status);
	keep = store_queue_claim_keep(list, k, max);
	if (keep > 0) {
		char *arr;
		const char *w[3];

		ids = xcalloc(keep, sizeof(*ids));
		for (size_t i = 0; i < keep; i++)
			ids[i] = list[i].id;
		arr = pg_int_array(ids, keep);
		free(ids);
		w[0] = arr;
		w[1] = owner;
		w[2] = pg_i64(until, now + (int64_t)lease);
		status = pg_exec(s, "claim queue entries", "UPDATE queue SET claimed_by = $2,"
		    " claimed_until = $3 WHERE id = ANY($1::bigint[])", 3, w);
		free(arr);
	}
	for (size_t i = 0; i < keep; i++) {
		free(list[i].claimed_by);
		list[i].claimed_by = xstrdup(owner);
		list[i].claimed_until = now + (int64_t)lease;
	}
	status = pg_txn_end(s, own, status);
	for (size_t i = keep; i < k; i++)
		store_queue_entry_clear(&list[i]);
	if (status != STORE_OK) {
		store_queue_list_free(&list, keep);
		return status;
	}
	if (keep == 0)
		xfree(&list);
	*out = list;
	*n = keep;
	return STORE_OK;
}

int
pg_queue_renew(struct store *s, const char *owner, const int64_t *ids, size_t n, int64_t until)
{
	char buf[PG_INT_LEN], *arr;
	const char *w[3];
	int status;

	if (n == 0)
		return STORE_OK;
	arr = pg_int_array(ids, n);
	w[0] = arr;
	w[1] = owner;
	w[2] = pg_i64(buf, until);
	status = pg_exec(s, "renew queue claims", "UPDATE queue SET claimed_until = $3"
	    " WHERE id = ANY($1::bigint[]) AND claimed_by = $2", 3, w);
	free(arr);
	return status;
}

int
pg_queue_release_claims(struct store *s, const char *prefix)
{
	const char *v[] = { prefix };
	int status;
	PGresult *r = pg_run(s, &status, "release queue claims", "UPDATE queue SET claimed_by"
	    " = NULL, claimed_until = 0 WHERE claimed_by IS NOT NULL"
	    " AND left(claimed_by, length($1)) = $1", 1, v);

	if (r == NULL)
		return status;
	if (strcmp(PQcmdTuples(r), "0") != 0)
		pg_queue_wake(s, STORE_OK);
	PQclear(r);
	return STORE_OK;
}

int
pg_queue_next_due(struct store *s, int64_t *when)
{
	int status;
	/* As SQLite's SQ_QUEUE_NEXT_DUE: a full mailbox's row is due once it has room. */
	PGresult *r = pg_run(s, &status, "next due queue entry",
	    "SELECT least((SELECT min(greatest(next_attempt, claimed_until)) FROM queue"
	    " WHERE status = 0 AND NOT held),"
	    " (SELECT min(q.claimed_until) FROM queue q JOIN messages m ON m.id = q.message_id"
	    " WHERE q.local_user_id IS NOT NULL AND q.status = 0 AND NOT q.held" PG_LOCAL_ROOM "))",
	    0, NULL);

	if (r == NULL)
		return status;
	if (PQgetisnull(r, 0, 0))
		status = store_fail(s, STORE_NOTFOUND, "nothing is waiting in the queue");
	else
		*when = pg_col_i64(r, 0, 0);
	PQclear(r);
	return status;
}

/*
 * Whether owner may write row id's outcome: the row is there, queued,
 * and not claimed by someone else.  Locks it and reads its attempts and age.
 */
static int
pg_queue_state(struct store *s, int64_t id, const char *owner, unsigned *attempts,
    int64_t *created)
{
	char idbuf[PG_INT_LEN];
	const char *v[] = { pg_i64(idbuf, id) };
	int status;
	PGresult *r = pg_run(s, &status, "get queue entry", "SELECT attempts, created_at,"
	    " claimed_by, status FROM queue WHERE id = $1 FOR UPDATE", 1, v);

	if (r == NULL)
		return status;
	if (PQntuples(r) == 0)
		status = store_fail(s, STORE_NOTFOUND, "no queue entry %" PRId64, id);
	else if (pg_col_i64(r, 0, 3) != STORE_QUEUE_QUEUED)
		status = store_fail(s, STORE_NOTFOUND, "queue entry %" PRId64
		    " has failed already", id);
	else if (owner && !PQgetisnull(r, 0, 2) && strcmp(PQgetvalue(r, 0, 2), owner) != 0)
		status = store_fail(s, STORE_LOCKED, "queue entry %" PRId64 " is claimed by %s",
		    id, PQgetvalue(r, 0, 2));
	else {
		*attempts = (unsigned)pg_col_i64(r, 0, 0);
		*created = pg_col_i64(r, 0, 1);
	}
	PQclear(r);
	return status;
}

/* One attempt's outcome; a row-level refusal goes into a->status, not the result. */
static int
pg_queue_attempt(struct store *s, const char *owner, int64_t now,
    const struct store_retry *retry, struct store_attempt *a)
{
	char error[STORE_QUEUE_ERROR_MAX], idbuf[PG_INT_LEN], att[PG_INT_LEN];
	char next[PG_INT_LEN], nowbuf[PG_INT_LEN], st[PG_INT_LEN];
	unsigned attempts = 0;
	int64_t created = 0;
	int status;

	a->status = STORE_OK;
	a->failed = 0;
	pg_i64(idbuf, a->id);
	if (a->result == STORE_ATTEMPT_DELIVERED) {
		const char *v[] = { idbuf };

		status = pg_queue_touch(s, "delete queue entry", "DELETE FROM queue WHERE id = $1",
		    1, v, a->id);
		if (status == STORE_NOTFOUND)
			a->status = status;
		return status == STORE_NOTFOUND ? STORE_OK : status;
	}
	status = pg_queue_state(s, a->id, owner, &attempts, &created);
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
	{
		const char *v[] = { idbuf, pg_i64(att, attempts), error,
		    pg_i64(next, a->failed ? now :
		    now + (int64_t)store_queue_backoff(attempts, retry->initial, retry->max)),
		    pg_i64(nowbuf, now),
		    pg_i64(st, a->failed ? STORE_QUEUE_FAILED : STORE_QUEUE_QUEUED) };

		return pg_exec(s, "record attempt", "UPDATE queue SET attempts = $2,"
		    " last_error = $3, next_attempt = $4, last_attempt = $5, status = $6,"
		    " claimed_by = NULL, claimed_until = 0 WHERE id = $1", 6, v);
	}
}

int
pg_queue_report(struct store *s, const char *owner, int64_t now,
    const struct store_retry *retry, struct store_attempt *v, size_t n)
{
	int own, status;

	if ((status = pg_txn_begin(s, &own)) != STORE_OK)
		return status;
	for (size_t i = 0; i < n && status == STORE_OK; i++)
		status = pg_queue_attempt(s, owner, now, retry, &v[i]);
	return pg_txn_end(s, own, status);
}

/*
 * A full mailbox's row, delivered if the mailbox has room now: the row
 * and its user locked, the quota rule of the delivery (usage + prefix +
 * message within a non-zero quota), an entry with the row's own prefix,
 * and the row deleted.
 */
static int
pg_queue_local_body(struct store *s, int64_t id, const char *owner, int64_t now)
{
	char idbuf[PG_INT_LEN], user[PG_INT_LEN];
	const char *v[] = { pg_i64(idbuf, id) };
	uint64_t quota, used, total;
	int status;
	PGresult *u, *r = pg_query(s, &status, "get queue entry", "SELECT q.local_user_id,"
	    " q.message_id, q.kind, q.prefix, q.claimed_by, q.status, m.size"
	    " FROM queue q JOIN messages m ON m.id = q.message_id WHERE q.id = $1"
	    " FOR UPDATE OF q", 1, v, NULL, NULL, 1);

	if (r == NULL)
		return status;
	if (PQntuples(r) == 0)
		status = store_fail(s, STORE_NOTFOUND, "no queue entry %" PRId64, id);
	else if (PQgetisnull(r, 0, 0))
		status = store_fail(s, STORE_INVALID, "queue entry %" PRId64 " is not for a local"
		    " mailbox", id);
	else if (pg_bin_i64(r, 0, 5) != STORE_QUEUE_QUEUED)
		status = store_fail(s, STORE_NOTFOUND, "queue entry %" PRId64
		    " has failed already", id);
	else if (owner && !PQgetisnull(r, 0, 4) && strcmp(PQgetvalue(r, 0, 4), owner) != 0)
		status = store_fail(s, STORE_LOCKED, "queue entry %" PRId64 " is claimed by %s",
		    id, PQgetvalue(r, 0, 4));
	if (status != STORE_OK) {
		PQclear(r);
		return status;
	}
	/* The mailbox's row locked, as a delivery locks it, before its quota is read. */
	v[0] = pg_i64(user, pg_bin_i64(r, 0, 0));
	if ((u = pg_run(s, &status, "user usage", "SELECT quota, used, login FROM users"
	    " WHERE id = $1 FOR UPDATE", 1, v)) == NULL || PQntuples(u) == 0) {
		if (u)
			status = store_fail(s, STORE_NOTFOUND, "no queue entry %" PRId64, id);
		PQclear(u);
		PQclear(r);
		return status;
	}
	quota = (uint64_t)pg_col_i64(u, 0, 0);
	used = (uint64_t)pg_col_i64(u, 0, 1);
	total = (uint64_t)pg_bin_i64(r, 0, 6) + (uint64_t)PQgetlength(r, 0, 3);
	if (quota != 0 && (used + total > quota || used + total < used))
		status = store_fail(s, STORE_QUOTA, "mailbox %s still has no room (%" PRIu64 " + %"
		    PRIu64 " > %" PRIu64 " bytes)", PQgetvalue(u, 0, 2), used, total, quota);
	PQclear(u);
	if (status == STORE_OK) {
		char mid[PG_INT_LEN], kind[PG_INT_LEN], size[PG_INT_LEN], at[PG_INT_LEN];
		const char *w[] = { user, pg_i64(mid, pg_bin_i64(r, 0, 1)),
		    pg_i64(kind, pg_bin_i64(r, 0, 2)), PQgetvalue(r, 0, 3),
		    pg_i64(size, (int64_t)total), pg_i64(at, now) };
		const int lengths[] = { 0, 0, 0, PQgetlength(r, 0, 3), 0, 0 };
		const int formats[] = { 0, 0, 0, 1, 0, 0 };

		PQclear(pg_query(s, &status, "store mailbox entry", "INSERT INTO entries"
		    " (user_id, message_id, kind, prefix, size, arrived)"
		    " VALUES ($1, $2, $3, $4, $5, $6)", 6, w, lengths, formats, 0));
	}
	PQclear(r);
	if (status != STORE_OK)
		return status;
	/* The entry now references the message, so deleting the row keeps it. */
	return pg_queue_del(s, id);
}

int
pg_queue_deliver_local(struct store *s, int64_t id, const char *owner, int64_t now)
{
	int own, status;

	if ((status = pg_txn_begin(s, &own)) != STORE_OK)
		return status;
	status = pg_queue_local_body(s, id, owner, now);
	return pg_txn_end(s, own, status);
}
