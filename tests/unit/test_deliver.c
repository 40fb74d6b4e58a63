/*
 * test_deliver.c - the delivery pipeline (aliases/deliver.c): recipients
 * to final targets, each local target's envelope prefix, and one store
 * delivery with a result per target.
 */
#include "testutil.h"

#include "aliases/deliver.h"
#include "store/store.h"

struct fx {
	char *dir;
	struct store *s;
	struct alias_resolver r;
	int64_t alice, bob;
	char *pgdb, *dsn;	/* postgresql */
};

static int64_t
user(struct store *s, const char *login, const char *ext, uint64_t quota)
{
	struct store_user u = { .login = (char *)login, .extension = (char *)ext, .pop3 = 1,
	    .quota = quota };
	int64_t id;

	assert_int_equal(store_user_add(s, &u), STORE_OK);
	assert_int_equal(store_user_get(s, login, &u), STORE_OK);
	id = u.id;
	store_user_clear(&u);
	return id;
}

/* The site every test starts from, in the store f->s. */
static int
fill(void **state, struct fx *f)
{
	struct store_domain d = { .name = "example.test" };
	const char *team[] = { "alice", "bob", "friend@outside.test" };

	store_domain_add(f->s, &d);
	f->alice = user(f->s, "alice", "100", 0);
	f->bob = user(f->s, "bob", "101", 0);
	user(f->s, "admin", NULL, 0);
	assert_int_equal(store_alias_add(f->s, "team", team, 3), STORE_OK);
	f->r.store = f->s;
	f->r.postmaster = "admin";
	*state = f;
	return 0;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256], *path;

	f->dir = tu_tempdir();
	path = tu_path(f->dir, "store.db");
	if (store_open(STORE_SQLITE(path), STORE_CREATE, &f->s, err, sizeof(err)) != STORE_OK)
		return -1;
	free(path);
	return fill(state, f);
}

static int
setup_pg(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	f->dir = tu_tempdir();
	if ((f->dsn = tu_pg_create(&f->pgdb)) == NULL ||
	    store_open(&(struct store_config){ .backend = STORE_BACKEND_POSTGRESQL,
	    .dsn = f->dsn }, STORE_CREATE, &f->s, err, sizeof(err)) != STORE_OK)
		return -1;
	return fill(state, f);
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
	tu_rmdir(f->dir);
	free(f);
	return 0;
}

/* Several recipients: one target per mailbox and outside address, first reached first. */
static void
test_recipients_to_targets(void **state)
{
	struct fx *f = *state;
	const char *rcpts[] = { "team@example.test", "101@example.test", "x@outside.test",
	    "TEAM@Example.Test", "FRIEND@outside.test" };
	const char *bad[] = { "alice@example.test", "nobody@example.test" };
	struct alias_result res;

	assert_int_equal(alias_resolve_recipients(&f->r, rcpts, 5, &res), ALIAS_OK);
	assert_int_equal(res.n, 4);
	assert_false(res.v[0].remote);
	assert_string_equal(res.v[0].login, "alice");
	assert_string_equal(res.v[1].login, "bob");
	assert_true(res.v[2].remote);
	assert_string_equal(res.v[2].address, "friend@outside.test");
	assert_string_equal(res.v[3].address, "x@outside.test");
	assert_int_equal(res.local_domain, 0);
	alias_result_clear(&res);

	assert_int_equal(alias_resolve_recipients(&f->r, bad, 2, &res), ALIAS_UNKNOWN);
	assert_non_null(strstr(res.error, "nobody@example.test"));
	alias_result_clear(&res);
}

static void
test_build_prefixes_and_queue(void **state)
{
	struct fx *f = *state;
	const char *rcpts[] = { "team@example.test" };
	struct alias_message m = { .qid = "Q1", .sender = "", .kind = STORE_KIND_VOICEMAIL,
	    .data = "x\r\n", .fd = -1, .len = 3, .domain = "example.test", .check_quota = 1 };
	struct alias_result res;
	struct alias_delivery ad;

	assert_int_equal(alias_resolve_recipients(&f->r, rcpts, 1, &res), ALIAS_OK);
	alias_delivery_build(&ad, &m, res.v, res.n);
	assert_string_equal(ad.d.qid, "Q1");
	assert_string_equal(ad.d.sender, "");
	assert_int_equal(ad.d.kind, STORE_KIND_VOICEMAIL);
	assert_int_equal(ad.d.fd, -1);
	assert_int_equal(ad.d.len, 3);
	assert_int_equal(ad.d.check_quota, 1);
	assert_int_equal(ad.d.nlocal, 2);
	assert_int_equal(ad.d.local[0].user_id, f->alice);
	/* The null sender is <> in Return-Path. */
	assert_string_equal(ad.d.local[0].prefix,
	    "Return-Path: <>\r\nDelivered-To: alice@example.test\r\n");
	assert_string_equal(ad.d.local[1].address, "bob@example.test");
	assert_int_equal(ad.d.nremote, 1);
	assert_string_equal(ad.d.remote[0], "friend@outside.test");
	alias_delivery_clear(&ad);
	alias_result_clear(&res);
}

/*
 * End to end: bob's mailbox is full, so he gets a deferred queue entry;
 * alice her copy with her own prefix; the outside member a queue entry.
 */
static void
test_deliver_per_target(void **state)
{
	struct fx *f = *state;
	const char *rcpts[] = { "team@example.test" };
	const char *msg = "Subject: t\r\n\r\nhello\r\n";
	struct alias_message m = { .sender = "s@outside.test", .data = msg, .fd = -1,
	    .len = strlen(msg), .domain = "example.test", .check_quota = 1 };
	struct store_user u = { .quota = 10 };
	struct store_delivery_result dr;
	struct alias_result res;
	struct store_entry *v;
	struct store_stats st;
	char buf[256];
	size_t n, got;

	assert_int_equal(store_user_set(f->s, "bob", &u, STORE_USER_QUOTA), STORE_OK);
	assert_int_equal(alias_resolve_recipients(&f->r, rcpts, 1, &res), ALIAS_OK);
	assert_int_equal(alias_deliver(f->s, &m, res.v, res.n, &dr), STORE_OK);
	assert_int_equal(dr.delivered, 1);
	assert_int_equal(dr.deferred, 1);
	assert_int_equal(dr.queued, 1);
	/* Local results follow the local targets' order: alice, bob. */
	assert_int_equal(store_delivery_local_status(&dr, 0), STORE_TARGET_DELIVERED);
	assert_int_equal(store_delivery_local_status(&dr, 1), STORE_TARGET_DEFERRED_FULL);
	store_delivery_result_clear(&dr);

	assert_int_equal(store_mailbox_list(f->s, f->alice, &v, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(store_entry_read(f->s, &v[0], 0, buf, sizeof(buf) - 1, &got), STORE_OK);
	buf[got] = '\0';
	assert_string_equal(buf, "Return-Path: <s@outside.test>\r\n"
	    "Delivered-To: alice@example.test\r\nSubject: t\r\n\r\nhello\r\n");
	store_entry_list_free(&v, n);
	assert_int_equal(store_mailbox_list(f->s, f->bob, &v, &n), STORE_OK);
	assert_int_equal(n, 0);
	store_entry_list_free(&v, n);
	assert_int_equal(store_stats(f->s, &st), STORE_OK);
	assert_int_equal(st.queued, 2);

	/* Only bob, and full: nothing can take it. */
	alias_result_clear(&res);
	rcpts[0] = "bob@example.test";
	assert_int_equal(alias_resolve_recipients(&f->r, rcpts, 1, &res), ALIAS_OK);
	assert_int_equal(alias_deliver(f->s, &m, res.v, res.n, &dr), STORE_QUOTA);
	assert_int_equal(store_stats(f->s, &st), STORE_OK);
	assert_int_equal(st.queued, 2);
	assert_int_equal(st.messages, 1);
	alias_result_clear(&res);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_recipients_to_targets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_build_prefixes_and_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_per_target, setup, teardown),
	};
	const struct CMUnitTest pg_tests[] = {
		cmocka_unit_test_setup_teardown(test_recipients_to_targets, setup_pg, teardown),
		cmocka_unit_test_setup_teardown(test_build_prefixes_and_queue, setup_pg, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_per_target, setup_pg, teardown),
	};

	return cmocka_run_group_tests_name("sqlite", tests, NULL, NULL) + TU_PG_GROUP(pg_tests);
}
