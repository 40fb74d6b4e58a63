/*
 * session.c - one SMTP connection: reading lines and content, replies,
 * states, deadlines, STARTTLS and teardown.
 *
 * Input is processed only while the session is not BUSY: while a commit,
 * a password check or a delay is pending, pipelined commands wait in the
 * input buffer and are taken up again by smtp_resume().
 */
#include "smtpd/smtpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "lib/log.h"
#include "lib/tls.h"

static void smtp_process(struct smtp_session *s);
static void smtp_process_conn(struct conn *c);
static void smtp_free(struct conn *c);
static void smtp_on_read(struct bufferevent *bev, void *arg);
static void smtp_on_write(struct bufferevent *bev, void *arg);
static void smtp_on_event(struct bufferevent *bev, short what, void *arg);

static const char *const state_names[] = {
	[SMTP_S_GREETING] = "greeting", [SMTP_S_CONNECTED] = "connected",
	[SMTP_S_READY] = "ready", [SMTP_S_MAIL] = "mail", [SMTP_S_RCPT] = "rcpt",
	[SMTP_S_DATA] = "data", [SMTP_S_BDAT] = "bdat", [SMTP_S_AUTH] = "auth",
	[SMTP_S_BUSY] = "busy", [SMTP_S_CLOSING] = "closing",
};

/* The one place a session's state changes. */
void
smtp_set_state(struct smtp_session *s, enum smtp_state st)
{
	if (s->state == st)
		return;
	log_debug("%s: state %s -> %s", s->id, state_names[s->state], state_names[st]);
	s->state = st;
}

/*
 * Send one reply: CRLF appended; a multi-line reply is given with
 * "\n" between its lines and gets the "NNN-" continuation form.  Every
 * 4xx and 5xx is logged with the command that caused it.
 */
void
smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
	struct evbuffer *out;
	char buf[1024], *line, *nl;
	va_list ap;

	if (s->c.bev == NULL || s->state == SMTP_S_CLOSING)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	out = bufferevent_get_output(s->c.bev);
	for (line = buf; (nl = strchr(line, '\n')) != NULL; line = nl + 1)
		evbuffer_add_printf(out, "%.3s-%.*s\r\n", line, (int)(nl - line - 4), line + 4);
	evbuffer_add_printf(out, "%s\r\n", line);
	if (buf[0] == '4' || buf[0] == '5')
		log_info("%s: %s: %s", s->id, s->last_cmd[0] ? s->last_cmd : "-", buf);
}

static void
smtp_timer_fired(struct conn *c)
{
	struct smtp_session *s = (struct smtp_session *)c;
	void (*fn)(struct smtp_session *) = s->timer_fn;

	s->timer_fn = NULL;
	if (fn)
		fn(s);
}

/* A deadline or a delay: one at a time per session. */
void
smtp_set_timer(struct smtp_session *s, unsigned ms, void (*fn)(struct smtp_session *))
{
	s->timer_fn = fn;
	conn_set_timer(&s->c, ms, smtp_timer_fired);
}

static void
smtp_timeout(struct smtp_session *s)
{
	log_info("%s: timeout in state %s", s->id, state_names[s->state]);
	smtp_reply(s, "421 4.4.2 %s Error: timeout exceeded", s->server->cfg->general.hostname);
	smtp_close(s);
}

/*
 * (Re)arm the deadline for what the client must do next: a command within
 * SMTP_CMD_TIMEOUT of the last one (slow dribbling does not extend it);
 * content making progress every SMTP_DATA_TIMEOUT, and the whole transfer
 * within SMTP_DATA_MAX_TIME.
 */
static void
smtp_arm_deadline(struct smtp_session *s)
{
	unsigned sec = SMTP_CMD_TIMEOUT;

	if (s->state == SMTP_S_DATA || s->state == SMTP_S_BDAT) {
		time_t used = time(NULL) - s->data_started;

		sec = SMTP_DATA_TIMEOUT;
		if (used >= SMTP_DATA_MAX_TIME)
			sec = 0;
		else if ((time_t)sec > SMTP_DATA_MAX_TIME - used)
			sec = (unsigned)(SMTP_DATA_MAX_TIME - used);
		s->data_progress = 0;
	}
	smtp_set_timer(s, sec * 1000, smtp_timeout);
}

static void
smtp_free(struct conn *c)
{
	struct smtp_session *s = (struct smtp_session *)c;

	if (s->commit)
		store_req_cancel(s->commit);
	smtp_auth_cancel(s);
	smtp_txn_free(&s->txn);
	conn_clear(&s->c);
	if (s->user) {
		store_user_clear(s->user);
		free(s->user);
	}
	free(s->helo);
	smtp_server_session_gone(s->server, s);
	free(s);
}

/* Stop reading; free the session once its last reply has been written. */
void
smtp_close(struct smtp_session *s)
{
	if (s->state == SMTP_S_CLOSING || s->c.freeing)
		return;
	smtp_set_state(s, SMTP_S_CLOSING);
	conn_close(&s->c);
}

void
smtp_busy(struct smtp_session *s)
{
	if (s->state != SMTP_S_BUSY)
		s->resume_state = s->state;
	smtp_set_state(s, SMTP_S_BUSY);
	conn_cancel_timer(&s->c);
}

/*
 * Back from BUSY: pipelined input that waited is taken up on the next
 * loop turn, never from inside the code that is still using the input.
 */
void
smtp_resume(struct smtp_session *s)
{
	if (s->state != SMTP_S_BUSY)
		return;
	smtp_set_state(s, s->resume_state);
	smtp_arm_deadline(s);
	conn_resume_later(&s->c);
}

int
smtp_may_auth(const struct smtp_session *s)
{
	return s->tls || s->loopback;
}

int
smtp_may_relay(const struct smtp_session *s)
{
	return s->user != NULL || s->trusted;
}

/*
 * Content: hand what the input holds to the DATA/BDAT parser.  Returns 1
 * if more input is needed, 0 to go on processing.
 */
static int
smtp_process_content(struct smtp_session *s, struct evbuffer *in)
{
	struct evbuffer_iovec v[8];
	int n = evbuffer_peek(in, -1, NULL, v, 8);
	size_t total = 0;

	if (n <= 0)
		return 1;
	for (int i = 0; i < n && i < 8; i++) {
		size_t want = v[i].iov_len, used;

		if (s->state == SMTP_S_BDAT && want > s->txn->bdat_left)
			want = (size_t)s->txn->bdat_left;
		used = smtp_message_feed(s, v[i].iov_base, want);
		total += used;
		if (s->state != SMTP_S_DATA && s->state != SMTP_S_BDAT)
			break;	/* the content ended inside this slice */
		if (used < v[i].iov_len)
			break;
	}
	evbuffer_drain(in, total);
	if (s->state == SMTP_S_DATA || s->state == SMTP_S_BDAT) {
		s->data_progress += total;
		if (s->data_progress >= SMTP_DATA_PROGRESS)
			smtp_arm_deadline(s);
		return total == 0;
	}
	return 0;
}

/*
 * Take commands and content from the input buffer until it runs dry or
 * the session has to wait.  Lines end at CRLF only; a line longer than
 * the limit is refused as soon as the partial line shows it.
 */
static void
smtp_process(struct smtp_session *s)
{
	struct evbuffer *in;

	while (s->c.bev && !s->c.freeing) {
		struct evbuffer_ptr p;
		size_t eol, avail;
		char *line;

		if (s->state == SMTP_S_BUSY || s->state == SMTP_S_CLOSING ||
		    s->state == SMTP_S_GREETING)
			return;
		in = bufferevent_get_input(s->c.bev);
		if (s->state == SMTP_S_DATA || s->state == SMTP_S_BDAT) {
			if (smtp_process_content(s, in))
				return;
			continue;
		}
		avail = evbuffer_get_length(in);
		if (avail == 0)
			return;
		p = evbuffer_search_eol(in, NULL, &eol, EVBUFFER_EOL_CRLF_STRICT);
		if (p.pos < 0) {
			if (avail >= SMTP_LINE_MAX) {
				if (!s->skip_line) {
					s->last_cmd[0] = '\0';
					smtp_reply(s, "500 5.5.2 Error: line too long");
					s->skip_line = 1;
				}
				/* Keep a trailing CR: it may start the CRLF that ends the line. */
				evbuffer_drain(in, avail - 1);
			}
			return;
		}
		if (s->skip_line) {
			evbuffer_drain(in, (size_t)p.pos + eol);
			s->skip_line = 0;
			continue;
		}
		if ((size_t)p.pos + 2 > SMTP_LINE_MAX) {
			evbuffer_drain(in, (size_t)p.pos + eol);
			s->last_cmd[0] = '\0';
			smtp_reply(s, "500 5.5.2 Error: line too long");
			continue;
		}
		line = (char *)evbuffer_pullup(in, p.pos + (ssize_t)eol);
		if (s->state == SMTP_S_AUTH)
			smtp_auth_line(s, line, (size_t)p.pos);
		else
			smtp_command(s, line, (size_t)p.pos);
		if (s->c.bev == NULL)
			return;
		/* A command that started TLS has already dropped what followed it. */
		in = bufferevent_get_input(s->c.bev);
		if (evbuffer_get_length(in) >= (size_t)p.pos + eol && !s->tls_just_started)
			evbuffer_drain(in, (size_t)p.pos + eol);
		s->tls_just_started = 0;
		if (s->state != SMTP_S_BUSY && s->state != SMTP_S_CLOSING)
			smtp_arm_deadline(s);
		/* Replies backing up (a client that does not read): wait for the write side. */
		if (evbuffer_get_length(bufferevent_get_output(s->c.bev)) > SMTP_OUT_HIGH) {
			bufferevent_disable(s->c.bev, EV_READ);
			return;
		}
	}
}

static void
smtp_process_conn(struct conn *c)
{
	smtp_process((struct smtp_session *)c);
}

static void
smtp_on_read(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	if (s->state == SMTP_S_GREETING) {
		/* Talking before the banner: a bot that does not wait for replies. */
		log_info("%s: early talker refused", s->id);
		smtp_set_state(s, SMTP_S_CONNECTED);
		smtp_reply(s, "554 5.5.0 Protocol error: talked before the greeting");
		smtp_close(s);
		return;
	}
	smtp_process(s);
}

static void
smtp_on_write(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	if (s->state == SMTP_S_CLOSING)
		return;	/* conn_close watches the last bytes go */
	/* Output drained below the high-water mark: read again. */
	if (!(bufferevent_get_enabled(bev) & EV_READ) && !s->c.freeing) {
		bufferevent_enable(bev, EV_READ);
		smtp_process(s);
	}
}

static void
smtp_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;

	if (what & BEV_EVENT_CONNECTED) {
		/* The TLS handshake finished. */
		SSL *ssl = bufferevent_openssl_get_ssl(bev);

		if (ssl)
			tls_describe(ssl, s->tls_info, sizeof(s->tls_info));
		log_info("%s: TLS established: %s", s->id, s->tls_info);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		unsigned long e = bufferevent_get_openssl_error(bev);

		if (e)
			log_info("%s: TLS error: %s", s->id, ERR_reason_error_string(e));
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		if (s->state != SMTP_S_CLOSING)
			log_info("%s: disconnect from %s in state %s", s->id, s->peer_str,
			    state_names[s->state]);
		conn_free_later(&s->c);
	}
}

static void
smtp_greet(struct smtp_session *s)
{
	smtp_set_state(s, SMTP_S_CONNECTED);
	smtp_reply(s, "220 %s ESMTP umbox", s->server->cfg->general.hostname);
	smtp_arm_deadline(s);
	smtp_process(s);
}

static void
smtp_bev_setup(struct smtp_session *s)
{
	bufferevent_setcb(s->c.bev, smtp_on_read, smtp_on_write, smtp_on_event, s);
	bufferevent_setwatermark(s->c.bev, EV_WRITE, SMTP_OUT_HIGH / 2, 0);
	bufferevent_enable(s->c.bev, EV_READ | EV_WRITE);
}

/*
 * STARTTLS accepted: the 220 is already queued on the plain connection.
 * Whatever the client pipelined behind STARTTLS is thrown away (it came
 * in the clear), and the session starts over as if newly connected.
 */
void
smtp_start_tls(struct smtp_session *s)
{
	struct bufferevent *tls;

	evbuffer_drain(bufferevent_get_input(s->c.bev),
	    evbuffer_get_length(bufferevent_get_input(s->c.bev)));
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
	free(s->helo);
	s->helo = NULL;
	s->esmtp = 0;
	smtp_txn_free(&s->txn);
	smtp_set_state(s, SMTP_S_CONNECTED);
	smtp_bev_setup(s);
}

struct smtp_session *
smtp_session_new(struct smtp_server *srv, evutil_socket_t fd, const struct sockaddr *sa,
    enum smtp_port_kind kind, struct ip_entry *ip)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));
	int greet_delay;

	s->server = srv;
	s->kind = kind;
	s->ip = ip;
	snprintf(s->id, sizeof(s->id), "%08llX", (unsigned long long)++srv->next_session_id);
	memcpy(&s->peer, sa, sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in));
	s->loopback = listen_peer(sa, s->peer_str, sizeof(s->peer_str));
	s->trusted = config_cidr_match(&srv->cfg->smtpd.trusted_networks, sa);
	conn_init(&s->c, srv->base, smtp_process_conn, smtp_free);

	if (kind == SMTP_PORT_SMTPS) {
		s->c.bev = tls_bev_accept(srv->base, srv->tls, NULL, fd);
		s->tls = 1;
	} else
		s->c.bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (s->c.bev == NULL) {
		close(fd);
		conn_clear(&s->c);
		free(s);
		return NULL;
	}
	smtp_bev_setup(s);
	log_info("%s: connect from %s port=%s%s", s->id, s->peer_str,
	    kind == SMTP_PORT_MX ? "mx" : kind == SMTP_PORT_SUBMISSION ? "submission" : "smtps",
	    s->trusted ? " trusted" : "");

	/* On the MX port a short pause before the banner exposes early talkers. */
	greet_delay = kind == SMTP_PORT_MX && !s->trusted ? SMTP_GREET_DELAY_MS : 0;
	s->state = SMTP_S_GREETING;
	if (greet_delay)
		smtp_set_timer(s, (unsigned)greet_delay, smtp_greet);
	else
		smtp_greet(s);
	return s;
}
