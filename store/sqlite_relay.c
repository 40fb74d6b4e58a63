/*
 * sqlite_relay.c - relays (smarthosts) in SQLite.
 *
 * A relay is a row of relays; its domains are rows of relay_domains,
 * each carrying a copy of its relay's active flag so that a partial
 * unique index can keep a domain to one active relay (sqlite.c, schema
 * step 3).  Writes check first, to say which relay holds a domain; the
 * indexes are the backstop.
 */
#include "store/sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void
sq_row_relay(sqlite3_stmt *st, struct store_relay *r)
{
	const char *tls = (const char *)sqlite3_column_text(st, 6);
	const char *auth = (const char *)sqlite3_column_text(st, 8);
	int64_t port = sqlite3_column_int64(st, 3);

	r->id = sqlite3_column_int64(st, 0);
	r->name = sq_col_strdup(st, 1);
	r->host = sq_col_strdup(st, 2);
	r->is_default = sqlite3_column_int(st, 4);
	r->active = sqlite3_column_int(st, 5);
	if (tls == NULL || store_relay_tls_parse(tls, &r->tls) != 0)
		r->tls = STORE_TLS_AUTO;
	r->verify = sqlite3_column_int(st, 7);
	if (auth == NULL || store_relay_auth_parse(auth, &r->auth) != 0)
		r->auth = STORE_AUTH_AUTO;
	r->account = sq_col_strdup(st, 9);
	r->password = sq_col_strdup(st, 10);
	r->sender = sq_col_strdup(st, 11);
	r->timeout = (unsigned)sqlite3_column_int(st, 12);
	r->chunking = sqlite3_column_int(st, 13);
	r->created_at = sqlite3_column_int64(st, 14);
	r->port_given = port > 0 && port <= 65535;
	r->port = r->port_given ? (unsigned)port : store_relay_default_port(r->tls);
}

static int
sq_relay_domains_load(struct store *s, struct store_relay *r)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_RELAY_DOMAINS);
	int rc;

	sqlite3_bind_int64(st, 1, r->id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		strlist_add(&r->domains, (const char *)sqlite3_column_text(st, 0));
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? STORE_OK : sq_fail(s, rc, "relay domains");
}

/* One relay from a statement that is bound and ready; STORE_NOTFOUND at its end. */
static int
sq_relay_fetch(struct store *s, sqlite3_stmt *st, struct store_relay *out)
{
	int rc = sqlite3_step(st), status;

	if (rc == SQLITE_ROW)
		sq_row_relay(st, out);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return STORE_NOTFOUND;
	if (rc != SQLITE_ROW)
		return sq_fail(s, rc, "get relay");
	if ((status = sq_relay_domains_load(s, out)) != STORE_OK)
		store_relay_clear(out);
	return status;
}

/*
 * Would listing r's domains on an active relay take a domain another
 * active relay already lists?  self is r's own id.
 */
static int
sq_relay_domains_free(struct store *s, const struct store_relay *r, int64_t self)
{
	int status = STORE_OK;

	for (size_t i = 0; i < r->domains.n && status == STORE_OK; i++) {
		sqlite3_stmt *st = sq_stmt(s, SQ_RELAY_DOMAIN_TAKEN);
		char other[STORE_RELAY_NAME_MAX + 1], *d = xstrdup(r->domains.v[i]);
		int rc;

		str_lower(d);
		sqlite3_bind_text(st, 1, d, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, self);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			snprintf(other, sizeof(other), "%s", sqlite3_column_text(st, 0));
		sqlite3_reset(st);
		if (rc == SQLITE_ROW)
			status = store_fail(s, STORE_EXISTS, "domain %s is already routed through"
			    " active relay %s", d, other);
		else if (rc != SQLITE_DONE)
			status = sq_fail(s, rc, "relay domains");
		free(d);
	}
	return status;
}

static int
sq_relay_domains_write(struct store *s, int64_t id, const struct store_relay *r)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_RELAY_DOMAINS_DEL);
	int status;

	sqlite3_bind_int64(st, 1, id);
	if ((status = sq_exec_stmt(s, st, "relay domains")) != STORE_OK)
		return status;
	for (size_t i = 0; i < r->domains.n && status == STORE_OK; i++) {
		char *d = xstrdup(r->domains.v[i]);

		str_lower(d);
		st = sq_stmt(s, SQ_RELAY_DOMAIN_ADD);
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_text(st, 2, d, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(st, 3, r->active ? 1 : 0);
		status = sq_exec_stmt(s, st, "add relay domain");
		free(d);
	}
	return status;
}

static int
sq_relay_clear_default(struct store *s, int64_t self)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_RELAY_CLEAR_DEFAULT);

	sqlite3_bind_int64(st, 1, self);
	return sq_exec_stmt(s, st, "clear default relay");
}

/* Columns 2..13 of SQ_RELAY_ADD and SQ_RELAY_UPDATE, which share their order. */
static void
sq_relay_bind(sqlite3_stmt *st, const struct store_relay *r)
{
	sqlite3_bind_text(st, 2, r->host, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, (int)r->port);
	sqlite3_bind_int(st, 4, r->is_default ? 1 : 0);
	sqlite3_bind_int(st, 5, r->active ? 1 : 0);
	sqlite3_bind_text(st, 6, store_relay_tls_name(r->tls), -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 7, r->verify ? 1 : 0);
	sqlite3_bind_text(st, 8, store_relay_auth_name(r->auth), -1, SQLITE_STATIC);
	sq_bind_text_or_null(st, 9, r->account);
	sq_bind_text_or_null(st, 10, r->password);
	sq_bind_text_or_null(st, 11, r->sender);
	sqlite3_bind_int(st, 12, (int)r->timeout);
	sqlite3_bind_int(st, 13, r->chunking ? 1 : 0);
}

int
sq_relay_add(struct store *s, const struct store_relay *r)
{
	sqlite3_stmt *st;
	char *name;
	int64_t id = 0;
	int own, status;

	if ((status = store_relay_check(s, r)) != STORE_OK)
		return status;
	if ((status = sq_txn_begin(s, &own)) != STORE_OK)
		return status;
	name = xstrdup(r->name);
	str_lower(name);
	if (r->is_default)
		status = sq_relay_clear_default(s, 0);
	if (status == STORE_OK) {
		st = sq_stmt(s, SQ_RELAY_ADD);
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sq_relay_bind(st, r);
		sqlite3_bind_int64(st, 14, r->created_at ? r->created_at : (int64_t)time(NULL));
		status = sq_exec_stmt(s, st, "add relay");
		if (status == STORE_EXISTS)
			store_fail(s, status, "relay %s exists", name);
		id = sqlite3_last_insert_rowid(sq_of(s)->db);
	}
	if (status == STORE_OK && r->active)
		status = sq_relay_domains_free(s, r, id);
	if (status == STORE_OK)
		status = sq_relay_domains_write(s, id, r);
	free(name);
	return sq_txn_end(s, own, status);
}

/*
 * Read the relay, apply the changes, check the whole, write it back: all
 * in one transaction, so that a change that breaks a rule (a password
 * without an account, a domain taken by another active relay) leaves
 * the relay as it was.
 */
int
sq_relay_set(struct store *s, const char *name, const struct store_relay *r, unsigned fields)
{
	struct store_relay cur = { 0 };
	sqlite3_stmt *st;
	int own, status;

	if ((status = sq_txn_begin(s, &own)) != STORE_OK)
		return status;
	status = sq_relay_get(s, name, &cur);
	if (status == STORE_OK) {
		store_relay_merge(&cur, r, fields);
		status = store_relay_check(s, &cur);
	}
	if (status == STORE_OK && cur.active && (fields & (STORE_RELAY_DOMAINS | STORE_RELAY_ACTIVE)))
		status = sq_relay_domains_free(s, &cur, cur.id);
	if (status == STORE_OK && cur.is_default && (fields & STORE_RELAY_DEFAULT))
		status = sq_relay_clear_default(s, cur.id);
	if (status == STORE_OK) {
		st = sq_stmt(s, SQ_RELAY_UPDATE);
		sqlite3_bind_int64(st, 1, cur.id);
		sq_relay_bind(st, &cur);
		status = sq_exec_stmt(s, st, "update relay");
	}
	if (status == STORE_OK && (fields & STORE_RELAY_DOMAINS))
		status = sq_relay_domains_write(s, cur.id, &cur);
	store_relay_clear(&cur);
	return sq_txn_end(s, own, status);
}

int
sq_relay_del(struct store *s, const char *name)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_RELAY_DEL);
	int status;

	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if ((status = sq_exec_stmt(s, st, "delete relay")) != STORE_OK)
		return status;
	if (sqlite3_changes(sq_of(s)->db) == 0)
		return store_fail(s, STORE_NOTFOUND, "no relay %s", name);
	return STORE_OK;
}

int
sq_relay_get(struct store *s, const char *name, struct store_relay *out)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_RELAY_GET);
	int status;

	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	status = sq_relay_fetch(s, st, out);
	if (status == STORE_NOTFOUND)
		store_fail(s, status, "no relay %s", name);
	return status;
}

int
sq_relay_list(struct store *s, struct store_relay **out, size_t *n)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_RELAY_LIST);
	struct store_relay *v = NULL;
	size_t k = 0;
	int rc, status = STORE_OK;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		v = xreallocarray(v, k + 1, sizeof(*v));
		memset(&v[k], 0, sizeof(v[k]));
		sq_row_relay(st, &v[k++]);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		status = sq_fail(s, rc, "list relays");
	for (size_t i = 0; i < k && status == STORE_OK; i++)
		status = sq_relay_domains_load(s, &v[i]);
	if (status != STORE_OK) {
		store_relay_list_free(&v, k);
		return status;
	}
	*out = v;
	*n = k;
	return STORE_OK;
}

/* First match wins: the active relay listing the domain, then the active default. */
int
sq_relay_route(struct store *s, const char *domain, struct store_relay *out)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_RELAY_BY_DOMAIN);
	int status;

	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	status = sq_relay_fetch(s, st, out);
	if (status == STORE_NOTFOUND)
		status = sq_relay_fetch(s, sq_stmt(s, SQ_RELAY_DEFAULT), out);
	if (status == STORE_NOTFOUND)
		store_fail(s, status, "no relay for %s: direct delivery to its MX hosts", domain);
	return status;
}
