/*
 * completion.h - handing finished work from threads back to an event loop.
 *
 * A thread that did something for the loop (a password check, a group
 * commit) posts an item; the loop runs the item's callback on its own
 * thread, in the order items were posted.  The queue is an eventfd that
 * the loop watches and a mutex-protected list of items, which live inside
 * the caller's own objects (intrusive: posting allocates nothing).
 */
#ifndef UMBOX_COMPLETION_H
#define UMBOX_COMPLETION_H

#include <stddef.h>

struct event_base;
struct completion_queue;

struct completion_item {
	/* Runs on the loop's thread; may free the object the item lives in. */
	void (*fn)(struct completion_item *item);
	struct completion_item *next;	/* the queue's */
};

/* The object an item is embedded in: COMPLETION_OWNER(item, struct job, done). */
#define COMPLETION_OWNER(item, type, member) \
	((type *)(void *)((char *)(item) - offsetof(type, member)))

/*
 * A queue whose callbacks run on base's thread; base must outlive it.
 * NULL when no eventfd could be made (errno says why).
 */
struct completion_queue *completion_queue_new(struct event_base *base);

/* From any thread: run item->fn on the loop soon.  item->fn must be set. */
void completion_post(struct completion_queue *q, struct completion_item *item);

/*
 * On the loop's thread: run every item posted so far.  The loop does
 * this by itself; an owner calls it when it stops, after its threads
 * have finished, so that no item is left behind.
 */
void completion_run(struct completion_queue *q);

/* On the loop's thread, once no thread posts any more: run what is left, free. */
void completion_queue_free(struct completion_queue **q);

#endif
