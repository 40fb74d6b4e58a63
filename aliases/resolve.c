/*
 * resolve.c - recipient resolution and alias expansion.
 */
#include "aliases/resolve.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "aliases/srs.h"
#include "lib/addr.h"
#include "store/store.h"

struct expand {
	const struct alias_resolver *r;
	struct alias_result *out;
	struct strlist active;		/* aliases being expanded, outermost first */
	struct strlist done;		/* aliases fully expanded */
	unsigned lookups;
	int looped;			/* an alias named itself, through others */
	enum alias_status status;
};

static int
name_chars_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return 0;
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
	    (s[0] >= '0' && s[0] <= '9')))
		return 0;
	/* A dot-atom as an address's local part: no dot at the end or twice. */
	if (s[n - 1] == '.' || strstr(s, "..") != NULL)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
			return 0;
	return 1;
}

int
alias_valid_extension(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 16)
		return 0;
	return strspn(s, "0123456789") == n;
}

int
alias_valid_login(const char *s)
{
	return name_chars_ok(s, 64) && !alias_valid_extension(s);
}

int
alias_valid_name(const char *s)
{
	return name_chars_ok(s, 64);
}

int
alias_valid_member(const char *s)
{
	struct addr a;

	if (strchr(s, '@') == NULL)
		return alias_valid_name(s);
	return addr_parse_mailbox(s, strlen(s), 0, &a) == ADDR_OK &&
	    !(a.flags & (ADDR_F_RELAY_CHARS | ADDR_F_QUOTED));
}

static void __attribute__((format(printf, 3, 4)))
expand_fail(struct expand *x, enum alias_status st, const char *fmt, ...)
{
	va_list ap;

	if (x->status != ALIAS_OK)
		return;
	x->status = st;
	va_start(ap, fmt);
	vsnprintf(x->out->error, sizeof(x->out->error), fmt, ap);
	va_end(ap);
}

/* The store could not answer: worth another try, unlike the limits. */
static void
expand_store_fail(struct expand *x, struct store *s)
{
	if (x->status != ALIAS_OK)
		return;
	expand_fail(x, ALIAS_ERROR, "store: %s", store_errmsg(s));
	x->out->store_failed = 1;
}

static void
add_local(struct expand *x, const struct store_user *u)
{
	struct alias_result *o = x->out;

	for (size_t i = 0; i < o->n; i++)
		if (!o->v[i].remote && o->v[i].user_id == u->id)
			return;
	if (o->n >= ALIAS_MAX_TARGETS) {
		expand_fail(x, ALIAS_ERROR, "more than %d final targets", ALIAS_MAX_TARGETS);
		return;
	}
	o->v = xreallocarray(o->v, o->n + 1, sizeof(*o->v));
	memset(&o->v[o->n], 0, sizeof(o->v[o->n]));
	o->v[o->n].user_id = u->id;
	o->v[o->n].login = xstrdup(u->login);
	o->n++;
}

static void
add_remote(struct expand *x, const char *mailbox)
{
	struct alias_result *o = x->out;

	for (size_t i = 0; i < o->n; i++)
		if (o->v[i].remote && strcasecmp(o->v[i].address, mailbox) == 0)
			return;
	if (o->n >= ALIAS_MAX_TARGETS) {
		expand_fail(x, ALIAS_ERROR, "more than %d final targets", ALIAS_MAX_TARGETS);
		return;
	}
	o->v = xreallocarray(o->v, o->n + 1, sizeof(*o->v));
	memset(&o->v[o->n], 0, sizeof(o->v[o->n]));
	o->v[o->n].remote = 1;
	o->v[o->n].address = xstrdup(mailbox);
	o->n++;
}

/* Is this domain one of ours?  -1 on a store error. */
static int
is_local_domain(struct expand *x, const char *domain)
{
	int r = store_domain_exists(x->r->store, domain);

	if (r < 0) {
		expand_store_fail(x, x->r->store);
		return -1;
	}
	return r;
}

static int expand_name(struct expand *x, const char *name, unsigned depth);

/*
 * A member is a bare name (alias, login or extension) or an address;
 * addresses in one of our domains are looked up by their local part.
 */
static void
expand_member(struct expand *x, const char *member, unsigned depth)
{
	struct addr a;
	int local;

	if (strchr(member, '@') == NULL) {
		if (!expand_name(x, member, depth))
			strlist_add(&x->out->dangling, member);
		return;
	}
	if (addr_parse_mailbox(member, strlen(member), 0, &a) != ADDR_OK) {
		strlist_add(&x->out->dangling, member);
		return;
	}
	if ((local = is_local_domain(x, a.domain)) < 0)
		return;
	if (local) {
		char name[ADDR_LOCAL_MAX + 1];

		snprintf(name, sizeof(name), "%.*s", (int)a.local_len, a.mailbox);
		if (!expand_name(x, name, depth))
			strlist_add(&x->out->dangling, member);
	} else
		add_remote(x, a.mailbox);
}

/*
 * Resolve a local name: an alias, else a login, else an extension.
 *
 * An alias is expanded once per recipient: met again after it was done,
 * it adds nothing more.  Met again while it is still being expanded (a
 * loop, or an alias listing its own name) it stands for the user of that
 * name instead, which is how an alias that shadows a user keeps a copy in
 * the user's inbox.  An extension stands for its user's login, so an
 * alias that takes a user's mail takes mail to the extension too.
 * Returns 1 if the name meant something, 0 if not.
 */
static int
expand_name(struct expand *x, const char *name, unsigned depth)
{
	struct store *s = x->r->store;
	struct store_alias al;
	struct store_user u;
	int st, looped = 0;

	if (x->status != ALIAS_OK)
		return 1;
	if (++x->lookups > ALIAS_MAX_LOOKUPS) {
		expand_fail(x, ALIAS_ERROR, "alias expansion of %s looks up too many names", name);
		return 1;
	}
	if (!alias_valid_name(name))
		return 0;

	if (strlist_contains_nocase(&x->active, name))
		looped = x->looped = 1;
	else if (strlist_contains_nocase(&x->done, name))
		return 1;
	else {
		st = store_alias_get(s, name, &al);
		if (st == STORE_OK) {
			if (depth >= ALIAS_MAX_DEPTH)
				expand_fail(x, ALIAS_ERROR,
				    "aliases nest deeper than %d levels at %s", ALIAS_MAX_DEPTH, name);
			strlist_add(&x->active, name);
			for (size_t i = 0; i < al.members.n && x->status == ALIAS_OK; i++)
				expand_member(x, al.members.v[i], depth + 1);
			free(x->active.v[--x->active.n]);
			strlist_add(&x->done, name);
			store_alias_clear(&al);
			return 1;
		}
		if (st != STORE_NOTFOUND) {
			expand_store_fail(x, s);
			return 1;
		}
	}

	st = store_user_get(s, name, &u);
	if (st == STORE_OK) {
		add_local(x, &u);
		store_user_clear(&u);
		return 1;
	}
	if (st == STORE_NOTFOUND && alias_valid_extension(name)) {
		st = store_user_get_by_extension(s, name, &u);
		if (st == STORE_OK) {
			/* A login is never all digits: this cannot come back here. */
			expand_name(x, u.login, depth);
			store_user_clear(&u);
			return 1;
		}
	}
	if (st != STORE_NOTFOUND) {
		expand_store_fail(x, s);
		return 1;
	}
	return looped;	/* a loop back into an alias is not a dangling member */
}

/*
 * A bounce to an SRS address of ours goes back to the address it stands
 * for, through the queue; a forged, damaged or expired one is unknown.
 */
static enum alias_status
resolve_srs(struct expand *x, const struct addr *a)
{
	const char *secret = x->r->srs_secret ? x->r->srs_secret : "";
	char back[SRS_ADDR_MAX + 1];
	enum srs_status st;

	st = srs_reverse(secret, strlen(secret), a->mailbox, a->local_len, (int64_t)time(NULL),
	    back, sizeof(back));
	if (st != SRS_OK) {
		snprintf(x->out->error, sizeof(x->out->error), "no such user here (SRS: %s)",
		    srs_status_str(st));
		return ALIAS_UNKNOWN;
	}
	add_remote(x, back);
	return x->status;
}

/*
 * Whether a local part that looks like SRS (SRS0-..., srs1+...) is the
 * name of a user or alias here: then it is that, not an SRS address.
 * 1 yes, 0 no, -1 the store could not say (x failed).
 */
static int
srs_like_name_here(struct expand *x, const struct addr *a)
{
	struct store *s = x->r->store;
	char name[ADDR_LOCAL_MAX + 1];
	struct store_alias al;
	struct store_user u;
	int st;

	if (a->local_len > ADDR_LOCAL_MAX || (a->flags & (ADDR_F_QUOTED | ADDR_F_RELAY_CHARS)))
		return 0;
	snprintf(name, sizeof(name), "%.*s", (int)a->local_len, a->mailbox);
	if (!alias_valid_name(name))
		return 0;
	if ((st = store_alias_get(s, name, &al)) == STORE_OK) {
		store_alias_clear(&al);
		return 1;
	}
	if (st == STORE_NOTFOUND && (st = store_user_get(s, name, &u)) == STORE_OK) {
		store_user_clear(&u);
		return 1;
	}
	if (st == STORE_NOTFOUND)
		return 0;
	expand_store_fail(x, s);
	return -1;
}

enum alias_status
alias_resolve(const struct alias_resolver *r, const char *address, struct alias_result *out)
{
	struct expand x = { .r = r, .out = out };
	struct addr a;
	char name[ADDR_LOCAL_MAX + 1];
	enum addr_error ae;

	memset(out, 0, sizeof(*out));
	if (strchr(address, '@') == NULL) {
		if (!alias_valid_name(address)) {
			snprintf(out->error, sizeof(out->error), "%s is not a valid name", address);
			return ALIAS_INVALID;
		}
		snprintf(name, sizeof(name), "%s", address);
		out->local_domain = 1;
	} else {
		/* UTF-8 only reaches here from an SMTPUTF8 transaction (RFC 6531). */
		ae = addr_parse_mailbox(address, strlen(address), 1, &a);
		if (ae != ADDR_OK) {
			snprintf(out->error, sizeof(out->error), "%s", addr_strerror(ae));
			return ALIAS_INVALID;
		}
		if ((out->local_domain = is_local_domain(&x, a.domain)) < 0) {
			out->local_domain = 0;
			return x.status;
		}
		if (!out->local_domain) {
			add_remote(&x, a.mailbox);
			return x.status;
		}
		if (srs_is_srs(a.mailbox, a.local_len)) {
			int here = srs_like_name_here(&x, &a);

			if (here < 0)
				return x.status;
			if (!here)
				return resolve_srs(&x, &a);
		}
		/* Quoted local parts, '%' and '!' never name anything of ours. */
		if ((a.flags & (ADDR_F_QUOTED | ADDR_F_RELAY_CHARS)) ||
		    a.local_len > ADDR_LOCAL_MAX) {
			snprintf(out->error, sizeof(out->error), "no such user here");
			return ALIAS_UNKNOWN;
		}
		snprintf(name, sizeof(name), "%.*s", (int)a.local_len, a.mailbox);
	}

	if (!expand_name(&x, name, 0) && x.status == ALIAS_OK &&
	    strcasecmp(name, "postmaster") == 0) {
		/* RFC 5321 §4.5.1: postmaster always exists. */
		if (!expand_name(&x, r->postmaster, 0) && x.status == ALIAS_OK)
			expand_fail(&x, ALIAS_ERROR, "postmaster login %s does not exist;"
			    " set [general] postmaster", r->postmaster);
	}
	if (x.status == ALIAS_OK && out->n == 0) {
		/* The outermost alias finishes last. */
		if (x.looped)
			snprintf(out->error, sizeof(out->error), "no such user here (its aliases"
			    " name only each other: a loop)");
		else if (x.done.n > 0)
			snprintf(out->error, sizeof(out->error), "no such user here (the alias %s"
			    " names no one who exists here)", x.done.v[x.done.n - 1]);
		else
			snprintf(out->error, sizeof(out->error), "no such user here");
		x.status = ALIAS_UNKNOWN;
	}
	strlist_clear(&x.active);
	strlist_clear(&x.done);
	return x.status;
}

void
alias_result_clear(struct alias_result *res)
{
	for (size_t i = 0; i < res->n; i++) {
		free(res->v[i].login);
		free(res->v[i].address);
	}
	free(res->v);
	strlist_clear(&res->dangling);
	memset(res, 0, sizeof(*res));
}

int
alias_lookup_user(struct store *s, const char *name, struct store_user *out)
{
	char local[ADDR_LOCAL_MAX + 1];
	const char *at = strchr(name, '@');
	int st;

	if (at) {
		if ((size_t)(at - name) > ADDR_LOCAL_MAX)
			return STORE_NOTFOUND;
		if ((st = store_domain_exists(s, at + 1)) <= 0)
			return st < 0 ? st : STORE_NOTFOUND;
		snprintf(local, sizeof(local), "%.*s", (int)(at - name), name);
		name = local;
	}
	if (!alias_valid_name(name))
		return STORE_NOTFOUND;
	st = store_user_get(s, name, out);
	if (st == STORE_NOTFOUND && alias_valid_extension(name))
		st = store_user_get_by_extension(s, name, out);
	return st;
}

int
alias_sender_owned(const struct alias_resolver *r, const struct store_user *u,
    const char *address)
{
	struct alias_result res;
	struct addr a;
	int owned = 0;

	if (u->email && strcasecmp(u->email, address) == 0)
		return 1;
	if (addr_parse_mailbox(address, strlen(address), 1, &a) != ADDR_OK)
		return 0;
	if (!(a.flags & (ADDR_F_QUOTED | ADDR_F_RELAY_CHARS)) &&
	    ((strlen(u->login) == a.local_len &&
	    strncasecmp(u->login, a.mailbox, a.local_len) == 0) ||
	    (u->extension && strlen(u->extension) == a.local_len &&
	    strncmp(u->extension, a.mailbox, a.local_len) == 0))) {
		int local = store_domain_exists(r->store, a.domain);

		if (local != 0)
			return local;	/* 1, or a store error (< 0) */
	}
	switch (alias_resolve(r, a.mailbox, &res)) {
	case ALIAS_OK:
		if (!res.local_domain)
			break;
		for (size_t i = 0; i < res.n; i++)
			if (!res.v[i].remote && res.v[i].user_id == u->id)
				owned = 1;
		break;
	case ALIAS_ERROR:
		owned = -1;
		break;
	default:
		break;
	}
	alias_result_clear(&res);
	return owned;
}

/* How much a domain's guard verdict says it is this server's: 2 most. */
static int
home_rank(const char *verdict)
{
	if (verdict && strcmp(verdict, "claimed") == 0)
		return 2;
	return verdict && strcmp(verdict, "internal") == 0;
}

int
alias_home_domain(struct store *s, char *out, size_t len)
{
	struct store_domain *v;
	size_t n, pick = 0;

	if (store_domain_list(s, &v, &n) != STORE_OK)
		return -1;
	for (size_t i = 1; i < n; i++)
		if (home_rank(v[i].guard) > home_rank(v[pick].guard))
			pick = i;
	if (n > 0)
		snprintf(out, len, "%s", v[pick].name);
	store_domain_list_free(&v, n);
	return n > 0 ? 0 : -1;
}
