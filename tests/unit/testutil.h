/*
 * testutil.h - helpers for the cmocka unit tests: temp dirs and stores.
 */
#ifndef UMBOX_TESTUTIL_H
#define UMBOX_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

/* A fresh directory under $TMPDIR; removed by tu_rmdir. */
static inline char *
tu_tempdir(void)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *p;

	if (asprintf(&p, "%s/umbox-test.XXXXXX", base) < 0 || mkdtemp(p) == NULL)
		abort();
	return p;
}

static inline void
tu_rmdir(char *dir)
{
	char *cmd;

	if (asprintf(&cmd, "rm -rf '%s'", dir) >= 0) {
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
		free(cmd);
	}
	free(dir);
}

static inline char *
tu_path(const char *dir, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		abort();
	return p;
}

#endif
