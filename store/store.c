/*
 * store.c - the public store API: dispatch to the backend, the free
 * functions for what the API returns, and status strings.
 */
#include "store/backend.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
store_fail(struct store *s, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
	va_end(ap);
	return status;
}

void
store_uidl_format(char *buf, size_t len, uint32_t epoch, int64_t uid)
{
	snprintf(buf, len, "%08" PRIx32 ".%" PRId64, epoch, uid);
}

int
store_uidl_parse(const char *uidl, uint32_t epoch, int64_t *uid)
{
	const char *dot = strchr(uidl, '.');
	char hex[9];
	uint64_t v;

	if (dot == NULL || dot - uidl != 8)
		return -1;
	memcpy(hex, uidl, 8);
	hex[8] = '\0';
	for (int i = 0; i < 8; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
			return -1;
	if (strtoul(hex, NULL, 16) != epoch || parse_uint(dot + 1, INT64_MAX, &v) != 0)
		return -1;
	*uid = (int64_t)v;
	return 0;
}

const char *
store_status_str(int status)
{
	switch (status) {
	case STORE_OK:		return "ok";
	case STORE_NOTFOUND:	return "not found";
	case STORE_EXISTS:	return "already exists";
	case STORE_FULL:	return "disk full";
	case STORE_QUOTA:	return "over quota";
	case STORE_INVALID:	return "invalid";
	case STORE_LOCKED:	return "locked";
	default:		return "database error";
	}
}

const char *
store_config_name(const struct store_config *cfg)
{
	return cfg->backend == STORE_BACKEND_POSTGRESQL ? "postgresql" : cfg->path;
}

int
store_open(const struct store_config *cfg, int flags, struct store **out, char *err,
    size_t errlen)
{
	struct store *s = xcalloc(1, sizeof(*s));
	int status;

	s->be = cfg->backend == STORE_BACKEND_POSTGRESQL ? &store_pg_backend :
	    &store_sqlite_backend;
	s->path = xstrdup(cfg->path ? cfg->path : "");
	status = s->be->open(s, cfg, flags);
	if (status != STORE_OK) {
		snprintf(err, errlen, "%s", s->errmsg);
		store_close(&s);
		return status;
	}
	*out = s;
	return STORE_OK;
}

void
store_close(struct store **sp)
{
	struct store *s = *sp;

	if (s == NULL)
		return;
	s->be->close(s);
	free(s->path);
	free(s->where);
	free(s);
	*sp = NULL;
}

const char *
store_where(const struct store *s)
{
	return s->where ? s->where : s->path;
}

const char *
store_errmsg(const struct store *s)
{
	return s->errmsg;
}

void
store_read_begin(struct store *s)
{
	s->be->read_begin(s);
}

void
store_read_end(struct store *s)
{
	s->be->read_end(s);
}

int
store_schema_version(struct store *s)
{
	return s->be->schema_version(s);
}

const char *
store_kind_name(enum store_kind k)
{
	switch (k) {
	case STORE_KIND_VOICEMAIL:	return "voicemail";
	case STORE_KIND_FAX:		return "fax";
	default:			return "email";
	}
}

/* ---- domains ---- */

int
store_domain_add(struct store *s, const struct store_domain *d)
{
	int status = s->be->domain_add(s, d);

	if (status == STORE_EXISTS)
		store_fail(s, status, "domain %s exists", d->name);
	return status;
}

int
store_domain_del(struct store *s, const char *name)
{
	return s->be->domain_del(s, name);
}

int
store_domain_get(struct store *s, const char *name, struct store_domain *out)
{
	memset(out, 0, sizeof(*out));
	return s->be->domain_get(s, name, out);
}

int
store_domain_exists(struct store *s, const char *name)
{
	struct store_domain d;
	int status = store_domain_get(s, name, &d);

	store_domain_clear(&d);
	if (status == STORE_OK)
		return 1;
	return status == STORE_NOTFOUND ? 0 : status;
}

int
store_domain_set_guard(struct store *s, const char *name, const char *guard,
    const char *detail, int64_t checked_at)
{
	return s->be->domain_set_guard(s, name, guard, detail, checked_at);
}

int
store_domain_list(struct store *s, struct store_domain **out, size_t *n)
{
	return s->be->domain_list(s, out, n);
}

void
store_domain_clear(struct store_domain *d)
{
	free(d->name);
	free(d->guard);
	free(d->guard_detail);
	memset(d, 0, sizeof(*d));
}

void
store_domain_list_free(struct store_domain **v, size_t n)
{
	for (size_t i = 0; *v && i < n; i++)
		store_domain_clear(&(*v)[i]);
	xfree(v);
}

/* ---- users ---- */

int
store_user_add(struct store *s, const struct store_user *u)
{
	int status = s->be->user_add(s, u);

	if (status == STORE_EXISTS) {
		struct store_user other = { 0 };

		if (s->be->user_get(s, STORE_USER_BY_LOGIN, u->login, 0, &other) == STORE_OK)
			store_fail(s, status, "user %s exists", u->login);
		else
			store_fail(s, status, "extension %s belongs to another user",
			    u->extension ? u->extension : "");
		store_user_clear(&other);
	}
	return status;
}

int
store_user_set(struct store *s, const char *login, const struct store_user *u, unsigned fields)
{
	int status = s->be->user_set(s, login, u, fields);

	if (status == STORE_EXISTS)
		store_fail(s, status, "extension %s belongs to another user",
		    u->extension ? u->extension : "");
	return status;
}

int
store_user_del(struct store *s, const char *login)
{
	return s->be->user_del(s, login);
}

int
store_user_get(struct store *s, const char *login, struct store_user *out)
{
	memset(out, 0, sizeof(*out));
	return s->be->user_get(s, STORE_USER_BY_LOGIN, login, 0, out);
}

int
store_user_get_by_extension(struct store *s, const char *ext, struct store_user *out)
{
	memset(out, 0, sizeof(*out));
	return s->be->user_get(s, STORE_USER_BY_EXTENSION, ext, 0, out);
}

int
store_user_get_by_id(struct store *s, int64_t id, struct store_user *out)
{
	memset(out, 0, sizeof(*out));
	return s->be->user_get(s, STORE_USER_BY_ID, NULL, id, out);
}

int
store_user_list(struct store *s, struct store_user **out, size_t *n)
{
	return s->be->user_list(s, out, n);
}

void
store_user_clear(struct store_user *u)
{
	free(u->login);
	free(u->extension);
	free(u->name);
	free(u->email);
	if (u->password) {
		explicit_bzero(u->password, strlen(u->password));
		free(u->password);
	}
	memset(u, 0, sizeof(*u));
}

void
store_user_free(struct store_user **u)
{
	if (*u == NULL)
		return;
	store_user_clear(*u);
	free(*u);
	*u = NULL;
}

void
store_user_list_free(struct store_user **v, size_t n)
{
	for (size_t i = 0; *v && i < n; i++)
		store_user_clear(&(*v)[i]);
	xfree(v);
}

/* ---- aliases ---- */

int
store_alias_add(struct store *s, const char *name, const char *const *members, size_t n)
{
	return s->be->alias_add(s, name, members, n);
}

int
store_alias_add_members(struct store *s, const char *name, const char *const *members, size_t n)
{
	return s->be->alias_add_members(s, name, members, n);
}

int
store_alias_del_members(struct store *s, const char *name, const char *const *members, size_t n)
{
	return s->be->alias_del_members(s, name, members, n);
}

int
store_alias_del(struct store *s, const char *name)
{
	return s->be->alias_del(s, name);
}

int
store_alias_get(struct store *s, const char *name, struct store_alias *out)
{
	memset(out, 0, sizeof(*out));
	return s->be->alias_get(s, name, out);
}

int
store_alias_list(struct store *s, struct store_alias **out, size_t *n)
{
	return s->be->alias_list(s, out, n);
}

void
store_alias_clear(struct store_alias *a)
{
	free(a->name);
	strlist_clear(&a->members);
	memset(a, 0, sizeof(*a));
}

void
store_alias_list_free(struct store_alias **v, size_t n)
{
	for (size_t i = 0; *v && i < n; i++)
		store_alias_clear(&(*v)[i]);
	xfree(v);
}

/* ---- messages and mailboxes ---- */

int
store_deliver(struct store *s, const struct store_delivery *d, struct store_delivery_result *res)
{
	memset(res, 0, sizeof(*res));
	return s->be->deliver(s, d, res);
}

enum store_target_status
store_delivery_local_status(const struct store_delivery_result *r, size_t i)
{
	return r->local ? r->local[i] : STORE_TARGET_DELIVERED;
}

void
store_delivery_result_clear(struct store_delivery_result *r)
{
	xfree(&r->local);
}

int
store_mailbox_list(struct store *s, int64_t user_id, struct store_entry **out, size_t *n)
{
	return s->be->mailbox_list(s, user_id, out, n);
}

int
store_entry_get(struct store *s, int64_t user_id, const char *uidl, struct store_entry *out)
{
	memset(out, 0, sizeof(*out));
	return s->be->entry_get(s, user_id, uidl, out);
}

int
store_entry_read(struct store *s, const struct store_entry *e, uint64_t offset,
    void *buf, size_t len, size_t *got)
{
	return s->be->entry_read(s, e, offset, buf, len, got);
}

int
store_entries_read(struct store *s, const struct store_entry *e, size_t n, void *buf,
    size_t len, size_t *lens)
{
	size_t used = 0;

	if (s->be->entries_read)
		return s->be->entries_read(s, e, n, buf, len, lens);
	for (size_t i = 0; i < n; i++) {
		size_t have = 0, got;
		int status = STORE_OK;

		lens[i] = STORE_NO_TEXT;
		if (e[i].size > len - used)
			continue;
		while (have < e[i].size) {
			status = store_entry_read(s, &e[i], have, (char *)buf + used + have,
			    (size_t)e[i].size - have, &got);
			if (status != STORE_OK || got == 0)
				break;
			have += got;
		}
		if (status != STORE_OK && status != STORE_NOTFOUND)
			return status;
		if (status == STORE_OK && have == e[i].size) {
			lens[i] = have;
			used += have;
		}
	}
	return STORE_OK;
}

int
store_reader_open(struct store *s, const struct store_entry *e, struct store_reader **out)
{
	*out = NULL;
	return s->be->reader_open(s, e, out);
}

/* The reader remembers its store; its first member is the store pointer. */
struct store_reader_head {
	struct store *s;
};

int
store_reader_read(struct store_reader *r, uint64_t offset, void *buf, size_t len, size_t *got)
{
	struct store *s = ((struct store_reader_head *)r)->s;

	return s->be->reader_read(r, offset, buf, len, got);
}

void
store_reader_close(struct store_reader **r)
{
	struct store *s;

	if (*r == NULL)
		return;
	s = ((struct store_reader_head *)*r)->s;
	s->be->reader_close(*r);
	*r = NULL;
}

int
store_entries_delete(struct store *s, int64_t user_id, const int64_t *uids, size_t n)
{
	return s->be->entries_delete(s, user_id, uids, n);
}

int
store_entry_set_flags(struct store *s, int64_t user_id, int64_t uid, unsigned flags)
{
	return s->be->entry_set_flags(s, user_id, uid, flags);
}

void
store_entry_clear(struct store_entry *e)
{
	free(e->sender);
	memset(e, 0, sizeof(*e));
}

void
store_entry_list_free(struct store_entry **v, size_t n)
{
	for (size_t i = 0; *v && i < n; i++)
		store_entry_clear(&(*v)[i]);
	xfree(v);
}

int
store_pop3_lock(struct store *s, int64_t user_id, const char *owner, int64_t now,
    unsigned lease_seconds)
{
	return s->be->pop3_lock(s, user_id, owner, now, lease_seconds);
}

int
store_pop3_unlock(struct store *s, int64_t user_id, const char *owner)
{
	return s->be->pop3_unlock(s, user_id, owner, NULL);
}

int
store_pop3_unlock_prefix(struct store *s, const char *prefix)
{
	return s->be->pop3_unlock(s, 0, NULL, prefix);
}

int
store_copy_from_sqlite(struct store *to, const char *path, struct store_copy_counts *n)
{
	struct store *from;
	char err[512];
	int status;

	memset(n, 0, sizeof(*n));
	if (to->be != &store_pg_backend)
		return store_fail(to, STORE_INVALID, "a copy goes into a PostgreSQL store");
	/* Brings an older file to the schema the copy reads. */
	if ((status = store_open(STORE_SQLITE(path), 0, &from, err, sizeof(err))) != STORE_OK)
		return store_fail(to, status, "%s", err);
	store_close(&from);
	return pg_copy_from_sqlite(to, path, n);
}

int
store_check(struct store *s, store_check_fn *fn, void *arg)
{
	char text[128];

	snprintf(text, sizeof(text), "version %d, %s", store_schema_version(s), s->be->name);
	fn(arg, "schema", STORE_CHECK_OK, text);
	return s->be->check(s, fn, arg);
}

int
store_node_claim(struct store *s, const char *instance, const char *replace, char *holder,
    size_t holderlen)
{
	if (holder && holderlen)
		holder[0] = '\0';
	return s->be->node_claim ? s->be->node_claim(s, instance, replace, holder, holderlen) :
	    STORE_OK;
}

int
store_node_beat(struct store *s, const char *instance)
{
	return s->be->node_beat ? s->be->node_beat(s, instance) : STORE_OK;
}

void
store_node_release(struct store *s, const char *instance)
{
	if (s->be->node_release)
		s->be->node_release(s, instance);
}

int
store_sweep(struct store *s, int64_t before, size_t *n)
{
	*n = 0;
	return s->be->sweep ? s->be->sweep(s, before, n) : STORE_OK;
}

int
store_stats(struct store *s, struct store_stats *out)
{
	memset(out, 0, sizeof(*out));
	return s->be->stats(s, out);
}

int
store_listen(struct store *s, const char *channel)
{
	if (s->be->listen == NULL)
		return store_fail(s, STORE_INVALID, "%s has no notifications", s->be->name);
	return s->be->listen(s, channel);
}

int
store_listen_fd(struct store *s)
{
	return s->be->listen_fd(s);
}

int
store_notified(struct store *s, const char *channel, int *on)
{
	return s->be->notified(s, channel, on);
}
