/*
 * pg_mail.c - messages, mailbox entries, POP3 locks and the counts in
 * PostgreSQL (schema step 4 of pg.c): the rules of sqlite_mail.c, but
 * a message without references is swept later rather than deleted.
 *
 * A message's bytes are rows of message_chunks, PG_CHUNK bytes each,
 * stored uncompressed out of line (a chunk that fits in a page, in line),
 * so that a slice is read with substring() without the rest of its chunk.  A delivery is one call of
 * umbox_deliver() (pg.c, schema steps 6 and 10), after the local users'
 * rows are locked in id order (here, or for a whole batch by the
 * pipeline): deliveries on other nodes to the same mailbox wait instead
 * of both passing the quota check.
 */
#include "store/pg_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

/*
 * The bytes of d from off, want of them: in d's memory, or read from its
 * spool file into buf (PG_CHUNK bytes).
 */
static int
pg_body_slice(struct store *s, const struct store_delivery *d, uint64_t off, size_t want,
    char *buf, const void **p)
{
	size_t have = 0;

	if (d->fd < 0) {
		*p = (const char *)d->data + off;
		return STORE_OK;
	}
	while (have < want) {
		ssize_t got = pread(d->fd, buf + have, want - have, (off_t)(off + have));

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return store_fail(s, STORE_ERROR, "read spooled message: %s",
			    got < 0 ? strerror(errno) : "file is shorter than its length");
		have += (size_t)got;
	}
	*p = buf;
	return STORE_OK;
}

/* "{"a","b",NULL}": the text of a text[] parameter (NULL elements allowed).  Free it. */
static char *
pg_text_array(const char *const *v, size_t n)
{
	size_t len = 3;
	char *out, *p;

	for (size_t i = 0; i < n; i++)
		len += (v[i] ? 2 * strlen(v[i]) : 4) + 3;
	p = out = xmalloc(len);
	*p++ = '{';
	for (size_t i = 0; i < n; i++) {
		if (i)
			*p++ = ',';
		if (v[i] == NULL) {
			memcpy(p, "NULL", 4);
			p += 4;
			continue;
		}
		*p++ = '"';
		for (const char *c = v[i]; *c; c++) {
			if (*c == '"' || *c == '\\')
				*p++ = '\\';
			*p++ = *c;
		}
		*p++ = '"';
	}
	*p++ = '}';
	*p = '\0';
	return out;
}

/* The local targets' prefixes as the text of a bytea[] parameter, in hex.  Free it. */
static char *
pg_prefix_array(const struct store_delivery *d)
{
	static const char hex[] = "0123456789abcdef";
	size_t len = 3;
	char *out, *p;

	for (size_t i = 0; i < d->nlocal; i++)
		len += 2 * (d->local[i].prefix ? strlen(d->local[i].prefix) : 0) + 6;
	p = out = xmalloc(len);
	*p++ = '{';
	for (size_t i = 0; i < d->nlocal; i++) {
		const unsigned char *c = (const unsigned char *)
		    (d->local[i].prefix ? d->local[i].prefix : "");

		p += sprintf(p, "%s\"\\\\x", i ? "," : "");
		for (; *c; c++) {
			*p++ = hex[*c >> 4];
			*p++ = hex[*c & 15];
		}
		*p++ = '"';
	}
	*p++ = '}';
	*p = '\0';
	return out;
}

/*
 * One delivery's call of umbox_deliver() (schema step 6): its parameters,
 * owned here until pg_deliver_call_free().  The body's first chunk is in
 * the call; the rest go through umbox_chunk().
 */
#define PG_DELIVER_SQL "SELECT o_status, o_message, o_targets, o_detail FROM umbox_deliver(" \
	"$1::bigint, $2, $3::bigint, $4::bigint, $5, $6::smallint, $7::bytea, $8::bigint[]," \
	" $9::bytea[], $10::text[], $11::boolean, $12::text[], $13::bigint[])"
#define PG_CHUNK_SQL	"SELECT umbox_chunk($1::integer, $2::bytea)"
#define PG_DELIVER_N	13

struct pg_deliver_call {
	char mid[PG_INT_LEN], size[PG_INT_LEN], now[PG_INT_LEN], kind[PG_INT_LEN];
	char *users, *prefixes, *addresses, *remote, *consume;
	char *buf;			/* a chunk read from the spool file */
	const char *v[PG_DELIVER_N];
	int lengths[PG_DELIVER_N], formats[PG_DELIVER_N];
};

static void
pg_deliver_call_free(struct pg_deliver_call *c)
{
	free(c->users);
	free(c->prefixes);
	free(c->addresses);
	free(c->remote);
	free(c->consume);
	free(c->buf);
}

/* Check d and make its call; on failure nothing is to be sent (s->clean is set). */
static int
pg_deliver_call_make(struct store *s, const struct store_delivery *d, struct pg_deliver_call *c)
{
	int64_t *ids;
	const char **addr;
	size_t first = d->len < PG_CHUNK ? (size_t)d->len : PG_CHUNK;
	const void *body = "";
	int status;

	memset(c, 0, sizeof(*c));
	s->clean = 1;
	if (d->message_id != 0 && d->check_quota)
		return store_fail(s, STORE_INVALID, "a delivery of a stored message"
		    " does not check quotas");
	if (d->message_id == 0 && d->len > (uint64_t)INT32_MAX)
		return store_fail(s, STORE_INVALID, "message of %" PRIu64 " bytes is too large",
		    d->len);
	if (d->nlocal == 0 && d->nremote == 0)
		return store_fail(s, STORE_INVALID, "a delivery without recipients");
	if (d->message_id == 0 && first > 0) {
		if (d->fd >= 0)
			c->buf = xmalloc(PG_CHUNK);
		if ((status = pg_body_slice(s, d, 0, first, c->buf, &body)) != STORE_OK)
			return status;
	}
	ids = xcalloc(d->nlocal + 1, sizeof(*ids));
	addr = xcalloc(d->nlocal + 1, sizeof(*addr));
	for (size_t i = 0; i < d->nlocal; i++) {
		ids[i] = d->local[i].user_id;
		addr[i] = d->local[i].address;
	}
	c->users = pg_int_array(ids, d->nlocal);
	c->addresses = pg_text_array(addr, d->nlocal);
	free(ids);
	free(addr);
	c->prefixes = pg_prefix_array(d);
	c->remote = pg_text_array(d->remote, d->nremote);
	c->consume = pg_int_array(d->consume, d->nconsume);
	c->v[0] = d->message_id ? pg_i64(c->mid, d->message_id) : NULL;
	c->v[1] = d->sender ? d->sender : "";
	c->v[2] = pg_i64(c->size, (int64_t)d->len);
	c->v[3] = pg_i64(c->now, (int64_t)time(NULL));
	c->v[4] = d->qid;
	c->v[5] = pg_i64(c->kind, d->kind);
	c->v[6] = body;
	c->lengths[6] = (int)first;
	c->formats[6] = 1;
	c->v[7] = c->users;
	c->v[8] = c->prefixes;
	c->v[9] = c->addresses;
	c->v[10] = d->check_quota ? "t" : "f";
	c->v[11] = c->remote;
	c->v[12] = c->consume;
	s->clean = 0;
	return STORE_OK;
}

/* The parameters of chunk seq (from 1) of d's body, read into c->buf if spooled. */
static int
pg_deliver_chunk(struct store *s, const struct store_delivery *d, struct pg_deliver_call *c,
    int seq, char seqbuf[PG_INT_LEN], const char *v[2], int lengths[2])
{
	uint64_t off = (uint64_t)seq * PG_CHUNK;
	size_t want = d->len - off < PG_CHUNK ? (size_t)(d->len - off) : PG_CHUNK;
	const void *p;
	int status;

	if ((status = pg_body_slice(s, d, off, want, c->buf, &p)) != STORE_OK)
		return status;
	v[0] = pg_i64(seqbuf, seq);
	v[1] = p;
	lengths[0] = 0;
	lengths[1] = (int)want;
	return STORE_OK;
}

/* How many chunks after the first d's body has. */
static int
pg_deliver_more(const struct store_delivery *d)
{
	if (d->message_id != 0 || d->len <= PG_CHUNK)
		return 0;
	return (int)((d->len - 1) / PG_CHUNK);
}

/*
 * umbox_deliver()'s answer into res.  A refusal it reports wrote
 * nothing, so the transaction goes on (s->clean).
 */
static int
pg_deliver_answer(struct store *s, const struct store_delivery *d, const PGresult *r,
    struct store_delivery_result *res)
{
	struct pg *p = s->impl;
	int status = (int)pg_col_i64(r, 0, 0);

	if (status != STORE_OK) {
		s->clean = 1;
		return store_fail(s, status, "%s", PQgetvalue(r, 0, 3));
	}
	res->message_id = pg_col_i64(r, 0, 1);
	if (d->message_id == 0 && res->message_id >= p->message_floor)
		p->message_floor = res->message_id + 1;
	if (!PQgetisnull(r, 0, 2)) {
		const char *t = PQgetvalue(r, 0, 2);

		res->local = xcalloc(d->nlocal ? d->nlocal : 1, sizeof(*res->local));
		for (size_t i = 0; i < d->nlocal && *t; i++) {
			t += strcspn(t, "01");
			res->local[i] = *t == '1' ? STORE_TARGET_DEFERRED_FULL :
			    STORE_TARGET_DELIVERED;
			if (*t)
				t++;
		}
	}
	for (size_t i = 0; i < d->nlocal; i++) {
		if (res->local && res->local[i] == STORE_TARGET_DEFERRED_FULL)
			res->deferred++;
		else
			res->delivered++;
	}
	res->queued = d->nremote;
	if (d->qid)
		snprintf(res->qid, sizeof(res->qid), "%s", d->qid);
	else
		snprintf(res->qid, sizeof(res->qid), "%010" PRIX64, (uint64_t)res->message_id);
	return STORE_OK;
}

static int
pg_deliver_body(struct store *s, const struct store_delivery *d,
    struct store_delivery_result *res)
{
	struct pg_deliver_call c;
	int status, more = pg_deliver_more(d);
	PGresult *r;

	if ((status = pg_deliver_call_make(s, d, &c)) != STORE_OK) {
		pg_deliver_call_free(&c);
		return status;
	}
	if (d->nlocal > 0) {
		int64_t *ids = xcalloc(d->nlocal, sizeof(*ids));
		const char *v[1];

		for (size_t i = 0; i < d->nlocal; i++)
			ids[i] = d->local[i].user_id;
		v[0] = pg_int_array(ids, d->nlocal);
		status = pg_exec(s, "lock mailboxes", PG_LOCK_USERS_SQL, 1, v);
		free((char *)v[0]);
		free(ids);
		if (status != STORE_OK) {
			pg_deliver_call_free(&c);
			return status;
		}
	}
	r = pg_query(s, &status, "store message", PG_DELIVER_SQL, PG_DELIVER_N, c.v, c.lengths,
	    c.formats, 0);
	if (r != NULL) {
		status = pg_deliver_answer(s, d, r, res);
		PQclear(r);
	}
	for (int seq = 1; seq <= more && status == STORE_OK && res->message_id; seq++) {
		char seqbuf[PG_INT_LEN];
		const char *v[2];
		int lengths[2], formats[] = { 0, 1 };

		if ((status = pg_deliver_chunk(s, d, &c, seq, seqbuf, v, lengths)) == STORE_OK)
			PQclear(pg_query(s, &status, "store message", PG_CHUNK_SQL, 2, v, lengths,
			    formats, 0));
	}
	pg_deliver_call_free(&c);
	return status;
}

void
pg_pipe_prepare(struct store *s)
{
	pg_prepare(s, PG_DELIVER_SQL, PG_DELIVER_N);
	pg_prepare(s, PG_CHUNK_SQL, 2);
}

/*
 * A delivery in the writer's pipeline: its call and its other chunks
 * sent.  A failure before anything went out is clean (s->clean); one
 * after (a spool file that ends early) spoils the batch.
 */
int
pg_deliver_send(struct store *s, const struct store_delivery *d)
{
	struct pg_deliver_call c;
	int status, more = pg_deliver_more(d), formats[] = { 0, 1 };

	if ((status = pg_deliver_call_make(s, d, &c)) == STORE_OK)
		status = pg_pipe_send(s, "store message", PG_DELIVER_SQL, PG_DELIVER_N, c.v,
		    c.lengths, c.formats);
	for (int seq = 1; seq <= more && status == STORE_OK; seq++) {
		char seqbuf[PG_INT_LEN];
		const char *v[2];
		int lengths[2];

		if ((status = pg_deliver_chunk(s, d, &c, seq, seqbuf, v, lengths)) == STORE_OK)
			status = pg_pipe_send(s, "store message", PG_CHUNK_SQL, 2, v, lengths,
			    formats);
	}
	pg_deliver_call_free(&c);
	return status;
}

/* Its answers, in the order pg_deliver_send sent them. */
int
pg_deliver_recv(struct store *s, const struct store_delivery *d,
    struct store_delivery_result *res)
{
	int status, answer, more = pg_deliver_more(d);
	PGresult *r = pg_pipe_result(s, &status, "store message");

	if (r == NULL)
		return status;
	answer = pg_deliver_answer(s, d, r, res);
	PQclear(r);
	for (int seq = 1; seq <= more && status == STORE_OK; seq++)
		PQclear(pg_pipe_result(s, &status, "store message"));
	if (status == STORE_OK)
		status = answer;
	if (status != STORE_OK) {
		store_delivery_result_clear(res);
		memset(res, 0, sizeof(*res));
	}
	return status;
}

/*
 * A delivery whose batch committed but whose answer was lost: its message
 * row (by queue ID) is there when it was stored, with its queue rows (a
 * full mailbox's among them); without one it was refused (a full mailbox
 * when it must not wait: it wrote nothing).
 */
int
pg_deliver_resolve(struct store *s, const struct store_delivery *d,
    struct store_delivery_result *res)
{
	struct pg *p = s->impl;
	char idbuf[PG_INT_LEN], floor[PG_INT_LEN];
	const char *v[] = { d->qid, pg_i64(floor, p->message_floor) };
	int status;
	/* Only messages stored since this handle's last one: not the whole table. */
	PGresult *r = pg_run(s, &status, "a delivery whose answer was lost", "SELECT m.id,"
	    " (SELECT count(*) FROM queue q WHERE q.message_id = m.id"
	    " AND q.local_user_id IS NULL) FROM messages m WHERE m.qid = $1"
	    " AND m.id >= $2::bigint", 2, v);

	memset(res, 0, sizeof(*res));
	if (r == NULL)
		return status;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return store_fail(s, STORE_QUOTA, "the batch committed without this delivery"
		    " (refused; its answer was lost with the connection)");
	}
	res->message_id = pg_col_i64(r, 0, 0);
	res->queued = (size_t)pg_col_i64(r, 0, 1);
	snprintf(res->qid, sizeof(res->qid), "%s", d->qid);
	PQclear(r);
	/* The local targets waiting in the queue are those whose mailbox was full. */
	v[0] = pg_i64(idbuf, res->message_id);
	if ((r = pg_run(s, &status, "a delivery whose answer was lost", "SELECT local_user_id"
	    " FROM queue WHERE message_id = $1 AND local_user_id IS NOT NULL", 1, v)) == NULL) {
		memset(res, 0, sizeof(*res));
		return status;
	}
	if (PQntuples(r) > 0)
		res->local = xcalloc(d->nlocal ? d->nlocal : 1, sizeof(*res->local));
	for (size_t i = 0; i < d->nlocal; i++) {
		for (int k = 0; k < PQntuples(r) && res->local[i] == STORE_TARGET_DELIVERED; k++)
			if (pg_col_i64(r, k, 0) == d->local[i].user_id)
				res->local[i] = STORE_TARGET_DEFERRED_FULL;
		if (store_delivery_local_status(res, i) == STORE_TARGET_DEFERRED_FULL)
			res->deferred++;
		else
			res->delivered++;
	}
	PQclear(r);
	return STORE_OK;
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

/*
 * The sender by the message's key, row by row: as a join the planner
 * would hash every message in the store to list one mailbox.
 */
#define PG_ENTRY_COLS "SELECT e.uid, e.user_id, e.message_id, e.kind, e.flags, e.size," \
	" e.arrived, (SELECT m.sender FROM messages m WHERE m.id = e.message_id)" \
	" FROM entries e "

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

/*
 * The head of an entry's text, up to len bytes that the first chunk holds
 * (most RETRs: the whole message): the prefix and the chunk's start in
 * one query, rather than one for each.
 */
static int
pg_entry_head(struct store *s, const struct store_entry *e, void *buf, size_t len,
    size_t *got)
{
	char idbuf[PG_INT_LEN], lenbuf[PG_INT_LEN];
	const char *v[] = { pg_i64(idbuf, e->uid), pg_i64(lenbuf, (int64_t)len) };
	int status;
	PGresult *r = pg_query(s, &status, "read entry", "SELECT e.prefix,"
	    " substring(c.data FROM 1 FOR $2::integer) FROM entries e"
	    " LEFT JOIN message_chunks c ON c.message_id = e.message_id AND c.seq = 0"
	    " WHERE e.uid = $1", 2, v, NULL, NULL, 1);
	size_t n = 0;

	if (r == NULL)
		return status;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return store_fail(s, STORE_NOTFOUND, "message %s is gone", e->uidl);
	}
	for (int col = 0; col < 2 && n < len; col++) {
		size_t l = (size_t)PQgetlength(r, 0, col);

		if (l > len - n)
			l = len - n;
		memcpy((char *)buf + n, PQgetvalue(r, 0, col), l);
		n += l;
	}
	PQclear(r);
	*got = n;
	return STORE_OK;
}

int
pg_entry_read(struct store *s, const struct store_entry *e, uint64_t offset,
    void *buf, size_t len, size_t *got)
{
	char *prefix;
	size_t plen;
	int status;

	if (offset == 0 && e->uid && len <= PG_CHUNK)
		return pg_entry_head(s, e, buf, len, got);
	if ((status = pg_prefix(s, e, &prefix, &plen)) != STORE_OK)
		return status;
	status = pg_text_read(s, e, prefix, plen, offset, buf, len, got);
	free(prefix);
	return status;
}

/*
 * Reading ahead: the texts of several entries in one query.  An entry
 * whose body is more than its first chunk is left to pg_entry_read
 * (STORE_NO_TEXT here), as is one whose text does not add up to its size.
 */
int
pg_entries_read(struct store *s, const struct store_entry *e, size_t n, void *buf,
    size_t len, size_t *lens)
{
	int64_t *uids = xcalloc(n ? n : 1, sizeof(*uids));
	size_t k = 0, used = 0;
	const char *v[1];
	int status;
	PGresult *r;

	for (size_t i = 0; i < n; i++) {
		lens[i] = STORE_NO_TEXT;
		if (e[i].uid && e[i].size <= PG_CHUNK)
			uids[k++] = e[i].uid;
	}
	if (k == 0) {
		free(uids);
		return STORE_OK;
	}
	v[0] = pg_int_array(uids, k);
	free(uids);
	r = pg_query(s, &status, "read entries", "SELECT e.uid, e.prefix, c.data FROM entries e"
	    " LEFT JOIN message_chunks c ON c.message_id = e.message_id AND c.seq = 0"
	    " WHERE e.uid = ANY($1::bigint[])", 1, v, NULL, NULL, 1);
	free((char *)v[0]);
	if (r == NULL)
		return status;
	for (size_t i = 0; i < n; i++) {
		for (int row = 0; row < PQntuples(r); row++) {
			size_t plen = (size_t)PQgetlength(r, row, 1);
			size_t blen = (size_t)PQgetlength(r, row, 2);

			if (pg_bin_i64(r, row, 0) != e[i].uid)
				continue;
			if (plen + blen == e[i].size && e[i].size <= len - used) {
				memcpy((char *)buf + used, PQgetvalue(r, row, 1), plen);
				memcpy((char *)buf + used + plen, PQgetvalue(r, row, 2), blen);
				lens[i] = plen + blen;
				used += lens[i];
			}
			break;
		}
	}
	PQclear(r);
	return STORE_OK;
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
	if (status != STORE_NOTFOUND)
		return status;
	s->clean = 1;		/* nothing written: the lock is another's */
	return STORE_LOCKED;
}

/* ---- nodes ---- */

/*
 * Fold every mailbox's usage deltas into its row (schema step 11), on
 * one node at a time: the others skip it while it does.  A failure only
 * leaves them for the next heartbeat.
 */
#define PG_SETTLE_LOCK	"7565746f6d757365"	/* any fixed bigint: the settling node's */

static void
pg_usage_settle(struct store *s)
{
	int status;

	PQclear(pg_run(s, &status, "settle usage", "SELECT usage_settle(NULL)"
	    " WHERE pg_try_advisory_xact_lock(x'" PG_SETTLE_LOCK "'::bigint)", 0, NULL));
	if (status != STORE_OK)
		log_warn("store: settling mailbox usage: %s", s->errmsg);
}

int
pg_node_claim(struct store *s, const char *instance, const char *replace, char *holder,
    size_t holderlen)
{
	struct pg *p = s->impl;
	char stale[PG_INT_LEN];
	const char *v[] = { p->node, instance, pg_i64(stale, STORE_NODE_STALE), replace };
	int status = pg_exec_one(s, "claim the node name", "INSERT INTO nodes (id, instance,"
	    " started, heartbeat) VALUES ($1, $2, umbox_now(), umbox_now())"
	    " ON CONFLICT (id) DO UPDATE SET instance = excluded.instance,"
	    " started = excluded.started, heartbeat = excluded.heartbeat"
	    " WHERE nodes.instance = excluded.instance"
	    " OR nodes.heartbeat < umbox_now() - $3 OR nodes.instance = $4", 4, v, "");
	PGresult *r;

	if (status == STORE_OK)
		pg_usage_settle(s);
	if (status != STORE_NOTFOUND)
		return status;
	r = pg_run(s, &status, "look at the node", "SELECT instance, umbox_now() - heartbeat"
	    " FROM nodes WHERE id = $1", 1, v);
	if (r && PQntuples(r) == 1) {
		status = store_fail(s, STORE_EXISTS, "node_id %s is in use by %s (heartbeat %s s"
		    " ago): give each node its own [store] node_id", p->node, PQgetvalue(r, 0, 0),
		    PQgetvalue(r, 0, 1));
		if (holder && holderlen)
			snprintf(holder, holderlen, "%s", PQgetvalue(r, 0, 0));
	}
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
		int status;

		v[0] = pg_i64(idbuf, user_id);
		v[1] = owner;
		status = pg_exec_one(s, "unlock mailbox", "DELETE FROM pop3_locks"
		    " WHERE user_id = $1 AND owner = $2", 2, v,
		    "the mailbox lock is not this session's");
		if (status == STORE_NOTFOUND)
			s->clean = 1;		/* nothing written */
		return status;
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
	/* A lost COMMIT is resolved within a minute of its loss (pg.c). */
	return pg_exec(s, "sweep commit marks", "DELETE FROM commit_marks"
	    " WHERE at < umbox_now() - 3600", 0, NULL);
}
