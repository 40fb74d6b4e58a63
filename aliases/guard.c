/*
 * guard.c - the MX guard: this server's identity, the verdict on a
 * domain, and the asynchronous check that asks DNS for both.
 */
#include "aliases/guard.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cidr.h"
#include "lib/config.h"
#include "lib/util.h"

#define GUARD_IFADDRS_MAX	256

struct guard {
	struct dns_resolver *r;
	char *hostname;
	const struct cidr_list *public_addresses;
	struct guard_query *queries;
};

struct guard_query {
	struct guard *g;
	struct guard_query *next;
	char *domain;
	guard_cb *cb;
	void *arg;
	struct dns_query *mxq, *hostq;
	struct dns_result *mx, *host;
};

const char *
guard_verdict_name(enum guard_verdict v)
{
	switch (v) {
	case GUARD_CLAIMED:	return "claimed";
	case GUARD_INTERNAL:	return "internal";
	case GUARD_FOREIGN:	return "foreign";
	case GUARD_DNS_ERROR:	return "dns-error";
	}
	return "dns-error";
}

static int
is_loopback(const struct dns_addr *a)
{
	static const unsigned char v6[16] = { [15] = 1 };
	const unsigned char *b = (const unsigned char *)&a->u;

	if (a->family == AF_INET)
		return b[0] == 127;
	if (a->family == AF_INET6)
		return memcmp(b, v6, 16) == 0 ||
		    (IN6_IS_ADDR_V4MAPPED(&a->u.v6) && b[12] == 127);
	return 0;
}

/* An IPv4-mapped IPv6 address as the IPv4 address it is: 1, else 0. */
static int
unmap(const struct dns_addr *a, struct dns_addr *out)
{
	if (a->family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&a->u.v6))
		return 0;
	out->family = AF_INET;
	memcpy(&out->u.v4, &a->u.v6.s6_addr[12], sizeof(out->u.v4));
	return 1;
}

static int
same_addr(const struct dns_addr *a, const struct dns_addr *b)
{
	struct dns_addr a4, b4;

	/* ::ffff:192.0.2.2 is 192.0.2.2. */
	if (unmap(a, &a4))
		a = &a4;
	if (unmap(b, &b4))
		b = &b4;
	if (a->family != b->family)
		return 0;
	return a->family == AF_INET ?
	    memcmp(&a->u.v4, &b->u.v4, sizeof(a->u.v4)) == 0 :
	    memcmp(&a->u.v6, &b->u.v6, sizeof(a->u.v6)) == 0;
}

int
guard_nowhere(const char *detail)
{
	return strncmp(detail, "null MX:", 8) == 0 || strncmp(detail, "unusable MX:", 12) == 0;
}

int
guard_is_ours(const struct guard_identity *id, const struct dns_addr *a)
{
	if (is_loopback(a))
		return 1;
	for (size_t i = 0; i < id->naddrs; i++)
		if (same_addr(&id->addrs[i], a))
			return 1;
	return id->public_addresses != NULL &&
	    cidr_match_addr(id->public_addresses, a->family, &a->u);
}

/* Append to a detail line; what does not fit is cut with "...". */
static void
put(char *buf, size_t len, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;
	int n;

	if (used + 1 >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n >= len - used && len > 4)
		memcpy(buf + len - 4, "...", 4);
}

/* "name (a, b)" or "name (no address)" or "name (address lookup failed)". */
static void
put_host(char *buf, size_t len, const struct dns_host *h)
{
	char text[INET6_ADDRSTRLEN];

	put(buf, len, "%s (", h->name);
	if (h->naddrs == 0)
		put(buf, len, "%s", h->status == DNS_TEMPORARY ?
		    "address lookup failed" : "no address");
	for (size_t i = 0; i < h->naddrs; i++)
		put(buf, len, "%s%s", i ? ", " : "",
		    dns_addr_text(&h->addrs[i], text, sizeof(text)));
	put(buf, len, ")");
}

static int
host_order(const void *a, const void *b)
{
	const struct dns_host *x = *(const struct dns_host *const *)a;
	const struct dns_host *y = *(const struct dns_host *const *)b;

	if (x->preference != y->preference)
		return x->preference < y->preference ? -1 : 1;
	return strcmp(x->name ? x->name : "", y->name ? y->name : "");
}

/*
 * Every host, by preference and then by name: DNS shuffles equal
 * preferences, and the same answer must read the same at every check.
 */
static void
put_hosts(char *buf, size_t len, const struct dns_result *mx)
{
	const struct dns_host *v[DNS_MAX_HOSTS];
	size_t n = mx->nhosts < DNS_MAX_HOSTS ? mx->nhosts : DNS_MAX_HOSTS;

	for (size_t i = 0; i < n; i++)
		v[i] = &mx->hosts[i];
	qsort(v, n, sizeof(v[0]), host_order);
	for (size_t i = 0; i < n; i++) {
		if (i)
			put(buf, len, ", ");
		put_host(buf, len, v[i]);
	}
}

static void
set(struct guard_result *out, enum guard_verdict v)
{
	out->verdict = v;
	out->detail[0] = '\0';
}

void
guard_judge(const struct dns_result *mx, const struct guard_identity *id,
    struct guard_result *out)
{
	const char *name = mx->name ? mx->name : "the domain";
	char text[INET6_ADDRSTRLEN];
	int temporary = mx->status == DNS_TEMPORARY;

	/* Is any host this server, by name or by one of its addresses? */
	for (size_t i = 0; i < mx->nhosts; i++) {
		const struct dns_host *h = &mx->hosts[i];

		if (h->status == DNS_TEMPORARY)
			temporary = 1;
		if (!mx->implicit_mx && id->hostname && h->name &&
		    strcasecmp(h->name, id->hostname) == 0) {
			set(out, GUARD_CLAIMED);
			put(out->detail, GUARD_DETAIL_MAX,
			    "MX %s is this server's host name", h->name);
			return;
		}
		for (size_t j = 0; j < h->naddrs; j++) {
			if (!guard_is_ours(id, &h->addrs[j]))
				continue;
			set(out, GUARD_CLAIMED);
			dns_addr_text(&h->addrs[j], text, sizeof(text));
			if (mx->implicit_mx)
				put(out->detail, GUARD_DETAIL_MAX, "no MX; "
				    "%s's own address %s is this server",
				    name, text);
			else
				put(out->detail, GUARD_DETAIL_MAX, "MX %s has "
				    "this server's address %s", h->name, text);
			return;
		}
	}

	if (mx->reason == DNS_R_NULL_MX) {
		set(out, GUARD_FOREIGN);
		put(out->detail, GUARD_DETAIL_MAX, "null MX: %s accepts no "
		    "mail (RFC 7505)", name);
		return;
	}
	/* MX records that name no host: no mail reaches it, here or anywhere. */
	if (mx->status == DNS_PERMANENT && mx->reason == DNS_R_BAD_ANSWER && mx->nhosts == 0) {
		set(out, GUARD_FOREIGN);
		put(out->detail, GUARD_DETAIL_MAX, "unusable MX: %s's MX records name no"
		    " valid host", name);
		return;
	}
	/* A host that could not be looked up might have been this one. */
	if (temporary) {
		set(out, GUARD_DNS_ERROR);
		if (mx->nhosts == 0) {
			put(out->detail, GUARD_DETAIL_MAX, "%s", mx->detail[0] ?
			    mx->detail : "MX lookup failed");
			return;
		}
		put(out->detail, GUARD_DETAIL_MAX, "an MX host's address lookup "
		    "failed: MX ");
		put_hosts(out->detail, GUARD_DETAIL_MAX, mx);
		return;
	}
	if (mx->status == DNS_PERMANENT && (mx->reason == DNS_R_NXDOMAIN ||
	    (mx->implicit_mx && mx->reason == DNS_R_NO_ADDRESS))) {
		set(out, GUARD_INTERNAL);
		if (mx->reason == DNS_R_NXDOMAIN)
			put(out->detail, GUARD_DETAIL_MAX, "%s does not exist "
			    "in DNS (NXDOMAIN)", name);
		else
			put(out->detail, GUARD_DETAIL_MAX, "%s has no MX and "
			    "no address record", name);
		return;
	}
	if (mx->nhosts == 0) {
		/* Nothing named and not a verdict we know: say DNS failed. */
		set(out, GUARD_DNS_ERROR);
		put(out->detail, GUARD_DETAIL_MAX, "%s", mx->detail[0] ?
		    mx->detail : "no answer");
		return;
	}
	set(out, GUARD_FOREIGN);
	if (mx->implicit_mx)
		put(out->detail, GUARD_DETAIL_MAX, "no MX; mail goes to %s's "
		    "own address: ", name);
	else
		put(out->detail, GUARD_DETAIL_MAX, "MX ");
	put_hosts(out->detail, GUARD_DETAIL_MAX, mx);
}

/* ------------------------------------------------------------------ */
/* The asynchronous check                                               */

struct guard *
guard_new(struct dns_resolver *r, const struct umbox_config *cfg)
{
	struct guard *g = xcalloc(1, sizeof(*g));
	char name[DNS_NAME_MAX + 1];

	g->r = r;
	if (dns_name_normalize(cfg->general.hostname, name, sizeof(name)) == 0)
		g->hostname = xstrdup(name);
	else
		g->hostname = xstrdup(cfg->general.hostname);
	g->public_addresses = &cfg->general.public_addresses;
	return g;
}

static void
query_free(struct guard_query *q)
{
	struct guard_query **pp;

	for (pp = &q->g->queries; *pp; pp = &(*pp)->next)
		if (*pp == q) {
			*pp = q->next;
			break;
		}
	if (q->mxq)
		dns_cancel(q->mxq);
	if (q->hostq)
		dns_cancel(q->hostq);
	dns_result_free(&q->mx);
	dns_result_free(&q->host);
	free(q->domain);
	free(q);
}

void
guard_cancel(struct guard_query *q)
{
	query_free(q);
}

void
guard_free(struct guard **gp)
{
	struct guard *g = *gp;

	if (g == NULL)
		return;
	while (g->queries)
		query_free(g->queries);
	free(g->hostname);
	free(g);
	*gp = NULL;
}

/* The machine's interface addresses, then the host name's. */
static size_t
identity_addrs(const struct dns_result *host, struct dns_addr *v, size_t max)
{
	struct ifaddrs *ifa, *p;
	size_t n = 0;

	if (getifaddrs(&ifa) == 0) {
		for (p = ifa; p && n < max; p = p->ifa_next) {
			if (p->ifa_addr == NULL)
				continue;
			if (p->ifa_addr->sa_family == AF_INET) {
				v[n].family = AF_INET;
				v[n++].u.v4 = ((struct sockaddr_in *)p->ifa_addr)->sin_addr;
			} else if (p->ifa_addr->sa_family == AF_INET6) {
				v[n].family = AF_INET6;
				v[n++].u.v6 = ((struct sockaddr_in6 *)p->ifa_addr)->sin6_addr;
			}
		}
		freeifaddrs(ifa);
	}
	for (size_t i = 0; host && i < host->nhosts; i++)
		for (size_t j = 0; j < host->hosts[i].naddrs && n < max; j++)
			v[n++] = host->hosts[i].addrs[j];
	return n;
}

struct guard_self {
	struct dns_addr specific[16];	/* listeners on one address */
	size_t nspecific;
	int wild[2];			/* a wildcard listener: IPv4, IPv6 */
	struct dns_addr addrs[GUARD_IFADDRS_MAX];
	struct guard_identity id;	/* the machine's, when a wildcard needs it */
};

struct guard_self *
guard_self_new(const struct umbox_config *cfg, unsigned port)
{
	const struct config_endpoints *l = &cfg->smtpd.listen;
	struct guard_self *self = xcalloc(1, sizeof(*self));

	for (size_t i = 0; i < l->n; i++) {
		struct dns_addr e;

		if (l->v[i].port != port)
			continue;
		if (inet_pton(AF_INET, l->v[i].host, &e.u.v4) == 1)
			e.family = AF_INET;
		else if (inet_pton(AF_INET6, l->v[i].host, &e.u.v6) == 1)
			e.family = AF_INET6;
		else
			continue;
		/* A wildcard takes its own family ([::] is IPv6 only here). */
		if (e.family == AF_INET && e.u.v4.s_addr == htonl(INADDR_ANY))
			self->wild[0] = 1;
		else if (e.family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&e.u.v6))
			self->wild[1] = 1;
		else if (self->nspecific < sizeof(self->specific) / sizeof(self->specific[0]))
			self->specific[self->nspecific++] = e;
	}
	self->id.hostname = "";
	self->id.addrs = self->addrs;
	self->id.public_addresses = &cfg->general.public_addresses;
	if (self->wild[0] || self->wild[1])
		self->id.naddrs = identity_addrs(NULL, self->addrs, GUARD_IFADDRS_MAX);
	return self;
}

int
guard_self_is(const struct guard_self *self, const struct dns_addr *a)
{
	struct dns_addr a4;

	if (unmap(a, &a4))
		a = &a4;
	for (size_t i = 0; i < self->nspecific; i++)
		if (same_addr(&self->specific[i], a))
			return 1;
	if (!self->wild[a->family == AF_INET6])
		return 0;
	return guard_is_ours(&self->id, a);
}

void
guard_self_free(struct guard_self **selfp)
{
	free(*selfp);
	*selfp = NULL;
}

static void
query_settle(struct guard_query *q)
{
	struct dns_addr addrs[GUARD_IFADDRS_MAX + DNS_MAX_ADDRS];
	struct guard_identity id;
	struct guard_result res;

	if (q->mxq || q->hostq)
		return;
	id.hostname = q->g->hostname;
	id.addrs = addrs;
	id.naddrs = identity_addrs(q->host, addrs, sizeof(addrs) / sizeof(addrs[0]));
	id.public_addresses = q->g->public_addresses;
	if (q->mx->status == DNS_CANCELLED) {
		set(&res, GUARD_DNS_ERROR);
		put(res.detail, GUARD_DETAIL_MAX, "the lookup was cancelled");
	} else
		guard_judge(q->mx, &id, &res);
	/*
	 * Not this server, but this server's own addresses are not known (a
	 * null MX names no host: it needs none of them).
	 */
	if (res.verdict == GUARD_FOREIGN && q->host && q->host->status == DNS_TEMPORARY &&
	    !(q->mx->reason == DNS_R_NULL_MX && q->mx->nhosts == 0)) {
		char was[GUARD_DETAIL_MAX];

		snprintf(was, sizeof(was), "%s", res.detail);
		set(&res, GUARD_DNS_ERROR);
		put(res.detail, GUARD_DETAIL_MAX, "this server's name %s could not be "
		    "looked up (%s); %s", q->g->hostname, q->host->detail, was);
	}
	q->cb(q->domain, &res, q->arg);
	query_free(q);
}

static void
on_mx(struct dns_result *res, void *arg)
{
	struct guard_query *q = arg;

	q->mxq = NULL;
	q->mx = res;
	query_settle(q);
}

static void
on_host(struct dns_result *res, void *arg)
{
	struct guard_query *q = arg;

	q->hostq = NULL;
	q->host = res;
	query_settle(q);
}

struct guard_query *
guard_check(struct guard *g, const char *domain, guard_cb *cb, void *arg)
{
	struct guard_query *q = xcalloc(1, sizeof(*q));

	q->g = g;
	q->domain = xstrdup(domain);
	q->cb = cb;
	q->arg = arg;
	q->next = g->queries;
	g->queries = q;
	q->hostq = dns_addresses(g->r, g->hostname, on_host, q);
	q->mxq = dns_mx_hosts(g->r, domain, on_mx, q);
	return q;
}
