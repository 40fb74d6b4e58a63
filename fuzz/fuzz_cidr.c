/*
 * fuzz_cidr.c - libFuzzer target for lib/cidr.c.
 *
 * The input, NUL-terminated in a heap buffer of exactly its size, is
 * parsed as one block and as a list.  Every accepted block must be in the
 * form cidr.h promises (family, prefix in range, host bits clear) and
 * contain its own network address.  The first 16 input bytes are then
 * also taken as an IPv6 address and the first 4 as an IPv4 address, and
 * the three ways of matching (block by block, by raw bytes, by sockaddr)
 * must agree, including for IPv4-mapped addresses.
 */
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/cidr.h"

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_cidr: %s:%d: check failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reference: is bit i (0 = most significant of byte 0) of a set? */
static int
bit(const unsigned char *a, unsigned i)
{
	return (a[i / 8] >> (7 - i % 8)) & 1;
}

static void
check_block(const struct cidr *c)
{
	unsigned i, max;

	CHECK(c->family == AF_INET || c->family == AF_INET6);
	max = c->family == AF_INET ? 32 : 128;
	CHECK(c->prefix <= max);
	for (i = c->prefix; i < 128; i++)
		CHECK(bit(c->addr, i) == 0);
	CHECK(cidr_contains(c, c->family, c->addr));
}

/* Reference match of one address (already IPv4 if it was mapped). */
static int
ref_contains(const struct cidr *c, int family, const unsigned char *a)
{
	unsigned i;

	if (c->family != family)
		return 0;
	for (i = 0; i < c->prefix; i++)
		if (bit(c->addr, i) != bit(a, i))
			return 0;
	return 1;
}

/*
 * The three matchers and the reference agree on one address; returns
 * whether it matched.
 */
static int
check_match(const struct cidr_list *l, int family, const unsigned char *raw)
{
	static const unsigned char mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	unsigned char norm[16] = { 0 };
	int nfamily = family, ref = 0;
	size_t i;

	if (family == AF_INET)
		memcpy(norm, raw, 4);
	else if (memcmp(raw, mapped, 12) == 0) {
		memcpy(norm, raw + 12, 4);
		nfamily = AF_INET;
	} else
		memcpy(norm, raw, 16);
	for (i = 0; i < l->n; i++) {
		int r = cidr_contains(&l->v[i], family, raw);

		CHECK(r == ref_contains(&l->v[i], nfamily, norm));
		ref |= r;
	}
	CHECK(cidr_match_addr(l, family, raw) == ref);
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, raw, 4);
	} else {
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, raw, 16);
	}
	CHECK(cidr_match_sockaddr(l, (struct sockaddr *)&ss) == ref);
	return ref;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cidr c, keep;
	struct cidr_list list = { NULL, 0 };
	unsigned char raw[16] = { 0 };
	char why[256], *text;
	size_t i;
	int v4;

	text = malloc(size + 1);
	CHECK(text != NULL);
	memcpy(text, data, size);
	text[size] = '\0';

	memset(&c, 0x5a, sizeof(c));
	keep = c;
	if (cidr_parse(text, &c, why, sizeof(why)) == 0)
		check_block(&c);
	else {
		CHECK(memchr(why, '\0', sizeof(why)) != NULL);
		CHECK(memcmp(&c, &keep, sizeof(c)) == 0);
	}

	if (cidr_list_parse(text, &list, why, sizeof(why)) == 0) {
		CHECK((list.n == 0) == (list.v == NULL));
		for (i = 0; i < list.n; i++)
			check_block(&list.v[i]);
	} else
		CHECK(list.n == 0 && list.v == NULL);

	memcpy(raw, data, size < 16 ? size : 16);
	v4 = check_match(&list, AF_INET, raw);
	check_match(&list, AF_INET6, raw);
	/* The same IPv4 address, mapped, must match the same way. */
	memmove(raw + 12, raw, 4);
	memset(raw, 0, 10);
	raw[10] = raw[11] = 0xff;
	CHECK(check_match(&list, AF_INET6, raw) == v4);
	cidr_list_clear(&list);
	free(text);
	return 0;
}
