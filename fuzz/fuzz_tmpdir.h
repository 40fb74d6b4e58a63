/*
 * fuzz_tmpdir.h - a session target's data directory: on tmpfs when there
 * is one, removed with everything in it when the process exits.
 */
#ifndef UMBOX_FUZZ_TMPDIR_H
#define UMBOX_FUZZ_TMPDIR_H

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char fuzz_dir[PATH_MAX];

static int
fuzz_tmpdir_rm(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st, (void)type, (void)ftw;
	remove(path);
	return 0;
}

static void
fuzz_tmpdir_gone(void)
{
	nftw(fuzz_dir, fuzz_tmpdir_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* A new directory named after name; its path, or abort(). */
static const char *
fuzz_tmpdir(const char *name)
{
	snprintf(fuzz_dir, sizeof(fuzz_dir), "/dev/shm/umbox-fuzz-%s.XXXXXX", name);
	if (mkdtemp(fuzz_dir) == NULL) {
		snprintf(fuzz_dir, sizeof(fuzz_dir), "/tmp/umbox-fuzz-%s.XXXXXX", name);
		if (mkdtemp(fuzz_dir) == NULL)
			abort();
	}
	atexit(fuzz_tmpdir_gone);
	return fuzz_dir;
}

#endif
