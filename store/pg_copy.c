/*
 * pg_copy.c - umboxctl store copy --to postgresql: an SQLite store copied
 * into an empty PostgreSQL one, keeping every id, every uid and the UIDL
 * epoch, so that POP3 clients see the same UIDLs and download nothing
 * twice.  Offline: the SQLite file is read in one read transaction (one
 * consistent state), the copy is one PostgreSQL transaction (all or
 * nothing).  Mailbox usage is recomputed by the target's triggers as the
 * entries go in, and settled into the users' rows at the end; ids and
 * uids continue after the highest ever given out (SQLite's
 * sqlite_sequence), so none is reused; POP3 locks are not copied.
 */
#include "store/pg_int.h"
#include "store/sqlite_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

/*
 * Tables in the order their references need, with the columns both
 * schemas share; seq names the identity (or sequence) that goes on
 * after the copied ids.
 */
static const struct copy_table {
	const char *name;
	const char *cols;
	const char *seq_of;	/* "table.column" whose sequence continues, or NULL */
} copy_tables[] = {
	{ "domains", "id, name, guard, guard_detail, forced, checked_at, created_at", "domains.id" },
	{ "users", "id, login, extension, name, email, password, quota, pop3, created_at",
	    "users.id" },
	{ "aliases", "id, name, created_at", "aliases.id" },
	{ "alias_members", "alias_id, member, position", NULL },
	{ "relays", "id, name, host, port, is_default, active, tls, verify, auth, account,"
	    " password, sender, timeout, chunking, created_at", "relays.id" },
	{ "relay_domains", "relay_id, domain, active", NULL },
	{ "messages", "id, qid, sender, size, created_at", "messages.id" },
	{ "entries", "uid, user_id, message_id, kind, flags, prefix, size, arrived", "entries.uid" },
	{ "queue", "id, message_id, sender, recipient, domain, kind, local_user_id, prefix,"
	    " attempts, next_attempt, last_attempt, last_error, status, held, claimed_by,"
	    " claimed_until, created_at", "queue.id" },
};

static int
copy_sqlite_fail(struct store *s, sqlite3 *db, const char *what)
{
	return store_fail(s, STORE_ERROR, "%s: %s", what, sqlite3_errmsg(db));
}

/* Every row of one table, each as one INSERT with its values as they are. */
static int
copy_rows(struct store *s, sqlite3 *db, const struct copy_table *t, uint64_t *rows)
{
	char *sql = xasprintf("SELECT %s FROM %s", t->cols, t->name), *ins, *p;
	sqlite3_stmt *st;
	int ncol, rc, status = STORE_OK;
	size_t len;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		free(sql);
		return copy_sqlite_fail(s, db, "read the SQLite store");
	}
	free(sql);
	ncol = sqlite3_column_count(st);
	/* INSERT INTO t (cols) OVERRIDING SYSTEM VALUE VALUES ($1, ..., $n) */
	len = strlen(t->name) + strlen(t->cols) + 80 + (size_t)ncol * 8;
	ins = p = xmalloc(len);
	p += sprintf(p, "INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE VALUES (", t->name, t->cols);
	for (int i = 0; i < ncol; i++)
		p += sprintf(p, "%s$%d", i ? ", " : "", i + 1);
	strcpy(p, ")");

	while (status == STORE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *v[32];
		int lengths[32], formats[32];
		char nums[32][PG_INT_LEN];
		PGresult *r;

		for (int i = 0; i < ncol && i < 32; i++) {
			lengths[i] = 0;
			formats[i] = 0;
			/* bytea columns go as bytes whatever SQLite holds. */
			switch (strcmp(sqlite3_column_name(st, i), "prefix") == 0 &&
			    sqlite3_column_type(st, i) != SQLITE_NULL ? SQLITE_BLOB :
			    sqlite3_column_type(st, i)) {
			case SQLITE_NULL:
				v[i] = NULL;
				break;
			case SQLITE_INTEGER:
				v[i] = pg_i64(nums[i], sqlite3_column_int64(st, i));
				break;
			case SQLITE_BLOB:
				v[i] = sqlite3_column_blob(st, i);
				lengths[i] = sqlite3_column_bytes(st, i);
				formats[i] = 1;
				if (v[i] == NULL)
					v[i] = "";
				break;
			default:
				v[i] = (const char *)sqlite3_column_text(st, i);
				break;
			}
		}
		r = pg_query(s, &status, t->name, ins, ncol, v, lengths, formats, 0);
		PQclear(r);
		(*rows)++;
	}
	if (status == STORE_OK && rc != SQLITE_DONE)
		status = copy_sqlite_fail(s, db, "read the SQLite store");
	sqlite3_finalize(st);
	free(ins);
	return status;
}

/* Each message's bytes, read from its blob a chunk at a time. */
static int
copy_bodies(struct store *s, sqlite3 *db)
{
	sqlite3_stmt *st;
	char *buf = xmalloc(PG_CHUNK);
	int rc, status = STORE_OK;

	if (sqlite3_prepare_v2(db, "SELECT id FROM messages", -1, &st, NULL) != SQLITE_OK) {
		free(buf);
		return copy_sqlite_fail(s, db, "read the SQLite store");
	}
	while (status == STORE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0), size;
		char idbuf[PG_INT_LEN], seqbuf[PG_INT_LEN];
		sqlite3_blob *blob;

		if (sq_body_open(db, id, 0, &blob) != SQLITE_OK) {
			status = copy_sqlite_fail(s, db, "read a message");
			break;
		}
		size = sqlite3_blob_bytes(blob);
		pg_i64(idbuf, id);
		for (int64_t off = 0, seq = 0; off < size && status == STORE_OK; off += PG_CHUNK) {
			int n = size - off < PG_CHUNK ? (int)(size - off) : PG_CHUNK;
			const char *v[] = { idbuf, pg_i64(seqbuf, seq++), buf };
			const int lengths[] = { 0, 0, n }, formats[] = { 0, 0, 1 };

			if (sqlite3_blob_read(blob, buf, n, (int)off) != SQLITE_OK)
				status = copy_sqlite_fail(s, db, "read a message");
			else
				PQclear(pg_query(s, &status, "message bytes", "INSERT INTO"
				    " message_chunks (message_id, seq, data) VALUES ($1, $2, $3)",
				    3, v, lengths, formats, 0));
		}
		sqlite3_blob_close(blob);
	}
	sqlite3_finalize(st);
	free(buf);
	return status;
}

/* The highest value table.column has ever had: sqlite_sequence's, else the largest now. */
static int64_t
copy_last_id(sqlite3 *db, const char *table, const char *column)
{
	char *sql = xasprintf("SELECT max(coalesce((SELECT seq FROM sqlite_sequence"
	    " WHERE name = '%s'), 0), coalesce((SELECT max(%s) FROM %s), 0))", table, column,
	    table);
	sqlite3_stmt *st;
	int64_t v = 0;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	free(sql);
	return v;
}

static int
copy_sequences(struct store *s, sqlite3 *db)
{
	int status = STORE_OK;

	for (size_t i = 0; i < ARRAY_SIZE(copy_tables) && status == STORE_OK; i++) {
		char table[64], last[PG_INT_LEN], *dot;
		const char *v[3];

		if (copy_tables[i].seq_of == NULL)
			continue;
		snprintf(table, sizeof(table), "%s", copy_tables[i].seq_of);
		dot = strchr(table, '.');
		*dot = '\0';
		v[0] = table;
		v[1] = dot + 1;
		v[2] = pg_i64(last, copy_last_id(db, table, dot + 1));
		/* The next value handed out is last + 1 (1 when nothing was ever given out). */
		status = pg_exec(s, "continue the ids", "SELECT setval(pg_get_serial_sequence($1, $2),"
		    " greatest($3::bigint, 1), $3::bigint > 0)", 3, v);
	}
	return status;
}

static int
copy_epoch(struct store *s, sqlite3 *db)
{
	sqlite3_stmt *st;
	int status = STORE_ERROR;

	if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'uidl_epoch'", -1, &st,
	    NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		const char *v[] = { (const char *)sqlite3_column_text(st, 0) };

		status = pg_exec(s, "copy the uidl epoch", "UPDATE meta SET value = $1"
		    " WHERE key = 'uidl_epoch'", 1, v);
		if (status == STORE_OK)
			((struct pg *)s->impl)->epoch = (uint32_t)strtoul(v[0], NULL, 16);
	} else
		status = copy_sqlite_fail(s, db, "read the uidl epoch");
	sqlite3_finalize(st);
	return status;
}

/* Is the target empty of everything a site holds? */
static int
copy_target_empty(struct store *s)
{
	char stale[PG_INT_LEN];
	const char *v[] = { pg_i64(stale, STORE_NODE_STALE) };
	int status;
	PGresult *r = pg_run(s, &status, "look at the target", "SELECT"
	    " (SELECT count(*) FROM domains) + (SELECT count(*) FROM users)"
	    " + (SELECT count(*) FROM aliases) + (SELECT count(*) FROM relays)"
	    " + (SELECT count(*) FROM messages)", 0, NULL);

	if (r == NULL)
		return status;
	if (pg_col_i64(r, 0, 0) != 0)
		status = store_fail(s, STORE_EXISTS, "the PostgreSQL store is not empty:"
		    " a copy goes only into a new database");
	PQclear(r);
	if (status != STORE_OK)
		return status;
	/* A node serving the database would take mail the copy then overwrites. */
	r = pg_run(s, &status, "look for running nodes", "SELECT string_agg(id, ', ' ORDER BY id)"
	    " FROM nodes WHERE heartbeat >= umbox_now() - $1", 1, v);
	if (r == NULL)
		return status;
	if (!PQgetisnull(r, 0, 0))
		status = store_fail(s, STORE_EXISTS, "daemons are running on the PostgreSQL store"
		    " (%s): stop them first", PQgetvalue(r, 0, 0));
	PQclear(r);
	return status;
}

int
pg_copy_from_sqlite(struct store *s, const char *path, struct store_copy_counts *n)
{
	sqlite3 *db = NULL;
	uint64_t rows[ARRAY_SIZE(copy_tables)] = { 0 };
	int status;

	memset(n, 0, sizeof(*n));
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		status = store_fail(s, STORE_NOTFOUND, "cannot open %s: %s", path,
		    db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return status;
	}
	sqlite3_busy_timeout(db, 10000);
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		status = copy_sqlite_fail(s, db, "read the SQLite store");
		sqlite3_close(db);
		return status;
	}
	if ((status = pg_exec(s, "begin", "BEGIN", 0, NULL)) == STORE_OK) {
		status = copy_target_empty(s);
		for (size_t i = 0; i < ARRAY_SIZE(copy_tables) && status == STORE_OK; i++) {
			status = copy_rows(s, db, &copy_tables[i], &rows[i]);
			if (status == STORE_OK && strcmp(copy_tables[i].name, "messages") == 0)
				status = copy_bodies(s, db);
		}
		if (status == STORE_OK)
			status = copy_sequences(s, db);
		if (status == STORE_OK)
			status = copy_epoch(s, db);
		if (status == STORE_OK)	/* the entries' usage, into the users' rows */
			status = pg_exec(s, "settle usage", "SELECT usage_settle(NULL)", 0, NULL);
		if (status == STORE_OK)
			status = pg_exec(s, "commit", "COMMIT", 0, NULL);
		else
			pg_abort(s);
	}
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	if (status == STORE_OK) {
		n->domains = rows[0];
		n->users = rows[1];
		n->aliases = rows[2];
		n->relays = rows[4];
		n->messages = rows[6];
		n->entries = rows[7];
		n->queued = rows[8];
	}
	return status;
}
