/*
 * fuzz_dns.c - libFuzzer target for the DNS answer handling of
 * aliases/dns.c.
 *
 * Input: byte 0 picks the c-ares status the answer came with (mostly
 * ARES_SUCCESS), byte 1 the TTL cap, the rest is the answer as the server
 * sent it.  It goes through ares_parse_mx_reply() and our handling
 * (dns_mx_answer: null MX, names, duplicates, sorting, caps, TTLs), then
 * the result through what the resolver does next: a copy shuffled with
 * random numbers taken from the input, addresses made from the input
 * ordered per host, the final verdict.  Beyond "does not crash": hosts
 * stay sorted, unique, valid and within the caps, TTLs within the cap,
 * details printable ASCII, and the shuffle only permutes equal
 * preferences.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>

#include "aliases/dns.h"

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_dns: %s:%d: check failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int statuses[] = {
	ARES_SUCCESS, ARES_SUCCESS, ARES_SUCCESS, ARES_SUCCESS,
	ARES_ENODATA, ARES_ENOTFOUND, ARES_ESERVFAIL, ARES_EREFUSED,
	ARES_ETIMEOUT, ARES_ECONNREFUSED, ARES_EBADRESP, ARES_EFORMERR,
	ARES_ENOMEM, ARES_ECANCELLED, ARES_EDESTRUCTION, 9999,
};

static const uint32_t ttl_caps[] = { 3600, 1, 60, UINT32_MAX };

/* Random numbers from the input bytes, then zeros. */
struct bytes {
	const uint8_t *p;
	size_t n, i;
};

static uint32_t
from_input(uint32_t bound, void *ctx)
{
	struct bytes *b = ctx;
	uint32_t v = 0;

	if (b->i < b->n)
		v = b->p[b->i++];
	/* Sometimes out of range: the shuffle must cope. */
	return (v & 0x80) && (v & 1) ? bound + v : v % bound;
}

static void
check_detail(const char *d)
{
	size_t i, n = strnlen(d, 256);

	CHECK(n < 256);
	for (i = 0; i < n; i++)
		CHECK(d[i] >= 0x20 && d[i] < 0x7f);
}

static void
check_hosts(const struct dns_result *res)
{
	char norm[DNS_NAME_MAX + 1];
	size_t i, j;

	CHECK(res->nhosts <= DNS_MAX_HOSTS);
	for (i = 0; i < res->nhosts; i++) {
		const char *name = res->hosts[i].name;

		CHECK(name != NULL);
		CHECK(dns_name_normalize(name, norm, sizeof(norm)) == 0);
		CHECK(strcmp(norm, name) == 0);
		CHECK(res->hosts[i].preference <= 0xffff);
		if (i > 0)
			CHECK(res->hosts[i - 1].preference <=
			    res->hosts[i].preference);
		for (j = 0; j < i; j++)
			CHECK(strcmp(res->hosts[j].name, name) != 0);
	}
}

/* Addresses for each host out of the input, ordered as the resolver does. */
static void
fill_addrs(struct dns_result *res, struct bytes *b)
{
	size_t i, k, n;

	for (i = 0; i < res->nhosts; i++) {
		struct dns_host *h = &res->hosts[i];
		struct dns_addr *v;

		n = b->i < b->n ? b->p[b->i++] % 24 : 0;
		v = calloc(n ? n : 1, sizeof(*v));
		CHECK(v != NULL);
		for (k = 0; k < n; k++) {
			uint8_t x = b->i < b->n ? b->p[b->i++] : 0;

			/* Few distinct values, so duplicates happen. */
			v[k].family = (x & 3) == 0 ? AF_UNIX :
			    (x & 1) ? AF_INET6 : AF_INET;
			if (v[k].family == AF_INET)
				v[k].u.v4.s_addr = htonl(0xc0000200u | (x >> 4));
			else
				v[k].u.v6.s6_addr[15] = x >> 4;
		}
		h->naddrs = dns_addrs_order(v, n, DNS_MAX_ADDRS);
		CHECK(h->naddrs <= n && h->naddrs <= DNS_MAX_ADDRS);
		for (k = 0; k < h->naddrs; k++) {
			size_t j;

			CHECK(v[k].family == AF_INET || v[k].family == AF_INET6);
			for (j = 0; j < k; j++)
				CHECK(v[j].family != v[k].family ||
				    memcmp(&v[j].u, &v[k].u,
				    v[k].family == AF_INET ? 4 : 16) != 0);
		}
		h->addrs = v;
		h->status = h->naddrs ? DNS_OK :
		    (b->i < b->n && (b->p[b->i++] & 1)) ? DNS_TEMPORARY :
		    DNS_PERMANENT;
		h->reason = h->naddrs ? DNS_R_NONE :
		    (enum dns_reason)(b->i < b->n ? b->p[b->i++] % 12 : 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_result *res, *dup;
	struct bytes b;
	uint32_t cap, ttl;
	char *text;
	size_t i, j;
	int status;

	if (size < 2)
		return 0;
	status = statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))];
	cap = ttl_caps[data[1] % 4];
	data += 2;
	size -= 2;

	if (dns_answer_ttl(data, size, T_MX, &ttl) == 0)
		CHECK(ttl <= INT32_MAX);
	if (dns_answer_ttl(data, size, T_A, &ttl) == 0)
		CHECK(ttl <= INT32_MAX);

	res = calloc(1, sizeof(*res));
	CHECK(res != NULL);
	dns_mx_answer("example.com", status, data, (int)size, cap, res);
	CHECK(res->name != NULL && strcmp(res->name, "example.com") == 0);
	check_detail(res->detail);
	check_hosts(res);
	switch (res->status) {
	case DNS_OK:
		CHECK(res->nhosts >= 1);
		CHECK(res->detail[0] == '\0');
		CHECK(res->ttl <= cap && res->ttl <= INT32_MAX);
		if (res->implicit_mx) {
			CHECK(res->nhosts == 1);
			CHECK(strcmp(res->hosts[0].name, "example.com") == 0);
		}
		break;
	case DNS_PERMANENT:
		CHECK(res->nhosts == 0 && res->detail[0] != '\0');
		CHECK(res->reason == DNS_R_NULL_MX ||
		    res->reason == DNS_R_NXDOMAIN ||
		    res->reason == DNS_R_BAD_NAME ||
		    res->reason == DNS_R_NO_ADDRESS);
		if (res->reason == DNS_R_NULL_MX)
			CHECK(status == ARES_SUCCESS && res->ttl <= cap);
		break;
	case DNS_TEMPORARY:
	case DNS_CANCELLED:
		CHECK(res->nhosts == 0 && res->detail[0] != '\0');
		break;
	default:
		CHECK(0);
	}

	/* A requester's copy, shuffled with the input's bytes. */
	b.p = data;
	b.n = size;
	b.i = 0;
	dup = dns_result_dup(res);
	dns_hosts_shuffle(dup->hosts, dup->nhosts, from_input, &b);
	CHECK(dup->nhosts == res->nhosts);
	for (i = 0; i < dup->nhosts; i++) {
		CHECK(dup->hosts[i].preference == res->hosts[i].preference);
		for (j = 0; j < res->nhosts; j++)
			if (strcmp(dup->hosts[i].name, res->hosts[j].name) == 0)
				break;
		CHECK(j < res->nhosts &&
		    res->hosts[j].preference == dup->hosts[i].preference);
	}

	/* The address step and the verdict. */
	if (dup->status == DNS_OK) {
		fill_addrs(dup, &b);
		dns_result_settle(dup, b.i < b.n ? b.p[b.i] & 1 : 1);
		check_detail(dup->detail);
		CHECK(dup->status == DNS_OK || dup->detail[0] != '\0');
		for (i = 0; i < dup->nhosts; i++)
			if (dup->hosts[i].naddrs > 0)
				CHECK(dup->status == DNS_OK);
	}
	dns_result_free(&dup);
	CHECK(dup == NULL);
	dns_result_free(&res);

	/* The answer's bytes as a name. */
	text = malloc(size + 1);
	CHECK(text != NULL);
	memcpy(text, data, size);
	text[size] = '\0';
	{
		char norm[DNS_NAME_MAX + 1];

		if (dns_name_normalize(text, norm, sizeof(norm)) == 0) {
			CHECK(strlen(norm) <= DNS_NAME_MAX && norm[0] != '\0');
			CHECK(dns_name_normalize(norm, norm, sizeof(norm)) == 0);
		}
	}
	free(text);
	return 0;
}
