/*
 * sqlite_mail.c - messages, mailbox entries and queue rows in SQLite.
 *
 * A message's bytes live once in messages.body; each mailbox entry adds
 * its own short prefix (Return-Path:, Delivered-To:) and each queue row
 * its recipient.  Triggers (sqlite.c) keep each user's usage and drop a
 * message with its last reference.
 */
#include "store/sqlite_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"

#define SQ_COPY_CHUNK	(64 * 1024)

/*
 * New mail stops short of a full disk, so that what frees space (a POP3
 * login's lock, its deletions, umboxctl mail del) can still commit: a
 * message is stored only while there is room, after twice its size (its
 * WAL frames, then the pages a checkpoint copies them to), for a reserve
 * of an eighth of the file system, at most 16 MiB.  Room is the file
 * system's free space and the database's free pages (what deletions
 * left), measured again every SQ_DISK_RECHECK_MS, and at once when the
 * estimate comes near the line.
 */
#define SQ_DISK_RESERVE_MAX	(16 * 1024 * 1024)
#define SQ_DISK_RECHECK_MS	250

static int
sq_disk_room(struct store *s, uint64_t len)
{
	struct sq *q = sq_of(s);
	int64_t now = monotonic_ms();
	uint64_t reserve, need;

	if (q->disk_checked_ms == 0 || now - q->disk_checked_ms >= SQ_DISK_RECHECK_MS ||
	    q->disk_free < 4 * len + 2 * SQ_DISK_RESERVE_MAX) {
		sqlite3_stmt *st = sq_stmt(s, SQ_FREE_PAGES);
		struct statvfs v;

		/* A file system that cannot say is not held to a reserve. */
		if (statvfs(q->path, &v) != 0)
			return STORE_OK;
		q->disk_free = (uint64_t)v.f_bavail * v.f_frsize;
		q->disk_size = (uint64_t)v.f_blocks * v.f_frsize;
		q->disk_checked_ms = now;
		if (sqlite3_step(st) == SQLITE_ROW)
			q->disk_free += (uint64_t)sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
	}
	reserve = q->disk_size / 8 < SQ_DISK_RESERVE_MAX ? q->disk_size / 8 : SQ_DISK_RESERVE_MAX;
	need = 2 * len + reserve;
	if (q->disk_free < need)
		return store_fail(s, STORE_FULL, "%" PRIu64 " KiB free for the store;"
		    " new mail needs %" PRIu64 " KiB (twice its size and a reserve of %" PRIu64
		    " KiB kept for deletions)", q->disk_free / 1024, need / 1024, reserve / 1024);
	q->disk_free -= 2 * len;
	return STORE_OK;
}

/*
 * A message's bytes: in messages.content, or in body for a message stored
 * before schema step 6 (content NULL, which a blob cannot open).  A row
 * that is gone fails both ways, with SQLITE_ERROR.
 */
int
sq_body_open(sqlite3 *db, int64_t message_id, int write, sqlite3_blob **out)
{
	int rc = sqlite3_blob_open(db, "main", "messages", "content", message_id, write, out);

	if (rc == SQLITE_ERROR)
		rc = sqlite3_blob_open(db, "main", "messages", "body", message_id, write, out);
	return rc;
}

/*
 * Fill a zeroblob'd messages.content from the delivery's file in slices,
 * so that a large message never sits in memory whole.
 */
static int
sq_body_from_fd(struct store *s, int64_t rowid, const struct store_delivery *d)
{
	struct sq *q = sq_of(s);
	sqlite3_blob *blob;
	char *buf;
	uint64_t off = 0;
	int rc, status = STORE_OK;

	rc = sq_body_open(q->db, rowid, 1, &blob);
	if (rc != SQLITE_OK)
		return sq_fail(s, rc, "open message body");
	buf = xmalloc(SQ_COPY_CHUNK);
	while (off < d->len) {
		size_t want = d->len - off < SQ_COPY_CHUNK ? (size_t)(d->len - off) : SQ_COPY_CHUNK;
		ssize_t got = pread(d->fd, buf, want, (off_t)off);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			status = store_fail(s, STORE_ERROR, "read spooled message: %s",
			    got < 0 ? strerror(errno) : "file is shorter than its length");
			break;
		}
		rc = sqlite3_blob_write(blob, buf, (int)got, (int)off);
		if (rc != SQLITE_OK) {
			status = sq_fail(s, rc, "write message body");
			break;
		}
		off += (uint64_t)got;
	}
	free(buf);
	sqlite3_blob_close(blob);
	return status;
}

/* A local target's login and whether this message would take it over quota. */
struct sq_room {
	char login[80];
	int full;
};

/*
 * Check every local target's quota: would usage + prefix + message exceed
 * it?  Fills room[] and returns how many targets are full, or a negative
 * status.  The reasons go into an error message for the log, in case no
 * target can take the message.
 */
static int
sq_check_quota(struct store *s, const struct store_delivery *d, struct sq_room *room)
{
	char why[sizeof(s->errmsg)];
	size_t off = 0;
	int nfull = 0;

	why[0] = '\0';
	for (size_t i = 0; i < d->nlocal; i++) {
		sqlite3_stmt *st = sq_stmt(s, SQ_USER_USAGE);
		uint64_t quota, used, size;
		int rc;

		sqlite3_bind_int64(st, 1, d->local[i].user_id);
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW) {
			sqlite3_reset(st);
			if (rc == SQLITE_DONE)
				return store_fail(s, STORE_INVALID, "no user with id %" PRId64,
				    d->local[i].user_id);
			return sq_fail(s, rc, "user usage");
		}
		snprintf(room[i].login, sizeof(room[i].login), "%s", sqlite3_column_text(st, 0));
		quota = (uint64_t)sqlite3_column_int64(st, 1);
		used = (uint64_t)sqlite3_column_int64(st, 2);
		sqlite3_reset(st);
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
	if ((size_t)nfull == d->nlocal && d->nremote == 0)
		store_fail(s, STORE_QUOTA, "%s", why);
	return nfull;
}

/* The message row, and its body from memory or from the spool file. */
static int
sq_message_add(struct store *s, const struct store_delivery *d, int64_t now, int64_t *mid)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_MESSAGE_ADD);
	int status;

	sqlite3_bind_text(st, 1, d->sender ? d->sender : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)d->len);
	if (d->fd >= 0)
		sqlite3_bind_zeroblob64(st, 3, d->len);
	else
		sqlite3_bind_blob64(st, 3, d->len ? d->data : "", d->len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now);
	sq_bind_text_or_null(st, 5, d->qid);
	if ((status = sq_exec_stmt(s, st, "store message")) != STORE_OK)
		return status;
	*mid = sqlite3_last_insert_rowid(sq_of(s)->db);
	if (d->fd >= 0 && d->len > 0)
		return sq_body_from_fd(s, *mid, d);
	return STORE_OK;
}

/* A local target whose mailbox is full waits in the queue with its own prefix. */
static int
sq_defer_local(struct store *s, const struct store_delivery *d, size_t i, int64_t mid,
    int64_t now, const char *login)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_QUEUE_ADD_LOCAL);
	const char *prefix = d->local[i].prefix ? d->local[i].prefix : "";
	char *domain;
	int status;

	sqlite3_bind_int64(st, 1, mid);
	sqlite3_bind_text(st, 2, d->sender ? d->sender : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, d->local[i].address ? d->local[i].address : login, -1,
	    SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now);
	sqlite3_bind_int(st, 5, (int)d->kind);
	sqlite3_bind_int64(st, 6, d->local[i].user_id);
	sqlite3_bind_blob(st, 7, prefix, (int)strlen(prefix), SQLITE_STATIC);
	sqlite3_bind_text(st, 8, "mailbox full", -1, SQLITE_STATIC);
	domain = store_recipient_domain(d->local[i].address ? d->local[i].address : login);
	sqlite3_bind_text(st, 9, domain, -1, SQLITE_STATIC);
	status = sq_exec_stmt(s, st, "defer delivery");
	free(domain);
	return status;
}

/* An existing message's size, for a delivery that reuses it. */
static int
sq_message_size(struct store *s, int64_t mid, uint64_t *len)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_MESSAGE_SIZE);
	int rc;

	sqlite3_bind_int64(st, 1, mid);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*len = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return store_fail(s, STORE_NOTFOUND, "no message %" PRId64, mid);
	return rc == SQLITE_ROW ? STORE_OK : sq_fail(s, rc, "message size");
}

/* The queue rows a delivery settles go once its entries hold the message. */
static int
sq_consume(struct store *s, const struct store_delivery *d)
{
	for (size_t i = 0; i < d->nconsume; i++) {
		sqlite3_stmt *st = sq_stmt(s, SQ_QUEUE_DEL);
		int status;

		sqlite3_bind_int64(st, 1, d->consume[i]);
		if ((status = sq_exec_stmt(s, st, "settle queue entry")) != STORE_OK)
			return status;
	}
	return STORE_OK;
}

static int
sq_deliver_body(struct store *s, const struct store_delivery *dd,
    struct store_delivery_result *res)
{
	sqlite3_stmt *st;
	int64_t now = (int64_t)time(NULL), mid;
	struct sq_room *room = NULL;
	struct store_delivery copy = *dd;
	const struct store_delivery *d = &copy;
	int status = STORE_OK, nfull = 0;

	if (dd->message_id != 0) {
		if (dd->check_quota)
			return store_fail(s, STORE_INVALID, "a delivery of a stored message"
			    " does not check quotas");
		if ((status = sq_message_size(s, dd->message_id, &copy.len)) != STORE_OK)
			return status;
	}
	if (d->len > (uint64_t)INT32_MAX)
		return store_fail(s, STORE_INVALID, "message of %" PRIu64 " bytes is too large",
		    d->len);
	if (d->nlocal == 0 && d->nremote == 0)
		return store_fail(s, STORE_INVALID, "a delivery without recipients");
	if (d->check_quota) {
		room = xcalloc(d->nlocal, sizeof(*room));
		if ((nfull = sq_check_quota(s, d, room)) < 0) {
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
	else if ((status = sq_disk_room(s, d->len)) != STORE_OK ||
	    (status = sq_message_add(s, d, now, &mid)) != STORE_OK)
		goto out;
	if (nfull > 0)
		res->local = xcalloc(d->nlocal, sizeof(*res->local));

	for (size_t i = 0; i < d->nlocal; i++) {
		const char *prefix = d->local[i].prefix ? d->local[i].prefix : "";
		size_t plen = strlen(prefix);

		if (room && room[i].full) {
			if ((status = sq_defer_local(s, d, i, mid, now, room[i].login)) != STORE_OK)
				goto out;
			res->local[i] = STORE_TARGET_DEFERRED_FULL;
			res->deferred++;
			continue;
		}
		st = sq_stmt(s, SQ_ENTRY_ADD);
		sqlite3_bind_int64(st, 1, d->local[i].user_id);
		sqlite3_bind_int64(st, 2, mid);
		sqlite3_bind_int(st, 3, (int)d->kind);
		sqlite3_bind_blob(st, 4, prefix, (int)plen, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, (int64_t)(d->len + plen));
		sqlite3_bind_int64(st, 6, now);
		if ((status = sq_exec_stmt(s, st, "store mailbox entry")) != STORE_OK)
			goto out;
		res->delivered++;
	}
	for (size_t i = 0; i < d->nremote; i++) {
		char *domain = store_recipient_domain(d->remote[i]);

		st = sq_stmt(s, SQ_QUEUE_ADD);
		sqlite3_bind_int64(st, 1, mid);
		sqlite3_bind_text(st, 2, d->sender ? d->sender : "", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, d->remote[i], -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, now);
		sqlite3_bind_int(st, 5, (int)d->kind);
		sqlite3_bind_text(st, 6, domain, -1, SQLITE_STATIC);
		status = sq_exec_stmt(s, st, "queue message");
		free(domain);
		if (status != STORE_OK)
			goto out;
		res->queued++;
	}
	if ((status = sq_consume(s, d)) != STORE_OK)
		goto out;
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
sq_deliver(struct store *s, const struct store_delivery *d, struct store_delivery_result *res)
{
	int own, status;

	if ((status = sq_txn_begin(s, &own)) != STORE_OK)
		return status;
	status = sq_deliver_body(s, d, res);
	status = sq_txn_end(s, own, status);
	if (status != STORE_OK) {
		store_delivery_result_clear(res);
		memset(res, 0, sizeof(*res));
	}
	return status;
}

static void
sq_row_entry(struct store *s, sqlite3_stmt *st, struct store_entry *e)
{
	e->uid = sqlite3_column_int64(st, 0);
	e->user_id = sqlite3_column_int64(st, 1);
	e->message_id = sqlite3_column_int64(st, 2);
	e->kind = (enum store_kind)sqlite3_column_int(st, 3);
	e->flags = (unsigned)sqlite3_column_int(st, 4);
	e->size = (uint64_t)sqlite3_column_int64(st, 5);
	e->arrived = sqlite3_column_int64(st, 6);
	e->sender = sq_col_strdup(st, 7);
	store_uidl_format(e->uidl, sizeof(e->uidl), sq_of(s)->epoch, e->uid);
}

int
sq_mailbox_list(struct store *s, int64_t user_id, struct store_entry **out, size_t *n)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_ENTRY_LIST);
	struct store_entry *v = NULL;
	size_t k = 0, cap = 0;
	int rc;

	sqlite3_bind_int64(st, 1, user_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (k == cap) {
			cap = cap ? cap * 2 : 16;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		memset(&v[k], 0, sizeof(v[k]));
		sq_row_entry(s, st, &v[k++]);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store_entry_list_free(&v, k);
		return sq_fail(s, rc, "list mailbox");
	}
	*out = v;
	*n = k;
	return STORE_OK;
}

int
sq_entry_get(struct store *s, int64_t user_id, const char *uidl, struct store_entry *out)
{
	sqlite3_stmt *st;
	int64_t uid;
	int rc;

	if (store_uidl_parse(uidl, sq_of(s)->epoch, &uid) != 0)
		return store_fail(s, STORE_NOTFOUND, "no message %s in this mailbox", uidl);
	st = sq_stmt(s, SQ_ENTRY_GET);
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_int64(st, 2, uid);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		sq_row_entry(s, st, out);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return STORE_OK;
	if (rc == SQLITE_DONE)
		return store_fail(s, STORE_NOTFOUND, "no message %s in this mailbox", uidl);
	return sq_fail(s, rc, "get entry");
}

/*
 * Read a slice of an entry's full text: its prefix, then the shared body.
 * An entry with uid 0 stands for a queue row's message alone, without a
 * prefix (store_queue_reader_open).  Reads run in their own implicit
 * transaction; in WAL mode they never wait for the writer.
 */
int
sq_entry_read(struct store *s, const struct store_entry *e, uint64_t offset,
    void *buf, size_t len, size_t *got)
{
	struct sq *q = sq_of(s);
	uint64_t plen = 0, blen;
	size_t n = 0;
	int rc;

	if (e->uid != 0) {
		sqlite3_stmt *st = sq_stmt(s, SQ_ENTRY_PREFIX);
		const void *prefix;

		sqlite3_bind_int64(st, 1, e->uid);
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW) {
			sqlite3_reset(st);
			if (rc == SQLITE_DONE)
				return store_fail(s, STORE_NOTFOUND, "message %s is gone", e->uidl);
			return sq_fail(s, rc, "read entry");
		}
		prefix = sqlite3_column_blob(st, 0);
		plen = (uint64_t)sqlite3_column_bytes(st, 0);
		if (offset < plen) {
			n = (size_t)(plen - offset) < len ? (size_t)(plen - offset) : len;
			memcpy(buf, (const char *)prefix + offset, n);
		}
		sqlite3_reset(st);
	}

	if (n < len && e->size > plen) {
		sqlite3_blob *blob;
		uint64_t boff = offset + n - plen;
		size_t want;

		blen = e->size - plen;
		if (boff < blen) {
			want = (size_t)(blen - boff) < len - n ? (size_t)(blen - boff) : len - n;
			rc = sq_body_open(q->db, e->message_id, 0, &blob);
			if (rc != SQLITE_OK && e->uid == 0 && rc == SQLITE_ERROR)
				return store_fail(s, STORE_NOTFOUND, "message %s is gone", e->uidl);
			if (rc != SQLITE_OK)
				return sq_fail(s, rc, "open message body");
			rc = sqlite3_blob_read(blob, (char *)buf + n, (int)want, (int)boff);
			sqlite3_blob_close(blob);
			if (rc != SQLITE_OK)
				return sq_fail(s, rc, "read message body");
			n += want;
		}
	}
	*got = n;
	return STORE_OK;
}

#define SQ_READER_OWN_SNAPSHOT	(256 * 1024)

/*
 * Streaming reader.  Reopening a blob for every slice makes SQLite walk
 * the message's overflow pages from the start each time, so a big message
 * would cost the square of its size.  A reader for a big entry keeps one
 * blob handle open, which remembers where it is, on a read-only
 * connection of its own: a read transaction held on the shared connection
 * would freeze what every other reader on it sees.
 */
struct store_reader {
	struct store *s;		/* first: see store.c */
	struct store_entry e;
	char *prefix;
	size_t plen;
	sqlite3 *db;			/* own connection for a big entry, else NULL */
	sqlite3_blob *blob;
};

/* uid 0: a queue row's message, without a prefix (see sq_entry_read). */
int
sq_reader_open(struct store *s, const struct store_entry *e, struct store_reader **out)
{
	struct store_reader *r;
	sqlite3_stmt *st = NULL;
	int rc;

	if (e->uid != 0) {
		st = sq_stmt(s, SQ_ENTRY_PREFIX);
		sqlite3_bind_int64(st, 1, e->uid);
	} else {
		st = sq_stmt(s, SQ_MESSAGE_EXISTS);
		sqlite3_bind_int64(st, 1, e->message_id);
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		if (rc == SQLITE_DONE)
			return store_fail(s, STORE_NOTFOUND, "message %s is gone", e->uidl);
		return sq_fail(s, rc, "read entry");
	}
	if (e->uid == 0) {
		sqlite3_reset(st);
		st = NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->s = s;
	r->e = *e;
	r->e.sender = NULL;
	r->plen = st ? (size_t)sqlite3_column_bytes(st, 0) : 0;
	r->prefix = xmalloc(r->plen + 1);
	if (r->plen)
		memcpy(r->prefix, sqlite3_column_blob(st, 0), r->plen);
	if (st)
		sqlite3_reset(st);

	if (e->size - r->plen > SQ_READER_OWN_SNAPSHOT) {
		rc = sqlite3_open_v2(s->path, &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
		    NULL);
		if (rc == SQLITE_OK) {
			sqlite3_busy_timeout(r->db, 10000);
			rc = sq_body_open(r->db, e->message_id, 0, &r->blob);
		}
		if (rc != SQLITE_OK) {
			int status = store_fail(s, rc == SQLITE_ERROR ? STORE_NOTFOUND : STORE_ERROR,
			    "open message %s: %s", e->uidl,
			    r->db ? sqlite3_errmsg(r->db) : sqlite3_errstr(rc));
			sq_reader_close(r);
			return status;
		}
	}
	*out = r;
	return STORE_OK;
}

int
sq_reader_read(struct store_reader *r, uint64_t offset, void *buf, size_t len, size_t *got)
{
	size_t n = 0;

	if (offset < r->plen) {
		n = r->plen - (size_t)offset < len ? r->plen - (size_t)offset : len;
		memcpy(buf, r->prefix + offset, n);
	}
	if (n < len && offset + n < r->e.size) {
		uint64_t boff = offset + n - r->plen;
		size_t want = r->e.size - (offset + n) < len - n ?
		    (size_t)(r->e.size - (offset + n)) : len - n;
		int rc;

		if (r->blob == NULL) {
			size_t g;
			int status = sq_entry_read(r->s, &r->e, offset + n, (char *)buf + n, want, &g);

			*got = n + (status == STORE_OK ? g : 0);
			return status;
		}
		rc = sqlite3_blob_read(r->blob, (char *)buf + n, (int)want, (int)boff);
		if (rc != SQLITE_OK)
			return store_fail(r->s, STORE_ERROR, "read message %s: %s", r->e.uidl,
			    sqlite3_errmsg(r->db));
		n += want;
	}
	*got = n;
	return STORE_OK;
}

void
sq_reader_close(struct store_reader *r)
{
	if (r->blob)
		sqlite3_blob_close(r->blob);
	if (r->db)
		sqlite3_close(r->db);
	free(r->prefix);
	free(r);
}

/* Delete entries of one mailbox; ones already gone are not an error. */
int
sq_entries_delete(struct store *s, int64_t user_id, const int64_t *uids, size_t n)
{
	sqlite3_stmt *st;
	char *json, *p;
	int own, status;

	if (n == 0)
		return STORE_OK;
	/* One statement, so each page is journalled once, not once per row. */
	p = json = xmalloc(n * 21 + 2);
	*p++ = '[';
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s%lld", i ? "," : "", (long long)uids[i]);
	*p++ = ']';
	if ((status = sq_txn_begin(s, &own)) == STORE_OK) {
		st = sq_stmt(s, SQ_ENTRY_DEL);
		sqlite3_bind_int64(st, 1, user_id);
		sqlite3_bind_text(st, 2, json, (int)(p - json), SQLITE_STATIC);
		status = sq_exec_stmt(s, st, "delete entries");
		sqlite3_clear_bindings(st);
		status = sq_txn_end(s, own, status);
	}
	free(json);
	return status;
}

int
sq_entry_set_flags(struct store *s, int64_t user_id, int64_t uid, unsigned flags)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_ENTRY_FLAGS);
	int status;

	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int(st, 3, (int)flags);
	if ((status = sq_exec_stmt(s, st, "set flags")) != STORE_OK)
		return status;
	if (sqlite3_changes(sq_of(s)->db) == 0)
		return store_fail(s, STORE_NOTFOUND, "no such message");
	return STORE_OK;
}

int
sq_pop3_lock(struct store *s, int64_t user_id, const char *owner, int64_t now, unsigned lease)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_LOCK);
	int status;

	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now + (int64_t)lease);
	sqlite3_bind_int64(st, 4, now);
	if ((status = sq_exec_stmt(s, st, "lock mailbox")) != STORE_OK)
		return status;
	if (sqlite3_changes(sq_of(s)->db) == 0)
		return store_fail(s, STORE_LOCKED, "mailbox is in use by another session");
	return STORE_OK;
}

int
sq_pop3_unlock(struct store *s, int64_t user_id, const char *owner, const char *prefix)
{
	sqlite3_stmt *st;
	int status;

	if (owner) {
		st = sq_stmt(s, SQ_UNLOCK);
		sqlite3_bind_int64(st, 1, user_id);
		sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
	} else {
		st = sq_stmt(s, SQ_UNLOCK_PREFIX);
		sqlite3_bind_text(st, 1, prefix, -1, SQLITE_STATIC);
	}
	if ((status = sq_exec_stmt(s, st, "unlock mailbox")) != STORE_OK)
		return status;
	if (owner && sqlite3_changes(sq_of(s)->db) == 0)
		return store_fail(s, STORE_NOTFOUND, "the mailbox lock is not this session's");
	return STORE_OK;
}
