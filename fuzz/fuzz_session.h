/*
 * fuzz_session.h - what the session targets share: a data directory (on
 * tmpfs when there is one, removed when the process exits), and driving
 * one session's bytes through its loop.
 */
#ifndef UMBOX_FUZZ_SESSION_H
#define UMBOX_FUZZ_SESSION_H

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/conn.h"
#include "lib/server.h"

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

/*
 * The input is all in and nothing came out: a session waiting on its
 * timer (a failed login's delay, the greeting pause, an idle timeout)
 * gets it now, so such an input costs a few rounds, not seconds.
 */
static void
fuzz_fast_forward(struct server_loop *loop)
{
	for (struct conn *x = loop->conns; x; x = x->next)
		if (x->timer && evtimer_pending(x->timer, NULL))
			event_active(x->timer, EV_TIMEOUT, 1);
}

/*
 * Write data to the session on the other end of fd (its side of a
 * socketpair) and run the loop, 2 ms a round, until the session is gone
 * or rounds have passed; what it answers is read and dropped.  Then any
 * session still there is closed as a shutdown would, and fd too.
 */
static void
fuzz_drive(struct server_loop *loop, int fd, const uint8_t *data, size_t size, int rounds)
{
	static char sink[65536];
	size_t off = 0;

	for (int round = 0; round < rounds && loop->nconns > 0; round++) {
		struct timeval tick = { 0, 2000 };
		ssize_t got = 0, r;

		if (off < size && (r = write(fd, data + off, size - off)) > 0)
			off += (size_t)r;
		if (off >= size)
			shutdown(fd, SHUT_WR);
		while ((r = read(fd, sink, sizeof(sink))) > 0)
			got += r;
		if (off >= size && got == 0)
			fuzz_fast_forward(loop);
		event_base_loopexit(loop->base, &tick);
		event_base_loop(loop->base, 0);
	}
	for (struct conn *x = loop->conns; x; x = x->next)
		conn_close(x);
	for (int round = 0; round < 1000 && loop->nconns > 0; round++)
		event_base_loop(loop->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	close(fd);
}

#endif
