/*
 * replay.c - a fuzz target's inputs, each run once, without libFuzzer:
 * "replay-NAME FILE..." links NAME's LLVMFuzzerTestOneInput with the
 * ordinary build, so the test suite runs every target over its seeds
 * (fuzz/seeds/NAME) and a harness that no longer fits the code it drives
 * fails there, not at the next fuzzing session.  Exit 0 when every input
 * ran; a crash is the failure.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

int
main(int argc, char **argv)
{
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		uint8_t *buf = NULL;
		size_t len = 0, cap = 0, n;

		if (f == NULL) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			return 2;
		}
		do {
			if (len == cap && (buf = realloc(buf, cap = cap * 2 + 4096)) == NULL) {
				fprintf(stderr, "replay: out of memory\n");
				return 2;
			}
			n = fread(buf + len, 1, cap - len, f);
			len += n;
		} while (n > 0);
		fclose(f);
		/* Exactly len bytes, as libFuzzer gives: ASan sees a read past the end. */
		if ((buf = realloc(buf, len ? len : 1)) == NULL) {
			fprintf(stderr, "replay: out of memory\n");
			return 2;
		}
		LLVMFuzzerTestOneInput(buf, len);
		free(buf);
	}
	return 0;
}
