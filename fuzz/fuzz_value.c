/*
 * fuzz_value.c - libFuzzer target for lib/value.c.
 *
 * The input, NUL-terminated in a heap buffer of exactly its size, goes
 * through every parser and check of value.h.  Results are compared with
 * reference readings written differently on purpose (digits then suffix
 * by table, with 128-bit arithmetic), and the list walker must hand on
 * exactly the comma-separated, trimmed, non-empty items of the input.
 */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/value.h"

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_value: %s:%d: check failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Reference: the value of s as digits followed by at most one unit
 * character from units (each with its multiplier in mults), or -1 when s
 * is not of that form or the value does not fit 64 bits.
 */
static int
ref_number(const char *s, const char *units, const unsigned *mults,
    unsigned __int128 *out)
{
	unsigned __int128 v = 0;
	const char *p = s, *u;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (unsigned)(*p - '0');
		if (v > UINT64_MAX)
			return -1;
	}
	if (*p != '\0') {
		if ((u = strchr(units, *p)) == NULL || p[1] != '\0')
			return -1;
		v *= mults[u - units];
	}
	if (v > UINT64_MAX)
		return -1;
	*out = v;
	return 0;
}

struct walk {
	const char *text;
	size_t items;
};

/* Each item: non-empty, trimmed, comma-free, and found in the text. */
static int
item_cb(const char *item, void *arg, char *why, size_t whylen)
{
	struct walk *w = arg;
	size_t n = strlen(item);

	CHECK(n > 0 && n <= VALUE_ITEM_MAX);
	CHECK(strchr(item, ',') == NULL);
	CHECK(item[0] != ' ' && item[0] != '\t');
	CHECK(item[n - 1] != ' ' && item[n - 1] != '\t');
	CHECK(strstr(w->text, item) != NULL);
	w->items++;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned size_mults[] = {
		1024, 1024, 1024 * 1024, 1024 * 1024, 1024 * 1024 * 1024,
		1024 * 1024 * 1024
	};
	static const unsigned dur_mults[] = {
		1, 1, 60, 60, 3600, 3600, 86400, 86400
	};
	unsigned __int128 ref;
	struct walk w;
	unsigned char addr[16];
	uint64_t v;
	unsigned d;
	char why[256], *text;
	const char *r, *p;
	size_t commas = 0, blank;
	int family;

	text = malloc(size + 1);
	CHECK(text != NULL);
	memcpy(text, data, size);
	text[size] = '\0';

	r = value_parse_count(text, 0, UINT64_MAX, &v);
	CHECK((r == NULL) == (ref_number(text, "", NULL, &ref) == 0));
	CHECK(r != NULL || v == ref);

	r = value_parse_size(text, &v);
	CHECK((r == NULL) ==
	    (ref_number(text, "KkMmGg", size_mults, &ref) == 0));
	CHECK(r != NULL || v == ref);

	r = value_parse_duration(text, &d);
	CHECK((r == NULL) == (ref_number(text, "sSmMhHdD", dur_mults, &ref) ==
	    0 && ref <= UINT_MAX));
	CHECK(r != NULL || d == ref);

	if (value_is_domain(text)) {
		CHECK(strlen(text) >= 1 && strlen(text) <= 253);
		CHECK(strstr(text, "..") == NULL && text[0] != '.');
		CHECK(value_ip_literal(text, addr) == 0);
	}
	if (value_is_login(text))
		CHECK(value_is_node_id(text));
	(void)value_is_user(text);
	(void)value_is_voice(text);
	family = value_ip_literal(text, addr);
	CHECK(family == 0 || family == AF_INET || family == AF_INET6);

	w.text = text;
	w.items = 0;
	if (value_list_foreach(text, item_cb, &w, why, sizeof(why)) == 0) {
		for (p = text; *p != '\0'; p++)
			commas += *p == ',';
		blank = strspn(text, " \t");
		CHECK(w.items == (text[blank] == '\0' ? 0 : commas + 1));
	} else
		CHECK(memchr(why, '\0', sizeof(why)) != NULL);
	free(text);
	return 0;
}
