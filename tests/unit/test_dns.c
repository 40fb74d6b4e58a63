/*
 * test_dns.c - aliases/dns.c's answer handling, without a network: status
 * classification, name normalisation, TTLs, MX answers built byte by byte
 * (sorting, duplicates, null MX, odd names, caps), the shuffle of equal
 * preferences with an injected random source, address ordering, the final
 * verdict and its wording; and the resolver's promises that need no DNS
 * server (literals, bad names, cancellation, freeing).
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>

#include <ares.h>
#include <event2/event.h>

#include "aliases/dns.h"
#include "lib/endpoint.h"

/* ------------------------------------------------------------------ */
/* DNS messages built by hand. */

struct pkt {
	unsigned char b[65536];
	size_t n;
};

static void
put8(struct pkt *p, unsigned v)
{
	assert_true(p->n < sizeof(p->b));
	p->b[p->n++] = (unsigned char)v;
}

static void
put16(struct pkt *p, unsigned v)
{
	put8(p, v >> 8);
	put8(p, v & 0xff);
}

static void
put32(struct pkt *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p, v & 0xffff);
}

/* A name as labels; "" is the root.  Raw bytes: a label may hold anything. */
static void
put_name(struct pkt *p, const char *name)
{
	const char *s = name, *dot;

	while (*s != '\0') {
		dot = strchr(s, '.');
		if (dot == NULL)
			dot = s + strlen(s);
		put8(p, (unsigned)(dot - s));
		while (s < dot)
			put8(p, (unsigned char)*s++);
		if (*s == '.')
			s++;
	}
	put8(p, 0);
}

/* Header and one question for name; ancount answers follow. */
static void
start(struct pkt *p, const char *name, unsigned type, unsigned ancount)
{
	p->n = 0;
	put16(p, 0x1234);
	put16(p, 0x8180);	/* response, RD, RA, NOERROR */
	put16(p, 1);
	put16(p, ancount);
	put16(p, 0);
	put16(p, 0);
	put_name(p, name);
	put16(p, type);
	put16(p, C_IN);
}

/* An MX record owned by the question's name (a pointer to offset 12). */
static void
add_mx(struct pkt *p, uint32_t ttl, unsigned pref, const char *host)
{
	size_t len_at;

	put16(p, 0xc00c);
	put16(p, T_MX);
	put16(p, C_IN);
	put32(p, ttl);
	len_at = p->n;
	put16(p, 0);
	put16(p, pref);
	put_name(p, host);
	p->b[len_at] = (unsigned char)((p->n - len_at - 2) >> 8);
	p->b[len_at + 1] = (unsigned char)((p->n - len_at - 2) & 0xff);
}

static void
add_cname(struct pkt *p, uint32_t ttl, const char *target)
{
	size_t len_at;

	put16(p, 0xc00c);
	put16(p, T_CNAME);
	put16(p, C_IN);
	put32(p, ttl);
	len_at = p->n;
	put16(p, 0);
	put_name(p, target);
	p->b[len_at + 1] = (unsigned char)(p->n - len_at - 2);
}

static struct dns_result *
answer(int status, const struct pkt *p)
{
	struct dns_result *res = calloc(1, sizeof(*res));

	dns_mx_answer("example.com", status, p ? p->b : NULL,
	    p ? (int)p->n : 0, 3600, res);
	assert_string_equal(res->name, "example.com");
	return res;
}

/* ------------------------------------------------------------------ */

static void
test_classify(void **state)
{
	static const struct {
		int ares;
		enum dns_status st;
		enum dns_reason why;
	} t[] = {
		{ ARES_SUCCESS, DNS_OK, DNS_R_NONE },
		{ ARES_ENODATA, DNS_PERMANENT, DNS_R_NO_ADDRESS },
		{ ARES_ENOTFOUND, DNS_PERMANENT, DNS_R_NXDOMAIN },
		{ ARES_EBADNAME, DNS_PERMANENT, DNS_R_BAD_NAME },
		{ ARES_ESERVFAIL, DNS_TEMPORARY, DNS_R_SERVFAIL },
		{ ARES_EREFUSED, DNS_TEMPORARY, DNS_R_REFUSED },
		{ ARES_ETIMEOUT, DNS_TEMPORARY, DNS_R_TIMEOUT },
		{ ARES_ECONNREFUSED, DNS_TEMPORARY, DNS_R_NETWORK },
		{ ARES_EFORMERR, DNS_TEMPORARY, DNS_R_BAD_ANSWER },
		{ ARES_EBADRESP, DNS_TEMPORARY, DNS_R_BAD_ANSWER },
		{ ARES_ENOTIMP, DNS_TEMPORARY, DNS_R_BAD_ANSWER },
		{ ARES_ENOMEM, DNS_TEMPORARY, DNS_R_OTHER },
		{ ARES_ECANCELLED, DNS_CANCELLED, DNS_R_CANCELLED },
		{ ARES_EDESTRUCTION, DNS_CANCELLED, DNS_R_CANCELLED },
		{ 12345, DNS_TEMPORARY, DNS_R_OTHER },
	};
	enum dns_reason why;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(dns_classify(t[i].ares, &why), t[i].st);
		assert_int_equal(why, t[i].why);
	}
	assert_int_equal(dns_classify(ARES_ETIMEOUT, NULL), DNS_TEMPORARY);
}

static void
test_name_normalize(void **state)
{
	char out[DNS_NAME_MAX + 1], big[400];

	assert_int_equal(dns_name_normalize("Mail.Example.COM.", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "mail.example.com");
	assert_int_equal(dns_name_normalize("_dmarc.x-y.example", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "_dmarc.x-y.example");
	assert_int_equal(dns_name_normalize("localhost", out, sizeof(out)), 0);

	assert_int_equal(dns_name_normalize("", out, sizeof(out)), -1);
	assert_int_equal(dns_name_normalize(".", out, sizeof(out)), -1);
	assert_int_equal(dns_name_normalize("a..b", out, sizeof(out)), -1);
	assert_int_equal(dns_name_normalize(".a", out, sizeof(out)), -1);
	assert_int_equal(dns_name_normalize("a..", out, sizeof(out)), -1);
	assert_int_equal(dns_name_normalize("a b.com", out, sizeof(out)), -1);
	assert_int_equal(dns_name_normalize("a\\.b.com", out, sizeof(out)), -1);
	assert_int_equal(dns_name_normalize("bad\\001host", out, sizeof(out)), -1);
	assert_int_equal(dns_name_normalize("h\xc3\xa9.com", out, sizeof(out)), -1);
	assert_int_equal(dns_name_normalize("a.com", out, 10), -1);
	assert_int_equal(dns_name_normalize(NULL, out, sizeof(out)), -1);

	/* Labels of 63, not 64; names of 253, not 254. */
	memset(big, 'a', 63);
	strcpy(big + 63, ".com");
	assert_int_equal(dns_name_normalize(big, out, sizeof(out)), 0);
	memset(big, 'a', 64);
	strcpy(big + 64, ".com");
	assert_int_equal(dns_name_normalize(big, out, sizeof(out)), -1);
	big[0] = '\0';
	while (strlen(big) < 248)
		strcat(big, "abc.");
	strcat(big, "comma");
	assert_int_equal(strlen(big), 253);
	assert_int_equal(dns_name_normalize(big, out, sizeof(out)), 0);
	assert_string_equal(out, big);
	strcat(big, ".");			/* a final dot is free */
	assert_int_equal(dns_name_normalize(big, out, sizeof(out)), 0);
	big[253] = 'x';				/* 254 */
	assert_int_equal(dns_name_normalize(big, out, sizeof(out)), -1);
}

static void
test_ttl_cap(void **state)
{
	assert_int_equal(dns_ttl_cap(300, 3600), 300);
	assert_int_equal(dns_ttl_cap(86400, 3600), 3600);
	assert_int_equal(dns_ttl_cap(0, 3600), 0);
	assert_int_equal(dns_ttl_cap(0x7fffffff, 3600), 3600);
	assert_int_equal(dns_ttl_cap(0x80000000u, 3600), 0);	/* RFC 2181 */
	assert_int_equal(dns_ttl_cap(UINT32_MAX, UINT32_MAX), 0);
}

static void
test_answer_ttl(void **state)
{
	struct pkt p;
	uint32_t ttl;
	size_t i;

	start(&p, "example.com", T_MX, 3);
	add_mx(&p, 900, 10, "a.example.com");
	add_mx(&p, 300, 20, "b.example.com");
	add_mx(&p, 600, 30, "c.example.com");
	assert_int_equal(dns_answer_ttl(p.b, p.n, T_MX, &ttl), 0);
	assert_int_equal(ttl, 300);
	/* No A records here. */
	assert_int_equal(dns_answer_ttl(p.b, p.n, T_A, &ttl), -1);

	/* A CNAME on the way counts. */
	start(&p, "example.com", T_MX, 2);
	add_cname(&p, 30, "other.example.net");
	add_mx(&p, 900, 10, "a.example.net");
	assert_int_equal(dns_answer_ttl(p.b, p.n, T_MX, &ttl), 0);
	assert_int_equal(ttl, 30);

	/* Huge TTLs are 0 (RFC 2181 §8). */
	start(&p, "example.com", T_MX, 1);
	add_mx(&p, 0x80000001u, 10, "a.example.com");
	assert_int_equal(dns_answer_ttl(p.b, p.n, T_MX, &ttl), 0);
	assert_int_equal(ttl, 0);

	/* Every truncation of a good message fails cleanly. */
	start(&p, "example.com", T_MX, 2);
	add_mx(&p, 900, 10, "a.example.com");
	add_mx(&p, 300, 20, "b.example.com");
	for (i = 0; i < p.n; i++) {
		/* The first record alone may already be whole. */
		int rc = dns_answer_ttl(p.b, i, T_MX, &ttl);

		assert_true(rc == -1 || (rc == 0 && ttl == 900));
	}
	assert_int_equal(dns_answer_ttl(NULL, 0, T_MX, &ttl), -1);
	/* A bad label type. */
	start(&p, "example.com", T_MX, 1);
	p.b[12] = 0x80;
	add_mx(&p, 900, 10, "a.example.com");
	assert_int_equal(dns_answer_ttl(p.b, p.n, T_MX, &ttl), -1);
}

static void
test_mx_sorted_and_capped(void **state)
{
	struct dns_result *res;
	struct pkt p;
	char host[64];
	int i;

	start(&p, "example.com", T_MX, 4);
	add_mx(&p, 600, 20, "Two.Example.com");
	add_mx(&p, 500, 10, "one.example.com");
	add_mx(&p, 400, 30, "three.example.com");
	add_mx(&p, 700, 5, "one.example.com");	/* a duplicate, better */
	res = answer(ARES_SUCCESS, &p);
	assert_int_equal(res->status, DNS_OK);
	assert_false(res->implicit_mx);
	assert_int_equal(res->nhosts, 3);
	assert_string_equal(res->hosts[0].name, "one.example.com");
	assert_int_equal(res->hosts[0].preference, 5);
	assert_string_equal(res->hosts[1].name, "two.example.com");
	assert_string_equal(res->hosts[2].name, "three.example.com");
	assert_int_equal(res->hosts[2].preference, 30);
	assert_int_equal(res->hosts[0].naddrs, 0);
	assert_int_equal(res->ttl, 400);
	dns_result_free(&res);
	assert_null(res);

	/* More records than are kept: the DNS_MAX_HOSTS best, in order. */
	start(&p, "example.com", T_MX, DNS_MAX_HOSTS + 20);
	for (i = 0; i < DNS_MAX_HOSTS + 20; i++) {
		snprintf(host, sizeof(host), "mx%03d.example.com", i);
		add_mx(&p, 300, (unsigned)(1000 - i), host);
	}
	res = answer(ARES_SUCCESS, &p);
	assert_int_equal(res->status, DNS_OK);
	assert_int_equal(res->nhosts, DNS_MAX_HOSTS);
	for (i = 0; i < DNS_MAX_HOSTS; i++) {
		snprintf(host, sizeof(host), "mx%03d.example.com", DNS_MAX_HOSTS + 19 - i);
		assert_string_equal(res->hosts[i].name, host);
	}
	dns_result_free(&res);

	/* TTLs are capped. */
	start(&p, "example.com", T_MX, 1);
	add_mx(&p, 86400, 10, "mx.example.com");
	res = answer(ARES_SUCCESS, &p);
	assert_int_equal(res->ttl, 3600);
	dns_result_free(&res);
}

static void
test_null_mx(void **state)
{
	struct dns_result *res;
	struct pkt p;

	start(&p, "example.com", T_MX, 1);
	add_mx(&p, 300, 0, "");
	res = answer(ARES_SUCCESS, &p);
	assert_int_equal(res->status, DNS_PERMANENT);
	assert_int_equal(res->reason, DNS_R_NULL_MX);
	assert_string_equal(res->detail,
	    "example.com has a null MX: it accepts no mail");
	assert_int_equal(res->nhosts, 0);
	assert_int_equal(res->ttl, 300);
	dns_result_free(&res);

	/* "." among real hosts is not a null MX: it is dropped. */
	start(&p, "example.com", T_MX, 2);
	add_mx(&p, 300, 0, "");
	add_mx(&p, 300, 10, "mx.example.com");
	res = answer(ARES_SUCCESS, &p);
	assert_int_equal(res->status, DNS_OK);
	assert_int_equal(res->nhosts, 1);
	assert_string_equal(res->hosts[0].name, "mx.example.com");
	dns_result_free(&res);

	/* "." alone but with a preference: no host to use, an error (RFC 5321 §5.1). */
	start(&p, "example.com", T_MX, 1);
	add_mx(&p, 300, 10, "");
	res = answer(ARES_SUCCESS, &p);
	assert_int_equal(res->status, DNS_PERMANENT);
	assert_int_equal(res->reason, DNS_R_BAD_ANSWER);
	assert_string_equal(res->detail,
	    "example.com: its MX records name no valid host");
	dns_result_free(&res);
}

static void
test_odd_names_dropped(void **state)
{
	struct dns_result *res;
	struct pkt p;

	start(&p, "example.com", T_MX, 5);
	add_mx(&p, 300, 1, "bad\001host.example.com");
	add_mx(&p, 300, 2, "sp ace.example.com");
	add_mx(&p, 300, 3, "h\xc3\xa9.example.com");
	add_mx(&p, 300, 4, "192.0.2.1");		/* an address is no host name */
	add_mx(&p, 300, 5, "ok.example.com");
	res = answer(ARES_SUCCESS, &p);
	assert_int_equal(res->status, DNS_OK);
	assert_int_equal(res->nhosts, 1);
	assert_string_equal(res->hosts[0].name, "ok.example.com");
	dns_result_free(&res);
}

static void
test_mx_statuses(void **state)
{
	struct dns_result *res;
	struct pkt p;

	/* NODATA: the implicit MX. */
	res = answer(ARES_ENODATA, NULL);
	assert_int_equal(res->status, DNS_OK);
	assert_true(res->implicit_mx);
	assert_int_equal(res->nhosts, 1);
	assert_string_equal(res->hosts[0].name, "example.com");
	assert_int_equal(res->hosts[0].preference, 0);
	dns_result_free(&res);

	/* Answers, but no MX among them (a CNAME only): the same. */
	start(&p, "example.com", T_MX, 1);
	add_cname(&p, 300, "elsewhere.example.net");
	res = answer(ARES_SUCCESS, &p);
	assert_int_equal(res->status, DNS_OK);
	assert_true(res->implicit_mx);
	dns_result_free(&res);

	res = answer(ARES_ENOTFOUND, NULL);
	assert_int_equal(res->status, DNS_PERMANENT);
	assert_int_equal(res->reason, DNS_R_NXDOMAIN);
	assert_string_equal(res->detail,
	    "example.com: no such domain (NXDOMAIN)");
	dns_result_free(&res);

	res = answer(ARES_ETIMEOUT, NULL);
	assert_int_equal(res->status, DNS_TEMPORARY);
	assert_string_equal(res->detail, "example.com: MX lookup timed out");
	dns_result_free(&res);

	res = answer(ARES_ESERVFAIL, NULL);
	assert_int_equal(res->status, DNS_TEMPORARY);
	assert_string_equal(res->detail,
	    "example.com: MX lookup failed: server failure (SERVFAIL)");
	dns_result_free(&res);

	res = answer(ARES_EREFUSED, NULL);
	assert_string_equal(res->detail, "example.com: MX lookup failed: "
	    "refused by the DNS server (REFUSED)");
	dns_result_free(&res);

	res = answer(ARES_EDESTRUCTION, NULL);
	assert_int_equal(res->status, DNS_CANCELLED);
	dns_result_free(&res);

	/* Garbage that claims success. */
	start(&p, "example.com", T_MX, 3);
	add_mx(&p, 300, 10, "mx.example.com");
	p.n -= 5;
	res = answer(ARES_SUCCESS, &p);
	assert_int_equal(res->status, DNS_TEMPORARY);
	assert_int_equal(res->reason, DNS_R_BAD_ANSWER);
	assert_string_equal(res->detail,
	    "example.com: MX lookup failed: malformed DNS answer");
	dns_result_free(&res);
}

/* A scripted random source: the values in turn, then zeros. */
struct script {
	const uint32_t *v;
	size_t n, i;
	uint32_t last_bound;
};

static uint32_t
scripted(uint32_t bound, void *ctx)
{
	struct script *s = ctx;

	s->last_bound = bound;
	return s->i < s->n ? s->v[s->i++] : 0;
}

static struct dns_host *
hosts(const unsigned *prefs, size_t n)
{
	struct dns_host *v = calloc(n, sizeof(*v));
	size_t i;

	for (i = 0; i < n; i++) {
		v[i].preference = prefs[i];
		if (asprintf(&v[i].name, "h%zu", i) < 0)
			abort();
	}
	return v;
}

static void
free_hosts(struct dns_host *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

static void
test_sort_and_shuffle(void **state)
{
	static const unsigned prefs[] = { 20, 10, 20, 10, 5, 20 };
	static const uint32_t rolls[] = { 0, 0, 1, 7 };
	struct script s = { rolls, 4, 0, 0 };
	struct dns_host *v = hosts(prefs, 6);
	size_t i;

	dns_hosts_sort(v, 6);
	/* Stable: equal preferences keep their order. */
	assert_string_equal(v[0].name, "h4");
	assert_string_equal(v[1].name, "h1");
	assert_string_equal(v[2].name, "h3");
	assert_string_equal(v[3].name, "h0");
	assert_string_equal(v[4].name, "h2");
	assert_string_equal(v[5].name, "h5");

	/*
	 * The 10s: k=2, roll 0 swaps v[2] and v[1].  The 20s: k=3, roll 0
	 * swaps v[5] and v[3]; k=2, roll 1 keeps.  The run of one asks
	 * nothing.  An out-of-range roll (7) would be clamped.
	 */
	dns_hosts_shuffle(v, 6, scripted, &s);
	assert_string_equal(v[0].name, "h4");
	assert_string_equal(v[1].name, "h3");
	assert_string_equal(v[2].name, "h1");
	assert_string_equal(v[3].name, "h5");
	assert_string_equal(v[4].name, "h2");
	assert_string_equal(v[5].name, "h0");
	assert_int_equal(s.i, 3);
	for (i = 1; i < 6; i++)
		assert_true(v[i - 1].preference <= v[i].preference);
	s.i = 3;		/* next roll: 7, out of range for k=2 */
	dns_hosts_shuffle(v, 3, scripted, &s);
	assert_string_equal(v[1].name, "h3");	/* clamped to 1: kept */
	free_hosts(v, 6);
	dns_hosts_shuffle(NULL, 0, scripted, &s);
}

/* With a fair source, each order of three equal hosts shows up. */
static uint32_t
lcg(uint32_t bound, void *ctx)
{
	uint64_t *x = ctx;

	*x = *x * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)((*x >> 33) % bound);
}

static void
test_shuffle_covers_every_order(void **state)
{
	static const unsigned prefs[] = { 10, 10, 10 };
	uint64_t x = 42;
	int seen[6] = { 0 }, i, k;

	for (i = 0; i < 600; i++) {
		struct dns_host *v = hosts(prefs, 3);
		int code;

		dns_hosts_shuffle(v, 3, lcg, &x);
		code = (v[0].name[1] - '0') * 2 + (v[1].name[1] > v[2].name[1]);
		seen[code]++;
		free_hosts(v, 3);
	}
	for (k = 0; k < 6; k++)
		assert_true(seen[k] > 50);
}

static struct dns_addr
a4(const char *s)
{
	struct dns_addr a = { .family = AF_INET };

	assert_int_equal(inet_pton(AF_INET, s, &a.u.v4), 1);
	return a;
}

static struct dns_addr
a6(const char *s)
{
	struct dns_addr a = { .family = AF_INET6 };

	assert_int_equal(inet_pton(AF_INET6, s, &a.u.v6), 1);
	return a;
}

static void
expect_order(const struct dns_addr *v, size_t n, const char **want, size_t nwant)
{
	char buf[INET6_ADDRSTRLEN];
	size_t i;

	assert_int_equal(n, nwant);
	for (i = 0; i < n; i++)
		assert_string_equal(dns_addr_text(&v[i], buf, sizeof(buf)),
		    want[i]);
}

static void
test_addrs_order(void **state)
{
	struct dns_addr v[8];
	struct dns_addr bogus = { .family = AF_UNIX };
	const char *w1[] = { "2001:db8::1", "192.0.2.1", "2001:db8::2",
	    "192.0.2.2", "2001:db8::3" };
	const char *w2[] = { "192.0.2.1", "2001:db8::1", "192.0.2.2" };
	const char *w3[] = { "2001:db8::1", "192.0.2.1" };
	size_t n;

	v[0] = a6("2001:db8::1");
	v[1] = a6("2001:db8::2");
	v[2] = a6("2001:db8::3");
	v[3] = a4("192.0.2.1");
	v[4] = a6("2001:db8::1");	/* duplicate */
	v[5] = a4("192.0.2.2");
	v[6] = bogus;
	n = dns_addrs_order(v, 7, 16);
	expect_order(v, n, w1, 5);

	/* The first family leads, whichever it is. */
	v[0] = a4("192.0.2.1");
	v[1] = a4("192.0.2.2");
	v[2] = a6("2001:db8::1");
	n = dns_addrs_order(v, 3, 16);
	expect_order(v, n, w2, 3);

	/* Capped. */
	v[0] = a6("2001:db8::1");
	v[1] = a6("2001:db8::2");
	v[2] = a4("192.0.2.1");
	n = dns_addrs_order(v, 3, 2);
	expect_order(v, n, w3, 2);

	assert_int_equal(dns_addrs_order(v, 0, 16), 0);
	v[0] = bogus;
	assert_int_equal(dns_addrs_order(v, 1, 16), 0);
}

static struct dns_result *
settled(int implicit, size_t n, const enum dns_status *st,
    const enum dns_reason *why, size_t with_addr, int is_mx)
{
	struct dns_result *res = calloc(1, sizeof(*res));
	size_t i;

	res->name = strdup("example.com");
	res->implicit_mx = implicit;
	res->hosts = calloc(n, sizeof(*res->hosts));
	res->nhosts = n;
	for (i = 0; i < n; i++) {
		if (asprintf(&res->hosts[i].name, "mx%zu.example.com", i) < 0)
			abort();
		res->hosts[i].status = st[i];
		res->hosts[i].reason = why[i];
		if (i == with_addr) {
			res->hosts[i].addrs = calloc(1, sizeof(struct dns_addr));
			res->hosts[i].addrs[0] = a4("192.0.2.1");
			res->hosts[i].naddrs = 1;
		}
	}
	dns_result_settle(res, is_mx);
	return res;
}

static void
test_settle(void **state)
{
	const enum dns_status perm[] = { DNS_PERMANENT, DNS_PERMANENT };
	const enum dns_status mixed[] = { DNS_PERMANENT, DNS_TEMPORARY };
	const enum dns_reason nx[] = { DNS_R_NXDOMAIN, DNS_R_NXDOMAIN };
	const enum dns_reason nxto[] = { DNS_R_NXDOMAIN, DNS_R_TIMEOUT };
	const enum dns_reason nxsf[] = { DNS_R_NO_ADDRESS, DNS_R_SERVFAIL };
	struct dns_result *res, *dup;

	res = settled(0, 2, mixed, nxto, 1, 1);
	assert_int_equal(res->status, DNS_OK);
	assert_string_equal(res->detail, "");
	dup = dns_result_dup(res);
	dns_result_free(&res);
	assert_int_equal(dup->nhosts, 2);
	assert_string_equal(dup->hosts[1].name, "mx1.example.com");
	assert_int_equal(dup->hosts[1].naddrs, 1);
	dns_result_free(&dup);

	res = settled(0, 2, mixed, nxto, 9, 1);
	assert_int_equal(res->status, DNS_TEMPORARY);
	assert_int_equal(res->reason, DNS_R_TIMEOUT);
	assert_string_equal(res->detail, "example.com: address lookup of MX "
	    "host mx1.example.com timed out");
	dns_result_free(&res);

	res = settled(0, 2, mixed, nxsf, 9, 1);
	assert_string_equal(res->detail, "example.com: address lookup of MX "
	    "host mx1.example.com failed: server failure (SERVFAIL)");
	dns_result_free(&res);

	res = settled(0, 2, perm, nx, 9, 1);
	assert_int_equal(res->status, DNS_PERMANENT);
	assert_int_equal(res->reason, DNS_R_NO_ADDRESS);
	assert_string_equal(res->detail,
	    "no MX host of example.com has an address");
	dns_result_free(&res);

	res = settled(1, 1, perm, nxsf, 9, 1);
	assert_string_equal(res->detail,
	    "example.com has no MX and no address record");
	dns_result_free(&res);

	res = settled(0, 1, mixed + 1, nxto + 1, 9, 0);
	assert_string_equal(res->detail, "example.com: address lookup timed out");
	dns_result_free(&res);

	res = settled(0, 1, perm, nx, 9, 0);
	assert_int_equal(res->reason, DNS_R_NXDOMAIN);
	assert_string_equal(res->detail, "example.com: no such domain (NXDOMAIN)");
	dns_result_free(&res);

	res = settled(0, 1, perm, nxsf, 9, 0);
	assert_int_equal(res->reason, DNS_R_NO_ADDRESS);
	assert_string_equal(res->detail, "example.com has no address record");
	dns_result_free(&res);

	res = settled(0, 0, perm, nx, 9, 1);
	assert_int_equal(res->status, DNS_PERMANENT);
	dns_result_free(&res);
	dns_result_free(&res);		/* NULL: nothing */
}

static void
test_addr_helpers(void **state)
{
	struct dns_addr a = a6("2001:db8::25"), b = a4("192.0.2.25");
	struct sockaddr_storage ss;
	char buf[INET6_ADDRSTRLEN];

	assert_int_equal(dns_addr_sockaddr(&a, 25, &ss),
	    sizeof(struct sockaddr_in6));
	assert_int_equal(((struct sockaddr_in6 *)&ss)->sin6_port, htons(25));
	assert_int_equal(dns_addr_sockaddr(&b, 2525, &ss),
	    sizeof(struct sockaddr_in));
	assert_int_equal(((struct sockaddr_in *)&ss)->sin_port, htons(2525));
	assert_string_equal(dns_addr_text(&b, buf, sizeof(buf)), "192.0.2.25");
	b.family = AF_UNIX;
	assert_int_equal(dns_addr_sockaddr(&b, 25, &ss), 0);
	assert_string_equal(dns_addr_text(&b, buf, sizeof(buf)), "?");
}

/* ------------------------------------------------------------------ */
/* The resolver, where no DNS server is needed. */

struct got {
	int calls;
	struct dns_result *res;
};

static void
got_cb(struct dns_result *res, void *arg)
{
	struct got *g = arg;

	g->calls++;
	dns_result_free(&g->res);
	g->res = res;
}

static void
never_cb(struct dns_result *res, void *arg)
{
	fail_msg("a cancelled request's callback ran");
}

/* Port 9 (discard) on loopback: nothing here asks it anything. */
static struct dns_resolver *
resolver(struct event_base *base)
{
	struct config_endpoint ep = { "127.0.0.1", 9 };
	struct config_endpoints servers = { &ep, 1 };
	char err[256];
	struct dns_resolver *r = dns_new(base, &servers, err, sizeof(err));

	assert_non_null(r);
	return r;
}

static void
test_new_refuses_a_name(void **state)
{
	struct event_base *base = event_base_new();
	struct config_endpoint ep = { "dns.example.com", 53 };
	struct config_endpoints servers = { &ep, 1 };
	char err[256];

	assert_null(dns_new(base, &servers, err, sizeof(err)));
	assert_string_equal(err, "dns server \"dns.example.com\" is not an IP address");
	event_base_free(base);
}

static void
test_literals_without_lookup(void **state)
{
	struct event_base *base = event_base_new();
	struct dns_resolver *r = resolver(base);
	struct got g[6];
	int i;

	memset(g, 0, sizeof(g));
	dns_mx_hosts(r, "[192.0.2.1]", got_cb, &g[0]);
	dns_mx_hosts(r, "[IPv6:2001:DB8::1]", got_cb, &g[1]);
	dns_addresses(r, "::1", got_cb, &g[2]);
	dns_mx_hosts(r, "[2001:db8::1]", got_cb, &g[3]);	/* no IPv6: tag */
	dns_mx_hosts(r, "bad..name", got_cb, &g[4]);
	dns_addresses(r, NULL, got_cb, &g[5]);
	for (i = 0; i < 6; i++)
		assert_int_equal(g[i].calls, 0);	/* later, from the loop */
	event_base_loop(base, EVLOOP_NONBLOCK);
	for (i = 0; i < 6; i++)
		assert_int_equal(g[i].calls, 1);
	assert_int_equal(g[0].res->status, DNS_OK);
	assert_true(g[0].res->implicit_mx);
	assert_string_equal(g[0].res->hosts[0].name, "192.0.2.1");
	assert_int_equal(g[1].res->status, DNS_OK);
	assert_string_equal(g[1].res->hosts[0].name, "2001:db8::1");
	assert_int_equal(g[2].res->status, DNS_OK);
	assert_false(g[2].res->implicit_mx);
	assert_int_equal(g[2].res->hosts[0].addrs[0].family, AF_INET6);
	assert_int_equal(g[3].res->reason, DNS_R_BAD_NAME);
	assert_int_equal(g[4].res->status, DNS_PERMANENT);
	assert_int_equal(g[4].res->reason, DNS_R_BAD_NAME);
	assert_string_equal(g[4].res->detail,
	    "\"bad..name\" is not a valid domain name");
	assert_int_equal(g[5].res->reason, DNS_R_BAD_NAME);
	assert_int_equal(dns_lookups(r), 0);
	for (i = 0; i < 6; i++)
		dns_result_free(&g[i].res);
	dns_free(&r);
	assert_null(r);
	event_base_free(base);
}

static void
test_cancel_and_free(void **state)
{
	struct event_base *base = event_base_new();
	struct dns_resolver *r = resolver(base);
	struct got ready = { 0, NULL }, flying = { 0, NULL };
	struct dns_query *q;
	char longname[400];

	q = dns_mx_hosts(r, "[192.0.2.1]", never_cb, NULL);
	dns_cancel(q);
	dns_cancel(NULL);
	dns_mx_hosts(r, "[192.0.2.2]", got_cb, &ready);
	dns_mx_hosts(r, "example.com", got_cb, &flying);	/* to port 9 */
	q = dns_mx_hosts(r, "example.com", never_cb, NULL);	/* joins */
	assert_int_equal(dns_lookups(r), 1);
	dns_cancel(q);
	/* An overlong name is quoted shortened in the detail. */
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	q = dns_mx_hosts(r, longname, never_cb, NULL);
	dns_cancel(q);

	dns_free(&r);
	assert_null(r);
	/* The ready answer as it was; the one in flight cancelled. */
	assert_int_equal(ready.calls, 1);
	assert_int_equal(ready.res->status, DNS_OK);
	assert_int_equal(flying.calls, 1);
	assert_int_equal(flying.res->status, DNS_CANCELLED);
	assert_string_equal(flying.res->detail, "example.com: lookup cancelled");
	dns_result_free(&ready.res);
	dns_result_free(&flying.res);
	event_base_loop(base, EVLOOP_NONBLOCK);
	dns_free(&r);		/* NULL: nothing */
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_name_normalize),
		cmocka_unit_test(test_ttl_cap),
		cmocka_unit_test(test_answer_ttl),
		cmocka_unit_test(test_mx_sorted_and_capped),
		cmocka_unit_test(test_null_mx),
		cmocka_unit_test(test_odd_names_dropped),
		cmocka_unit_test(test_mx_statuses),
		cmocka_unit_test(test_sort_and_shuffle),
		cmocka_unit_test(test_shuffle_covers_every_order),
		cmocka_unit_test(test_addrs_order),
		cmocka_unit_test(test_settle),
		cmocka_unit_test(test_addr_helpers),
		cmocka_unit_test(test_new_refuses_a_name),
		cmocka_unit_test(test_literals_without_lookup),
		cmocka_unit_test(test_cancel_and_free),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
