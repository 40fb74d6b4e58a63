/*
 * coro.c - coroutines on an event loop (coro.h).
 *
 * A switch saves the running context with getcontext and jumps with
 * setcontext; swapcontext would do both, but AddressSanitizer warns on
 * every program that calls it.  The sanitizers are told of each switch
 * (their fiber interfaces), so that they follow the stacks: the stack of
 * a finished function is unpoisoned before the next one uses it.
 */
#include "lib/coro.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/util.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORO_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define CORO_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define CORO_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define CORO_TSAN 1
#endif
#ifdef CORO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#include <sanitizer/lsan_interface.h>
#endif
#ifdef CORO_TSAN
#include <sanitizer/tsan_interface.h>
#endif

/*
 * A function's deepest stack: libpq's, c-ares's and OpenSSL's calls (a
 * TLS handshake to the database) with the store's own frames above them.
 * Pages are taken as the stack grows; one guard page below catches an
 * overflow.
 */
#define CORO_STACK	(512 * 1024)

enum coro_state { CORO_IDLE, CORO_RUNNING, CORO_WAITING, CORO_DONE };

/* A wait of coro_poll: its descriptors and the one who waits. */
struct coro_wait {
	struct coro *c;
	struct pollfd *pfd;
	nfds_t n;
	int timeout_ms;
	int ready;
};

struct coro {
	struct event_base *base;
	ucontext_t ctx, loop;		/* its own, and the loop's where it left it */
	char *map;			/* guard page, then the stack */
	size_t maplen;
	enum coro_state state;
	void (*fn)(void *);
	void (*finished)(void *);
	void *arg;
	struct coro_wait *wait;		/* while CORO_WAITING */
#ifdef CORO_ASAN
	void *fake_stack;
	const void *loop_stack;
	size_t loop_stack_size;
#endif
#ifdef CORO_TSAN
	void *fiber, *loop_fiber;
#endif
};

/* The coroutine running on this thread, if any. */
static __thread struct coro *coro_current;

/* The stack: CORO_STACK bytes above the guard page. */
static char *
coro_stack(struct coro *c)
{
	return c->map + (c->maplen - CORO_STACK);
}

struct coro *
coro_new(struct event_base *base)
{
	struct coro *c = xcalloc(1, sizeof(*c));
	long page = sysconf(_SC_PAGESIZE);

	c->base = base;
	c->maplen = CORO_STACK + (size_t)page;
	c->map = mmap(NULL, c->maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
	    MAP_NORESERVE, -1, 0);
	if (c->map == MAP_FAILED)
		fatal("coroutine stack: %s", strerror(errno));
	if (mprotect(c->map, (size_t)page, PROT_NONE) != 0)
		fatal("coroutine guard page: %s", strerror(errno));
#ifdef CORO_ASAN
	/* What a waiting function's frames point to is not leaked. */
	__lsan_register_root_region(coro_stack(c), CORO_STACK);
#endif
#ifdef CORO_TSAN
	c->fiber = __tsan_create_fiber(0);
#endif
	return c;
}

void
coro_free(struct coro **cp)
{
	struct coro *c = *cp;

	if (c == NULL)
		return;
	if (c->state != CORO_IDLE)
		fatal("coroutine freed while it runs");
#ifdef CORO_ASAN
	__lsan_unregister_root_region(coro_stack(c), CORO_STACK);
#endif
#ifdef CORO_TSAN
	__tsan_destroy_fiber(c->fiber);
#endif
	munmap(c->map, c->maplen);
	free(c);
	*cp = NULL;
}

int
coro_busy(const struct coro *c)
{
	return c->state != CORO_IDLE;
}

/* From the loop into c, until it waits or ends. */
static void
coro_enter(struct coro *c)
{
	volatile int back = 0;
#ifdef CORO_ASAN
	void *fake = NULL;
	char *stack = coro_stack(c);
#endif

	coro_current = c;
	c->state = CORO_RUNNING;
	getcontext(&c->loop);
	if (back)
		goto returned;
	back = 1;
#ifdef CORO_ASAN
	__sanitizer_start_switch_fiber(&fake, stack, CORO_STACK);
#endif
#ifdef CORO_TSAN
	c->loop_fiber = __tsan_get_current_fiber();
	__tsan_switch_to_fiber(c->fiber, 0);
#endif
	setcontext(&c->ctx);
returned:
#ifdef CORO_ASAN
	__sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
	coro_current = NULL;
	if (c->state == CORO_DONE) {
		c->state = CORO_IDLE;
		c->finished(c->arg);
	}
}

/* From c back to the loop; returns when the loop resumes c (not at its end). */
static void
coro_leave(struct coro *c, enum coro_state state)
{
	volatile int back = 0;

	c->state = state;
	getcontext(&c->ctx);
	if (back) {
#ifdef CORO_ASAN
		__sanitizer_finish_switch_fiber(c->fake_stack, &c->loop_stack,
		    &c->loop_stack_size);
#endif
		return;
	}
	back = 1;
#ifdef CORO_ASAN
	/* At the end, no fake stack to keep: the function's frames are gone. */
	__sanitizer_start_switch_fiber(state == CORO_DONE ? NULL : &c->fake_stack,
	    c->loop_stack, c->loop_stack_size);
#endif
#ifdef CORO_TSAN
	__tsan_switch_to_fiber(c->loop_fiber, 0);
#endif
	setcontext(&c->loop);
}

static void
coro_main(void)
{
	struct coro *c = coro_current;

#ifdef CORO_ASAN
	__sanitizer_finish_switch_fiber(NULL, &c->loop_stack, &c->loop_stack_size);
#endif
	c->fn(c->arg);
	coro_leave(c, CORO_DONE);
}

void
coro_start(struct coro *c, void (*fn)(void *), void (*finished)(void *), void *arg)
{
	char *stack = coro_stack(c);

	if (c->state != CORO_IDLE)
		fatal("coroutine started while it runs");
#ifdef CORO_ASAN
	/* What the last function left poisoned on the stack (its frames' redzones). */
	__asan_unpoison_memory_region(stack, CORO_STACK);
#endif
	getcontext(&c->ctx);
	c->ctx.uc_stack.ss_sp = stack;
	c->ctx.uc_stack.ss_size = CORO_STACK;
	c->ctx.uc_link = NULL;
	makecontext(&c->ctx, coro_main, 0);
	c->fn = fn;
	c->finished = finished;
	c->arg = arg;
	coro_enter(c);
}

struct coro_watch {
	struct coro_wait *w;
	struct pollfd *pfd;
	struct event *ev;
};

static void
coro_resume(struct coro_wait *w)
{
	if (w->ready++ == 0 && w->c->state == CORO_WAITING)
		coro_enter(w->c);
}

static void
coro_on_fd(evutil_socket_t fd, short what, void *arg)
{
	struct coro_watch *cw = arg;

	(void)fd;
	if (what & EV_READ)
		cw->pfd->revents |= cw->pfd->events & POLLIN ? POLLIN : POLLHUP;
	if (what & EV_WRITE)
		cw->pfd->revents |= POLLOUT;
	coro_resume(cw->w);
}

static void
coro_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	coro_resume(arg);
}

int
coro_poll(struct pollfd *pfd, nfds_t n, int timeout_ms)
{
	struct coro *c = coro_current;
	struct coro_wait w = { .c = c, .pfd = pfd, .n = n, .timeout_ms = timeout_ms };
	struct coro_watch *cw;
	struct event *timer = NULL;
	int found = 0;

	if (c == NULL || timeout_ms == 0)
		return poll(pfd, n, timeout_ms);
	cw = xcalloc(n ? n : 1, sizeof(*cw));
	for (nfds_t i = 0; i < n; i++) {
		short what = (pfd[i].events & POLLIN ? EV_READ : 0) |
		    (pfd[i].events & POLLOUT ? EV_WRITE : 0);

		pfd[i].revents = 0;
		if (pfd[i].fd < 0)
			continue;
		cw[i] = (struct coro_watch){ .w = &w, .pfd = &pfd[i] };
		/* A descriptor with nothing asked still reports its end, as poll does. */
		cw[i].ev = event_new(c->base, pfd[i].fd, what ? what : EV_READ, coro_on_fd, &cw[i]);
		if (cw[i].ev == NULL || event_add(cw[i].ev, NULL) != 0)
			fatal("coroutine: cannot watch descriptor %d", pfd[i].fd);
	}
	if (timeout_ms > 0) {
		struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };

		timer = evtimer_new(c->base, coro_on_timeout, &w);
		if (timer == NULL || evtimer_add(timer, &tv) != 0)
			fatal("coroutine: cannot set a timer");
	}
	c->wait = &w;
	coro_leave(c, CORO_WAITING);
	c->wait = NULL;
	for (nfds_t i = 0; i < n; i++) {
		if (cw[i].ev)
			event_free(cw[i].ev);
		found += pfd[i].revents != 0;
	}
	if (timer)
		event_free(timer);
	free(cw);
	return found;
}

void
coro_sleep(int ms)
{
	coro_poll(NULL, 0, ms);
}

int
coro_run_out(struct coro *c, int64_t deadline)
{
	while (c->state == CORO_WAITING) {
		struct coro_wait *w = c->wait;
		int timeout = w->timeout_ms, ours = 0;

		if (deadline >= 0) {
			int64_t left = deadline - monotonic_ms();

			if (left <= 0)
				return -1;
			if (timeout < 0 || left < timeout)
				timeout = (int)(left < INT_MAX ? left : INT_MAX), ours = 1;
		}
		/* A failure: as if the time ran out. */
		if (poll(w->pfd, w->n, timeout) <= 0 && ours)
			continue;	/* our time, not the coroutine's: the deadline decides */
		coro_resume(w);
	}
	return 0;
}
