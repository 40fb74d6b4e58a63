/*
 * test_store.c - the SQLite store through its public API: schema, directory,
 * deliveries, mailbox entries, and the group-commit writer on a libevent loop.
 */
#include "testutil.h"

#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <event2/event.h>
#include <pthread.h>
#include <sqlite3.h>

#include "store/store.h"

#define SCHEMA_VERSION	6
#define PG_SCHEMA_VERSION	12

struct fx {
	char *dir;
	char *path;
	struct store *s;
	struct store_config cfg;	/* to open the same store again */
	char *pgdb;			/* postgresql: the test's own database */
	char *dsn;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	f->dir = tu_tempdir();
	f->path = tu_path(f->dir, "store.db");
	f->cfg = *STORE_SQLITE(f->path);
	if (store_open(&f->cfg, STORE_CREATE, &f->s, err, sizeof(err)) != STORE_OK) {
		fprintf(stderr, "store_open: %s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	store_close(&f->s);
	free(f->path);
	tu_rmdir(f->dir);
	free(f);
	return 0;
}

/* PostgreSQL: each test gets a database of its own (testutil.h). */
static int
setup_pg(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	f->dir = tu_tempdir();		/* for spool files */
	if ((f->dsn = tu_pg_create(&f->pgdb)) == NULL)
		return -1;
	f->cfg = (struct store_config){ .backend = STORE_BACKEND_POSTGRESQL, .dsn = f->dsn,
	    .node_id = "test" };
	if (store_open(&f->cfg, STORE_CREATE, &f->s, err, sizeof(err)) != STORE_OK) {
		fprintf(stderr, "store_open: %s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown_pg(void **state)
{
	struct fx *f = *state;

	store_close(&f->s);
	tu_pg_drop(f->pgdb);
	free(f->dsn);
	tu_rmdir(f->dir);
	free(f);
	return 0;
}

/* A statement on the test's own database, as another client would run it. */
static void
pg_run(struct fx *f, const char *sql)
{
	PGconn *c = PQconnectdb(f->dsn);
	PGresult *r = PQexec(c, sql);

	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	PQfinish(c);
}

static int64_t
add_user(struct store *s, const char *login, const char *ext, uint64_t quota)
{
	struct store_user u = { .login = (char *)login, .extension = (char *)ext,
	    .quota = quota, .pop3 = 1 };
	struct store_user got;
	int64_t id;

	assert_int_equal(store_user_add(s, &u), STORE_OK);
	assert_int_equal(store_user_get(s, login, &got), STORE_OK);
	id = got.id;
	store_user_clear(&got);
	return id;
}

static void
test_open_schema(void **state)
{
	struct fx *f = *state;
	struct store *again;
	char err[256];

	assert_int_equal(store_schema_version(f->s), SCHEMA_VERSION);
	/* Reopening an existing store migrates nothing and works. */
	assert_int_equal(store_open(STORE_SQLITE(f->path), 0, &again, err, sizeof(err)), STORE_OK);
	assert_int_equal(store_schema_version(again), SCHEMA_VERSION);
	store_close(&again);
	assert_null(again);
	/* Without STORE_CREATE a missing file is not created. */
	char *missing = tu_path(f->dir, "nope.db");
	assert_int_equal(store_open(STORE_SQLITE(missing), 0, &again, err, sizeof(err)), STORE_NOTFOUND);
	assert_int_equal(access(missing, F_OK), -1);
	free(missing);
}

/* Relay passwords are in the store: only its owner may read it. */
static void
test_store_file_private(void **state)
{
	struct fx *f = *state;
	const char *suffix[] = { "", "-wal", "-shm" };
	struct store *again;
	struct stat st;
	char err[256];

	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* A store left readable by others is tightened when opened for writing. */
	store_close(&f->s);
	for (size_t i = 0; i < 3; i++) {
		char *q = NULL;

		assert_true(asprintf(&q, "%s%s", f->path, suffix[i]) > 0);
		if (stat(q, &st) == 0)
			assert_int_equal(chmod(q, 0644), 0);
		free(q);
	}
	assert_int_equal(store_open(STORE_SQLITE(f->path), STORE_READONLY, &again, err, sizeof(err)), STORE_OK);
	store_close(&again);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);	/* a reader changes nothing */
	assert_int_equal(store_open(STORE_SQLITE(f->path), 0, &f->s, err, sizeof(err)), STORE_OK);
	for (size_t i = 0; i < 3; i++) {
		char *q = NULL;

		assert_true(asprintf(&q, "%s%s", f->path, suffix[i]) > 0);
		if (stat(q, &st) == 0)
			assert_int_equal(st.st_mode & 0777, 0600);
		free(q);
	}
}

static void
test_newer_schema_refused(void **state)
{
	struct fx *f = *state;
	struct store *again;
	sqlite3 *db;
	char err[256];

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(STORE_SQLITE(f->path), 0, &again, err, sizeof(err)), STORE_INVALID);
	assert_non_null(strstr(err, "newer"));
}

static void
test_domains(void **state)
{
	struct fx *f = *state;
	struct store_domain d = { .name = "example.test" }, got, *v;
	size_t n;

	assert_int_equal(store_domain_add(f->s, &d), STORE_OK);
	assert_int_equal(store_domain_add(f->s, &d), STORE_EXISTS);
	assert_int_equal(store_domain_exists(f->s, "EXAMPLE.test"), 1);
	assert_int_equal(store_domain_exists(f->s, "other.test"), 0);
	assert_int_equal(store_domain_get(f->s, "example.test", &got), STORE_OK);
	assert_string_equal(got.guard, "unchecked");
	store_domain_clear(&got);
	assert_int_equal(store_domain_set_guard(f->s, "example.test", "ours", "mx ok", 42), STORE_OK);
	assert_int_equal(store_domain_list(f->s, &v, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].guard, "ours");
	assert_int_equal(v[0].checked_at, 42);
	store_domain_list_free(&v, n);
	assert_null(v);
	assert_int_equal(store_domain_del(f->s, "example.test"), STORE_OK);
	assert_int_equal(store_domain_del(f->s, "example.test"), STORE_NOTFOUND);
}

static void
test_users(void **state)
{
	struct fx *f = *state;
	struct store_user u = { 0 }, got;
	struct store_user *v;
	size_t n;

	add_user(f->s, "alice", "101", 0);
	/* Same login in another case, same extension: both refused. */
	u.login = "ALICE";
	u.pop3 = 1;
	assert_int_equal(store_user_add(f->s, &u), STORE_EXISTS);
	u.login = "bob";
	u.extension = "101";
	assert_int_equal(store_user_add(f->s, &u), STORE_EXISTS);
	assert_non_null(strstr(store_errmsg(f->s), "extension"));
	u.extension = "102";
	assert_int_equal(store_user_add(f->s, &u), STORE_OK);

	assert_int_equal(store_user_get_by_extension(f->s, "102", &got), STORE_OK);
	assert_string_equal(got.login, "bob");
	store_user_clear(&got);

	u.name = "Bob B";
	u.quota = 1000;
	u.pop3 = 0;
	assert_int_equal(store_user_set(f->s, "bob", &u,
	    STORE_USER_NAME | STORE_USER_QUOTA | STORE_USER_POP3), STORE_OK);
	assert_int_equal(store_user_get(f->s, "BOB", &got), STORE_OK);
	assert_string_equal(got.name, "Bob B");
	assert_int_equal(got.quota, 1000);
	assert_int_equal(got.pop3, 0);
	assert_string_equal(got.extension, "102");
	store_user_clear(&got);
	u.extension = "101";
	assert_int_equal(store_user_set(f->s, "bob", &u, STORE_USER_EXTENSION), STORE_EXISTS);
	assert_int_equal(store_user_set(f->s, "nobody", &u, STORE_USER_NAME), STORE_NOTFOUND);

	assert_int_equal(store_user_list(f->s, &v, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].login, "alice");
	store_user_list_free(&v, n);
	assert_int_equal(store_user_del(f->s, "alice"), STORE_OK);
	assert_int_equal(store_user_del(f->s, "alice"), STORE_NOTFOUND);
}

static void
test_aliases(void **state)
{
	struct fx *f = *state;
	const char *m1[] = { "alice", "bob" }, *m2[] = { "carol", "alice" }, *m3[] = { "BOB" };
	const char *m4[] = { "zed" };
	struct store_alias a, *v;
	size_t n;

	assert_int_equal(store_alias_add(f->s, "sales", m1, 2), STORE_OK);
	assert_int_equal(store_alias_add(f->s, "Sales", m1, 2), STORE_EXISTS);
	assert_int_equal(store_alias_add_members(f->s, "sales", m2, 2), STORE_OK);
	assert_int_equal(store_alias_get(f->s, "SALES", &a), STORE_OK);
	assert_int_equal(a.members.n, 3);	/* alice not added twice */
	assert_string_equal(a.members.v[0], "alice");
	assert_string_equal(a.members.v[2], "carol");
	store_alias_clear(&a);
	assert_int_equal(store_alias_del_members(f->s, "sales", m3, 1), STORE_OK);
	/* Removing a non-member fails and changes nothing. */
	assert_int_equal(store_alias_del_members(f->s, "sales", m4, 1), STORE_NOTFOUND);
	assert_int_equal(store_alias_list(f->s, &v, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].members.n, 2);
	store_alias_list_free(&v, n);
	assert_int_equal(store_alias_add_members(f->s, "nosuch", m4, 1), STORE_NOTFOUND);
	assert_int_equal(store_alias_del(f->s, "sales"), STORE_OK);
	assert_int_equal(store_alias_get(f->s, "sales", &a), STORE_NOTFOUND);
}

static char *
read_all(struct store *s, const struct store_entry *e, size_t slice)
{
	char *out = malloc(e->size + 1);
	uint64_t off = 0;
	size_t got;

	while (off < e->size) {
		assert_int_equal(store_entry_read(s, e, off, out + off,
		    slice < e->size - off ? slice : e->size - off, &got), STORE_OK);
		assert_true(got > 0);
		off += got;
	}
	assert_int_equal(store_entry_read(s, e, off, out, 1, &got), STORE_OK);
	assert_int_equal(got, 0);
	out[off] = '\0';
	return out;
}

static void
test_deliver_and_read(void **state)
{
	struct fx *f = *state;
	int64_t a = add_user(f->s, "alice", NULL, 0), b = add_user(f->s, "bob", NULL, 0);
	const char *msg = "Subject: hi\r\n\r\nbody\r\n";
	struct store_rcpt_local loc[] = {
		{ a, "Return-Path: <x@y>\r\nDelivered-To: alice@example.test\r\n", NULL },
		{ b, NULL, NULL },
	};
	const char *remote[] = { "far@away.test" };
	struct store_delivery d = { .sender = "x@y", .data = msg, .fd = -1,
	    .len = strlen(msg), .local = loc, .nlocal = 2, .remote = remote, .nremote = 1 };
	struct store_delivery_result res;
	struct store_entry *v, e;
	struct store_stats st;
	size_t n;
	char *text;

	assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
	assert_true(res.message_id > 0);
	assert_int_equal(strlen(res.qid), 10);

	assert_int_equal(store_mailbox_list(f->s, a, &v, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].size, strlen(loc[0].prefix) + strlen(msg));
	assert_string_equal(v[0].sender, "x@y");
	/* Every slice size gives the same text: prefix then body. */
	for (size_t slice = 1; slice < 80; slice += 7) {
		text = read_all(f->s, &v[0], slice);
		assert_int_equal(strncmp(text, loc[0].prefix, strlen(loc[0].prefix)), 0);
		assert_string_equal(text + strlen(loc[0].prefix), msg);
		free(text);
	}
	assert_int_equal(store_entry_get(f->s, a, v[0].uidl, &e), STORE_OK);
	assert_int_equal(e.uid, v[0].uid);
	store_entry_clear(&e);
	/* Another mailbox's UID is not found in this one. */
	assert_int_equal(store_entry_get(f->s, b, v[0].uidl, &e), STORE_NOTFOUND);
	assert_int_equal(store_entry_get(f->s, a, "garbage", &e), STORE_NOTFOUND);

	/* Stored once: one message, two entries, one queue row. */
	assert_int_equal(store_stats(f->s, &st), STORE_OK);
	assert_int_equal(st.messages, 1);
	assert_int_equal(st.entries, 2);
	assert_int_equal(st.queued, 1);
	store_entry_list_free(&v, n);

	/* Deleting both entries keeps the message for the queue. */
	assert_int_equal(store_mailbox_list(f->s, a, &v, &n), STORE_OK);
	assert_int_equal(store_entries_delete(f->s, a, &v[0].uid, 1), STORE_OK);
	store_entry_list_free(&v, n);
	assert_int_equal(store_mailbox_list(f->s, b, &v, &n), STORE_OK);
	assert_int_equal(store_entries_delete(f->s, b, &v[0].uid, 1), STORE_OK);
	store_entry_list_free(&v, n);
	assert_int_equal(store_stats(f->s, &st), STORE_OK);
	assert_int_equal(st.messages, 1);
	assert_int_equal(st.entries, 0);
}

static void
assert_integrity(sqlite3 *db)
{
	sqlite3_stmt *st;

	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
}

/*
 * The store's WAL writes are gathered in memory and written at the sync
 * (sqlite_vfs.c).  A commit of megabytes goes out in many pieces; what a
 * plain connection (the system's VFS, as another program) reads is the
 * message whole, and the database is sound.
 */
static void
test_wal_large_commit(void **state)
{
	struct fx *f = *state;
	int64_t a = add_user(f->s, "alice", NULL, 0);
	size_t len = 3 * 1024 * 1024 + 12345;
	char *msg = malloc(len + 1), *text;
	struct store_rcpt_local loc = { a, NULL, NULL };
	struct store_delivery d = { .sender = "x@y", .data = msg, .fd = -1, .len = len,
	    .local = &loc, .nlocal = 1 };
	struct store_delivery_result res;
	struct store_entry *v;
	sqlite3 *db;
	sqlite3_stmt *st;
	size_t n;

	for (size_t i = 0; i < len; i++)
		msg[i] = (char)('a' + (i * 31 + i / 4096) % 26);
	msg[len] = '\0';
	assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
	store_delivery_result_clear(&res);

	assert_int_equal(store_mailbox_list(f->s, a, &v, &n), STORE_OK);
	assert_int_equal(n, 1);
	text = read_all(f->s, &v[0], 65536);
	assert_memory_equal(text, msg, len);
	free(text);
	store_entry_list_free(&v, n);

	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT content FROM messages", -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_bytes(st, 0), (int)len);
	assert_memory_equal(sqlite3_column_blob(st, 0), msg, len);
	sqlite3_finalize(st);
	assert_integrity(db);
	sqlite3_close(db);
	free(msg);
}

/*
 * The same VFS under a transaction larger than its page cache: SQLite
 * spills frames before the commit and writes some of them again in
 * place.  Another connection sees exactly the committed rows.
 */
static void
test_wal_spilled_transaction(void **state)
{
	struct fx *f = *state;
	sqlite3 *db, *plain;
	sqlite3_stmt *st;

	assert_non_null(sqlite3_vfs_find("umbox"));
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, "umbox"),
	    SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
	    " PRAGMA cache_size=4; CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB);"
	    " BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)"
	    " INSERT INTO t SELECT i, zeroblob(1500) FROM n;"
	    " UPDATE t SET v = randomblob(1500);"
	    " UPDATE t SET v = zeroblob(1000 + k);"
	    " COMMIT;"
	    " BEGIN; UPDATE t SET v = zeroblob(1) WHERE k > 200; ROLLBACK;", NULL, NULL, NULL),
	    SQLITE_OK);

	assert_int_equal(sqlite3_open_v2(f->path, &plain, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(plain, "SELECT count(*), sum(length(v)),"
	    " sum(v = zeroblob(1000 + k)) FROM t", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int64(st, 0), 400);
	assert_int_equal(sqlite3_column_int64(st, 1), 400 * 1000 + 400 * 401 / 2);
	assert_int_equal(sqlite3_column_int64(st, 2), 400);
	sqlite3_finalize(st);
	assert_integrity(plain);
	sqlite3_close(plain);
	sqlite3_close(db);
}

static void
test_message_freed_with_last_entry(void **state)
{
	struct fx *f = *state;
	int64_t a = add_user(f->s, "alice", NULL, 0);
	struct store_rcpt_local loc = { a, NULL, NULL };
	struct store_delivery d = { .sender = "", .data = "x\r\n", .fd = -1, .len = 3,
	    .local = &loc, .nlocal = 1 };
	struct store_delivery_result res;
	struct store_entry *v;
	struct store_stats st;
	struct store_user u;
	size_t n;

	assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
	assert_int_equal(store_user_get(f->s, "alice", &u), STORE_OK);
	assert_int_equal(u.used, 3);
	assert_int_equal(u.messages, 1);
	store_user_clear(&u);
	assert_int_equal(store_mailbox_list(f->s, a, &v, &n), STORE_OK);
	assert_int_equal(store_entries_delete(f->s, a, &v[0].uid, 1), STORE_OK);
	/* Deleting an entry already gone is not an error. */
	assert_int_equal(store_entries_delete(f->s, a, &v[0].uid, 1), STORE_OK);
	store_entry_list_free(&v, n);
	assert_int_equal(store_stats(f->s, &st), STORE_OK);
	assert_int_equal(st.messages, 0);
	assert_int_equal(store_user_get(f->s, "alice", &u), STORE_OK);
	assert_int_equal(u.used, 0);
	assert_int_equal(u.messages, 0);
	store_user_clear(&u);
}

static void
test_uid_never_reused(void **state)
{
	struct fx *f = *state;
	int64_t a = add_user(f->s, "alice", NULL, 0);
	struct store_rcpt_local loc = { a, NULL, NULL };
	struct store_delivery d = { .sender = "", .data = "x\r\n", .fd = -1, .len = 3,
	    .local = &loc, .nlocal = 1 };
	struct store_delivery_result res;
	struct store_entry *v;
	char last[40];
	int64_t max = 0;
	size_t n;

	for (int round = 0; round < 3; round++) {
		assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
		assert_int_equal(store_mailbox_list(f->s, a, &v, &n), STORE_OK);
		assert_int_equal(n, 1);
		/* Each new entry's UID is above every UID before it, even deleted ones. */
		assert_true(v[0].uid > max);
		max = v[0].uid;
		if (round > 0)
			assert_string_not_equal(v[0].uidl, last);
		strcpy(last, v[0].uidl);
		assert_int_equal(store_entries_delete(f->s, a, &v[0].uid, 1), STORE_OK);
		store_entry_list_free(&v, n);
	}
	/* Also across a reopen. */
	store_close(&f->s);
	char err[256];
	assert_int_equal(store_open(&f->cfg, 0, &f->s, err, sizeof(err)), STORE_OK);
	assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
	assert_int_equal(store_mailbox_list(f->s, a, &v, &n), STORE_OK);
	assert_true(v[0].uid > max);
	store_entry_list_free(&v, n);
}

/* Queue rows as "recipient|local login or -|last_error|prefix", one per line, by id. */
static char *
queue_rows(struct fx *f)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	char *out = calloc(1, 4096);
	size_t off = 0;

	if (f->pgdb) {
		PGconn *c = PQconnectdb(f->dsn);
		PGresult *r = PQexec(c, "SELECT q.recipient, coalesce(u.login, '-'),"
		    " q.last_error, convert_from(q.prefix, 'UTF8') FROM queue q LEFT JOIN users u"
		    " ON u.id = q.local_user_id ORDER BY q.id");

		assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
		for (int i = 0; i < PQntuples(r); i++)
			off += (size_t)snprintf(out + off, 4096 - off, "%s|%s|%s|%s\n",
			    PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
			    PQgetvalue(r, i, 3));
		PQclear(r);
		PQfinish(c);
		return out;
	}
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT q.recipient, coalesce(u.login, '-'),"
	    " q.last_error, CAST(q.prefix AS TEXT) FROM queue q LEFT JOIN users u"
	    " ON u.id = q.local_user_id ORDER BY q.id", -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW)
		off += (size_t)snprintf(out + off, 4096 - off, "%s|%s|%s|%s\n",
		    sqlite3_column_text(st, 0), sqlite3_column_text(st, 1),
		    sqlite3_column_text(st, 2), sqlite3_column_text(st, 3));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return out;
}

/*
 * One of two mailboxes full: the other gets its entry, the full one a
 * deferred queue entry, and the message is accepted.
 */
static void
test_quota_defers_the_full_mailbox(void **state)
{
	struct fx *f = *state;
	int64_t a = add_user(f->s, "alice", NULL, 10), b = add_user(f->s, "bob", NULL, 0);
	struct store_rcpt_local loc[] = { { b, NULL, NULL },
	    { a, "D: a\r\n", "alice@example.test" } };
	struct store_delivery d = { .sender = "s@t", .kind = STORE_KIND_VOICEMAIL,
	    .data = "12", .fd = -1, .len = 2, .check_quota = 1, .local = loc, .nlocal = 2 };
	struct store_delivery_result res;
	struct store_stats st;
	struct store_user u;
	char *rows;

	/* 6 + 2 + 2 = 10 fits exactly; and nothing was deferred. */
	assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
	assert_null(res.local);
	assert_int_equal(res.delivered, 2);
	assert_int_equal(res.deferred, 0);
	store_delivery_result_clear(&res);
	d.data = "1234";
	d.len = 4;
	assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
	assert_true(res.message_id > 0);
	assert_int_equal(res.delivered, 1);
	assert_int_equal(res.deferred, 1);
	assert_int_equal(res.queued, 0);
	assert_int_equal(store_delivery_local_status(&res, 0), STORE_TARGET_DELIVERED);
	assert_int_equal(store_delivery_local_status(&res, 1), STORE_TARGET_DEFERRED_FULL);
	store_delivery_result_clear(&res);
	assert_null(res.local);

	/* alice's mailbox is as it was; bob has both; alice's copy waits in the queue. */
	assert_int_equal(store_user_get(f->s, "alice", &u), STORE_OK);
	assert_int_equal(u.used, 8);
	assert_int_equal(u.messages, 1);
	store_user_clear(&u);
	assert_int_equal(store_stats(f->s, &st), STORE_OK);
	assert_int_equal(st.messages, 2);
	assert_int_equal(st.entries, 3);
	assert_int_equal(st.queued, 1);
	rows = queue_rows(f);
	assert_string_equal(rows, "alice@example.test|alice|mailbox full|D: a\r\n\n");
	free(rows);

	/* Without an address the queue names the login. */
	loc[1].address = NULL;
	assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
	assert_int_equal(res.deferred, 1);
	store_delivery_result_clear(&res);
	rows = queue_rows(f);
	assert_non_null(strstr(rows, "\nalice|alice|mailbox full|"));
	free(rows);

	/* A deleted user takes his deferred entries with him. */
	assert_int_equal(store_user_del(f->s, "alice"), STORE_OK);
	assert_int_equal(store_stats(f->s, &st), STORE_OK);
	assert_int_equal(st.queued, 0);
	assert_int_equal(st.messages, 3);	/* still bob's */
}

/*
 * Several entries' whole texts at once, packed in the order asked: one
 * deleted meanwhile, and one that no longer fits, are left out.
 */
static void
test_entries_read(void **state)
{
	struct fx *f = *state;
	int64_t a = add_user(f->s, "alice", NULL, 0);
	struct store_rcpt_local loc = { a, "Delivered-To: alice@example.test\r\n", NULL };
	const char *bodies[] = { "Subject: one\r\n\r\n1\r\n", "Subject: two\r\n\r\n22\r\n",
	    "Subject: three\r\n\r\n333\r\n" };
	struct store_delivery d = { .sender = "x@y", .fd = -1, .local = &loc, .nlocal = 1 };
	struct store_delivery_result res;
	struct store_entry *v;
	size_t n, lens[3], total;
	char *texts[3], buf[1024];

	for (size_t i = 0; i < 3; i++) {
		d.data = bodies[i];
		d.len = strlen(bodies[i]);
		assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
		store_delivery_result_clear(&res);
	}
	assert_int_equal(store_mailbox_list(f->s, a, &v, &n), STORE_OK);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < 3; i++)
		texts[i] = read_all(f->s, &v[i], 1000);

	assert_int_equal(store_entries_read(f->s, v, 3, buf, sizeof(buf), lens), STORE_OK);
	total = 0;
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(lens[i], v[i].size);
		assert_memory_equal(buf + total, texts[i], lens[i]);
		total += lens[i];
	}

	/* The second deleted, the third one byte too many. */
	assert_int_equal(store_entries_delete(f->s, a, &v[1].uid, 1), STORE_OK);
	assert_int_equal(store_entries_read(f->s, v, 3, buf, v[0].size + v[2].size - 1, lens),
	    STORE_OK);
	assert_int_equal(lens[0], v[0].size);
	assert_memory_equal(buf, texts[0], lens[0]);
	assert_true(lens[1] == STORE_NO_TEXT);
	assert_true(lens[2] == STORE_NO_TEXT);
	/* With room, the third comes right after the first. */
	assert_int_equal(store_entries_read(f->s, v, 3, buf, sizeof(buf), lens), STORE_OK);
	assert_true(lens[1] == STORE_NO_TEXT);
	assert_int_equal(lens[2], v[2].size);
	assert_memory_equal(buf + lens[0], texts[2], lens[2]);

	for (size_t i = 0; i < 3; i++)
		free(texts[i]);
	store_entry_list_free(&v, n);
}

/* No mailbox has room and nothing goes outside: STORE_QUOTA, nothing stored. */
static void
test_quota_all_full(void **state)
{
	struct fx *f = *state;
	int64_t a = add_user(f->s, "alice", NULL, 10), b = add_user(f->s, "bob", NULL, 3);
	struct store_rcpt_local loc[] = { { b, NULL, NULL }, { a, NULL, NULL } };
	struct store_delivery d = { .sender = "", .data = "12345", .fd = -1, .len = 5,
	    .check_quota = 1, .local = loc, .nlocal = 2 };
	struct store_delivery_result res;
	struct store_stats st;

	assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);	/* alice 5, bob deferred */
	store_delivery_result_clear(&res);
	assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);	/* alice 10, bob deferred */
	store_delivery_result_clear(&res);
	assert_int_equal(store_deliver(f->s, &d, &res), STORE_QUOTA);
	assert_null(res.local);
	assert_int_equal(res.message_id, 0);
	/* The reasons are for the log: both mailboxes. */
	assert_non_null(strstr(store_errmsg(f->s), "alice"));
	assert_non_null(strstr(store_errmsg(f->s), "bob"));
	assert_int_equal(store_stats(f->s, &st), STORE_OK);
	assert_int_equal(st.messages, 2);
	assert_int_equal(st.entries, 2);
	assert_int_equal(st.queued, 2);

	/* Without check_quota the store takes it regardless (umboxctl, bounces to postmaster). */
	d.check_quota = 0;
	assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
	assert_int_equal(res.delivered, 2);
	store_delivery_result_clear(&res);
	/* A delivery to nobody is refused. */
	d.nlocal = 0;
	assert_int_equal(store_deliver(f->s, &d, &res), STORE_INVALID);
}

/* An outside recipient can always take the message: a full local one is deferred. */
static void
test_quota_remote_and_full_local(void **state)
{
	struct fx *f = *state;
	int64_t a = add_user(f->s, "alice", NULL, 2);
	struct store_rcpt_local loc = { a, NULL, "alice@example.test" };
	const char *remote[] = { "far@away.test" };
	struct store_delivery d = { .sender = "s@t", .data = "12345", .fd = -1, .len = 5,
	    .check_quota = 1, .local = &loc, .nlocal = 1, .remote = remote, .nremote = 1 };
	struct store_delivery_result res;
	struct store_entry *v;
	size_t n;
	char *rows;

	assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
	assert_int_equal(res.delivered, 0);
	assert_int_equal(res.deferred, 1);
	assert_int_equal(res.queued, 1);
	assert_int_equal(store_delivery_local_status(&res, 0), STORE_TARGET_DEFERRED_FULL);
	store_delivery_result_clear(&res);
	assert_int_equal(store_mailbox_list(f->s, a, &v, &n), STORE_OK);
	assert_int_equal(n, 0);
	store_entry_list_free(&v, n);
	rows = queue_rows(f);
	assert_string_equal(rows, "alice@example.test|alice|mailbox full|\n"
	    "far@away.test|-||\n");
	free(rows);
}

static void
test_deliver_from_fd(void **state)
{
	struct fx *f = *state;
	int64_t a = add_user(f->s, "alice", NULL, 0);
	size_t len = 3 * 1024 * 1024 + 17;
	char *big = malloc(len), *spool = tu_path(f->dir, "spool");
	struct store_rcpt_local loc = { a, "X: y\r\n", NULL };
	struct store_delivery_result res;
	struct store_entry *v;
	size_t n;
	int fd;

	for (size_t i = 0; i < len; i++)
		big[i] = (char)('a' + i % 26);
	fd = open(spool, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, big, len), (ssize_t)len);
	struct store_delivery d = { .sender = "s@t", .fd = fd, .len = len,
	    .local = &loc, .nlocal = 1 };
	assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
	assert_int_equal(store_mailbox_list(f->s, a, &v, &n), STORE_OK);
	assert_int_equal(v[0].size, len + 6);
	char *text = read_all(f->s, &v[0], 65536);
	assert_memory_equal(text, "X: y\r\n", 6);
	assert_memory_equal(text + 6, big, len);
	free(text);
	store_entry_list_free(&v, n);

	/* A spool file shorter than promised fails and stores nothing. */
	d.len = len + 100;
	assert_int_equal(store_deliver(f->s, &d, &res), STORE_ERROR);
	assert_int_equal(store_mailbox_list(f->s, a, &v, &n), STORE_OK);
	assert_int_equal(n, 1);
	store_entry_list_free(&v, n);
	close(fd);
	free(spool);
	free(big);
}

/* The peak resident size since the last reset (VmHWM), in bytes. */
static size_t
peak_rss(void)
{
	FILE *fp = fopen("/proc/self/status", "r");
	char line[256];
	size_t kb = 0;

	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp))
		if (sscanf(line, "VmHWM: %zu kB", &kb) == 1)
			break;
	fclose(fp);
	return kb * 1024;
}

/* Start VmHWM again from the current resident size (Linux 4.0 on). */
static void
peak_rss_reset(void)
{
	FILE *fp = fopen("/proc/self/clear_refs", "w");

	if (fp) {
		fputs("5", fp);
		fclose(fp);
	}
}

/*
 * A spooled message goes into the row in slices: storing 32 MiB must not
 * cost 32 MiB of memory.  It did while the zeroblob it is inserted as was
 * followed by another column, which makes SQLite build it in memory.
 */
static void
test_deliver_from_fd_in_bounded_memory(void **state)
{
	struct fx *f = *state;
	int64_t a = add_user(f->s, "alice", NULL, 0);
	size_t len = 32 * 1024 * 1024, chunk = 1024 * 1024, before;
	char *buf = malloc(chunk), *spool = tu_path(f->dir, "spool");
	struct store_rcpt_local loc = { a, NULL, NULL };
	struct store_delivery_result res;
	struct store_reader *r;
	struct store_entry *v;
	size_t n, got;
	int fd;

	fd = open(spool, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	for (size_t off = 0; off < len; off += chunk) {
		memset(buf, 'a' + (int)(off / chunk) % 26, chunk);
		assert_int_equal(write(fd, buf, chunk), (ssize_t)chunk);
	}
	struct store_delivery d = { .sender = "s@t", .fd = fd, .len = len,
	    .local = &loc, .nlocal = 1 };
	peak_rss_reset();
	before = peak_rss();
	assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
	assert_true(peak_rss() - before < len / 4);

	/* And it is all there, read back the way RETR reads it. */
	assert_int_equal(store_mailbox_list(f->s, a, &v, &n), STORE_OK);
	assert_int_equal(v[0].size, len);
	assert_int_equal(store_reader_open(f->s, &v[0], &r), STORE_OK);
	for (size_t off = 0; off < len; off += got) {
		assert_int_equal(store_reader_read(r, off, buf, chunk, &got), STORE_OK);
		assert_int_equal(got, chunk);
		assert_int_equal(buf[0], 'a' + (int)(off / chunk) % 26);
		assert_int_equal(buf[chunk - 1], buf[0]);
	}
	store_reader_close(&r);
	store_entry_list_free(&v, n);
	close(fd);
	free(spool);
	free(buf);
}

/*
 * A store from before schema step 6 has its messages' bytes in
 * messages.body; opening it adds the content column, and its messages
 * read as before, small ones and ones big enough for a reader of their
 * own, next to new ones stored the new way.
 */
static void
test_upgrade_keeps_messages_in_body(void **state)
{
	struct fx *f = *state;
	int64_t a = add_user(f->s, "alice", NULL, 0);
	size_t biglen = 600 * 1024;
	char *big = malloc(biglen), *text, err[256];
	const char *small = "Subject: old\r\n\r\nstored before step 6\r\n";
	struct store_rcpt_local loc = { a, "P: q\r\n", NULL };
	struct store_delivery d = { .sender = "", .fd = -1, .local = &loc, .nlocal = 1 };
	struct store_delivery_result res;
	struct store_reader *r;
	struct store_entry *v;
	sqlite3 *db;
	size_t n, got;

	for (size_t i = 0; i < biglen; i++)
		big[i] = (char)('A' + (i * 7) % 26);
	d.data = small;
	d.len = strlen(small);
	assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
	d.data = big;
	d.len = biglen;
	assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
	store_close(&f->s);

	/* Back to how step 5 kept them. */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE messages SET body = content;"
	    "ALTER TABLE messages DROP COLUMN content; PRAGMA user_version = 5",
	    NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	assert_int_equal(store_open(&f->cfg, 0, &f->s, err, sizeof(err)), STORE_OK);
	assert_int_equal(store_schema_version(f->s), SCHEMA_VERSION);
	d.data = "Subject: new\r\n\r\nstored after\r\n";
	d.len = strlen(d.data);
	assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
	assert_int_equal(store_mailbox_list(f->s, a, &v, &n), STORE_OK);
	assert_int_equal(n, 3);
	text = read_all(f->s, &v[0], 7);
	assert_string_equal(text, "P: q\r\nSubject: old\r\n\r\nstored before step 6\r\n");
	free(text);
	text = read_all(f->s, &v[1], 65536);
	assert_memory_equal(text + 6, big, biglen);
	free(text);
	text = read_all(f->s, &v[2], 65536);
	assert_string_equal(text, "P: q\r\nSubject: new\r\n\r\nstored after\r\n");
	free(text);
	/* The reader of its own, as RETR uses for a big one. */
	char tail[5];
	assert_int_equal(store_reader_open(f->s, &v[1], &r), STORE_OK);
	assert_int_equal(store_reader_read(r, 6 + biglen - 5, tail, 5, &got), STORE_OK);
	assert_int_equal(got, 5);
	assert_memory_equal(tail, big + biglen - 5, 5);
	store_reader_close(&r);

	/* Deleting them frees their rows either way. */
	int64_t uids[3] = { v[0].uid, v[1].uid, v[2].uid };
	assert_int_equal(store_entries_delete(f->s, a, uids, 3), STORE_OK);
	store_entry_list_free(&v, n);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM messages", -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 0);
	sqlite3_finalize(st);
	assert_integrity(db);
	sqlite3_close(db);
	free(big);
}

static void
test_pop3_locks(void **state)
{
	struct fx *f = *state;
	int64_t a = add_user(f->s, "alice", NULL, 0), b = add_user(f->s, "bob", NULL, 0);

	assert_int_equal(store_pop3_lock(f->s, a, "host:1:x", 1000, 600), STORE_OK);
	/* A second session is refused while the lease runs... */
	assert_int_equal(store_pop3_lock(f->s, a, "host:2:y", 1500, 600), STORE_LOCKED);
	/* ...the holder may renew... */
	assert_int_equal(store_pop3_lock(f->s, a, "host:1:x", 1500, 600), STORE_OK);
	/* ...and after the lease anyone may take it (a crashed daemon). */
	assert_int_equal(store_pop3_lock(f->s, a, "host:2:y", 2101, 600), STORE_OK);
	assert_int_equal(store_pop3_lock(f->s, b, "host:1:x", 2101, 600), STORE_OK);
	/* Unlock by someone else does nothing, and says so. */
	assert_int_equal(store_pop3_unlock(f->s, a, "host:1:x"), STORE_NOTFOUND);
	assert_int_equal(store_pop3_lock(f->s, a, "host:3:z", 2200, 600), STORE_LOCKED);
	assert_int_equal(store_pop3_unlock(f->s, a, "host:2:y"), STORE_OK);
	assert_int_equal(store_pop3_lock(f->s, a, "host:3:z", 2200, 600), STORE_OK);
	/* A restarted daemon drops its old locks by prefix. */
	assert_int_equal(store_pop3_unlock_prefix(f->s, "host:1:"), STORE_OK);
	assert_int_equal(store_pop3_lock(f->s, b, "host:4:w", 2200, 600), STORE_OK);
	assert_int_equal(store_pop3_lock(f->s, a, "host:4:w", 2200, 600), STORE_LOCKED);
}

static void
test_reader(void **state)
{
	struct fx *f = *state;
	int64_t a = add_user(f->s, "alice", NULL, 0);
	size_t len = 2 * 1024 * 1024 + 5;
	char *big = malloc(len), *out = malloc(len + 16);
	struct store_rcpt_local loc = { a, "P: q\r\n", NULL };
	struct store_delivery d = { .sender = "", .data = big, .fd = -1, .len = len,
	    .local = &loc, .nlocal = 1 };
	struct store_delivery_result res;
	struct store_reader *r;
	struct store_entry *v;
	uint64_t off = 0;
	size_t n, got;

	for (size_t i = 0; i < len; i++)
		big[i] = (char)('A' + (i * 7) % 26);
	assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
	assert_int_equal(store_mailbox_list(f->s, a, &v, &n), STORE_OK);
	assert_int_equal(store_reader_open(f->s, &v[0], &r), STORE_OK);
	/* Deleted while being read: the reader still sees the whole message. */
	assert_int_equal(store_entries_delete(f->s, a, &v[0].uid, 1), STORE_OK);
	while (off < v[0].size) {
		assert_int_equal(store_reader_read(r, off, out + off, 32768, &got), STORE_OK);
		assert_true(got > 0);
		off += got;
	}
	assert_int_equal(store_reader_read(r, off, out, 10, &got), STORE_OK);
	assert_int_equal(got, 0);
	assert_memory_equal(out, "P: q\r\n", 6);
	assert_memory_equal(out + 6, big, len);
	store_reader_close(&r);
	assert_null(r);
	store_entry_list_free(&v, n);
	free(big);
	free(out);
}

static void
test_delete_any_kind(void **state)
{
	struct fx *f = *state;
	int64_t a = add_user(f->s, "alice", NULL, 0);
	struct store_rcpt_local r = { a, NULL, NULL };
	struct store_delivery_result res;
	struct store_entry *v;
	int64_t uids[3];
	size_t n;

	/* Email, voicemail and fax are entries alike: POP3 sees and deletes all three. */
	for (int k = STORE_KIND_EMAIL; k <= STORE_KIND_FAX; k++) {
		struct store_delivery d = { .sender = "", .kind = (enum store_kind)k,
		    .data = "x\r\n", .fd = -1, .len = 3, .local = &r, .nlocal = 1 };
		assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
	}
	assert_int_equal(store_mailbox_list(f->s, a, &v, &n), STORE_OK);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(v[i].kind, (enum store_kind)i);
		uids[i] = v[i].uid;
	}
	store_entry_list_free(&v, n);
	assert_int_equal(store_entries_delete(f->s, a, uids, 3), STORE_OK);
	assert_int_equal(store_mailbox_list(f->s, a, &v, &n), STORE_OK);
	assert_int_equal(n, 0);
	store_entry_list_free(&v, n);
}

/*
 * One call deletes exactly the listed entries of that mailbox: not those
 * left out, not another mailbox's even when its uid is listed, and uids
 * already gone (or never made) are no error.  Usage follows.
 */
static void
test_delete_set(void **state)
{
	struct fx *f = *state;
	int64_t a = add_user(f->s, "alice", NULL, 0), b = add_user(f->s, "bob", NULL, 0);
	struct store_rcpt_local ra = { a, NULL, NULL }, rb = { b, NULL, NULL };
	struct store_delivery_result res;
	struct store_user u;
	struct store_entry *v;
	int64_t uids[10], del[8];
	size_t n, nd = 0;

	for (int i = 0; i < 10; i++) {
		struct store_delivery d = { .sender = "", .data = "abcd\r\n", .fd = -1,
		    .len = 6, .local = i == 9 ? &rb : &ra, .nlocal = 1 };

		assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
		store_delivery_result_clear(&res);
	}
	assert_int_equal(store_mailbox_list(f->s, a, &v, &n), STORE_OK);
	assert_int_equal(n, 9);
	for (size_t i = 0; i < n; i++)
		uids[i] = v[i].uid;
	store_entry_list_free(&v, n);
	assert_int_equal(store_mailbox_list(f->s, b, &v, &n), STORE_OK);
	assert_int_equal(n, 1);
	uids[9] = v[0].uid;
	store_entry_list_free(&v, n);

	/* alice's odd ones, bob's one, a uid never made, the largest uid. */
	for (int i = 1; i < 9; i += 2)
		del[nd++] = uids[i];
	del[nd++] = uids[9];
	del[nd++] = uids[9] + 1000;
	del[nd++] = INT64_MAX;
	assert_int_equal(store_entries_delete(f->s, a, del, nd), STORE_OK);
	/* Again: all of them are gone now, still no error. */
	assert_int_equal(store_entries_delete(f->s, a, del, nd), STORE_OK);

	assert_int_equal(store_mailbox_list(f->s, a, &v, &n), STORE_OK);
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(v[i].uid, uids[2 * i]);
	store_entry_list_free(&v, n);
	assert_int_equal(store_mailbox_list(f->s, b, &v, &n), STORE_OK);
	assert_int_equal(n, 1);
	store_entry_list_free(&v, n);
	assert_int_equal(store_user_get(f->s, "alice", &u), STORE_OK);
	assert_int_equal(u.messages, 5);
	assert_int_equal(u.used, 5 * 6);
	store_user_clear(&u);
}

/* ---- the writer ---- */

struct wctx {
	struct event_base *base;
	int done, ok, quota, other;
	int expect;
	int deletes;
};

static void
on_done(struct store_req *req, void *arg)
{
	struct wctx *w = arg;
	int st = store_req_status(req);

	w->done++;
	if (st == STORE_OK) {
		w->ok++;
		assert_true(w->deletes || store_req_delivery(req)->message_id > 0);
	} else if (st == STORE_QUOTA)
		w->quota++;
	else
		w->other++;
	if (w->done == w->expect)
		event_base_loopbreak(w->base);
}

static void
test_writer_group_commit(void **state)
{
	struct fx *f = *state;
	int64_t a = add_user(f->s, "alice", NULL, 0), small = add_user(f->s, "small", NULL, 4);
	struct store_writer *w;
	struct wctx ctx = { 0 };
	char err[256];
	struct store_stats st;
	struct store_rcpt_local ok_rcpt = { a, NULL, NULL }, full_rcpt = { small, NULL, NULL };

	ctx.base = event_base_new();
	assert_int_equal(store_writer_new(&f->cfg, ctx.base, &w, err, sizeof(err)), STORE_OK);
	ctx.expect = 500;
	for (int i = 0; i < ctx.expect; i++) {
		char body[32];
		/* Every 50th goes to a mailbox that is too small: it must fail alone. */
		int bad = i % 50 == 0;
		struct store_delivery d = { .sender = "", .data = body, .fd = -1,
		    .check_quota = 1, .local = bad ? &full_rcpt : &ok_rcpt, .nlocal = 1 };

		d.len = (uint64_t)snprintf(body, sizeof(body), "message %d\r\n", i);
		store_writer_submit(w, store_req_deliver(&d, on_done, &ctx));
	}
	event_base_dispatch(ctx.base);
	assert_int_equal(ctx.done, 500);
	assert_int_equal(ctx.quota, 10);
	assert_int_equal(ctx.ok, 490);
	assert_int_equal(ctx.other, 0);
	store_writer_free(&w);
	assert_null(w);
	event_base_free(ctx.base);

	assert_int_equal(store_stats(f->s, &st), STORE_OK);
	assert_int_equal(st.entries, 490);
}

/*
 * A request that fails after writing part of its work (its spool file
 * ends before its length, past the first 256 KiB chunk) is undone alone,
 * as is one refused for quota; the rest of its batch is stored.
 */
static void
test_writer_spoiled_request(void **state)
{
	struct fx *f = *state;
	int64_t a = add_user(f->s, "alice", NULL, 0), small = add_user(f->s, "small", NULL, 4);
	struct store_rcpt_local ok_rcpt = { a, NULL, NULL }, full_rcpt = { small, NULL, NULL };
	size_t have = 256 * 1024 + 10;
	char *big = calloc(1, have), err[256], *spool = tu_path(f->dir, "short");
	struct store_writer *w;
	struct wctx ctx = { 0 };
	struct store_stats st;
	int fd = open(spool, O_RDWR | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, big, have), (ssize_t)have);
	ctx.base = event_base_new();
	assert_int_equal(store_writer_new(&f->cfg, ctx.base, &w, err, sizeof(err)), STORE_OK);
	ctx.expect = 300;
	for (int i = 0; i < ctx.expect; i++) {
		char body[32];
		struct store_delivery d = { .sender = "", .data = body, .fd = -1,
		    .check_quota = 1, .local = &ok_rcpt, .nlocal = 1 };

		d.len = (uint64_t)snprintf(body, sizeof(body), "message %d\r\n", i);
		if (i % 30 == 7) {		/* spoiled: 10 of them */
			d.fd = fd;
			d.len = have + 90;
		} else if (i % 50 == 0)		/* refused: 6 of them */
			d.local = &full_rcpt;
		store_writer_submit(w, store_req_deliver(&d, on_done, &ctx));
	}
	event_base_dispatch(ctx.base);
	assert_int_equal(ctx.done, 300);
	assert_int_equal(ctx.other, 10);
	assert_int_equal(ctx.quota, 6);
	assert_int_equal(ctx.ok, 284);
	store_writer_free(&w);
	event_base_free(ctx.base);

	assert_int_equal(store_stats(f->s, &st), STORE_OK);
	assert_int_equal(st.entries, 284);
	assert_int_equal(st.messages, 284);
	close(fd);
	free(spool);
	free(big);
}

/* Submit one delivery and run the loop until it is done; its status. */
static int
writer_one(struct store_writer *w, struct wctx *ctx, const struct store_delivery *d)
{
	int before = ctx->ok;

	ctx->expect = ctx->done + 1;
	store_writer_submit(w, store_req_deliver(d, on_done, ctx));
	event_base_dispatch(ctx->base);
	return ctx->ok > before ? STORE_OK : STORE_ERROR;
}

/*
 * Hold the store's write lock (SQLite) or a user's row (PostgreSQL) from
 * another connection, so that the writer's next batch waits.
 */
struct blocker {
	sqlite3 *db;
	PGconn *pg;
};

static void
block_writer(struct fx *f, int64_t user_id, struct blocker *b)
{
	memset(b, 0, sizeof(*b));
	if (f->dsn) {
		char sql[128];
		PGresult *r;

		b->pg = PQconnectdb(f->dsn);
		assert_int_equal(PQstatus(b->pg), CONNECTION_OK);
		snprintf(sql, sizeof(sql), "BEGIN; SELECT 1 FROM users WHERE id = %lld FOR UPDATE",
		    (long long)user_id);
		r = PQexec(b->pg, sql);
		assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
		PQclear(r);
		return;
	}
	assert_int_equal(sqlite3_open(f->path, &b->db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(b->db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
}

static void
unblock_writer(struct blocker *b)
{
	if (b->pg) {
		PQclear(PQexec(b->pg, "ROLLBACK"));
		PQfinish(b->pg);
	} else {
		sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
		sqlite3_close(b->db);
	}
}

/* Run the loop on its own until the writer is done with ctx->expect requests. */
static void *
dispatch_thread(void *arg)
{
	event_base_dispatch(((struct wctx *)arg)->base);
	return NULL;
}

static void
test_writer_cancel_and_delete(void **state)
{
	struct fx *f = *state;
	int64_t a = add_user(f->s, "alice", NULL, 0);
	struct store_rcpt_local r = { a, NULL, NULL };
	struct store_delivery d = { .sender = "", .data = "kept\r\n", .fd = -1, .len = 6,
	    .local = &r, .nlocal = 1 };
	struct store_delivery dropped = d, last = d;
	struct store_writer *w;
	struct wctx ctx = { 0 };
	struct store_entry *v;
	struct store_req *req;
	struct blocker b;
	pthread_t loop;
	char err[256], *text;
	size_t n;
	int64_t uids[2];

	dropped.data = "dropped\r\n";
	dropped.len = 9;
	last.data = "last\r\n";
	last.len = 6;
	ctx.base = event_base_new();
	assert_int_equal(store_writer_new(&f->cfg, ctx.base, &w, err, sizeof(err)), STORE_OK);

	/*
	 * A delivery cancelled before the writer takes it up is dropped
	 * (its client was told to try again); one under way is finished.
	 */
	block_writer(f, a, &b);
	ctx.expect = 3;
	assert_int_equal(pthread_create(&loop, NULL, dispatch_thread, &ctx), 0);
	store_writer_submit(w, store_req_deliver(&d, on_done, &ctx));
	usleep(200000);				/* the writer waits on the blocker */
	req = store_req_deliver(&dropped, on_done, &ctx);
	store_writer_submit(w, req);
	store_req_cancel(req);
	req = store_req_deliver(&d, on_done, &ctx);
	store_writer_submit(w, req);
	store_writer_submit(w, store_req_deliver(&d, on_done, &ctx));
	usleep(100000);
	unblock_writer(&b);
	pthread_join(loop, NULL);
	assert_int_equal(ctx.done, 3);
	assert_int_equal(ctx.ok, 3);
	assert_int_equal(store_mailbox_list(f->s, a, &v, &n), STORE_OK);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		text = read_all(f->s, &v[i], 4096);
		assert_null(strstr(text, "dropped"));
		free(text);
	}
	uids[0] = v[0].uid;
	uids[1] = v[1].uid;
	store_entry_list_free(&v, n);

	/* A cancelled deletion is still carried out, but nobody is called back. */
	req = store_req_delete(a, uids, 2, on_done, &ctx);
	store_writer_submit(w, req);
	store_req_cancel(req);
	ctx.done = ctx.ok = 0;
	assert_int_equal(writer_one(w, &ctx, &last), STORE_OK);
	assert_int_equal(ctx.done, 1);
	store_writer_free(&w);
	event_base_free(ctx.base);
	assert_int_equal(store_mailbox_list(f->s, a, &v, &n), STORE_OK);
	assert_int_equal(n, 2);
	store_entry_list_free(&v, n);
}


/*
 * One request that changes more than SQ_STMTJRNL_SPILL (4 MiB) of pages
 * that were there before it: a QUIT that deletes a mailbox whose messages
 * came in among another one's, so that every page holding them changes
 * (messages of 5600 bytes keep about 1.4 KiB each in their table's page).
 * Its statement journal spills to a file, and SQLite writes what it kept
 * there in one 4 MiB call, which the system's VFS took as a full disk.
 */
#define LARGE_MAILBOX	1500

static void
test_writer_deletes_a_large_mailbox(void **state)
{
	struct fx *f = *state;
	int64_t a = add_user(f->s, "alice", NULL, 0), b = add_user(f->s, "bob", NULL, 0);
	struct store_rcpt_local ra = { a, NULL, NULL }, rb = { b, NULL, NULL };
	static char body[5600];
	struct store_delivery d = { .sender = "", .data = body, .fd = -1, .len = sizeof(body),
	    .nlocal = 1 };
	struct store_writer *w;
	struct store_entry *v;
	struct wctx ctx = { 0 };
	int64_t *uids;
	char err[256];
	size_t n;

	memset(body, 'x', sizeof(body));
	for (size_t i = 78; i + 1 < sizeof(body); i += 80)
		memcpy(body + i, "\r\n", 2);
	memcpy(body + sizeof(body) - 2, "\r\n", 2);
	ctx.base = event_base_new();
	assert_int_equal(store_writer_new(&f->cfg, ctx.base, &w, err, sizeof(err)), STORE_OK);
	ctx.expect = 2 * LARGE_MAILBOX;
	for (int i = 0; i < 2 * LARGE_MAILBOX; i++) {
		d.local = i % 2 ? &rb : &ra;
		store_writer_submit(w, store_req_deliver(&d, on_done, &ctx));
	}
	event_base_dispatch(ctx.base);
	assert_int_equal(ctx.ok, 2 * LARGE_MAILBOX);

	assert_int_equal(store_mailbox_list(f->s, a, &v, &n), STORE_OK);
	assert_int_equal(n, LARGE_MAILBOX);
	uids = calloc(n, sizeof(*uids));
	for (size_t i = 0; i < n; i++)
		uids[i] = v[i].uid;
	store_entry_list_free(&v, n);
	ctx.done = ctx.ok = ctx.other = 0;
	ctx.expect = 1;
	ctx.deletes = 1;
	store_writer_submit(w, store_req_delete(a, uids, n, on_done, &ctx));
	event_base_dispatch(ctx.base);
	free(uids);
	assert_int_equal(ctx.other, 0);
	assert_int_equal(ctx.ok, 1);
	store_writer_free(&w);
	event_base_free(ctx.base);
	assert_int_equal(store_mailbox_list(f->s, a, &v, &n), STORE_OK);
	assert_int_equal(n, 0);
	store_entry_list_free(&v, n);
	assert_int_equal(store_mailbox_list(f->s, b, &v, &n), STORE_OK);
	assert_int_equal(n, LARGE_MAILBOX);
	store_entry_list_free(&v, n);
}

/*
 * A write that fails for lack of room fails its own request; the writer
 * recovers and later requests succeed.  The file size limit stands in for
 * a full disk.
 */
static void
test_writer_disk_full(void **state)
{
	struct fx *f = *state;
	int64_t a = add_user(f->s, "alice", NULL, 0);
	struct store_rcpt_local r = { a, NULL, NULL };
	struct store_writer *w;
	struct wctx ctx = { 0 };
	struct store_entry *v;
	struct rlimit old, lim;
	char err[256];
	size_t big = 16 * 1024 * 1024, n;
	char *body = calloc(1, big);
	struct store_delivery small = { .sender = "", .data = "small\r\n", .fd = -1, .len = 7,
	    .local = &r, .nlocal = 1 };
	struct store_delivery huge = { .sender = "", .data = body, .fd = -1, .len = big,
	    .local = &r, .nlocal = 1 };

	signal(SIGXFSZ, SIG_IGN);
	ctx.base = event_base_new();
	assert_int_equal(store_writer_new(&f->cfg, ctx.base, &w, err, sizeof(err)), STORE_OK);
	assert_int_equal(writer_one(w, &ctx, &small), STORE_OK);

	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = 4 * 1024 * 1024;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(writer_one(w, &ctx, &huge), STORE_ERROR);
	assert_int_equal(ctx.other, 1);
	assert_int_equal(writer_one(w, &ctx, &small), STORE_OK);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(writer_one(w, &ctx, &small), STORE_OK);

	store_writer_free(&w);
	event_base_free(ctx.base);
	/* Three small messages, none of the huge one. */
	assert_int_equal(store_mailbox_list(f->s, a, &v, &n), STORE_OK);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(v[i].size, 7);
	store_entry_list_free(&v, n);
	free(body);
}

static void
on_per_target(struct store_req *req, void *arg)
{
	struct wctx *w = arg;
	const struct store_delivery_result *r = store_req_delivery(req);

	assert_int_equal(store_req_status(req), STORE_OK);
	assert_non_null(r);
	assert_int_equal(r->delivered, 1);
	assert_int_equal(r->deferred, 1);
	assert_int_equal(store_delivery_local_status(r, 0), STORE_TARGET_DEFERRED_FULL);
	assert_int_equal(store_delivery_local_status(r, 1), STORE_TARGET_DELIVERED);
	w->done++;
	event_base_loopbreak(w->base);
}

/* Through the writer, the callback sees what became of each target. */
static void
test_writer_per_target(void **state)
{
	struct fx *f = *state;
	int64_t a = add_user(f->s, "alice", NULL, 0), small = add_user(f->s, "small", NULL, 4);
	struct store_rcpt_local loc[] = { { small, NULL, "small@example.test" },
	    { a, NULL, NULL } };
	struct store_delivery d = { .sender = "", .data = "hello\r\n", .fd = -1, .len = 7,
	    .check_quota = 1, .local = loc, .nlocal = 2 };
	struct store_writer *w;
	struct wctx ctx = { 0 };
	char err[256];
	struct store_stats st;

	ctx.base = event_base_new();
	assert_int_equal(store_writer_new(&f->cfg, ctx.base, &w, err, sizeof(err)), STORE_OK);
	store_writer_submit(w, store_req_deliver(&d, on_per_target, &ctx));
	event_base_dispatch(ctx.base);
	assert_int_equal(ctx.done, 1);
	store_writer_free(&w);
	event_base_free(ctx.base);
	assert_int_equal(store_stats(f->s, &st), STORE_OK);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.queued, 1);
}

static void
on_dup_failed(struct store_req *req, void *arg)
{
	struct wctx *w = arg;

	assert_int_equal(store_req_status(req), STORE_ERROR);
	assert_non_null(strstr(store_req_errmsg(req), "spooled message"));
	w->done++;
	event_base_loopbreak(w->base);
}

/*
 * Out of file descriptors when a delivery from a spool file is made: the
 * request fails with a temporary error through its callback, like any
 * other result (the client gets a 4xx); nothing is stored and the writer
 * carries on.
 */
/* Run base until the directory's view has a snapshot in which login exists (or not). */
static struct store *
wait_directory(struct event_base *base, struct store_dirview *v, const char *login, int present)
{
	for (int i = 0; i < 500; i++) {
		struct store *d = store_dirview_get(v);
		struct store_user u = { 0 };

		if (d && (store_user_get(d, login, &u) == STORE_OK) == present) {
			store_user_clear(&u);
			return d;
		}
		store_user_clear(&u);
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		usleep(10000);
	}
	fail_msg("the directory in memory did not follow the database");
	return NULL;
}

/*
 * SQLite: another connection's change is seen at the next lookup, by
 * every loop; a delivery, a password or a transaction rolled back moves
 * nothing; a change made by a program that does not move the counter
 * (the sqlite3 shell) is seen within the poll.
 */
static void
sqlite_directory_at_once(struct fx *f, struct event_base *base, struct store_dirview *v,
    struct store_directory *dir, int64_t alice)
{
	struct event_base *other = event_base_new();
	struct store_dirview *w = store_dirview_new(dir, other);	/* another loop's */
	struct store_rcpt_local loc = { alice, NULL, NULL };
	struct store_delivery d = { .sender = "", .data = "x\r\n", .fd = -1, .len = 3,
	    .local = &loc, .nlocal = 1 };
	struct store_user pw = { .password = "$y$other" }, gu;
	const char *gone[] = { "alice", "nobody@elsewhere.test" };
	struct store_delivery_result res;
	struct store *dv;
	sqlite3 *db;

	assert_non_null(store_dirview_get(w));
	add_user(f->s, "carol", "102", 0);
	assert_null(store_dirview_get(w));	/* that loop asks the database meanwhile */
	assert_non_null(dv = store_dirview_get(v));	/* loop 0 reloads on the spot */
	assert_int_equal(store_user_get(dv, "carol", &gu), STORE_OK);
	store_user_clear(&gu);
	assert_non_null(dv = store_dirview_get(w));
	assert_int_equal(store_user_get(dv, "carol", &gu), STORE_OK);
	store_user_clear(&gu);

	assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
	store_delivery_result_clear(&res);
	assert_int_equal(store_user_set(f->s, "alice", &pw, STORE_USER_PASSWORD), STORE_OK);
	/* The first member goes, the second is no member: all of it is undone. */
	assert_int_equal(store_alias_del_members(f->s, "sales", gone, 2), STORE_NOTFOUND);
	assert_non_null(store_dirview_get(w));

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DELETE FROM users WHERE login = 'carol'", NULL, NULL,
	    NULL), SQLITE_OK);
	sqlite3_close(db);
	wait_directory(base, v, "carol", 0);
	assert_non_null(dv = store_dirview_get(w));
	assert_int_equal(store_user_get(dv, "carol", &gu), STORE_NOTFOUND);

	store_dirview_free(&w);
	event_base_free(other);
}

/*
 * The directory in memory: what the database holds, looked up as the
 * store is (names in any case), without password hashes; it follows a
 * change within its poll (on SQLite at once), and not a delivery's counts.
 */
static void
test_directory(void **state)
{
	struct fx *f = *state;
	struct store_domain dom = { .name = "Example.TEST", .guard = "claimed" };
	const char *members[] = { "alice", "out@elsewhere.test" };
	struct event_base *base = event_base_new();
	struct store_readers *rd;
	struct store_directory *dir;
	struct store_dirview *v;
	struct store_domain gd;
	struct store_user gu;
	struct store_alias ga = { 0 };
	struct store *d, *loop_store = NULL;	/* SQLite: the loop's own connection */
	char err[256];
	int64_t a;

	if (f->cfg.backend == STORE_BACKEND_SQLITE)
		assert_int_equal(store_open(&f->cfg, 0, &loop_store, err, sizeof(err)), STORE_OK);
	assert_int_equal(store_readers_new(&f->cfg, base, loop_store, &rd, err, sizeof(err)),
	    STORE_OK);
	dir = store_directory_new(&f->cfg, base, rd);
	v = store_dirview_new(dir, base);
	/* An empty directory answers "not found" to everything. */
	d = wait_directory(base, v, "alice", 0);
	assert_int_equal(store_domain_get(d, "example.test", &gd), STORE_NOTFOUND);
	assert_int_equal(store_user_get_by_id(d, 1, &gu), STORE_NOTFOUND);
	assert_int_equal(store_alias_get(d, "sales", &ga), STORE_NOTFOUND);

	assert_int_equal(store_domain_add(f->s, &dom), STORE_OK);
	a = add_user(f->s, "alice", "100", 0);
	struct store_user pw = { .password = "$y$hash" };
	assert_int_equal(store_user_set(f->s, "alice", &pw, STORE_USER_PASSWORD), STORE_OK);
	assert_int_equal(store_alias_add(f->s, "sales", members, 2), STORE_OK);
	/* The alias came last: once it shows, so has everything before it. */
	for (int i = 0; ; i++) {
		d = wait_directory(base, v, "alice", 1);
		if (store_alias_get(d, "sales", &ga) == STORE_OK)
			break;
		assert_true(i < 500);
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		usleep(10000);
	}
	store_alias_clear(&ga);

	assert_int_equal(store_domain_get(d, "EXAMPLE.test", &gd), STORE_OK);
	assert_string_equal(gd.name, "example.test");
	assert_string_equal(gd.guard, "claimed");
	store_domain_clear(&gd);
	assert_int_equal(store_domain_get(d, "other.test", &gd), STORE_NOTFOUND);
	assert_int_equal(store_user_get(d, "ALICE", &gu), STORE_OK);
	assert_int_equal(gu.id, a);
	assert_string_equal(gu.extension, "100");
	assert_null(gu.password);
	store_user_clear(&gu);
	assert_int_equal(store_user_get_by_extension(d, "100", &gu), STORE_OK);
	assert_int_equal(gu.id, a);
	store_user_clear(&gu);
	assert_int_equal(store_user_get_by_id(d, a, &gu), STORE_OK);
	assert_string_equal(gu.login, "alice");
	store_user_clear(&gu);
	assert_int_equal(store_user_get_by_extension(d, "101", &gu), STORE_NOTFOUND);
	assert_int_equal(store_alias_get(d, "Sales", &ga), STORE_OK);
	assert_int_equal(ga.members.n, 2);
	assert_string_equal(ga.members.v[1], "out@elsewhere.test");
	store_alias_clear(&ga);

	/* A new user shows within the poll; the old snapshot stays whole meanwhile. */
	add_user(f->s, "bob", "101", 0);
	d = wait_directory(base, v, "bob", 1);
	assert_int_equal(store_user_get_by_extension(d, "101", &gu), STORE_OK);
	store_user_clear(&gu);
	assert_int_equal(store_user_del(f->s, "bob"), STORE_OK);
	wait_directory(base, v, "bob", 0);
	if (f->cfg.backend == STORE_BACKEND_SQLITE)
		sqlite_directory_at_once(f, base, v, dir, a);

	store_directory_stop(dir);
	store_readers_free(&rd);
	store_dirview_free(&v);
	store_directory_free(&dir);
	store_close(&loop_store);
	event_base_free(base);
}

static void
test_writer_dup_failure(void **state)
{
	struct fx *f = *state;
	int64_t a = add_user(f->s, "alice", NULL, 0);
	struct store_rcpt_local r = { a, NULL, NULL };
	struct store_writer *w;
	struct wctx ctx = { 0 };
	struct store_req *req;
	struct store_entry *v;
	struct rlimit old, lim;
	char err[256], *spool = tu_path(f->dir, "spool");
	size_t n;
	int fd, lowest;

	fd = open(spool, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hello\r\n", 7), 7);
	struct store_delivery d = { .sender = "", .fd = fd, .len = 7, .local = &r, .nlocal = 1 };
	ctx.base = event_base_new();
	assert_int_equal(store_writer_new(&f->cfg, ctx.base, &w, err, sizeof(err)), STORE_OK);

	/* No descriptor free below the limit: F_DUPFD fails with EMFILE. */
	lowest = dup(0);
	assert_true(lowest >= 0);
	close(lowest);
	getrlimit(RLIMIT_NOFILE, &old);
	lim = old;
	lim.rlim_cur = (rlim_t)lowest;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
	req = store_req_deliver(&d, on_dup_failed, &ctx);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	store_writer_submit(w, req);
	assert_int_equal(ctx.done, 0);		/* never called back from inside submit */
	event_base_dispatch(ctx.base);
	assert_int_equal(ctx.done, 1);

	/* The same delivery with descriptors to spare goes through. */
	assert_int_equal(writer_one(w, &ctx, &d), STORE_OK);
	store_writer_free(&w);
	event_base_free(ctx.base);
	assert_int_equal(store_mailbox_list(f->s, a, &v, &n), STORE_OK);
	assert_int_equal(n, 1);
	store_entry_list_free(&v, n);
	close(fd);
	free(spool);
}

/* Reads in a view see one state; each read outside one sees the latest. */
static void
test_read_view(void **state)
{
	struct fx *f = *state;
	struct store_user u = { .quota = 2000 };
	struct store_user got;
	struct store *reader;
	char err[256];

	add_user(f->s, "bob", NULL, 1000);
	assert_int_equal(store_open(&f->cfg, 0, &reader, err, sizeof(err)), STORE_OK);
	store_read_begin(reader);
	assert_int_equal(store_user_get(reader, "bob", &got), STORE_OK);
	assert_int_equal(got.quota, 1000);
	store_user_clear(&got);
	assert_int_equal(store_user_set(f->s, "bob", &u, STORE_USER_QUOTA), STORE_OK);
	assert_int_equal(store_user_add(f->s, &(struct store_user){ .login = "carol", .pop3 = 1 }),
	    STORE_OK);
	assert_int_equal(store_user_get(reader, "bob", &got), STORE_OK);
	assert_int_equal(got.quota, 1000);
	store_user_clear(&got);
	assert_int_equal(store_user_get(reader, "carol", &got), STORE_NOTFOUND);
	store_read_end(reader);

	assert_int_equal(store_user_get(reader, "bob", &got), STORE_OK);
	assert_int_equal(got.quota, 2000);
	store_user_clear(&got);
	assert_int_equal(store_user_get(reader, "carol", &got), STORE_OK);
	store_user_clear(&got);
	/* Ending no view, or one twice, is harmless. */
	store_read_end(reader);
	store_close(&reader);
}

/*
 * A message without references is gone from the counts at once; its
 * bytes go at once (SQLite) or when swept after the grace the caller
 * gives (PostgreSQL, where another node may still be reading it).
 */
static void
test_sweep(void **state)
{
	struct fx *f = *state;
	int64_t a = add_user(f->s, "alice", NULL, 0);
	struct store_rcpt_local loc = { a, NULL, NULL };
	struct store_delivery d = { .sender = "", .data = "x\r\n", .fd = -1, .len = 3,
	    .local = &loc, .nlocal = 1 };
	struct store_delivery_result res;
	struct store_entry *v;
	struct store_stats st;
	size_t n, swept;

	assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
	assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
	assert_int_equal(store_mailbox_list(f->s, a, &v, &n), STORE_OK);
	assert_int_equal(store_entries_delete(f->s, a, &v[0].uid, 1), STORE_OK);
	store_entry_list_free(&v, n);
	assert_int_equal(store_stats(f->s, &st), STORE_OK);
	assert_int_equal(st.messages, 1);
	assert_int_equal(st.message_bytes, 3);
	/* Orphaned just now: not yet older than an hour ago. */
	assert_int_equal(store_sweep(f->s, (int64_t)time(NULL) - 3600, &swept), STORE_OK);
	assert_int_equal(swept, 0);
	assert_int_equal(store_sweep(f->s, (int64_t)time(NULL) + 1, &swept), STORE_OK);
	assert_int_equal(swept, f->pgdb ? 1 : 0);
	assert_int_equal(store_sweep(f->s, (int64_t)time(NULL) + 1, &swept), STORE_OK);
	assert_int_equal(swept, 0);
	/* The referenced one stays, readable. */
	assert_int_equal(store_mailbox_list(f->s, a, &v, &n), STORE_OK);
	assert_int_equal(n, 1);
	char *text = read_all(f->s, &v[0], 2);
	assert_memory_equal(text, "x\r\n", 3);
	free(text);
	store_entry_list_free(&v, n);
}

/* ---- PostgreSQL only ---- */

/* The writer's commit marks (pg_commit_resolve) go after an hour, not before. */
static void
test_pg_sweep_commit_marks(void **state)
{
	struct fx *f = *state;
	PGconn *c;
	PGresult *r;
	size_t swept;

	pg_run(f, "INSERT INTO commit_marks (token, at) VALUES"
	    " ('old', umbox_now() - 3601), ('recent', umbox_now() - 3500)");
	assert_int_equal(store_sweep(f->s, (int64_t)time(NULL) - 3600, &swept), STORE_OK);
	c = PQconnectdb(f->dsn);
	r = PQexec(c, "SELECT string_agg(token, ',' ORDER BY token) FROM commit_marks");
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_string_equal(PQgetvalue(r, 0, 0), "recent");
	PQclear(r);
	PQfinish(c);
}

/* A number the server answers to sql (one row, one column). */
static long long
pg_number(struct fx *f, const char *sql)
{
	PGconn *c = PQconnectdb(f->dsn);
	PGresult *r = PQexec(c, sql);
	long long v;

	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	v = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(c);
	return v;
}

static void
assert_usage(struct store *s, const char *login, uint64_t used, uint64_t messages)
{
	struct store_user u;

	assert_int_equal(store_user_get(s, login, &u), STORE_OK);
	assert_int_equal(u.used, used);
	assert_int_equal(u.messages, messages);
	store_user_clear(&u);
}

struct quota_setter {
	struct store *s;
	uint64_t quota;
	atomic_int done;
};

static void *
quota_set_thread(void *arg)
{
	struct quota_setter *q = arg;
	struct store_user u = { .quota = q->quota };

	assert_int_equal(store_user_set(q->s, "bob", &u, STORE_USER_QUOTA), STORE_OK);
	atomic_store(&q->done, 1);
	return NULL;
}

/*
 * A mailbox without a quota: its deliveries leave its row alone (deltas
 * the heartbeat folds in), and its usage reads the same before and after.
 * Setting a quota waits for a delivery in flight and counts it: the next
 * delivery meets the quota exactly.  A mailbox with a quota has its row
 * kept exact, no deltas.
 */
static void
test_pg_usage_deltas(void **state)
{
	struct fx *f = *state;
	int64_t bob = add_user(f->s, "bob", NULL, 0);
	struct store_rcpt_local loc = { bob, NULL, NULL };
	struct store_delivery d = { .sender = "s@t", .data = "1234", .fd = -1, .len = 4,
	    .check_quota = 1, .local = &loc, .nlocal = 1 };
	struct store_delivery_result res;
	struct quota_setter q = { .s = f->s, .quota = 20 };
	char sql[256];
	pthread_t t;
	PGconn *c;
	PGresult *r;

	for (int i = 0; i < 3; i++) {
		assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
		store_delivery_result_clear(&res);
	}
	assert_int_equal(pg_number(f, "SELECT count(*) FROM usage_deltas"), 3);
	assert_int_equal(pg_number(f, "SELECT used FROM users WHERE login = 'bob'"), 0);
	assert_usage(f->s, "bob", 12, 3);
	assert_int_equal(store_node_claim(f->s, "test 1", NULL, NULL, 0), STORE_OK);	/* the heartbeat */
	assert_int_equal(pg_number(f, "SELECT count(*) FROM usage_deltas"), 0);
	assert_int_equal(pg_number(f, "SELECT used FROM users WHERE login = 'bob'"), 12);
	assert_usage(f->s, "bob", 12, 3);

	/* A delivery of 4 more bytes, in flight on another connection. */
	c = PQconnectdb(f->dsn);
	snprintf(sql, sizeof(sql), "BEGIN; WITH m AS (INSERT INTO messages (sender, size,"
	    " created_at) VALUES ('x@y', 4, 0) RETURNING id) INSERT INTO entries"
	    " (user_id, message_id, kind, size, arrived) SELECT %lld, id, 0, 4, 0 FROM m",
	    (long long)bob);
	r = PQexec(c, sql);
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	assert_int_equal(pthread_create(&t, NULL, quota_set_thread, &q), 0);
	usleep(300 * 1000);
	assert_false(atomic_load(&q.done));
	r = PQexec(c, "COMMIT");
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	PQfinish(c);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(pg_number(f, "SELECT count(*) FROM usage_deltas"), 0);
	assert_int_equal(pg_number(f, "SELECT used FROM users WHERE login = 'bob'"), 16);

	/* 16 + 4 = 20 fits; then the mailbox is full. */
	assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
	store_delivery_result_clear(&res);
	assert_int_equal(pg_number(f, "SELECT count(*) FROM usage_deltas"), 0);
	assert_usage(f->s, "bob", 20, 5);
	assert_int_equal(store_deliver(f->s, &d, &res), STORE_QUOTA);
	assert_usage(f->s, "bob", 20, 5);

	/* Without a quota again, deltas again. */
	q.quota = 0;
	quota_set_thread(&q);
	assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
	store_delivery_result_clear(&res);
	assert_int_equal(pg_number(f, "SELECT count(*) FROM usage_deltas"), 1);
	assert_usage(f->s, "bob", 24, 6);
}

/*
 * A batch that PostgreSQL aborts as a deadlock's victim runs again after
 * a short wait, and its delivery is stored once: the conflict never
 * reaches the client.  The batch holds alice's row and waits for bob's,
 * which another connection holds and that connection then asks for
 * alice's: the writer, waiting first, is the one the server aborts.
 */
static void
test_pg_writer_deadlock_retried(void **state)
{
	struct fx *f = *state;
	int64_t a = add_user(f->s, "alice", NULL, 1000000), b = add_user(f->s, "bob", NULL, 1000000);
	struct store_rcpt_local both[2] = { { a, NULL, NULL }, { b, NULL, NULL } };
	struct store_delivery d = { .sender = "", .data = "both\r\n", .fd = -1, .len = 6,
	    .check_quota = 1, .local = both, .nlocal = 2 };
	struct store_writer *w;
	struct wctx ctx = { 0 };
	struct blocker blk;
	struct store_entry *v;
	pthread_t loop;
	char err[256], sql[128];
	PGresult *r;
	size_t n;
	int waited = 0;

	/*
	 * PostgreSQL aborts whichever side's deadlock check runs first once both
	 * wait: give the writer's a head start the blocker cannot overtake even
	 * on a loaded machine, so the writer is always the one chosen.
	 */
	snprintf(sql, sizeof(sql), "ALTER DATABASE %s SET deadlock_timeout = '3s'", f->pgdb);
	pg_run(f, sql);
	ctx.base = event_base_new();
	assert_int_equal(store_writer_new(&f->cfg, ctx.base, &w, err, sizeof(err)), STORE_OK);
	block_writer(f, b, &blk);
	r = PQexec(blk.pg, "SET deadlock_timeout = '60s'");
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	ctx.expect = 1;
	assert_int_equal(pthread_create(&loop, NULL, dispatch_thread, &ctx), 0);
	store_writer_submit(w, store_req_deliver(&d, on_done, &ctx));
	while (pg_number(f, "SELECT count(*) FROM pg_locks WHERE NOT granted") == 0) {
		assert_true(++waited < 500);
		usleep(10000);
	}
	snprintf(sql, sizeof(sql), "SELECT 1 FROM users WHERE id = %lld FOR UPDATE", (long long)a);
	r = PQexec(blk.pg, sql);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	PQclear(r);
	unblock_writer(&blk);
	pthread_join(loop, NULL);
	assert_int_equal(ctx.done, 1);
	assert_int_equal(ctx.ok, 1);
	store_writer_free(&w);
	event_base_free(ctx.base);
	assert_int_equal(pg_number(f, "SELECT count(*) FROM messages"), 1);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(store_mailbox_list(f->s, both[i].user_id, &v, &n), STORE_OK);
		assert_int_equal(n, 1);
		store_entry_list_free(&v, n);
	}
}

static void
test_pg_open_schema(void **state)
{
	struct fx *f = *state;
	struct store *again;
	char err[256];

	assert_int_equal(store_schema_version(f->s), PG_SCHEMA_VERSION);
	assert_int_equal(store_open(&f->cfg, 0, &again, err, sizeof(err)), STORE_OK);
	assert_int_equal(store_schema_version(again), PG_SCHEMA_VERSION);
	store_close(&again);
}

struct pg_opener {
	const struct store_config *cfg;
	int status;
	char err[256];
};

static void *
pg_open_thread(void *arg)
{
	struct pg_opener *o = arg;
	struct store *s = NULL;

	o->status = store_open(o->cfg, STORE_CREATE, &s, o->err, sizeof(o->err));
	store_close(&s);
	return NULL;
}

/* Nodes starting at once on an empty database: one migrates, all open. */
static void
test_pg_concurrent_migration(void **state)
{
	struct fx *f = *state;
	struct pg_opener o[4];
	pthread_t t[4];

	pg_run(f, "SET client_min_messages = warning; DROP SCHEMA public CASCADE;"
	    " CREATE SCHEMA public");
	for (int i = 0; i < 4; i++) {
		o[i] = (struct pg_opener){ .cfg = &f->cfg };
		assert_int_equal(pthread_create(&t[i], NULL, pg_open_thread, &o[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 4; i++) {
		if (o[i].status != STORE_OK)
			fprintf(stderr, "store_open: %s\n", o[i].err);
		assert_int_equal(o[i].status, STORE_OK);
	}
	assert_int_equal(store_schema_version(f->s), PG_SCHEMA_VERSION);
}

static void
test_pg_newer_schema_refused(void **state)
{
	struct fx *f = *state;
	struct store *again;
	char err[256];

	pg_run(f, "UPDATE umbox_schema SET version = 99");
	assert_int_equal(store_open(&f->cfg, 0, &again, err, sizeof(err)), STORE_INVALID);
	assert_non_null(strstr(err, "newer"));
	assert_int_equal(store_open(&f->cfg, STORE_READONLY, &again, err, sizeof(err)),
	    STORE_INVALID);
}

/* No server there: a temporary error that says so, not a crash or a hang. */
static void
test_pg_no_server(void **state)
{
	struct fx *f = *state;
	struct store_config cfg = { .backend = STORE_BACKEND_POSTGRESQL,
	    .dsn = "host=/nonexistent-umbox-socket-dir connect_timeout=2" };
	struct store *s;
	char err[512];

	(void)f;
	assert_int_equal(store_open(&cfg, 0, &s, err, sizeof(err)), STORE_ERROR);
	assert_non_null(strstr(err, "cannot connect to PostgreSQL"));
}

/*
 * Node names and POP3 locks across nodes: a name is held by one live
 * process; a lock is free once its node's heartbeat is stale, and its
 * lease runs on the database's clock.
 */
/* The server drops the test's connections (a restart, a failover). */
static void
pg_drop_connections(struct fx *f)
{
	PGconn *c = PQconnectdb(f->dsn);
	PGresult *r = PQexec(c, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
	    " WHERE datname = current_database() AND pid <> pg_backend_pid()");

	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	PQclear(r);
	PQfinish(c);
}

/*
 * A connection the server dropped is made again for the next command,
 * but never under a transaction that went with it: until its owner ends
 * it, every command fails.
 */
static void
test_pg_reconnect(void **state)
{
	struct fx *f = *state;
	struct store_domain d = { .name = "a.test", .guard = "unchecked" };

	assert_int_equal(store_domain_add(f->s, &d), STORE_OK);
	pg_drop_connections(f);
	/* The first command may find the connection gone; the next has a new one. */
	(void)store_domain_exists(f->s, "a.test");
	assert_int_equal(store_domain_exists(f->s, "a.test"), 1);

	store_read_begin(f->s);
	assert_int_equal(store_domain_exists(f->s, "a.test"), 1);
	pg_drop_connections(f);
	sleep(1);	/* reconnecting is tried at most once a second */
	assert_true(store_domain_exists(f->s, "a.test") < 0);
	assert_true(store_domain_exists(f->s, "a.test") < 0);
	store_read_end(f->s);
	assert_int_equal(store_domain_exists(f->s, "a.test"), 1);
}

static void
test_pg_nodes_and_locks(void **state)
{
	struct fx *f = *state;
	int64_t a = add_user(f->s, "alice", NULL, 0);
	struct store_config cb = f->cfg;
	struct store *same, *b;
	char err[256], holder[320];

	cb.node_id = "b";
	assert_int_equal(store_open(&f->cfg, 0, &same, err, sizeof(err)), STORE_OK);
	assert_int_equal(store_open(&cb, 0, &b, err, sizeof(err)), STORE_OK);

	assert_int_equal(store_node_claim(f->s, "host1:100", NULL, NULL, 0), STORE_OK);
	/* A second process with the same node_id is refused, and told who holds it. */
	assert_int_equal(store_node_claim(same, "host2:200", NULL, holder, sizeof(holder)),
	    STORE_EXISTS);
	assert_non_null(strstr(store_errmsg(same), "host1:100"));
	assert_string_equal(holder, "host1:100");
	/* Unless it may replace exactly that holder (the process that started it). */
	assert_int_equal(store_node_claim(same, "host2:200", "host1:99", NULL, 0), STORE_EXISTS);
	assert_int_equal(store_node_claim(same, "host1:101", "host1:100", NULL, 0), STORE_OK);
	assert_int_equal(store_node_claim(f->s, "host1:100", "host1:101", NULL, 0), STORE_OK);
	assert_int_equal(store_node_claim(f->s, "host1:100", NULL, NULL, 0), STORE_OK);
	assert_int_equal(store_node_beat(f->s, "host1:100"), STORE_OK);
	assert_int_equal(store_node_beat(same, "host2:200"), STORE_LOCKED);
	assert_int_equal(store_node_claim(b, "hostb:1", NULL, NULL, 0), STORE_OK);

	/* Node test's session holds alice's mailbox; node b cannot take it. */
	assert_int_equal(store_pop3_lock(f->s, a, "test:1", 0, 600), STORE_OK);
	assert_int_equal(store_pop3_lock(b, a, "b:1", 0, 600), STORE_LOCKED);
	/* Node test dies: its heartbeat goes stale, and the lock with it. */
	pg_run(f, "UPDATE nodes SET heartbeat = heartbeat - 31 WHERE id = 'test'");
	assert_int_equal(store_pop3_lock(b, a, "b:1", 0, 600), STORE_OK);
	/* Its name is free for a new process; the old one learns it was replaced. */
	assert_int_equal(store_node_claim(same, "host2:200", NULL, NULL, 0), STORE_OK);
	assert_int_equal(store_node_beat(f->s, "host1:100"), STORE_LOCKED);

	/* The lease runs on the database's clock, whatever the caller's says. */
	assert_int_equal(store_pop3_lock(b, a, "b:1", 0, 1), STORE_OK);
	assert_int_equal(store_pop3_lock(same, a, "test:2", INT64_MAX / 2, 600), STORE_LOCKED);
	sleep(2);
	assert_int_equal(store_pop3_lock(same, a, "test:2", 0, 600), STORE_OK);

	store_node_release(b, "hostb:1");
	assert_int_equal(store_node_claim(b, "hostb:2", NULL, NULL, 0), STORE_OK);
	store_close(&same);
	store_close(&b);
}

/* store/pg_int.h's (whose pg_run this file's helper would clash with). */
void pg_msg(const char *msg, char *err, size_t errlen);

/* libpq's messages, several lines each, become one line for a log or umboxctl. */
static void
test_pg_message_one_line(void **state)
{
	char out[512], small[16];

	(void)state;
	pg_msg("server closed the connection unexpectedly\n"
	    "\tThis probably means the server terminated abnormally\n"
	    "\tbefore or while processing the request.\n", out, sizeof(out));
	assert_string_equal(out, "server closed the connection unexpectedly This probably means"
	    " the server terminated abnormally before or while processing the request.");
	pg_msg("connection to server failed: refused\ninvalid socket\n\n", out, sizeof(out));
	assert_string_equal(out, "connection to server failed: refused; invalid socket");
	pg_msg("ERROR:  x\r\n", out, sizeof(out));
	assert_string_equal(out, "ERROR:  x");
	pg_msg("", out, sizeof(out));
	assert_string_equal(out, "");
	pg_msg("a long line that does not fit\nmore", small, sizeof(small));
	assert_string_equal(small, "a long line tha");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pg_message_one_line),
		cmocka_unit_test_setup_teardown(test_open_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_file_private, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_domains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_users, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_view, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aliases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_and_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wal_large_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wal_spilled_transaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_message_freed_with_last_entry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uid_never_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota_defers_the_full_mailbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota_all_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota_remote_and_full_local, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_from_fd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_from_fd_in_bounded_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_keeps_messages_in_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entries_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pop3_locks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader, setup, teardown),
		cmocka_unit_test_setup_teardown(test_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_any_kind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_set, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_group_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_spoiled_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_cancel_and_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_deletes_a_large_mailbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_disk_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_per_target, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_dup_failure, setup, teardown),
	};
	/* The same tests on PostgreSQL, as far as that backend goes. */
	const struct CMUnitTest pg_tests[] = {
		cmocka_unit_test_setup_teardown(test_pg_open_schema, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_concurrent_migration, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_newer_schema_refused, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_no_server, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_domains, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_users, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_aliases, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_read_view, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_deliver_and_read, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_message_freed_with_last_entry, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_uid_never_reused, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_quota_defers_the_full_mailbox, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_quota_all_full, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_quota_remote_and_full_local, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_deliver_from_fd, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_entries_read, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_nodes_and_locks, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_reconnect, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_directory, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_reader, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_delete_any_kind, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_delete_set, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_sweep, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_sweep_commit_marks, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_usage_deltas, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_pg_writer_deadlock_retried, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_writer_group_commit, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_writer_spoiled_request, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_writer_dup_failure, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_writer_cancel_and_delete, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_writer_per_target, setup_pg, teardown_pg),
	};

	return cmocka_run_group_tests_name("sqlite", tests, NULL, NULL) + TU_PG_GROUP(pg_tests);
}
