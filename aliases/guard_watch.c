/*
 * guard_watch.c - umbox-smtpd's periodic MX guard (SPEC §7): every
 * [dns] guard_interval, check every local domain, record each verdict
 * with its time through the writer, and warn when a domain's MX moves
 * away from this server (and say so again when it comes back).
 *
 * A domain that turned foreign is still served: mail for it is accepted
 * and alias members at it are still delivered here.  The administrator
 * decides; the log and `umboxctl status` say it loudly.
 */
#include "aliases/guard.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "lib/config.h"
#include "lib/log.h"
#include "store/store.h"

#define GUARD_FIRST_CHECK_SECS	2	/* after start: verdicts fresh soon after boot */

/* A domain's last verdict that was not a DNS failure, as this daemon saw it. */
struct known {
	struct known *next;
	char *domain, *verdict, *detail;
};

struct guard_watch {
	struct known *known;		/* what a failed check is compared past */
	struct store_readers *readers;
	struct watch_list *listing;	/* the domains being read */
	struct store_writer *w;
	struct guard *guard;
	struct event *timer;
	unsigned interval;
	struct watch_item *items;	/* checks in flight */
};

/* One domain being checked, with the verdict the store had before. */
struct watch_item {
	struct guard_watch *gw;
	struct watch_item *next;
	struct guard_query *q;
	struct store_req *req;
	char *domain;
	char *before;
	char *detail_before;
	int done;			/* checked, or being checked */
};

static void
item_free(struct watch_item *it)
{
	struct watch_item **pp;

	for (pp = &it->gw->items; *pp; pp = &(*pp)->next)
		if (*pp == it) {
			*pp = it->next;
			break;
		}
	if (it->q)
		guard_cancel(it->q);
	if (it->req)
		store_req_cancel(it->req);
	free(it->domain);
	free(it->before);
	free(it->detail_before);
	free(it);
}

static void
on_recorded(struct store_req *req, void *arg)
{
	struct watch_item *it = arg;

	it->req = NULL;
	if (store_req_status(req) != STORE_OK && store_req_status(req) != STORE_NOTFOUND)
		log_warn("MX guard: cannot record a verdict: %s", store_req_errmsg(req));
	item_free(it);
}

static int
is_ours(const char *verdict)
{
	return strcmp(verdict, "claimed") == 0 || strcmp(verdict, "internal") == 0;
}

static void on_verdict(const char *domain, const struct guard_result *res, void *arg);

/*
 * One domain at a time: lookups in flight together share the resolver's
 * connection to each server, and one that fails over TCP (an answer too
 * large for UDP, a firewall that drops TCP) would fail the others with it.
 */
static void
start_next(struct guard_watch *gw)
{
	for (struct watch_item *it = gw->items; it; it = it->next)
		if (it->q == NULL && it->req == NULL && !it->done) {
			it->done = 1;
			it->q = guard_check(gw->guard, it->domain, on_verdict, it);
			return;
		}
}

static struct known *
known_get(struct guard_watch *gw, const char *domain)
{
	for (struct known *k = gw->known; k; k = k->next)
		if (strcmp(k->domain, domain) == 0)
			return k;
	return NULL;
}

static void
known_set(struct guard_watch *gw, const char *domain, const char *verdict, const char *detail)
{
	struct known *k = known_get(gw, domain);

	if (k == NULL) {
		k = xcalloc(1, sizeof(*k));
		k->domain = xstrdup(domain);
		k->next = gw->known;
		gw->known = k;
	}
	free(k->verdict);
	free(k->detail);
	k->verdict = xstrdup(verdict);
	k->detail = xstrdup(detail);
}

static void
on_verdict(const char *domain, const struct guard_result *res, void *arg)
{
	struct watch_item *it = arg;
	const char *now = guard_verdict_name(res->verdict);
	const char *was = it->before, *was_detail = it->detail_before;
	struct known *k;

	it->q = NULL;
	/*
	 * A DNS failure in between is not a change: foreign, cannot check,
	 * claimed is "points at this server again", and foreign, cannot
	 * check, foreign no news.
	 */
	if (res->verdict != GUARD_DNS_ERROR && strcmp(was, "dns-error") == 0 &&
	    (k = known_get(it->gw, domain)) != NULL) {
		was = k->verdict;
		was_detail = k->detail;
	}
	if (res->verdict == GUARD_FOREIGN && strcmp(was, "foreign") != 0)
		log_warn("MX guard: %s: its mail now goes elsewhere: %s; mail for %s "
		    "that arrives here, and alias members at %s, are still "
		    "delivered to the mailboxes on this server", domain,
		    res->detail, domain, domain);
	else if (res->verdict == GUARD_FOREIGN && strcmp(was_detail, res->detail) != 0)
		log_warn("MX guard: %s: still foreign: %s", domain, res->detail);
	else if (is_ours(now) && strcmp(was, "foreign") == 0)
		log_msg(LOG_NOTICE, "MX guard: %s: its MX points at this server again: %s",
		    domain, res->detail);
	else if (res->verdict == GUARD_DNS_ERROR && strcmp(it->before, "dns-error") != 0)
		log_warn("MX guard: %s: cannot check: %s", domain, res->detail);
	else if (strcmp(was, now) != 0)
		log_info("MX guard: %s: %s: %s", domain, now, res->detail);
	if (res->verdict != GUARD_DNS_ERROR)
		known_set(it->gw, domain, now, res->detail);	/* was may point into it */
	it->req = store_req_domain_guard(domain, now, res->detail, (int64_t)time(NULL),
	    on_recorded, it);
	store_writer_submit(it->gw->w, it->req);
	start_next(it->gw);
}

/* A pass's list of domains, read off the loop. */
struct watch_list {
	struct store_read read;
	struct guard_watch *gw;
	struct store_domain *v;
	size_t n;
};

static void
list_work(struct store *st, struct store_read *r)
{
	struct watch_list *l = COMPLETION_OWNER(r, struct watch_list, read);

	if (store_domain_list(st, &l->v, &l->n) != STORE_OK) {
		log_warn("MX guard: cannot list domains: %s", store_errmsg(st));
		l->v = NULL;
		l->n = 0;
	}
}

static void
listed(struct store_read *r, int cancelled)
{
	struct watch_list *l = COMPLETION_OWNER(r, struct watch_list, read);
	struct guard_watch *gw = l->gw;
	struct store_domain *v = l->v;
	size_t n = l->n;

	if (!cancelled)
		gw->listing = NULL;
	for (size_t i = 0; !cancelled && i < n; i++) {
		struct watch_item *it = xcalloc(1, sizeof(*it));

		it->gw = gw;
		it->domain = xstrdup(v[i].name);
		it->before = xstrdup(v[i].guard ? v[i].guard : "");
		it->detail_before = xstrdup(v[i].guard_detail ? v[i].guard_detail : "");
		it->next = gw->items;
		gw->items = it;
	}
	store_domain_list_free(&v, n);
	free(l);
	if (!cancelled)
		start_next(gw);
}

static void
watch_pass(struct guard_watch *gw)
{
	struct watch_list *l;

	if (gw->items != NULL || gw->listing)	/* the last pass has not finished */
		return;
	l = xcalloc(1, sizeof(*l));
	l->gw = gw;
	l->read.work = list_work;
	l->read.done = listed;
	gw->listing = l;
	store_read_submit(gw->readers, &l->read);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct guard_watch *gw = arg;

	watch_pass(gw);
	event_add(gw->timer, &(struct timeval){ gw->interval, 0 });
}

struct guard_watch *
guard_watch_new(struct event_base *base, struct store_readers *readers, struct store_writer *w,
    struct dns_resolver *r, const struct umbox_config *cfg)
{
	struct guard_watch *gw = xcalloc(1, sizeof(*gw));
	unsigned first = cfg->dns.guard_interval < GUARD_FIRST_CHECK_SECS ?
	    cfg->dns.guard_interval : GUARD_FIRST_CHECK_SECS;

	gw->readers = readers;
	gw->w = w;
	gw->interval = cfg->dns.guard_interval;
	gw->guard = guard_new(r, cfg);
	gw->timer = evtimer_new(base, on_timer, gw);
	event_add(gw->timer, &(struct timeval){ first, 0 });
	return gw;
}

void
guard_watch_free(struct guard_watch **gwp)
{
	struct guard_watch *gw = *gwp;

	if (gw == NULL)
		return;
	if (gw->listing)
		store_read_cancel(&gw->listing->read);
	while (gw->items)
		item_free(gw->items);
	while (gw->known) {
		struct known *k = gw->known;

		gw->known = k->next;
		free(k->domain);
		free(k->verdict);
		free(k->detail);
		free(k);
	}
	event_free(gw->timer);
	guard_free(&gw->guard);
	free(gw);
	*gwp = NULL;
}
