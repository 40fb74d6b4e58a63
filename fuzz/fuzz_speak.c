/*
 * fuzz_speak.c - libFuzzer target for speak_text_of_message()
 * (aliases/speak.c).
 *
 * Input: any bytes, taken as a whole message (a heap copy of exactly
 * those bytes, so ASan sees any overread).  The function must either fail
 * with a sentence in err and no text, or give text that
 *   - is valid UTF-8 and shorter than SPEAK_TEXT_MAX bytes;
 *   - has no control characters (no line ends, no NUL inside);
 *   - starts "Message from " and ends " End of message.";
 *   - is the same when asked twice (no hidden state).
 * Synthesis is not fuzzed: espeak-ng is outside the project.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "aliases/speak.h"

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_speak: %s:%d: check failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char tail[] = " End of message.";
	char err[SPEAK_ERR_MAX] = "";
	char *msg = malloc(size ? size : 1);
	char *out = NULL, *again = NULL;
	size_t n;

	if (msg == NULL)
		return 0;
	memcpy(msg, data, size);
	if (speak_text_of_message(msg, size, &out, err, sizeof(err)) != 0) {
		CHECK(out == NULL);
		CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
		free(msg);
		return 0;
	}
	CHECK(out != NULL);
	n = strlen(out);
	CHECK(n < SPEAK_TEXT_MAX);
	CHECK(g_utf8_validate(out, (gssize)n, NULL));
	for (size_t i = 0; i < n; i++)
		CHECK((unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
	CHECK(strncmp(out, "Message from ", 13) == 0);
	CHECK(n >= sizeof(tail) - 1 && strcmp(out + n - (sizeof(tail) - 1), tail) == 0);
	CHECK(strstr(out, "  ") == NULL);

	CHECK(speak_text_of_message(msg, size, &again, err, sizeof(err)) == 0);
	CHECK(strcmp(out, again) == 0);
	free(again);
	free(out);
	free(msg);
	return 0;
}
