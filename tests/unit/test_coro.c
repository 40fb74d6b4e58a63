/*
 * test_coro.c - coroutines on a loop: a function that waits in coro_poll
 * gives the loop back, which goes on serving its other events and resumes
 * the function when its descriptor is ready or its time is up; outside a
 * coroutine coro_poll is poll(2); a function still waiting when the loop
 * stops is run out without it; a stack is used again and again.
 */
#include "testutil.h"

#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/coro.h"
#include "lib/util.h"

struct fx {
	struct event_base *base;
	struct coro *c;
	int pipe[2];		/* the coroutine reads [0]; the test writes [1] */
	int step;		/* how far the function got */
	int rc;			/* its last coro_poll's */
	short revents;
	char got[16];
	int finished;		/* finished() calls */
	int ticks;		/* the loop's own timer, while the function waits */
	int depth;		/* recursion in deep() */
};

static int
setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));

	f->base = event_base_new();
	f->c = coro_new(f->base);
	assert_int_equal(pipe2(f->pipe, O_NONBLOCK | O_CLOEXEC), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	coro_free(&f->c);
	event_base_free(f->base);
	close(f->pipe[0]);
	close(f->pipe[1]);
	free(f);
	return 0;
}

static void
finished(void *arg)
{
	struct fx *f = arg;

	assert_false(coro_busy(f->c));
	f->finished++;
}

/* Wait for the pipe (no time limit), read it, and end. */
static void
reader(void *arg)
{
	struct fx *f = arg;
	struct pollfd pfd = { .fd = f->pipe[0], .events = POLLIN };
	ssize_t n;

	f->step = 1;
	f->rc = coro_poll(&pfd, 1, -1);
	f->revents = pfd.revents;
	f->step = 2;
	n = read(f->pipe[0], f->got, sizeof(f->got) - 1);
	f->got[n > 0 ? n : 0] = '\0';
	f->step = 3;
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	struct fx *f = arg;

	(void)fd;
	(void)what;
	if (++f->ticks == 3)
		assert_int_equal(write(f->pipe[1], "ready", 5), 5);
}

static void
test_wait_gives_the_loop_back(void **state)
{
	struct fx *f = *state;
	struct event *t = event_new(f->base, -1, EV_PERSIST, tick, f);

	coro_start(f->c, reader, finished, f);
	/* It started at once, and waits now: coro_start has returned. */
	assert_int_equal(f->step, 1);
	assert_true(coro_busy(f->c));
	event_add(t, &(struct timeval){ 0, 10000 });
	while (f->finished == 0)
		event_base_loop(f->base, EVLOOP_ONCE);
	/* The loop ran its timer three times meanwhile; the third wrote. */
	assert_int_equal(f->ticks, 3);
	assert_int_equal(f->step, 3);
	assert_int_equal(f->rc, 1);
	assert_true(f->revents & POLLIN);
	assert_string_equal(f->got, "ready");
	assert_int_equal(f->finished, 1);
	event_free(t);
}

/* Two waits that time out, then one that never waits. */
static void
sleeper(void *arg)
{
	struct fx *f = arg;
	struct pollfd pfd = { .fd = f->pipe[0], .events = POLLIN };

	f->rc = coro_poll(&pfd, 1, 30);
	f->step = f->rc == 0 && pfd.revents == 0 ? 1 : -1;
	f->rc = coro_poll(NULL, 0, 20);
	f->step = f->rc == 0 && f->step == 1 ? 2 : -1;
	f->rc = coro_poll(&pfd, 1, 0);
	f->step = f->rc == 0 && f->step == 2 ? 3 : -1;
}

static void
test_time_runs_out(void **state)
{
	struct fx *f = *state;
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	coro_start(f->c, sleeper, finished, f);
	assert_int_equal(f->step, 0);
	while (f->finished == 0)
		event_base_loop(f->base, EVLOOP_ONCE);
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_int_equal(f->step, 3);
	assert_true((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 >= 50);
}

/* Outside a coroutine: poll itself, on this thread's stack. */
static void
test_outside_a_coroutine_it_is_poll(void **state)
{
	struct fx *f = *state;
	struct pollfd pfd = { .fd = f->pipe[0], .events = POLLIN };

	assert_int_equal(coro_poll(&pfd, 1, 10), 0);
	assert_int_equal(write(f->pipe[1], "x", 1), 1);
	assert_int_equal(coro_poll(&pfd, 1, 1000), 1);
	assert_true(pfd.revents & POLLIN);
}

/* Without the loop: what the function waits for is polled for it. */
static void *
late_writer(void *arg)
{
	struct fx *f = arg;

	usleep(20000);
	assert_int_equal(write(f->pipe[1], "late", 4), 4);
	return NULL;
}

static void
test_run_out_without_the_loop(void **state)
{
	struct fx *f = *state;
	pthread_t t;

	coro_start(f->c, reader, finished, f);
	assert_int_equal(f->step, 1);
	pthread_create(&t, NULL, late_writer, f);
	assert_int_equal(coro_run_out(f->c, -1), 0);
	pthread_join(t, NULL);
	assert_int_equal(f->step, 3);
	assert_string_equal(f->got, "late");
	assert_int_equal(f->finished, 1);
}

/*
 * A deadline that passes first leaves the function waiting, untouched;
 * running it out later still finishes it.
 */
static void
test_run_out_gives_up_at_the_deadline(void **state)
{
	struct fx *f = *state;
	int64_t t0;

	coro_start(f->c, reader, finished, f);
	t0 = monotonic_ms();
	assert_int_equal(coro_run_out(f->c, t0 + 50), -1);
	assert_true(monotonic_ms() - t0 >= 50);
	assert_true(coro_busy(f->c));
	assert_int_equal(f->step, 1);
	assert_int_equal(coro_run_out(f->c, t0), -1);	/* past already: at once */
	assert_int_equal(f->step, 1);
	assert_int_equal(write(f->pipe[1], "now", 3), 3);
	assert_int_equal(coro_run_out(f->c, monotonic_ms() + 5000), 0);
	assert_int_equal(f->step, 3);
	assert_string_equal(f->got, "now");
	assert_int_equal(f->finished, 1);
}

/* finished() may start the next function on the same stack. */
static void
counter(void *arg)
{
	struct fx *f = arg;

	coro_poll(NULL, 0, 1);
	f->step++;
}

static void
again(void *arg)
{
	struct fx *f = arg;

	if (++f->finished < 200)
		coro_start(f->c, counter, again, f);
}

static void
test_one_stack_many_functions(void **state)
{
	struct fx *f = *state;

	coro_start(f->c, counter, again, f);
	while (f->finished < 200)
		event_base_loop(f->base, EVLOOP_ONCE);
	assert_int_equal(f->step, 200);
	assert_false(coro_busy(f->c));
}

/* A deep stack (libpq, OpenSSL and our frames): 64 KiB of frames, waiting at the bottom. */
static int
deep(struct fx *f, int n)
{
	volatile char frame[1024];

	memset((char *)frame, n, sizeof(frame));
	if (n == 0) {
		coro_poll(NULL, 0, 1);
		return frame[0];
	}
	return deep(f, n - 1) + frame[1] - n;
}

static void
diver(void *arg)
{
	struct fx *f = arg;

	f->depth = deep(f, 64);
}

static void
test_deep_stack(void **state)
{
	struct fx *f = *state;

	f->depth = -1;
	coro_start(f->c, diver, finished, f);
	while (f->finished == 0)
		event_base_loop(f->base, EVLOOP_ONCE);
	assert_int_equal(f->depth, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_wait_gives_the_loop_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_time_runs_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outside_a_coroutine_it_is_poll, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_out_without_the_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_out_gives_up_at_the_deadline, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_one_stack_many_functions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deep_stack, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
