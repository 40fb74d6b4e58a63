/*
 * guard.h - the MX guard (SPEC §7): is a domain's mail meant for this
 * server, or would claiming it capture mail that belongs somewhere else?
 *
 * The verdict is a pure function of what DNS said about the domain (its
 * MX hosts with their addresses, or with no MX its own A/AAAA) and of this
 * server's identity: its host name, the addresses that name resolves to,
 * the addresses of the machine's interfaces (loopback included) and the
 * [general] public_addresses blocks.
 *
 *   claimed    an MX host is this server (or, with no MX, the domain's own
 *              address is)
 *   internal   the domain has no MX and no address record: outside senders
 *              cannot reach it, so claiming it captures nothing
 *   foreign    MX hosts exist and none is this server; a null MX (the
 *              domain accepts no mail) and a domain with no MX whose own
 *              address is elsewhere are foreign too
 *   dns-error  DNS could not say (SERVFAIL, timeout, an MX host whose
 *              address lookup failed and might have been this server)
 *
 * guard_check() runs the lookups on a c-ares resolver (aliases/dns.h), so
 * the daemon's periodic re-check never blocks its loop and umboxctl runs
 * the same code to completion.
 */
#ifndef UMBOX_ALIASES_GUARD_H
#define UMBOX_ALIASES_GUARD_H

#include <stddef.h>

#include "aliases/dns.h"

struct cidr_list;
struct umbox_config;
struct guard;
struct guard_query;

enum guard_verdict {
	GUARD_CLAIMED = 0,
	GUARD_INTERNAL,
	GUARD_FOREIGN,
	GUARD_DNS_ERROR,
};

#define GUARD_DETAIL_MAX	512

struct guard_result {
	enum guard_verdict verdict;
	/* What DNS said, in one line: the hosts and addresses, or the failure. */
	char detail[GUARD_DETAIL_MAX];
};

/* This server as DNS may name it. */
struct guard_identity {
	const char *hostname;			/* lowercase, no final dot */
	const struct dns_addr *addrs;		/* interfaces, the host name's */
	size_t naddrs;
	const struct cidr_list *public_addresses;	/* may be NULL */
};

/*
 * Whether a foreign verdict's detail says that no mail reaches the domain
 * at all (a null MX, MX records that name no host) rather than that it
 * goes to another server.
 */
int guard_nowhere(const char *detail);

/* "claimed", "internal", "foreign", "dns-error": what the store keeps. */
const char *guard_verdict_name(enum guard_verdict v);

/* Is the address this server's?  Loopback (127/8, ::1) always is. */
int guard_is_ours(const struct guard_identity *id, const struct dns_addr *a);

/*
 * This server's own SMTP listeners ([smtpd] listen) on one port, read
 * once (with the machine's addresses, when a wildcard listener needs
 * them): guard_self_is() says whether a connection to address a on that
 * port would reach one of them: a listener on that address, or a wildcard
 * one (0.0.0.0, ::) and an address of this machine (loopback, an
 * interface's, [general] public_addresses).  For the queue: an MX host
 * that is this server is a mail loop (RFC 5321 §5.1).
 */
struct umbox_config;
struct guard_self;
struct guard_self *guard_self_new(const struct umbox_config *cfg, unsigned port);
int guard_self_is(const struct guard_self *self, const struct dns_addr *a);
void guard_self_free(struct guard_self **selfp);

/*
 * The verdict on domain from the result of dns_mx_hosts(), pure.  Every
 * host of a foreign or claimed verdict is named in the detail with its
 * addresses (or "no address").
 */
void guard_judge(const struct dns_result *mx, const struct guard_identity *id,
    struct guard_result *out);

/*
 * A guard on a resolver, for cfg's hostname and public_addresses.  The
 * interface addresses are read again for every check (getifaddrs), the
 * host name's addresses are looked up with the domain's MX.
 */
struct guard *guard_new(struct dns_resolver *r, const struct umbox_config *cfg);
/* Free the guard; queries still outstanding are cancelled without callback. */
void guard_free(struct guard **gp);

/* The callback of a check; res is valid during the call only. */
typedef void guard_cb(const char *domain, const struct guard_result *res, void *arg);

/*
 * Check one domain.  The callback always runs later from the loop, exactly
 * once unless the query is cancelled.  Returns NULL only when out of
 * memory.
 */
struct guard_query *guard_check(struct guard *g, const char *domain,
    guard_cb *cb, void *arg);
void guard_cancel(struct guard_query *q);

/*
 * umbox-smtpd's periodic re-check (guard_watch.c): every domain in the
 * store, shortly after start and then every [dns] guard_interval; each
 * verdict recorded through the writer w, a warning logged when a domain
 * turns foreign and a notice when it comes back.
 */
struct event_base;
struct store_readers;
struct store_writer;
struct guard_watch;
struct guard_watch *guard_watch_new(struct event_base *base, struct store_readers *readers,
    struct store_writer *w, struct dns_resolver *r, const struct umbox_config *cfg);
void guard_watch_free(struct guard_watch **gw);

#endif
