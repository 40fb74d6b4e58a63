/*
 * resolve.h - address resolution: from a recipient to the final targets.
 *
 * SPEC §6: a local recipient is an alias, a user login or a user
 * extension, in that order of precedence; aliases expand recursively,
 * de-duplicated and loop-safe; an alias named like a user takes that
 * user's mail, and listing the user's own login among its members keeps
 * a copy in the inbox; postmaster always resolves.  Outside addresses are
 * remote targets, routed later by the queue.
 */
#ifndef UMBOX_ALIASES_RESOLVE_H
#define UMBOX_ALIASES_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util.h"

struct store;
struct store_user;
struct addr;

#define ALIAS_MAX_DEPTH		16	/* nesting of aliases */
#define ALIAS_MAX_LOOKUPS	1000	/* names looked up for one recipient */
#define ALIAS_MAX_TARGETS	1000	/* final targets for one recipient */

enum alias_status {
	ALIAS_OK = 0,
	ALIAS_UNKNOWN,		/* no such local recipient: 550 5.1.1 */
	ALIAS_INVALID,		/* not an address: 501 / usage error */
	ALIAS_ERROR,		/* store failure or limits hit: temporary */
};

struct alias_target {
	int remote;		/* 0: a local mailbox; 1: an outside address */
	int64_t user_id;	/* local */
	char *login;		/* local */
	char *address;		/* remote: local@domain */
};

struct alias_result {
	int local_domain;	/* the recipient's domain is ours (or it had none) */
	struct alias_target *v;
	size_t n;
	struct strlist dangling;	/* members that named nothing: worth a warning */
	char error[600];	/* what went wrong (a store error whole), for ALIAS_UNKNOWN/INVALID/ERROR */
	int store_failed;	/* ALIAS_ERROR from the store (another try may pass), not a limit */
};

struct alias_resolver {
	struct store *store;
	const char *postmaster;		/* [general] postmaster login */
	/*
	 * [queue] srs_secret: an SRS address at a local domain that verifies
	 * resolves to the address it stands for (a remote target, SPEC §6);
	 * one that does not, or any when this is NULL or empty, is unknown.
	 */
	const char *srs_secret;
};

/*
 * Resolve one recipient.  address is "local@domain" or a bare local name
 * (as in RCPT TO:<postmaster> or "alias resolve sales").  Outside domains
 * give local_domain = 0 and a single remote target; whether that may be
 * relayed is the caller's decision.
 */
enum alias_status alias_resolve(const struct alias_resolver *r, const char *address,
    struct alias_result *out);
void alias_result_clear(struct alias_result *res);

/*
 * The user a person logs in as or a mailbox is named by: a login,
 * login@localdomain, or an extension (SPEC §5, §8).  Returns a store
 * status: STORE_OK (out filled), STORE_NOTFOUND, or an error.
 */
int alias_lookup_user(struct store *s, const char *name, struct store_user *out);

/*
 * May this user send as address?  Yes for the user's own email, for
 * login@ or extension@ a local domain, and for a local address whose
 * resolution reaches the user's mailbox (a shared alias such as sales@).
 * Returns 1, 0, or -1 on a store error.
 */
int alias_sender_owned(const struct alias_resolver *r, const struct store_user *u,
    const char *address);

/*
 * The local domain this server speaks for when no address names one
 * (SRS, a deposit's sender): the first whose MX guard verdict is
 * "claimed", else the first "internal" one, else the first.  0, or -1
 * with none (or a store error).
 */
int alias_home_domain(struct store *s, char *out, size_t len);

/* Names: a login starts with a letter or digit, [a-z0-9._-], not all digits, <= 64. */
int alias_valid_login(const char *s);
/* An extension: 1 to 16 digits. */
int alias_valid_extension(const char *s);
/* An alias name: [a-z0-9._-], starting with a letter or digit, <= 64 (may be all digits). */
int alias_valid_name(const char *s);
/* An alias member: a login, extension or alias name, or a mailbox local@domain. */
int alias_valid_member(const char *s);

#endif
