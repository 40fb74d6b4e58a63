/*
 * session.c - a POP3 connection on top of lib/conn.c: command lines,
 * replies, states, the idle timeout, STLS and teardown.
 *
 * Input is taken only while the session is idle in a state that takes
 * commands: during a password check, a lock or commit, or while a RETR
 * is streaming out, pipelined commands wait in the client's socket.
 */
#include "pop3d/pop3d.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "lib/log.h"
#include "lib/tls.h"

static const char *const state_names[] = {
	[POP3_S_AUTHORIZATION] = "authorization", [POP3_S_SASL] = "sasl",
	[POP3_S_TRANSACTION] = "transaction",
};

void
pop3_set_state(struct pop3_session *s, enum pop3_state st)
{
	if (s->state == st)
		return;
	log_debug("%s: state %s -> %s", s->c.id, state_names[s->state], state_names[st]);
	s->state = st;
}

struct evbuffer *
pop3_output(struct pop3_session *s)
{
	return bufferevent_get_output(s->c.bev);
}

/*
 * One status line; every -ERR is logged with the command that caused it,
 * and 20 in a row close the session.
 */
void
pop3_reply(struct pop3_session *s, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int error;

	if (s->c.bev == NULL || s->c.closing || s->c.freeing)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	evbuffer_add_printf(pop3_output(s), "%s\r\n", buf);
	error = buf[0] == '-';
	if (error)
		conn_log_error(&s->c, s->last_cmd[0] ? s->last_cmd : "-", buf);
	/* The server's trouble, or another session's lock, is not the client's error. */
	if (strncmp(buf, "-ERR [SYS/TEMP]", 15) != 0 && strncmp(buf, "-ERR [IN-USE]", 13) != 0 &&
	    conn_count_reply(&s->c, error)) {
		log_info("%s: %u errors in a row: closing", s->c.id, CONN_BAD_MAX);
		evbuffer_add_printf(pop3_output(s), "-ERR Too many bad commands; closing\r\n");
		pop3_close(s);
	}
}

int
pop3_plaintext_ok(const struct pop3_session *s)
{
	switch (s->server->cfg->pop3d.plaintext_auth) {
	case PLAINTEXT_ALWAYS:
		return 1;
	case PLAINTEXT_NEVER_WITHOUT_TLS:
		return s->c.tls;
	default:
		return s->c.tls || s->c.loopback;
	}
}

static void
pop3_timeout(struct conn *c)
{
	struct pop3_session *s = (struct pop3_session *)c;

	log_info("%s: idle timeout in state %s", s->c.id, state_names[s->state]);
	pop3_reply(s, "-ERR Autologout; idle for too long");
	pop3_close(s);
}

static void
pop3_arm_deadline(struct pop3_session *s)
{
	conn_set_timer(&s->c, POP3_IDLE_TIMEOUT * 1000, pop3_timeout);
}

static void
pop3_session_release(struct conn *c)
{
	struct pop3_session *s = (struct pop3_session *)c;

	pop3_login_cancel(s);
	if (s->req)
		store_req_cancel(s->req);
	pop3_release_forget(s);	/* the client went first */
	pop3_release_lock(s);	/* a dropped connection deletes nothing, but frees the lock */
	for (size_t i = 0; i < s->nmsgs; i++)
		store_entry_clear(&s->msgs[i].e);
	free(s->msgs);
	pop3_stream_free(s);
	pop3_ahead_free(s);
	pop3_listing_cancel(s);
	store_user_free(&s->user);
	free(s->user_name);
	free(s->owner);
	free(s);
}

/*
 * The server ends the session: the mailbox is given back at once, not
 * when the client has gone (which may take a while).
 */
void
pop3_close(struct pop3_session *s)
{
	if (!pop3_release_then_close(s))
		conn_close(&s->c);
}

static void
pop3_store_timeout(struct conn *c)
{
	struct pop3_session *s = (struct pop3_session *)c;

	log_err("%s: the store did not answer within %u s in state %s", s->c.id,
	    store_wait_limit(s->server->cfg), state_names[s->state]);
	if (s->stream == NULL)		/* else a message is half sent: only closing is left */
		pop3_reply(s, "-ERR [SYS/TEMP] The mailbox store is not answering,"
		    " try again later");
	pop3_release_lock(s);		/* no use waiting for the store once more */
	conn_close(&s->c);
}

void
pop3_store_wait(struct pop3_session *s)
{
	conn_set_timer(&s->c, store_wait_limit(s->server->cfg) * 1000, pop3_store_timeout);
}

/* The wait is over; waiting input is taken up on the next loop turn. */
void
pop3_resume(struct pop3_session *s)
{
	if (s->c.closing || s->releasing)
		return;
	pop3_arm_deadline(s);
	conn_go(&s->c);
}

/* A command line or a SASL response; NULL: a line over the limit. */
static void
pop3_line(struct conn *c, const char *line, size_t len)
{
	struct pop3_session *s = (struct pop3_session *)c;

	if (line == NULL) {
		s->last_cmd[0] = '\0';
		pop3_reply(s, "-ERR Line too long");
		if (s->state == POP3_S_SASL)
			pop3_close(s);
	} else if (s->state == POP3_S_SASL)
		pop3_sasl_line(s, line, len);
	else
		pop3_command(s, line, len);
}

static void
pop3_ready(struct conn *c)
{
	pop3_arm_deadline((struct pop3_session *)c);
}

/* Command lines only while idle in a state that takes them. */
static enum conn_step
pop3_input(struct conn *c, struct evbuffer *in)
{
	struct pop3_session *s = (struct pop3_session *)c;

	if (s->stream)
		return CONN_NEED_INPUT;
	return conn_take_line(c, in, s->state == POP3_S_SASL ? POP3_SASL_LINE_MAX : POP3_LINE_MAX,
	    pop3_line);
}

/* The output went down: the message being retrieved goes on. */
static void
pop3_writable(struct conn *c)
{
	struct pop3_session *s = (struct pop3_session *)c;

	if (s->stream)
		pop3_stream_pump(s);
}

static void
pop3_gone(struct conn *c, const char *why)
{
	struct pop3_session *s = (struct pop3_session *)c;

	log_info("%s: %s in state %s", s->c.id, why, state_names[s->state]);
}

/* SIGTERM: a QUIT (or lock) in flight finishes first; others are told and closed. */
static void
pop3_shutdown(struct conn *c)
{
	struct pop3_session *s = (struct pop3_session *)c;

	if (s->req)
		return;
	pop3_reply(s, "-ERR [SYS/TEMP] Server shutting down");
	pop3_close(s);
}

static const struct conn_ops pop3_conn_ops = {
	.input = pop3_input,
	.ready = pop3_ready,
	.writable = pop3_writable,
	.gone = pop3_gone,
	.shutdown = pop3_shutdown,
	.release = pop3_session_release,
};

/* STLS accepted: drop what was pipelined in the clear, continue in TLS. */
void
pop3_start_tls(struct pop3_session *s)
{
	if (conn_start_tls(&s->c) != 0)
		return;
	free(s->user_name);
	s->user_name = NULL;
}

void
pop3_session_open(struct server_loop *loop, unsigned port, evutil_socket_t fd,
    const struct sockaddr *sa, struct ip_entry *ip)
{
	struct pop3_session *s = xcalloc(1, sizeof(*s));

	s->server = loop->srv;
	s->loop = loop;
	if (conn_open(&s->c, loop, &pop3_conn_ops, fd, sa, ip, port == POP3_PORT_TLS) != 0) {
		free(s);
		return;
	}
	log_info("%s: connect from %s loop=%u%s", s->c.id, s->c.peer, loop->index,
	    s->c.tls ? " tls" : "");
	s->state = POP3_S_AUTHORIZATION;
	pop3_reply(s, "+OK umbox POP3 server ready");
	conn_send_now(&s->c);
	pop3_arm_deadline(s);
}
