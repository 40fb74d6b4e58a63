/*
 * conn.c - connection plumbing shared by umbox-smtpd and umbox-pop3d.
 */
#include "conn.h"

#include <stddef.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "tls.h"

#define CONN_CLOSE_POLL_MS	20
#define CONN_CLOSE_POLLS	500	/* 10 s for the last reply to go out */

static void
conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	void (*fn)(struct conn *) = c->timer_fn;

	c->timer_fn = NULL;
	if (fn)
		fn(c);
}

static void
conn_on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (!c->freeing)
		c->on_resume(c);
}

static void
conn_on_free(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	c->on_free(c);
}

void
conn_init(struct conn *c, struct event_base *base, void (*on_resume)(struct conn *),
    void (*on_free)(struct conn *))
{
	c->timer = evtimer_new(base, conn_on_timer, c);
	c->resume_ev = event_new(base, -1, 0, conn_on_resume, c);
	c->free_ev = event_new(base, -1, 0, conn_on_free, c);
	c->on_resume = on_resume;
	c->on_free = on_free;
}

void
conn_set_timer(struct conn *c, unsigned ms, void (*fn)(struct conn *))
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	c->timer_fn = fn;
	evtimer_add(c->timer, &tv);
}

void
conn_cancel_timer(struct conn *c)
{
	c->timer_fn = NULL;
	evtimer_del(c->timer);
}

void
conn_resume_later(struct conn *c)
{
	if (!c->freeing)
		event_active(c->resume_ev, 0, 0);
}

void
conn_free_later(struct conn *c)
{
	if (c->freeing)
		return;
	c->freeing = 1;
	if (c->bev)
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	evtimer_del(c->timer);
	event_del(c->resume_ev);
	event_active(c->free_ev, 0, 0);
}

static void
conn_close_poll(struct conn *c)
{
	if (tls_bev_unsent(c->bev) == 0 || ++c->close_polls > CONN_CLOSE_POLLS) {
		conn_free_later(c);
		return;
	}
	conn_set_timer(c, CONN_CLOSE_POLL_MS, conn_close_poll);
}

void
conn_close(struct conn *c)
{
	if (c->closing || c->freeing)
		return;
	c->closing = 1;
	if (c->bev)
		bufferevent_disable(c->bev, EV_READ);
	conn_close_poll(c);
}

void
conn_clear(struct conn *c)
{
	if (c->bev)
		bufferevent_free(c->bev);
	c->bev = NULL;
	event_free(c->timer);
	event_free(c->resume_ev);
	event_free(c->free_ev);
}
