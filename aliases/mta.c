/*
 * mta.c - the outbound SMTP client: one attempt, host after host, on
 * the connection layer (lib/conn.c) with the one reply parser (reply.c).
 *
 * An attempt owns the recipients' outcome; each connection it makes is a
 * small struct of its own (struct mta_conn), because a connection lives
 * on until its last bytes are written while the attempt may already have
 * moved on to the next host or finished.  A connection whose attempt is
 * gone (a NULL back pointer) only closes.
 */
#include "aliases/mta.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "lib/conn.h"
#include "lib/log.h"
#include "lib/sasl.h"
#include "lib/tls.h"
#include "lib/util.h"

#define MTA_SLICE	(16 * 1024)	/* message bytes read per step */
/*
 * Recipients per transaction: the number every server must take (RFC 5321
 * §4.5.3.1.8); more go in further transactions on the same connection.
 */
#define MTA_TX_RCPTS	100
/* A command line's most, CRLF included (RFC 5321 §4.5.3.1.4); AUTH's too. */
#define MTA_AUTH_LINE_MAX	512

enum mta_state {
	S_CONNECTING,
	S_TLS,			/* implicit TLS or STARTTLS handshake */
	S_GREETING,
	S_EHLO,
	S_HELO,
	S_STARTTLS,
	S_AUTH,			/* waiting for 235 */
	S_AUTH_USER,		/* LOGIN: waiting for the user name prompt */
	S_AUTH_PASS,		/* LOGIN: waiting for the password prompt */
	S_AUTH_CRAM,		/* CRAM-MD5: waiting for the challenge */
	S_AUTH_PLAIN,		/* PLAIN too long for the command: waiting for 334 */
	S_MAIL,
	S_RCPT,
	S_DATA,			/* waiting for 354 */
	S_BODY,			/* sending the message */
	S_END,			/* waiting for the reply to the end of data */
	S_RSET,			/* a transaction nobody was taken in, ended */
	S_QUIT,
};

static const char *const state_names[] = {
	[S_CONNECTING] = "connect", [S_TLS] = "TLS", [S_GREETING] = "greeting",
	[S_EHLO] = "EHLO", [S_HELO] = "HELO", [S_STARTTLS] = "STARTTLS", [S_AUTH] = "AUTH",
	[S_AUTH_USER] = "AUTH", [S_AUTH_PASS] = "AUTH", [S_AUTH_CRAM] = "AUTH",
	[S_AUTH_PLAIN] = "AUTH",
	[S_MAIL] = "MAIL", [S_RCPT] = "RCPT", [S_DATA] = "DATA", [S_BODY] = "message",
	[S_END] = "end of data", [S_RSET] = "RSET", [S_QUIT] = "QUIT",
};

struct mta_conn {
	struct conn c;			/* first: conn callbacks cast back */
	struct mta_attempt *a;		/* NULL once the attempt let go */
	struct mta_conn *prev, *next;	/* every connection still open */
};

/* Connections of this process still open, closing ones included (mta_shutdown). */
static struct mta_conn *mta_conns;

struct mta_attempt {
	struct event_base *base;
	SSL_CTX *ctx;
	char id[24];
	const struct mta_route *r;
	const struct mta_message *m;
	struct mta_rcpt *rcpts;
	size_t nrcpts;
	unsigned char *accepted;	/* per recipient: RCPT got a 2xx */
	size_t *tx;			/* the transaction's recipients (indexes) */
	size_t ntx;
	mta_step_cb *step;
	mta_done_cb *done;
	void *arg;

	size_t host;			/* the host being tried */
	struct mta_conn *mc;		/* its connection, while there is one */
	enum mta_state state;
	struct smtp_reply_parser p;
	struct smtp_ehlo ehlo;
	int tls_up;
	int plain;			/* this host again without TLS: its STARTTLS failed */
	int bdat;			/* the message goes as one BDAT LAST chunk */
	size_t rcpt_next;		/* the next RCPT whose reply is due */
	size_t naccepted;
	uint64_t offset;		/* message bytes sent */
	int line_start;			/* for dot-stuffing */
	int last_lf;
	int probe_ok;
	int want_7bit;			/* stopped: the message must be made 7-bit */
	int starting;			/* inside mta_start() */
	int finishing;			/* a finish is scheduled */
	char error[SMTP_REPLY_RENDER_MAX];	/* why the last host did not do */
};

static void mta_try_host(struct mta_attempt *a);
static void mta_send(struct mta_attempt *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
mta_step(struct mta_attempt *a, const char *step, int ok, const char *detail)
{
	if (a->step)
		a->step(a->arg, step, ok, detail);
}

static void
mta_step_reply(struct mta_attempt *a, const char *step, int ok, const struct smtp_reply *r)
{
	char buf[SMTP_REPLY_RENDER_MAX];

	mta_step(a, step, ok, smtp_reply_render(r, buf, sizeof(buf)));
}

/* Let go of the connection: QUIT if it is still in a state to hear it. */
static void
mta_drop_conn(struct mta_attempt *a, int quit)
{
	struct mta_conn *mc = a->mc;

	if (mc == NULL)
		return;
	a->mc = NULL;
	mc->a = NULL;
	if (quit && mc->c.bev && !mc->c.closing && !mc->c.freeing)
		evbuffer_add_printf(conn_output(&mc->c), "QUIT\r\n");
	if (!mc->c.freeing)
		conn_close(&mc->c);
}

static void
mta_free(struct mta_attempt *a)
{
	mta_drop_conn(a, 1);
	free(a->accepted);
	free(a->tx);
	free(a);
}

/*
 * The attempt is over: every recipient still pending is deferred with
 * the last error, and the requester hears of it.
 */
static void
mta_finish(struct mta_attempt *a)
{
	for (size_t i = 0; i < a->nrcpts; i++)
		if (a->rcpts[i].status == MTA_PENDING) {
			a->rcpts[i].status = MTA_DEFERRED;
			snprintf(a->rcpts[i].reply, sizeof(a->rcpts[i].reply), "%s",
			    a->error[0] ? a->error : "not delivered");
		}
	mta_drop_conn(a, 1);
	if (a->done)
		a->done(a, a->arg);
	mta_free(a);
}

/* Set every pending recipient (or every accepted one) to st with why. */
static void
mta_settle(struct mta_attempt *a, int only_accepted, enum mta_rcpt_status st, const char *why)
{
	for (size_t i = 0; i < a->nrcpts; i++) {
		if (a->rcpts[i].status != MTA_PENDING || (only_accepted && !a->accepted[i]))
			continue;
		a->rcpts[i].status = st;
		a->rcpts[i].host = &a->r->hosts[a->host];
		snprintf(a->rcpts[i].reply, sizeof(a->rcpts[i].reply), "%s", why);
	}
}

/* Settle by a reply's class: 2 as given, 5 failed, anything else deferred. */
static void
mta_settle_reply(struct mta_attempt *a, int only_accepted, const struct smtp_reply *r)
{
	char buf[SMTP_REPLY_RENDER_MAX];

	smtp_reply_render(r, buf, sizeof(buf));
	mta_settle(a, only_accepted, r->code / 100 == 2 ? MTA_DELIVERED :
	    r->code / 100 == 5 ? MTA_FAILED : MTA_DEFERRED, buf);
}

/* This host will not do (before any transaction): remember why, try the next. */
static void
mta_next_host(struct mta_attempt *a, const char *why)
{
	snprintf(a->error, sizeof(a->error), "%s: %s", a->r->hosts[a->host].name, why);
	mta_drop_conn(a, a->state != S_CONNECTING && a->state != S_TLS);
	a->host++;
	a->plain = 0;
	mta_try_host(a);
}

/*
 * Opportunistic TLS (tls auto) whose handshake after STARTTLS failed: the
 * same host again at once, in clear, as if it had not offered STARTTLS
 * (a server with a broken TLS set-up would otherwise never get its mail).
 * Any other mode, or a second failure: 0, the caller goes on as before.
 */
static int
mta_plain_again(struct mta_attempt *a, const char *why)
{
	if (a->r->tls != MTA_TLS_AUTO || a->plain)
		return 0;
	snprintf(a->error, sizeof(a->error), "%s: %s", a->r->hosts[a->host].name, why);
	mta_drop_conn(a, 0);
	a->plain = 1;
	mta_try_host(a);
	return 1;
}

/* Give up on this attempt: the pending recipients are deferred with why. */
static void
mta_defer(struct mta_attempt *a, const char *why)
{
	snprintf(a->error, sizeof(a->error), "%s: %s", a->r->hosts[a->host].name, why);
	mta_finish(a);
}

static void
mta_send(struct mta_attempt *a, const char *fmt, ...)
{
	struct evbuffer *out = conn_output(&a->mc->c);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

static void
mta_on_timeout(struct conn *c)
{
	struct mta_conn *mc = (struct mta_conn *)c;
	struct mta_attempt *a = mc->a;
	char why[96];

	if (a == NULL)
		return;
	snprintf(why, sizeof(why), "timed out in %s", state_names[a->state]);
	mta_step(a, state_names[a->state], 0, why);
	if (a->state == S_TLS && mta_plain_again(a, why))
		return;
	if (a->state <= S_GREETING)
		mta_next_host(a, why);
	else
		mta_defer(a, why);
}

/*
 * The reply to the end of data is waited for at least 10 minutes (RFC 5321
 * §4.5.3.2.6), whatever the route's timeout: the server has the message
 * and may be checking it, and giving up sends it again.
 */
#define MTA_END_TIMEOUT	600

static void
mta_wait(struct mta_attempt *a, enum mta_state st)
{
	int secs = a->r->timeout;

	if (st == S_END && secs < MTA_END_TIMEOUT)
		secs = MTA_END_TIMEOUT;
	a->state = st;
	conn_set_timer(&a->mc->c, secs * 1000, mta_on_timeout);
}

static void
mta_mail(struct mta_attempt *a)
{
	const char *body;
	int utf8;

	if (a->m == NULL) {
		/* A probe: everything asked for has passed. */
		a->probe_ok = 1;
		a->error[0] = '\0';
		mta_finish(a);
		return;
	}
	utf8 = mem_has_8bit(a->m->sender, strlen(a->m->sender));
	for (size_t i = 0; i < a->nrcpts && !utf8; i++)
		utf8 = mem_has_8bit(a->rcpts[i].address, strlen(a->rcpts[i].address));
	/* RFC 6531 §3.2: such addresses go only to a server that takes them. */
	if (utf8 && !(a->ehlo.ext & SMTP_EXT_SMTPUTF8)) {
		static const char why[] = "553 5.6.7 the server does not offer SMTPUTF8,"
		    " which this message's non-ASCII addresses need";

		mta_step(a, "MAIL", 0, why);
		mta_settle(a, 0, MTA_FAILED, why);
		mta_finish(a);
		return;
	}
	/* RFC 1870 §6.1: not sent to a server that says it is too large. */
	if ((a->ehlo.ext & SMTP_EXT_SIZE) && a->ehlo.size > 0 && a->m->len > a->ehlo.size) {
		char why[160];

		snprintf(why, sizeof(why), "552 5.3.4 the message (%" PRIu64 " octets) is larger"
		    " than the server takes (SIZE %" PRIu64 ")", a->m->len, a->ehlo.size);
		mta_step(a, "MAIL", 0, why);
		mta_settle(a, 0, MTA_FAILED, why);
		mta_finish(a);
		return;
	}
	/*
	 * RFC 6152 §3: 8-bit content is declared where the server takes it;
	 * for one that does not offer 8BITMIME the requester converts it, and
	 * what cannot be converted (8-bit header fields) goes as it is.
	 */
	if (a->m->eightbit && !(a->ehlo.ext & SMTP_EXT_8BITMIME) && a->m->convertible) {
		snprintf(a->error, sizeof(a->error), "%s: does not offer 8BITMIME;"
		    " the message is to be converted to 7-bit", a->r->hosts[a->host].name);
		mta_step(a, "MAIL", 0, a->error);
		a->want_7bit = 1;
		mta_finish(a);
		return;
	}
	/* This transaction's recipients: those still pending, up to the limit. */
	a->ntx = 0;
	a->naccepted = 0;
	for (size_t i = 0; i < a->nrcpts && a->ntx < MTA_TX_RCPTS; i++)
		if (a->rcpts[i].status == MTA_PENDING) {
			a->accepted[i] = 0;
			a->tx[a->ntx++] = i;
		}
	body = a->m->eightbit && (a->ehlo.ext & SMTP_EXT_8BITMIME) ? " BODY=8BITMIME" : "";
	if (a->ehlo.ext & SMTP_EXT_SIZE)
		mta_send(a, "MAIL FROM:<%s> SIZE=%" PRIu64 "%s%s", a->m->sender, a->m->len,
		    body, utf8 ? " SMTPUTF8" : "");
	else
		mta_send(a, "MAIL FROM:<%s>%s%s", a->m->sender, body, utf8 ? " SMTPUTF8" : "");
	a->rcpt_next = 0;
	/* With PIPELINING the recipients go with MAIL; their replies come in order. */
	if (a->ehlo.ext & SMTP_EXT_PIPELINING)
		for (size_t i = 0; i < a->ntx; i++)
			mta_send(a, "RCPT TO:<%s>", a->rcpts[a->tx[i]].address);
	mta_wait(a, S_MAIL);
}

/*
 * AUTH, when the route has an account: a named mechanism as asked (even
 * in clear: the administrator chose it); auto takes CRAM-MD5, then PLAIN
 * and LOGIN only inside TLS, so a password never crosses an unencrypted
 * link unless someone named the mechanism.
 */
static void
mta_auth(struct mta_attempt *a)
{
	const struct mta_route *r = a->r;
	enum mta_auth mech = r->auth;
	char buf[SASL_CLIENT_B64_MAX];
	size_t n;

	if (r->user == NULL || r->user[0] == '\0' || mech == MTA_AUTH_NONE) {
		mta_mail(a);
		return;
	}
	if (mech == MTA_AUTH_AUTO) {
		if (a->ehlo.auth & SMTP_AUTH_CRAM_MD5)
			mech = MTA_AUTH_CRAM_MD5;
		else if (a->tls_up && (a->ehlo.auth & SMTP_AUTH_PLAIN))
			mech = MTA_AUTH_PLAIN;
		else if (a->tls_up && (a->ehlo.auth & SMTP_AUTH_LOGIN))
			mech = MTA_AUTH_LOGIN;
		else {
			const char *why = a->ehlo.auth ? "the server offers only plaintext"
			    " authentication on an unencrypted connection (name the mechanism"
			    " to allow it)" : "the server offers no authentication";

			mta_step(a, "AUTH", 0, why);
			mta_defer(a, why);
			return;
		}
	}
	switch (mech) {
	case MTA_AUTH_PLAIN:
		if ((n = sasl_plain_encode(r->user, r->password ? r->password : "", buf,
		    sizeof(buf))) == 0) {
			mta_step(a, "AUTH", 0, "the account or password cannot be sent");
			mta_defer(a, "the account or password cannot be sent");
			return;
		}
		/*
		 * RFC 4954 §4: an initial response that would take the command
		 * past 512 octets goes after the server's 334 instead.
		 */
		if (n + sizeof("AUTH PLAIN \r\n") - 1 > MTA_AUTH_LINE_MAX) {
			mta_send(a, "AUTH PLAIN");
			mta_wait(a, S_AUTH_PLAIN);
		} else {
			mta_send(a, "AUTH PLAIN %s", buf);
			mta_wait(a, S_AUTH);
		}
		explicit_bzero(buf, sizeof(buf));
		break;
	case MTA_AUTH_LOGIN:
		mta_send(a, "AUTH LOGIN");
		mta_wait(a, S_AUTH_USER);
		break;
	default:
		mta_send(a, "AUTH CRAM-MD5");
		mta_wait(a, S_AUTH_CRAM);
		break;
	}
}

/* After EHLO (or HELO): STARTTLS when the policy wants it, else on to AUTH. */
static void
mta_after_ehlo(struct mta_attempt *a)
{
	enum mta_tls t = a->r->tls;

	if (!a->tls_up && (t == MTA_TLS_STARTTLS ||
	    (t == MTA_TLS_AUTO && !a->plain && (a->ehlo.ext & SMTP_EXT_STARTTLS) && a->ctx))) {
		if (!(a->ehlo.ext & SMTP_EXT_STARTTLS)) {
			mta_step(a, "STARTTLS", 0, "not offered by the server");
			mta_defer(a, "STARTTLS is required but the server does not offer it");
			return;
		}
		mta_send(a, "STARTTLS");
		mta_wait(a, S_STARTTLS);
		return;
	}
	mta_auth(a);
}

/* base64 of s into buf for LOGIN's steps. */
static const char *
mta_b64(const char *s, char *buf, size_t len)
{
	if (sasl_b64_encode((const unsigned char *)s, strlen(s), buf, len) == 0)
		buf[0] = '\0';
	return buf;
}

/*
 * The message's bytes while the output has room: dot-stuffed for DATA,
 * as they are for BDAT.  At the end, DATA's final dot.
 */
static void
mta_pump(struct mta_attempt *a)
{
	char buf[MTA_SLICE];

	while (a->mc && a->state == S_BODY && conn_unsent(&a->mc->c) < CONN_OUT_HIGH) {
		struct evbuffer *out = conn_output(&a->mc->c);
		size_t got = 0;

		if (a->offset >= a->m->len) {
			if (!a->bdat) {
				if (!a->last_lf)
					evbuffer_add(out, "\r\n", 2);
				evbuffer_add(out, ".\r\n", 3);
			}
			mta_wait(a, S_END);
			return;
		}
		if (a->m->read(a->m->read_arg, a->offset, buf,
		    a->m->len - a->offset < sizeof(buf) ? (size_t)(a->m->len - a->offset) :
		    sizeof(buf), &got) != 0 || got == 0) {
			mta_defer(a, "cannot read the message from the store");
			return;
		}
		if (a->bdat)
			evbuffer_add(out, buf, got);
		else {
			for (size_t i = 0; i < got;) {
				const char *nl = memchr(buf + i, '\n', got - i);
				size_t seg = nl ? (size_t)(nl - (buf + i)) + 1 : got - i;

				if (a->line_start && buf[i] == '.')
					evbuffer_add(out, ".", 1);
				evbuffer_add(out, buf + i, seg);
				a->line_start = nl != NULL;
				i += seg;
			}
		}
		a->last_lf = buf[got - 1] == '\n';
		a->offset += got;
		/* Progress moves the deadline. */
		conn_set_timer(&a->mc->c, a->r->timeout * 1000, mta_on_timeout);
	}
}

static void
mta_start_body(struct mta_attempt *a)
{
	a->offset = 0;
	a->line_start = 1;
	a->last_lf = 1;
	a->state = S_BODY;
	mta_pump(a);
}

/* Recipients left for a further transaction (past this one's limit, or too many). */
static int
mta_more(const struct mta_attempt *a)
{
	for (size_t i = 0; i < a->nrcpts; i++)
		if (a->rcpts[i].status == MTA_PENDING && !a->accepted[i])
			return 1;
	return 0;
}

/* After the last RCPT reply: the message, or nothing to send it to. */
static void
mta_data(struct mta_attempt *a)
{
	if (a->naccepted == 0) {
		a->error[0] = '\0';
		/* Nobody taken here: the next transaction after RSET, if any. */
		if (mta_more(a)) {
			mta_send(a, "RSET");
			mta_wait(a, S_RSET);
			return;
		}
		mta_finish(a);
		return;
	}
	if (a->bdat) {
		mta_send(a, "BDAT %" PRIu64 " LAST", a->m->len);
		mta_start_body(a);
		return;
	}
	mta_send(a, "DATA");
	mta_wait(a, S_DATA);
}

/*
 * RCPT's reply.  RFC 5321 §4.5.3.1.10: 452, and 552 (which older servers
 * say for the same), are "too many recipients" here: never permanent, and
 * after a recipient was taken the rest wait for a transaction of their
 * own, on this connection, once this one is done.
 */
static void
mta_rcpt_reply(struct mta_attempt *a, const struct smtp_reply *r)
{
	size_t i = a->tx[a->rcpt_next++];
	int too_many = r->code == 452 || r->code == 552;

	if (r->code / 100 == 2) {
		a->accepted[i] = 1;
		a->naccepted++;
	} else if (too_many && a->naccepted > 0) {
		;	/* still pending: the next transaction */
	} else {
		char buf[SMTP_REPLY_RENDER_MAX];

		a->rcpts[i].status = r->code / 100 == 5 && !too_many ? MTA_FAILED : MTA_DEFERRED;
		a->rcpts[i].host = &a->r->hosts[a->host];
		snprintf(a->rcpts[i].reply, sizeof(a->rcpts[i].reply), "%s",
		    smtp_reply_render(r, buf, sizeof(buf)));
	}
	if (a->rcpt_next == a->ntx) {
		mta_data(a);
		return;
	}
	if (!(a->ehlo.ext & SMTP_EXT_PIPELINING))
		mta_send(a, "RCPT TO:<%s>", a->rcpts[a->tx[a->rcpt_next]].address);
	mta_wait(a, S_RCPT);
}

/* One whole reply from the server, in the state that awaited it. */
static void
mta_reply(struct mta_attempt *a, const struct smtp_reply *r)
{
	int cls = r->code / 100;
	char buf[SASL_CLIENT_B64_MAX > 1024 ? SASL_CLIENT_B64_MAX : 1024];

	switch (a->state) {
	case S_GREETING:
		mta_step_reply(a, "greeting", cls == 2, r);
		if (cls != 2) {
			mta_next_host(a, smtp_reply_render(r, buf, sizeof(buf)));
			return;
		}
		mta_send(a, "EHLO %s", a->r->helo);
		mta_wait(a, S_EHLO);
		return;
	case S_EHLO:
		if (cls == 2) {
			smtp_ehlo_parse(r, &a->ehlo);
			mta_step_reply(a, "EHLO", 1, r);
			mta_after_ehlo(a);
		} else if (cls == 5 && !a->tls_up) {
			mta_step_reply(a, "EHLO", 0, r);
			mta_send(a, "HELO %s", a->r->helo);
			mta_wait(a, S_HELO);
		} else {
			mta_step_reply(a, "EHLO", 0, r);
			mta_settle_reply(a, 0, r);
			mta_finish(a);
		}
		return;
	case S_HELO:
		mta_step_reply(a, "HELO", cls == 2, r);
		if (cls != 2) {
			mta_settle_reply(a, 0, r);
			mta_finish(a);
			return;
		}
		memset(&a->ehlo, 0, sizeof(a->ehlo));
		mta_after_ehlo(a);
		return;
	case S_STARTTLS:
		mta_step_reply(a, "STARTTLS", cls == 2, r);
		if (cls != 2) {
			if (a->r->tls == MTA_TLS_AUTO) {
				mta_auth(a);	/* offered, then refused: go on in clear */
				return;
			}
			mta_defer(a, smtp_reply_render(r, buf, sizeof(buf)));
			return;
		}
		/* Bytes after the 220 came before TLS: never read them as if inside it. */
		if (evbuffer_get_length(bufferevent_get_input(a->mc->c.bev)) > 0) {
			mta_defer(a, "data after the reply to STARTTLS");
			return;
		}
		smtp_reply_parser_init(&a->p);
		if (conn_start_tls_client(&a->mc->c, a->ctx, a->r->hosts[a->host].name,
		    a->r->tls != MTA_TLS_AUTO && a->r->verify) != 0) {
			a->mc->a = NULL;	/* the connection is being freed */
			a->mc = NULL;
			if (!mta_plain_again(a, "cannot start TLS"))
				mta_defer(a, "cannot start TLS");
			return;
		}
		mta_wait(a, S_TLS);
		return;
	case S_AUTH_USER:
	case S_AUTH_PASS:
		if (r->code != 334) {
			mta_step_reply(a, "AUTH", 0, r);
			mta_defer(a, smtp_reply_render(r, buf, sizeof(buf)));
			return;
		}
		mta_send(a, "%s", mta_b64(a->state == S_AUTH_USER ? a->r->user :
		    a->r->password ? a->r->password : "", buf, sizeof(buf)));
		explicit_bzero(buf, sizeof(buf));
		mta_wait(a, a->state == S_AUTH_USER ? S_AUTH_PASS : S_AUTH);
		return;
	case S_AUTH_PLAIN:
		if (r->code != 334) {
			mta_step_reply(a, "AUTH", 0, r);
			mta_defer(a, smtp_reply_render(r, buf, sizeof(buf)));
			return;
		}
		sasl_plain_encode(a->r->user, a->r->password ? a->r->password : "", buf,
		    sizeof(buf));
		mta_send(a, "%s", buf);
		explicit_bzero(buf, sizeof(buf));
		mta_wait(a, S_AUTH);
		return;
	case S_AUTH_CRAM:
		if (r->code != 334) {
			mta_step_reply(a, "AUTH", 0, r);
			mta_defer(a, smtp_reply_render(r, buf, sizeof(buf)));
			return;
		}
		if (sasl_cram_md5_response(a->r->user, a->r->password ? a->r->password : "",
		    r->text, r->textlen, buf, sizeof(buf)) == 0) {
			/* RFC 4954 §4: "*" cancels the exchange; QUIT follows it. */
			mta_step_reply(a, "AUTH", 0, r);
			mta_send(a, "*");
			mta_defer(a, "a CRAM-MD5 challenge that is not base64");
			return;
		}
		mta_send(a, "%s", buf);
		explicit_bzero(buf, sizeof(buf));
		mta_wait(a, S_AUTH);
		return;
	case S_AUTH:
		mta_step_reply(a, "AUTH", cls == 2, r);
		if (cls != 2) {
			/* Credentials the server refuses: the administrator must act; retry later. */
			mta_defer(a, smtp_reply_render(r, buf, sizeof(buf)));
			return;
		}
		mta_mail(a);
		return;
	case S_MAIL:
		if (cls != 2) {
			mta_settle_reply(a, 0, r);
			mta_finish(a);
			return;
		}
		a->bdat = a->r->chunking && (a->ehlo.ext & SMTP_EXT_CHUNKING);
		if (!(a->ehlo.ext & SMTP_EXT_PIPELINING))
			mta_send(a, "RCPT TO:<%s>", a->rcpts[a->tx[0]].address);
		mta_wait(a, S_RCPT);
		return;
	case S_RCPT:
		mta_rcpt_reply(a, r);
		return;
	case S_DATA:
		if (r->code / 100 == 3) {
			mta_start_body(a);
			return;
		}
		/*
		 * A 2xx here took no message: nothing was delivered, whatever it
		 * says (a server out of step, or one that lies).  Deferred, as
		 * every reply that is not a verdict.
		 */
		if (r->code / 100 == 2) {
			char said[SMTP_REPLY_RENDER_MAX], why[SMTP_REPLY_RENDER_MAX + 64];

			smtp_reply_render(r, said, sizeof(said));
			snprintf(why, sizeof(why), "DATA answered %s, not 354", said);
			mta_settle(a, 1, MTA_DEFERRED, why);
		} else
			mta_settle_reply(a, 1, r);
		mta_finish(a);
		return;
	case S_END:
		mta_settle_reply(a, 1, r);
		a->error[0] = '\0';
		/* Recipients left for a transaction of their own: the next one. */
		if (cls == 2 && mta_more(a)) {
			mta_mail(a);
			return;
		}
		/* Or not, after a refusal: they wait with the reply that stopped them. */
		if (mta_more(a))
			snprintf(a->error, sizeof(a->error), "%s: not sent, after %s to the end"
			    " of an earlier transaction's data", a->r->hosts[a->host].name,
			    smtp_reply_render(r, buf, sizeof(buf)));
		mta_finish(a);
		return;
	case S_RSET:
		if (cls != 2) {
			mta_defer(a, smtp_reply_render(r, buf, sizeof(buf)));
			return;
		}
		mta_mail(a);
		return;
	default:
		/* A reply nobody asked for (while connecting, or during the body). */
		mta_step(a, state_names[a->state], 0, "a reply out of turn");
		mta_defer(a, "a reply out of turn");
		return;
	}
}

static enum conn_step
mta_input(struct conn *c, struct evbuffer *in)
{
	struct mta_conn *mc = (struct mta_conn *)c;
	struct mta_attempt *a = mc->a;
	struct evbuffer_iovec v;
	size_t used = 0;

	if (a == NULL) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return CONN_NEED_INPUT;
	}
	if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
		return CONN_NEED_INPUT;
	switch (smtp_reply_parse(&a->p, v.iov_base, v.iov_len, &used)) {
	case SMTP_REPLY_MORE:
		evbuffer_drain(in, used);
		return CONN_CONTINUE;	/* the next chunk, if any, in the next step */
	case SMTP_REPLY_DONE:
		evbuffer_drain(in, used);
		mta_reply(a, &a->p.reply);
		return CONN_CONTINUE;
	default:
		evbuffer_drain(in, evbuffer_get_length(in));
		/* relay test shows it as the step that got it. */
		mta_step(a, state_names[a->state], 0, smtp_reply_strerror(a->p.error));
		mta_defer(a, smtp_reply_strerror(a->p.error));
		return CONN_NEED_INPUT;
	}
}

static void
mta_connected(struct conn *c, int tls)
{
	struct mta_conn *mc = (struct mta_conn *)c;
	struct mta_attempt *a = mc->a;
	char buf[512];

	if (a == NULL)
		return;
	if (!tls) {
		mta_step(a, "connect", 1, c->peer);
		if (a->r->tls == MTA_TLS_IMPLICIT) {
			if (conn_start_tls_client(c, a->ctx, a->r->hosts[a->host].name,
			    a->r->verify) != 0) {
				mc->a = NULL;	/* the connection is being freed */
				a->mc = NULL;
				mta_next_host(a, "cannot start TLS");
				return;
			}
			mta_wait(a, S_TLS);
			return;
		}
		mta_wait(a, S_GREETING);
		return;
	}
	a->tls_up = 1;
	conn_tls_info(c, buf, sizeof(buf));
	strcat(buf, "; ");
	tls_peer_describe(bufferevent_openssl_get_ssl(c->bev), buf + strlen(buf),
	    sizeof(buf) - strlen(buf));
	mta_step(a, "TLS", 1, buf);
	if (a->r->tls == MTA_TLS_IMPLICIT) {
		mta_wait(a, S_GREETING);
		return;
	}
	/* RFC 3207 §4.2: everything learnt before TLS is forgotten. */
	memset(&a->ehlo, 0, sizeof(a->ehlo));
	mta_send(a, "EHLO %s", a->r->helo);
	mta_wait(a, S_EHLO);
}

static void
mta_gone(struct conn *c, const char *why)
{
	struct mta_conn *mc = (struct mta_conn *)c;
	struct mta_attempt *a = mc->a;
	char buf[256];

	if (a == NULL)
		return;
	a->mc = NULL;
	mc->a = NULL;
	if (c->tls && a->state == S_TLS) {
		SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
		long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;

		snprintf(buf, sizeof(buf), "TLS handshake failed%s%s", v != X509_V_OK ?
		    ": " : "", v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
		why = buf;
	}
	mta_step(a, state_names[a->state], 0, why);
	if (a->state == S_TLS && mta_plain_again(a, why))
		return;
	if (a->state <= S_GREETING)
		mta_next_host(a, why);
	else
		mta_defer(a, why);
}

static void
mta_writable(struct conn *c)
{
	struct mta_conn *mc = (struct mta_conn *)c;

	if (mc->a && mc->a->state == S_BODY)
		mta_pump(mc->a);
}

static void
mta_conn_shutdown(struct conn *c)
{
	conn_close(c);
}

static void
mta_conn_release(struct conn *c)
{
	struct mta_conn *mc = (struct mta_conn *)c;

	if (mc->a)
		mc->a->mc = NULL;
	if (mc->prev)
		mc->prev->next = mc->next;
	else
		mta_conns = mc->next;
	if (mc->next)
		mc->next->prev = mc->prev;
	free(mc);
}

static const struct conn_ops mta_conn_ops = {
	.input = mta_input,
	.writable = mta_writable,
	.connected = mta_connected,
	.gone = mta_gone,
	.shutdown = mta_conn_shutdown,
	.release = mta_conn_release,
};

static void
mta_finish_later(evutil_socket_t fd, short what, void *arg)
{
	/* Cancelled meanwhile (no done, no recipients): mta_finish only frees. */
	mta_finish(arg);
}

/* Connect to the current host, or the next that can be reached; none: done. */
static void
mta_try_host(struct mta_attempt *a)
{
	for (; a->host < a->r->nhosts; a->host++) {
		struct sockaddr_storage ss = a->r->hosts[a->host].addr;
		struct mta_conn *mc = xcalloc(1, sizeof(*mc));
		char id[40];

		if (ss.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&ss)->sin6_port = htons(a->r->port);
		else
			((struct sockaddr_in *)&ss)->sin_port = htons(a->r->port);
		snprintf(id, sizeof(id), "%s.%zu", a->id, a->host);
		mc->a = a;
		a->mc = mc;
		a->tls_up = 0;
		memset(&a->ehlo, 0, sizeof(a->ehlo));
		smtp_reply_parser_init(&a->p);
		if (conn_connect(&mc->c, a->base, &mta_conn_ops, (struct sockaddr *)&ss, id) == 0) {
			mc->next = mta_conns;
			if (mta_conns)
				mta_conns->prev = mc;
			mta_conns = mc;
			mta_wait(a, S_CONNECTING);
			return;
		}
		snprintf(a->error, sizeof(a->error), "%s: %s", a->r->hosts[a->host].name,
		    strerror(errno));
		mta_step(a, "connect", 0, a->error);
		a->mc = NULL;
		free(mc);
	}
	if (a->r->nhosts == 0 && a->error[0] == '\0')
		snprintf(a->error, sizeof(a->error), "no host to connect to");
	if (a->starting) {
		/* Not from inside mta_start(): the caller has no attempt yet. */
		a->finishing = 1;
		event_base_once(a->base, -1, EV_TIMEOUT, mta_finish_later, a, &(struct timeval){ 0, 0 });
		return;
	}
	mta_finish(a);
}

struct mta_attempt *
mta_start(struct event_base *base, SSL_CTX *ctx, const char *id, const struct mta_route *route,
    const struct mta_message *msg, struct mta_rcpt *rcpts, size_t nrcpts, mta_step_cb *step,
    mta_done_cb *done, void *arg)
{
	struct mta_attempt *a = xcalloc(1, sizeof(*a));

	a->base = base;
	a->ctx = ctx;
	snprintf(a->id, sizeof(a->id), "%s", id);
	a->r = route;
	a->m = msg;
	a->rcpts = rcpts;
	a->nrcpts = msg ? nrcpts : 0;
	a->accepted = xcalloc(nrcpts ? nrcpts : 1, 1);
	a->tx = xcalloc(nrcpts < MTA_TX_RCPTS ? (nrcpts ? nrcpts : 1) : MTA_TX_RCPTS,
	    sizeof(*a->tx));
	a->step = step;
	a->done = done;
	a->arg = arg;
	a->starting = 1;
	mta_try_host(a);
	a->starting = 0;
	return a;
}

void
mta_cancel(struct mta_attempt *a)
{
	a->done = NULL;
	a->step = NULL;
	a->rcpts = NULL;	/* the caller's, and going away with it */
	a->nrcpts = 0;
	if (a->finishing)
		return;		/* freed when the scheduled finish comes */
	mta_free(a);
}

void
mta_shutdown(void)
{
	while (mta_conns) {
		struct mta_conn *mc = mta_conns;

		if (mc->a) {
			mc->a->mc = NULL;
			mc->a = NULL;
		}
		conn_free_now(&mc->c);	/* unlinks it */
	}
}

int
mta_probe_ok(const struct mta_attempt *a)
{
	return a->probe_ok;
}

int
mta_wants_7bit(const struct mta_attempt *a)
{
	return a->want_7bit;
}
