/*
 * test_queue.c - the outbound queue in the store: listing and managing
 * rows, the retry arithmetic, claims with a lease, attempts reported,
 * full mailboxes delivered once they have room, and the same writes as
 * writer requests on a libevent loop (SPEC §6).
 */
#include "testutil.h"

#include <limits.h>
#include <pthread.h>
#include <time.h>

#include <event2/event.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "store/store.h"

struct fx {
	char *dir;
	char *path;
	struct store *s;
	int64_t t0;		/* about when the rows were made */
	struct store_config cfg;
	char *pgdb, *dsn;	/* postgresql */
};

static const struct store_retry retry = { .initial = 30, .max = 3600, .lifetime = 5 * 86400 };

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
	f->t0 = (int64_t)time(NULL);
	*state = f;
	return 0;
}

static int
setup_pg(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	f->dir = tu_tempdir();
	if ((f->dsn = tu_pg_create(&f->pgdb)) == NULL)
		return -1;
	f->cfg = (struct store_config){ .backend = STORE_BACKEND_POSTGRESQL, .dsn = f->dsn };
	if (store_open(&f->cfg, STORE_CREATE, &f->s, err, sizeof(err)) != STORE_OK) {
		fprintf(stderr, "store_open: %s\n", err);
		return -1;
	}
	f->t0 = (int64_t)time(NULL);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	store_close(&f->s);
	if (f->pgdb) {
		tu_pg_drop(f->pgdb);
		free(f->dsn);
	}
	free(f->path);
	tu_rmdir(f->dir);
	free(f);
	return 0;
}

static int64_t
add_user(struct store *s, const char *login, uint64_t quota)
{
	struct store_user u = { .login = (char *)login, .quota = quota, .pop3 = 1 }, got;
	int64_t id;

	assert_int_equal(store_user_add(s, &u), STORE_OK);
	assert_int_equal(store_user_get(s, login, &got), STORE_OK);
	id = got.id;
	store_user_clear(&got);
	return id;
}

/* A message from sender to the outside recipients given; its message id. */
static int64_t
queue_message(struct store *s, const char *sender, const char *body, ...)
{
	const char *v[16];
	struct store_delivery d = { .sender = sender, .data = body, .fd = -1,
	    .len = strlen(body), .remote = v };
	struct store_delivery_result res;
	const char *r;
	va_list ap;

	va_start(ap, body);
	while ((r = va_arg(ap, const char *)) != NULL && d.nremote < 16)
		v[d.nremote++] = r;
	va_end(ap);
	assert_int_equal(store_deliver(s, &d, &res), STORE_OK);
	assert_int_equal(res.queued, d.nremote);
	store_delivery_result_clear(&res);
	return res.message_id;
}

/* The id of the queue row for recipient (the newest if several). */
static int64_t
row_id(struct store *s, const char *recipient)
{
	struct store_queue_entry *v;
	int64_t id = 0;
	size_t n;

	assert_int_equal(store_queue_list(s, &v, &n), STORE_OK);
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].recipient, recipient) == 0)
			id = v[i].id;
	store_queue_list_free(&v, n);
	assert_true(id > 0);
	return id;
}

static void
get(struct store *s, int64_t id, struct store_queue_entry *e)
{
	assert_int_equal(store_queue_get(s, id, e), STORE_OK);
}

static size_t
queue_len(struct store *s)
{
	struct store_queue_entry *v;
	size_t n;

	assert_int_equal(store_queue_list(s, &v, &n), STORE_OK);
	store_queue_list_free(&v, n);
	return n;
}

/* ---- the schema ---- */

/* Schema 5's additions taken off: the directory's version and its triggers. */
static void
drop_directory_version(sqlite3 *db)
{
	sqlite3_stmt *st;
	char *sql;

	assert_int_equal(sqlite3_prepare_v2(db, "SELECT group_concat('DROP TRIGGER ' || name, ';')"
	    " FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%_version'", -1, &st,
	    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	sql = sqlite3_mprintf("%s; DROP TABLE directory_version;", sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_free(sql);
}

/* Schema 6's addition taken off: messages' bytes back in body. */
static void
drop_message_content(sqlite3 *db)
{
	assert_int_equal(sqlite3_exec(db, "UPDATE messages SET body = content;"
	    "ALTER TABLE messages DROP COLUMN content;", NULL, NULL, NULL), SQLITE_OK);
}

/*
 * A store with rows from before schema 4 gets the new columns, and each
 * row the domain after its recipient's last '@'.  The old store is made
 * by taking schema 4's, 5's and 6's additions off a new one.
 */
static void
test_migration_4(void **state)
{
	struct fx *f = *state;
	static const char *const recipients[] = { "a@Old.Example", "\"x@y\"@c.example", "alice" };
	static const char *const domains[] = { "old.example", "c.example", "" };
	struct store_queue_entry *v;
	char err[256];
	sqlite3 *db;
	size_t n;

	queue_message(f->s, "s@h.example", "x\r\n", "placeholder@p.example", NULL);
	store_close(&f->s);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	drop_message_content(db);
	drop_directory_version(db);
	assert_int_equal(sqlite3_exec(db,
	    "DROP INDEX queue_due;"
	    "ALTER TABLE queue DROP COLUMN status; ALTER TABLE queue DROP COLUMN claimed_by;"
	    "ALTER TABLE queue DROP COLUMN claimed_until; ALTER TABLE queue DROP COLUMN domain;"
	    "ALTER TABLE queue DROP COLUMN last_attempt;"
	    "CREATE INDEX queue_next ON queue(held, next_attempt);"
	    "PRAGMA user_version = 3;", NULL, NULL, NULL), SQLITE_OK);
	for (size_t i = 0; i < 3; i++) {
		char *sql = sqlite3_mprintf("INSERT INTO queue (message_id, sender, recipient,"
		    " next_attempt, created_at) SELECT message_id, sender, %Q, 1, 1 FROM queue"
		    " LIMIT 1", recipients[i]);
		assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
		sqlite3_free(sql);
	}
	sqlite3_close(db);

	assert_int_equal(store_open(STORE_SQLITE(f->path), 0, &f->s, err, sizeof(err)), STORE_OK);
	assert_int_equal(store_schema_version(f->s), 6);
	assert_int_equal(store_queue_list(f->s, &v, &n), STORE_OK);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < 3; i++) {
		assert_string_equal(v[i + 1].recipient, recipients[i]);
		assert_string_equal(v[i + 1].domain, domains[i]);
		assert_int_equal(v[i + 1].status, STORE_QUEUE_QUEUED);
		assert_null(v[i + 1].claimed_by);
	}
	store_queue_list_free(&v, n);
}

/* ---- the retry arithmetic ---- */

static void
test_backoff(void **state)
{
	(void)state;
	/* attempts 0 and 1: the initial delay; then doubling. */
	assert_int_equal(store_queue_backoff(0, 30, 3600), 30);
	assert_int_equal(store_queue_backoff(1, 30, 3600), 30);
	assert_int_equal(store_queue_backoff(2, 30, 3600), 60);
	assert_int_equal(store_queue_backoff(3, 30, 3600), 120);
	assert_int_equal(store_queue_backoff(7, 30, 3600), 1920);
	assert_int_equal(store_queue_backoff(8, 30, 3600), 3600);	/* 3840 capped */
	assert_int_equal(store_queue_backoff(9, 30, 3600), 3600);
	/* Large counts: the shift is capped, nothing overflows or wraps. */
	assert_int_equal(store_queue_backoff(32, 30, 3600), 3600);
	assert_int_equal(store_queue_backoff(33, 30, 3600), 3600);
	assert_int_equal(store_queue_backoff(63, 30, 3600), 3600);
	assert_int_equal(store_queue_backoff(64, 30, 3600), 3600);
	assert_int_equal(store_queue_backoff(65, 30, 3600), 3600);
	assert_int_equal(store_queue_backoff(1000, 30, 3600), 3600);
	assert_int_equal(store_queue_backoff(UINT_MAX, 30, 3600), 3600);
	assert_int_equal(store_queue_backoff(34, UINT_MAX, UINT_MAX), UINT_MAX);
	assert_int_equal(store_queue_backoff(2, UINT_MAX, UINT_MAX), UINT_MAX);
	assert_int_equal(store_queue_backoff(33, 1, UINT_MAX), UINT_MAX);	/* 2^32 */
	assert_int_equal(store_queue_backoff(32, 1, UINT_MAX), 1U << 31);
	/* An initial delay above the maximum gives the maximum. */
	assert_int_equal(store_queue_backoff(1, 7200, 3600), 3600);
	/* Zeros in the configuration never make a runner spin. */
	assert_int_equal(store_queue_backoff(1, 0, 3600), 1);
	assert_int_equal(store_queue_backoff(5, 30, 0), 1);
}

static void
test_clean_error(void **state)
{
	struct fx *f = *state;
	struct store_attempt a = { .result = STORE_ATTEMPT_DEFERRED,
	    .error = "451-4.7.1 first\r\n451 4.7.1 sec\x01nd \xc3\xa9\r\n" };
	struct store_queue_entry e;
	char big[2000];

	queue_message(f->s, "a@here.example", "x\r\n", "b@there.example", NULL);
	a.id = row_id(f->s, "b@there.example");
	assert_int_equal(store_queue_report(f->s, NULL, f->t0, &retry, &a, 1), STORE_OK);
	get(f->s, a.id, &e);
	assert_string_equal(e.last_error, "451-4.7.1 first 451 4.7.1 sec?nd ??");
	store_queue_entry_clear(&e);

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	a.error = big;
	assert_int_equal(store_queue_report(f->s, NULL, f->t0, &retry, &a, 1), STORE_OK);
	get(f->s, a.id, &e);
	assert_int_equal(strlen(e.last_error), 511);
	store_queue_entry_clear(&e);
}

/* ---- listing and managing ---- */

static void
test_list_and_show(void **state)
{
	struct fx *f = *state;
	struct store_queue_entry *v, e;
	struct store_stats st;
	int64_t mid;
	size_t n;

	assert_int_equal(store_queue_list(f->s, &v, &n), STORE_OK);
	assert_int_equal(n, 0);
	store_queue_list_free(&v, n);

	mid = queue_message(f->s, "alice@here.example", "Subject: x\r\n\r\nhello\r\n",
	    "Bob@There.Example", "carol@there.example", NULL);
	queue_message(f->s, "", "bounce\r\n", "dave@else.example", NULL);
	assert_int_equal(store_queue_list(f->s, &v, &n), STORE_OK);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].recipient, "Bob@There.Example");
	assert_string_equal(v[0].domain, "there.example");
	assert_string_equal(v[0].sender, "alice@here.example");
	assert_int_equal(v[0].message_id, mid);
	assert_int_equal(v[0].size, 21);
	assert_int_equal(v[0].attempts, 0);
	assert_int_equal(v[0].status, STORE_QUEUE_QUEUED);
	assert_false(v[0].held);
	assert_null(v[0].claimed_by);
	assert_int_equal(v[0].claimed_until, 0);
	assert_int_equal(v[0].last_attempt, 0);
	assert_string_equal(v[0].last_error, "");
	assert_int_equal(v[0].local_user_id, 0);
	assert_true(v[0].created_at >= f->t0);
	assert_int_equal(v[0].next_attempt, v[0].created_at);
	assert_true(v[0].qid[0] != '\0');
	assert_true(v[1].id > v[0].id);
	assert_string_equal(v[2].sender, "");

	get(f->s, v[2].id, &e);
	assert_string_equal(e.recipient, "dave@else.example");
	assert_int_equal(e.size, 8);
	store_queue_entry_clear(&e);
	assert_int_equal(store_queue_get(f->s, 999999, &e), STORE_NOTFOUND);
	assert_int_equal(store_queue_get(f->s, 0, &e), STORE_NOTFOUND);

	/* del: the message goes with its last row. */
	assert_int_equal(store_queue_del(f->s, v[2].id), STORE_OK);
	assert_int_equal(store_queue_del(f->s, v[2].id), STORE_NOTFOUND);
	assert_int_equal(store_stats(f->s, &st), STORE_OK);
	assert_int_equal(st.messages, 1);
	assert_int_equal(st.queued, 2);
	assert_int_equal(store_queue_del(f->s, v[0].id), STORE_OK);
	assert_int_equal(store_stats(f->s, &st), STORE_OK);
	assert_int_equal(st.messages, 1);
	assert_int_equal(store_queue_del(f->s, v[1].id), STORE_OK);
	assert_int_equal(store_stats(f->s, &st), STORE_OK);
	assert_int_equal(st.messages, 0);
	assert_int_equal(st.queued, 0);
	store_queue_list_free(&v, n);
}

static void
test_hold_release_flush(void **state)
{
	struct fx *f = *state;
	struct store_attempt a = { .result = STORE_ATTEMPT_DEFERRED, .error = "451 later" };
	struct store_queue_entry e, *v;
	int64_t id1, id2, id3, when;
	size_t n;

	queue_message(f->s, "s@h.example", "x\r\n", "a@d.example", "b@d.example",
	    "c@d.example", NULL);
	id1 = row_id(f->s, "a@d.example");
	id2 = row_id(f->s, "b@d.example");
	id3 = row_id(f->s, "c@d.example");

	/* Defer all three: due in 30 s. */
	for (int64_t id = id1; id <= id3; id++) {
		a.id = id;
		assert_int_equal(store_queue_report(f->s, NULL, f->t0, &retry, &a, 1), STORE_OK);
	}
	assert_int_equal(store_queue_next_due(f->s, &when), STORE_OK);
	assert_int_equal(when, f->t0 + 30);
	assert_int_equal(store_queue_claim(f->s, "r", f->t0 + 1, 60, 10, &v, &n), STORE_OK);
	assert_int_equal(n, 0);
	assert_null(v);

	assert_int_equal(store_queue_hold(f->s, id2, 1), STORE_OK);
	assert_int_equal(store_queue_hold(f->s, 999999, 1), STORE_NOTFOUND);
	a.id = id3;
	a.result = STORE_ATTEMPT_FAILED;
	assert_int_equal(store_queue_report(f->s, NULL, f->t0, &retry, &a, 1), STORE_OK);
	assert_true(a.failed);

	/* Flushing one: a held or failed row is left alone. */
	assert_int_equal(store_queue_flush(f->s, id2, f->t0 + 1, &n), STORE_OK);
	assert_int_equal(n, 0);
	assert_int_equal(store_queue_flush(f->s, id3, f->t0 + 1, &n), STORE_OK);
	assert_int_equal(n, 0);
	assert_int_equal(store_queue_flush(f->s, 999999, f->t0 + 1, &n), STORE_NOTFOUND);
	assert_int_equal(store_queue_flush(f->s, id1, f->t0 + 1, &n), STORE_OK);
	assert_int_equal(n, 1);
	get(f->s, id1, &e);
	assert_int_equal(e.next_attempt, f->t0 + 1);
	store_queue_entry_clear(&e);

	/* Only the flushed one is claimable; the held one is not, flushed or not. */
	assert_int_equal(store_queue_flush(f->s, 0, f->t0 + 1, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(store_queue_claim(f->s, "r", f->t0 + 1, 60, 10, &v, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].id, id1);
	store_queue_list_free(&v, n);

	/* Release keeps the schedule: due at t0 + 30, claimable then. */
	assert_int_equal(store_queue_hold(f->s, id2, 0), STORE_OK);
	get(f->s, id2, &e);
	assert_false(e.held);
	assert_int_equal(e.next_attempt, f->t0 + 30);
	store_queue_entry_clear(&e);
	assert_int_equal(store_queue_claim(f->s, "r", f->t0 + 2, 60, 10, &v, &n), STORE_OK);
	assert_int_equal(n, 0);
	assert_int_equal(store_queue_claim(f->s, "r", f->t0 + 30, 60, 10, &v, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].id, id2);
	store_queue_list_free(&v, n);

	/* Both claimed until t0 + 61 / t0 + 90; the failed row never counts. */
	assert_int_equal(store_queue_next_due(f->s, &when), STORE_OK);
	assert_int_equal(when, f->t0 + 61);
	assert_int_equal(store_queue_del(f->s, id1), STORE_OK);
	assert_int_equal(store_queue_del(f->s, id2), STORE_OK);
	assert_int_equal(store_queue_next_due(f->s, &when), STORE_NOTFOUND);
}

/* ---- claims ---- */

static void
test_claim_groups_and_lease(void **state)
{
	struct fx *f = *state;
	struct store_queue_entry *v, *w;
	int64_t m1, m2;
	size_t n, k;

	m1 = queue_message(f->s, "s@h.example", "one\r\n", "a@b.example", "x@a.example",
	    "c@B.example", "y@a.example", NULL);
	m2 = queue_message(f->s, "s@h.example", "two\r\n", "d@a.example", NULL);

	/* Not yet due. */
	assert_int_equal(store_queue_claim(f->s, "r1", f->t0 - 10, 60, 10, &v, &n), STORE_OK);
	assert_int_equal(n, 0);

	/* Message by message, domain by domain. */
	assert_int_equal(store_queue_claim(f->s, "r1", f->t0 + 5, 60, 10, &v, &n), STORE_OK);
	assert_int_equal(n, 5);
	assert_int_equal(v[0].message_id, m1);
	assert_string_equal(v[0].domain, "a.example");
	assert_string_equal(v[0].recipient, "x@a.example");
	assert_string_equal(v[1].recipient, "y@a.example");
	assert_string_equal(v[2].domain, "b.example");
	assert_string_equal(v[2].recipient, "a@b.example");
	assert_string_equal(v[3].recipient, "c@B.example");
	assert_int_equal(v[4].message_id, m2);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(v[i].claimed_by, "r1");
		assert_int_equal(v[i].claimed_until, f->t0 + 65);
	}

	/* Claimed: another runner gets nothing while the lease holds... */
	assert_int_equal(store_queue_claim(f->s, "r2", f->t0 + 64, 60, 10, &w, &k), STORE_OK);
	assert_int_equal(k, 0);
	/* ...which r1 extends while it delivers (another's renewal changes nothing)... */
	{
		int64_t ids[2] = { v[0].id, v[4].id };

		assert_int_equal(store_queue_renew(f->s, "r1", ids, 2, f->t0 + 100), STORE_OK);
		assert_int_equal(store_queue_renew(f->s, "rX", &v[1].id, 1, f->t0 + 500), STORE_OK);
		assert_int_equal(store_queue_claim(f->s, "r2", f->t0 + 65, 60, 10, &w, &k),
		    STORE_OK);
		assert_int_equal(k, 3);		/* b.example's two, and y@a.example */
		store_queue_list_free(&w, k);
		assert_int_equal(store_queue_release_claims(f->s, "r2"), STORE_OK);
		assert_int_equal(store_queue_renew(f->s, "r1", ids, 2, f->t0 + 65), STORE_OK);
	}
	/* ...and everything once it has run out (r1 crashed). */
	assert_int_equal(store_queue_claim(f->s, "r2", f->t0 + 65, 60, 10, &w, &k), STORE_OK);
	assert_int_equal(k, 5);
	assert_string_equal(w[0].claimed_by, "r2");
	store_queue_list_free(&w, k);
	store_queue_list_free(&v, n);

	/* release_claims: a restarted runner's rows are free at once. */
	assert_int_equal(store_queue_release_claims(f->s, "r2"), STORE_OK);
	assert_int_equal(store_queue_claim(f->s, "r3", f->t0 + 66, 60, 10, &v, &n), STORE_OK);
	assert_int_equal(n, 5);
	store_queue_list_free(&v, n);
	assert_int_equal(store_queue_release_claims(f->s, "r"), STORE_OK);	/* a prefix */

	/* max: a message's rows to one domain are not split across claims... */
	assert_int_equal(store_queue_claim(f->s, "r4", f->t0 + 67, 60, 3, &v, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(v[1].recipient, "y@a.example");
	assert_int_equal(store_queue_claim(f->s, "r4", f->t0 + 67, 60, 3, &w, &k), STORE_OK);
	assert_int_equal(k, 3);
	assert_string_equal(w[0].recipient, "a@b.example");
	assert_int_equal(w[2].message_id, m2);
	store_queue_list_free(&w, k);
	store_queue_list_free(&v, n);
	/* ...unless the group alone is more than max. */
	assert_int_equal(store_queue_release_claims(f->s, "r4"), STORE_OK);
	assert_int_equal(store_queue_claim(f->s, "r5", f->t0 + 67, 60, 1, &v, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].recipient, "x@a.example");
	store_queue_list_free(&v, n);
	assert_int_equal(store_queue_claim(f->s, "r5", f->t0 + 67, 60, 0, &v, &n), STORE_OK);
	assert_int_equal(n, 0);
}

/* ---- attempts ---- */

static void
test_report(void **state)
{
	struct fx *f = *state;
	struct store_queue_entry *v, e;
	struct store_attempt a[3];
	struct store_stats st;
	int64_t ids[3];
	size_t n;

	queue_message(f->s, "s@h.example", "x\r\n", "ok@d.example", "later@d.example",
	    "never@d.example", NULL);
	assert_int_equal(store_queue_claim(f->s, "r1", f->t0 + 1, 600, 10, &v, &n), STORE_OK);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < 3; i++)
		ids[i] = v[i].id;
	store_queue_list_free(&v, n);

	memset(a, 0, sizeof(a));
	a[0] = (struct store_attempt){ .id = ids[0], .result = STORE_ATTEMPT_DELIVERED };
	a[1] = (struct store_attempt){ .id = ids[1], .result = STORE_ATTEMPT_DEFERRED,
	    .error = "451 4.3.0 try later" };
	a[2] = (struct store_attempt){ .id = ids[2], .result = STORE_ATTEMPT_FAILED,
	    .error = "550 5.1.1 no such user" };
	/* Another runner's report is refused row by row; the rows stay as they were. */
	assert_int_equal(store_queue_report(f->s, "r2", f->t0 + 10, &retry, &a[1], 2), STORE_OK);
	assert_int_equal(a[1].status, STORE_LOCKED);
	assert_int_equal(a[2].status, STORE_LOCKED);
	get(f->s, ids[1], &e);
	assert_int_equal(e.attempts, 0);
	assert_string_equal(e.claimed_by, "r1");
	store_queue_entry_clear(&e);

	assert_int_equal(store_queue_report(f->s, "r1", f->t0 + 10, &retry, a, 3), STORE_OK);
	assert_int_equal(a[0].status, STORE_OK);
	assert_false(a[0].failed);
	assert_int_equal(a[1].status, STORE_OK);
	assert_false(a[1].failed);
	assert_int_equal(a[2].status, STORE_OK);
	assert_true(a[2].failed);

	assert_int_equal(store_queue_get(f->s, ids[0], &e), STORE_NOTFOUND);
	get(f->s, ids[1], &e);
	assert_int_equal(e.status, STORE_QUEUE_QUEUED);
	assert_int_equal(e.attempts, 1);
	assert_int_equal(e.next_attempt, f->t0 + 10 + 30);
	assert_int_equal(e.last_attempt, f->t0 + 10);
	assert_string_equal(e.last_error, "451 4.3.0 try later");
	assert_null(e.claimed_by);		/* the claim ends with the report */
	assert_int_equal(e.claimed_until, 0);
	store_queue_entry_clear(&e);
	get(f->s, ids[2], &e);
	assert_int_equal(e.status, STORE_QUEUE_FAILED);
	assert_int_equal(e.attempts, 1);
	assert_string_equal(e.last_error, "550 5.1.1 no such user");
	assert_null(e.claimed_by);
	store_queue_entry_clear(&e);
	assert_int_equal(store_stats(f->s, &st), STORE_OK);
	assert_int_equal(st.queued, 1);
	assert_int_equal(st.queue_failed, 1);

	/* A failed row is never claimed, and takes no more reports. */
	assert_int_equal(store_queue_claim(f->s, "r1", f->t0 + 100000, 60, 10, &v, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].id, ids[1]);
	store_queue_list_free(&v, n);
	a[2].result = STORE_ATTEMPT_DEFERRED;
	assert_int_equal(store_queue_report(f->s, "r1", f->t0 + 11, &retry, &a[2], 1), STORE_OK);
	assert_int_equal(a[2].status, STORE_NOTFOUND);
	/* Delivered twice (a lease ran out): the second report finds nothing. */
	assert_int_equal(store_queue_report(f->s, "r1", f->t0 + 11, &retry, &a[0], 1), STORE_OK);
	assert_int_equal(a[0].status, STORE_NOTFOUND);

	/* Backoff across attempts: 30, 60, 120, ... 3600. */
	for (unsigned i = 2; i <= 12; i++) {
		int64_t now = f->t0 + 1000 * i;

		a[1].result = STORE_ATTEMPT_DEFERRED;
		assert_int_equal(store_queue_report(f->s, NULL, now, &retry, &a[1], 1), STORE_OK);
		get(f->s, ids[1], &e);
		assert_int_equal(e.attempts, i);
		assert_int_equal(e.next_attempt, now + (int64_t)store_queue_backoff(i, 30, 3600));
		store_queue_entry_clear(&e);
	}
	get(f->s, ids[1], &e);
	assert_int_equal(e.next_attempt - e.last_attempt, 3600);
	store_queue_entry_clear(&e);
}

/* Deferred past lifetime: failed instead, and kept. */
static void
test_lifetime(void **state)
{
	struct fx *f = *state;
	struct store_attempt a = { .result = STORE_ATTEMPT_DEFERRED, .error = "421 busy" };
	struct store_queue_entry e;

	queue_message(f->s, "s@h.example", "x\r\n", "a@d.example", NULL);
	a.id = row_id(f->s, "a@d.example");
	get(f->s, a.id, &e);
	int64_t created = e.created_at;
	store_queue_entry_clear(&e);

	assert_int_equal(store_queue_report(f->s, NULL, created + retry.lifetime - 1, &retry, &a,
	    1), STORE_OK);
	assert_false(a.failed);
	get(f->s, a.id, &e);
	assert_int_equal(e.status, STORE_QUEUE_QUEUED);
	store_queue_entry_clear(&e);

	assert_int_equal(store_queue_report(f->s, NULL, created + retry.lifetime, &retry, &a, 1),
	    STORE_OK);
	assert_int_equal(a.status, STORE_OK);
	assert_true(a.failed);
	get(f->s, a.id, &e);
	assert_int_equal(e.status, STORE_QUEUE_FAILED);
	assert_int_equal(e.attempts, 2);
	assert_string_equal(e.last_error, "421 busy");
	store_queue_entry_clear(&e);
}

/* ---- reading a row's message ---- */

/* Read everything through r in slices of step bytes. */
static char *
read_all(struct store_reader *r, size_t size, size_t step)
{
	char *buf = malloc(size + 1);
	size_t off = 0, got;

	for (;;) {
		assert_int_equal(store_reader_read(r, off, buf + off,
		    size - off < step ? size - off : step, &got), STORE_OK);
		if (got == 0)
			break;
		off += got;
	}
	assert_int_equal(off, size);
	return buf;
}

static void
test_reader(void **state)
{
	struct fx *f = *state;
	size_t big = 700 * 1024;
	char *body = malloc(big + 1), *back;
	struct store_queue_entry e;
	struct store_reader *r;
	size_t got;
	char c;

	/* Small: the message as received, no prefix. */
	queue_message(f->s, "s@h.example", "Subject: hi\r\n\r\nhello\r\n", "a@d.example", NULL);
	get(f->s, row_id(f->s, "a@d.example"), &e);
	assert_int_equal(store_queue_reader_open(f->s, &e, &r), STORE_OK);
	back = read_all(r, e.size, 5);
	assert_memory_equal(back, "Subject: hi\r\n\r\nhello\r\n", e.size);
	free(back);
	assert_int_equal(store_reader_read(r, e.size, &c, 1, &got), STORE_OK);
	assert_int_equal(got, 0);
	/*
	 * Gone with its last row: on SQLite even for a reader already open
	 * (only a large message gets a snapshot of its own); on PostgreSQL
	 * an open reader finishes whatever the size (the bytes are swept later).
	 */
	assert_int_equal(store_queue_del(f->s, e.id), STORE_OK);
	assert_int_equal(store_reader_read(r, 0, &c, 1, &got), f->pgdb ? STORE_OK : STORE_NOTFOUND);
	store_reader_close(&r);
	assert_null(r);
	assert_int_equal(store_queue_reader_open(f->s, &e, &r), STORE_NOTFOUND);
	store_queue_entry_clear(&e);

	/* Large: read to the end even if the row goes meanwhile. */
	for (size_t i = 0; i < big; i++)
		body[i] = (char)('a' + i % 26);
	body[big] = '\0';
	queue_message(f->s, "s@h.example", body, "b@d.example", NULL);
	get(f->s, row_id(f->s, "b@d.example"), &e);
	assert_int_equal(e.size, big);
	assert_int_equal(store_queue_reader_open(f->s, &e, &r), STORE_OK);
	assert_int_equal(store_queue_del(f->s, e.id), STORE_OK);
	back = read_all(r, big, 64 * 1024);
	assert_memory_equal(back, body, big);
	free(back);
	store_reader_close(&r);
	store_queue_entry_clear(&e);
	free(body);
}

/* ---- full mailboxes ---- */

/*
 * A full mailbox's row is due as soon as its mailbox has room while it
 * waits for room; one whose last try failed for another reason (a store
 * error) keeps its schedule rather than being tried every second.
 */
static void
test_room_only_for_rows_waiting_for_it(void **state)
{
	struct fx *f = *state;
	int64_t alice = add_user(f->s, "alice", 10);
	struct store_rcpt_local loc = { alice, "D: a\r\n", "alice@example.test" };
	const char *out = "out@d.example";
	/* With an outside copy, so that the message is stored and alice's waits. */
	struct store_delivery d = { .sender = "s@t.example", .data = "12345678", .fd = -1,
	    .len = 8, .check_quota = 1, .local = &loc, .nlocal = 1, .remote = &out,
	    .nremote = 1 };
	struct store_delivery_result res;
	struct store_attempt a = { .result = STORE_ATTEMPT_DEFERRED };
	struct store_queue_entry *v;
	struct store_user u = { .quota = 100 };
	int64_t now, when;
	size_t n;

	assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
	assert_int_equal(res.deferred, 1);
	store_delivery_result_clear(&res);
	now = (int64_t)time(NULL);	/* both rows are due from now */
	a.id = row_id(f->s, "alice@example.test");

	/* Its try fails with a store error; then she has room. */
	assert_int_equal(store_queue_claim(f->s, "r", now, 60, 10, &v, &n), STORE_OK);
	assert_int_equal(n, 2);
	store_queue_list_free(&v, n);
	a.error = "local error in processing";
	assert_int_equal(store_queue_report(f->s, "r", now, &retry, &a, 1), STORE_OK);
	assert_int_equal(store_user_set(f->s, "alice", &u, STORE_USER_QUOTA), STORE_OK);
	assert_int_equal(store_queue_claim(f->s, "r", now + 1, 60, 10, &v, &n), STORE_OK);
	assert_int_equal(n, 0);
	store_queue_list_free(&v, n);
	assert_int_equal(store_queue_next_due(f->s, &when), STORE_OK);
	assert_true(when >= now + retry.initial);

	/* At its time it finds no room again: now it waits for room, and has it. */
	assert_int_equal(store_queue_claim(f->s, "r", when, 60, 10, &v, &n), STORE_OK);
	assert_int_equal(n, 1);
	store_queue_list_free(&v, n);
	a.error = "mailbox full";
	assert_int_equal(store_queue_report(f->s, "r", when, &retry, &a, 1), STORE_OK);
	assert_int_equal(store_queue_next_due(f->s, &when), STORE_OK);
	assert_int_equal(when, 0);
	assert_int_equal(store_queue_claim(f->s, "r", now + 2, 60, 10, &v, &n), STORE_OK);
	assert_int_equal(n, 1);
	store_queue_list_free(&v, n);
}

static void
test_deliver_local(void **state)
{
	struct fx *f = *state;
	int64_t alice = add_user(f->s, "alice", 10), bob = add_user(f->s, "bob", 0);
	struct store_rcpt_local loc[] = { { bob, NULL, NULL },
	    { alice, "D: a\r\n", "alice@example.test" } };
	struct store_delivery d = { .sender = "s@t.example", .kind = STORE_KIND_VOICEMAIL,
	    .data = "12345678", .fd = -1, .len = 8, .check_quota = 1, .local = loc, .nlocal = 2 };
	struct store_delivery_result res;
	struct store_queue_entry *v, e;
	struct store_user u = { .quota = 0 };
	struct store_entry *ent;
	struct store_attempt a = { .result = STORE_ATTEMPT_DEFERRED, .error = "mailbox full" };
	char buf[64];
	size_t n, got;
	int64_t id, remote;

	/* 6 + 8 > 10: alice's copy waits in the queue. */
	assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
	assert_int_equal(res.deferred, 1);
	store_delivery_result_clear(&res);
	id = row_id(f->s, "alice@example.test");
	get(f->s, id, &e);
	assert_int_equal(e.local_user_id, alice);
	assert_int_equal(e.kind, STORE_KIND_VOICEMAIL);
	assert_string_equal(e.last_error, "mailbox full");
	store_queue_entry_clear(&e);

	/* Not local / gone. */
	queue_message(f->s, "s@h.example", "x\r\n", "out@d.example", NULL);
	remote = row_id(f->s, "out@d.example");
	assert_int_equal(store_queue_deliver_local(f->s, remote, NULL, f->t0), STORE_INVALID);
	assert_int_equal(store_queue_deliver_local(f->s, 999999, NULL, f->t0), STORE_NOTFOUND);

	/* Still full: nothing changes; the runner reports a deferral. */
	assert_int_equal(store_queue_claim(f->s, "r", f->t0 + 1, 60, 10, &v, &n), STORE_OK);
	assert_int_equal(n, 2);
	store_queue_list_free(&v, n);
	assert_int_equal(store_queue_deliver_local(f->s, id, "other", f->t0 + 1), STORE_LOCKED);
	assert_int_equal(store_queue_deliver_local(f->s, id, "r", f->t0 + 1), STORE_QUOTA);
	assert_non_null(strstr(store_errmsg(f->s), "alice"));
	a.id = id;
	assert_int_equal(store_queue_report(f->s, "r", f->t0 + 1, &retry, &a, 1), STORE_OK);
	assert_int_equal(store_queue_claim(f->s, "r", f->t0 + 2, 60, 10, &v, &n), STORE_OK);
	assert_int_equal(n, 0);		/* backing off, and no room */

	/* Room: claimable at once, whatever its schedule. */
	u.quota = 100;
	assert_int_equal(store_user_set(f->s, "alice", &u, STORE_USER_QUOTA), STORE_OK);
	assert_int_equal(store_queue_claim(f->s, "r", f->t0 + 2, 60, 10, &v, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].id, id);
	store_queue_list_free(&v, n);
	assert_int_equal(store_queue_deliver_local(f->s, id, "r", f->t0 + 3), STORE_OK);
	assert_int_equal(store_queue_get(f->s, id, &e), STORE_NOTFOUND);
	assert_int_equal(store_queue_deliver_local(f->s, id, "r", f->t0 + 3), STORE_NOTFOUND);

	/* In her mailbox, with her prefix, counted against her quota. */
	assert_int_equal(store_mailbox_list(f->s, alice, &ent, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(ent[0].kind, STORE_KIND_VOICEMAIL);
	assert_int_equal(ent[0].size, 14);
	assert_int_equal(ent[0].arrived, f->t0 + 3);
	assert_int_equal(store_entry_read(f->s, &ent[0], 0, buf, sizeof(buf), &got), STORE_OK);
	assert_int_equal(got, 14);
	assert_memory_equal(buf, "D: a\r\n12345678", 14);
	store_entry_list_free(&ent, n);
	assert_int_equal(store_user_get(f->s, "alice", &u), STORE_OK);
	assert_int_equal(u.used, 14);
	store_user_clear(&u);
	assert_int_equal(queue_len(f->s), 1);
}

/* ---- the same through the writer ---- */

struct wctx {
	struct event_base *base;
	int done;
	int status;
	struct store_queue_entry *claimed;
	size_t nclaimed;
	struct store_attempt applied[4];
	size_t napplied;
};

static void
on_claim(struct store_req *req, void *arg)
{
	struct wctx *w = arg;

	w->done++;
	w->status = store_req_status(req);
	store_req_queue_claimed(req, &w->claimed, &w->nclaimed);
	event_base_loopbreak(w->base);
}

static void
on_report(struct store_req *req, void *arg)
{
	struct wctx *w = arg;
	const struct store_attempt *a;

	w->done++;
	w->status = store_req_status(req);
	a = store_req_queue_attempts(req, &w->napplied);
	assert_true(w->napplied <= 4);
	memcpy(w->applied, a, w->napplied * sizeof(*a));
	for (size_t i = 0; i < w->napplied; i++)
		w->applied[i].error = NULL;	/* owned by the request */
	event_base_loopbreak(w->base);
}

static void
on_done(struct store_req *req, void *arg)
{
	struct wctx *w = arg;
	struct store_queue_entry *v;
	size_t n;

	w->done++;
	w->status = store_req_status(req);
	/* Not a claim: nothing to take. */
	store_req_queue_claimed(req, &v, &n);
	assert_null(v);
	assert_int_equal(n, 0);
	assert_null(store_req_queue_attempts(req, &n));
	event_base_loopbreak(w->base);
}

static void
run(struct store_writer *wr, struct wctx *w, struct store_req *req)
{
	int before = w->done;

	store_writer_submit(wr, req);
	event_base_dispatch(w->base);
	assert_int_equal(w->done, before + 1);
}

static void
test_writer_requests(void **state)
{
	struct fx *f = *state;
	int64_t alice = add_user(f->s, "alice", 5);
	struct store_rcpt_local loc = { alice, NULL, NULL };
	struct store_delivery d = { .sender = "s@t.example", .data = "0123456789", .fd = -1,
	    .len = 10, .check_quota = 1, .local = &loc, .nlocal = 1,
	    .remote = (const char *const[]){ "a@d.example", "b@d.example" }, .nremote = 2 };
	struct store_delivery_result res;
	struct store_attempt a[2];
	struct store_queue_entry e;
	struct store_writer *wr;
	struct wctx w = { 0 };
	struct store_user u = { .quota = 0 };
	struct store_req *req;
	int64_t local_id = 0, remote[3];
	size_t nremote = 0, n;
	char err[256], error[] = "452 4.2.2 over quota";

	assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
	assert_int_equal(res.queued, 2);
	assert_int_equal(res.deferred, 1);
	store_delivery_result_clear(&res);

	w.base = event_base_new();
	assert_int_equal(store_writer_new(&f->cfg, w.base, &wr, err, sizeof(err)), STORE_OK);

	/*
	 * Claim: the remote rows, and alice's too: it is due by the clock,
	 * though her mailbox has no room yet.
	 */
	run(wr, &w, store_req_queue_claim("writer", 300, 10, on_claim, &w));
	assert_int_equal(w.status, STORE_OK);
	assert_int_equal(w.nclaimed, 3);
	for (size_t i = 0; i < w.nclaimed; i++) {
		assert_string_equal(w.claimed[i].claimed_by, "writer");
		assert_true(w.claimed[i].claimed_until >= f->t0 + 300);
		if (w.claimed[i].local_user_id == alice)
			local_id = w.claimed[i].id;
		else
			remote[nremote++] = w.claimed[i].id;
	}
	assert_true(local_id > 0);
	assert_int_equal(nremote, 2);
	store_queue_list_free(&w.claimed, w.nclaimed);

	/* Report: one delivered, one deferred; the error copied, the caller's may go. */
	a[0] = (struct store_attempt){ .id = remote[0], .result = STORE_ATTEMPT_DELIVERED };
	a[1] = (struct store_attempt){ .id = remote[1], .result = STORE_ATTEMPT_DEFERRED,
	    .error = error };
	req = store_req_queue_report("writer", &retry, a, 2, on_report, &w);
	memset(error, 'X', sizeof(error) - 1);
	run(wr, &w, req);
	assert_int_equal(w.status, STORE_OK);
	assert_int_equal(w.napplied, 2);
	assert_int_equal(w.applied[0].status, STORE_OK);
	assert_int_equal(w.applied[1].status, STORE_OK);
	assert_false(w.applied[1].failed);
	assert_int_equal(store_queue_get(f->s, remote[0], &e), STORE_NOTFOUND);
	get(f->s, remote[1], &e);
	assert_string_equal(e.last_error, "452 4.2.2 over quota");
	assert_int_equal(e.attempts, 1);
	assert_null(e.claimed_by);
	store_queue_entry_clear(&e);

	/* The full mailbox: still full, then delivered once it has room. */
	run(wr, &w, store_req_queue_deliver_local(local_id, "writer", on_done, &w));
	assert_int_equal(w.status, STORE_QUOTA);
	assert_int_equal(store_user_set(f->s, "alice", &u, STORE_USER_QUOTA), STORE_OK);
	run(wr, &w, store_req_queue_deliver_local(local_id, "writer", on_done, &w));
	assert_int_equal(w.status, STORE_OK);
	assert_int_equal(store_queue_get(f->s, local_id, &e), STORE_NOTFOUND);

	/* A cancelled claim still claims; its rows come back when the lease runs out. */
	assert_int_equal(store_queue_flush(f->s, 0, (int64_t)time(NULL), &n), STORE_OK);
	assert_int_equal(n, 1);
	req = store_req_queue_claim("gone", 1, 10, on_claim, &w);
	store_req_cancel(req);
	store_writer_submit(wr, req);
	store_writer_free(&wr);
	get(f->s, remote[1], &e);
	assert_string_equal(e.claimed_by, "gone");
	store_queue_entry_clear(&e);
	event_base_free(w.base);
}

/* Notifications on STORE_QUEUE_CHANNEL that l has received by now (a round trip on s first). */
static int
queue_heard(struct store *s, struct store *l)
{
	int64_t when;
	int on, n, total = 0;

	store_queue_next_due(s, &when);	/* the notification, if any, left before this answer */
	for (int i = 0; i < 50; i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		if ((n = store_notified(l, STORE_QUEUE_CHANNEL, &on)) < 0)
			fail_msg("the listening connection went");
		total += on;
		nanosleep(&ts, NULL);
	}
	return total;
}

/*
 * PostgreSQL tells every node's runner of rows it has not seen: queued
 * (one notification per transaction, not per row), flushed, released
 * from hold, or freed from a dead runner's claims; a delivery that
 * queues nothing, a hold and a runner's own reports tell nobody.
 */
static void
test_pg_queue_notifies(void **state)
{
	struct fx *f = *state;
	struct store_attempt a = { .result = STORE_ATTEMPT_DEFERRED, .error = "451 later" };
	struct store_delivery d = { .sender = "s@h.example", .data = "x\r\n", .fd = -1, .len = 3 };
	struct store_delivery_result res;
	struct store_rcpt_local loc = { 0 };
	struct store_queue_entry *v;
	struct store *l = NULL;
	char err[256];
	int64_t id;
	size_t n;

	assert_int_equal(store_open(&f->cfg, STORE_READONLY, &l, err, sizeof(err)), STORE_OK);
	assert_int_equal(store_listen(l, STORE_QUEUE_CHANNEL), STORE_OK);
	assert_int_equal(store_listen(l, "umbox_directory"), STORE_OK);
	assert_int_equal(queue_heard(f->s, l), 0);

	queue_message(f->s, "s@h.example", "x\r\n", "a@d.example", "b@d.example", NULL);
	assert_int_equal(queue_heard(f->s, l), 1);
	loc.user_id = add_user(f->s, "u", 0);
	d.local = &loc;
	d.nlocal = 1;
	assert_int_equal(queue_heard(f->s, l), 0);	/* a directory change only */
	assert_int_equal(store_deliver(f->s, &d, &res), STORE_OK);
	store_delivery_result_clear(&res);
	assert_int_equal(queue_heard(f->s, l), 0);

	id = row_id(f->s, "a@d.example");
	a.id = id;
	assert_int_equal(store_queue_report(f->s, NULL, f->t0, &retry, &a, 1), STORE_OK);
	assert_int_equal(store_queue_hold(f->s, id, 1), STORE_OK);
	assert_int_equal(queue_heard(f->s, l), 0);
	assert_int_equal(store_queue_hold(f->s, id, 0), STORE_OK);
	assert_int_equal(queue_heard(f->s, l), 1);
	assert_int_equal(store_queue_flush(f->s, 0, f->t0, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(queue_heard(f->s, l), 1);

	assert_int_equal(store_queue_claim(f->s, "host:1", f->t0, 60, 10, &v, &n), STORE_OK);
	store_queue_list_free(&v, n);
	assert_int_equal(queue_heard(f->s, l), 0);
	assert_int_equal(store_queue_release_claims(f->s, "other:"), STORE_OK);
	assert_int_equal(queue_heard(f->s, l), 0);
	assert_int_equal(store_queue_release_claims(f->s, "host:"), STORE_OK);
	assert_int_equal(queue_heard(f->s, l), 1);
	store_close(&l);
}

struct flusher {
	struct fx *f;
	int status;
	size_t n;
	char err[512];
};

static void *
flush_main(void *arg)
{
	struct flusher *fl = arg;
	struct store *s;

	if (store_open(&fl->f->cfg, 0, &s, fl->err, sizeof(fl->err)) != STORE_OK) {
		fl->status = -1;
		return NULL;
	}
	fl->status = store_queue_flush(s, 0, fl->f->t0, &fl->n);
	if (fl->status != STORE_OK)
		snprintf(fl->err, sizeof(fl->err), "%s", store_errmsg(s));
	store_close(&s);
	return NULL;
}

static void
pg_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
}

/*
 * umboxctl queue flush updates every row at once; a node's transaction
 * that updates two rows (its reports) may take them in the other order.
 * PostgreSQL then ends one of them with a deadlock.  When that is the
 * flush, alone in its transaction, it runs again and every row is
 * flushed: the administrator sees no error.
 */
static void
test_pg_flush_survives_a_deadlock(void **state)
{
	struct fx *f = *state;
	struct flusher fl = { .f = f };
	char sql[256];
	int64_t first, last;
	pthread_t t;
	PGconn *c;

	queue_message(f->s, "s@h.example", "x\r\n", "a@d.example", "b@d.example", NULL);
	first = row_id(f->s, "a@d.example");
	last = row_id(f->s, "b@d.example");
	c = PQconnectdb(f->dsn);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	pg_ok(c, "SET deadlock_timeout = '5s'");	/* so that the flush finds the cycle */
	pg_ok(c, "BEGIN");
	snprintf(sql, sizeof(sql), "UPDATE queue SET attempts = attempts WHERE id = %lld",
	    (long long)last);
	pg_ok(c, sql);
	pthread_create(&t, NULL, flush_main, &fl);
	sleep(1);		/* the flush holds the first row and waits for the last */
	snprintf(sql, sizeof(sql), "UPDATE queue SET attempts = attempts WHERE id = %lld",
	    (long long)first);
	pg_ok(c, sql);		/* waits until the flush gives up, after its deadlock_timeout */
	pg_ok(c, "COMMIT");
	pthread_join(t, NULL);
	PQfinish(c);
	if (fl.status != STORE_OK)
		fail_msg("the flush failed: %s", fl.err);
	assert_int_equal(fl.n, 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_migration_4, setup, teardown),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test_setup_teardown(test_clean_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_and_show, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hold_release_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_groups_and_lease, setup, teardown),
		cmocka_unit_test_setup_teardown(test_report, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lifetime, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_local, setup, teardown),
		cmocka_unit_test_setup_teardown(test_room_only_for_rows_waiting_for_it, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_requests, setup, teardown),
	};
	const struct CMUnitTest pg_tests[] = {
		cmocka_unit_test_setup_teardown(test_clean_error, setup_pg, teardown),
		cmocka_unit_test_setup_teardown(test_list_and_show, setup_pg, teardown),
		cmocka_unit_test_setup_teardown(test_hold_release_flush, setup_pg, teardown),
		cmocka_unit_test_setup_teardown(test_claim_groups_and_lease, setup_pg, teardown),
		cmocka_unit_test_setup_teardown(test_report, setup_pg, teardown),
		cmocka_unit_test_setup_teardown(test_lifetime, setup_pg, teardown),
		cmocka_unit_test_setup_teardown(test_reader, setup_pg, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_local, setup_pg, teardown),
		cmocka_unit_test_setup_teardown(test_room_only_for_rows_waiting_for_it, setup_pg,
		    teardown),
		cmocka_unit_test_setup_teardown(test_writer_requests, setup_pg, teardown),
		cmocka_unit_test_setup_teardown(test_pg_queue_notifies, setup_pg, teardown),
		cmocka_unit_test_setup_teardown(test_pg_flush_survives_a_deadlock, setup_pg,
		    teardown),
	};

	return cmocka_run_group_tests_name("sqlite", tests, NULL, NULL) + TU_PG_GROUP(pg_tests);
}
