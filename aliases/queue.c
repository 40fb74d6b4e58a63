/*
 * queue.c - the queue runner: claim due rows, group them, route them,
 * hand them to the SMTP client, report what became of each.
 *
 * A group is the rows of one message to one destination domain (or one
 * message's full local mailboxes).  It goes through: waiting for a slot
 * (at most QUEUE_MAX_PER_DOMAIN groups to one domain at once), the route
 * (a relay from the store, then DNS for its host or for the domain's
 * MX), the attempt, and the report to the store; then it is freed.
 *
 * The runner claims when kicked (a message queued here, a notification
 * from the database) and otherwise looks each tick for the next due
 * time.  While the database's notifications are heard (PostgreSQL), it
 * looks only when that time comes or every QUEUE_POLL_HEARD seconds, in
 * case one was missed.
 */
#include "aliases/queue.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "aliases/bounce.h"
#include "aliases/dns.h"
#include "aliases/guard.h"
#include "aliases/mime.h"
#include "aliases/mta.h"
#include "aliases/route.h"
#include "aliases/srs.h"
#include "aliases/voicemail.h"
#include "lib/addr.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/tls.h"
#include "lib/worker.h"
#include "store/store.h"

#define QUEUE_TICK_MS		1000
#define QUEUE_SWEEP_SECS	30	/* claim anyway: full mailboxes may have room */
#define QUEUE_HOSTS_MAX		32	/* addresses tried in one attempt */
#define QUEUE_POLL_HEARD	10	/* seconds between looks while notified */

struct qgroup {
	struct queue_runner *q;
	struct qgroup *next;
	struct store_queue_entry *e;	/* the group's rows */
	size_t n;
	int local;			/* full local mailboxes */
	size_t local_next;		/* the local row being delivered */

	struct store_relay relay;
	int have_relay;
	struct dns_query *dq;
	struct mta_host hosts[QUEUE_HOSTS_MAX];
	char *names[QUEUE_HOSTS_MAX];
	struct mta_route route;
	struct mta_message msg;
	struct store_reader *reader;	/* the message on the loop's store (SQLite) */
	int spool_fd;			/* else: a copy the readers made */
	struct gread *rd;		/* a read in flight */
	struct convert_job *cj;		/* the message being made 7-bit */
	struct mta_rcpt *rcpts;
	struct mta_attempt *attempt;
	struct store_attempt *results;	/* what to report, per row */
	char **errors;			/* the results' errors, owned */
	char srs[SRS_ADDR_MAX + 1];	/* the sender as sent, when rewritten */
	struct store_req *req;		/* a local delivery or the report in flight */
};

struct queue_runner {
	struct event_base *base;
	struct store_readers *readers;
	struct store_writer *w;
	struct worker_pool *converter;	/* a thread of its own for 7-bit conversions */
	const struct umbox_config *cfg;
	struct store_retry retry;
	struct dns_resolver *dns;
	SSL_CTX *ctx;
	char owner[300];
	struct event *tick;
	struct event *kick;		/* made active from any loop */
	struct store_req *claim;
	struct store_req *renew;	/* claims of rows being delivered, extended */
	struct runner_read *due;	/* the next due time being read */
	struct store_directory *heard;	/* tells of rows queued elsewhere */
	time_t next_look;		/* no need to read the due time before */
	struct qgroup *active, *pending;
	unsigned nactive, npending;
	time_t last_sweep;
	time_t last_bounce_sweep;
	struct bouncer *bounce;		/* failed rows become bounces */
	int kicked;
	unsigned long read_fails;	/* due-time reads failed in a row */
};

/*
 * A group's read off the loop: its route, or what the attempt needs (the
 * message, and the sender as sent).  It owns copies of what it reads
 * with, since the group may go away meanwhile.
 */
struct gread {
	struct store_read read;
	struct qgroup *g;
	const struct umbox_config *cfg;
	char *domain;			/* route: the destination */
	struct store_queue_entry e;	/* send: the message (id, size, kind) */
	char *sender;			/* send: as stored; NULL: the relay's */
	int status;
	char errmsg[256];
	struct store_relay relay;	/* route */
	struct store_reader *reader;	/* send, on the loop's store */
	int spool_fd;			/* send, elsewhere */
	int eightbit;			/* send: the message has an octet above 127 */
	char srs[SRS_ADDR_MAX + 1];
	const char *sent_as;		/* sender or srs */
};

struct convert_job {
	struct worker_job job;
	struct qgroup *g;
	int in_fd, out_fd;		/* the message as stored; its 7-bit form */
	uint64_t len;
	int eightbit;			/* left over (header fields, signed parts) */
	int result;			/* mime_to_7bit's */
	char err[256];
};

static void group_start(struct qgroup *g);
static void group_convert(struct qgroup *g);
static void runner_start_pending(struct queue_runner *q);
static void runner_claim(struct queue_runner *q);

static const char *
domain_of(const struct qgroup *g)
{
	return g->e[0].domain ? g->e[0].domain : "";
}

static void
group_free(struct qgroup *g)
{
	struct queue_runner *q = g->q;
	struct qgroup **pp;

	for (pp = &q->active; *pp; pp = &(*pp)->next)
		if (*pp == g) {
			*pp = g->next;
			q->nactive--;
			break;
		}
	if (g->dq)
		dns_cancel(g->dq);
	if (g->attempt)
		mta_cancel(g->attempt);
	if (g->req)
		store_req_cancel(g->req);
	if (g->rd)
		store_read_cancel(&g->rd->read);
	if (g->cj)
		worker_cancel(&g->cj->job);
	store_reader_close(&g->reader);
	if (g->spool_fd >= 0)
		close(g->spool_fd);
	if (g->have_relay)
		store_relay_clear(&g->relay);
	for (size_t i = 0; i < QUEUE_HOSTS_MAX; i++)
		free(g->names[i]);
	store_queue_list_free(&g->e, g->n);
	free(g->rcpts);
	free(g->results);
	for (size_t i = 0; g->errors && i < g->n; i++)
		free(g->errors[i]);
	free(g->errors);
	free(g);
}

/* A group is over: its slot goes to the next one waiting. */
static void
group_done(struct qgroup *g)
{
	struct queue_runner *q = g->q;

	group_free(g);
	runner_start_pending(q);
	/* Nothing left waiting for a slot: more may be due already. */
	if (q->npending == 0)
		runner_claim(q);
}

static void
group_reported(struct store_req *req, void *arg)
{
	struct qgroup *g = arg;
	const struct store_attempt *v;
	size_t n;

	g->req = NULL;
	g->q->next_look = 0;	/* a deferred row moved the next due time */
	if (store_req_status(req) != STORE_OK)
		log_err("queue: recording attempts: %s", store_req_errmsg(req));
	/*
	 * Rows that failed now (refused, or past their lifetime) get their
	 * bounce.  A deferral that the store turned into a failure was logged
	 * as deferred: say that it failed, and why.
	 */
	v = store_req_queue_attempts(req, &n);
	for (size_t i = 0, kicked = 0; v && i < n; i++) {
		if (v[i].status != STORE_OK || !v[i].failed)
			continue;
		if (!kicked++)
			bounce_kick(g->q->bounce);
		if (v[i].result != STORE_ATTEMPT_DEFERRED)
			continue;
		for (size_t j = 0; j < g->n; j++)
			if (g->e[j].id == v[i].id)
				log_info("%s: to=<%s> status=failed (deferred past [queue]"
				    " lifetime; last: %s)", g->e[j].qid, g->e[j].recipient,
				    v[i].error ? v[i].error : "no reply");
	}
	group_done(g);
}

/* Tell the store what became of every row that still needs saying. */
static void
group_report(struct qgroup *g)
{
	struct queue_runner *q = g->q;
	size_t k = 0;

	for (size_t i = 0; i < g->n; i++)
		if (g->results[i].id != 0)
			g->results[k++] = g->results[i];
	if (k == 0) {
		group_done(g);
		return;
	}
	g->req = store_req_queue_report(q->owner, &q->retry, g->results, k, group_reported, g);
	store_writer_submit(q->w, g->req);
}

/* Every row of the group gets the same outcome (a route that failed). */
static void
group_settle(struct qgroup *g, enum store_attempt_result r, const char *why)
{
	for (size_t i = 0; i < g->n; i++) {
		log_info("%s: to=<%s> status=%s (%s)", g->e[i].qid, g->e[i].recipient,
		    r == STORE_ATTEMPT_FAILED ? "failed" : "deferred", why);
		g->results[i].id = g->e[i].id;
		g->results[i].result = r;
		g->results[i].error = why;
	}
	group_report(g);
}

/* ---- full local mailboxes ---- */

static void local_next(struct qgroup *g);

static void
local_done(struct store_req *req, void *arg)
{
	struct qgroup *g = arg;
	size_t i = g->local_next++;
	int st = store_req_status(req);

	g->req = NULL;
	switch (st) {
	case STORE_OK:
		log_info("%s: to=<%s> status=delivered (the mailbox has room now)", g->e[i].qid,
		    g->e[i].recipient);
		g->results[i].id = 0;	/* the row is gone: nothing to report */
		if (g->e[i].kind == STORE_KIND_VOICEMAIL)
			voicemail_mwi_changed(g->q->readers, g->q->base, g->q->cfg,
			    g->e[i].local_user_id, NULL);
		break;
	case STORE_QUOTA:
		g->results[i].id = g->e[i].id;
		g->results[i].result = STORE_ATTEMPT_DEFERRED;
		g->results[i].error = "mailbox full";
		break;
	case STORE_NOTFOUND:
	case STORE_LOCKED:
		g->results[i].id = 0;	/* deleted meanwhile, or someone else's now */
		break;
	default:
		log_err("%s: delivering to %s: %s", g->e[i].qid, g->e[i].recipient,
		    store_req_errmsg(req));
		g->results[i].id = g->e[i].id;
		g->results[i].result = STORE_ATTEMPT_DEFERRED;
		g->results[i].error = "local error in processing";
		break;
	}
	local_next(g);
}

static void
local_next(struct qgroup *g)
{
	if (g->local_next >= g->n) {
		group_report(g);
		return;
	}
	g->req = store_req_queue_deliver_local(g->e[g->local_next].id, g->q->owner, local_done, g);
	store_writer_submit(g->q->w, g->req);
}

/* ---- outside recipients ---- */

static const char *
addr_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const void *a = ss->ss_family == AF_INET6 ?
	    (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr :
	    (const void *)&((const struct sockaddr_in *)ss)->sin_addr;

	if (inet_ntop(ss->ss_family, a, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "?");
	return buf;
}

/*
 * size octets of a stored message from rd into fd, an octet above 127
 * noted in *eightbit: NULL, or what went wrong.  st: the reader's store,
 * for its error (NULL: none to say).
 */
static const char *
copy_message(struct store *st, struct store_reader *rd, uint64_t size, int fd, int *eightbit)
{
	char buf[64 * 1024];
	uint64_t off = 0;
	size_t got;

	while (off < size) {
		if (store_reader_read(rd, off, buf, sizeof(buf), &got) != STORE_OK)
			return st ? store_errmsg(st) : "the store cannot read it";
		if (got == 0)
			return "it is short";
		if (!*eightbit)
			*eightbit = mem_has_8bit(buf, got);
		if (write_all(fd, buf, got) != 0)
			return strerror(errno);
		off += got;
	}
	return NULL;
}

static int
group_read(void *arg, uint64_t offset, void *buf, size_t len, size_t *got)
{
	struct qgroup *g = arg;
	ssize_t n;

	if (g->reader)
		return store_reader_read(g->reader, offset, buf, len, got) == STORE_OK ? 0 : -1;
	if ((n = pread(g->spool_fd, buf, len, (off_t)offset)) < 0)
		return -1;
	*got = (size_t)n;
	return 0;
}

static void group_sent(struct mta_attempt *a, void *arg);

/* The attempt itself, with the message and route as the group holds them. */
static void
group_attempt(struct qgroup *g)
{
	struct queue_runner *q = g->q;

	for (size_t i = 0; i < g->n; i++) {
		g->rcpts[i].status = MTA_PENDING;
		g->rcpts[i].reply[0] = '\0';
		g->rcpts[i].host = NULL;
	}
	g->attempt = mta_start(q->base, q->ctx, g->e[0].qid, &g->route, &g->msg, g->rcpts, g->n,
	    NULL, group_sent, g);
}

/* ---- a 7-bit form, for a server without 8BITMIME (RFC 6152 §3) ---- */

static void
convert_job_free(struct convert_job *cj)
{
	if (cj->in_fd >= 0)
		close(cj->in_fd);
	if (cj->out_fd >= 0)
		close(cj->out_fd);
	free(cj);
}

/* On the converter thread: GMime reads the message and writes it anew. */
static void
convert_work(struct worker_job *job)
{
	struct convert_job *cj = COMPLETION_OWNER(job, struct convert_job, job);

	cj->result = mime_to_7bit(cj->in_fd, cj->out_fd, &cj->len, &cj->eightbit, cj->err,
	    sizeof(cj->err));
}

/* It could not be converted: it goes as it is (as to any server before). */
static void
convert_failed(struct qgroup *g, const char *why)
{
	log_warn("%s: cannot convert the message to 7-bit (%s); it goes as it is",
	    g->e[0].qid, why);
	g->msg.convertible = 0;
	group_attempt(g);
}

/* Back on the loop: the attempt again, with the 7-bit form. */
static void
convert_done(struct worker_job *job, int cancelled)
{
	struct convert_job *cj = COMPLETION_OWNER(job, struct convert_job, job);
	struct qgroup *g = cj->g;

	if (cancelled) {
		convert_job_free(cj);
		return;
	}
	g->cj = NULL;
	if (cj->result != 0) {
		convert_failed(g, cj->err);
		convert_job_free(cj);
		return;
	}
	log_info("%s: converted to 7-bit for a server without 8BITMIME (%" PRIu64 " octets%s)",
	    g->e[0].qid, cj->len, cj->eightbit ? "; 8-bit header fields go as they are" : "");
	store_reader_close(&g->reader);
	if (g->spool_fd >= 0)
		close(g->spool_fd);
	g->spool_fd = cj->out_fd;
	cj->out_fd = -1;
	g->msg.len = cj->len;
	g->msg.eightbit = cj->eightbit;
	g->msg.convertible = 0;
	convert_job_free(cj);
	group_attempt(g);
}

/*
 * The server does not take 8-bit data: the converter thread makes the
 * message 7-bit from a copy of it (on the loop's own store the copy is
 * made here, as the PostgreSQL readers make theirs), and the attempt
 * starts again.
 * The group keeps the message as it is until the new form is there.
 */
static void
group_convert(struct qgroup *g)
{
	const char *dir = g->q->cfg->general.data_dir, *why = NULL;
	struct convert_job *cj = xcalloc(1, sizeof(*cj));
	int eightbit = 0;

	cj->g = g;
	cj->in_fd = g->spool_fd >= 0 ? dup(g->spool_fd) : spool_file_open(dir);
	cj->out_fd = spool_file_open(dir);
	if (cj->in_fd < 0 || cj->out_fd < 0)
		why = strerror(errno);
	else if (g->spool_fd < 0)
		why = copy_message(NULL, g->reader, g->e[0].size, cj->in_fd, &eightbit);
	if (why) {
		char text[300];

		snprintf(text, sizeof(text), "a spool file in %s: %s", dir, why);
		convert_job_free(cj);
		convert_failed(g, text);
		return;
	}
	cj->job.work = convert_work;
	cj->job.done = convert_done;
	g->cj = cj;
	worker_submit(g->q->converter, &cj->job);
}

static void
group_sent(struct mta_attempt *a, void *arg)
{
	struct qgroup *g = arg;
	static const char *const names[] = { "pending", "sent", "deferred", "failed" };
	const char *via = g->have_relay ? g->relay.name : "mx";
	char text[INET6_ADDRSTRLEN];

	g->attempt = NULL;
	if (mta_wants_7bit(a)) {
		group_convert(g);
		return;
	}
	g->errors = xcalloc(g->n, sizeof(*g->errors));
	for (size_t i = 0; i < g->n; i++) {
		struct mta_rcpt *r = &g->rcpts[i];

		log_info("%s: to=<%s> relay=%s status=%s (%s)", g->e[i].qid, g->e[i].recipient, via,
		    names[r->status], r->reply);
		g->results[i].id = g->e[i].id;
		g->results[i].result = r->status == MTA_DELIVERED ? STORE_ATTEMPT_DELIVERED :
		    r->status == MTA_FAILED ? STORE_ATTEMPT_FAILED : STORE_ATTEMPT_DEFERRED;
		if (r->status == MTA_DELIVERED)
			continue;
		/* A server's reply keeps its host, for the bounce's Remote-MTA. */
		g->errors[i] = r->host ? xasprintf("host %s[%s] said: %s", r->host->name,
		    addr_text(&r->host->addr, text, sizeof(text)), r->reply) :
		    xstrdup(r->reply);
		g->results[i].error = g->errors[i];
	}
	store_reader_close(&g->reader);
	if (g->spool_fd >= 0) {
		close(g->spool_fd);
		g->spool_fd = -1;
	}
	group_report(g);
}

/*
 * SPEC §6: mail from an outside sender that leaves for an outside address
 * (an alias's member) goes with an SRS0 sender of ours, so that SPF holds
 * at the receiver and bounces come back here.  Local senders, the null
 * sender, and a secret left empty keep the sender as it is; so does one
 * whose SRS form would not fit (ADDR_SRS_LOCAL_MAX, a 254-octet path),
 * since its bounces could not be received.
 */
static const char *
srs_sender(struct store *store, const struct umbox_config *cfg, const char *sender, char *buf,
    size_t len)
{
	const char *secret = cfg->queue.srs_secret, *at = strrchr(sender, '@');
	char domain[DNS_NAME_MAX + 1];
	enum srs_status st;
	int local;

	if (secret[0] == '\0' || at == NULL)
		return sender;
	if ((local = store_domain_exists(store, at + 1)) != 0) {
		if (local < 0)
			log_warn("queue: SRS: %s", store_errmsg(store));
		return sender;
	}
	if (alias_home_domain(store, domain, sizeof(domain)) != 0)
		return sender;
	st = srs_forward(secret, strlen(secret), sender, domain, (int64_t)time(NULL), buf, len);
	if (st != SRS_OK || strchr(buf, '@') - buf > ADDR_SRS_LOCAL_MAX ||
	    strlen(buf) > ADDR_PATH_MAX - 2) {
		log_info("queue: SRS: %s kept as it is (%s)", sender,
		    st != SRS_OK ? srs_status_str(st) : "too long for an address");
		return sender;
	}
	return buf;
}

static struct gread *
gread_new(struct qgroup *g, void (*work)(struct store *, struct store_read *),
    void (*done)(struct store_read *, int))
{
	struct gread *r = xcalloc(1, sizeof(*r));

	r->g = g;
	r->cfg = g->q->cfg;
	r->spool_fd = -1;
	r->read.work = work;
	r->read.done = done;
	g->rd = r;
	return r;
}

static void
gread_free(struct gread *r)
{
	free(r->domain);
	free(r->sender);
	if (r->relay.name)
		store_relay_clear(&r->relay);
	store_reader_close(&r->reader);
	if (r->spool_fd >= 0)
		close(r->spool_fd);
	free(r);
}

/* Back on the loop: the group, or NULL when it went away (r is freed then). */
static struct qgroup *
gread_finished(struct gread *r, int cancelled)
{
	if (cancelled) {
		gread_free(r);
		return NULL;
	}
	r->g->rd = NULL;
	return r->g;
}

/* The message copied into an unlinked file, for a reader that cannot stay open. */
static int
spool_message(struct store *st, struct gread *r)
{
	struct store_reader *rd;
	const char *why;
	int fd;

	if ((fd = spool_file_open(r->cfg->general.data_dir)) < 0) {
		snprintf(r->errmsg, sizeof(r->errmsg), "a spool file in %s: %s",
		    r->cfg->general.data_dir, strerror(errno));
		return STORE_ERROR;
	}
	if ((r->status = store_queue_reader_open(st, &r->e, &rd)) != STORE_OK) {
		snprintf(r->errmsg, sizeof(r->errmsg), "%s", store_errmsg(st));
		close(fd);
		return r->status;
	}
	if ((why = copy_message(st, rd, r->e.size, fd, &r->eightbit)) != NULL) {
		snprintf(r->errmsg, sizeof(r->errmsg), "copying the message: %s", why);
		store_reader_close(&rd);
		close(fd);
		return STORE_ERROR;
	}
	store_reader_close(&rd);
	r->spool_fd = fd;
	return STORE_OK;
}

/*
 * Whether the message is 8-bit, for BODY=8BITMIME: read through once on
 * the loop's own store (SQLite's reads do not wait; the spool copy
 * elsewhere looks as it copies).
 */
static int
scan_8bit(struct store *st, struct gread *r)
{
	char buf[64 * 1024];
	uint64_t off = 0;
	size_t got;

	while (off < r->e.size && !r->eightbit) {
		if (store_reader_read(r->reader, off, buf, sizeof(buf), &got) != STORE_OK ||
		    got == 0) {
			snprintf(r->errmsg, sizeof(r->errmsg), "%s",
			    got == 0 ? "it is short" : store_errmsg(st));
			return STORE_ERROR;
		}
		r->eightbit = mem_has_8bit(buf, got);
		off += got;
	}
	return STORE_OK;
}

static void
send_work(struct store *st, struct store_read *rr)
{
	struct gread *r = COMPLETION_OWNER(rr, struct gread, read);

	/* On the loop's own store the reader stays open for the attempt. */
	if (rr->now) {
		r->status = store_queue_reader_open(st, &r->e, &r->reader);
		if (r->status != STORE_OK)
			snprintf(r->errmsg, sizeof(r->errmsg), "%s", store_errmsg(st));
		else
			r->status = scan_8bit(st, r);
	} else
		r->status = spool_message(st, r);
	if (r->status == STORE_OK && r->sender)
		r->sent_as = srs_sender(st, r->cfg, r->sender, r->srs, sizeof(r->srs));
}

static void
send_ready(struct store_read *rr, int cancelled)
{
	struct gread *r = COMPLETION_OWNER(rr, struct gread, read);
	struct qgroup *g = gread_finished(r, cancelled);
	struct queue_runner *q;

	if (g == NULL)
		return;
	q = g->q;
	if (r->status != STORE_OK) {
		log_err("%s: reading the message: %s", g->e[0].qid, r->errmsg);
		gread_free(r);
		group_settle(g, STORE_ATTEMPT_DEFERRED, "cannot read the message from the store");
		return;
	}
	g->reader = r->reader;
	r->reader = NULL;
	g->spool_fd = r->spool_fd;
	r->spool_fd = -1;
	g->msg.eightbit = r->eightbit;
	if (r->sender == NULL)
		g->msg.sender = g->relay.sender;
	else if (r->sent_as == r->sender)
		g->msg.sender = g->e[0].sender;
	else {
		snprintf(g->srs, sizeof(g->srs), "%s", r->srs);
		g->msg.sender = g->srs;
	}
	gread_free(r);
	g->msg.len = g->e[0].size;
	g->msg.read = group_read;
	g->msg.read_arg = g;
	g->rcpts = xcalloc(g->n, sizeof(*g->rcpts));
	for (size_t i = 0; i < g->n; i++)
		g->rcpts[i].address = g->e[i].recipient;
	g->route.hosts = g->hosts;
	g->route.helo = q->cfg->general.hostname;
	g->msg.convertible = 1;
	group_attempt(g);
}

/* The route is known and has addresses: the message, then the attempt. */
static void
group_send(struct qgroup *g)
{
	struct gread *r = gread_new(g, send_work, send_ready);

	r->e.id = g->e[0].id;
	r->e.message_id = g->e[0].message_id;
	r->e.size = g->e[0].size;
	r->e.kind = g->e[0].kind;
	/* A relay's own sender, but never for the null path (RFC 5321 §4.5.5). */
	if (!(g->have_relay && g->relay.sender) || g->e[0].sender[0] == '\0')
		r->sender = xstrdup(g->e[0].sender);
	store_read_submit(g->q->readers, &r->read);
}

/*
 * RFC 5321 §5.1: an MX host that is this server (its address and [queue]
 * smtp_port reach one of our own listeners), and every host no better than
 * it, are not tried.  The preference from which hosts are dropped
 * (UINT_MAX: none is this server), and that host's name in self.
 */
static unsigned
mx_loop_cut(const struct qgroup *g, const struct dns_result *res, char *self, size_t len)
{
	struct guard_self *me = guard_self_new(g->q->cfg, g->route.port);
	unsigned cut = UINT_MAX;

	/* By preference: the first host that is this server is the best one. */
	for (size_t h = 0; h < res->nhosts && cut == UINT_MAX; h++)
		for (size_t i = 0; i < res->hosts[h].naddrs; i++)
			if (guard_self_is(me, &res->hosts[h].addrs[i])) {
				cut = res->hosts[h].preference;
				snprintf(self, len, "%s", res->hosts[h].name);
				break;
			}
	guard_self_free(&me);
	return cut;
}

static void
group_resolved(struct dns_result *res, void *arg)
{
	struct qgroup *g = arg;
	char self[DNS_NAME_MAX + 1] = "";
	unsigned cut = UINT_MAX;

	g->dq = NULL;
	if (res->status != DNS_OK) {
		group_settle(g, res->status == DNS_PERMANENT ? STORE_ATTEMPT_FAILED :
		    STORE_ATTEMPT_DEFERRED, res->detail[0] ? res->detail : "DNS lookup failed");
		dns_result_free(&res);
		return;
	}
	if (!g->have_relay)
		cut = mx_loop_cut(g, res, self, sizeof(self));
	if (cut != UINT_MAX && res->hosts[0].preference >= cut) {
		char why[600];

		snprintf(why, sizeof(why), "mail for %s loops back to myself: its MX host %s is"
		    " this server", domain_of(g), self);
		dns_result_free(&res);
		group_settle(g, STORE_ATTEMPT_FAILED, why);
		return;
	}
	for (size_t h = 0; h < res->nhosts && res->hosts[h].preference < cut; h++)
		for (size_t i = 0; i < res->hosts[h].naddrs && g->route.nhosts < QUEUE_HOSTS_MAX;
		    i++) {
			size_t k = g->route.nhosts++;

			g->names[k] = xstrdup(res->hosts[h].name);
			g->hosts[k].name = g->names[k];
			dns_addr_sockaddr(&res->hosts[h].addrs[i], g->route.port, &g->hosts[k].addr);
		}
	dns_result_free(&res);
	group_send(g);
}

static void
route_work(struct store *st, struct store_read *rr)
{
	struct gread *r = COMPLETION_OWNER(rr, struct gread, read);

	r->status = store_relay_for_domain(st, r->domain, &r->relay);
	if (r->status != STORE_OK && r->status != STORE_NOTFOUND)
		snprintf(r->errmsg, sizeof(r->errmsg), "%s", store_errmsg(st));
}

/*
 * SPEC §6's route, first match wins: an active relay listing the domain,
 * the active default relay, else the domain's MX hosts on [queue]
 * smtp_port with opportunistic TLS.
 */
static void
route_found(struct store_read *rr, int cancelled)
{
	struct gread *r = COMPLETION_OWNER(rr, struct gread, read);
	struct qgroup *g = gread_finished(r, cancelled);
	struct queue_runner *q;

	if (g == NULL)
		return;
	q = g->q;
	if (r->status == STORE_OK) {
		g->have_relay = 1;
		g->relay = r->relay;
		memset(&r->relay, 0, sizeof(r->relay));
		gread_free(r);
		route_from_relay(&g->relay, &g->route);
		g->dq = dns_addresses(q->dns, g->relay.host, group_resolved, g);
		return;
	}
	if (r->status != STORE_NOTFOUND) {
		log_err("queue: route for %s: %s", domain_of(g), r->errmsg);
		gread_free(r);
		group_settle(g, STORE_ATTEMPT_DEFERRED, "local error in processing");
		return;
	}
	gread_free(r);
	g->route.port = q->cfg->queue.smtp_port;
	g->route.tls = MTA_TLS_AUTO;
	g->route.verify = 0;
	g->route.auth = MTA_AUTH_NONE;
	g->route.timeout = 300;		/* RFC 5321 §4.5.3.2: minutes, not seconds */
	g->route.chunking = 1;
	g->dq = dns_mx_hosts(q->dns, domain_of(g), group_resolved, g);
}

static void
group_route(struct qgroup *g)
{
	struct gread *r = gread_new(g, route_work, route_found);

	r->domain = xstrdup(domain_of(g));
	store_read_submit(g->q->readers, &r->read);
}

static void
group_start(struct qgroup *g)
{
	struct queue_runner *q = g->q;

	g->next = q->active;
	q->active = g;
	q->nactive++;
	if (g->local)
		local_next(g);
	else
		group_route(g);
}

/* ---- claiming, grouping, scheduling ---- */

static unsigned
domain_load(const struct queue_runner *q, const char *domain)
{
	unsigned n = 0;

	for (const struct qgroup *g = q->active; g; g = g->next)
		if (!g->local && strcmp(domain_of(g), domain) == 0)
			n++;
	return n;
}

/* Start what waits, as slots allow: in total, and per destination domain. */
static void
runner_start_pending(struct queue_runner *q)
{
	struct qgroup **pp = &q->pending;

	while (*pp && q->nactive < QUEUE_MAX_ATTEMPTS) {
		struct qgroup *g = *pp;

		if (!g->local && domain_load(q, domain_of(g)) >= QUEUE_MAX_PER_DOMAIN) {
			pp = &g->next;
			continue;
		}
		*pp = g->next;
		q->npending--;
		group_start(g);
	}
}

/* Rows of one message to one domain (or its full local mailboxes) make a group. */
static void
runner_claimed(struct store_req *req, void *arg)
{
	struct queue_runner *q = arg;
	struct store_queue_entry *v = NULL;
	size_t n = 0, i = 0;
	struct qgroup **tail = &q->pending;

	q->claim = NULL;
	q->next_look = 0;	/* more may be due than there was room for */
	if (store_req_status(req) != STORE_OK) {
		log_err("queue: claiming: %s", store_req_errmsg(req));
		return;
	}
	store_req_queue_claimed(req, &v, &n);
	while (*tail)
		tail = &(*tail)->next;
	while (i < n) {
		struct qgroup *g = xcalloc(1, sizeof(*g));
		size_t j = i + 1;
		int local = v[i].local_user_id != 0;

		while (j < n && v[j].message_id == v[i].message_id &&
		    (v[j].local_user_id != 0) == local &&
		    (local || strcmp(v[j].domain, v[i].domain) == 0))
			j++;
		g->q = q;
		g->spool_fd = -1;
		g->local = local;
		g->n = j - i;
		g->e = xcalloc(g->n, sizeof(*g->e));
		memcpy(g->e, v + i, g->n * sizeof(*g->e));
		g->results = xcalloc(g->n, sizeof(*g->results));
		*tail = g;
		tail = &g->next;
		q->npending++;
		i = j;
	}
	free(v);	/* the entries' contents moved into the groups */
	runner_start_pending(q);
}

/*
 * The runner's read each tick: when the next row is due.  It outlives a
 * runner that goes away meanwhile.
 */
struct runner_read {
	struct store_read read;
	struct queue_runner *q;
	int status;
	int64_t due;
	char errmsg[512];
};

static void
due_work(struct store *st, struct store_read *r)
{
	struct runner_read *rr = COMPLETION_OWNER(r, struct runner_read, read);

	rr->status = store_queue_next_due(st, &rr->due);
	if (rr->status != STORE_OK && rr->status != STORE_NOTFOUND)	/* NOTFOUND: none waits */
		snprintf(rr->errmsg, sizeof(rr->errmsg), "%s", store_errmsg(st));
}


static void runner_claim_now(struct queue_runner *q);

static void
runner_read_done(struct store_read *r, int cancelled)
{
	struct runner_read *rr = COMPLETION_OWNER(r, struct runner_read, read);
	struct queue_runner *q = rr->q;

	if (cancelled) {
		free(rr);
		return;
	}
	q->due = NULL;
	/* Said once per outage: the runner asks again at every tick meanwhile. */
	if (rr->status != STORE_OK && rr->status != STORE_NOTFOUND) {
		if (q->read_fails++ == 0)
			log_err("queue: reading the next due time: %s; trying again every"
			    " second", rr->errmsg);
	} else if (q->read_fails > 0) {
		log_info("queue: the next due time is read again, after %lu failed tries",
		    q->read_fails);
		q->read_fails = 0;
	}
	if (rr->status == STORE_OK && rr->due <= (int64_t)time(NULL))
		runner_claim_now(q);
	else if ((rr->status == STORE_OK || rr->status == STORE_NOTFOUND) &&
	    store_directory_hearing(q->heard)) {
		q->next_look = time(NULL) + QUEUE_POLL_HEARD;
		if (rr->status == STORE_OK && rr->due < (int64_t)q->next_look)
			q->next_look = (time_t)rr->due;
	}
	free(rr);
}

static void
runner_claim_now(struct queue_runner *q)
{
	time_t now = time(NULL);
	unsigned room;

	if (q->claim || q->nactive + q->npending >= QUEUE_MAX_CLAIMED)
		return;
	room = QUEUE_MAX_CLAIMED - q->nactive - q->npending;
	q->kicked = 0;
	if (now - q->last_sweep >= QUEUE_SWEEP_SECS)
		q->last_sweep = now;
	q->claim = store_req_queue_claim(q->owner, q->cfg->queue.claim_lease, room,
	    runner_claimed, q);
	store_writer_submit(q->w, q->claim);
}

/*
 * Claim due rows when there are free slots and something may be due:
 * when kicked, once per sweep, or when the store says a row is due.
 */
static void
runner_claim(struct queue_runner *q)
{
	struct runner_read *rr;

	if (q->due || q->claim || q->nactive + q->npending >= QUEUE_MAX_CLAIMED)
		return;
	if (q->kicked || time(NULL) - q->last_sweep >= QUEUE_SWEEP_SECS) {
		runner_claim_now(q);
		return;
	}
	if (time(NULL) < q->next_look && store_directory_hearing(q->heard))
		return;
	rr = xcalloc(1, sizeof(*rr));
	rr->q = q;
	rr->read.work = due_work;
	rr->read.done = runner_read_done;
	q->due = rr;
	store_read_submit(q->readers, &rr->read);
}

static void
runner_renewed(struct store_req *req, void *arg)
{
	struct queue_runner *q = arg;

	q->renew = NULL;
	if (store_req_status(req) != STORE_OK)
		log_warn("queue: cannot extend the claims of rows being delivered: %s",
		    store_req_errmsg(req));
}

/*
 * A delivery may outlast its claim (a slow server may take 5 minutes a
 * reply, 10 after the message): a third of the way through the lease, the
 * claims of the rows still in hand are extended, so that no runner (this
 * one at its next sweep included) takes them for a second delivery while
 * this one goes on.
 */
static void
runner_renew(struct queue_runner *q, time_t now)
{
	const unsigned lease = q->cfg->queue.claim_lease;
	struct qgroup *lists[2] = { q->active, q->pending };
	int64_t *ids = NULL;
	size_t n = 0, cap = 0;

	if (q->renew)
		return;
	for (int l = 0; l < 2; l++)
		for (struct qgroup *g = lists[l]; g; g = g->next)
			for (size_t i = 0; i < g->n; i++) {
				if (g->e[i].claimed_until - (int64_t)now > (int64_t)lease * 2 / 3)
					continue;
				if (n == cap) {
					cap = cap ? 2 * cap : 16;
					ids = xreallocarray(ids, cap, sizeof(*ids));
				}
				ids[n++] = g->e[i].id;
				g->e[i].claimed_until = (int64_t)now + lease;
			}
	if (n == 0)
		return;
	q->renew = store_req_queue_renew(q->owner, ids, n, lease, runner_renewed, q);
	free(ids);
	store_writer_submit(q->w, q->renew);
}

static void
runner_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct queue_runner *q = arg;
	time_t now = time(NULL);

	runner_renew(q, now);
	runner_start_pending(q);
	runner_claim(q);
	/* Failed rows left by an earlier run, or whose bounce had to wait. */
	if (now - q->last_bounce_sweep >= QUEUE_SWEEP_SECS) {
		q->last_bounce_sweep = now;
		bounce_kick(q->bounce);
	}
}

static void
runner_on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct queue_runner *q = arg;

	q->kicked = 1;
	runner_claim(q);
}

void
queue_runner_kick(struct queue_runner *q)
{
	if (q != NULL)
		event_active(q->kick, 0, 0);
}

static void
runner_heard(void *arg)
{
	queue_runner_kick(arg);
}

void
queue_runner_hear(struct queue_runner *q, struct store_directory *dir)
{
	q->heard = dir;
	store_directory_hear_queue(dir, runner_heard, q);
}

struct queue_runner *
queue_runner_new(struct event_base *base, struct store_readers *readers, struct store_writer *w,
    struct dns_resolver *dns, const struct umbox_config *cfg, char *err, size_t errlen)
{
	struct queue_runner *q = xcalloc(1, sizeof(*q));

	q->base = base;
	q->readers = readers;
	q->w = w;
	q->cfg = cfg;
	q->retry.initial = cfg->queue.retry_initial;
	q->retry.max = cfg->queue.retry_max;
	q->retry.lifetime = cfg->queue.lifetime;
	q->dns = dns;
	if ((q->ctx = tls_client_ctx_new(err, errlen)) == NULL) {
		free(q);
		return NULL;
	}
	snprintf(q->owner, sizeof(q->owner), "%s:%ld", store_owner_name(cfg), (long)getpid());
	/* Not the loop's password workers: a long conversion must not hold up a login. */
	q->converter = worker_pool_new_ctx(base, 1, "converter", NULL);
	q->bounce = bounce_new(readers, w, cfg);
	q->tick = event_new(base, -1, EV_PERSIST, runner_on_tick, q);
	event_add(q->tick, &(struct timeval){ 0, QUEUE_TICK_MS * 1000 });
	q->kick = event_new(base, -1, 0, runner_on_kick, q);
	q->kicked = 1;
	return q;
}

int
queue_release_old_claims(struct store *s, void *arg)
{
	const struct umbox_config *cfg = arg;
	char prefix[300];
	int status;

	snprintf(prefix, sizeof(prefix), "%s:", store_owner_name(cfg));
	if ((status = store_queue_release_claims(s, prefix)) != STORE_OK)
		log_warn("queue: cannot end old claims: %s", store_errmsg(s));
	return status;
}

void
queue_runner_free(struct queue_runner **qp)
{
	struct queue_runner *q = *qp;

	if (q == NULL)
		return;
	store_directory_hear_queue(q->heard, NULL, NULL);
	if (q->claim)
		store_req_cancel(q->claim);
	if (q->renew)
		store_req_cancel(q->renew);
	if (q->due)
		store_read_cancel(&q->due->read);
	while (q->active)
		group_free(q->active);
	while (q->pending) {
		struct qgroup *g = q->pending;

		q->pending = g->next;
		g->next = NULL;
		/* Not active: group_free finds nothing to unlink. */
		group_free(g);
	}
	mta_shutdown();
	worker_pool_free(&q->converter);	/* a conversion under way ends first */
	bounce_free(&q->bounce);
	event_free(q->tick);
	event_free(q->kick);
	SSL_CTX_free(q->ctx);
	free(q);
	*qp = NULL;
}
