/*
 * worker.c - a fixed pool of threads with a job queue; finished jobs go back
 * to the loop through a completion queue.
 */
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "completion.h"
#include "util.h"

struct worker_pool {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct worker_job *queue, **queue_tail;
	struct completion_queue *done;
	pthread_t *threads;
	struct worker_thread {
		struct worker_pool *pool;
		void *ctx;
	} *ctx;
	int nthreads;
	int stop;
};

static void *
worker_main(void *arg)
{
	struct worker_thread *t = arg;
	struct worker_pool *p = t->pool;

	for (;;) {
		struct worker_job *job;

		pthread_mutex_lock(&p->lock);
		while (p->queue == NULL && !p->stop)
			pthread_cond_wait(&p->wake, &p->lock);
		if (p->queue == NULL) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		job = p->queue;
		p->queue = job->next;
		if (p->queue == NULL)
			p->queue_tail = &p->queue;
		pthread_mutex_unlock(&p->lock);

		/* A job whose owner went away is not worth the CPU (a yescrypt check). */
		if (!__atomic_load_n(&job->cancelled, __ATOMIC_ACQUIRE)) {
			job->ctx = t->ctx;
			job->work(job);
		}
		completion_post(p->done, &job->finished);
	}
}

/* On the loop: the job's own done(), which may free it. */
static void
worker_finished(struct completion_item *item)
{
	struct worker_job *job = COMPLETION_OWNER(item, struct worker_job, finished);

	job->done(job, __atomic_load_n(&job->cancelled, __ATOMIC_ACQUIRE));
}

struct worker_pool *
worker_pool_new(struct event_base *base, int nthreads)
{
	return worker_pool_new_ctx(base, nthreads, "worker", NULL);
}

struct worker_pool *
worker_pool_new_ctx(struct event_base *base, int nthreads, const char *name, void *const *ctx)
{
	struct worker_pool *p = xcalloc(1, sizeof(*p));

	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	p->queue_tail = &p->queue;
	if ((p->done = completion_queue_new(base)) == NULL)
		fatal("eventfd: %s", strerror(errno));
	p->nthreads = nthreads;
	p->threads = xcalloc((size_t)nthreads, sizeof(*p->threads));
	p->ctx = xcalloc((size_t)nthreads, sizeof(*p->ctx));
	for (int i = 0; i < nthreads; i++) {
		p->ctx[i].pool = p;
		p->ctx[i].ctx = ctx ? ctx[i] : NULL;
		if (pthread_create(&p->threads[i], NULL, worker_main, &p->ctx[i]) != 0)
			fatal("cannot start a %s thread", name);
		pthread_setname_np(p->threads[i], name);
	}
	return p;
}

void
worker_submit(struct worker_pool *p, struct worker_job *job)
{
	job->next = NULL;
	job->cancelled = 0;
	job->finished.fn = worker_finished;
	pthread_mutex_lock(&p->lock);
	*p->queue_tail = job;
	p->queue_tail = &job->next;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
}

void
worker_cancel(struct worker_job *job)
{
	__atomic_store_n(&job->cancelled, 1, __ATOMIC_RELEASE);
}

void
worker_pool_free(struct worker_pool **pp)
{
	struct worker_pool *p = *pp;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = 1;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	completion_queue_free(&p->done);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->wake);
	free(p->threads);
	free(p->ctx);
	free(p);
	*pp = NULL;
}
