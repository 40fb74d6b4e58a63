/*
 * queue.c - the queue runner: claim due rows, group them, route them,
 * hand them to the SMTP client, report what became of each.
 *
 * A group is the rows of one message to one destination domain (or one
 * message's full local mailboxes).  It goes through: waiting for a slot
 * (at most QUEUE_MAX_PER_DOMAIN groups to one domain at once), the route
 * (a relay from the store, then DNS for its host or for the domain's
 * MX), the attempt, and the report to the store; then it is freed.
 */
#include "aliases/queue.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "aliases/bounce.h"
#include "aliases/dns.h"
#include "aliases/mta.h"
#include "aliases/route.h"
#include "aliases/srs.h"
#include "lib/addr.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/tls.h"
#include "store/store.h"

#define QUEUE_TICK_MS		1000
#define QUEUE_SWEEP_SECS	30	/* claim anyway: full mailboxes may have room */
#define QUEUE_HOSTS_MAX		32	/* addresses tried in one attempt */

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
	struct store_reader *reader;
	struct mta_rcpt *rcpts;
	struct mta_attempt *attempt;
	struct store_attempt *results;	/* what to report, per row */
	char **errors;			/* the results' errors, owned */
	char srs[SRS_ADDR_MAX + 1];	/* the sender as sent, when rewritten */
	struct store_req *req;		/* a local delivery or the report in flight */
};

struct queue_runner {
	struct event_base *base;
	struct store *store;
	struct store_writer *w;
	const struct umbox_config *cfg;
	struct store_retry retry;
	struct dns_resolver *dns;
	SSL_CTX *ctx;
	char owner[300];
	struct event *tick;
	struct event *kick;		/* made active from any loop */
	struct store_req *claim;
	struct qgroup *active, *pending;
	unsigned nactive, npending;
	time_t last_sweep;
	time_t last_bounce_sweep;
	struct bouncer *bounce;		/* failed rows become bounces */
	int kicked;
};

static void group_start(struct qgroup *g);
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
	store_reader_close(&g->reader);
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
	if (store_req_status(req) != STORE_OK)
		log_err("queue: recording attempts: %s", store_req_errmsg(req));
	/* Rows that failed now (refused, or past their lifetime) get their bounce. */
	v = store_req_queue_attempts(req, &n);
	for (size_t i = 0; v && i < n; i++)
		if (v[i].status == STORE_OK && v[i].failed) {
			bounce_kick(g->q->bounce);
			break;
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

static int
group_read(void *arg, uint64_t offset, void *buf, size_t len, size_t *got)
{
	struct qgroup *g = arg;

	return store_reader_read(g->reader, offset, buf, len, got) == STORE_OK ? 0 : -1;
}

static void
group_sent(struct mta_attempt *a, void *arg)
{
	struct qgroup *g = arg;
	static const char *const names[] = { "pending", "sent", "deferred", "failed" };
	const char *via = g->have_relay ? g->relay.name : "mx";
	char text[INET6_ADDRSTRLEN];

	g->attempt = NULL;
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
	group_report(g);
}

/* A local domain to sign SRS addresses with: one whose MX is here, else any. */
static int
srs_domain(struct queue_runner *q, char *out, size_t len)
{
	struct store_domain *v;
	size_t n, pick = 0;

	if (store_domain_list(q->store, &v, &n) != STORE_OK || n == 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (v[i].guard && strcmp(v[i].guard, "claimed") == 0) {
			pick = i;
			break;
		}
	snprintf(out, len, "%s", v[pick].name);
	store_domain_list_free(&v, n);
	return 0;
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
srs_sender(struct queue_runner *q, const char *sender, char *buf, size_t len)
{
	const char *secret = q->cfg->queue.srs_secret, *at = strrchr(sender, '@');
	char domain[DNS_NAME_MAX + 1];
	enum srs_status st;
	int local;

	if (secret[0] == '\0' || at == NULL)
		return sender;
	if ((local = store_domain_exists(q->store, at + 1)) != 0) {
		if (local < 0)
			log_warn("queue: SRS: %s", store_errmsg(q->store));
		return sender;
	}
	if (srs_domain(q, domain, sizeof(domain)) != 0)
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

/* The route is known and has addresses: the attempt. */
static void
group_send(struct qgroup *g)
{
	struct queue_runner *q = g->q;

	if (store_queue_reader_open(q->store, &g->e[0], &g->reader) != STORE_OK) {
		group_settle(g, STORE_ATTEMPT_DEFERRED, "cannot read the message from the store");
		return;
	}
	if (g->have_relay && g->relay.sender)
		g->msg.sender = g->relay.sender;
	else
		g->msg.sender = srs_sender(q, g->e[0].sender, g->srs, sizeof(g->srs));
	g->msg.len = g->e[0].size;
	g->msg.read = group_read;
	g->msg.read_arg = g;
	g->rcpts = xcalloc(g->n, sizeof(*g->rcpts));
	for (size_t i = 0; i < g->n; i++)
		g->rcpts[i].address = g->e[i].recipient;
	g->route.hosts = g->hosts;
	g->route.helo = q->cfg->general.hostname;
	g->attempt = mta_start(q->base, q->ctx, g->e[0].qid, &g->route, &g->msg, g->rcpts, g->n,
	    NULL, group_sent, g);
}

static void
group_resolved(struct dns_result *res, void *arg)
{
	struct qgroup *g = arg;

	g->dq = NULL;
	if (res->status != DNS_OK) {
		group_settle(g, res->status == DNS_PERMANENT ? STORE_ATTEMPT_FAILED :
		    STORE_ATTEMPT_DEFERRED, res->detail[0] ? res->detail : "DNS lookup failed");
		dns_result_free(&res);
		return;
	}
	for (size_t h = 0; h < res->nhosts; h++)
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

/*
 * SPEC §6's route, first match wins: an active relay listing the domain,
 * the active default relay, else the domain's MX hosts on [queue]
 * smtp_port with opportunistic TLS.
 */
static void
group_route(struct qgroup *g)
{
	struct queue_runner *q = g->q;
	int st = store_relay_for_domain(q->store, domain_of(g), &g->relay);

	if (st == STORE_OK) {
		g->have_relay = 1;
		route_from_relay(&g->relay, &g->route);
		g->dq = dns_addresses(q->dns, g->relay.host, group_resolved, g);
		return;
	}
	if (st != STORE_NOTFOUND) {
		log_err("queue: route for %s: %s", domain_of(g), store_errmsg(q->store));
		group_settle(g, STORE_ATTEMPT_DEFERRED, "local error in processing");
		return;
	}
	g->route.port = q->cfg->queue.smtp_port;
	g->route.tls = MTA_TLS_AUTO;
	g->route.verify = 0;
	g->route.auth = MTA_AUTH_NONE;
	g->route.timeout = 300;		/* RFC 5321 §4.5.3.2: minutes, not seconds */
	g->route.chunking = 1;
	g->dq = dns_mx_hosts(q->dns, domain_of(g), group_resolved, g);
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

/* Claim due rows when there are free slots and something may be due. */
static void
runner_claim(struct queue_runner *q)
{
	time_t now = time(NULL);
	int64_t due = 0;
	unsigned room;

	if (q->claim || q->nactive + q->npending >= QUEUE_MAX_CLAIMED)
		return;
	room = QUEUE_MAX_CLAIMED - q->nactive - q->npending;
	if (!q->kicked && now - q->last_sweep < QUEUE_SWEEP_SECS &&
	    (store_queue_next_due(q->store, &due) != STORE_OK || due > (int64_t)now))
		return;
	q->kicked = 0;
	if (now - q->last_sweep >= QUEUE_SWEEP_SECS)
		q->last_sweep = now;
	q->claim = store_req_queue_claim(q->owner, QUEUE_LEASE, room, runner_claimed, q);
	store_writer_submit(q->w, q->claim);
}

static void
runner_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct queue_runner *q = arg;
	time_t now = time(NULL);

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

struct queue_runner *
queue_runner_new(struct event_base *base, struct store *store, struct store_writer *w,
    struct dns_resolver *dns, const struct umbox_config *cfg, char *err, size_t errlen)
{
	struct queue_runner *q = xcalloc(1, sizeof(*q));
	char prefix[300];

	q->base = base;
	q->store = store;
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
	/* Claims of an earlier runner on this host died with it. */
	snprintf(prefix, sizeof(prefix), "%s:", cfg->general.hostname);
	if (store_queue_release_claims(store, prefix) != STORE_OK)
		log_warn("queue: cannot end old claims: %s", store_errmsg(store));
	snprintf(q->owner, sizeof(q->owner), "%s:%ld", cfg->general.hostname, (long)getpid());
	q->bounce = bounce_new(store, w, cfg);
	q->tick = event_new(base, -1, EV_PERSIST, runner_on_tick, q);
	event_add(q->tick, &(struct timeval){ 0, QUEUE_TICK_MS * 1000 });
	q->kick = event_new(base, -1, 0, runner_on_kick, q);
	q->kicked = 1;
	return q;
}

void
queue_runner_free(struct queue_runner **qp)
{
	struct queue_runner *q = *qp;

	if (q == NULL)
		return;
	if (q->claim)
		store_req_cancel(q->claim);
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
	bounce_free(&q->bounce);
	event_free(q->tick);
	event_free(q->kick);
	SSL_CTX_free(q->ctx);
	free(q);
	*qp = NULL;
}
