/*
 * test_completion.c - the thread-to-loop completion queue: every item
 * posted from any thread runs once, on the loop's thread, in the order
 * each thread posted them; and the worker pool that rides on it.
 */
#include "testutil.h"

#include <pthread.h>

#include <event2/event.h>

#include "lib/completion.h"
#include "lib/worker.h"

#define POSTERS		4
#define PER_POSTER	5000

struct item {
	struct completion_item ci;
	int poster;
	int seq;
};

struct ctx {
	struct event_base *base;
	struct completion_queue *q;
	pthread_t loop_thread;
	int ran;
	int wrong_thread;
	int last_seq[POSTERS];
	int out_of_order;
	int expect;
};

static struct ctx *the_ctx;

static void
item_run(struct completion_item *ci)
{
	struct item *it = COMPLETION_OWNER(ci, struct item, ci);
	struct ctx *c = the_ctx;

	if (!pthread_equal(pthread_self(), c->loop_thread))
		c->wrong_thread++;
	if (it->seq != c->last_seq[it->poster] + 1)
		c->out_of_order++;
	c->last_seq[it->poster] = it->seq;
	c->ran++;
	free(it);
	if (c->ran == c->expect)
		event_base_loopbreak(c->base);
}

struct poster {
	struct ctx *c;
	int id;
};

static void *
poster_main(void *arg)
{
	struct poster *p = arg;

	for (int i = 0; i < PER_POSTER; i++) {
		struct item *it = calloc(1, sizeof(*it));

		it->ci.fn = item_run;
		it->poster = p->id;
		it->seq = i;
		completion_post(p->c->q, &it->ci);
		if (i % 1000 == 0)
			usleep(1000);	/* let the loop drain so it sleeps and wakes again */
	}
	return NULL;
}

static void
test_items_from_threads_run_on_the_loop(void **state)
{
	struct ctx c = { 0 };
	struct poster p[POSTERS];
	pthread_t th[POSTERS];

	(void)state;
	the_ctx = &c;
	c.base = event_base_new();
	c.loop_thread = pthread_self();
	c.q = completion_queue_new(c.base);
	assert_non_null(c.q);
	c.expect = POSTERS * PER_POSTER;
	for (int i = 0; i < POSTERS; i++) {
		c.last_seq[i] = -1;
		p[i].c = &c;
		p[i].id = i;
		assert_int_equal(pthread_create(&th[i], NULL, poster_main, &p[i]), 0);
	}
	event_base_dispatch(c.base);
	for (int i = 0; i < POSTERS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(c.ran, c.expect);
	assert_int_equal(c.wrong_thread, 0);
	assert_int_equal(c.out_of_order, 0);
	completion_queue_free(&c.q);
	assert_null(c.q);
	event_base_free(c.base);
}

static void
test_free_runs_what_is_left(void **state)
{
	struct ctx c = { 0 };

	(void)state;
	the_ctx = &c;
	c.base = event_base_new();
	c.loop_thread = pthread_self();
	c.q = completion_queue_new(c.base);
	c.last_seq[0] = -1;
	c.expect = -1;
	for (int i = 0; i < 10; i++) {
		struct item *it = calloc(1, sizeof(*it));

		it->ci.fn = item_run;
		it->seq = i;
		completion_post(c.q, &it->ci);
	}
	/* Never dispatched: freeing the queue still runs all ten. */
	completion_queue_free(&c.q);
	assert_int_equal(c.ran, 10);
	assert_int_equal(c.out_of_order, 0);
	event_base_free(c.base);
}

struct job {
	struct worker_job job;
	struct event_base *base;
	int *done, *cancelled, expect;
	int worked;
	pthread_t loop_thread;
	int *wrong_thread;
};

static void
job_work(struct worker_job *j)
{
	((struct job *)j)->worked = 1;
}

static void
job_done(struct worker_job *j, int cancelled)
{
	struct job *x = (struct job *)j;

	if (!pthread_equal(pthread_self(), x->loop_thread))
		(*x->wrong_thread)++;
	if (cancelled)
		(*x->cancelled)++;
	if (++*x->done == x->expect)
		event_base_loopbreak(x->base);
	free(x);
}

static void
test_worker_pool(void **state)
{
	struct event_base *base = event_base_new();
	struct worker_pool *p = worker_pool_new(base, 3);
	int done = 0, cancelled = 0, wrong = 0;

	(void)state;
	for (int i = 0; i < 200; i++) {
		struct job *x = calloc(1, sizeof(*x));

		x->job.work = job_work;
		x->job.done = job_done;
		x->base = base;
		x->done = &done;
		x->cancelled = &cancelled;
		x->expect = 200;
		x->loop_thread = pthread_self();
		x->wrong_thread = &wrong;
		worker_submit(p, &x->job);
		if (i == 199)
			worker_cancel(&x->job);
	}
	event_base_dispatch(base);
	assert_int_equal(done, 200);
	assert_int_equal(cancelled, 1);
	assert_int_equal(wrong, 0);
	worker_pool_free(&p);
	assert_null(p);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_items_from_threads_run_on_the_loop),
		cmocka_unit_test(test_free_runs_what_is_left),
		cmocka_unit_test(test_worker_pool),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
