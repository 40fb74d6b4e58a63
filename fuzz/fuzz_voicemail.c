/*
 * fuzz_voicemail.c - libFuzzer target for what umbox reads back from a
 * stored voicemail (aliases/voicemail.c) and from a failed row's error
 * (aliases/bounce.c): text that came over SMTP from anyone, or from an
 * outside server's reply.
 *
 * Input: any bytes, taken three ways, each from a heap copy of exactly
 * its length so ASan sees a read past the end:
 *   - as a header section for voicemail_info_parse(): every field must
 *     come back NUL-terminated within its size;
 *   - as a whole message for voicemail_attachment(): 0 with a buffer no
 *     longer than the input can decode to, or -1 with a message;
 *   - as a NUL-terminated last error for bounce_split_error(): the remote
 *     host is a NUL-terminated piece of the input and the diagnostic
 *     points inside it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aliases/bounce.h"
#include "aliases/voicemail.h"

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_voicemail: %s:%d: check failed: %s\n",\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct voicemail_info vi;
	char *copy = malloc(size ? size : 1), *text, *out, err[256], remote[300];
	const char *diag;
	size_t outlen;

	memcpy(copy, data, size);
	voicemail_info_parse(copy, size, &vi);
	CHECK(memchr(vi.caller, '\0', sizeof(vi.caller)) != NULL);
	CHECK(memchr(vi.caller_name, '\0', sizeof(vi.caller_name)) != NULL);

	if (voicemail_attachment(copy, size, &out, &outlen, err, sizeof(err)) == 0) {
		/* base64 and quoted-printable only shrink; identity keeps the size */
		CHECK(out != NULL && outlen <= size);
		free(out);
	} else {
		CHECK(out == NULL && memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
	}
	free(copy);

	text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	bounce_split_error(text, remote, sizeof(remote), &diag);
	CHECK(memchr(remote, '\0', sizeof(remote)) != NULL);
	CHECK(diag >= text && diag <= text + strlen(text));
	CHECK(remote[0] == '\0' || strstr(text, remote) != NULL);
	free(text);
	return 0;
}
