/*
 * conn.h - what every daemon connection needs besides its protocol.
 *
 * A bufferevent; one timer for deadlines and delays; a deferred resume,
 * which takes up waiting input on the next loop turn rather than from
 * inside the code still using the input; and teardown that waits for the
 * last reply to be written (TLS layer included) and frees the connection
 * outside any callback.  A session embeds struct conn as its first member,
 * so callbacks given a struct conn * can cast it back to the session.
 */
#ifndef UMBOX_CONN_H
#define UMBOX_CONN_H

struct bufferevent;
struct event;
struct event_base;

struct conn {
	struct bufferevent *bev;
	struct event *timer;
	void (*timer_fn)(struct conn *c);
	struct event *resume_ev;
	struct event *free_ev;
	void (*on_resume)(struct conn *c);	/* process waiting input */
	void (*on_free)(struct conn *c);	/* release the session */
	int closing;
	int freeing;
	unsigned close_polls;
};

void conn_init(struct conn *c, struct event_base *base, void (*on_resume)(struct conn *),
    void (*on_free)(struct conn *));
/* Arm the one timer (replacing what it was armed for). */
void conn_set_timer(struct conn *c, unsigned ms, void (*fn)(struct conn *));
void conn_cancel_timer(struct conn *c);
/* Call on_resume on the next loop turn. */
void conn_resume_later(struct conn *c);
/* Stop reading; free once the output is written, or after 10 s. */
void conn_close(struct conn *c);
/* Free on the next loop turn (the peer is gone). */
void conn_free_later(struct conn *c);
/* For on_free: the bufferevent and the events. */
void conn_clear(struct conn *c);

#endif
