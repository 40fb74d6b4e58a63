/*
 * test_guard.c - unit tests for the MX guard's verdict (aliases/guard.c):
 * DNS answers built by hand, judged against an identity built by hand.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aliases/guard.h"
#include "lib/cidr.h"

/* ---- building answers ---- */

static struct dns_addr
addr(const char *text)
{
	struct dns_addr a;

	memset(&a, 0, sizeof(a));
	if (strchr(text, ':')) {
		a.family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, text, &a.u.v6), 1);
	} else {
		a.family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, text, &a.u.v4), 1);
	}
	return a;
}

static struct dns_result *
result(const char *name, enum dns_status st, enum dns_reason why)
{
	struct dns_result *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	r->name = strdup(name);
	r->status = st;
	r->reason = why;
	return r;
}

/* Add a host with a NULL-terminated list of addresses. */
static void
host(struct dns_result *r, const char *name, enum dns_status st, ...)
{
	struct dns_host *h;
	const char *a;
	va_list ap;

	r->hosts = realloc(r->hosts, (r->nhosts + 1) * sizeof(*r->hosts));
	assert_non_null(r->hosts);
	h = &r->hosts[r->nhosts++];
	memset(h, 0, sizeof(*h));
	h->name = strdup(name);
	h->preference = 10;
	h->status = st;
	h->reason = st == DNS_OK ? DNS_R_NONE : st == DNS_TEMPORARY ?
	    DNS_R_TIMEOUT : DNS_R_NO_ADDRESS;
	h->addrs = calloc(DNS_MAX_ADDRS, sizeof(*h->addrs));
	va_start(ap, st);
	while ((a = va_arg(ap, const char *)) != NULL)
		h->addrs[h->naddrs++] = addr(a);
	va_end(ap);
}

/* This server: mail.ours.test, 10.0.0.5 and 2001:db8:1::5 on its interfaces. */
static struct dns_addr ours[2];
static struct cidr_list public_none, public_nat;

static struct guard_identity
identity(const struct cidr_list *pub)
{
	ours[0] = addr("10.0.0.5");
	ours[1] = addr("2001:db8:1::5");
	return (struct guard_identity){ "mail.ours.test", ours, 2, pub };
}

static enum guard_verdict
judge(struct dns_result *r, const struct cidr_list *pub, char *detail, size_t len)
{
	struct guard_identity id = identity(pub);
	struct guard_result res;

	memset(&res, 0x5a, sizeof(res));
	guard_judge(r, &id, &res);
	assert_non_null(memchr(res.detail, '\0', sizeof(res.detail)));
	if (detail)
		snprintf(detail, len, "%s", res.detail);
	dns_result_free(&r);
	return res.verdict;
}

/* ---- the verdicts ---- */

static void
test_claimed_by_hostname(void **state)
{
	struct dns_result *r = result("example.com", DNS_PERMANENT, DNS_R_NO_ADDRESS);
	char d[GUARD_DETAIL_MAX];

	/* The name is enough, even without an address record. */
	host(r, "MAIL.ours.test", DNS_PERMANENT, NULL);
	assert_int_equal(judge(r, NULL, d, sizeof(d)), GUARD_CLAIMED);
	assert_non_null(strstr(d, "MAIL.ours.test"));
	assert_non_null(strstr(d, "host name"));
}

static void
test_claimed_by_one_of_several_addresses(void **state)
{
	struct dns_result *r = result("example.com", DNS_OK, DNS_R_NONE);
	char d[GUARD_DETAIL_MAX];

	host(r, "mx1.provider.net", DNS_OK, "192.0.2.1", NULL);
	host(r, "mx2.example.com", DNS_OK, "192.0.2.2", "198.51.100.9", "10.0.0.5", NULL);
	assert_int_equal(judge(r, NULL, d, sizeof(d)), GUARD_CLAIMED);
	assert_non_null(strstr(d, "mx2.example.com"));
	assert_non_null(strstr(d, "10.0.0.5"));
}

static void
test_claimed_by_ipv6(void **state)
{
	struct dns_result *r = result("example.com", DNS_OK, DNS_R_NONE);

	host(r, "mx.example.com", DNS_OK, "2001:db8::77", "2001:db8:1::5", NULL);
	assert_int_equal(judge(r, NULL, NULL, 0), GUARD_CLAIMED);
}

/* The verdict on one MX host with one address. */
static enum guard_verdict
judge_one(const char *address)
{
	struct dns_result *r = result("example.com", DNS_OK, DNS_R_NONE);

	host(r, "mx.example.com", DNS_OK, address, NULL);
	return judge(r, NULL, NULL, 0);
}

/* An interface's IPv4 address written as an IPv4-mapped IPv6 address is still ours. */
static void
test_claimed_by_mapped_ipv4(void **state)
{
	assert_int_equal(judge_one("::ffff:10.0.0.5"), GUARD_CLAIMED);
	assert_int_equal(judge_one("::ffff:10.0.0.6"), GUARD_FOREIGN);
}

static void
test_claimed_by_loopback(void **state)
{
	assert_int_equal(judge_one("127.0.0.2"), GUARD_CLAIMED);
	assert_int_equal(judge_one("::1"), GUARD_CLAIMED);
	assert_int_equal(judge_one("::ffff:127.0.0.1"), GUARD_CLAIMED);
}

static void
test_claimed_by_public_address(void **state)
{
	struct dns_result *r = result("example.com", DNS_OK, DNS_R_NONE);
	char why[128];

	assert_int_equal(cidr_list_parse("203.0.113.0/28, 2001:db8:ff::1", &public_nat,
	    why, sizeof(why)), 0);
	host(r, "mx.example.com", DNS_OK, "203.0.113.14", NULL);
	assert_int_equal(judge(r, &public_nat, NULL, 0), GUARD_CLAIMED);
	/* just outside the block */
	r = result("example.com", DNS_OK, DNS_R_NONE);
	host(r, "mx.example.com", DNS_OK, "203.0.113.16", NULL);
	assert_int_equal(judge(r, &public_nat, NULL, 0), GUARD_FOREIGN);
	r = result("example.com", DNS_OK, DNS_R_NONE);
	host(r, "mx.example.com", DNS_OK, "2001:db8:ff::1", NULL);
	assert_int_equal(judge(r, &public_nat, NULL, 0), GUARD_CLAIMED);
	/* without the setting the same MX is someone else's */
	r = result("example.com", DNS_OK, DNS_R_NONE);
	host(r, "mx.example.com", DNS_OK, "203.0.113.14", NULL);
	assert_int_equal(judge(r, &public_none, NULL, 0), GUARD_FOREIGN);
	cidr_list_clear(&public_nat);
}

static void
test_claimed_implicit_mx(void **state)
{
	struct dns_result *r = result("example.com", DNS_OK, DNS_R_NONE);
	char d[GUARD_DETAIL_MAX];

	r->implicit_mx = 1;
	host(r, "example.com", DNS_OK, "10.0.0.5", NULL);
	assert_int_equal(judge(r, NULL, d, sizeof(d)), GUARD_CLAIMED);
	assert_non_null(strstr(d, "no MX"));
}

static void
test_implicit_mx_is_not_the_hostname(void **state)
{
	struct dns_result *r = result("mail.ours.test", DNS_OK, DNS_R_NONE);

	/* A domain named like this server, pointing elsewhere, is not claimed by name. */
	r->implicit_mx = 1;
	host(r, "mail.ours.test", DNS_OK, "192.0.2.8", NULL);
	assert_int_equal(judge(r, NULL, NULL, 0), GUARD_FOREIGN);
}

static void
test_foreign_names_hosts_and_addresses(void **state)
{
	struct dns_result *r = result("mycompany.com", DNS_OK, DNS_R_NONE);
	char d[GUARD_DETAIL_MAX];

	host(r, "mx1.provider.net", DNS_OK, "192.0.2.1", "2001:db8::1", NULL);
	host(r, "mx2.provider.net", DNS_PERMANENT, NULL);
	assert_int_equal(judge(r, NULL, d, sizeof(d)), GUARD_FOREIGN);
	assert_string_equal(d, "MX mx1.provider.net (192.0.2.1, 2001:db8::1), "
	    "mx2.provider.net (no address)");
}

static void
test_foreign_mx_without_addresses(void **state)
{
	struct dns_result *r = result("mycompany.com", DNS_PERMANENT, DNS_R_NO_ADDRESS);
	char d[GUARD_DETAIL_MAX];

	host(r, "gone.provider.net", DNS_PERMANENT, NULL);
	assert_int_equal(judge(r, NULL, d, sizeof(d)), GUARD_FOREIGN);
	assert_non_null(strstr(d, "gone.provider.net (no address)"));
}

static void
test_foreign_ipv6_only(void **state)
{
	struct dns_result *r = result("mycompany.com", DNS_OK, DNS_R_NONE);
	char d[GUARD_DETAIL_MAX];

	host(r, "mx.provider.net", DNS_OK, "2001:db8::25", NULL);
	assert_int_equal(judge(r, NULL, d, sizeof(d)), GUARD_FOREIGN);
	assert_non_null(strstr(d, "2001:db8::25"));
}

static void
test_foreign_implicit_mx(void **state)
{
	struct dns_result *r = result("mycompany.com", DNS_OK, DNS_R_NONE);
	char d[GUARD_DETAIL_MAX];

	r->implicit_mx = 1;
	host(r, "mycompany.com", DNS_OK, "192.0.2.10", NULL);
	assert_int_equal(judge(r, NULL, d, sizeof(d)), GUARD_FOREIGN);
	assert_non_null(strstr(d, "no MX"));
	assert_non_null(strstr(d, "192.0.2.10"));
}

static void
test_null_mx_is_foreign(void **state)
{
	struct dns_result *r = result("mycompany.com", DNS_PERMANENT, DNS_R_NULL_MX);
	char d[GUARD_DETAIL_MAX];

	assert_int_equal(judge(r, NULL, d, sizeof(d)), GUARD_FOREIGN);
	assert_non_null(strstr(d, "null MX"));
}

static void
test_internal(void **state)
{
	struct dns_result *r = result("corp.internal", DNS_PERMANENT, DNS_R_NXDOMAIN);
	char d[GUARD_DETAIL_MAX];

	assert_int_equal(judge(r, NULL, d, sizeof(d)), GUARD_INTERNAL);
	assert_non_null(strstr(d, "NXDOMAIN"));
	/* the name exists, with neither MX nor address */
	r = result("corp.internal", DNS_PERMANENT, DNS_R_NO_ADDRESS);
	r->implicit_mx = 1;
	host(r, "corp.internal", DNS_PERMANENT, NULL);
	assert_int_equal(judge(r, NULL, d, sizeof(d)), GUARD_INTERNAL);
	assert_non_null(strstr(d, "no MX and no address"));
}

static void
test_dns_errors(void **state)
{
	struct dns_result *r = result("example.com", DNS_TEMPORARY, DNS_R_SERVFAIL);
	char d[GUARD_DETAIL_MAX];

	snprintf(r->detail, sizeof(r->detail), "example.com: MX lookup failed");
	assert_int_equal(judge(r, NULL, d, sizeof(d)), GUARD_DNS_ERROR);
	assert_string_equal(d, "example.com: MX lookup failed");

	/* A host that could not be looked up might be this server. */
	r = result("example.com", DNS_OK, DNS_R_NONE);
	host(r, "mx1.provider.net", DNS_OK, "192.0.2.1", NULL);
	host(r, "mx2.example.com", DNS_TEMPORARY, NULL);
	assert_int_equal(judge(r, NULL, NULL, 0), GUARD_DNS_ERROR);

	/* ... unless another one already is. */
	r = result("example.com", DNS_OK, DNS_R_NONE);
	host(r, "mx1.example.com", DNS_TEMPORARY, NULL);
	host(r, "mx2.example.com", DNS_OK, "10.0.0.5", NULL);
	assert_int_equal(judge(r, NULL, NULL, 0), GUARD_CLAIMED);

	/* A permanent answer that is no verdict of ours. */
	r = result("example.com", DNS_PERMANENT, DNS_R_BAD_NAME);
	assert_int_equal(judge(r, NULL, NULL, 0), GUARD_DNS_ERROR);
}

static void
test_detail_is_cut_not_overrun(void **state)
{
	struct dns_result *r = result("big.example", DNS_OK, DNS_R_NONE);
	char d[GUARD_DETAIL_MAX], name[80];

	for (int i = 0; i < DNS_MAX_HOSTS; i++) {
		snprintf(name, sizeof(name), "mx%02d.a-rather-long-provider-name.example.net", i);
		host(r, name, DNS_OK, "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff",
		    "192.0.2.200", NULL);
	}
	assert_int_equal(judge(r, NULL, d, sizeof(d)), GUARD_FOREIGN);
	assert_int_equal(strlen(d), GUARD_DETAIL_MAX - 1);
	assert_string_equal(d + strlen(d) - 3, "...");
}

static void
test_verdict_names(void **state)
{
	assert_string_equal(guard_verdict_name(GUARD_CLAIMED), "claimed");
	assert_string_equal(guard_verdict_name(GUARD_INTERNAL), "internal");
	assert_string_equal(guard_verdict_name(GUARD_FOREIGN), "foreign");
	assert_string_equal(guard_verdict_name(GUARD_DNS_ERROR), "dns-error");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_claimed_by_hostname),
		cmocka_unit_test(test_claimed_by_one_of_several_addresses),
		cmocka_unit_test(test_claimed_by_ipv6),
		cmocka_unit_test(test_claimed_by_mapped_ipv4),
		cmocka_unit_test(test_claimed_by_loopback),
		cmocka_unit_test(test_claimed_by_public_address),
		cmocka_unit_test(test_claimed_implicit_mx),
		cmocka_unit_test(test_implicit_mx_is_not_the_hostname),
		cmocka_unit_test(test_foreign_names_hosts_and_addresses),
		cmocka_unit_test(test_foreign_mx_without_addresses),
		cmocka_unit_test(test_foreign_ipv6_only),
		cmocka_unit_test(test_foreign_implicit_mx),
		cmocka_unit_test(test_null_mx_is_foreign),
		cmocka_unit_test(test_internal),
		cmocka_unit_test(test_dns_errors),
		cmocka_unit_test(test_detail_is_cut_not_overrun),
		cmocka_unit_test(test_verdict_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
