/*
 * fuzz_config.c - libFuzzer target for the configuration loader.
 *
 * Arbitrary bytes, copied and NUL-terminated, go to config_load_string();
 * whatever it makes of them must be freed cleanly by config_free().  An
 * embedded NUL simply ends the text early, as it would for the caller.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct umbox_config cfg;
	char err[1024];
	char *text;

	text = xmalloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	config_load_string(&cfg, text, "fuzz.conf", err, sizeof(err));
	/* The error text must always be a terminated string. */
	if (memchr(err, '\0', sizeof(err)) == NULL)
		abort();
	config_free(&cfg);
	free(text);
	return 0;
}
