/*
 * test_endpoint.c - lib/endpoint.c: one "host:port" at a time (with and
 * without a default port, names allowed or not), lists of them, and
 * formatting back to text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/endpoint.h"
#include "lib/util.h"

static char why[512];

/* Parse s, which must be good, and check what came out. */
static void
good(const char *s, uint16_t def, unsigned flags, const char *host,
    uint16_t port)
{
	struct config_endpoint ep;

	if (endpoint_parse(s, def, flags, &ep, why, sizeof(why)) != 0) {
		print_error("endpoint_parse(\"%s\", %u, %u): %s\n", s, def,
		    flags, why);
		fail();
	}
	assert_string_equal(ep.host, host);
	assert_int_equal(ep.port, port);
}

/* Parse s, which must be refused with msg in the reason, out untouched. */
static void
bad(const char *s, uint16_t def, unsigned flags, const char *msg)
{
	struct config_endpoint ep, keep;

	memset(&ep, 0x5a, sizeof(ep));
	keep = ep;
	why[0] = '\0';
	if (endpoint_parse(s, def, flags, &ep, why, sizeof(why)) != -1) {
		print_error("endpoint_parse(\"%s\") accepted: %s:%u\n", s,
		    ep.host, ep.port);
		fail();
	}
	if (strstr(why, msg) == NULL) {
		print_error("\"%s\": expected \"%s\" in \"%s\"\n", s, msg, why);
		fail();
	}
	assert_memory_equal(&ep, &keep, sizeof(ep));
}

/* ------------------------------------------------------------------ */

static void
test_port_required(void **state)
{
	good("192.0.2.1:25", 0, 0, "192.0.2.1", 25);
	good("0.0.0.0:1", 0, 0, "0.0.0.0", 1);
	good("[2001:db8::1]:587", 0, 0, "2001:db8::1", 587);
	good("[::]:65535", 0, 0, "::", 65535);
	good("Mail.Example.COM:25", 0, 0, "mail.example.com", 25);
	good("localhost:2525", 0, 0, "localhost", 2525);
	good("[::ffff:192.0.2.1]:25", 0, 0, "::ffff:192.0.2.1", 25);
	good("relay.example:00025", 0, 0, "relay.example", 25);

	bad("192.0.2.1", 0, 0, "\"192.0.2.1\" has no port");
	bad("192.0.2.1:", 0, 0, "\"192.0.2.1:\" has no port");
	bad("[::1]", 0, 0, "\"[::1]\" has no port");
	bad("[::1]:", 0, 0, "has no port");
	bad("::1", 0, 0, "\"::1\": write an IPv6 address in brackets");
	bad("::1:25", 0, 0, "write an IPv6 address in brackets");
}

static void
test_ports(void **state)
{
	bad("192.0.2.1:0", 0, 0, "\"192.0.2.1:0\" has port \"0\", not 1..65535");
	bad("192.0.2.1:65536", 0, 0, "has port \"65536\"");
	bad("192.0.2.1:99999999999999999999999", 0, 0, "has port");
	bad("192.0.2.1:-25", 0, 0, "has port \"-25\"");
	bad("192.0.2.1:+25", 0, 0, "has port \"+25\"");
	bad("192.0.2.1: 25", 0, 0, "has port \" 25\"");
	bad("192.0.2.1:25 ", 0, 0, "has port \"25 \"");
	bad("192.0.2.1:smtp", 0, 0, "has port \"smtp\"");
	bad("192.0.2.1:0x19", 0, 0, "has port");
	bad("[::1]:0", 53, 0, "has port \"0\"");
}

static void
test_hosts(void **state)
{
	char longname[300];

	bad(":25", 0, 0, "\":25\" has no host");
	bad("[]:25", 0, 0, "\"[]:25\" has no host");
	bad("", 53, 0, "\"\" has no host");
	bad("[::1:25", 0, 0, "\"[::1:25\" lacks the closing ']'");
	bad("[::1]25", 0, 0, "\"[::1]25\" has text after ']'");
	bad("[::1]]:25", 0, 0, "has text after ']'");
	bad("[127.0.0.1]:25", 0, 0, "\"[127.0.0.1]:25\" is not an IPv6 "
	    "address in brackets");
	bad("[mail.example]:25", 0, 0, "is not an IPv6 address");
	bad("bad_host:25", 0, 0, "\"bad_host\" is neither an IPv4 address "
	    "nor a host name");
	bad("mail.example.:25", 0, 0, "is neither");
	bad("-mail.example:25", 0, 0, "is neither");
	bad("1.2.3:25", 0, 0, "\"1.2.3\" is neither");
	bad("a b:25", 0, 0, "is neither");
	bad("a,b:25", 0, 0, "is neither");

	/* 255 characters fit the host field (as a name they are too long). */
	memset(longname, 'a', 255);
	strcpy(longname + 255, ":25");
	bad(longname, 0, 0, "is neither");
	memset(longname, 'a', 256);
	strcpy(longname + 256, ":25");
	bad(longname, 0, 0, "has a host name that is too long");
}

/* A default port makes the port optional, and brackets too for IPv6. */
static void
test_default_port(void **state)
{
	good("192.0.2.53", 53, 0, "192.0.2.53", 53);
	good("192.0.2.53:5353", 53, 0, "192.0.2.53", 5353);
	good("::1", 53, 0, "::1", 53);
	good("[::1]", 53, 0, "::1", 53);
	good("[2001:db8::53]:5353", 53, 0, "2001:db8::53", 5353);
	good("smtp.example.com", 587, 0, "smtp.example.com", 587);
	good("SMTP.example.com:2525", 587, 0, "smtp.example.com", 2525);
	/* Without brackets, every colon belongs to the address. */
	good("::1:25", 53, 0, "::1:25", 53);
	bad("::1:zz", 53, 0, "write an IPv6 address in brackets");
	bad("192.0.2.1:", 53, 0, "has no port");
}

static void
test_ip_only(void **state)
{
	good("127.0.0.1", 53, ENDPOINT_IP_ONLY, "127.0.0.1", 53);
	good("127.0.0.1:5353", 53, ENDPOINT_IP_ONLY, "127.0.0.1", 5353);
	good("2001:db8::53", 53, ENDPOINT_IP_ONLY, "2001:db8::53", 53);
	good("[::1]:25", 0, ENDPOINT_IP_ONLY, "::1", 25);
	bad("localhost", 53, ENDPOINT_IP_ONLY, "\"localhost\" is not an IP "
	    "address");
	bad("ns1.example.com:53", 53, ENDPOINT_IP_ONLY, "\"ns1.example.com\" "
	    "is not an IP address");
	bad("localhost:25", 0, ENDPOINT_IP_ONLY, "is not an IP address");
}

static void
test_format(void **state)
{
	static const char *const texts[] = {
		"192.0.2.1:25", "[2001:db8::1]:587", "mail.example.com:2525",
		"[::]:1", "[::ffff:192.0.2.1]:65535",
	};
	struct config_endpoint ep, back;
	char buf[ENDPOINT_TEXT_MAX];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(texts); i++) {
		assert_int_equal(endpoint_parse(texts[i], 0, 0, &ep, why,
		    sizeof(why)), 0);
		assert_string_equal(endpoint_format(&ep, buf, sizeof(buf)),
		    texts[i]);
		assert_int_equal(endpoint_parse(buf, 0, 0, &back, why,
		    sizeof(why)), 0);
		assert_string_equal(back.host, ep.host);
		assert_int_equal(back.port, ep.port);
	}
	/* Canonical form: lowercase names, brackets for IPv6. */
	assert_int_equal(endpoint_parse("::1", 53, 0, &ep, why, sizeof(why)),
	    0);
	assert_string_equal(endpoint_format(&ep, buf, sizeof(buf)), "[::1]:53");
	/* The longest host fits the documented buffer. */
	memset(&ep, 0, sizeof(ep));
	memset(ep.host, 'a', sizeof(ep.host) - 1);
	ep.port = 65535;
	endpoint_format(&ep, buf, sizeof(buf));
	assert_int_equal(strlen(buf), sizeof(ep.host) - 1 + 6);
}

static void
test_list(void **state)
{
	struct config_endpoints l = { NULL, 0 };

	assert_int_equal(endpoint_list_parse("127.0.0.1:2525 ,[::1]:2526,"
	    "Localhost:1,\t[fe80::1]:65535 ", 0, 0, &l, why, sizeof(why)), 0);
	assert_int_equal(l.n, 4);
	assert_string_equal(l.v[0].host, "127.0.0.1");
	assert_int_equal(l.v[0].port, 2525);
	assert_string_equal(l.v[1].host, "::1");
	assert_string_equal(l.v[2].host, "localhost");
	assert_int_equal(l.v[3].port, 65535);

	/* A bad list leaves the old one in place. */
	assert_int_equal(endpoint_list_parse("127.0.0.1:25,,127.0.0.1:26", 0,
	    0, &l, why, sizeof(why)), -1);
	assert_string_equal(why, "\"127.0.0.1:25,,127.0.0.1:26\" has an empty "
	    "entry");
	assert_int_equal(l.n, 4);
	assert_int_equal(endpoint_list_parse("127.0.0.1:25, 127.0.0.1", 0, 0,
	    &l, why, sizeof(why)), -1);
	assert_string_equal(why, "\"127.0.0.1\" has no port");
	assert_int_equal(l.n, 4);

	/* dns.servers style: literal addresses, port 53 by default. */
	assert_int_equal(endpoint_list_parse("127.0.0.1, ::1, [2001:db8::53], "
	    "127.0.0.2:5353", 53, ENDPOINT_IP_ONLY, &l, why, sizeof(why)), 0);
	assert_int_equal(l.n, 4);
	assert_int_equal(l.v[0].port, 53);
	assert_string_equal(l.v[1].host, "::1");
	assert_int_equal(l.v[2].port, 53);
	assert_int_equal(l.v[3].port, 5353);

	/* Empty: no endpoints. */
	assert_int_equal(endpoint_list_parse("", 0, 0, &l, why, sizeof(why)),
	    0);
	assert_int_equal(l.n, 0);
	assert_null(l.v);
	endpoint_list_clear(&l);
	endpoint_list_clear(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_port_required),
		cmocka_unit_test(test_ports),
		cmocka_unit_test(test_hosts),
		cmocka_unit_test(test_default_port),
		cmocka_unit_test(test_ip_only),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
