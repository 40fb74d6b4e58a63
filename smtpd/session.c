/*
 * session.c - one SMTP connection on top of lib/conn.c: command lines
 * and content, replies, states, deadlines, STARTTLS and teardown.
 *
 * While the session waits (a commit, a password check, a delay) the
 * connection takes no input: pipelined commands wait in the client's
 * socket, and are taken up again after smtp_resume().
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


static const char *const state_names[] = {
	[SMTP_S_GREETING] = "greeting", [SMTP_S_CONNECTED] = "connected",
	[SMTP_S_READY] = "ready", [SMTP_S_MAIL] = "mail", [SMTP_S_RCPT] = "rcpt",
	[SMTP_S_DATA] = "data", [SMTP_S_BDAT] = "bdat", [SMTP_S_AUTH] = "auth",
};

/* The one place a session's state changes. */
void
smtp_set_state(struct smtp_session *s, enum smtp_state st)
{
	if (s->state == st)
		return;
	log_debug("%s: state %s -> %s", s->c.id, state_names[s->state], state_names[st]);
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
	int error;

	if (s->c.bev == NULL || s->c.closing || s->c.freeing)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	out = conn_output(&s->c);
	for (line = buf; (nl = strchr(line, '\n')) != NULL; line = nl + 1)
		evbuffer_add_printf(out, "%.3s-%.*s\r\n", line, (int)(nl - line - 4), line + 4);
	evbuffer_add_printf(out, "%s\r\n", line);
	error = buf[0] == '4' || buf[0] == '5';
	if (error)
		conn_log_error(&s->c, s->last_cmd[0] ? s->last_cmd : "-", buf);
	/*
	 * Errors in a row end the session; a 421 is already the end, and the
	 * server's own trouble (4.3.x: a lookup, a full disk) is no error of
	 * the client's, neither counted nor ending a run of them.  Nor are
	 * recipients past max_recipients, up to SMTP_RCPT_OVERSHOOT of them:
	 * RFC 5321 §4.5.3.1.10 has the client send those again later, and
	 * closing would lose the message for those accepted.
	 */
	if (strncmp(buf, "421", 3) != 0 && strncmp(buf + 3, " 4.3.", 5) != 0 &&
	    !(strncmp(buf + 3, " 4.5.3", 6) == 0 && s->txn &&
	    s->txn->overshoot <= SMTP_RCPT_OVERSHOOT) &&
	    conn_count_reply(&s->c, error)) {
		log_info("%s: %u errors in a row: closing", s->c.id, CONN_BAD_MAX);
		evbuffer_add_printf(out, "421 4.7.0 %s Error: too many errors\r\n",
		    s->server->cfg->general.hostname);
		conn_close(&s->c);
	}
}

static void
smtp_timeout(struct conn *c)
{
	struct smtp_session *s = (struct smtp_session *)c;

	log_info("%s: timeout in state %s", s->c.id, state_names[s->state]);
	smtp_reply(s, "421 4.4.2 %s Error: timeout exceeded", s->server->cfg->general.hostname);
	conn_close(&s->c);
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
	conn_set_timer(&s->c, sec * 1000, smtp_timeout);
}

static void
smtp_release(struct conn *c)
{
	struct smtp_session *s = (struct smtp_session *)c;

	if (s->commit)
		store_req_cancel(s->commit);
	smtp_auth_cancel(s);
	smtp_lookup_cancel(s);
	smtp_txn_free(&s->txn);
	store_user_free(&s->user);
	free(s->helo);
	free(s);
}

/* The wait is over: a new deadline, and what waited is taken up next turn. */
void
smtp_resume(struct smtp_session *s)
{
	if (s->c.closing)
		return;
	smtp_arm_deadline(s);
	conn_go(&s->c);
}

int
smtp_may_auth(const struct smtp_session *s)
{
	return s->c.tls || s->c.loopback;
}

int
smtp_may_relay(const struct smtp_session *s)
{
	return s->user != NULL || s->trusted;
}

/*
 * Content: hand what the input holds to the DATA/BDAT parser.
 */
static enum conn_step
smtp_content(struct smtp_session *s, struct evbuffer *in)
{
	struct evbuffer_iovec v[8];
	int n = evbuffer_peek(in, -1, NULL, v, 8);
	size_t total = 0;

	if (n <= 0)
		return CONN_NEED_INPUT;
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
		return total == 0 ? CONN_NEED_INPUT : CONN_CONTINUE;
	}
	return CONN_CONTINUE;
}

/*
 * One step of input: a command line, a SASL response or a slice of
 * content.  Lines end at CRLF only; a line longer than the limit is
 * refused as soon as the partial line shows it.
 */
/* A command line or a SASL response; NULL: a line over the limit. */
static void
smtp_line(struct conn *c, const char *line, size_t len)
{
	struct smtp_session *s = (struct smtp_session *)c;

	if (s->state == SMTP_S_AUTH)
		smtp_auth_line(s, line, len);
	else if (line == NULL) {
		s->last_cmd[0] = '\0';
		smtp_reply(s, "500 5.5.2 Error: line too long");
	}
	else
		smtp_command(s, line, len);
}

static void
smtp_ready(struct conn *c)
{
	smtp_arm_deadline((struct smtp_session *)c);
}

static enum conn_step
smtp_input(struct conn *c, struct evbuffer *in)
{
	struct smtp_session *s = (struct smtp_session *)c;

	switch (s->state) {
	case SMTP_S_GREETING:
		/* Talking before the banner: a bot that does not wait for replies. */
		log_info("%s: early talker refused", s->c.id);
		smtp_set_state(s, SMTP_S_CONNECTED);
		smtp_reply(s, "554 5.5.0 Protocol error: talked before the greeting");
		conn_close(&s->c);
		return CONN_NEED_INPUT;
	case SMTP_S_DATA:
	case SMTP_S_BDAT:
		return smtp_content(s, in);
	default:
		break;
	}
	return conn_take_line(c, in, SMTP_LINE_MAX, smtp_line);
}

static void
smtp_gone(struct conn *c, const char *why)
{
	struct smtp_session *s = (struct smtp_session *)c;

	log_info("%s: %s from %s in state %s", s->c.id, why, s->c.peer, state_names[s->state]);
}

/* SIGTERM: a session waiting for its commit gets the answer first. */
static void
smtp_shutdown(struct conn *c)
{
	struct smtp_session *s = (struct smtp_session *)c;

	if (s->commit) {
		smtp_commit_stopping(s);
		return;
	}
	smtp_reply(s, "421 4.3.2 %s Service shutting down", s->server->cfg->general.hostname);
	conn_close(&s->c);
}

static const struct conn_ops smtp_conn_ops = {
	.input = smtp_input,
	.ready = smtp_ready,
	.gone = smtp_gone,
	.shutdown = smtp_shutdown,
	.release = smtp_release,
};

static void
smtp_greet(struct conn *c)
{
	struct smtp_session *s = (struct smtp_session *)c;

	smtp_set_state(s, SMTP_S_CONNECTED);
	smtp_reply(s, "220 %s ESMTP umbox", s->server->cfg->general.hostname);
	conn_send_now(c);
	smtp_arm_deadline(s);
	conn_go(&s->c);
}

/*
 * STARTTLS accepted: the 220 is already queued on the plain connection.
 * Whatever the client pipelined behind STARTTLS is thrown away (it came
 * in the clear), and the session starts over as if newly connected:
 * the HELO/EHLO name and any authentication are forgotten (RFC 3207 §4.2).
 */
void
smtp_start_tls(struct smtp_session *s)
{
	if (conn_start_tls(&s->c) != 0)
		return;
	free(s->helo);
	s->helo = NULL;
	s->esmtp = 0;
	store_user_free(&s->user);
	smtp_txn_free(&s->txn);
	smtp_set_state(s, SMTP_S_CONNECTED);
}

void
smtp_session_open(struct server_loop *loop, unsigned port, evutil_socket_t fd,
    const struct sockaddr *sa, struct ip_entry *ip)
{
	struct server *srv = loop->srv;
	struct smtp_session *s = xcalloc(1, sizeof(*s));
	enum smtp_port_kind kind = (enum smtp_port_kind)port;
	int greet_delay;

	s->server = srv;
	s->loop = loop;
	s->kind = kind;
	s->trusted = config_cidr_match(&srv->cfg->smtpd.trusted_networks, sa);
	if (conn_open(&s->c, loop, &smtp_conn_ops, fd, sa, ip, kind == SMTP_PORT_SMTPS) != 0) {
		free(s);
		return;
	}
	log_info("%s: connect from %s port=%s loop=%u%s", s->c.id, s->c.peer,
	    kind == SMTP_PORT_MX ? "mx" : kind == SMTP_PORT_SUBMISSION ? "submission" : "smtps",
	    loop->index, s->trusted ? " trusted" : "");

	/* On the MX port a short pause before the banner exposes early talkers. */
	greet_delay = kind == SMTP_PORT_MX && !s->trusted ? SMTP_GREET_DELAY_MS : 0;
	s->state = SMTP_S_GREETING;
	if (greet_delay)
		conn_set_timer(&s->c, (unsigned)greet_delay, smtp_greet);
	else
		smtp_greet(&s->c);
}
