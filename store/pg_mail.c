/*
 * pg_mail.c - messages, mailbox entries, POP3 locks and the counts in
 * PostgreSQL (schema step 4 of pg.c): the rules of sqlite_mail.c, but
 * a message without references is swept later rather than deleted.
 *
 * A message's bytes are rows of message_chunks, PG_CHUNK bytes each,
 * stored uncompressed out of line, so that a slice is read with
 * substring() without the rest of its chunk.  A delivery locks its local
 * users' rows in id order before checking their quotas: deliveries on
 * other nodes to the same mailbox wait instead of both passing the check.
 */
#include "store/pg_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One chunk of a message's bytes. */
static int
pg_chunk_add(struct store *s, const char *mid, int seq, const void *data, size_t len)
{
	char seqbuf[PG_INT_LEN];
	const char *v[] = { mid, pg_i64(seqbuf, seq), data };
	const int lengths[] = { 0, 0, (int)len }, formats[] = { 0, 0, 1 };
	int status;
	PGresult *r = pg_query(s, &status, "store message", "INSERT INTO message_chunks"
	    " (message_id, seq, data) VALUES ($1, $2, $3)", 3, v, lengths, formats, 0);

	PQclear(r);
	return status;
}

/* The message row and its chunks, from memory or from the spool file. */
static int
pg_message_add(struct store *s, const struct store_delivery *d, int64_t now, int64_t *mid)
{
	char len[PG_INT_LEN], at[PG_INT_LEN], midbuf[PG_INT_LEN];
	const char *v[] = { d->sender ? d->sender : "", pg_i64(len, (int64_t)d->len),
	    pg_i64(at, now), d->qid };
	char *buf = NULL;
	uint64_t off = 0;
	int status, seq = 0;
	PGresult *r = pg_run(s, &status, "store message", "INSERT INTO messages"
	    " (sender, size, created_at, qid) VALUES ($1, $2, $3, $4) RETURNING id", 4, v);

	if (r == NULL)
		return status;
	*mid = pg_col_i64(r, 0, 0);
	PQclear(r);
	pg_i64(midbuf, *mid);
	if (d->fd >= 0)
		buf = xmalloc(PG_CHUNK);
	while (off < d->len && status == STORE_OK) {
		size_t want = d->len - off < PG_CHUNK ? (size_t)(d->len - off) : PG_CHUNK;
		const void *p = (const char *)d->data + off;

		if (buf) {
			size_t have = 0;

			while (have < want) {
				ssize_t got = pread(d->fd, buf + have, want - have,
				    (off_t)(off + have));

				if (got < 0 && errno == EINTR)
					continue;
				if (got <= 0) {
					status = store_fail(s, STORE_ERROR, "read spooled message: %s",
					    got < 0 ? strerror(errno) : "file is shorter than its length");
					break;
				}
				have += (size_t)got;
			}
			p = buf;
		}
		if (status == STORE_OK)
			status = pg_chunk_add(s, midbuf, seq++, p, want);
		off += want;
	}
	free(buf);
	return status;
}

/* A local target's login and whether this message would take it over quota. */
struct pg_room {
	char login[80];
	int full;
};

/*
 * Lock the local targets' user rows in id order (so that deliveries to
 * the same mailboxes wait for each other rather than deadlock) and check
 * each one's quota.  Returns how many are full, or a negative status.
 */
static int
pg_check_quota(struct store *s, const struct store_delivery *d, struct pg_room *room)
{
	char why[sizeof(s->errmsg)];
	int64_t *ids = xcalloc(d->nlocal, sizeof(*ids));
	char *arr;
	const char *v[1];
	size_t off = 0;
	int status, nfull = 0;
	PGresult *r;

	for (size_t i = 0; i < d->nlocal; i++)
		ids[i] = d->local[i].user_id;
	arr = pg_int_array(ids, d->nlocal);
	free(ids);
	v[0] = arr;
	r = pg_run(s, &status, "user usage", "SELECT id, login, quota, used FROM users"
	    " WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE", 1, v);
	free(arr);
	if (r == NULL)
		return status;
	why[0] = '\0';
	for (size_t i = 0; i < d->nlocal; i++) {
		uint64_t quota = 0, used = 0, size;
		int row = -1;

		for (int k = 0; k < PQntuples(r) && row < 0; k++)
			if (pg_col_i64(r, k, 0) == d->local[i].user_id)
				row = k;
		if (row < 0) {
			PQclear(r);
			return store_fail(s, STORE_INVALID, "no user with id %" PRId64,
			    d->local[i].user_id);
		}
		snprintf(room[i].login, sizeof(room[i].login), "%s", PQgetvalue(r, row, 1));
		quota = (uint64_t)pg_col_i64(r, row, 2);
		used = (uint64_t)pg_col_i64(r, row, 3);
		size = d->len + (d->local[i].prefix ? strlen(d->local[i].prefix) : 0);
		room[i].full = quota != 0 && (used + size > quota || used + size < used);
		if (room[i].full) {
			nfull++;
			if (off < sizeof(why))
				off += (size_t)snprintf(why + off, sizeof(why) - off,
				    "%smailbox %s would exceed its quota (%" PRIu64 " + %" PRIu64
				    " > %" PRIu64 " bytes)", off ? "; " : "", room[i].login,
				    used, size, quota);
		}
	}
	PQclear(r);
	if ((size_t)nfull == d->nlocal && d->nremote == 0)
		store_fail(s, STORE_QUOTA, "%s", why);
	return nfull;
}

/* A queue row: an outside recipient, or (user set) a full mailbox that waits for room. */
static int
pg_queue_add(struct store *s, const struct store_delivery *d, int64_t mid, int64_t now,
    const char *recipient, const struct store_rcpt_local *local)
{
	char midbuf[PG_INT_LEN], at[PG_INT_LEN], kind[PG_INT_LEN], user[PG_INT_LEN];
	char *domain = store_recipient_domain(recipient);
	const char *prefix = local && local->prefix ? local->prefix : "";
	const char *v[] = { pg_i64(midbuf, mid), d->sender ? d->sender : "", recipient,
	    pg_i64(at, now), pg_i64(kind, d->kind), domain,
	    local ? pg_i64(user, local->user_id) : NULL, prefix,
	    local ? "mailbox full" : "" };
	const int lengths[] = { 0, 0, 0, 0, 0, 0, 0, (int)strlen(prefix), 0 };
	const int formats[] = { 0, 0, 0, 0, 0, 0, 0, 1, 0 };
	int status;
	PGresult *r = pg_query(s, &status, local ? "defer delivery" : "queue message",
	    "INSERT INTO queue (message_id, sender, recipient, next_attempt, created_at, kind,"
	    " domain, local_user_id, prefix, last_error)"
	    " VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9)", 9, v, lengths, formats, 0);

	PQclear(r);
	free(domain);
	return status;
}

static int
pg_deliver_body(struct store *s, const struct store_delivery *dd,
    struct store_delivery_result *res)
{
	int64_t now = (int64_t)time(NULL), mid = 0;
	struct pg_room *room = NULL;
	struct store_delivery copy = *dd;
	const struct store_delivery *d = &copy;
	char midbuf[PG_INT_LEN], kind[PG_INT_LEN], at[PG_INT_LEN];
	int status = STORE_OK, nfull = 0;

	if (dd->message_id != 0) {
		char idbuf[PG_INT_LEN];
		const char *v[] = { pg_i64(idbuf, dd->message_id) };
		PGresult *r;

		if (dd->check_quota)
			return store_fail(s, STORE_INVALID, "a delivery of a stored message"
			    " does not check quotas");
		r = pg_run(s, &status, "message size", "SELECT size FROM messages WHERE id = $1",
		    1, v);
		if (r == NULL)
			return status;
		if (PQntuples(r) == 1)
			copy.len = (uint64_t)pg_col_i64(r, 0, 0);
		else
			status = store_fail(s, STORE_NOTFOUND, "no message %" PRId64, dd->message_id);
		PQclear(r);
		if (status != STORE_OK)
			return status;
	}
	if (d->len > (uint64_t)INT32_MAX)
		return store_fail(s, STORE_INVALID, "message of %" PRIu64 " bytes is too large",
		    d->len);
	if (d->nlocal == 0 && d->nremote == 0)
		return store_fail(s, STORE_INVALID, "a delivery without recipients");
	if (d->check_quota) {
		room = xcalloc(d->nlocal, sizeof(*room));
		if ((nfull = pg_check_quota(s, d, room)) < 0) {
			status = nfull;
			goto out;
		}
		if ((size_t)nfull == d->nlocal && d->nremote == 0) {
			status = STORE_QUOTA;
			goto out;
		}
	}
	if (d->message_id != 0)
		mid = d->message_id;
	else if ((status = pg_message_add(s, d, now, &mid)) != STORE_OK)
		goto out;
	if (nfull > 0)
		res->local = xcalloc(d->nlocal, sizeof(*res->local));
	pg_i64(midbuf, mid);
	pg_i64(kind, d->kind);
	pg_i64(at, now);

	for (size_t i = 0; i < d->nlocal; i++) {
		const char *prefix = d->local[i].prefix ? d->local[i].prefix : "";
		size_t plen = strlen(prefix);
		char user[PG_INT_LEN], size[PG_INT_LEN];
		const char *v[] = { pg_i64(user, d->local[i].user_id), midbuf, kind, prefix,
		    pg_i64(size, (int64_t)(d->len + plen)), at };
		const int lengths[] = { 0, 0, 0, (int)plen, 0, 0 };
		const int formats[] = { 0, 0, 0, 1, 0, 0 };
		PGresult *r;

		if (room && room[i].full) {
			struct store_rcpt_local l = d->local[i];

			if ((status = pg_queue_add(s, d, mid, now, l.address ? l.address :
			    room[i].login, &l)) != STORE_OK)
				goto out;
			res->local[i] = STORE_TARGET_DEFERRED_FULL;
			res->deferred++;
			continue;
		}
		r = pg_query(s, &status, "store mailbox entry", "INSERT INTO entries (user_id,"
		    " message_id, kind, prefix, size, arrived) VALUES ($1, $2, $3, $4, $5, $6)",
		    6, v, lengths, formats, 0);
		PQclear(r);
		if (status != STORE_OK)
			goto out;
		res->delivered++;
	}
	for (size_t i = 0; i < d->nremote; i++) {
		if ((status = pg_queue_add(s, d, mid, now, d->remote[i], NULL)) != STORE_OK)
			goto out;
		res->queued++;
	}
	if (d->nconsume > 0) {
		char *arr = pg_int_array(d->consume, d->nconsume);
		const char *v[] = { arr };

		status = pg_exec(s, "settle queue entries", "DELETE FROM queue"
		    " WHERE id = ANY($1::bigint[])", 1, v);
		free(arr);
		if (status != STORE_OK)
			goto out;
	}
	res->message_id = mid;
	if (d->qid)
		snprintf(res->qid, sizeof(res->qid), "%s", d->qid);
	else
		snprintf(res->qid, sizeof(res->qid), "%010" PRIX64, (uint64_t)mid);
out:
	free(room);
	return status;
}

/* On failure nothing is stored, and the result says nothing either. */
int
pg_deliver(struct store *s, const struct store_delivery *d, struct store_delivery_result *res)
{
	int own, status;

	if ((status = pg_txn_begin(s, &own)) != STORE_OK)
		return status;
	status = pg_deliver_body(s, d, res);
	status = pg_txn_end(s, own, status);
	if (status != STORE_OK) {
		store_delivery_result_clear(res);
		memset(res, 0, sizeof(*res));
	}
	return status;
}

/* ---- mailboxes ---- */

#define PG_ENTRY_COLS "SELECT e.uid, e.user_id, e.message_id, e.kind, e.flags, e.size," \
	" e.arrived, m.sender FROM entries e JOIN messages m ON m.id = e.message_id "

static void
pg_row_entry(struct store *s, const PGresult *r, int i, void *elem)
{
	struct store_entry *e = elem;

	e->uid = pg_col_i64(r, i, 0);
	e->user_id = pg_col_i64(r, i, 1);
	e->message_id = pg_col_i64(r, i, 2);
	e->kind = (enum store_kind)pg_col_i64(r, i, 3);
	e->flags = (unsigned)pg_col_i64(r, i, 4);
	e->size = (uint64_t)pg_col_i64(r, i, 5);
	e->arrived = pg_col_i64(r, i, 6);
	e->sender = pg_col_str(r, i, 7);
	store_uidl_format(e->uidl, sizeof(e->uidl), ((struct pg *)s->impl)->epoch, e->uid);
}

int
pg_mailbox_list(struct store *s, int64_t user_id, struct store_entry **out, size_t *n)
{
	char idbuf[PG_INT_LEN];
	const char *v[] = { pg_i64(idbuf, user_id) };

	return pg_rows(s, "list mailbox", PG_ENTRY_COLS "WHERE e.user_id = $1 ORDER BY e.uid",
	    1, v, sizeof(struct store_entry), pg_row_entry, out, n);
}

int
pg_entry_get(struct store *s, int64_t user_id, const char *uidl, struct store_entry *out)
{
	char idbuf[PG_INT_LEN], uidbuf[PG_INT_LEN];
	const char *v[2];
	int64_t uid;
	int status;
	PGresult *r;

	if (store_uidl_parse(uidl, ((struct pg *)s->impl)->epoch, &uid) != 0)
		return store_fail(s, STORE_NOTFOUND, "no message %s in this mailbox", uidl);
	v[0] = pg_i64(idbuf, user_id);
	v[1] = pg_i64(uidbuf, uid);
	r = pg_run(s, &status, "get entry", PG_ENTRY_COLS "WHERE e.user_id = $1 AND e.uid = $2",
	    2, v);
	if (r == NULL)
		return status;
	if (PQntuples(r) == 1)
		pg_row_entry(s, r, 0, out);
	else
		status = store_fail(s, STORE_NOTFOUND, "no message %s in this mailbox", uidl);
	PQclear(r);
	return status;
}

/*
 * The entry's prefix (uid 0: a queue row's message, none), checking that
 * the entry (or message) still exists: STORE_NOTFOUND when it is gone.
 */
static int
pg_prefix(struct store *s, const struct store_entry *e, char **prefix, size_t *plen)
{
	char idbuf[PG_INT_LEN];
	const char *v[] = { pg_i64(idbuf, e->uid ? e->uid : e->message_id) };
	int status;
	PGresult *r = pg_query(s, &status, "read entry", e->uid ?
	    "SELECT prefix FROM entries WHERE uid = $1" :
	    "SELECT ''::bytea FROM messages WHERE id = $1 AND orphaned_at IS NULL", 1, v,
	    NULL, NULL, 1);

	if (r == NULL)
		return status;
	if (PQntuples(r) == 1) {
		*plen = (size_t)PQgetlength(r, 0, 0);
		*prefix = xmalloc(*plen + 1);
		memcpy(*prefix, PQgetvalue(r, 0, 0), *plen);
	} else
		status = store_fail(s, STORE_NOTFOUND, "message %s is gone", e->uidl);
	PQclear(r);
	return status;
}

/* Up to len bytes of message mid's body from offset: each chunk it spans, a slice of it. */
static int
pg_body_read(struct store *s, const struct store_entry *e, uint64_t offset, char *buf,
    size_t len, size_t *got)
{
	char idbuf[PG_INT_LEN], first[PG_INT_LEN], last[PG_INT_LEN], from[PG_INT_LEN];
	char count[PG_INT_LEN];
	const char *v[] = { pg_i64(idbuf, e->message_id),
	    pg_i64(first, (int64_t)(offset / PG_CHUNK)),
	    pg_i64(last, (int64_t)((offset + len - 1) / PG_CHUNK)),
	    pg_i64(from, (int64_t)(offset % PG_CHUNK) + 1), pg_i64(count, (int64_t)len) };
	int status;
	/*
	 * The first chunk from the offset; the others from their start.  The
	 * total is cut to len below.
	 */
	PGresult *r = pg_query(s, &status, "read message body",
	    "SELECT CASE WHEN seq = $2 THEN substring(data FROM $4::integer FOR $5::integer)"
	    " ELSE substring(data FROM 1 FOR $5::integer) END"
	    " FROM message_chunks WHERE message_id = $1 AND seq BETWEEN $2 AND $3"
	    " ORDER BY seq", 5, v, NULL, NULL, 1);
	size_t n = 0;

	if (r == NULL)
		return status;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return store_fail(s, STORE_NOTFOUND, "message %s is gone", e->uidl);
	}
	for (int i = 0; i < PQntuples(r) && n < len; i++) {
		size_t l = (size_t)PQgetlength(r, i, 0);

		if (l > len - n)
			l = len - n;
		memcpy(buf + n, PQgetvalue(r, i, 0), l);
		n += l;
	}
	PQclear(r);
	*got = n;
	return STORE_OK;
}

/* A slice of the entry's full text: its prefix, then the shared body. */
static int
pg_text_read(struct store *s, const struct store_entry *e, const char *prefix, size_t plen,
    uint64_t offset, void *buf, size_t len, size_t *got)
{
	size_t n = 0, g = 0;
	int status = STORE_OK;

	if (offset < plen) {
		n = plen - (size_t)offset < len ? plen - (size_t)offset : len;
		memcpy(buf, prefix + offset, n);
	}
	if (n < len && offset + n < e->size) {
		size_t want = e->size - (offset + n) < len - n ?
		    (size_t)(e->size - (offset + n)) : len - n;

		status = pg_body_read(s, e, offset + n - plen, (char *)buf + n, want, &g);
	}
	*got = n + g;
	return status;
}

int
pg_entry_read(struct store *s, const struct store_entry *e, uint64_t offset,
    void *buf, size_t len, size_t *got)
{
	char *prefix;
	size_t plen;
	int status;

	if ((status = pg_prefix(s, e, &prefix, &plen)) != STORE_OK)
		return status;
	status = pg_text_read(s, e, prefix, plen, offset, buf, len, got);
	free(prefix);
	return status;
}

/* A reader keeps the prefix; each read is one query for the body's slice. */
struct pg_reader {
	struct store *s;		/* first: see store.c */
	struct store_entry e;
	char *prefix;
	size_t plen;
};

int
pg_reader_open(struct store *s, const struct store_entry *e, struct store_reader **out)
{
	struct pg_reader *r = xcalloc(1, sizeof(*r));
	int status;

	if ((status = pg_prefix(s, e, &r->prefix, &r->plen)) != STORE_OK) {
		free(r);
		return status;
	}
	r->s = s;
	r->e = *e;
	r->e.sender = NULL;
	*out = (struct store_reader *)r;
	return STORE_OK;
}

int
pg_reader_read(struct store_reader *sr, uint64_t offset, void *buf, size_t len, size_t *got)
{
	struct pg_reader *r = (struct pg_reader *)sr;

	return pg_text_read(r->s, &r->e, r->prefix, r->plen, offset, buf, len, got);
}

void
pg_reader_close(struct store_reader *sr)
{
	struct pg_reader *r = (struct pg_reader *)sr;

	free(r->prefix);
	free(r);
}

/* Delete entries of one mailbox in one statement; ones already gone are no error. */
int
pg_entries_delete(struct store *s, int64_t user_id, const int64_t *uids, size_t n)
{
	char idbuf[PG_INT_LEN], *arr;
	const char *v[2];
	int status;

	if (n == 0)
		return STORE_OK;
	arr = pg_int_array(uids, n);
	v[0] = pg_i64(idbuf, user_id);
	v[1] = arr;
	status = pg_exec(s, "delete entries", "DELETE FROM entries WHERE user_id = $1"
	    " AND uid = ANY($2::bigint[])", 2, v);
	free(arr);
	return status;
}

int
pg_entry_set_flags(struct store *s, int64_t user_id, int64_t uid, unsigned flags)
{
	char idbuf[PG_INT_LEN], uidbuf[PG_INT_LEN], fl[PG_INT_LEN];
	const char *v[] = { pg_i64(idbuf, user_id), pg_i64(uidbuf, uid), pg_i64(fl, flags) };

	return pg_exec_one(s, "set flags", "UPDATE entries SET flags = $3"
	    " WHERE user_id = $1 AND uid = $2", 3, v, "no such message");
}

/* ---- POP3 locks ---- */

/*
 * The lease runs on the database's clock, the same for every node; a
 * lock is free when its lease ran out, or its node's heartbeat is stale
 * (the node died), or it is the owner's own (a renewal).
 */
int
pg_pop3_lock(struct store *s, int64_t user_id, const char *owner, int64_t now, unsigned lease)
{
	char idbuf[PG_INT_LEN], leasebuf[PG_INT_LEN], stale[PG_INT_LEN];
	const char *v[] = { pg_i64(idbuf, user_id), owner, pg_i64(leasebuf, lease),
	    ((struct pg *)s->impl)->node, pg_i64(stale, STORE_NODE_STALE) };
	int status = pg_exec_one(s, "lock mailbox", "INSERT INTO pop3_locks (user_id, owner,"
	    " expires, node) VALUES ($1, $2, umbox_now() + $3, nullif($4, ''))"
	    " ON CONFLICT (user_id) DO UPDATE SET owner = excluded.owner,"
	    " expires = excluded.expires, node = excluded.node"
	    " WHERE pop3_locks.expires < umbox_now() OR pop3_locks.owner = excluded.owner"
	    " OR EXISTS (SELECT 1 FROM nodes n WHERE n.id = pop3_locks.node"
	    " AND n.heartbeat < umbox_now() - $5)", 5, v,
	    "mailbox is in use by another session");

	(void)now;
	return status == STORE_NOTFOUND ? STORE_LOCKED : status;
}

/* ---- nodes ---- */

int
pg_node_claim(struct store *s, const char *instance)
{
	struct pg *p = s->impl;
	char stale[PG_INT_LEN];
	const char *v[] = { p->node, instance, pg_i64(stale, STORE_NODE_STALE) };
	int status = pg_exec_one(s, "claim the node name", "INSERT INTO nodes (id, instance,"
	    " started, heartbeat) VALUES ($1, $2, umbox_now(), umbox_now())"
	    " ON CONFLICT (id) DO UPDATE SET instance = excluded.instance,"
	    " started = excluded.started, heartbeat = excluded.heartbeat"
	    " WHERE nodes.instance = excluded.instance"
	    " OR nodes.heartbeat < umbox_now() - $3", 3, v, "");
	PGresult *r;

	if (status != STORE_NOTFOUND)
		return status;
	r = pg_run(s, &status, "look at the node", "SELECT instance, umbox_now() - heartbeat"
	    " FROM nodes WHERE id = $1", 1, v);
	if (r && PQntuples(r) == 1)
		status = store_fail(s, STORE_EXISTS, "node_id %s is in use by %s (heartbeat %s s"
		    " ago): give each node its own [store] node_id", p->node, PQgetvalue(r, 0, 0),
		    PQgetvalue(r, 0, 1));
	else if (r)
		status = store_fail(s, STORE_EXISTS, "node_id %s is in use", p->node);
	PQclear(r);
	return status;
}

int
pg_node_beat(struct store *s, const char *instance)
{
	struct pg *p = s->impl;
	char missing[300];
	const char *v[] = { p->node, instance };
	int status;

	snprintf(missing, sizeof(missing), "node_id %s was taken over by another process", p->node);
	status = pg_exec_one(s, "node heartbeat", "UPDATE nodes SET heartbeat = umbox_now()"
	    " WHERE id = $1 AND instance = $2", 2, v, missing);
	return status == STORE_NOTFOUND ? STORE_LOCKED : status;
}

void
pg_node_release(struct store *s, const char *instance)
{
	const char *v[] = { ((struct pg *)s->impl)->node, instance };

	pg_exec(s, "release the node name", "DELETE FROM nodes WHERE id = $1 AND instance = $2",
	    2, v);
}

int
pg_pop3_unlock(struct store *s, int64_t user_id, const char *owner, const char *prefix)
{
	char idbuf[PG_INT_LEN];
	const char *v[2];

	if (owner) {
		v[0] = pg_i64(idbuf, user_id);
		v[1] = owner;
		return pg_exec(s, "unlock mailbox", "DELETE FROM pop3_locks"
		    " WHERE user_id = $1 AND owner = $2", 2, v);
	}
	v[0] = prefix;
	return pg_exec(s, "unlock mailbox", "DELETE FROM pop3_locks"
	    " WHERE left(owner, length($1)) = $1", 1, v);
}

int
pg_stats(struct store *s, struct store_stats *out)
{
	int status;
	PGresult *r = pg_run(s, &status, "stats", "SELECT (SELECT count(*) FROM domains),"
	    " (SELECT count(*) FROM users), (SELECT count(*) FROM aliases),"
	    " (SELECT count(*) FROM relays),"
	    " (SELECT count(*) FROM messages WHERE orphaned_at IS NULL),"
	    " (SELECT coalesce(sum(size), 0) FROM messages WHERE orphaned_at IS NULL),"
	    " (SELECT count(*) FROM entries),"
	    " (SELECT count(*) FROM queue WHERE status = 0),"
	    " (SELECT count(*) FROM queue WHERE status = 1)", 0, NULL);

	if (r == NULL)
		return status;
	out->domains = (uint64_t)pg_col_i64(r, 0, 0);
	out->users = (uint64_t)pg_col_i64(r, 0, 1);
	out->aliases = (uint64_t)pg_col_i64(r, 0, 2);
	out->relays = (uint64_t)pg_col_i64(r, 0, 3);
	out->messages = (uint64_t)pg_col_i64(r, 0, 4);
	out->message_bytes = (uint64_t)pg_col_i64(r, 0, 5);
	out->entries = (uint64_t)pg_col_i64(r, 0, 6);
	out->queued = (uint64_t)pg_col_i64(r, 0, 7);
	out->queue_failed = (uint64_t)pg_col_i64(r, 0, 8);
	PQclear(r);
	return STORE_OK;
}

/* Messages orphaned before `before` go, with their chunks; still unreferenced, to be sure. */
int
pg_sweep(struct store *s, int64_t before, size_t *n)
{
	char at[PG_INT_LEN];
	const char *v[] = { pg_i64(at, before) };
	int status;
	PGresult *r = pg_run(s, &status, "sweep messages", "DELETE FROM messages m"
	    " WHERE orphaned_at < $1"
	    " AND NOT EXISTS (SELECT 1 FROM entries WHERE message_id = m.id)"
	    " AND NOT EXISTS (SELECT 1 FROM queue WHERE message_id = m.id)", 1, v);

	*n = 0;
	if (r == NULL)
		return status;
	*n = (size_t)strtoull(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return STORE_OK;
}
