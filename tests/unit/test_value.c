/*
 * test_value.c - lib/value.c: counts, sizes, durations, names, literal
 * addresses and comma-separated lists.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/util.h"
#include "lib/value.h"

/* Assert that a parser returned the reason want (NULL: success). */
#define assert_reason(got, want) do {					\
	const char *g_ = (got), *w_ = (want);				\
	if (w_ == NULL && g_ != NULL) {					\
		print_error("unexpected failure: %s\n", g_);		\
		fail();							\
	} else if (w_ != NULL) {					\
		if (g_ == NULL) {					\
			print_error("expected failure: %s\n", w_);	\
			fail();						\
		}							\
		assert_string_equal(g_, w_);				\
	}								\
} while (0)

static void
test_count(void **state)
{
	uint64_t v = 7;

	assert_reason(value_parse_count("0", 0, 10, &v), NULL);
	assert_int_equal(v, 0);
	assert_reason(value_parse_count("10", 0, 10, &v), NULL);
	assert_int_equal(v, 10);
	assert_reason(value_parse_count("007", 1, 10, &v), NULL);
	assert_int_equal(v, 7);
	assert_reason(value_parse_count("18446744073709551615", 0, UINT64_MAX,
	    &v), NULL);
	assert_true(v == UINT64_MAX);

	v = 3;
	assert_reason(value_parse_count("11", 0, 10, &v), "is out of range");
	assert_reason(value_parse_count("0", 1, 10, &v), "is out of range");
	assert_reason(value_parse_count("", 0, 10, &v), "is not a number");
	assert_reason(value_parse_count("abc", 0, 10, &v), "is not a number");
	assert_reason(value_parse_count("+1", 0, 10, &v), "is not a number");
	assert_reason(value_parse_count("-1", 0, 10, &v), "is not a number");
	assert_reason(value_parse_count(" 1", 0, 10, &v), "is not a number");
	assert_reason(value_parse_count("1 ", 0, 10, &v), "is not a number");
	assert_reason(value_parse_count("5 users", 0, 10, &v),
	    "is not a number");
	assert_reason(value_parse_count("18446744073709551616", 0, UINT64_MAX,
	    &v), "is too large");
	assert_int_equal(v, 3);		/* untouched on failure */
}

static void
test_size(void **state)
{
	uint64_t v = 0;

	assert_reason(value_parse_size("36700160", &v), NULL);
	assert_int_equal(v, 36700160);
	assert_reason(value_parse_size("35M", &v), NULL);
	assert_int_equal(v, 35 * 1024 * 1024);
	assert_reason(value_parse_size("1k", &v), NULL);
	assert_int_equal(v, 1024);
	assert_reason(value_parse_size("2G", &v), NULL);
	assert_true(v == 2ULL * 1024 * 1024 * 1024);
	assert_reason(value_parse_size("0", &v), NULL);
	assert_int_equal(v, 0);

	assert_reason(value_parse_size("", &v), "is empty");
	assert_reason(value_parse_size("M", &v), "is not a number");
	assert_reason(value_parse_size("12X", &v),
	    "has an unknown unit (use K, M or G)");
	assert_reason(value_parse_size("12MB", &v),
	    "has an unknown unit (use K, M or G)");
	assert_reason(value_parse_size("1.5M", &v),
	    "is not a whole number (use a smaller unit: 1536K, not 1.5M)");
	assert_reason(value_parse_size("-1", &v), "is not a number");
	assert_reason(value_parse_size("17179869184G", &v), "is too large");
	assert_reason(value_parse_size("99999999999999999999", &v),
	    "is too large");
}

static void
test_duration(void **state)
{
	unsigned v = 0;

	assert_reason(value_parse_duration("30", &v), NULL);
	assert_int_equal(v, 30);
	assert_reason(value_parse_duration("30s", &v), NULL);
	assert_int_equal(v, 30);
	assert_reason(value_parse_duration("10M", &v), NULL);
	assert_int_equal(v, 600);
	assert_reason(value_parse_duration("1h", &v), NULL);
	assert_int_equal(v, 3600);
	assert_reason(value_parse_duration("5d", &v), NULL);
	assert_int_equal(v, 5 * 86400);
	assert_reason(value_parse_duration("4294967295s", &v), NULL);
	assert_int_equal(v, UINT_MAX);

	assert_reason(value_parse_duration("", &v), "is empty");
	assert_reason(value_parse_duration("1w", &v),
	    "has an unknown unit (use s, m, h or d)");
	assert_reason(value_parse_duration("5 days", &v),
	    "has an unknown unit (use s, m, h or d)");
	assert_reason(value_parse_duration("1hs", &v),
	    "has an unknown unit (use s, m, h or d)");
	assert_reason(value_parse_duration("1.5h", &v),
	    "is not a whole number (use a smaller unit: 90m, not 1.5h)");
	assert_reason(value_parse_duration("h", &v), "is not a number");
	assert_reason(value_parse_duration("4294967296", &v), "is too large");
	assert_reason(value_parse_duration("49711d", &v), "is too large");
}

static void
test_domain(void **state)
{
	char label[80], name[300];
	size_t i;

	assert_true(value_is_domain("mail.example.com"));
	assert_true(value_is_domain("localhost"));
	assert_true(value_is_domain("Mail-1.Example"));
	assert_true(value_is_domain("1.example"));
	assert_true(value_is_domain("a.b2"));

	assert_false(value_is_domain(""));
	assert_false(value_is_domain("mail.example.com."));
	assert_false(value_is_domain(".example"));
	assert_false(value_is_domain("a..b"));
	assert_false(value_is_domain("-mail.example"));
	assert_false(value_is_domain("mail-.example"));
	assert_false(value_is_domain("mail_server.example"));
	assert_false(value_is_domain("192.0.2.1"));
	assert_false(value_is_domain("example.123"));
	assert_false(value_is_domain("a b"));
	assert_false(value_is_domain("ex\xc3\xa4mple"));

	/* 63-octet labels, 253-octet names. */
	memset(label, 'a', 63);
	label[63] = '\0';
	assert_true(value_is_domain(label));
	label[63] = 'a';
	label[64] = '\0';
	assert_false(value_is_domain(label));
	name[0] = '\0';
	for (i = 0; i < 4; i++) {
		label[63] = '\0';
		strcat(name, label);
		strcat(name, ".");
	}
	name[253] = '\0';		/* 4 x 63 + 3 dots = 255; cut to 253 */
	assert_int_equal(name[252], 'a');
	assert_true(value_is_domain(name));
	strcat(name, "b");
	assert_false(value_is_domain(name));
}

static void
test_names(void **state)
{
	assert_true(value_is_user("umbox"));
	assert_true(value_is_user(""));
	assert_true(value_is_user("Debian-exim"));
	assert_true(value_is_user("a.b_c"));
	assert_false(value_is_user("-x"));
	assert_false(value_is_user("root:root"));
	assert_false(value_is_user("a b"));
	assert_false(value_is_user("abcdefghijklmnopqrstuvwxyz0123456"));
	assert_true(value_is_user("abcdefghijklmnopqrstuvwxyz012345"));

	assert_true(value_is_login("admin"));
	assert_true(value_is_login("ops.team-2_x"));
	assert_false(value_is_login(""));
	assert_false(value_is_login("Admin"));
	assert_false(value_is_login("admin@example.com"));
	assert_false(value_is_login("a+b"));

	assert_true(value_is_node_id("Node-1.example"));
	assert_true(value_is_node_id("pbx_2"));
	assert_false(value_is_node_id(""));
	assert_false(value_is_node_id("node 1"));
	assert_false(value_is_node_id("a/b"));

	assert_true(value_is_voice("en"));
	assert_true(value_is_voice("en-us+f3"));
	assert_true(value_is_voice("de_DE"));
	assert_false(value_is_voice(""));
	assert_false(value_is_voice("en/us"));
	assert_false(value_is_voice("../en"));
	assert_false(value_is_voice("en us"));
}

static void
test_ip_literal(void **state)
{
	unsigned char a[16];

	assert_int_equal(value_ip_literal("192.0.2.1", a), AF_INET);
	assert_int_equal(a[0], 192);
	assert_int_equal(a[3], 1);
	assert_int_equal(value_ip_literal("2001:DB8::1", a), AF_INET6);
	assert_int_equal(a[1], 0x01);
	assert_int_equal(a[15], 1);
	assert_int_equal(value_ip_literal("::ffff:1.2.3.4", a), AF_INET6);
	assert_int_equal(value_ip_literal("", a), 0);
	assert_int_equal(value_ip_literal("1.2.3", a), 0);
	assert_int_equal(value_ip_literal("[::1]", a), 0);
	assert_int_equal(value_ip_literal(" 1.2.3.4", a), 0);
	assert_int_equal(value_ip_literal("localhost", a), 0);
}

/* Collect items into a strlist; refuse the item "stop". */
static int
collect(const char *item, void *arg, char *why, size_t whylen)
{
	if (strcmp(item, "stop") == 0) {
		snprintf(why, whylen, "stopped");
		return -1;
	}
	strlist_add(arg, item);
	return 0;
}

static void
test_list(void **state)
{
	struct strlist l = { NULL, 0 };
	char why[256], *big;

	assert_int_equal(value_list_foreach(" a , b\t,c d,e", collect, &l, why,
	    sizeof(why)), 0);
	assert_int_equal(l.n, 4);
	assert_string_equal(l.v[0], "a");
	assert_string_equal(l.v[1], "b");
	assert_string_equal(l.v[2], "c d");
	assert_string_equal(l.v[3], "e");
	strlist_clear(&l);

	assert_int_equal(value_list_foreach("", collect, &l, why, sizeof(why)),
	    0);
	assert_int_equal(value_list_foreach(" \t ", collect, &l, why,
	    sizeof(why)), 0);
	assert_int_equal(l.n, 0);

	assert_int_equal(value_list_foreach("a,,b", collect, &l, why,
	    sizeof(why)), -1);
	assert_string_equal(why, "\"a,,b\" has an empty entry");
	strlist_clear(&l);
	assert_int_equal(value_list_foreach("a, ", collect, &l, why,
	    sizeof(why)), -1);
	assert_string_equal(why, "\"a, \" has an empty entry");
	strlist_clear(&l);
	assert_int_equal(value_list_foreach(",a", collect, &l, why,
	    sizeof(why)), -1);
	assert_int_equal(l.n, 0);

	/* The callback's refusal stops the walk. */
	assert_int_equal(value_list_foreach("a,stop,b", collect, &l, why,
	    sizeof(why)), -1);
	assert_string_equal(why, "stopped");
	assert_int_equal(l.n, 1);
	strlist_clear(&l);

	/* The longest item passes; one more byte is refused. */
	big = xmalloc(VALUE_ITEM_MAX + 8);
	memset(big, 'x', VALUE_ITEM_MAX);
	strcpy(big + VALUE_ITEM_MAX, ",y");
	assert_int_equal(value_list_foreach(big, collect, &l, why,
	    sizeof(why)), 0);
	assert_int_equal(strlen(l.v[0]), VALUE_ITEM_MAX);
	strlist_clear(&l);
	memset(big, 'x', VALUE_ITEM_MAX + 1);
	big[VALUE_ITEM_MAX + 1] = '\0';
	assert_int_equal(value_list_foreach(big, collect, &l, why,
	    sizeof(why)), -1);
	assert_non_null(strstr(why, "...\" is too long"));
	assert_int_equal(l.n, 0);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_count),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_domain),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_ip_literal),
		cmocka_unit_test(test_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
