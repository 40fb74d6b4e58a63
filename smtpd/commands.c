/*
 * commands.c - the SMTP command table and one function per command.
 */
#include "smtpd/smtpd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "lib/log.h"

#define ST(x)	(1u << (x))
#define S_ANY_CMD	(ST(SMTP_S_CONNECTED) | ST(SMTP_S_READY) | ST(SMTP_S_MAIL) | ST(SMTP_S_RCPT))

struct smtp_cmd_def {
	enum smtp_verb verb;
	unsigned states;	/* where it is allowed; elsewhere 503 */
	void (*fn)(struct smtp_session *s, const char *arg, size_t len);
	int takes_arg;		/* 0: an argument is a syntax error */
	unsigned flags;
};

#define BETWEEN_CHUNKS	0x01	/* allowed between BDAT chunks */

/* A BDAT transaction has had chunks and waits for more. */
static int
smtp_between_chunks(const struct smtp_session *s)
{
	return s->txn && s->txn->data_started && s->txn->data.bdat && s->state == SMTP_S_RCPT;
}

void
smtp_txn_free(struct smtp_txn **tp)
{
	struct smtp_txn *t = *tp;

	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nrcpts; i++)
		free(t->rcpts[i].address);
	free(t->rcpts);
	alias_result_clear(&t->targets);
	if (t->spool_mem)
		evbuffer_free(t->spool_mem);
	if (t->spool_fd >= 0)
		close(t->spool_fd);
	free(t);
	*tp = NULL;
}

/* After HELO/EHLO/RSET/STARTTLS: no transaction. */
static void
smtp_reset(struct smtp_session *s)
{
	smtp_txn_free(&s->txn);
	if (s->state == SMTP_S_MAIL || s->state == SMTP_S_RCPT)
		smtp_set_state(s, SMTP_S_READY);
}

static void
cmd_helo(struct smtp_session *s, const char *arg, size_t len, int esmtp)
{
	const struct umbox_config *cfg = s->server->cfg;

	if (len == 0 || smtp_parse_helo(arg, len) != 0) {
		smtp_reply(s, "501 5.5.4 Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
		return;
	}
	free(s->helo);
	s->helo = xstrndup(arg, len);
	s->esmtp = esmtp;
	smtp_txn_free(&s->txn);
	smtp_set_state(s, SMTP_S_READY);
	if (!esmtp) {
		smtp_reply(s, "250 %s", cfg->general.hostname);
		return;
	}
	smtp_reply(s, "250-%s\n250-PIPELINING\n250-SIZE %llu\n250-8BITMIME\n"
	    "250-ENHANCEDSTATUSCODES\n%s%s250-CHUNKING\n250 SMTPUTF8",
	    cfg->general.hostname, (unsigned long long)cfg->smtpd.max_message_size,
	    !s->c.tls && server_has_tls(s->server) ? "250-STARTTLS\n" : "",
	    smtp_may_auth(s) ? "250-AUTH PLAIN LOGIN\n" : "");
}

static void
cmd_ehlo(struct smtp_session *s, const char *arg, size_t len)
{
	cmd_helo(s, arg, len, 1);
}

static void
cmd_helo_plain(struct smtp_session *s, const char *arg, size_t len)
{
	cmd_helo(s, arg, len, 0);
}

static void
cmd_starttls(struct smtp_session *s, const char *arg, size_t len)
{
	if (s->c.tls) {
		smtp_reply(s, "503 5.5.1 Error: TLS already active");
		return;
	}
	if (!server_has_tls(s->server)) {
		smtp_reply(s, "454 4.7.0 TLS not available");
		return;
	}
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	smtp_start_tls(s);
}

static void
cmd_auth(struct smtp_session *s, const char *arg, size_t len)
{
	if (s->user) {
		smtp_reply(s, "503 5.5.1 Error: already authenticated");
		return;
	}
	if (!smtp_may_auth(s)) {
		smtp_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
		return;
	}
	if (s->txn) {
		smtp_reply(s, "503 5.5.1 Error: AUTH not allowed during a mail transaction");
		return;
	}
	smtp_auth_start(s, arg, len);
}

/*
 * The path and parameters of MAIL (rcpt 0) or RCPT (rcpt 1); on a syntax
 * error the reply is sent and -1 returned.
 */
static int
smtp_path_args(struct smtp_session *s, const char *arg, size_t len, int rcpt, int utf8,
    struct smtp_path_args *pa)
{
	enum addr_error ae = ADDR_OK;

	switch (smtp_parse_path_args(arg, len, rcpt ? "TO:" : "FROM:", rcpt, utf8, pa, &ae)) {
	case SMTP_ARGS_OK:
		return 0;
	case SMTP_ARGS_BAD_PATH:
		smtp_reply(s, "501 %s Bad %s address syntax: %s", rcpt ? "5.1.3" : "5.1.7",
		    rcpt ? "recipient" : "sender", addr_strerror(ae));
		break;
	case SMTP_ARGS_PATH_TOO_LONG:
		smtp_reply(s, "501 5.5.4 Path too long");
		break;
	default:
		smtp_reply(s, "501 5.5.4 Syntax: %s", rcpt ? "RCPT TO:<address>" :
		    "MAIL FROM:<address>");
		break;
	}
	return -1;
}

/* MAIL FROM passed: a new transaction. */
static void
mail_accept(struct smtp_session *s, const struct addr *sender, uint64_t size, int smtputf8)
{
	struct smtp_txn *t = xcalloc(1, sizeof(*t));

	t->sender = *sender;
	t->declared_size = size;
	t->smtputf8 = smtputf8;
	t->spool_fd = -1;
	t->seq = ++s->txn_seq;
	smtp_txn_free(&s->txn);
	s->txn = t;
	smtp_set_state(s, SMTP_S_MAIL);
	smtp_reply(s, "250 2.1.0 Ok");
}

/*
 * A lookup for MAIL or RCPT, made through the loop's readers (maybe on
 * another thread): it owns copies of what it reads with, and its done()
 * finishes the command on the loop.  The session waits meanwhile, unless
 * the answer came at once.
 */
struct smtp_lookup {
	struct store_read read;
	struct smtp_session *s;
	struct alias_resolver resolver;	/* the loop's, with the reader's store */
	struct addr path;
	uint64_t size;			/* MAIL SIZE=, or the transaction's */
	int smtputf8;
	struct store_user user;		/* MAIL: who is sending (id, login, email, extension) */
	int owned;			/* MAIL: 1, 0, or -1 on a store error */
	enum alias_status st;		/* RCPT */
	struct alias_result res;
	int full;
	char full_why[200];		/* RCPT: which mailbox is full, for the log */
};

static struct smtp_lookup *
lookup_new(struct smtp_session *s, const struct addr *path)
{
	struct smtp_lookup *l = xcalloc(1, sizeof(*l));

	l->s = s;
	l->resolver = *smtp_resolver(s);
	l->path = *path;
	return l;
}

static void
lookup_free(struct smtp_lookup *l)
{
	alias_result_clear(&l->res);
	store_user_clear(&l->user);
	free(l);
}

/* The store did not answer in time: the command fails for now, the session goes on. */
static void
lookup_timeout(struct conn *c)
{
	struct smtp_session *s = (struct smtp_session *)c;

	log_warn("%s: the store did not answer within %u s", s->c.id,
	    store_wait_limit(s->server->cfg));
	smtp_lookup_cancel(s);
	smtp_reply(s, "451 4.3.0 Temporary lookup failure");
	smtp_resume(s);
}

static void
lookup_submit(struct smtp_lookup *l, void (*work)(struct store *, struct store_read *),
    void (*done)(struct store_read *, int))
{
	struct smtp_session *s = l->s;

	l->read.work = work;
	l->read.done = done;
	s->lookup = l;
	if (!store_read_submit(s->loop->readers, &l->read)) {
		conn_wait(&s->c);
		conn_set_timer(&s->c, store_wait_limit(s->server->cfg) * 1000, lookup_timeout);
	}
}

/* Back on the loop: the session's, unless it went away (then freed here). */
static struct smtp_session *
lookup_finished(struct smtp_lookup *l, int cancelled)
{
	if (cancelled) {
		lookup_free(l);
		return NULL;
	}
	l->s->lookup = NULL;
	return l->s;
}

static void
lookup_resume(struct smtp_lookup *l)
{
	if (!l->read.now)
		smtp_resume(l->s);
	lookup_free(l);
}

void
smtp_lookup_cancel(struct smtp_session *s)
{
	if (s->lookup) {
		store_read_cancel(&s->lookup->read);
		s->lookup = NULL;
	}
}

/* The user as the store has it now: deleted since AUTH (its id may be another's). */
#define SENDER_USER_GONE	(-2)

static void
sender_work(struct store *st, struct store_read *r)
{
	struct smtp_lookup *l = COMPLETION_OWNER(r, struct smtp_lookup, read);
	struct store_user now;
	int status = store_user_get_by_id(st, l->user.id, &now);

	l->resolver.store = st;
	if (status == STORE_OK && strcasecmp(now.login, l->user.login) != 0)
		status = STORE_NOTFOUND;
	if (status == STORE_OK)
		l->owned = alias_sender_owned(&l->resolver, &now, l->path.mailbox);
	else
		l->owned = status == STORE_NOTFOUND ? SENDER_USER_GONE : -1;
	store_user_clear(&now);
}

static void
sender_done(struct store_read *r, int cancelled)
{
	struct smtp_lookup *l = COMPLETION_OWNER(r, struct smtp_lookup, read);
	struct smtp_session *s = lookup_finished(l, cancelled);

	if (s == NULL)
		return;
	if (l->owned == SENDER_USER_GONE) {
		/* Deleted while logged in: the session speaks for nobody now. */
		log_info("%s: the authenticated user %s no longer exists", s->c.id,
		    l->user.login);
		store_user_free(&s->user);
		smtp_reply(s, "530 5.7.0 Authentication required (the account %s no longer"
		    " exists)", l->user.login);
	} else if (l->owned < 0)
		smtp_reply(s, "451 4.3.0 Temporary lookup failure");
	else if (!l->owned)
		smtp_reply(s, "553 5.7.1 Sender address <%s> does not belong to user %s",
		    l->path.mailbox, l->user.login);
	else
		mail_accept(s, &l->path, l->size, l->smtputf8);
	lookup_resume(l);
}

static void
cmd_mail(struct smtp_session *s, const char *arg, size_t len)
{
	struct server *srv = s->server;
	struct smtp_path_args pa;
	const struct smtp_param *p;
	uint64_t size = 0;

	if (s->kind != SMTP_PORT_MX && s->user == NULL) {
		smtp_reply(s, "530 5.7.0 Authentication required");
		return;
	}
	/* UTF-8 in the path is allowed here and refused below without SMTPUTF8. */
	if (smtp_path_args(s, arg, len, 0, 1, &pa) != 0)
		return;
	for (size_t i = 0; i < pa.nparams; i++) {
		const struct smtp_param *q = &pa.params[i];

		if (q->keylen == 4 && strncasecmp(q->key, "SIZE", 4) == 0) {
			/*
			 * RFC 1870: 1*20DIGIT.  Twenty digits too large for 64 bits
			 * are still "too large"; a longer value is bad syntax.
			 */
			int digits = q->value && q->valuelen > 0 && q->valuelen <= 20;

			for (size_t k = 0; digits && k < q->valuelen; k++)
				digits = q->value[k] >= '0' && q->value[k] <= '9';

			if (!digits) {
				smtp_reply(s, "501 5.5.4 Bad SIZE parameter");
				return;
			}
			if (smtp_parse_number(q->value, q->valuelen, &size) != 0 ||
			    size > srv->cfg->smtpd.max_message_size) {
				smtp_reply(s, "552 5.3.4 Message size exceeds fixed limit");
				return;
			}
		} else if (q->keylen == 4 && strncasecmp(q->key, "BODY", 4) == 0) {
			if (q->value == NULL || !((q->valuelen == 4 && strncasecmp(q->value, "7BIT", 4) == 0) ||
			    (q->valuelen == 8 && strncasecmp(q->value, "8BITMIME", 8) == 0))) {
				smtp_reply(s, "501 5.5.4 Unsupported BODY type");
				return;
			}
		} else if (q->keylen == 8 && strncasecmp(q->key, "SMTPUTF8", 8) == 0) {
			/* RFC 6531 §3.4: only where EHLO offered it (HELO offers nothing). */
			if (!s->esmtp) {
				smtp_reply(s, "555 5.5.4 SMTPUTF8 needs EHLO");
				return;
			}
			if (q->value) {
				smtp_reply(s, "501 5.5.4 SMTPUTF8 takes no value");
				return;
			}
		} else if (q->keylen == 4 && strncasecmp(q->key, "AUTH", 4) == 0) {
			/* RFC 4954 §5: accepted and not trusted. */
		} else {
			smtp_reply(s, "555 5.5.4 Unsupported parameter %.*s", (int)q->keylen, q->key);
			return;
		}
	}
	p = smtp_param_find(&pa, "SMTPUTF8");
	if (!p && (pa.path.flags & ADDR_F_UTF8)) {
		smtp_reply(s, "553 5.6.7 Non-ASCII address needs SMTPUTF8");
		return;
	}
	/*
	 * Authenticated, on any port: the sender must be the user's own
	 * address (on the MX port too, or a user would send as anyone there).
	 */
	if (s->user && !(pa.path.flags & ADDR_F_NULL)) {
		struct smtp_lookup *l = lookup_new(s, &pa.path);

		l->size = size;
		l->smtputf8 = p != NULL;
		l->user.id = s->user->id;
		l->user.login = xstrdup(s->user->login);
		l->user.email = s->user->email ? xstrdup(s->user->email) : NULL;
		l->user.extension = s->user->extension ? xstrdup(s->user->extension) : NULL;
		lookup_submit(l, sender_work, sender_done);
		return;
	}
	if (s->user) {
		smtp_reply(s, "553 5.7.1 Sender address <> does not belong to user %s",
		    s->user->login);
		return;
	}
	mail_accept(s, &pa.path, size, p != NULL);
}

/*
 * Is this recipient full at RCPT?  Only when none of its targets can
 * take a message of size bytes (SIZE=, else 0): an outside address
 * always can, a mailbox when usage + size stays within its quota, and a
 * mailbox already at its quota takes nothing.  A full mailbox among
 * others (an alias) does not make it full: the message will wait for
 * that one in the queue.  Who is full and by how much goes to the log
 * only (why); the reply names nothing but the recipient as given.
 */
static int
over_quota(struct store *st, const struct alias_result *res, uint64_t size, char *why,
    size_t whylen)
{
	uint64_t need = size ? size : 1;
	int room = 0;

	for (size_t i = 0; i < res->n; i++) {
		struct store_user u;

		if (res->v[i].remote || store_user_get_by_id(st, res->v[i].user_id, &u) != STORE_OK) {
			room = 1;	/* a store error: the commit decides */
			continue;
		}
		if (u.quota == 0 || (u.used + need <= u.quota && u.used + need >= u.used))
			room = 1;
		else
			snprintf(why, whylen, "mailbox=%s full: %llu + %llu > %llu bytes", u.login,
			    (unsigned long long)u.used, (unsigned long long)need,
			    (unsigned long long)u.quota);
		store_user_clear(&u);
	}
	return !room;
}

/* The lookups and the quota check read one view. */
static void
rcpt_work(struct store *st, struct store_read *r)
{
	struct smtp_lookup *l = COMPLETION_OWNER(r, struct smtp_lookup, read);

	l->resolver.store = st;
	store_read_begin(st);
	l->st = alias_resolve(&l->resolver, l->path.mailbox, &l->res);
	l->full = l->st == ALIAS_OK &&
	    over_quota(st, &l->res, l->size, l->full_why, sizeof(l->full_why));
	store_read_end(st);
}

/*
 * A recipient the store could not resolve (its server out of reach): one
 * line a second per loop, so that an outage under a flood of RCPTs does
 * not flood the log; the next line counts the ones not written.
 */
static void
lookup_warn(struct smtp_session *s, const char *rcpt, const char *why)
{
	static _Thread_local time_t last;
	static _Thread_local unsigned long unsaid;
	time_t now = time(NULL);

	if (now == last) {
		unsaid++;
		return;
	}
	last = now;
	if (unsaid)
		log_warn("%s: resolving <%s>: %s (and %lu more recipients since the last such line)",
		    s->c.id, rcpt, why, unsaid);
	else
		log_warn("%s: resolving <%s>: %s", s->c.id, rcpt, why);
	unsaid = 0;
}

static void
rcpt_done(struct store_read *r, int cancelled)
{
	struct smtp_lookup *l = COMPLETION_OWNER(r, struct smtp_lookup, read);
	struct smtp_session *s = lookup_finished(l, cancelled);
	struct smtp_txn *t;
	const char *rcpt = l->path.mailbox;
	char esc[300];

	if (s == NULL)
		return;
	t = s->txn;
	switch (l->st) {
	case ALIAS_OK:
		break;
	case ALIAS_UNKNOWN:
		smtp_reply(s, "550 5.1.1 <%s>: Recipient address rejected: User unknown", rcpt);
		goto out;
	case ALIAS_INVALID:
		smtp_reply(s, "501 5.1.3 Bad recipient address syntax");
		goto out;
	default:
		lookup_warn(s, rcpt, l->res.error);
		smtp_reply(s, "451 4.3.0 <%s>: Temporary lookup failure", rcpt);
		goto out;
	}
	/*
	 * Outside domains only for clients that may relay; relay tricks in a
	 * local domain were already unknown users above and never get here.
	 */
	if (!l->res.local_domain && (!smtp_may_relay(s) || (l->path.flags &
	    (ADDR_F_RELAY_CHARS | ADDR_F_QUOTED | ADDR_F_ADDR_LITERAL | ADDR_F_SOURCE_ROUTE)))) {
		smtp_reply(s, "554 5.7.1 <%s>: Relay access denied", rcpt);
		goto out;
	}
	/*
	 * A recipient already accepted has a target with room, so the message
	 * will be stored: a full one after it is accepted too and waits in
	 * the queue (SPEC §4), refused only when it would be the only one.
	 */
	if (l->full) {
		log_info("%s: rcpt=<%s> %s%s", s->c.id, log_escape(esc, sizeof(esc), rcpt,
		    strlen(rcpt)), l->full_why, t->nrcpts ? "; its copy waits in the queue" : "");
		if (t->nrcpts == 0) {
			smtp_reply(s, "452 4.2.2 <%s>: Mailbox full", rcpt);
			goto out;
		}
	}
	alias_targets_merge(&t->targets, &l->res);
	t->rcpts = xreallocarray(t->rcpts, t->nrcpts + 1, sizeof(*t->rcpts));
	t->rcpts[t->nrcpts].address = xstrdup(rcpt);
	t->rcpts[t->nrcpts].local = l->res.local_domain;
	t->nrcpts++;
	smtp_set_state(s, SMTP_S_RCPT);
	smtp_reply(s, "250 2.1.5 Ok");
out:
	lookup_resume(l);
}

/*
 * RCPT answered from the directory in memory (PostgreSQL), when it can
 * be: the recipient is found, and none of its mailboxes has a quota,
 * which only the database knows how full.  Anything else (not found,
 * maybe only not yet; a quota; an error) goes to the database.
 */
static int
rcpt_from_directory(struct smtp_lookup *l)
{
	struct store *dir = store_dirview_get(l->s->loop->directory);
	struct store_user u;

	if (dir == NULL)
		return 0;
	l->resolver.store = dir;
	l->st = alias_resolve(&l->resolver, l->path.mailbox, &l->res);
	for (size_t i = 0; i < l->res.n && l->st == ALIAS_OK; i++) {
		if (l->res.v[i].remote)
			continue;
		if (store_user_get_by_id(dir, l->res.v[i].user_id, &u) != STORE_OK || u.quota)
			l->st = ALIAS_ERROR;
		store_user_clear(&u);
	}
	if (l->st != ALIAS_OK) {
		alias_result_clear(&l->res);
		memset(&l->res, 0, sizeof(l->res));
		l->resolver = *smtp_resolver(l->s);
		return 0;
	}
	l->s->lookup = l;
	l->read.now = 1;
	rcpt_done(&l->read, 0);
	return 1;
}

static void
cmd_rcpt(struct smtp_session *s, const char *arg, size_t len)
{
	struct server *srv = s->server;
	struct smtp_txn *t = s->txn;
	struct smtp_path_args pa;
	struct smtp_lookup *l;

	/* UTF-8 in the path is allowed here and refused below without SMTPUTF8. */
	if (smtp_path_args(s, arg, len, 1, 1, &pa) != 0)
		return;
	if (!t->smtputf8 && (pa.path.flags & ADDR_F_UTF8)) {
		smtp_reply(s, "553 5.6.7 Non-ASCII address needs SMTPUTF8");
		return;
	}
	if (pa.nparams > 0) {
		smtp_reply(s, "555 5.5.4 Unsupported parameter %.*s", (int)pa.params[0].keylen,
		    pa.params[0].key);
		return;
	}
	/* RFC 5321 §4.1.1.3: the null path never, a bare name only for postmaster. */
	if ((pa.path.flags & ADDR_F_NULL) || ((pa.path.flags & ADDR_F_NO_DOMAIN) &&
	    strcasecmp(pa.path.mailbox, "postmaster") != 0)) {
		smtp_reply(s, "501 5.1.3 Bad recipient address syntax");
		return;
	}
	if (t->nrcpts >= srv->cfg->smtpd.max_recipients) {
		t->overshoot++;
		smtp_reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	/* A source route is dropped; the rest is judged on its own (RFC 5321 §4.1.1.3). */
	l = lookup_new(s, &pa.path);
	l->size = t->declared_size;
	if (!rcpt_from_directory(l))
		lookup_submit(l, rcpt_work, rcpt_done);
}

static void
cmd_data(struct smtp_session *s, const char *arg, size_t len)
{
	if (smtp_message_begin(s, 0) != 0)
		return;
	smtp_set_state(s, SMTP_S_DATA);
	smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

/*
 * BDAT n [LAST]: the chunk's bytes follow at once, whatever the state;
 * they are always read (and thrown away when the command is refused),
 * so the byte stream stays in step.
 */
static void
cmd_bdat(struct smtp_session *s, const char *arg, size_t len)
{
	uint64_t size;
	int last;

	if (smtp_parse_bdat(arg, len, &size, &last) != 0) {
		/* Without a valid size we cannot find the next command: give up. */
		smtp_reply(s, "501 5.5.4 Syntax: BDAT size [LAST]");
		conn_close(&s->c);
		return;
	}
	if (s->txn == NULL || (s->state != SMTP_S_RCPT && !s->txn->data_started) ||
	    (s->txn->data_started && !s->txn->data.bdat)) {
		/* Refused: read the chunk anyway into a throwaway transaction. */
		if (s->txn == NULL) {
			s->txn = xcalloc(1, sizeof(*s->txn));
			s->txn->spool_fd = -1;
		}
		s->txn->bdat_discard = 1;
	} else if (!s->txn->data_started && smtp_message_begin(s, 1) != 0) {
		s->txn->bdat_discard = 1;
	}
	if (s->txn->bdat_discard)
		s->data_started = time(NULL);
	s->txn->bdat_left = size;
	s->txn->bdat_chunk = size;
	s->txn->bdat_last = last;
	smtp_set_state(s, SMTP_S_BDAT);
	if (size == 0)
		smtp_message_feed(s, "", 0);
}

static void
cmd_rset(struct smtp_session *s, const char *arg, size_t len)
{
	smtp_reset(s);
	smtp_reply(s, "250 2.0.0 Ok");
}

static void
cmd_noop(struct smtp_session *s, const char *arg, size_t len)
{
	smtp_reply(s, "250 2.0.0 Ok");
}

static void
cmd_quit(struct smtp_session *s, const char *arg, size_t len)
{
	smtp_reply(s, "221 2.0.0 Bye");
	conn_close(&s->c);
}

static void
cmd_vrfy(struct smtp_session *s, const char *arg, size_t len)
{
	if (len == 0)
		smtp_reply(s, "501 5.5.4 Syntax: VRFY address");
	else
		smtp_reply(s, "252 2.5.0 Cannot VRFY user, but will accept message and"
		    " attempt delivery");
}

static void
cmd_expn(struct smtp_session *s, const char *arg, size_t len)
{
	smtp_reply(s, "502 5.5.1 EXPN not available");
}

static void
cmd_help(struct smtp_session *s, const char *arg, size_t len)
{
	smtp_reply(s, "214 2.0.0 See RFC 5321: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT"
	    " VRFY STARTTLS AUTH");
}

static const struct smtp_cmd_def smtp_cmds[] = {
	{ SMTP_CMD_HELO, S_ANY_CMD, cmd_helo_plain, 1, 0 },
	{ SMTP_CMD_EHLO, S_ANY_CMD, cmd_ehlo, 1, 0 },
	{ SMTP_CMD_STARTTLS, S_ANY_CMD, cmd_starttls, 0, 0 },
	{ SMTP_CMD_AUTH, ST(SMTP_S_READY), cmd_auth, 1, 0 },
	{ SMTP_CMD_MAIL, ST(SMTP_S_READY), cmd_mail, 1, 0 },
	{ SMTP_CMD_RCPT, ST(SMTP_S_MAIL) | ST(SMTP_S_RCPT), cmd_rcpt, 1, 0 },
	{ SMTP_CMD_DATA, ST(SMTP_S_RCPT), cmd_data, 0, 0 },
	{ SMTP_CMD_BDAT, S_ANY_CMD, cmd_bdat, 1, BETWEEN_CHUNKS },
	{ SMTP_CMD_RSET, S_ANY_CMD, cmd_rset, 0, BETWEEN_CHUNKS },
	{ SMTP_CMD_NOOP, S_ANY_CMD, cmd_noop, 1, BETWEEN_CHUNKS },
	{ SMTP_CMD_QUIT, S_ANY_CMD, cmd_quit, 0, BETWEEN_CHUNKS },
	{ SMTP_CMD_VRFY, S_ANY_CMD, cmd_vrfy, 1, 0 },
	{ SMTP_CMD_EXPN, S_ANY_CMD, cmd_expn, 1, 0 },
	{ SMTP_CMD_HELP, S_ANY_CMD, cmd_help, 1, 0 },
};

/* Why a command is out of sequence, in words a client log can use. */
static const char *
smtp_sequence_error(const struct smtp_session *s, enum smtp_verb v)
{
	if (s->state == SMTP_S_CONNECTED)
		return "503 5.5.1 Error: send HELO/EHLO first";
	switch (v) {
	case SMTP_CMD_MAIL:
		return "503 5.5.1 Error: nested MAIL command";
	case SMTP_CMD_RCPT:
		return "503 5.5.1 Error: need MAIL command";
	case SMTP_CMD_DATA:
		return s->state == SMTP_S_MAIL ? "554 5.5.1 Error: no valid recipients" :
		    "503 5.5.1 Error: need RCPT command";
	default:
		return "503 5.5.1 Error: bad sequence of commands";
	}
}

/* One command line (no CRLF): parse, check the state, dispatch. */
void
smtp_command(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_command c;
	const struct smtp_cmd_def *d = NULL;

	switch (smtp_parse_command(line, len, &c)) {
	case SMTP_PARSE_OK:
		break;
	case SMTP_PARSE_BAD_CHAR:
		snprintf(s->last_cmd, sizeof(s->last_cmd), "-");
		smtp_reply(s, "500 5.5.2 Error: bad character in command (bare CR, LF or NUL)");
		return;
	case SMTP_PARSE_TOO_LONG:
		snprintf(s->last_cmd, sizeof(s->last_cmd), "-");
		smtp_reply(s, "500 5.5.2 Error: line too long");
		return;
	default:
		snprintf(s->last_cmd, sizeof(s->last_cmd), "-");
		smtp_reply(s, "500 5.5.2 Error: bad syntax");
		return;
	}
	snprintf(s->last_cmd, sizeof(s->last_cmd), "%s", smtp_verb_name(c.verb));
	if (c.verb == SMTP_CMD_HTTP) {
		log_info("%s: HTTP request refused", s->c.id);
		smtp_reply(s, "554 5.7.0 This is an SMTP server");
		conn_close(&s->c);
		return;
	}
	for (size_t i = 0; i < sizeof(smtp_cmds) / sizeof(smtp_cmds[0]); i++)
		if (smtp_cmds[i].verb == c.verb)
			d = &smtp_cmds[i];
	if (d == NULL) {
		smtp_reply(s, "500 5.5.2 Error: command not recognized");
		return;
	}
	if (smtp_between_chunks(s) && !(d->flags & BETWEEN_CHUNKS)) {
		/* RFC 3030: a transaction in chunks takes no other commands. */
		smtp_reply(s, "503 5.5.1 Error: only BDAT, RSET, NOOP or QUIT between BDAT chunks");
		return;
	}
	if (!(d->states & ST(s->state))) {
		/* BDAT is never refused unread: its chunk must be consumed. */
		smtp_reply(s, "%s", smtp_sequence_error(s, c.verb));
		return;
	}
	if (!d->takes_arg && c.arglen > 0) {
		smtp_reply(s, "501 5.5.4 Syntax: %s takes no argument", smtp_verb_name(c.verb));
		return;
	}
	d->fn(s, c.arg, c.arglen);
}
