/*
 * completion.c - the thread-to-loop completion queue.
 *
 * Posting appends under the mutex and writes the eventfd only when the
 * list was empty: one wakeup for a burst of items.  The loop reads the
 * eventfd first and takes the list second, so an item appended after the
 * take always finds the list empty again and wakes the loop itself.
 */
#include "completion.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "util.h"

struct completion_queue {
	pthread_mutex_t lock;
	struct completion_item *head, **tail;
	int efd;
	struct event *ev;
};

static void
completion_on_event(evutil_socket_t fd, short what, void *arg)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	completion_run(arg);
}

struct completion_queue *
completion_queue_new(struct event_base *base)
{
	struct completion_queue *q = xcalloc(1, sizeof(*q));

	q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q->efd < 0) {
		int e = errno;

		free(q);
		errno = e;
		return NULL;
	}
	pthread_mutex_init(&q->lock, NULL);
	q->tail = &q->head;
	q->ev = event_new(base, q->efd, EV_READ | EV_PERSIST, completion_on_event, q);
	if (q->ev == NULL || event_add(q->ev, NULL) != 0)
		fatal("completion: cannot watch an eventfd");
	return q;
}

void
completion_post(struct completion_queue *q, struct completion_item *item)
{
	uint64_t one = 1;
	int was_empty;

	item->next = NULL;
	pthread_mutex_lock(&q->lock);
	was_empty = q->head == NULL;
	*q->tail = item;
	q->tail = &item->next;
	pthread_mutex_unlock(&q->lock);
	if (!was_empty)
		return;
	/* Only EINTR can fail here: the counter cannot reach its maximum. */
	while (write(q->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

void
completion_run(struct completion_queue *q)
{
	struct completion_item *item, *next;

	pthread_mutex_lock(&q->lock);
	item = q->head;
	q->head = NULL;
	q->tail = &q->head;
	pthread_mutex_unlock(&q->lock);
	for (; item; item = next) {
		next = item->next;	/* fn may free the item */
		item->fn(item);
	}
}

void
completion_queue_free(struct completion_queue **qp)
{
	struct completion_queue *q = *qp;

	if (q == NULL)
		return;
	completion_run(q);
	event_free(q->ev);
	close(q->efd);
	pthread_mutex_destroy(&q->lock);
	free(q);
	*qp = NULL;
}
