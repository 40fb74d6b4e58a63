/*
 * test_relay.c - relays in the store: add, set, del, get, list, the rules
 * a relay follows, and the route lookup (SPEC §6).
 */
#include "testutil.h"

#include "store/store.h"

struct fx {
	char *dir;
	char *path;
	struct store *s;
	char *pgdb, *dsn;	/* postgresql */
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	f->dir = tu_tempdir();
	f->path = tu_path(f->dir, "store.db");
	if (store_open(STORE_SQLITE(f->path), STORE_CREATE, &f->s, err, sizeof(err)) != STORE_OK) {
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

static int
setup_pg(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	if ((f->dsn = tu_pg_create(&f->pgdb)) == NULL)
		return -1;
	if (store_open(&(struct store_config){ .backend = STORE_BACKEND_POSTGRESQL,
	    .dsn = f->dsn }, STORE_CREATE, &f->s, err, sizeof(err)) != STORE_OK) {
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
	free(f);
	return 0;
}

/* Add a relay NAME on HOST listing the domains given, defaults otherwise. */
static int
add(struct store *s, const char *name, const char *host, int active, int is_default, ...)
{
	struct store_relay r;
	const char *d;
	va_list ap;
	int status;

	store_relay_init(&r);
	r.name = (char *)name;
	r.host = (char *)host;
	r.active = active;
	r.is_default = is_default;
	va_start(ap, is_default);
	while ((d = va_arg(ap, const char *)) != NULL)
		strlist_add(&r.domains, d);
	va_end(ap);
	status = store_relay_add(s, &r);
	strlist_clear(&r.domains);
	return status;
}

/* The name of the relay routing domain, or "mx". */
static const char *
route(struct store *s, const char *domain)
{
	static char buf[80];
	struct store_relay r;
	int status = store_relay_for_domain(s, domain, &r);

	if (status == STORE_NOTFOUND)
		return "mx";
	assert_int_equal(status, STORE_OK);
	snprintf(buf, sizeof(buf), "%s", r.name);
	store_relay_clear(&r);
	return buf;
}

static void
test_defaults_round_trip(void **state)
{
	struct fx *f = *state;
	struct store_relay r, got, *v;
	size_t n;

	store_relay_init(&r);
	r.name = "Office";
	r.host = "smtp.example.net";
	strlist_add(&r.domains, "Partner.Example");
	strlist_add(&r.domains, "a.example");
	strlist_add(&r.domains, "partner.example");	/* the same, once */
	assert_int_equal(store_relay_add(f->s, &r), STORE_OK);
	assert_int_equal(store_relay_add(f->s, &r), STORE_EXISTS);
	r.name = "OFFICE";
	assert_int_equal(store_relay_add(f->s, &r), STORE_EXISTS);
	assert_non_null(strstr(store_errmsg(f->s), "exists"));
	strlist_clear(&r.domains);

	assert_int_equal(store_relay_get(f->s, "office", &got), STORE_OK);
	assert_string_equal(got.name, "office");
	assert_string_equal(got.host, "smtp.example.net");
	assert_int_equal(got.port, 25);
	assert_false(got.port_given);
	assert_int_equal(got.domains.n, 2);
	assert_string_equal(got.domains.v[0], "a.example");
	assert_string_equal(got.domains.v[1], "partner.example");
	assert_false(got.is_default);
	assert_true(got.active);
	assert_int_equal(got.tls, STORE_TLS_AUTO);
	assert_true(got.verify);
	assert_int_equal(got.auth, STORE_AUTH_AUTO);
	assert_null(got.account);
	assert_null(got.password);
	assert_null(got.sender);
	assert_int_equal(got.timeout, 120);
	assert_true(got.chunking);
	assert_true(got.created_at > 0);
	store_relay_clear(&got);
	assert_null(got.name);

	assert_int_equal(store_relay_get(f->s, "nosuch", &got), STORE_NOTFOUND);
	assert_int_equal(store_relay_list(f->s, &v, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].domains.n, 2);
	store_relay_list_free(&v, n);
	assert_null(v);
	assert_int_equal(store_relay_del(f->s, "OFFICE"), STORE_OK);
	assert_int_equal(store_relay_del(f->s, "office"), STORE_NOTFOUND);
	assert_int_equal(store_relay_list(f->s, &v, &n), STORE_OK);
	assert_int_equal(n, 0);
	store_relay_list_free(&v, n);
	/* Its domains went with it: another relay may list them. */
	assert_int_equal(add(f->s, "again", "h", 1, 0, "partner.example", NULL), STORE_OK);
}

/* Port 0 follows the TLS mode: 25, or 465 for implicit TLS; a given port stays. */
static void
test_port_follows_tls(void **state)
{
	struct fx *f = *state;
	struct store_relay r, got;

	store_relay_init(&r);
	r.name = "tls";
	r.host = "h";
	r.tls = STORE_TLS_IMPLICIT;
	assert_int_equal(store_relay_add(f->s, &r), STORE_OK);
	assert_int_equal(store_relay_get(f->s, "tls", &got), STORE_OK);
	assert_int_equal(got.port, 465);
	assert_false(got.port_given);
	store_relay_clear(&got);

	r.tls = STORE_TLS_STARTTLS;
	assert_int_equal(store_relay_set(f->s, "tls", &r, STORE_RELAY_TLS), STORE_OK);
	assert_int_equal(store_relay_get(f->s, "tls", &got), STORE_OK);
	assert_int_equal(got.port, 25);
	assert_int_equal(got.tls, STORE_TLS_STARTTLS);
	store_relay_clear(&got);

	r.port = 587;
	assert_int_equal(store_relay_set(f->s, "tls", &r, STORE_RELAY_PORT), STORE_OK);
	r.tls = STORE_TLS_IMPLICIT;
	assert_int_equal(store_relay_set(f->s, "tls", &r, STORE_RELAY_TLS), STORE_OK);
	assert_int_equal(store_relay_get(f->s, "tls", &got), STORE_OK);
	assert_int_equal(got.port, 587);
	assert_true(got.port_given);
	store_relay_clear(&got);

	r.port = 0;
	assert_int_equal(store_relay_set(f->s, "tls", &r, STORE_RELAY_PORT), STORE_OK);
	assert_int_equal(store_relay_get(f->s, "tls", &got), STORE_OK);
	assert_int_equal(got.port, 465);
	assert_false(got.port_given);
	store_relay_clear(&got);

	r.port = 65536;
	assert_int_equal(store_relay_set(f->s, "tls", &r, STORE_RELAY_PORT), STORE_INVALID);
}

static void
test_set_fields(void **state)
{
	struct fx *f = *state;
	struct store_relay r, got;

	assert_int_equal(add(f->s, "r1", "old.example", 1, 0, "x.example", NULL), STORE_OK);
	store_relay_init(&r);
	r.host = "new.example";
	r.verify = 0;
	r.auth = STORE_AUTH_CRAM_MD5;
	r.account = "user@example.net";
	r.password = "s3cret with spaces";
	r.sender = "bounces@example.com";
	r.timeout = 30;
	r.chunking = 0;
	r.name = "ignored";		/* set never renames */
	assert_int_equal(store_relay_set(f->s, "R1", &r, STORE_RELAY_HOST | STORE_RELAY_VERIFY |
	    STORE_RELAY_AUTH | STORE_RELAY_ACCOUNT | STORE_RELAY_PASSWORD | STORE_RELAY_SENDER |
	    STORE_RELAY_TIMEOUT | STORE_RELAY_CHUNKING), STORE_OK);
	assert_int_equal(store_relay_get(f->s, "r1", &got), STORE_OK);
	assert_string_equal(got.name, "r1");
	assert_string_equal(got.host, "new.example");
	assert_false(got.verify);
	assert_int_equal(got.auth, STORE_AUTH_CRAM_MD5);
	assert_string_equal(got.account, "user@example.net");
	assert_string_equal(got.password, "s3cret with spaces");
	assert_string_equal(got.sender, "bounces@example.com");
	assert_int_equal(got.timeout, 30);
	assert_false(got.chunking);
	/* Untouched. */
	assert_int_equal(got.domains.n, 1);
	assert_true(got.active);
	assert_int_equal(got.tls, STORE_TLS_AUTO);
	store_relay_clear(&got);

	/* The password alone changes. */
	r.password = "other";
	assert_int_equal(store_relay_set(f->s, "r1", &r, STORE_RELAY_PASSWORD), STORE_OK);
	assert_int_equal(store_relay_get(f->s, "r1", &got), STORE_OK);
	assert_string_equal(got.password, "other");
	assert_string_equal(got.account, "user@example.net");
	store_relay_clear(&got);

	/* Domains are replaced as a whole. */
	strlist_add(&r.domains, "y.example");
	strlist_add(&r.domains, "z.example");
	assert_int_equal(store_relay_set(f->s, "r1", &r, STORE_RELAY_DOMAINS), STORE_OK);
	strlist_clear(&r.domains);
	assert_string_equal(route(f->s, "x.example"), "mx");
	assert_string_equal(route(f->s, "z.example"), "r1");
	assert_int_equal(store_relay_set(f->s, "r1", &r, STORE_RELAY_DOMAINS), STORE_OK);
	assert_string_equal(route(f->s, "z.example"), "mx");

	assert_int_equal(store_relay_set(f->s, "nosuch", &r, STORE_RELAY_HOST), STORE_NOTFOUND);
}

/* What the store refuses, and that a refused set changes nothing. */
static void
test_rules(void **state)
{
	struct fx *f = *state;
	struct store_relay r, got;

	store_relay_init(&r);
	r.host = "h";
	r.name = "";
	assert_int_equal(store_relay_add(f->s, &r), STORE_INVALID);
	r.name = "-x";
	assert_int_equal(store_relay_add(f->s, &r), STORE_INVALID);
	r.name = "a b";
	assert_int_equal(store_relay_add(f->s, &r), STORE_INVALID);
	r.name = "ok";
	r.host = "";
	assert_int_equal(store_relay_add(f->s, &r), STORE_INVALID);
	r.host = "h\r\nMAIL";
	assert_int_equal(store_relay_add(f->s, &r), STORE_INVALID);
	r.host = "h";
	r.timeout = 0;
	assert_int_equal(store_relay_add(f->s, &r), STORE_INVALID);
	r.timeout = 3601;
	assert_int_equal(store_relay_add(f->s, &r), STORE_INVALID);
	r.timeout = 3600;
	r.account = "u";
	assert_int_equal(store_relay_add(f->s, &r), STORE_INVALID);	/* no password */
	assert_non_null(strstr(store_errmsg(f->s), "password"));
	r.account = NULL;
	r.password = "p";
	assert_int_equal(store_relay_add(f->s, &r), STORE_INVALID);	/* no account */
	r.password = NULL;
	r.auth = STORE_AUTH_PLAIN;
	assert_int_equal(store_relay_add(f->s, &r), STORE_INVALID);	/* named, no account */
	r.auth = STORE_AUTH_NONE;
	strlist_add(&r.domains, "a@b");
	assert_int_equal(store_relay_add(f->s, &r), STORE_INVALID);
	strlist_clear(&r.domains);
	r.sender = "x\ny";
	assert_int_equal(store_relay_add(f->s, &r), STORE_INVALID);
	r.sender = NULL;
	assert_int_equal(store_relay_add(f->s, &r), STORE_OK);

	/* A set that would break a rule is refused whole. */
	r.host = "changed";
	r.auth = STORE_AUTH_LOGIN;
	assert_int_equal(store_relay_set(f->s, "ok", &r, STORE_RELAY_HOST | STORE_RELAY_AUTH),
	    STORE_INVALID);
	r.account = "u";
	r.password = "p";
	assert_int_equal(store_relay_set(f->s, "ok", &r, STORE_RELAY_ACCOUNT), STORE_INVALID);
	assert_int_equal(store_relay_get(f->s, "ok", &got), STORE_OK);
	assert_string_equal(got.host, "h");
	assert_int_equal(got.auth, STORE_AUTH_NONE);
	assert_null(got.account);
	store_relay_clear(&got);
	/* Clearing both credentials together is fine. */
	assert_int_equal(store_relay_set(f->s, "ok", &r, STORE_RELAY_ACCOUNT | STORE_RELAY_PASSWORD |
	    STORE_RELAY_AUTH), STORE_OK);
	r.account = r.password = NULL;
	r.auth = STORE_AUTH_AUTO;
	assert_int_equal(store_relay_set(f->s, "ok", &r, STORE_RELAY_ACCOUNT |
	    STORE_RELAY_PASSWORD), STORE_INVALID);	/* login still named */
	assert_int_equal(store_relay_set(f->s, "ok", &r, STORE_RELAY_ACCOUNT |
	    STORE_RELAY_PASSWORD | STORE_RELAY_AUTH), STORE_OK);
}

/* At most one default: setting one clears the other. */
static void
test_one_default(void **state)
{
	struct fx *f = *state;
	struct store_relay r, got;

	assert_int_equal(add(f->s, "a", "h", 1, 1, NULL), STORE_OK);
	assert_int_equal(add(f->s, "b", "h", 1, 1, NULL), STORE_OK);
	assert_int_equal(store_relay_get(f->s, "a", &got), STORE_OK);
	assert_false(got.is_default);
	store_relay_clear(&got);
	assert_string_equal(route(f->s, "anything.example"), "b");

	store_relay_init(&r);
	r.is_default = 1;
	assert_int_equal(store_relay_set(f->s, "a", &r, STORE_RELAY_DEFAULT), STORE_OK);
	assert_string_equal(route(f->s, "anything.example"), "a");
	assert_int_equal(store_relay_get(f->s, "b", &got), STORE_OK);
	assert_false(got.is_default);
	store_relay_clear(&got);

	r.is_default = 0;
	assert_int_equal(store_relay_set(f->s, "a", &r, STORE_RELAY_DEFAULT), STORE_OK);
	assert_string_equal(route(f->s, "anything.example"), "mx");
}

/*
 * A domain in at most one active relay; inactive relays may list it
 * too, and activating one of them while another active relay lists the
 * domain is refused.
 */
static void
test_domain_one_active_relay(void **state)
{
	struct fx *f = *state;
	struct store_relay r;

	assert_int_equal(add(f->s, "main", "h1", 1, 0, "partner.example", NULL), STORE_OK);
	assert_int_equal(add(f->s, "clash", "h2", 1, 0, "other.example", "PARTNER.example", NULL),
	    STORE_EXISTS);
	assert_non_null(strstr(store_errmsg(f->s), "partner.example"));
	assert_non_null(strstr(store_errmsg(f->s), "main"));
	assert_int_equal(store_relay_get(f->s, "clash", &r), STORE_NOTFOUND);
	assert_string_equal(route(f->s, "other.example"), "mx");

	/* A standby may list it. */
	assert_int_equal(add(f->s, "standby", "h2", 0, 0, "partner.example", NULL), STORE_OK);
	assert_string_equal(route(f->s, "partner.example"), "main");
	store_relay_init(&r);
	r.active = 1;
	assert_int_equal(store_relay_set(f->s, "standby", &r, STORE_RELAY_ACTIVE), STORE_EXISTS);
	assert_string_equal(route(f->s, "partner.example"), "main");

	/* Switch over: main off, standby on. */
	r.active = 0;
	assert_int_equal(store_relay_set(f->s, "main", &r, STORE_RELAY_ACTIVE), STORE_OK);
	assert_string_equal(route(f->s, "partner.example"), "mx");
	r.active = 1;
	assert_int_equal(store_relay_set(f->s, "standby", &r, STORE_RELAY_ACTIVE), STORE_OK);
	assert_string_equal(route(f->s, "partner.example"), "standby");
	assert_int_equal(store_relay_set(f->s, "main", &r, STORE_RELAY_ACTIVE), STORE_EXISTS);

	/* Giving an active relay a taken domain is refused; the list stays. */
	strlist_add(&r.domains, "partner.example");
	assert_int_equal(store_relay_set(f->s, "main", &r, STORE_RELAY_DOMAINS), STORE_OK);	/* main inactive */
	assert_int_equal(add(f->s, "third", "h3", 1, 0, "third.example", NULL), STORE_OK);
	assert_int_equal(store_relay_set(f->s, "third", &r, STORE_RELAY_DOMAINS), STORE_EXISTS);
	strlist_clear(&r.domains);
	assert_string_equal(route(f->s, "third.example"), "third");
}

/* First match wins: the active relay listing the domain, the active default, MX. */
static void
test_route(void **state)
{
	struct fx *f = *state;
	struct store_relay r;

	assert_string_equal(route(f->s, "example.org"), "mx");
	assert_int_equal(add(f->s, "dflt", "h", 1, 1, NULL), STORE_OK);
	assert_int_equal(add(f->s, "partner", "h", 1, 0, "partner.example", NULL), STORE_OK);
	assert_int_equal(add(f->s, "off", "h", 0, 0, "off.example", NULL), STORE_OK);
	assert_string_equal(route(f->s, "partner.example"), "partner");
	assert_string_equal(route(f->s, "Partner.EXAMPLE"), "partner");
	assert_string_equal(route(f->s, "sub.partner.example"), "dflt");	/* whole domains */
	assert_string_equal(route(f->s, "off.example"), "dflt");		/* inactive skipped */
	assert_string_equal(route(f->s, "example.org"), "dflt");

	/* The route carries the relay's domains and fields. */
	assert_int_equal(store_relay_for_domain(f->s, "partner.example", &r), STORE_OK);
	assert_int_equal(r.domains.n, 1);
	assert_int_equal(r.port, 25);
	store_relay_clear(&r);

	/* An inactive default is no default. */
	store_relay_init(&r);
	r.active = 0;
	assert_int_equal(store_relay_set(f->s, "dflt", &r, STORE_RELAY_ACTIVE), STORE_OK);
	assert_string_equal(route(f->s, "example.org"), "mx");
	assert_string_equal(route(f->s, "partner.example"), "partner");
	assert_int_equal(store_relay_for_domain(f->s, "example.org", &r), STORE_NOTFOUND);
	assert_null(r.name);
}

static void
test_names(void **state)
{
	enum store_relay_tls t;
	enum store_relay_auth a;

	assert_true(store_relay_valid_name("smtp-1.out_b"));
	assert_true(store_relay_valid_name("A"));
	assert_true(store_relay_valid_name("1relay"));
	assert_false(store_relay_valid_name(""));
	assert_false(store_relay_valid_name(".x"));
	assert_false(store_relay_valid_name("a/b"));
	assert_false(store_relay_valid_name("a@b"));
	assert_false(store_relay_valid_name("0123456789012345678901234567890123456789"
	    "0123456789012345678901234"));	/* 65 */
	assert_int_equal(store_relay_tls_parse("STARTTLS", &t), 0);
	assert_int_equal(t, STORE_TLS_STARTTLS);
	assert_int_equal(store_relay_tls_parse("ssl", &t), -1);
	assert_int_equal(store_relay_auth_parse("cram-md5", &a), 0);
	assert_int_equal(a, STORE_AUTH_CRAM_MD5);
	assert_int_equal(store_relay_auth_parse("xoauth2", &a), -1);
	assert_string_equal(store_relay_tls_name(STORE_TLS_IMPLICIT), "implicit");
	assert_string_equal(store_relay_auth_name(STORE_AUTH_NONE), "none");
	assert_int_equal(store_relay_default_port(STORE_TLS_IMPLICIT), 465);
	assert_int_equal(store_relay_default_port(STORE_TLS_NONE), 25);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_port_follows_tls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_default, setup, teardown),
		cmocka_unit_test_setup_teardown(test_domain_one_active_relay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_route, setup, teardown),
		cmocka_unit_test(test_names),
	};
	const struct CMUnitTest pg_tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults_round_trip, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_port_follows_tls, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_set_fields, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_rules, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_one_default, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_domain_one_active_relay, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(test_route, setup_pg, teardown_pg),
	};

	return cmocka_run_group_tests_name("sqlite", tests, NULL, NULL) + TU_PG_GROUP(pg_tests);
}
