/*
 * bounce.c - failed queue rows become a delivery status notification to
 * their sender, or a copy for the postmaster when the sender is null.
 *
 * One message's failed rows at a time: read them, build the report (or
 * choose the postmaster's copy), resolve where it goes, and hand one
 * delivery to the writer that also deletes the rows.  When it is done,
 * the next message.
 */
#include "aliases/bounce.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aliases/deliver.h"
#include "aliases/dsn.h"
#include "lib/config.h"
#include "lib/log.h"
#include "store/store.h"

/* Rows read per pass: a whole message's, up to what one report lists. */
#define BOUNCE_ROWS_MAX		DSN_RCPTS_MAX
#define BOUNCE_HEADERS_MAX	(64 * 1024)
/* Room for a sender in the log (SRS addresses run past 254). */
#define BOUNCE_SENDER_MAX	520
#define BOUNCE_BACKOFF_SECS	60	/* after a bounce that could not be made */

struct bouncer {
	struct store_readers *readers;
	struct store_writer *w;
	const struct umbox_config *cfg;
	struct bounce_job *job;		/* the next bounce being made */
	struct store_req *req;		/* the delivery in flight */
	char qid[STORE_QID_MAX];	/* its message's */
	int dsn;			/* a report (1) or the postmaster's copy (0) */
	char sender[BOUNCE_SENDER_MAX];	/* the report's: for the log once stored */
	size_t nrcpt;
	time_t backoff_until;
};

/*
 * One message's bounce, made with a store connection (the failed rows,
 * the original's header, where the report goes): the delivery that
 * also settles the rows, for the writer.  What it reads and writes is
 * its own, so the bouncer may go away meanwhile.
 */
struct bounce_job {
	struct store_read read;
	struct bouncer *b;
	struct store *store;		/* while work() runs */
	const struct umbox_config *cfg;
	struct alias_resolver resolver;
	char qid[STORE_QID_MAX];
	int dsn;
	char sender[BOUNCE_SENDER_MAX];
	size_t nrcpt;
	int failed;			/* come back after the backoff */
	struct store_req *req;		/* made, not yet submitted */
};

struct bouncer *
bounce_new(struct store_readers *readers, struct store_writer *w, const struct umbox_config *cfg)
{
	struct bouncer *b = xcalloc(1, sizeof(*b));

	b->readers = readers;
	b->w = w;
	b->cfg = cfg;
	return b;
}

void
bounce_free(struct bouncer **bp)
{
	struct bouncer *b = *bp;

	if (b == NULL)
		return;
	if (b->req)
		store_req_cancel(b->req);
	if (b->job)
		store_read_cancel(&b->job->read);
	free(b);
	*bp = NULL;
}

void
bounce_split_error(const char *error, char *remote, size_t rlen, const char **diag)
{
	const char *said;

	const char *end;

	remote[0] = '\0';
	*diag = error;
	if (strncmp(error, "host ", 5) != 0 || (said = strstr(error + 5, " said: ")) == NULL ||
	    said == error + 5)
		return;
	/* The host name alone: Remote-MTA's "dns" type names a host. */
	if ((end = memchr(error + 5, '[', (size_t)(said - error - 5))) == NULL)
		end = said;
	if ((size_t)(end - error - 5) < rlen)
		snprintf(remote, rlen, "%.*s", (int)(end - error - 5), error + 5);
	*diag = said + 7;
}

/* "5" or "4" when the text is an SMTP reply ("550 5.1.1 ..."), else 0. */
static int
reply_class(const char *text)
{
	if (text[0] >= '2' && text[0] <= '5' && text[1] >= '0' && text[1] <= '9' &&
	    text[2] >= '0' && text[2] <= '9' && (text[3] == ' ' || text[3] == '-' ||
	    text[3] == '\0'))
		return text[0];
	return 0;
}

/* One row's part of the report. */
static void
rcpt_of(const struct bounce_job *j, const struct store_queue_entry *e, struct dsn_rcpt *r,
    char *remote, size_t rlen)
{
	const char *diag;
	int class;

	memset(r, 0, sizeof(*r));
	bounce_split_error(e->last_error ? e->last_error : "", remote, rlen, &diag);
	class = reply_class(diag);
	r->final_recipient = e->recipient;
	r->action = DSN_FAILED;
	r->remote_mta = remote[0] ? remote : NULL;
	r->last_attempt = e->last_attempt;
	if (class)
		r->smtp_reply = diag;
	else
		r->reason = diag[0] ? diag : "delivery failed";
	if (class == '5')
		return;
	/* Not a refusal: the row ran out of time, or DNS said no such place. */
	if (e->created_at + (int64_t)j->cfg->queue.lifetime <= e->last_attempt ||
	    class == '4' || e->local_user_id != 0) {
		r->expired = 1;
		r->status = e->local_user_id ? "5.2.2" : NULL;
		return;
	}
	/*
	 * RFC 3463: 5.4.6 a routing loop, 5.4.4 no route (MX records that name
	 * no host); RFC 7505: 5.1.10 a null MX.
	 */
	r->status = strstr(diag, "loops back to myself") ? "5.4.6" :
	    strstr(diag, "null MX") ? "5.1.10" :
	    strstr(diag, "name no valid host") ? "5.4.4" : "5.1.2";
}

/* The header block of the row's message, for text/rfc822-headers. */
static char *
read_headers(struct bounce_job *j, const struct store_queue_entry *e, size_t *len)
{
	struct store_reader *rd;
	size_t want = e->size < BOUNCE_HEADERS_MAX ? (size_t)e->size : BOUNCE_HEADERS_MAX;
	char *buf = xmalloc(want + 1);
	size_t have = 0, got;

	*len = 0;
	if (store_queue_reader_open(j->store, e, &rd) != STORE_OK) {
		free(buf);
		return NULL;
	}
	while (have < want && store_reader_read(rd, have, buf + have, want - have,
	    &got) == STORE_OK && got > 0)
		have += got;
	store_reader_close(&rd);
	*len = dsn_header_block(buf, have, have);
	return buf;
}

static const char *
domain_part(const char *address, const char *fallback)
{
	const char *at = strrchr(address, '@');

	return at && at[1] ? at + 1 : fallback;
}

static void bounce_next(struct bouncer *b);

static void
bounce_done(struct store_req *req, void *arg)
{
	struct bouncer *b = arg;
	int st = store_req_status(req);

	b->req = NULL;
	if (st != STORE_OK) {
		log_err("%s: %s: %s", b->qid, b->dsn ? "cannot deliver the bounce" :
		    "cannot give the postmaster a copy", store_req_errmsg(req));
		b->backoff_until = time(NULL) + BOUNCE_BACKOFF_SECS;
		return;
	}
	/*
	 * Committed: the bounce's own queue ID ties its delivery's log lines
	 * to this one.  A report dropped for want of a postmaster was no
	 * delivery: only its rows were settled.
	 */
	if (b->dsn && store_req_delivery(req) != NULL)
		log_info("%s: sender=<%s> bounce %s sent for %zu recipient%s", b->qid, b->sender,
		    store_req_delivery(req)->qid, b->nrcpt, b->nrcpt == 1 ? "" : "s");
	bounce_next(b);
}

/* Only mailboxes here: a copy sent out could fail and come back forever. */
static size_t
keep_local(struct alias_result *res)
{
	size_t k = 0;

	for (size_t i = 0; i < res->n; i++) {
		if (res->v[i].remote) {
			free(res->v[i].address);
			free(res->v[i].login);
			continue;
		}
		res->v[k++] = res->v[i];
	}
	res->n = k;
	return k;
}

/* Nothing can be done for the rows: they go, through the writer, as if delivered. */
static int
settle(struct bounce_job *j, const int64_t *ids, size_t n)
{
	static const struct store_retry none = { 1, 1, 1 };
	struct store_attempt *v = xcalloc(n, sizeof(*v));

	for (size_t i = 0; i < n; i++) {
		v[i].id = ids[i];
		v[i].result = STORE_ATTEMPT_DELIVERED;
	}
	j->req = store_req_queue_report(NULL, &none, v, n, bounce_done, j->b);
	free(v);
	return 0;
}

/*
 * The postmaster's mailboxes here: the postmaster alias's local members,
 * else the [general] postmaster login's own mailbox, even when an alias of
 * that name forwards it elsewhere (an alias pointing outside must not lose
 * the reports it cannot take).  -1: none; -2: the store could not say.
 */
static int
postmaster_here(struct bounce_job *j, struct alias_result *res)
{
	struct store_user u;
	int st;

	memset(res, 0, sizeof(*res));
	if (alias_resolve(&j->resolver, "postmaster", res) == ALIAS_OK && keep_local(res) > 0)
		return 0;
	alias_result_clear(res);
	/* The login's own mailbox, whatever an alias of that name forwards. */
	if ((st = store_user_get(j->store, j->cfg->general.postmaster, &u)) != STORE_OK)
		return st == STORE_NOTFOUND ? -1 : -2;
	res->v = xcalloc(1, sizeof(*res->v));
	res->v[0].user_id = u.id;
	res->v[0].login = xstrdup(u.login);
	res->n = 1;
	res->local_domain = 1;
	store_user_clear(&u);
	return 0;
}

/* Deliver m to where address resolves (the postmaster when it does not), settling ids. */
static int
bounce_send(struct bounce_job *j, struct alias_message *m, const char *address,
    const int64_t *ids, size_t n)
{
	struct alias_result res = { 0 };
	enum alias_status as = ALIAS_UNKNOWN;
	const char *at = strrchr(address, '@');
	int pm;

	/*
	 * Not to an address literal: anyone may give one as the sender, and
	 * the report would go to whatever host it names (this appliance's
	 * LAN, its loopback) with text of the sender's choosing.
	 */
	if (at && at[1] == '[')
		log_info("%s: sender=<%s> is an address literal: the report goes to the"
		    " postmaster instead", j->qid, address);
	else if (address[0])
		as = alias_resolve(&j->resolver, address, &res);
	if (as == ALIAS_ERROR) {
		/* The store out of reach: another pass.  A limit passes no better later. */
		if (res.store_failed) {
			log_warn("%s: resolving the sender <%s> for its report: %s; trying again"
			    " later", j->qid, address, res.error);
			alias_result_clear(&res);
			return -1;
		}
		log_err("%s: the sender <%s> cannot be resolved (%s): the report goes to the"
		    " postmaster", j->qid, address, res.error);
	}
	/*
	 * A report for a sender of ours reaches mailboxes here only: an
	 * alias's outside members never get it, or anyone could send in a
	 * forged sender and have each failure copied to all of them.
	 */
	if (as != ALIAS_OK || ((!j->dsn || res.local_domain) && keep_local(&res) == 0)) {
		/* No one to tell: the postmaster hears of it. */
		alias_result_clear(&res);
		if ((pm = postmaster_here(j, &res)) == -2) {
			log_warn("%s: looking up the postmaster: %s; trying again later", j->qid,
			    store_errmsg(j->store));
			return -1;
		}
		if (pm != 0) {
			log_err("%s: the postmaster (its alias, or login %s) has no mailbox here:"
			    " the bounce is dropped", j->qid, j->cfg->general.postmaster);
			return settle(j, ids, n);
		}
		m->domain = j->cfg->general.hostname;
	}
	m->consume = ids;
	m->nconsume = n;
	j->req = alias_deliver_req(m, res.v, res.n, bounce_done, j->b);
	alias_result_clear(&res);
	return 0;
}

/* The report for one message's failed rows v[0..n). */
static int
bounce_report(struct bounce_job *j, struct store_queue_entry *v, size_t n, const int64_t *ids)
{
	struct dsn_rcpt *rcpts = xcalloc(n, sizeof(*rcpts));
	char (*remote)[300] = xcalloc(n, sizeof(*remote));
	struct dsn_report rep = { 0 };
	struct alias_message m = { 0 };
	char err[256], *headers, *out = NULL;
	size_t hlen, outlen;
	int r = -1;

	for (size_t i = 0; i < n; i++)
		rcpt_of(j, &v[i], &rcpts[i], remote[i], sizeof(remote[i]));
	headers = read_headers(j, &v[0], &hlen);
	rep.hostname = j->cfg->general.hostname;
	rep.recipient = v[0].sender;
	rep.qid = v[0].qid;
	rep.arrival = v[0].created_at;
	rep.lifetime = j->cfg->queue.lifetime;
	rep.now = (int64_t)time(NULL);
	rep.headers = headers;
	rep.headers_len = hlen;
	rep.rcpts = rcpts;
	rep.nrcpts = n;
	if (dsn_build(&rep, &out, &outlen, err, sizeof(err)) != 0) {
		log_err("%s: cannot make the bounce: %s", v[0].qid, err);
		goto out;
	}
	m.sender = "";
	m.kind = STORE_KIND_EMAIL;
	m.data = out;
	m.fd = -1;
	m.len = outlen;
	m.domain = domain_part(v[0].sender, j->cfg->general.hostname);
	if (bounce_send(j, &m, v[0].sender, ids, n) == 0) {
		snprintf(j->sender, sizeof(j->sender), "%s", v[0].sender);
		j->nrcpt = n;
		r = 0;
	}
out:
	free(out);
	free(headers);
	free(rcpts);
	free(remote);
	return r;
}

/* A failed message with a null sender: no report, a copy for the postmaster. */
static int
bounce_to_postmaster(struct bounce_job *j, struct store_queue_entry *v, size_t n,
    const int64_t *ids)
{
	struct alias_message m = { 0 };

	for (size_t i = 0; i < n; i++)
		log_warn("%s: to=<%s> a message with a null sender failed (%s); it is not "
		    "bounced, the postmaster gets a copy", v[i].qid, v[i].recipient,
		    v[i].last_error ? v[i].last_error : "");
	m.sender = "";
	m.kind = v[0].kind;
	m.fd = -1;
	m.message_id = v[0].message_id;
	m.domain = j->cfg->general.hostname;
	return bounce_send(j, &m, "", ids, n);
}

/* The next message's failed rows, made into a bounce. */
static void
bounce_work(struct store *st, struct store_read *r)
{
	struct bounce_job *j = COMPLETION_OWNER(r, struct bounce_job, read);
	struct store_queue_entry *v = NULL;
	size_t n = 0, k;
	int64_t *ids;

	j->store = st;
	j->resolver.store = st;
	if (store_queue_failed(st, BOUNCE_ROWS_MAX, &v, &n) != STORE_OK) {
		log_err("queue: reading failed rows: %s", store_errmsg(st));
		j->failed = 1;
		return;
	}
	if (n == 0) {
		store_queue_list_free(&v, n);
		return;
	}
	for (k = 1; k < n && v[k].message_id == v[0].message_id; k++)
		;
	ids = xcalloc(k, sizeof(*ids));
	for (size_t i = 0; i < k; i++)
		ids[i] = v[i].id;
	snprintf(j->qid, sizeof(j->qid), "%s", v[0].qid);
	j->dsn = v[0].sender[0] != '\0';
	if ((j->dsn ? bounce_report(j, v, k, ids) : bounce_to_postmaster(j, v, k, ids)) != 0)
		j->failed = 1;
	free(ids);
	store_queue_list_free(&v, n);
}

static void
bounce_made(struct store_read *r, int cancelled)
{
	struct bounce_job *j = COMPLETION_OWNER(r, struct bounce_job, read);
	struct bouncer *b = j->b;

	if (cancelled) {
		if (j->req)
			store_req_discard(j->req);
		free(j);
		return;
	}
	b->job = NULL;
	if (j->failed)
		b->backoff_until = time(NULL) + BOUNCE_BACKOFF_SECS;
	if (j->req) {
		snprintf(b->qid, sizeof(b->qid), "%s", j->qid);
		snprintf(b->sender, sizeof(b->sender), "%s", j->sender);
		b->nrcpt = j->nrcpt;
		b->dsn = j->dsn;
		b->req = j->req;
		store_writer_submit(b->w, b->req);
	}
	free(j);
}

static void
bounce_next(struct bouncer *b)
{
	struct bounce_job *j;

	if (b->job || b->req || time(NULL) < b->backoff_until)
		return;
	j = xcalloc(1, sizeof(*j));
	j->b = b;
	j->cfg = b->cfg;
	j->resolver.postmaster = b->cfg->general.postmaster;
	j->resolver.srs_secret = b->cfg->queue.srs_secret;
	j->read.work = bounce_work;
	j->read.done = bounce_made;
	b->job = j;
	store_read_submit(b->readers, &j->read);
}

void
bounce_kick(struct bouncer *b)
{
	if (b != NULL)
		bounce_next(b);
}
