/*
 * dns.c - asynchronous DNS for outbound mail: c-ares on the libevent loop,
 * MX answers to ordered destinations, and a small TTL cache.
 *
 * The glue: c-ares tells us through its socket-state callback which
 * sockets to watch; each gets one persistent event whose callback calls
 * ares_process_fd().  One timer, re-armed from ares_timeout() after every
 * call into c-ares, calls ares_process_fd() with no sockets so retries and
 * timeouts happen.
 *
 * Lookups are entries in one table keyed by (kind, name).  An entry is
 * first in flight (LOOKING: requests wait on it, c-ares callbacks are
 * pending), then, if its answer may be kept, CACHED until its TTL runs
 * out; a request for a name already in the table joins or reads it.  An
 * entry is freed only when no c-ares callback for it is pending (the
 * `pending' count), whatever happened to its requesters.
 *
 * User callbacks never run from c-ares callbacks or from the request
 * functions: a finished request is put on the ready list and its own
 * event is activated, so the requester's callback runs from the loop and
 * may do anything, dns_free() included.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

#include <ares.h>
#include <ares_dns.h>
#include <event2/event.h>

#include "aliases/dns.h"
#include "lib/endpoint.h"
#include "lib/resolve.h"
#include "lib/util.h"

#define DEF_TIMEOUT_MS	2000
#define DEF_TRIES	3
#define DEF_CACHE_SIZE	1024
#define DEF_TTL_MAX	3600
#define DEF_TTL_NEG	60

/* ------------------------------------------------------------------ */
/* Answer handling: pure functions. */

enum dns_status
dns_classify(int ares_status, enum dns_reason *reason)
{
	enum dns_reason why;
	enum dns_status st;

	switch (ares_status) {
	case ARES_SUCCESS:
		why = DNS_R_NONE, st = DNS_OK;
		break;
	case ARES_ENODATA:
		why = DNS_R_NO_ADDRESS, st = DNS_PERMANENT;
		break;
	case ARES_ENOTFOUND:
		why = DNS_R_NXDOMAIN, st = DNS_PERMANENT;
		break;
	case ARES_EBADNAME:
		why = DNS_R_BAD_NAME, st = DNS_PERMANENT;
		break;
	case ARES_ESERVFAIL:
		why = DNS_R_SERVFAIL, st = DNS_TEMPORARY;
		break;
	case ARES_EREFUSED:
		why = DNS_R_REFUSED, st = DNS_TEMPORARY;
		break;
	case ARES_ETIMEOUT:
		why = DNS_R_TIMEOUT, st = DNS_TEMPORARY;
		break;
	case ARES_ECONNREFUSED:
	case ARES_EOF:
		why = DNS_R_NETWORK, st = DNS_TEMPORARY;
		break;
	case ARES_EFORMERR:
	case ARES_EBADRESP:
	case ARES_ENOTIMP:
		why = DNS_R_BAD_ANSWER, st = DNS_TEMPORARY;
		break;
	case ARES_ECANCELLED:
	case ARES_EDESTRUCTION:
		why = DNS_R_CANCELLED, st = DNS_CANCELLED;
		break;
	default:
		why = DNS_R_OTHER, st = DNS_TEMPORARY;
		break;
	}
	if (reason != NULL)
		*reason = why;
	return st;
}

/* What a reason means, to follow "lookup failed: ". */
static const char *
reason_text(enum dns_reason why)
{
	switch (why) {
	case DNS_R_NONE:	return "no error";
	case DNS_R_NXDOMAIN:	return "no such domain (NXDOMAIN)";
	case DNS_R_NULL_MX:	return "null MX";
	case DNS_R_NO_ADDRESS:	return "no address record";
	case DNS_R_BAD_NAME:	return "not a valid domain name";
	case DNS_R_SERVFAIL:	return "server failure (SERVFAIL)";
	case DNS_R_REFUSED:	return "refused by the DNS server (REFUSED)";
	case DNS_R_TIMEOUT:	return "timed out";
	case DNS_R_NETWORK:	return "no DNS server reachable";
	case DNS_R_BAD_ANSWER:	return "malformed DNS answer";
	case DNS_R_OTHER:	return "resolver error";
	case DNS_R_CANCELLED:	return "lookup cancelled";
	}
	return "resolver error";
}

/*
 * "<what> timed out" or "<what> failed: <reason>": the wording of a
 * failed lookup in a detail string.
 */
static void
failed(char *buf, size_t len, const char *what, enum dns_reason why)
{
	if (why == DNS_R_TIMEOUT)
		snprintf(buf, len, "%s timed out", what);
	else
		snprintf(buf, len, "%s failed: %s", what, reason_text(why));
}

int
dns_name_normalize(const char *in, char *out, size_t outlen)
{
	size_t n, i, label = 0;

	if (in == NULL || outlen < DNS_NAME_MAX + 1)
		return -1;
	n = strnlen(in, DNS_NAME_MAX + 2);
	if (n > 0 && in[n - 1] == '.')
		n--;
	if (n == 0 || n > DNS_NAME_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
			out[i] = '.';
			continue;
		}
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_'))
			return -1;
		if (++label > 63)
			return -1;
		out[i] = (char)c;
	}
	if (label == 0)
		return -1;
	out[n] = '\0';
	return 0;
}

uint32_t
dns_ttl_cap(uint32_t ttl, uint32_t max)
{
	if (ttl > INT32_MAX)
		return 0;
	return ttl < max ? ttl : max;
}

/* Past a name at *p; -1 when it runs off the buffer or is not a name. */
static int
skip_name(const unsigned char *abuf, size_t alen, size_t *p)
{
	for (;;) {
		unsigned char len;

		if (*p >= alen)
			return -1;
		len = abuf[*p];
		if ((len & 0xc0) == 0xc0) {
			if (*p + 2 > alen)
				return -1;
			*p += 2;
			return 0;
		}
		if ((len & 0xc0) != 0)
			return -1;	/* obsolete label types */
		*p += 1 + (size_t)len;
		if (len == 0)
			return 0;
	}
}

static unsigned
get16(const unsigned char *b)
{
	return (unsigned)b[0] << 8 | b[1];
}

int
dns_answer_ttl(const unsigned char *abuf, size_t alen, int rrtype,
    uint32_t *ttl)
{
	unsigned qd, an, i;
	size_t p = HFIXEDSZ;
	int found = 0;
	uint32_t best = UINT32_MAX;

	if (abuf == NULL || alen < HFIXEDSZ)
		return -1;
	qd = get16(abuf + 4);
	an = get16(abuf + 6);
	for (i = 0; i < qd; i++) {
		if (skip_name(abuf, alen, &p) < 0 || p + QFIXEDSZ > alen)
			return -1;
		p += QFIXEDSZ;
	}
	for (i = 0; i < an; i++) {
		unsigned type, rdlen;
		uint32_t t;

		if (skip_name(abuf, alen, &p) < 0 || p + RRFIXEDSZ > alen)
			return -1;
		type = get16(abuf + p);
		t = (uint32_t)abuf[p + 4] << 24 | (uint32_t)abuf[p + 5] << 16 |
		    (uint32_t)abuf[p + 6] << 8 | abuf[p + 7];
		rdlen = get16(abuf + p + 8);
		p += RRFIXEDSZ;
		if (rdlen > alen - p)
			return -1;
		p += rdlen;
		if ((int)type == rrtype || type == T_CNAME) {
			t = dns_ttl_cap(t, UINT32_MAX);
			if (t < best)
				best = t;
			found = 1;
		}
	}
	if (!found)
		return -1;
	*ttl = best;
	return 0;
}

/* One MX record on its way to a host: its place in the answer breaks ties. */
struct mx_cand {
	char *name;
	unsigned pref;
	size_t idx;
};

static int
mx_cand_cmp(const void *a, const void *b)
{
	const struct mx_cand *x = a, *y = b;

	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* A result with no hosts and a verdict. */
static void
verdict(struct dns_result *out, enum dns_status st, enum dns_reason why)
{
	out->status = st;
	out->reason = why;
}

/*
 * The MX records of a successful answer as hosts.  Returns 0, or -1 when
 * ares_parse_mx_reply() finds no MX record (the caller falls back to the
 * implicit MX).
 */
static int
mx_hosts(const char *domain, const unsigned char *abuf, int alen,
    uint32_t ttl_max, struct dns_result *out)
{
	struct ares_mx_reply *mx = NULL, *m;
	struct mx_cand *cand;
	size_t nrec = 0, ncand = 0, i, j, cap;
	char name[DNS_NAME_MAX + 1], what[DNS_NAME_MAX + 32];
	uint32_t ttl;
	int rc;

	rc = ares_parse_mx_reply(abuf, alen, &mx);
	if (rc == ARES_ENODATA) {
		ares_free_data(mx);
		return -1;
	}
	if (rc != ARES_SUCCESS) {
		ares_free_data(mx);
		verdict(out, DNS_TEMPORARY,
		    rc == ARES_ENOMEM ? DNS_R_OTHER : DNS_R_BAD_ANSWER);
		snprintf(what, sizeof(what), "%s: MX lookup", domain);
		failed(out->detail, sizeof(out->detail), what, out->reason);
		return 0;
	}
	for (m = mx; m != NULL; m = m->next)
		nrec++;
	if (nrec == 0) {
		ares_free_data(mx);
		return -1;
	}
	if (dns_answer_ttl(abuf, (size_t)alen, T_MX, &ttl) < 0)
		ttl = 0;
	out->ttl = dns_ttl_cap(ttl, ttl_max);

	/* RFC 7505: a lone MX "." of preference 0. */
	if (nrec == 1 && mx->host != NULL && mx->host[0] == '\0' &&
	    mx->priority == 0) {
		ares_free_data(mx);
		verdict(out, DNS_PERMANENT, DNS_R_NULL_MX);
		snprintf(out->detail, sizeof(out->detail),
		    "%s has a null MX: it accepts no mail", domain);
		return 0;
	}

	cand = xcalloc(nrec, sizeof(*cand));
	for (m = mx, i = 0; m != NULL; m = m->next, i++) {
		struct in_addr literal;

		/*
		 * "." among other records, escaped odd bytes, overlong; and an
		 * address where a name belongs (RFC 5321 §5.1: the MX data is a
		 * domain name; "192.0.2.1" would be taken as that address).
		 */
		if (m->host == NULL || dns_name_normalize(m->host, name,
		    sizeof(name)) < 0 || inet_pton(AF_INET, name, &literal) == 1)
			continue;
		cand[ncand].name = xstrdup(name);
		cand[ncand].pref = m->priority;
		cand[ncand].idx = i;
		ncand++;
	}
	ares_free_data(mx);
	qsort(cand, ncand, sizeof(*cand), mx_cand_cmp);

	/* Sorted, so the first of a name has its best preference. */
	cap = ncand < DNS_MAX_HOSTS ? ncand : DNS_MAX_HOSTS;
	out->hosts = xcalloc(cap ? cap : 1, sizeof(*out->hosts));
	for (i = 0; i < ncand && out->nhosts < DNS_MAX_HOSTS; i++) {
		for (j = 0; j < out->nhosts; j++)
			if (strcmp(out->hosts[j].name, cand[i].name) == 0)
				break;
		if (j < out->nhosts)
			continue;
		out->hosts[out->nhosts].name = cand[i].name;
		out->hosts[out->nhosts].preference = cand[i].pref;
		out->hosts[out->nhosts].status = DNS_TEMPORARY;
		out->hosts[out->nhosts].reason = DNS_R_OTHER;
		cand[i].name = NULL;
		out->nhosts++;
	}
	for (i = 0; i < ncand; i++)
		free(cand[i].name);
	free(cand);

	/* RFC 5321 §5.1: MX records none of which is usable are an error. */
	if (out->nhosts == 0) {
		verdict(out, DNS_PERMANENT, DNS_R_BAD_ANSWER);
		snprintf(out->detail, sizeof(out->detail),
		    "%s: its MX records name no valid host", domain);
		return 0;
	}
	verdict(out, DNS_OK, DNS_R_NONE);
	return 0;
}

void
dns_mx_answer(const char *domain, int ares_status, const unsigned char *abuf,
    int alen, uint32_t ttl_max, struct dns_result *out)
{
	char what[DNS_NAME_MAX + 32];
	enum dns_reason why;
	enum dns_status st;

	if (out->name == NULL)
		out->name = xstrdup(domain);
	if (ares_status == ARES_SUCCESS && abuf != NULL && alen > 0 &&
	    mx_hosts(domain, abuf, alen, ttl_max, out) == 0)
		return;
	if (ares_status == ARES_SUCCESS || ares_status == ARES_ENODATA) {
		/* RFC 5321 §5.1: no MX, the domain is its own implicit MX. */
		out->implicit_mx = 1;
		out->hosts = xcalloc(1, sizeof(*out->hosts));
		out->hosts[0].name = xstrdup(domain);
		out->hosts[0].status = DNS_TEMPORARY;
		out->hosts[0].reason = DNS_R_OTHER;
		out->nhosts = 1;
		out->ttl = dns_ttl_cap(INT32_MAX, ttl_max);
		verdict(out, DNS_OK, DNS_R_NONE);
		return;
	}
	st = dns_classify(ares_status, &why);
	if (st == DNS_OK) {		/* not reached: SUCCESS handled above */
		st = DNS_TEMPORARY;
		why = DNS_R_OTHER;
	}
	verdict(out, st, why);
	if (why == DNS_R_NXDOMAIN)
		snprintf(out->detail, sizeof(out->detail),
		    "%s: no such domain (NXDOMAIN)", domain);
	else {
		snprintf(what, sizeof(what), "%s: MX lookup", domain);
		failed(out->detail, sizeof(out->detail), what, why);
	}
}

void
dns_hosts_sort(struct dns_host *v, size_t n)
{
	size_t i, j;

	/* Insertion sort: stable, and n is at most a few dozen. */
	for (i = 1; i < n; i++) {
		struct dns_host h = v[i];

		for (j = i; j > 0 && v[j - 1].preference > h.preference; j--)
			v[j] = v[j - 1];
		v[j] = h;
	}
}

void
dns_hosts_shuffle(struct dns_host *v, size_t n, dns_random_fn *rnd, void *ctx)
{
	size_t start = 0, end, k;

	while (start < n) {
		for (end = start + 1; end < n &&
		    v[end].preference == v[start].preference; end++)
			;
		/* Fisher-Yates over [start, end). */
		for (k = end - start; k > 1; k--) {
			uint32_t r = rnd((uint32_t)k, ctx);
			struct dns_host t;

			if (r >= k)
				r = (uint32_t)(k - 1);	/* a bad source stays in range */
			t = v[start + k - 1];
			v[start + k - 1] = v[start + r];
			v[start + r] = t;
		}
		start = end;
	}
}

static int
addr_equal(const struct dns_addr *a, const struct dns_addr *b)
{
	if (a->family != b->family)
		return 0;
	if (a->family == AF_INET)
		return a->u.v4.s_addr == b->u.v4.s_addr;
	return memcmp(&a->u.v6, &b->u.v6, sizeof(a->u.v6)) == 0;
}

size_t
dns_addrs_order(struct dns_addr *v, size_t n, size_t max)
{
	struct dns_addr *fam[2];
	size_t nf[2] = { 0, 0 }, i, j, k, out = 0;
	int first = -1;

	if (n == 0)
		return 0;
	fam[0] = xcalloc(n, sizeof(*v));
	fam[1] = xcalloc(n, sizeof(*v));
	for (i = 0; i < n; i++) {
		int f;

		if (v[i].family == AF_INET6)
			f = 0;
		else if (v[i].family == AF_INET)
			f = 1;
		else
			continue;
		for (j = 0; j < nf[f]; j++)
			if (addr_equal(&fam[f][j], &v[i]))
				break;
		if (j < nf[f])
			continue;
		if (first < 0)
			first = f;
		fam[f][nf[f]++] = v[i];
	}
	if (first >= 0) {
		/* The preferred family first, then turn about. */
		for (i = 0, j = 0, k = 0; out < max && (i < nf[first] ||
		    j < nf[!first]); k++) {
			if ((k % 2 == 0 && i < nf[first]) || j >= nf[!first])
				v[out++] = fam[first][i++];
			else
				v[out++] = fam[!first][j++];
		}
	}
	free(fam[0]);
	free(fam[1]);
	return out;
}

void
dns_result_settle(struct dns_result *res, int is_mx)
{
	const struct dns_host *temp = NULL;
	char what[DNS_NAME_MAX * 2 + 64];
	size_t i;

	res->detail[0] = '\0';
	for (i = 0; i < res->nhosts; i++) {
		if (res->hosts[i].naddrs > 0) {
			verdict(res, DNS_OK, DNS_R_NONE);
			return;
		}
		if (res->hosts[i].status != DNS_PERMANENT && temp == NULL)
			temp = &res->hosts[i];
	}
	if (temp != NULL) {
		verdict(res, DNS_TEMPORARY, temp->reason == DNS_R_NONE ||
		    temp->reason == DNS_R_NXDOMAIN ||
		    temp->reason == DNS_R_NO_ADDRESS ? DNS_R_OTHER : temp->reason);
		if (is_mx && !res->implicit_mx)
			snprintf(what, sizeof(what),
			    "%s: address lookup of MX host %s", res->name,
			    temp->name);
		else
			snprintf(what, sizeof(what), "%s: address lookup",
			    res->name);
		failed(res->detail, sizeof(res->detail), what, res->reason);
		return;
	}
	if (!is_mx && res->nhosts == 1 && res->hosts[0].reason == DNS_R_NXDOMAIN) {
		verdict(res, DNS_PERMANENT, DNS_R_NXDOMAIN);
		snprintf(res->detail, sizeof(res->detail),
		    "%s: no such domain (NXDOMAIN)", res->name);
		return;
	}
	verdict(res, DNS_PERMANENT, DNS_R_NO_ADDRESS);
	if (!is_mx)
		snprintf(res->detail, sizeof(res->detail),
		    "%s has no address record", res->name);
	else if (res->implicit_mx)
		snprintf(res->detail, sizeof(res->detail),
		    "%s has no MX and no address record", res->name);
	else
		snprintf(res->detail, sizeof(res->detail),
		    "no MX host of %s has an address", res->name);
}

void
dns_result_free(struct dns_result **resp)
{
	struct dns_result *res = *resp;
	size_t i;

	if (res == NULL)
		return;
	for (i = 0; i < res->nhosts; i++) {
		free(res->hosts[i].name);
		free(res->hosts[i].addrs);
	}
	free(res->hosts);
	free(res->name);
	free(res);
	*resp = NULL;
}

struct dns_result *
dns_result_dup(const struct dns_result *res)
{
	struct dns_result *d = xmalloc(sizeof(*d));
	size_t i;

	*d = *res;
	d->name = res->name ? xstrdup(res->name) : NULL;
	d->hosts = NULL;
	if (res->nhosts > 0) {
		d->hosts = xcalloc(res->nhosts, sizeof(*d->hosts));
		for (i = 0; i < res->nhosts; i++) {
			const struct dns_host *h = &res->hosts[i];

			d->hosts[i] = *h;
			d->hosts[i].name = xstrdup(h->name);
			d->hosts[i].addrs = NULL;
			if (h->naddrs > 0) {
				d->hosts[i].addrs = xcalloc(h->naddrs,
				    sizeof(*h->addrs));
				memcpy(d->hosts[i].addrs, h->addrs,
				    h->naddrs * sizeof(*h->addrs));
			}
		}
	}
	return d;
}

const char *
dns_addr_text(const struct dns_addr *a, char *buf, size_t len)
{
	if (inet_ntop(a->family, &a->u, buf, (socklen_t)len) == NULL &&
	    len > 0)
		snprintf(buf, len, "?");
	return buf;
}

socklen_t
dns_addr_sockaddr(const struct dns_addr *a, uint16_t port,
    struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		s6->sin6_addr = a->u.v6;
		return sizeof(*s6);
	}
	if (a->family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		s4->sin_addr = a->u.v4;
		return sizeof(*s4);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The resolver. */

struct dns_sock {
	ares_socket_t fd;
	struct event *ev;
	struct dns_sock *next;
};

enum entry_state { E_LOOKING, E_CACHED };

struct dns_entry {
	struct dns_resolver *r;
	int is_mx;
	char *name;
	uint32_t hash;
	struct dns_entry *hnext;		/* bucket chain */
	int in_table;
	TAILQ_ENTRY(dns_entry) fifo;		/* CACHED, oldest first */
	enum entry_state state;
	TAILQ_HEAD(, dns_query) waiters;	/* LOOKING */
	int pending;		/* c-ares callbacks to come, +1 while starting */
	int nocache;		/* some part failed temporarily */
	struct dns_result *res;
	struct host_work *work;	/* per host of res, while looking */
	uint64_t expires_ms;			/* CACHED */
};

/*
 * A host's two address lookups, IPv6 ([0]) and IPv4 ([1]): each its own
 * ares_getaddrinfo(), because c-ares 1.18 asked for both at once reports
 * only the status of the last answer (a SERVFAIL for one family followed
 * by "no data" for the other would pass for a permanent "no address").
 */
struct host_work {
	struct dns_addr *v[2];
	size_t n[2];
	int status[2];
	int left;
};

struct dns_query {
	struct dns_resolver *r;
	struct dns_entry *e;		/* waiting on it; NULL once ready */
	TAILQ_ENTRY(dns_query) link;	/* in e->waiters or r->ready */
	struct event *ev;
	dns_cb *cb;
	void *arg;
	struct dns_result *res;		/* once ready */
};

struct dns_resolver {
	struct event_base *base;
	ares_channel ch;
	struct event *timer;
	struct dns_sock *socks;
	struct dns_options o;
	struct dns_entry **buckets;
	size_t nbuckets;			/* a power of two */
	TAILQ_HEAD(, dns_entry) fifo;
	size_t ncached;
	TAILQ_HEAD(, dns_query) ready;
	unsigned long lookups;
	int closing;
};

static uint32_t
default_random(uint32_t bound, void *ctx)
{
	(void)ctx;
	return arc4random_uniform(bound);
}

/* Arm the timer for c-ares' next timeout, or stop it when nothing waits. */
static void
timer_arm(struct dns_resolver *r)
{
	struct timeval tv, *tvp;

	if (r->closing)
		return;
	tvp = ares_timeout(r->ch, NULL, &tv);
	if (tvp != NULL)
		evtimer_add(r->timer, tvp);
	else
		evtimer_del(r->timer);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_resolver *r = arg;

	ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	timer_arm(r);
}

/*
 * A socket c-ares watches is ready.  Its dns_sock may be freed inside
 * ares_process_fd() (c-ares closing it), so only r is used after.
 */
static void
sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_resolver *r = arg;

	ares_process_fd(r->ch, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
	    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	timer_arm(r);
}

/*
 * c-ares' socket-state callback: watch fd for what it asks, or stop
 * watching it (readable and writable both 0: the socket is closing).
 */
static void
sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns_resolver *r = data;
	struct dns_sock **pp, *s;
	short what;

	for (pp = &r->socks; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->fd == fd)
			break;
	s = *pp;
	if (!readable && !writable) {
		if (s != NULL) {
			*pp = s->next;
			event_free(s->ev);
			free(s);
		}
		return;
	}
	if (s == NULL) {
		s = xcalloc(1, sizeof(*s));
		s->fd = fd;
		s->next = r->socks;
		r->socks = s;
	} else
		event_free(s->ev);
	what = EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);
	s->ev = event_new(r->base, fd, what, sock_cb, r);
	if (s->ev == NULL || event_add(s->ev, NULL) < 0)
		fatal("dns: cannot watch a resolver socket");
}

/* FNV-1a over the kind and the name. */
static uint32_t
name_hash(int is_mx, const char *name)
{
	uint32_t h = 2166136261u ^ (uint32_t)is_mx;

	for (; *name != '\0'; name++) {
		h ^= (unsigned char)*name;
		h *= 16777619u;
	}
	return h;
}

static void
table_remove(struct dns_resolver *r, struct dns_entry *e)
{
	struct dns_entry **pp;

	if (!e->in_table)
		return;
	for (pp = &r->buckets[e->hash & (r->nbuckets - 1)]; *pp != NULL;
	    pp = &(*pp)->hnext)
		if (*pp == e) {
			*pp = e->hnext;
			break;
		}
	e->in_table = 0;
	if (e->state == E_CACHED) {
		TAILQ_REMOVE(&r->fifo, e, fifo);
		r->ncached--;
	}
}

static void
entry_free(struct dns_entry *e)
{
	size_t i;

	table_remove(e->r, e);
	if (e->work != NULL && e->res != NULL)
		for (i = 0; i < e->res->nhosts; i++) {
			free(e->work[i].v[0]);
			free(e->work[i].v[1]);
		}
	free(e->work);
	dns_result_free(&e->res);
	free(e->name);
	free(e);
}

/* The entry for (is_mx, name): in flight or cached and still fresh. */
static struct dns_entry *
table_find(struct dns_resolver *r, int is_mx, const char *name, uint32_t hash)
{
	struct dns_entry *e;

	for (e = r->buckets[hash & (r->nbuckets - 1)]; e != NULL; e = e->hnext) {
		if (e->hash != hash || e->is_mx != is_mx ||
		    strcmp(e->name, name) != 0)
			continue;
		if (e->state == E_CACHED && (uint64_t)monotonic_ms() >= e->expires_ms) {
			entry_free(e);
			return NULL;
		}
		return e;
	}
	return NULL;
}

/* Put q on the ready list with res; its event delivers it from the loop. */
static void
query_ready(struct dns_query *q, struct dns_result *res)
{
	struct dns_resolver *r = q->r;

	if (q->e != NULL) {
		TAILQ_REMOVE(&q->e->waiters, q, link);
		q->e = NULL;
	}
	q->res = res;
	TAILQ_INSERT_TAIL(&r->ready, q, link);
	event_active(q->ev, EV_TIMEOUT, 0);
}

/* A requester's own copy of an answer: equal preferences reshuffled. */
static struct dns_result *
result_for_requester(struct dns_resolver *r, const struct dns_result *res)
{
	struct dns_result *d = dns_result_dup(res);

	dns_hosts_shuffle(d->hosts, d->nhosts, r->o.random, r->o.random_ctx);
	return d;
}

/* A result with a verdict and no hosts. */
static struct dns_result *
result_new(const char *name, enum dns_status st, enum dns_reason why)
{
	struct dns_result *res = xcalloc(1, sizeof(*res));

	res->name = xstrdup(name);
	res->status = st;
	res->reason = why;
	return res;
}

/*
 * Every c-ares callback of e has come back: settle the answer, hand
 * copies to the waiters, then keep it in the cache or free it.
 */
static void
entry_done(struct dns_entry *e)
{
	struct dns_resolver *r = e->r;
	struct dns_result *res = e->res;
	struct dns_query *q;
	uint32_t ttl;

	if (res == NULL)	/* c-ares never called back: cannot happen */
		res = e->res = result_new(e->name, DNS_TEMPORARY, DNS_R_OTHER);
	free(e->work);
	e->work = NULL;
	if (res->status == DNS_OK)
		dns_result_settle(res, e->is_mx);
	if (r->closing && res->status != DNS_CANCELLED) {
		/* ARES_EDESTRUCTION in the address step: no one waits. */
		res->status = DNS_CANCELLED;
		res->reason = DNS_R_CANCELLED;
	}
	while ((q = TAILQ_FIRST(&e->waiters)) != NULL)
		query_ready(q, result_for_requester(r, res));

	switch (res->status) {
	case DNS_OK:
		ttl = res->ttl;
		break;
	case DNS_PERMANENT:
		ttl = res->reason == DNS_R_NULL_MX ? res->ttl : r->o.ttl_negative;
		break;
	default:
		ttl = 0;
		break;
	}
	ttl = dns_ttl_cap(ttl, r->o.ttl_max);
	if (r->closing || e->nocache || ttl == 0 || !e->in_table) {
		entry_free(e);
		return;
	}
	res->ttl = ttl;
	e->state = E_CACHED;
	e->expires_ms = (uint64_t)monotonic_ms() + (uint64_t)ttl * 1000;
	TAILQ_INSERT_TAIL(&r->fifo, e, fifo);
	r->ncached++;
	while (r->ncached > r->o.cache_size)
		entry_free(TAILQ_FIRST(&r->fifo));
}

static void
entry_release(struct dns_entry *e)
{
	if (--e->pending == 0)
		entry_done(e);
}

/*
 * The addresses of one family out of ares_getaddrinfo()'s answer, into
 * *v and *n; lowers *ttl to the smallest TTL of them and their CNAMEs.
 */
static void
addrs_collect(const struct ares_addrinfo *ai, int family, struct dns_addr **v,
    size_t *n, uint32_t *ttl)
{
	const struct ares_addrinfo_node *a;
	const struct ares_addrinfo_cname *c;
	size_t cnt = 0;

	for (a = ai->nodes; a != NULL; a = a->ai_next)
		cnt++;
	*v = xcalloc(cnt ? cnt : 1, sizeof(**v));
	cnt = 0;
	for (a = ai->nodes; a != NULL && cnt < DNS_MAX_ADDRS; a = a->ai_next) {
		if (a->ai_family != family || a->ai_addr == NULL)
			continue;
		if (family == AF_INET &&
		    a->ai_addrlen >= sizeof(struct sockaddr_in))
			(*v)[cnt].u.v4 = ((const struct sockaddr_in *)
			    (const void *)a->ai_addr)->sin_addr;
		else if (family == AF_INET6 &&
		    a->ai_addrlen >= sizeof(struct sockaddr_in6))
			(*v)[cnt].u.v6 = ((const struct sockaddr_in6 *)
			    (const void *)a->ai_addr)->sin6_addr;
		else
			continue;
		(*v)[cnt++].family = family;
		if (a->ai_ttl < 0)
			*ttl = 0;
		else if ((uint32_t)a->ai_ttl < *ttl)
			*ttl = (uint32_t)a->ai_ttl;
	}
	for (c = ai->cnames; c != NULL; c = c->next)
		if (c->ttl >= 0 && (uint32_t)c->ttl < *ttl)
			*ttl = (uint32_t)c->ttl;
	*n = cnt;
}

/*
 * Both address lookups of host h are done: its addresses, IPv6 first then
 * alternating (RFC 8305), and its status.  With none, a temporary failure
 * of either family makes it temporary; NXDOMAIN needs both to say so.
 */
static void
host_settle(struct dns_entry *e, struct dns_host *h, struct host_work *w)
{
	enum dns_reason why[2];
	enum dns_status st[2];
	size_t f, n = w->n[0] + w->n[1];

	if (n > 0) {
		h->addrs = xcalloc(n, sizeof(*h->addrs));
		for (f = 0; f < 2; f++)
			if (w->n[f] > 0)
				memcpy(h->addrs + (f ? w->n[0] : 0), w->v[f],
				    w->n[f] * sizeof(*h->addrs));
		h->naddrs = dns_addrs_order(h->addrs, n, DNS_MAX_ADDRS);
	}
	for (f = 0; f < 2; f++) {
		free(w->v[f]);
		w->v[f] = NULL;
	}
	if (h->naddrs > 0) {
		h->status = DNS_OK;
		h->reason = DNS_R_NONE;
		return;
	}
	free(h->addrs);
	h->addrs = NULL;
	for (f = 0; f < 2; f++)
		st[f] = dns_classify(w->status[f] == ARES_SUCCESS ?
		    ARES_ENODATA : w->status[f], &why[f]);
	if (st[0] != DNS_PERMANENT || st[1] != DNS_PERMANENT) {
		f = st[0] != DNS_PERMANENT ? 0 : 1;
		h->status = st[f] == DNS_CANCELLED ? DNS_CANCELLED : DNS_TEMPORARY;
		h->reason = why[f];
		e->nocache = 1;
		return;
	}
	h->status = DNS_PERMANENT;
	h->reason = why[0] == DNS_R_NXDOMAIN && why[1] == DNS_R_NXDOMAIN ?
	    DNS_R_NXDOMAIN : DNS_R_NO_ADDRESS;
	if (e->r->o.ttl_negative < e->res->ttl)
		e->res->ttl = e->r->o.ttl_negative;
}

/* One address lookup of an entry's host. */
struct addr_req {
	struct dns_entry *e;
	size_t i;
	int fam;		/* 0: IPv6, 1: IPv4 */
};

/* ares_getaddrinfo() came back for one family of one host of an entry. */
static void
addr_cb(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
	struct addr_req *req = arg;
	struct dns_entry *e = req->e;
	struct host_work *w = &e->work[req->i];
	uint32_t ttl = UINT32_MAX;
	int fam = req->fam;

	if (status == ARES_SUCCESS && ai != NULL) {
		addrs_collect(ai, fam == 0 ? AF_INET6 : AF_INET, &w->v[fam],
		    &w->n[fam], &ttl);
		if (w->n[fam] > 0 && ttl < e->res->ttl)
			e->res->ttl = ttl;
	}
	if (ai != NULL)
		ares_freeaddrinfo(ai);
	w->status[fam] = status;
	if (--w->left == 0)
		host_settle(e, &e->res->hosts[req->i], w);
	free(req);
	entry_release(e);
}

/* Start the address lookups of host i of e, one per family. */
static void
addr_start(struct dns_entry *e, size_t i)
{
	struct dns_resolver *r = e->r;
	struct ares_addrinfo_hints hints;
	int fam;

	e->work[i].left = 2;
	for (fam = 0; fam < 2; fam++) {
		struct addr_req *req = xcalloc(1, sizeof(*req));

		memset(&hints, 0, sizeof(hints));
		hints.ai_family = fam == 0 ? AF_INET6 : AF_INET;
		hints.ai_flags = ARES_AI_NOSORT;
		req->e = e;
		req->i = i;
		req->fam = fam;
		e->pending++;
		r->lookups++;
		ares_getaddrinfo(r->ch, e->res->hosts[i].name, NULL, &hints,
		    addr_cb, req);
	}
}

/* Address lookups for every host of e->res. */
static void
addrs_start(struct dns_entry *e)
{
	size_t i;

	e->work = xcalloc(e->res->nhosts, sizeof(*e->work));
	for (i = 0; i < e->res->nhosts; i++)
		addr_start(e, i);
}

/* The MX query of e came back: its hosts' addresses are next. */
static void
mx_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_entry *e = arg;
	struct dns_resolver *r = e->r;

	e->res = xcalloc(1, sizeof(*e->res));
	dns_mx_answer(e->name, status, abuf, alen, r->o.ttl_max, e->res);
	if (e->res->status == DNS_TEMPORARY)
		e->nocache = 1;
	if (e->res->status == DNS_OK && !r->closing)
		addrs_start(e);
	else if (e->res->status == DNS_OK) {
		e->res->status = DNS_CANCELLED;
		e->res->reason = DNS_R_CANCELLED;
	}
	entry_release(e);
}

/* A new entry in flight for (is_mx, name), its lookup started. */
static struct dns_entry *
entry_start(struct dns_resolver *r, int is_mx, const char *name, uint32_t hash)
{
	struct dns_entry *e = xcalloc(1, sizeof(*e));
	size_t b = hash & (r->nbuckets - 1);

	e->r = r;
	e->is_mx = is_mx;
	e->name = xstrdup(name);
	e->hash = hash;
	e->state = E_LOOKING;
	TAILQ_INIT(&e->waiters);
	e->hnext = r->buckets[b];
	r->buckets[b] = e;
	e->in_table = 1;
	/* Held while starting: c-ares may call back before returning. */
	e->pending = 1;
	if (is_mx) {
		e->pending++;
		r->lookups++;
		ares_query(r->ch, name, C_IN, T_MX, mx_cb, e);
	} else {
		e->res = xcalloc(1, sizeof(*e->res));
		e->res->name = xstrdup(name);
		e->res->hosts = xcalloc(1, sizeof(*e->res->hosts));
		e->res->hosts[0].name = xstrdup(name);
		e->res->nhosts = 1;
		e->res->ttl = r->o.ttl_max;
		e->res->status = DNS_OK;
		addrs_start(e);
	}
	return e;
}

static void
query_fire(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;
	struct dns_result *res = q->res;
	dns_cb *cb = q->cb;
	void *cbarg = q->arg;

	TAILQ_REMOVE(&q->r->ready, q, link);
	event_free(q->ev);
	free(q);
	cb(res, cbarg);
}

static struct dns_query *
query_new(struct dns_resolver *r, dns_cb *cb, void *arg)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));

	q->r = r;
	q->cb = cb;
	q->arg = arg;
	q->ev = event_new(r->base, -1, 0, query_fire, q);
	if (q->ev == NULL)
		fatal("dns: cannot create an event");
	return q;
}

/* Text from a requester quoted in a detail: printable, bounded. */
static void
quote(char *out, size_t outlen, const char *in)
{
	size_t i, o = 0;

	for (i = 0; in[i] != '\0' && o + 4 < outlen; i++) {
		unsigned char c = (unsigned char)in[i];

		out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
		if (i == 99) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
	}
	out[o] = '\0';
}

/*
 * An address literal: "[192.0.2.1]" or "[IPv6:2001:db8::1]" (RFC 5321
 * §4.1.3) when mail, else "192.0.2.1", "2001:db8::1" or "[2001:db8::1]".
 * Returns 0 with *a filled and the bare address in text, or -1.
 */
static int
parse_literal(const char *s, int mail, struct dns_addr *a, char *text,
    size_t textlen)
{
	char buf[INET6_ADDRSTRLEN + 8];
	size_t n = strlen(s);

	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
		if (mail && n > 5 && strncasecmp(s, "IPv6:", 5) == 0) {
			s += 5;
			n -= 5;
			if (n >= sizeof(buf))
				return -1;
			memcpy(buf, s, n);
			buf[n] = '\0';
			a->family = AF_INET6;
			if (inet_pton(AF_INET6, buf, &a->u.v6) != 1)
				return -1;
			dns_addr_text(a, text, textlen);
			return 0;
		}
	} else if (mail)
		return -1;
	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, buf, &a->u.v4) == 1)
		a->family = AF_INET;
	else if (!mail && inet_pton(AF_INET6, buf, &a->u.v6) == 1)
		a->family = AF_INET6;
	else
		return -1;
	dns_addr_text(a, text, textlen);
	return 0;
}

/* The answer for an address literal: one host, that address. */
static struct dns_result *
literal_result(const char *text, const struct dns_addr *a, int mail)
{
	struct dns_result *res = result_new(text, DNS_OK, DNS_R_NONE);

	res->implicit_mx = mail;
	res->hosts = xcalloc(1, sizeof(*res->hosts));
	res->hosts[0].name = xstrdup(text);
	res->hosts[0].status = DNS_OK;
	res->hosts[0].addrs = xmalloc(sizeof(*a));
	res->hosts[0].addrs[0] = *a;
	res->hosts[0].naddrs = 1;
	res->nhosts = 1;
	return res;
}

/* The body of dns_mx_hosts() and dns_addresses(). */
static struct dns_query *
request(struct dns_resolver *r, int is_mx, const char *name, dns_cb *cb,
    void *arg)
{
	struct dns_query *q = query_new(r, cb, arg);
	char norm[DNS_NAME_MAX + 1], text[INET6_ADDRSTRLEN + 8];
	struct dns_result *res;
	struct dns_entry *e;
	struct dns_addr a;
	uint32_t hash;

	if (name == NULL)
		name = "";
	if (parse_literal(name, is_mx, &a, text, sizeof(text)) == 0) {
		query_ready(q, literal_result(text, &a, is_mx));
		return q;
	}
	if (dns_name_normalize(name, norm, sizeof(norm)) < 0) {
		quote(text, sizeof(text), name);
		res = result_new(text, DNS_PERMANENT, DNS_R_BAD_NAME);
		snprintf(res->detail, sizeof(res->detail),
		    "\"%s\" is not a valid domain name", text);
		query_ready(q, res);
		return q;
	}
	if (r->closing) {
		res = result_new(norm, DNS_CANCELLED, DNS_R_CANCELLED);
		snprintf(res->detail, sizeof(res->detail),
		    "%.200s: lookup cancelled", norm);
		query_ready(q, res);
		return q;
	}
	hash = name_hash(is_mx, norm);
	e = table_find(r, is_mx, norm, hash);
	if (e != NULL && e->state == E_CACHED) {
		query_ready(q, result_for_requester(r, e->res));
		return q;
	}
	if (e == NULL) {
		e = entry_start(r, is_mx, norm, hash);
		q->e = e;
		TAILQ_INSERT_TAIL(&e->waiters, q, link);
		entry_release(e);	/* the hold taken while starting */
		timer_arm(r);
		return q;
	}
	q->e = e;
	TAILQ_INSERT_TAIL(&e->waiters, q, link);
	return q;
}

struct dns_query *
dns_mx_hosts(struct dns_resolver *r, const char *domain, dns_mx_cb *cb,
    void *arg)
{
	return request(r, 1, domain, cb, arg);
}

struct dns_query *
dns_addresses(struct dns_resolver *r, const char *host, dns_cb *cb, void *arg)
{
	return request(r, 0, host, cb, arg);
}

void
dns_cancel(struct dns_query *q)
{
	if (q == NULL)
		return;
	if (q->e != NULL)
		TAILQ_REMOVE(&q->e->waiters, q, link);
	else
		TAILQ_REMOVE(&q->r->ready, q, link);
	event_free(q->ev);
	dns_result_free(&q->res);
	free(q);
}

unsigned long
dns_lookups(const struct dns_resolver *r)
{
	return r->lookups;
}

struct dns_resolver *
dns_new_opts(struct event_base *base, const struct config_endpoints *servers,
    const struct dns_options *opts, char *err, size_t errlen)
{
	struct dns_resolver *r;
	struct ares_options ao;
	int rc, mask;

	if (resolve_init(err, errlen) != 0)
		return NULL;
	r = xcalloc(1, sizeof(*r));
	r->base = base;
	if (opts != NULL)
		r->o = *opts;
	if (r->o.timeout_ms == 0)
		r->o.timeout_ms = DEF_TIMEOUT_MS;
	if (r->o.tries == 0)
		r->o.tries = DEF_TRIES;
	if (r->o.cache_size == 0)
		r->o.cache_size = DEF_CACHE_SIZE;
	if (r->o.ttl_max == 0)
		r->o.ttl_max = DEF_TTL_MAX;
	if (r->o.ttl_negative == 0)
		r->o.ttl_negative = DEF_TTL_NEG;
	if (r->o.random == NULL)
		r->o.random = default_random;
	for (r->nbuckets = 64; r->nbuckets < 2 * (size_t)r->o.cache_size &&
	    r->nbuckets < ((size_t)1 << 20); r->nbuckets <<= 1)
		;
	r->buckets = xcalloc(r->nbuckets, sizeof(*r->buckets));
	TAILQ_INIT(&r->fifo);
	TAILQ_INIT(&r->ready);

	memset(&ao, 0, sizeof(ao));
	mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
	    ARES_OPT_DOMAINS | ARES_OPT_FLAGS;
	/*
	 * SERVFAIL and REFUSED reach us as such: c-ares 1.18 would otherwise
	 * drop them, try again, and report "connection refused" in the end,
	 * which tells the queue's last_error nothing.  The cost: no failover
	 * to another server on those answers (timeouts still fail over).
	 */
	ao.flags = ARES_FLAG_NOCHECKRESP;
	ao.sock_state_cb = sock_state_cb;
	ao.sock_state_cb_data = r;
	ao.timeout = (int)r->o.timeout_ms;
	ao.tries = (int)r->o.tries;
	/* Names are looked up as they are: no search domains. */
	ao.domains = NULL;
	ao.ndomains = 0;
	rc = ares_init_options(&r->ch, &ao, mask);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		free(r->buckets);
		free(r);
		return NULL;
	}
	if (servers != NULL && servers->n > 0 &&
	    resolve_servers(r->ch, servers, err, errlen) < 0) {
		ares_destroy(r->ch);
		free(r->buckets);
		free(r);
		return NULL;
	}
	r->timer = evtimer_new(base, timer_cb, r);
	if (r->timer == NULL)
		fatal("dns: cannot create a timer");
	return r;
}

struct dns_resolver *
dns_new(struct event_base *base, const struct config_endpoints *servers,
    char *err, size_t errlen)
{
	return dns_new_opts(base, servers, NULL, err, errlen);
}

void
dns_free(struct dns_resolver **rp)
{
	struct dns_resolver *r = *rp;
	struct dns_query *q;
	struct dns_sock *s;
	struct dns_entry *e;
	size_t b;

	if (r == NULL || r->closing)
		return;		/* again from a callback inside dns_free() */
	r->closing = 1;
	evtimer_del(r->timer);

	/* Requests in flight: cancelled. */
	for (b = 0; b < r->nbuckets; b++)
		for (e = r->buckets[b]; e != NULL; e = e->hnext)
			while ((q = TAILQ_FIRST(&e->waiters)) != NULL) {
				struct dns_result *res = result_new(e->name,
				    DNS_CANCELLED, DNS_R_CANCELLED);

				snprintf(res->detail, sizeof(res->detail),
				    "%s: lookup cancelled", e->name);
				query_ready(q, res);
			}
	/* Every ready request, and any its callback makes, runs now. */
	while ((q = TAILQ_FIRST(&r->ready)) != NULL)
		query_fire(-1, 0, q);

	/* c-ares calls back with ARES_EDESTRUCTION: entries free themselves. */
	ares_destroy(r->ch);
	for (b = 0; b < r->nbuckets; b++)
		while ((e = r->buckets[b]) != NULL)
			entry_free(e);
	while ((s = r->socks) != NULL) {
		r->socks = s->next;
		event_free(s->ev);
		free(s);
	}
	event_free(r->timer);
	free(r->buckets);
	free(r);
	*rp = NULL;
}
