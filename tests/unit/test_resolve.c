/*
 * test_resolve.c - recipient resolution against a real store (SPEC §6).
 */
#include "testutil.h"

#include "aliases/resolve.h"
#include "store/store.h"

struct fx {
	char *dir;
	struct store *s;
	struct alias_resolver r;
	char *pgdb, *dsn;	/* postgresql */
};

static void
user(struct store *s, const char *login, const char *ext)
{
	struct store_user u = { .login = (char *)login, .extension = (char *)ext, .pop3 = 1 };

	assert_int_equal(store_user_add(s, &u), STORE_OK);
}

static void
alias(struct store *s, const char *name, const char *m1, const char *m2, const char *m3)
{
	const char *m[3];
	size_t n = 0;

	if (m1)
		m[n++] = m1;
	if (m2)
		m[n++] = m2;
	if (m3)
		m[n++] = m3;
	assert_int_equal(store_alias_add(s, name, m, n), STORE_OK);
}

/* The site every test starts from, in the store f->s. */
static int
fill(void **state, struct fx *f)
{
	struct store_domain d = { .name = "example.test" }, d2 = { .name = "second.test" };

	store_domain_add(f->s, &d);
	store_domain_add(f->s, &d2);
	user(f->s, "alice", "101");
	user(f->s, "bob", "102");
	user(f->s, "carol", "103");
	user(f->s, "admin", NULL);
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
	} else
		tu_rmdir(f->dir);
	free(f);
	return 0;
}

/*
 * Resolve and render the targets as "local:alice remote:x@y" in order,
 * so each test states its expectation in one line.
 */
static enum alias_status
resolve(struct fx *f, const char *address, char *out, size_t outlen)
{
	struct alias_result res;
	enum alias_status st = alias_resolve(&f->r, address, &res);

	out[0] = '\0';
	for (size_t i = 0; i < res.n; i++) {
		size_t l = strlen(out);
		snprintf(out + l, outlen - l, "%s%s:%s", l ? " " : "",
		    res.v[i].remote ? "remote" : "local",
		    res.v[i].remote ? res.v[i].address : res.v[i].login);
	}
	alias_result_clear(&res);
	return st;
}

#define EXPECT(addr, status, targets) do {				\
	char got_[1024];						\
	assert_int_equal(resolve(f, addr, got_, sizeof(got_)), status);	\
	assert_string_equal(got_, targets);				\
} while (0)

static void
test_users_and_extensions(void **state)
{
	struct fx *f = *state;

	EXPECT("alice@example.test", ALIAS_OK, "local:alice");
	EXPECT("ALICE@Example.TEST", ALIAS_OK, "local:alice");
	EXPECT("alice@second.test", ALIAS_OK, "local:alice");
	EXPECT("alice", ALIAS_OK, "local:alice");
	EXPECT("102@example.test", ALIAS_OK, "local:bob");
	EXPECT("nobody@example.test", ALIAS_UNKNOWN, "");
	EXPECT("999@example.test", ALIAS_UNKNOWN, "");
	/* Similar-looking domains are not ours. */
	EXPECT("alice@example.test.evil", ALIAS_OK, "remote:alice@example.test.evil");
	EXPECT("alice@sub.example.test", ALIAS_OK, "remote:alice@sub.example.test");
}

static void
test_remote_and_invalid(void **state)
{
	struct fx *f = *state;
	struct alias_result res;

	assert_int_equal(alias_resolve(&f->r, "Someone@Far.Example", &res), ALIAS_OK);
	assert_int_equal(res.local_domain, 0);
	assert_int_equal(res.n, 1);
	assert_string_equal(res.v[0].address, "Someone@far.example");
	alias_result_clear(&res);
	assert_int_equal(alias_resolve(&f->r, "alice@example.test", &res), ALIAS_OK);
	assert_int_equal(res.local_domain, 1);
	alias_result_clear(&res);

	EXPECT("not an address", ALIAS_INVALID, "");
	EXPECT("a@", ALIAS_INVALID, "");
	EXPECT("@example.test", ALIAS_INVALID, "");
}

static void
test_relay_tricks_never_relay(void **state)
{
	struct fx *f = *state;

	EXPECT("far%other.test@example.test", ALIAS_UNKNOWN, "");
	EXPECT("other.test!far@example.test", ALIAS_UNKNOWN, "");
	EXPECT("\"far@other.test\"@example.test", ALIAS_UNKNOWN, "");
}

static void
test_precedence(void **state)
{
	struct fx *f = *state;

	/* An alias named like a user takes that user's mail. */
	alias(f->s, "bob", "carol", NULL, NULL);
	EXPECT("bob@example.test", ALIAS_OK, "local:carol");
	/* An alias named like an extension wins over the extension. */
	alias(f->s, "101", "bob@example.test", NULL, NULL);
	EXPECT("101@example.test", ALIAS_OK, "local:carol");
	/* ...and the login still reaches alice. */
	EXPECT("alice@example.test", ALIAS_OK, "local:alice");
}

static void
test_shadow_reached_twice(void **state)
{
	struct fx *f = *state;

	/* Two paths into an alias that shadows a user: still only the alias's targets. */
	user(f->s, "shared", NULL);
	alias(f->s, "shared", "alice", NULL, NULL);
	alias(f->s, "t1", "shared", NULL, NULL);
	alias(f->s, "t2", "shared", NULL, NULL);
	alias(f->s, "team", "t1", "t2", NULL);
	EXPECT("team@example.test", ALIAS_OK, "local:alice");
}

static void
test_shadow_takes_extension(void **state)
{
	struct fx *f = *state;

	/* bob's extension follows bob's login into the alias that took it. */
	alias(f->s, "bob", "carol", NULL, NULL);
	EXPECT("102@example.test", ALIAS_OK, "local:carol");
	alias(f->s, "alice", "alice", "carol", NULL);
	EXPECT("101@example.test", ALIAS_OK, "local:alice local:carol");
}

static void
test_keep_copy(void **state)
{
	struct fx *f = *state;

	/* Listing the user's own login keeps a copy in the inbox. */
	alias(f->s, "bob", "bob", "alice", "far@remote.test");
	EXPECT("bob@example.test", ALIAS_OK, "local:bob local:alice remote:far@remote.test");
}

static void
test_nesting_dedup(void **state)
{
	struct fx *f = *state;

	alias(f->s, "sales", "alice", "team", "103");
	alias(f->s, "team", "alice@example.test", "bob", "Far@Remote.TEST");
	alias(f->s, "all", "sales", "team", "far@remote.test");
	/* Depth first, in member order; each target once. */
	EXPECT("all@example.test", ALIAS_OK,
	    "local:alice local:bob remote:Far@remote.test local:carol");
}

static void
test_loops(void **state)
{
	struct fx *f = *state;
	struct alias_result res;

	alias(f->s, "a", "b", "alice", NULL);
	alias(f->s, "b", "c", NULL, NULL);
	alias(f->s, "c", "a", "bob", NULL);
	EXPECT("a@example.test", ALIAS_OK, "local:bob local:alice");
	EXPECT("c@example.test", ALIAS_OK, "local:alice local:bob");
	/* A loop is not reported as a dangling member. */
	assert_int_equal(alias_resolve(&f->r, "a@example.test", &res), ALIAS_OK);
	assert_int_equal(res.dangling.n, 0);
	alias_result_clear(&res);

	/* A loop with nobody in it resolves to nothing: unknown. */
	alias(f->s, "x", "y", NULL, NULL);
	alias(f->s, "y", "x", NULL, NULL);
	EXPECT("x@example.test", ALIAS_UNKNOWN, "");
}

static void
test_depth_cap(void **state)
{
	struct fx *f = *state;
	char name[16], next[16];

	/* a0 -> a1 -> ... -> a19 -> alice: deeper than the cap. */
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "a%d", i);
		snprintf(next, sizeof(next), "a%d", i + 1);
		alias(f->s, name, i == 19 ? "alice" : next, NULL, NULL);
	}
	EXPECT("a0@example.test", ALIAS_ERROR, "");
	/* Within the cap it works. */
	EXPECT("a10@example.test", ALIAS_OK, "local:alice");
}

static void
test_dangling(void **state)
{
	struct fx *f = *state;
	struct alias_result res;

	alias(f->s, "team", "alice", "ghost", "ghost@example.test");
	assert_int_equal(alias_resolve(&f->r, "team@example.test", &res), ALIAS_OK);
	assert_int_equal(res.n, 1);
	assert_int_equal(res.dangling.n, 2);
	alias_result_clear(&res);
	alias(f->s, "empty", "ghost", NULL, NULL);
	EXPECT("empty@example.test", ALIAS_UNKNOWN, "");
	/* The error names the alias that reaches no one (for umboxctl, the log). */
	assert_int_equal(alias_resolve(&f->r, "empty@example.test", &res), ALIAS_UNKNOWN);
	assert_string_equal(res.error, "no such user here (the alias empty names no one who"
	    " exists here)");
	alias_result_clear(&res);
	assert_int_equal(alias_resolve(&f->r, "nobody@example.test", &res), ALIAS_UNKNOWN);
	assert_string_equal(res.error, "no such user here");
	alias_result_clear(&res);
}

static void
test_postmaster(void **state)
{
	struct fx *f = *state;

	EXPECT("postmaster", ALIAS_OK, "local:admin");
	EXPECT("PostMaster@example.test", ALIAS_OK, "local:admin");
	EXPECT("postmaster@second.test", ALIAS_OK, "local:admin");
	EXPECT("postmaster@far.test", ALIAS_OK, "remote:postmaster@far.test");
	alias(f->s, "postmaster", "bob", NULL, NULL);
	EXPECT("postmaster@example.test", ALIAS_OK, "local:bob");
}

static void
test_postmaster_missing_login(void **state)
{
	struct fx *f = *state;

	f->r.postmaster = "nosuchlogin";
	EXPECT("postmaster@example.test", ALIAS_ERROR, "");
}

static void
test_names(void **state)
{
	(void)state;
	assert_true(alias_valid_login("alice"));
	assert_true(alias_valid_login("j.doe-2_x"));
	assert_false(alias_valid_login("123"));
	assert_false(alias_valid_login(""));
	assert_false(alias_valid_login(".alice"));
	assert_false(alias_valid_login("al ice"));
	assert_false(alias_valid_login("al@ice"));
	assert_true(alias_valid_extension("1234"));
	assert_false(alias_valid_extension("12a"));
	assert_false(alias_valid_extension("12345678901234567"));
	assert_true(alias_valid_name("123"));
	assert_true(alias_valid_member("far@remote.test"));
	assert_true(alias_valid_member("101"));
	assert_false(alias_valid_member("a%b@remote.test"));
	assert_false(alias_valid_member("bad member"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_users_and_extensions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remote_and_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relay_tricks_never_relay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keep_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shadow_reached_twice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shadow_takes_extension, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nesting_dedup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_depth_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dangling, setup, teardown),
		cmocka_unit_test_setup_teardown(test_postmaster, setup, teardown),
		cmocka_unit_test_setup_teardown(test_postmaster_missing_login, setup, teardown),
		cmocka_unit_test(test_names),
	};
	const struct CMUnitTest pg_tests[] = {
		cmocka_unit_test_setup_teardown(test_users_and_extensions, setup_pg, teardown),
		cmocka_unit_test_setup_teardown(test_remote_and_invalid, setup_pg, teardown),
		cmocka_unit_test_setup_teardown(test_relay_tricks_never_relay, setup_pg, teardown),
		cmocka_unit_test_setup_teardown(test_precedence, setup_pg, teardown),
		cmocka_unit_test_setup_teardown(test_keep_copy, setup_pg, teardown),
		cmocka_unit_test_setup_teardown(test_shadow_reached_twice, setup_pg, teardown),
		cmocka_unit_test_setup_teardown(test_shadow_takes_extension, setup_pg, teardown),
		cmocka_unit_test_setup_teardown(test_nesting_dedup, setup_pg, teardown),
		cmocka_unit_test_setup_teardown(test_loops, setup_pg, teardown),
		cmocka_unit_test_setup_teardown(test_depth_cap, setup_pg, teardown),
		cmocka_unit_test_setup_teardown(test_dangling, setup_pg, teardown),
		cmocka_unit_test_setup_teardown(test_postmaster, setup_pg, teardown),
		cmocka_unit_test_setup_teardown(test_postmaster_missing_login, setup_pg, teardown),
	};

	return cmocka_run_group_tests_name("sqlite", tests, NULL, NULL) + TU_PG_GROUP(pg_tests);
}
