/*
 * test_iptable.c - unit tests for the per client table: IPv4 addresses
 * and IPv6 /64s as clients, the entry lifecycle (put, sweep) and the
 * login failure delays.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/iptable.h"

/* A socket address (port 25) for a textual IPv4 or IPv6 address. */
static const struct sockaddr *
sa_of(const char *text, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(text, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(25);
		assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(25);
		assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
	}
	return (const struct sockaddr *)ss;
}

static struct ip_entry *
get(struct ip_table *t, const char *text, int create)
{
	struct sockaddr_storage ss;

	return ip_table_get(t, sa_of(text, &ss), create);
}

static int
setup(void **state)
{
	struct ip_table *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	ip_table_init(t);
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	ip_table_clear(*state);
	free(*state);
	return 0;
}

static void
test_ipv6_same_64_shares_an_entry(void **state)
{
	struct ip_table *t = *state;
	struct ip_entry *e = get(t, "2001:db8:1:2::1", 1);

	assert_non_null(e);
	assert_ptr_equal(get(t, "2001:db8:1:2::1", 0), e);
	assert_ptr_equal(get(t, "2001:db8:1:2::2", 1), e);
	assert_ptr_equal(get(t, "2001:db8:1:2:ffff:ffff:ffff:ffff", 0), e);
	assert_ptr_equal(get(t, "2001:db8:1:2:dead:beef:0:1", 1), e);
	/* Case and notation do not matter, only the bits. */
	assert_ptr_equal(get(t, "2001:0DB8:0001:0002:0000:0000:0000:0099", 0), e);
}

static void
test_ipv6_other_64s_do_not(void **state)
{
	struct ip_table *t = *state;
	struct ip_entry *e = get(t, "2001:db8:1:2::1", 1), *f;

	/* Neighbours on either side of the /64, and a bit flipped in each half. */
	assert_null(get(t, "2001:db8:1:3::1", 0));
	assert_null(get(t, "2001:db8:1:1:ffff:ffff:ffff:ffff", 0));
	assert_null(get(t, "2001:db8:1::1", 0));
	assert_null(get(t, "2001:db9:1:2::1", 0));
	assert_null(get(t, "3001:db8:1:2::1", 0));
	assert_ptr_equal(get(t, "2001:db8:1:2:8000::1", 0), e);

	f = get(t, "2001:db8:1:3::1", 1);
	assert_non_null(f);
	assert_ptr_not_equal(f, e);
	assert_ptr_equal(get(t, "2001:db8:1:3::2", 0), f);
	assert_ptr_equal(get(t, "2001:db8:1:2::2", 0), e);
}

static void
test_ipv4_and_mapped_share(void **state)
{
	struct ip_table *t = *state;
	struct ip_entry *e = get(t, "192.0.2.7", 1);

	assert_non_null(e);
	assert_ptr_equal(get(t, "::ffff:192.0.2.7", 0), e);
	assert_ptr_equal(get(t, "::ffff:c000:207", 1), e);
	/* IPv4 is the whole address: the next one is another client... */
	assert_null(get(t, "192.0.2.8", 0));
	assert_null(get(t, "::ffff:192.0.2.8", 0));
	/* ...even though every mapped address lies in ::/64. */
	assert_ptr_not_equal(get(t, "::ffff:192.0.2.8", 1), e);
	assert_ptr_equal(get(t, "192.0.2.8", 0), get(t, "::ffff:192.0.2.8", 0));
}

static void
test_ipv6_zero_64_is_not_ipv4(void **state)
{
	struct ip_table *t = *state;
	struct ip_entry *lo = get(t, "::1", 1);

	/* ::1 and ::2 are one /64 (::/64); no IPv4 client is in it. */
	assert_ptr_equal(get(t, "::2", 0), lo);
	assert_null(get(t, "0.0.0.1", 0));
	assert_null(get(t, "0.0.0.0", 0));
	assert_null(get(t, "::ffff:0.0.0.0", 0));
	assert_ptr_not_equal(get(t, "0.0.0.0", 1), lo);
	assert_ptr_not_equal(get(t, "127.0.0.1", 1), lo);
}

/* 20 connections from 20 addresses of one /64 are 20 on one entry. */
static void
test_one_64_counts_together(void **state)
{
	struct ip_table *t = *state;
	struct ip_entry *conns[20];
	char text[64];

	for (int i = 0; i < 20; i++) {
		snprintf(text, sizeof(text), "2001:db8:aa:bb:%x:%x::%x", i, i * 7, i + 1);
		conns[i] = get(t, text, 1);
		assert_non_null(conns[i]);
		conns[i]->conns++;
	}
	assert_int_equal(conns[0]->conns, 20);
	for (int i = 0; i < 20; i++) {
		ip_table_put(t, &conns[i]);
		assert_null(conns[i]);
	}
	assert_null(get(t, "2001:db8:aa:bb::1", 0));
}

/* Many clients, many per bucket: each finds its own entry. */
static void
test_many_clients(void **state)
{
	struct ip_table *t = *state;
	enum { N = 3 * IPTABLE_BUCKETS };
	struct ip_entry **v4 = calloc(N, sizeof(*v4)), **v6 = calloc(N, sizeof(*v6));
	char text[64];

	assert_non_null(v4);
	assert_non_null(v6);
	for (int i = 0; i < N; i++) {
		snprintf(text, sizeof(text), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		v4[i] = get(t, text, 1);
		snprintf(text, sizeof(text), "2001:db8:%x:%x::1", i >> 16, i & 0xffff);
		v6[i] = get(t, text, 1);
		assert_ptr_not_equal(v4[i], v6[i]);
	}
	for (int i = 0; i < N; i++) {
		snprintf(text, sizeof(text), "::ffff:10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		assert_ptr_equal(get(t, text, 0), v4[i]);
		snprintf(text, sizeof(text), "2001:db8:%x:%x:1:2:3:4", i >> 16, i & 0xffff);
		assert_ptr_equal(get(t, text, 0), v6[i]);
	}
	free(v4);
	free(v6);
}

/* An entry lives while it has connections, and goes with the last one. */
static void
test_put_lifecycle(void **state)
{
	struct ip_table *t = *state;
	struct ip_entry *a = get(t, "2001:db8::1", 1), *b;

	assert_int_equal(a->conns, 0);
	a->conns++;
	b = get(t, "2001:db8::2", 1);
	assert_ptr_equal(a, b);
	b->conns++;

	ip_table_put(t, &a);
	assert_null(a);
	assert_ptr_equal(get(t, "2001:db8::3", 0), b);
	assert_int_equal(b->conns, 1);
	ip_table_put(t, &b);
	assert_null(b);
	assert_null(get(t, "2001:db8::1", 0));

	/* A refused connection: counted, then put back at once. */
	a = get(t, "192.0.2.1", 1);
	a->conns++;
	ip_table_put(t, &a);
	assert_null(get(t, "192.0.2.1", 0));

	/* Put of nothing is harmless. */
	ip_table_put(t, &a);
	assert_null(a);
}

/* A recent failure keeps the entry past its last connection, until sweep. */
static void
test_failures_outlive_connections_until_sweep(void **state)
{
	struct ip_table *t = *state;
	struct ip_entry *e = get(t, "2001:db8:5:6::1", 1), *p;
	struct ip_entry *busy = get(t, "198.51.100.2", 1);

	assert_non_null(get(t, "198.51.100.1", 1));	/* idle: no connection */
	busy->conns = 3;
	busy->last_failure = time(NULL) - 3600;
	e->conns++;
	assert_int_equal(ip_auth_failed(t, e), 2000);
	p = e;
	ip_table_put(t, &p);
	assert_ptr_equal(get(t, "2001:db8:5:6::99", 0), e);
	assert_int_equal(e->conns, 0);
	assert_int_equal(e->auth_failures, 1);

	/* Still remembered: the next failure from the /64 waits longer. */
	ip_table_sweep(t);
	assert_ptr_equal(get(t, "2001:db8:5:6::2", 0), e);
	assert_int_equal(ip_auth_failed(t, get(t, "2001:db8:5:6::3", 1)), 4000);

	/* 15 minutes later it is forgotten; so is an idle entry. */
	e->last_failure = time(NULL) - 900;
	ip_table_sweep(t);
	assert_null(get(t, "2001:db8:5:6::1", 0));
	assert_null(get(t, "198.51.100.1", 0));
	/* Connections keep an entry whatever its failures' age. */
	assert_ptr_equal(get(t, "198.51.100.2", 0), busy);
}

static void
test_auth_delays_double_to_30s(void **state)
{
	struct ip_table *t = *state;
	struct ip_entry *e = get(t, "2001:db8:7::1", 1);
	static const unsigned want[] = { 2000, 4000, 8000, 16000, 30000, 30000, 30000 };

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(ip_auth_failed(t, get(t, i % 2 ? "2001:db8:7::1" :
		    "2001:db8:7:0:abcd::1", 0)), want[i]);
	assert_true(e->last_failure >= time(NULL) - 1);

	/* Many more failures: still 30 s, no overflow. */
	e->auth_failures = 100000;
	assert_int_equal(ip_auth_failed(t, e), 30000);

	/* Another client starts at 2 s. */
	assert_int_equal(ip_auth_failed(t, get(t, "2001:db8:8::1", 1)), 2000);
	assert_int_equal(ip_auth_failed(t, get(t, "192.0.2.9", 1)), 2000);
	assert_int_equal(ip_auth_failed(t, get(t, "::ffff:192.0.2.9", 1)), 4000);

	/* After 15 quiet minutes, back to 2 s. */
	e->last_failure = time(NULL) - 901;
	assert_int_equal(ip_auth_failed(t, e), 2000);
	assert_int_equal(ip_auth_failed(t, e), 4000);

	/* No entry (the table could not say): 2 s. */
	assert_int_equal(ip_auth_failed(t, NULL), 2000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ipv6_same_64_shares_an_entry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_other_64s_do_not, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv4_and_mapped_share, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_zero_64_is_not_ipv4, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_64_counts_together, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_clients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_lifecycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failures_outlive_connections_until_sweep,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_auth_delays_double_to_30s, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
