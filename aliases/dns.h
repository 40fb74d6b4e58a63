/*
 * dns.h - asynchronous DNS for outbound mail: c-ares on the libevent loop.
 *
 * SPEC §6: direct delivery goes to the domain's MX hosts by preference, then
 * to its own A/AAAA when it has no MX; a null MX (RFC 7505) is a permanent
 * failure.  SPEC §2: [dns] servers, else /etc/resolv.conf.
 *
 * One resolver per event loop (it is not thread-safe).  Every request
 * returns a handle at once; its callback always runs later from the loop,
 * never from inside the call that made the request, and never from inside
 * c-ares: a callback may make new requests, cancel others, or free the
 * resolver.  The callback runs exactly once unless the request is
 * cancelled first with dns_cancel().
 *
 * Answers are cached per name, honouring their TTLs (capped), negative
 * answers briefly, temporary failures never; a request for a name whose
 * lookup is already in flight joins it, so a burst of mail to one domain
 * costs one lookup.
 */
#ifndef UMBOX_ALIASES_DNS_H
#define UMBOX_ALIASES_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

struct event_base;
struct config_endpoints;
struct dns_resolver;
struct dns_query;

#define DNS_NAME_MAX	253	/* a domain name as text, without the final dot */
/*
 * MX hosts kept, lowest preferences first, and addresses kept per host:
 * enough that the MX guard sees this server among any real domain's MX
 * hosts (delivery tries fewer: QUEUE_HOSTS_MAX).
 */
#define DNS_MAX_HOSTS	64
#define DNS_MAX_ADDRS	32

enum dns_status {
	DNS_OK = 0,		/* at least one host has an address */
	DNS_TEMPORARY,		/* try again later: SERVFAIL, timeout, network */
	DNS_PERMANENT,		/* NXDOMAIN, null MX, no address anywhere */
	DNS_CANCELLED,		/* the resolver was freed before the answer */
};

/* Why, in a form a program can test (the MX guard, the tests). */
enum dns_reason {
	DNS_R_NONE = 0,		/* DNS_OK */
	DNS_R_NXDOMAIN,		/* the name does not exist */
	DNS_R_NULL_MX,		/* RFC 7505: the domain accepts no mail */
	DNS_R_NO_ADDRESS,	/* no A/AAAA (for the implicit MX, a host, or every MX host) */
	DNS_R_BAD_NAME,		/* not a name we look up (syntax, length) */
	DNS_R_SERVFAIL,
	DNS_R_REFUSED,
	DNS_R_TIMEOUT,
	DNS_R_NETWORK,		/* no server reachable, connection refused */
	DNS_R_BAD_ANSWER,	/* an answer that does not parse, FORMERR, NOTIMP */
	DNS_R_OTHER,		/* out of memory, anything else c-ares says */
	DNS_R_CANCELLED,
};

/* One address of a host; no port (the caller adds its own). */
struct dns_addr {
	int family;		/* AF_INET or AF_INET6 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} u;
};

struct dns_host {
	char *name;		/* lowercase, no final dot; or an IP literal */
	unsigned preference;	/* MX preference; 0 for the implicit MX and hosts */
	/* Of this host's address lookup: DNS_OK with addresses, DNS_PERMANENT
	 * when it has none, DNS_TEMPORARY when that is not known. */
	enum dns_status status;
	enum dns_reason reason;	/* and why */
	struct dns_addr *addrs;	/* IPv6 first, then families alternate */
	size_t naddrs;		/* may be 0: skip the host */
};

struct dns_result {
	enum dns_status status;
	enum dns_reason reason;
	char *name;		/* the domain or host asked about, normalised */
	int implicit_mx;	/* no MX: the domain itself is the one host */
	/* MX hosts by preference, equal preferences shuffled for this result;
	 * kept whatever the status (the MX guard wants the names). */
	struct dns_host *hosts;
	size_t nhosts;
	uint32_t ttl;		/* seconds this answer may be kept (capped) */
	/* For a queue's last_error and a DSN; printable ASCII, e.g.
	 * "example.com: no such domain (NXDOMAIN)". Empty when DNS_OK.
	 * Room for a name of 253 characters and what befell it. */
	char detail[512];
};

/*
 * A request's callback.  It owns res and frees it with dns_result_free();
 * the request handle is already gone when it runs.
 */
typedef void dns_cb(struct dns_result *res, void *arg);
typedef dns_cb dns_mx_cb;

/* A uniform random number in [0, bound), bound >= 1. */
typedef uint32_t dns_random_fn(uint32_t bound, void *ctx);

/* Tuning; zero fields take the default.  Tests shorten the timeouts. */
struct dns_options {
	unsigned timeout_ms;	/* first try; c-ares doubles it each round (2000) */
	unsigned tries;		/* per server (3) */
	unsigned cache_size;	/* names kept, oldest evicted first (1024) */
	unsigned ttl_max;	/* seconds, cap on any TTL (3600) */
	unsigned ttl_negative;	/* seconds NXDOMAIN and "no address" are kept (60) */
	dns_random_fn *random;	/* shuffles equal preferences (arc4random_uniform) */
	void *random_ctx;
};

/*
 * A resolver on base.  servers: the [dns] servers (literal addresses with
 * ports), or NULL or empty for /etc/resolv.conf.  Names are looked up
 * as given (no search domains).  A SERVFAIL or REFUSED answer is taken as
 * it is, not retried on another server, so that it is reported as such;
 * timeouts move on to the next server.  Returns NULL with a message in err
 * when c-ares cannot be set up or a server is not an IP address.
 */
struct dns_resolver *dns_new(struct event_base *base,
    const struct config_endpoints *servers, char *err, size_t errlen);
struct dns_resolver *dns_new_opts(struct event_base *base,
    const struct config_endpoints *servers, const struct dns_options *opts,
    char *err, size_t errlen);

/*
 * Free the resolver and set *rp to NULL.  Every request still outstanding
 * has its callback run once, from inside dns_free(), with its answer if it
 * had one ready or else with DNS_CANCELLED; no callback runs after
 * dns_free() returns.  Such a callback may call dns_cancel() on other
 * requests; a request it makes is answered DNS_CANCELLED the same way, and
 * a dns_free() it calls does nothing.
 */
void dns_free(struct dns_resolver **rp);

/*
 * Resolve a mail domain to its destinations (SPEC §6): the MX hosts by
 * preference, equal preferences shuffled, each with its A and AAAA; or,
 * with no MX, the domain itself as the one host.  domain may end with a
 * dot and may be an address literal ("[192.0.2.1]", "[IPv6:2001:db8::1]"),
 * which is returned as it is.  Non-ASCII (not yet IDNA-encoded) domains
 * are refused with DNS_R_BAD_NAME.
 *
 * The result is DNS_OK when some host has an address.  DNS_PERMANENT:
 * NXDOMAIN, a null MX, or no address (no MX and no A/AAAA; or no MX host
 * has one, and none of their lookups failed temporarily), a name that is
 * not one.  DNS_TEMPORARY: SERVFAIL, REFUSED, timeouts, network errors,
 * answers that do not parse or whose MX records name no valid host.
 */
struct dns_query *dns_mx_hosts(struct dns_resolver *r, const char *domain,
    dns_mx_cb *cb, void *arg);

/*
 * The addresses of one host (a relay): a result with one host, DNS_OK
 * when it has an address, else DNS_PERMANENT (DNS_R_NXDOMAIN or
 * DNS_R_NO_ADDRESS) or DNS_TEMPORARY.  An IP literal ("192.0.2.1",
 * "2001:db8::1", "[2001:db8::1]") is returned without a lookup.
 */
struct dns_query *dns_addresses(struct dns_resolver *r, const char *host,
    dns_cb *cb, void *arg);

/*
 * The requester goes away: its callback will not run and q is freed.  The
 * lookup it started goes on for whoever else waits for it and for the
 * cache.  Must not be called for a request whose callback has run.
 */
void dns_cancel(struct dns_query *q);

/* Free a result and set *resp to NULL. */
void dns_result_free(struct dns_result **resp);
struct dns_result *dns_result_dup(const struct dns_result *res);

/* An address as text (inet_ntop); returns buf. */
const char *dns_addr_text(const struct dns_addr *a, char *buf, size_t len);

/* An address and port as a sockaddr to connect to; returns its length. */
socklen_t dns_addr_sockaddr(const struct dns_addr *a, uint16_t port,
    struct sockaddr_storage *ss);

/* Lookups started on the network since dns_new (tests, statistics). */
unsigned long dns_lookups(const struct dns_resolver *r);

/*
 * Answer handling, pure functions without I/O (exposed for the unit tests
 * and the fuzz target).
 */

/* A c-ares status as ours (ARES_ENOTFOUND: PERMANENT, NXDOMAIN, ...). */
enum dns_status dns_classify(int ares_status, enum dns_reason *reason);

/*
 * A name as we look it up: ASCII letters (lowercased), digits, '-' and
 * '_', labels of 1 to 63 characters, at most DNS_NAME_MAX in all, one
 * final dot dropped.  Returns 0 with out filled (out >= DNS_NAME_MAX + 1
 * bytes), or -1.
 */
int dns_name_normalize(const char *in, char *out, size_t outlen);

/* A TTL as we keep it: RFC 2181 §8 (above 2^31 - 1 means 0), at most max. */
uint32_t dns_ttl_cap(uint32_t ttl, uint32_t max);

/*
 * The smallest TTL among the answer section's records of type rrtype and
 * CNAME records (the chain that led to them).  Returns 0 with *ttl set, or
 * -1 when the buffer is malformed or holds no such record.
 */
int dns_answer_ttl(const unsigned char *abuf, size_t alen, int rrtype,
    uint32_t *ttl);

/*
 * The MX step: from the status and answer of an MX query for domain (a
 * normalised name), fill *out (which must be zeroed): with status DNS_OK,
 * the hosts to resolve (sorted by preference, not shuffled, addresses not
 * yet looked up; implicit_mx when the domain has no MX); otherwise the
 * final verdict (NXDOMAIN, null MX, SERVFAIL, ...) with its detail.
 * Duplicate hosts keep their best preference; names that are not valid
 * host names are dropped; at most DNS_MAX_HOSTS are kept.
 */
void dns_mx_answer(const char *domain, int ares_status,
    const unsigned char *abuf, int alen, uint32_t ttl_max,
    struct dns_result *out);

/* Sort hosts by preference, keeping the order of equal ones. */
void dns_hosts_sort(struct dns_host *v, size_t n);

/* Shuffle each run of equal preferences (v sorted), with rnd. */
void dns_hosts_shuffle(struct dns_host *v, size_t n, dns_random_fn *rnd,
    void *ctx);

/*
 * Order a host's addresses for connecting (RFC 8305 §4): drop duplicates
 * and anything but AF_INET/AF_INET6, keep the first address's family
 * first, then alternate families, each family in its given order; keep at
 * most max.  Returns the new count.
 */
size_t dns_addrs_order(struct dns_addr *v, size_t n, size_t max);

/*
 * The verdict once every host's address lookup is done: DNS_OK when a
 * host has an address; else DNS_TEMPORARY when a lookup failed
 * temporarily; else DNS_PERMANENT (DNS_R_NO_ADDRESS, or DNS_R_NXDOMAIN for
 * a lone host).  Sets status, reason and detail, worded for an MX request
 * when is_mx, else for dns_addresses().
 */
void dns_result_settle(struct dns_result *res, int is_mx);

#endif
