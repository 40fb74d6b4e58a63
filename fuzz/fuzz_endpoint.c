/*
 * fuzz_endpoint.c - libFuzzer target for lib/endpoint.c.
 *
 * The first input byte picks the mode (bit 0: default port 53 instead of
 * a required port; bit 1: ENDPOINT_IP_ONLY); the rest, NUL-terminated in
 * a heap buffer of exactly its size, is parsed as one endpoint and as a
 * list.  Beyond "does not crash": a refused endpoint leaves its output
 * alone, an accepted one has a host and a port in range, and it formats
 * to text that parses back, in the strictest mode, to the same endpoint.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/endpoint.h"

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_endpoint: %s:%d: check failed: %s\n", \
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What every accepted endpoint must look like, and its round trip. */
static void
check_endpoint(const struct config_endpoint *ep, unsigned flags)
{
	struct config_endpoint back;
	char text[ENDPOINT_TEXT_MAX], why[256];
	size_t n = strnlen(ep->host, sizeof(ep->host));

	CHECK(n > 0 && n < sizeof(ep->host));
	CHECK(ep->port != 0);
	endpoint_format(ep, text, sizeof(text));
	/* A required port and the same host rules: the text says it all. */
	CHECK(endpoint_parse(text, 0, flags, &back, why, sizeof(why)) == 0);
	CHECK(strcmp(back.host, ep->host) == 0);
	CHECK(back.port == ep->port);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_endpoint ep, keep;
	struct config_endpoints list = { NULL, 0 };
	uint16_t def;
	unsigned flags;
	char why[256], *text;
	size_t i, commas = 0;

	if (size == 0)
		return 0;
	def = (data[0] & 1) ? 53 : 0;
	flags = (data[0] & 2) ? ENDPOINT_IP_ONLY : 0;
	text = malloc(size);
	CHECK(text != NULL);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';

	memset(&ep, 0xa5, sizeof(ep));
	keep = ep;
	if (endpoint_parse(text, def, flags, &ep, why, sizeof(why)) == 0)
		check_endpoint(&ep, flags);
	else {
		CHECK(memchr(why, '\0', sizeof(why)) != NULL);
		CHECK(memcmp(&ep, &keep, sizeof(ep)) == 0);
	}

	if (endpoint_list_parse(text, def, flags, &list, why, sizeof(why)) == 0) {
		for (i = 0; text[i] != '\0'; i++)
			commas += text[i] == ',';
		CHECK(list.n <= commas + 1);
		CHECK((list.n == 0) == (list.v == NULL));
		for (i = 0; i < list.n; i++)
			check_endpoint(&list.v[i], flags);
	} else
		CHECK(list.n == 0 && list.v == NULL);
	endpoint_list_clear(&list);
	free(text);
	return 0;
}
