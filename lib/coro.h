/*
 * coro.h - code that waits for descriptors, run on an event loop without
 * blocking it.
 *
 * A coroutine runs one function at a time on a stack of its own, on the
 * loop's thread.  Where the function waits for a descriptor (coro_poll),
 * the coroutine hands the thread back to the loop, which resumes it when
 * the descriptor is ready or the wait has timed out.  Outside a coroutine
 * (a worker thread, a command-line program) coro_poll is poll(2), so one
 * piece of code that waits serves both.
 */
#ifndef UMBOX_CORO_H
#define UMBOX_CORO_H

#include <poll.h>
#include <stdint.h>

struct event_base;
struct coro;

/* A coroutine of base's loop, idle. */
struct coro *coro_new(struct event_base *base);
/* Only while idle. */
void coro_free(struct coro **c);

/*
 * Start fn(arg) on the idle coroutine c; it runs until its first wait or
 * its end.  When fn returns, finished(arg) runs on the loop's own stack,
 * and c is idle again: finished may start the next function on it.
 */
void coro_start(struct coro *c, void (*fn)(void *), void (*finished)(void *), void *arg);
int coro_busy(const struct coro *c);
/*
 * When the loop no longer runs (shutting down): wait in poll(2) for what
 * c waits for, resuming it, until its function has ended (0), or until
 * deadline (monotonic_ms(); -1: none) has passed with c still waiting
 * (-1: c is left as it is, waiting, and must not be freed).
 */
int coro_run_out(struct coro *c, int64_t deadline);

/*
 * poll(2) for the coroutine running on this thread, if any: it waits on
 * its loop meanwhile.  A timeout of 0 never waits, and then never yields.
 * Returns the number of descriptors with events (revents set), 0 when
 * the time ran out, or -1 with errno set.
 */
int coro_poll(struct pollfd *pfd, nfds_t n, int timeout_ms);
/* Wait ms milliseconds: coro_poll with nothing to watch. */
void coro_sleep(int ms);

#endif
