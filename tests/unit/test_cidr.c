/*
 * test_cidr.c - lib/cidr.c: parsing address blocks and lists of them,
 * and matching raw addresses and sockaddrs against them, IPv4-mapped
 * IPv6 included.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "lib/cidr.h"
#include "lib/util.h"

static char why[512];

/* Parse s, which must be good. */
static struct cidr
block(const char *s)
{
	struct cidr c;

	if (cidr_parse(s, &c, why, sizeof(why)) != 0) {
		print_error("cidr_parse(\"%s\"): %s\n", s, why);
		fail();
	}
	return c;
}

/* Is the literal address a inside the block written b? */
static int
inside(const char *b, const char *a)
{
	struct cidr c = block(b);
	unsigned char raw[16];

	if (inet_pton(AF_INET, a, raw) == 1)
		return cidr_contains(&c, AF_INET, raw);
	assert_int_equal(inet_pton(AF_INET6, a, raw), 1);
	return cidr_contains(&c, AF_INET6, raw);
}

/* Does the list written l hold the literal address a, as a sockaddr? */
static int
listed(const char *l, const char *a)
{
	struct cidr_list list = { NULL, 0 };
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	int r;

	assert_int_equal(cidr_list_parse(l, &list, why, sizeof(why)), 0);
	memset(&ss, 0, sizeof(ss));
	if (strchr(a, ':') != NULL) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(25);
		assert_int_equal(inet_pton(AF_INET6, a, &sin6->sin6_addr), 1);
	} else {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(25);
		assert_int_equal(inet_pton(AF_INET, a, &sin->sin_addr), 1);
	}
	r = cidr_match_sockaddr(&list, (struct sockaddr *)&ss);
	cidr_list_clear(&list);
	return r;
}

/* ------------------------------------------------------------------ */

static void
test_parse_ipv4(void **state)
{
	static const unsigned char net10[16] = { 10 };
	static const unsigned char host[16] = { 192, 0, 2, 7 };
	static const unsigned char zero[16] = { 0 };
	struct cidr c;

	c = block("10.1.2.3/8");
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefix, 8);
	assert_memory_equal(c.addr, net10, 16);	/* host bits cleared */

	c = block("192.0.2.7");
	assert_int_equal(c.prefix, 32);
	assert_memory_equal(c.addr, host, 16);
	c = block("192.0.2.7/32");
	assert_int_equal(c.prefix, 32);
	assert_memory_equal(c.addr, host, 16);

	c = block("203.0.113.99/0");
	assert_int_equal(c.prefix, 0);
	assert_memory_equal(c.addr, zero, 16);

	c = block("10.0.3.255/23");
	assert_int_equal(c.addr[2], 2);
	assert_int_equal(c.addr[3], 0);
	c = block("10.0.0.0/08");		/* leading zero: still 8 */
	assert_int_equal(c.prefix, 8);
}

static void
test_parse_ipv6(void **state)
{
	static const unsigned char zero[16] = { 0 };
	struct cidr c;
	unsigned char raw[16];

	c = block("2001:db8:ffff::1/32");
	assert_int_equal(c.family, AF_INET6);
	assert_int_equal(c.prefix, 32);
	assert_int_equal(c.addr[3], 0xb8);
	assert_int_equal(c.addr[4], 0);
	assert_int_equal(c.addr[15], 0);

	c = block("::1");
	assert_int_equal(c.prefix, 128);
	assert_int_equal(inet_pton(AF_INET6, "::1", raw), 1);
	assert_memory_equal(c.addr, raw, 16);
	c = block("2001:DB8::ffff/128");
	assert_int_equal(c.prefix, 128);
	assert_int_equal(c.addr[15], 0xff);

	c = block("fe80::1/0");
	assert_int_equal(c.family, AF_INET6);
	assert_int_equal(c.prefix, 0);
	assert_memory_equal(c.addr, zero, 16);

	c = block("2001:db8::ffff/127");
	assert_int_equal(c.addr[15], 0xfe);
}

/* ::ffff:a.b.c.d/96 and longer are IPv4 blocks; shorter stay IPv6. */
static void
test_parse_mapped(void **state)
{
	static const unsigned char v4[16] = { 192, 0, 2, 0 };
	struct cidr c;

	c = block("::ffff:192.0.2.77/120");
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefix, 24);
	assert_memory_equal(c.addr, v4, 16);

	c = block("::ffff:192.0.2.77");
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefix, 32);

	c = block("::ffff:0.0.0.0/96");
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefix, 0);

	c = block("::ffff:0:0/95");
	assert_int_equal(c.family, AF_INET6);
	assert_int_equal(c.prefix, 95);
}

static void
test_parse_bad(void **state)
{
	static const struct {
		const char *text, *msg;
	} bad[] = {
		{ "10.0.0.0/33", "\"10.0.0.0/33\" has a prefix length outside 0..32" },
		{ "2001:db8::/129", "\"2001:db8::/129\" has a prefix length outside 0..128" },
		{ "::ffff:10.0.0.0/129", "outside 0..128" },
		{ "10.0.0.0/", "\"10.0.0.0/\" has a prefix length outside" },
		{ "10.0.0.0/-1", "has a prefix length outside" },
		{ "10.0.0.0/+8", "has a prefix length outside" },
		{ "10.0.0.0/8 ", "has a prefix length outside" },
		{ "10.0.0.0/ 8", "has a prefix length outside" },
		{ "10.0.0.0/8/8", "has a prefix length outside" },
		{ "10.0.0.0/99999999999999999999999", "has a prefix length outside" },
		{ "10.0.0/8", "\"10.0.0/8\" is not an IP address or CIDR" },
		{ "10.0.0.256", "is not an IP address or CIDR" },
		{ " 10.0.0.0/8", "is not an IP address or CIDR" },
		{ "", "\"\" is not an IP address or CIDR" },
		{ "/8", "is not an IP address or CIDR" },
		{ "office", "is not an IP address or CIDR" },
		{ "[::1]/128", "is not an IP address or CIDR" },
		{ "0000:0000:0000:0000:0000:0000:0000:0000:1/128", "is not an IP address" },
	};
	struct cidr c, keep;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		memset(&c, 0xa5, sizeof(c));
		keep = c;
		why[0] = '\0';
		assert_int_equal(cidr_parse(bad[i].text, &c, why, sizeof(why)),
		    -1);
		if (strstr(why, bad[i].msg) == NULL) {
			print_error("\"%s\": expected \"%s\" in \"%s\"\n",
			    bad[i].text, bad[i].msg, why);
			fail();
		}
		/* A refused block leaves *out alone. */
		assert_memory_equal(&c, &keep, sizeof(c));
	}
}

static void
test_contains_ipv4(void **state)
{
	assert_true(inside("192.168.1.0/24", "192.168.1.200"));
	assert_false(inside("192.168.1.0/24", "192.168.2.1"));
	assert_true(inside("10.0.0.0/23", "10.0.1.255"));
	assert_false(inside("10.0.0.0/23", "10.0.2.0"));
	assert_true(inside("192.0.2.5/31", "192.0.2.4"));
	assert_false(inside("192.0.2.5/31", "192.0.2.6"));
	/* /32: that host only. */
	assert_true(inside("192.0.2.5/32", "192.0.2.5"));
	assert_false(inside("192.0.2.5/32", "192.0.2.4"));
	assert_false(inside("192.0.2.5/32", "192.0.2.133"));
	assert_true(inside("192.0.2.5", "192.0.2.5"));
	/* /0: every IPv4 address, mapped ones too, but no IPv6. */
	assert_true(inside("0.0.0.0/0", "203.0.113.9"));
	assert_true(inside("0.0.0.0/0", "255.255.255.255"));
	assert_true(inside("0.0.0.0/0", "::ffff:8.8.8.8"));
	assert_false(inside("0.0.0.0/0", "2001:db8::1"));
	assert_false(inside("0.0.0.0/0", "::"));
}

static void
test_contains_ipv6(void **state)
{
	assert_true(inside("2001:db8::/32", "2001:db8:1234::1"));
	assert_false(inside("2001:db8::/32", "2001:db9::1"));
	assert_true(inside("2001:db8::/33", "2001:db8:7fff::1"));
	assert_false(inside("2001:db8::/33", "2001:db8:8000::1"));
	/* /128: that host only. */
	assert_true(inside("::1/128", "::1"));
	assert_false(inside("::1/128", "::2"));
	assert_true(inside("2001:db8::ff/128", "2001:db8::ff"));
	assert_false(inside("2001:db8::ff/128", "2001:db8::fe"));
	assert_true(inside("2001:db8::fe/127", "2001:db8::ff"));
	/* ::/0: every IPv6 address, but not IPv4 ones however written. */
	assert_true(inside("::/0", "fe80::1"));
	assert_true(inside("::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
	assert_false(inside("::/0", "192.0.2.1"));
	assert_false(inside("::/0", "::ffff:192.0.2.1"));
}

/* Mapped addresses are IPv4 on both sides of the comparison. */
static void
test_contains_mapped(void **state)
{
	assert_true(inside("192.168.1.0/24", "::ffff:192.168.1.9"));
	assert_false(inside("192.168.1.0/24", "::ffff:192.168.2.9"));
	assert_true(inside("::ffff:10.0.0.0/104", "10.3.4.5"));
	assert_true(inside("::ffff:10.0.0.0/104", "::ffff:10.3.4.5"));
	assert_false(inside("::ffff:10.0.0.0/104", "11.0.0.1"));
	assert_true(inside("::ffff:192.0.2.1", "192.0.2.1"));
	assert_false(inside("::ffff:192.0.2.1", "192.0.2.2"));
	/* An IPv4-compatible (not mapped) address is plain IPv6. */
	assert_false(inside("192.0.2.0/24", "::192.0.2.1"));
}

static void
test_contains_odd_input(void **state)
{
	struct cidr c = block("10.0.0.0/8"), wild;
	unsigned char a[16] = { 10, 1, 2, 3 };

	assert_true(cidr_contains(&c, AF_INET, a));
	assert_false(cidr_contains(&c, AF_UNIX, a));
	assert_false(cidr_contains(&c, AF_INET, NULL));
	assert_false(cidr_contains(NULL, AF_INET, a));
	/* A block built by hand with an impossible prefix never matches. */
	memset(&wild, 0, sizeof(wild));
	wild.family = AF_INET;
	wild.prefix = 200;
	memcpy(wild.addr, a, 4);
	assert_false(cidr_contains(&wild, AF_INET, a));
	wild.family = AF_INET6;
	wild.prefix = 129;
	assert_false(cidr_contains(&wild, AF_INET6, wild.addr));
	wild.prefix = 128;
	assert_true(cidr_contains(&wild, AF_INET6, wild.addr));
}

static void
test_match_addr(void **state)
{
	struct cidr_list l = { NULL, 0 };
	unsigned char v4[4] = { 192, 0, 2, 1 }, v6[16];

	assert_int_equal(inet_pton(AF_INET6, "2001:db8::5", v6), 1);
	assert_int_equal(cidr_list_parse("10.0.0.0/8, 2001:db8::/32", &l, why,
	    sizeof(why)), 0);
	assert_int_equal(l.n, 2);
	assert_true(cidr_match_addr(&l, AF_INET6, v6));
	assert_false(cidr_match_addr(&l, AF_INET, v4));
	v4[0] = 10;
	assert_true(cidr_match_addr(&l, AF_INET, v4));
	assert_false(cidr_match_addr(&l, AF_UNIX, v4));
	assert_false(cidr_match_addr(&l, AF_INET, NULL));
	assert_false(cidr_match_addr(NULL, AF_INET, v4));
	cidr_list_clear(&l);
	assert_null(l.v);
	assert_int_equal(l.n, 0);
	/* The empty list holds nothing. */
	assert_false(cidr_match_addr(&l, AF_INET, v4));
}

static void
test_match_sockaddr(void **state)
{
	struct cidr_list l = { NULL, 0 };
	struct sockaddr_un sun;
	struct sockaddr_in sin;
	unsigned char *buf;

	assert_true(listed("192.168.1.0/24", "192.168.1.200"));
	assert_false(listed("192.168.1.0/24", "192.168.2.1"));
	assert_true(listed("192.168.1.0/24", "::ffff:192.168.1.9"));
	assert_true(listed("::1", "::1"));
	assert_false(listed("", "127.0.0.1"));
	assert_true(listed("10.0.0.0/8, 2001:db8::/32", "2001:db8::5"));
	assert_false(listed("10.0.0.0/8, 2001:db8::/32", "2001:db9::5"));

	assert_int_equal(cidr_list_parse("::/0, 0.0.0.0/0", &l, why,
	    sizeof(why)), 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	assert_false(cidr_match_sockaddr(&l, (struct sockaddr *)&sun));
	assert_false(cidr_match_sockaddr(&l, NULL));
	assert_false(cidr_match_sockaddr(NULL, (struct sockaddr *)&sun));

	/* A sockaddr at an odd address is read without alignment trouble. */
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0x7f000001);
	buf = xmalloc(sizeof(sin) + 1);
	memcpy(buf + 1, &sin, sizeof(sin));
	assert_true(cidr_match_sockaddr(&l, (struct sockaddr *)(void *)(buf + 1)));
	free(buf);
	cidr_list_clear(&l);
}

static void
test_list_parse(void **state)
{
	struct cidr_list l = { NULL, 0 };

	assert_int_equal(cidr_list_parse(" 10.1.2.3/8 ,192.0.2.7,\t::1 ", &l,
	    why, sizeof(why)), 0);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.v[0].prefix, 8);
	assert_int_equal(l.v[1].prefix, 32);
	assert_int_equal(l.v[2].family, AF_INET6);

	/* A bad list leaves the old one in place. */
	assert_int_equal(cidr_list_parse("10.0.0.0/8, 10.0.0.0/33", &l, why,
	    sizeof(why)), -1);
	assert_string_equal(why, "\"10.0.0.0/33\" has a prefix length "
	    "outside 0..32");
	assert_int_equal(l.n, 3);
	assert_int_equal(cidr_list_parse("10.0.0.0/8,", &l, why, sizeof(why)),
	    -1);
	assert_string_equal(why, "\"10.0.0.0/8,\" has an empty entry");
	assert_int_equal(l.n, 3);

	/* A good one replaces it; an empty one empties it. */
	assert_int_equal(cidr_list_parse("172.16.0.0/12", &l, why,
	    sizeof(why)), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].prefix, 12);
	assert_int_equal(cidr_list_parse("  ", &l, why, sizeof(why)), 0);
	assert_int_equal(l.n, 0);
	assert_null(l.v);
	cidr_list_clear(&l);
	cidr_list_clear(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ipv4),
		cmocka_unit_test(test_parse_ipv6),
		cmocka_unit_test(test_parse_mapped),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_contains_ipv4),
		cmocka_unit_test(test_contains_ipv6),
		cmocka_unit_test(test_contains_mapped),
		cmocka_unit_test(test_contains_odd_input),
		cmocka_unit_test(test_match_addr),
		cmocka_unit_test(test_match_sockaddr),
		cmocka_unit_test(test_list_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
