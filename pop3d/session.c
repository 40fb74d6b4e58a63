/*
 * session.c - POP3 connections: accepting, reading command lines,
 * replies, states, the idle timeout, STLS and teardown.
 *
 * Input is read only while the session is idle in a state that takes
 * commands: during a password check, a lock or commit, or while a RETR is
 * streaming out, pipelined commands wait in the input buffer.
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

static void pop3_process(struct pop3_session *s);
static void pop3_free(struct conn *c);

static void
pop3_process_conn(struct conn *c)
{
	pop3_process((struct pop3_session *)c);
}

static const char *const state_names[] = {
	[POP3_S_AUTHORIZATION] = "authorization", [POP3_S_SASL] = "sasl",
	[POP3_S_TRANSACTION] = "transaction", [POP3_S_BUSY] = "busy",
	[POP3_S_CLOSING] = "closing",
};

void
pop3_set_state(struct pop3_session *s, enum pop3_state st)
{
	if (s->state == st)
		return;
	log_debug("%s: state %s -> %s", s->id, state_names[s->state], state_names[st]);
	s->state = st;
}

struct evbuffer *
pop3_output(struct pop3_session *s)
{
	return bufferevent_get_output(s->c.bev);
}

/* One status line; every -ERR is logged with the command that caused it. */
void
pop3_reply(struct pop3_session *s, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	if (s->c.bev == NULL || s->state == POP3_S_CLOSING)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	evbuffer_add_printf(pop3_output(s), "%s\r\n", buf);
	if (buf[0] == '-')
		log_info("%s: %s: %s", s->id, s->last_cmd[0] ? s->last_cmd : "-", buf);
}

int
pop3_plaintext_ok(const struct pop3_session *s)
{
	switch (s->server->cfg->pop3d.plaintext_auth) {
	case PLAINTEXT_ALWAYS:
		return 1;
	case PLAINTEXT_NEVER_WITHOUT_TLS:
		return s->tls;
	default:
		return s->tls || s->loopback;
	}
}

static void
pop3_timer_fired(struct conn *c)
{
	struct pop3_session *s = (struct pop3_session *)c;
	void (*fn)(struct pop3_session *) = s->timer_fn;

	s->timer_fn = NULL;
	if (fn)
		fn(s);
}

/* A deadline or a delay: one at a time per session. */
void
pop3_set_timer(struct pop3_session *s, unsigned ms, void (*fn)(struct pop3_session *))
{
	s->timer_fn = fn;
	conn_set_timer(&s->c, ms, pop3_timer_fired);
}

static void
pop3_timeout(struct pop3_session *s)
{
	log_info("%s: idle timeout in state %s", s->id, state_names[s->state]);
	pop3_reply(s, "-ERR Autologout; idle for too long");
	pop3_close(s);
}

static void
pop3_arm_deadline(struct pop3_session *s)
{
	pop3_set_timer(s, POP3_IDLE_TIMEOUT * 1000, pop3_timeout);
}

static void
pop3_free(struct conn *c)
{
	struct pop3_session *s = (struct pop3_session *)c;
	struct pop3_server *srv = s->server;

	pop3_login_cancel(s);
	if (s->req)
		store_req_cancel(s->req);
	pop3_release(s);	/* a dropped connection deletes nothing, but frees the lock */
	for (size_t i = 0; i < s->nmsgs; i++)
		store_entry_clear(&s->msgs[i].e);
	free(s->msgs);
	if (s->stream)
		store_reader_close(&s->stream->r);
	free(s->stream);
	if (s->user) {
		store_user_clear(s->user);
		free(s->user);
	}
	free(s->user_name);
	conn_clear(&s->c);
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	srv->nsessions--;
	ip_table_put(&srv->ips, &s->ip);
	if (srv->stopping && srv->nsessions == 0)
		event_base_loopexit(srv->base, NULL);
	free(s);
}

void
pop3_close(struct pop3_session *s)
{
	if (s->state == POP3_S_CLOSING || s->c.freeing)
		return;
	pop3_set_state(s, POP3_S_CLOSING);
	conn_close(&s->c);
}

void
pop3_busy(struct pop3_session *s)
{
	if (s->state != POP3_S_BUSY)
		s->resume_state = s->state;
	pop3_set_state(s, POP3_S_BUSY);
	conn_cancel_timer(&s->c);
}

/* Back from BUSY; waiting input is taken up on the next loop turn. */
void
pop3_resume(struct pop3_session *s)
{
	if (s->state == POP3_S_BUSY)
		pop3_set_state(s, s->resume_state);
	if (s->state == POP3_S_CLOSING)
		return;
	pop3_arm_deadline(s);
	conn_resume_later(&s->c);
}

/* Command lines, CRLF-terminated, at most POP3_LINE_MAX octets. */
static void
pop3_process(struct pop3_session *s)
{
	while (s->c.bev && !s->c.freeing && s->stream == NULL &&
	    (s->state == POP3_S_AUTHORIZATION || s->state == POP3_S_TRANSACTION ||
	    s->state == POP3_S_SASL)) {
		struct evbuffer *in = bufferevent_get_input(s->c.bev);
		struct evbuffer_ptr p;
		size_t eol, avail = evbuffer_get_length(in);
		char *line;

		if (avail == 0)
			return;
		p = evbuffer_search_eol(in, NULL, &eol, EVBUFFER_EOL_CRLF_STRICT);
		if (p.pos < 0) {
			if (avail >= POP3_LINE_MAX && s->state != POP3_S_SASL) {
				if (!s->skip_line) {
					s->last_cmd[0] = '\0';
					pop3_reply(s, "-ERR Line too long");
					s->skip_line = 1;
				}
				evbuffer_drain(in, avail - 1);
			} else if (avail > 8192) {
				pop3_reply(s, "-ERR Line too long");
				pop3_close(s);
			}
			return;
		}
		if (s->skip_line) {
			evbuffer_drain(in, (size_t)p.pos + eol);
			s->skip_line = 0;
			continue;
		}
		line = (char *)evbuffer_pullup(in, p.pos + (ssize_t)eol);
		if (s->state == POP3_S_SASL)
			pop3_sasl_line(s, line, (size_t)p.pos);
		else
			pop3_command(s, line, (size_t)p.pos);
		if (s->c.bev == NULL)
			return;
		in = bufferevent_get_input(s->c.bev);
		if (!s->tls_just_started && evbuffer_get_length(in) >= (size_t)p.pos + eol)
			evbuffer_drain(in, (size_t)p.pos + eol);
		s->tls_just_started = 0;
		if (s->state != POP3_S_BUSY && s->state != POP3_S_CLOSING)
			pop3_arm_deadline(s);
		if (evbuffer_get_length(pop3_output(s)) > POP3_OUT_HIGH)
			return;	/* the write callback takes up the rest */
	}
}

static void
pop3_on_read(struct bufferevent *bev, void *arg)
{
	pop3_process(arg);
}

/* Output fell below the low-water mark: stream on, or take up commands. */
static void
pop3_on_write(struct bufferevent *bev, void *arg)
{
	struct pop3_session *s = arg;

	if (s->state == POP3_S_CLOSING || s->c.freeing)
		return;
	if (s->stream)
		pop3_stream_pump(s);
	else
		pop3_process(s);
}

static void
pop3_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct pop3_session *s = arg;

	if (what & BEV_EVENT_CONNECTED) {
		SSL *ssl = bufferevent_openssl_get_ssl(bev);
		char info[96];

		if (ssl)
			log_info("%s: TLS established: %s", s->id,
			    tls_describe(ssl, info, sizeof(info)));
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		unsigned long e = bufferevent_get_openssl_error(bev);

		if (e)
			log_info("%s: TLS error: %s", s->id, ERR_reason_error_string(e));
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		if (s->state != POP3_S_CLOSING)
			log_info("%s: disconnect in state %s", s->id, state_names[s->state]);
		conn_free_later(&s->c);
	}
}

static void
pop3_bev_setup(struct pop3_session *s)
{
	bufferevent_setcb(s->c.bev, pop3_on_read, pop3_on_write, pop3_on_event, s);
	bufferevent_setwatermark(s->c.bev, EV_WRITE, POP3_OUT_LOW, 0);
	bufferevent_enable(s->c.bev, EV_READ | EV_WRITE);
}

/* STLS accepted: drop what was pipelined in the clear, continue in TLS. */
void
pop3_start_tls(struct pop3_session *s)
{
	struct bufferevent *tls;
	struct evbuffer *in = bufferevent_get_input(s->c.bev);

	evbuffer_drain(in, evbuffer_get_length(in));
	s->tls_just_started = 1;
	bufferevent_setcb(s->c.bev, NULL, NULL, NULL, NULL);
	tls = tls_bev_accept(s->server->base, s->server->tls, s->c.bev, -1);
	if (tls == NULL) {
		log_err("%s: cannot start TLS", s->id);
		bufferevent_free(s->c.bev);
		s->c.bev = NULL;
		conn_free_later(&s->c);
		return;
	}
	s->c.bev = tls;
	s->tls = 1;
	free(s->user_name);
	s->user_name = NULL;
	pop3_bev_setup(s);
}

void
pop3_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int socklen,
    void *arg)
{
	struct pop3_listener_ctx *lc = arg;
	struct pop3_server *srv = lc->server;
	struct pop3_session *s;

	if (srv->stopping) {
		close(fd);
		return;
	}
	if (srv->nsessions >= srv->max_sessions) {
		const char *msg = "-ERR [SYS/TEMP] Too many connections, try again later\r\n";
		ssize_t r = send(fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL);

		(void)r;
		log_warn("connection refused: %u sessions", srv->nsessions);
		close(fd);
		return;
	}
	evutil_make_socket_nonblocking(fd);
	s = xcalloc(1, sizeof(*s));
	s->server = srv;
	snprintf(s->id, sizeof(s->id), "P%07llX", (unsigned long long)++srv->next_session_id);
	s->loopback = listen_peer(sa, s->peer_str, sizeof(s->peer_str));
	snprintf(s->owner, sizeof(s->owner), "%s%s", srv->owner_prefix, s->id);
	conn_init(&s->c, srv->base, pop3_process_conn, pop3_free);
	if (lc->kind == POP3_PORT_TLS) {
		s->c.bev = tls_bev_accept(srv->base, srv->tls, NULL, fd);
		s->tls = 1;
	} else
		s->c.bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	s->ip = ip_table_get(&srv->ips, sa, 1);
	s->ip->conns++;
	s->next = srv->sessions;
	if (srv->sessions)
		srv->sessions->prev = s;
	srv->sessions = s;
	srv->nsessions++;
	if (s->c.bev == NULL) {
		close(fd);
		conn_free_later(&s->c);
		return;
	}
	pop3_bev_setup(s);
	log_info("%s: connect from %s%s", s->id, s->peer_str, s->tls ? " tls" : "");
	s->state = POP3_S_AUTHORIZATION;
	pop3_reply(s, "+OK umbox POP3 server ready");
	pop3_arm_deadline(s);
}

/* SIGTERM: stop accepting; sessions finish a QUIT in flight, others close. */
void
pop3_server_stop(struct pop3_server *srv)
{
	struct timeval grace = { 30, 0 };

	if (srv->stopping)
		return;
	srv->stopping = 1;
	log_info("stopping: %u sessions open", srv->nsessions);
	for (int i = 0; i < 2; i++)
		listen_free(&srv->listeners[i]);
	for (struct pop3_session *s = srv->sessions; s; s = s->next)
		if (s->req == NULL) {
			pop3_reply(s, "-ERR [SYS/TEMP] Server shutting down");
			pop3_close(s);
		}
	if (srv->nsessions == 0)
		event_base_loopexit(srv->base, NULL);
	else
		event_base_loopexit(srv->base, &grace);
}
