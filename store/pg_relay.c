/*
 * pg_relay.c - relays (smarthosts) in PostgreSQL: the rules of
 * sqlite_relay.c, on the tables of pg.c's schema step 3.  Writes check
 * first, to say which relay holds a domain; the indexes are the backstop.
 */
#include "store/pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A relay's columns, then its domains in order, separated by spaces (no name has one). */
#define PG_RELAY_COLS "SELECT r.id, r.name, r.host, r.port, r.is_default, r.active, r.tls," \
	" r.verify, r.auth, r.account, r.password, r.sender, r.timeout, r.chunking," \
	" r.created_at, (SELECT string_agg(domain, ' ' ORDER BY domain) FROM relay_domains" \
	" WHERE relay_id = r.id) FROM relays r "

static void
pg_words(const char *v, struct strlist *out)
{
	char *copy = xstrdup(v), *tok, *save = NULL;

	for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
		strlist_add(out, tok);
	free(copy);
}

static void
pg_row_relay(struct store *s, const PGresult *r, int i, void *elem)
{
	struct store_relay *out = elem;

	int64_t port = pg_col_i64(r, i, 3);

	out->id = pg_col_i64(r, i, 0);
	out->name = pg_col_str(r, i, 1);
	out->host = pg_col_str(r, i, 2);
	out->is_default = pg_col_bool(r, i, 4);
	out->active = pg_col_bool(r, i, 5);
	if (store_relay_tls_parse(PQgetvalue(r, i, 6), &out->tls) != 0)
		out->tls = STORE_TLS_AUTO;
	out->verify = pg_col_bool(r, i, 7);
	if (store_relay_auth_parse(PQgetvalue(r, i, 8), &out->auth) != 0)
		out->auth = STORE_AUTH_AUTO;
	out->account = pg_col_str(r, i, 9);
	out->password = pg_col_str(r, i, 10);
	out->sender = pg_col_str(r, i, 11);
	out->timeout = (unsigned)pg_col_i64(r, i, 12);
	out->chunking = pg_col_bool(r, i, 13);
	out->created_at = pg_col_i64(r, i, 14);
	pg_words(PQgetvalue(r, i, 15), &out->domains);
	out->port_given = port > 0 && port <= 65535;
	out->port = out->port_given ? (unsigned)port : store_relay_default_port(out->tls);
}

/* The first relay a query finds; STORE_NOTFOUND (no message) when none. */
static int
pg_relay_fetch(struct store *s, const char *sql, int n, const char *const *v,
    struct store_relay *out)
{
	int status;
	PGresult *r = pg_run(s, &status, "get relay", sql, n, v);

	if (r == NULL)
		return status;
	if (PQntuples(r) > 0)
		pg_row_relay(s, r, 0, out);
	else
		status = STORE_NOTFOUND;
	PQclear(r);
	return status;
}

/* Would r's domains, listed on an active relay, take one another active relay lists? */
static int
pg_relay_domains_free(struct store *s, const struct store_relay *r, int64_t self)
{
	char idbuf[PG_INT_LEN];
	int status = STORE_OK;

	pg_i64(idbuf, self);
	for (size_t i = 0; i < r->domains.n && status == STORE_OK; i++) {
		char *d = xstrdup(r->domains.v[i]);
		const char *v[] = { d, idbuf };
		PGresult *res;

		str_lower(d);
		res = pg_run(s, &status, "relay domains", "SELECT r.name FROM relay_domains d"
		    " JOIN relays r ON r.id = d.relay_id"
		    " WHERE d.domain = $1 AND d.active AND d.relay_id <> $2", 2, v);
		if (res && PQntuples(res) > 0)
			status = store_fail(s, STORE_EXISTS, "domain %s is already routed through"
			    " active relay %s", d, PQgetvalue(res, 0, 0));
		PQclear(res);
		free(d);
	}
	return status;
}

static int
pg_relay_domains_write(struct store *s, int64_t id, const struct store_relay *r)
{
	char idbuf[PG_INT_LEN];
	const char *v[3] = { pg_i64(idbuf, id), NULL, r->active ? "t" : "f" };
	int status = pg_exec(s, "relay domains", "DELETE FROM relay_domains WHERE relay_id = $1",
	    1, v);

	for (size_t i = 0; i < r->domains.n && status == STORE_OK; i++) {
		char *d = xstrdup(r->domains.v[i]);

		str_lower(d);
		v[1] = d;
		status = pg_exec(s, "add relay domain", "INSERT INTO relay_domains"
		    " (relay_id, domain, active) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", 3, v);
		free(d);
	}
	return status;
}

static int
pg_relay_clear_default(struct store *s, int64_t self)
{
	char idbuf[PG_INT_LEN];
	const char *v[] = { pg_i64(idbuf, self) };

	return pg_exec(s, "clear default relay", "UPDATE relays SET is_default = false"
	    " WHERE is_default AND id <> $1", 1, v);
}

/*
 * Parameters 2..13 of an insert or update, in the order of PG_RELAY_COLS
 * (host .. chunking); the caller sets v[0] (name or id), and bufs holds
 * the numbers' text.
 */
static void
pg_relay_params(const struct store_relay *r, const char *v[13], char bufs[2][PG_INT_LEN])
{
	v[1] = r->host;
	v[2] = pg_i64(bufs[0], r->port_given ? (int64_t)r->port : 0);
	v[3] = r->is_default ? "t" : "f";
	v[4] = r->active ? "t" : "f";
	v[5] = store_relay_tls_name(r->tls);
	v[6] = r->verify ? "t" : "f";
	v[7] = store_relay_auth_name(r->auth);
	v[8] = r->account;
	v[9] = r->password;
	v[10] = r->sender;
	v[11] = pg_i64(bufs[1], (int64_t)r->timeout);
	v[12] = r->chunking ? "t" : "f";
}

int
pg_relay_add(struct store *s, const struct store_relay *r)
{
	char bufs[2][PG_INT_LEN], created[PG_INT_LEN], *name;
	const char *v[14];
	struct store_relay w = *r;
	int64_t id = 0;
	int own, status;
	PGresult *res = NULL;

	if ((status = store_relay_check(s, r)) != STORE_OK)
		return status;
	if ((status = pg_txn_begin(s, &own)) != STORE_OK)
		return status;
	name = xstrdup(r->name);
	str_lower(name);
	/* On add, a port of 0 means the TLS mode's default, as written. */
	w.port_given = r->port != 0;
	v[0] = name;
	pg_relay_params(&w, v, bufs);
	v[13] = pg_i64(created, r->created_at ? r->created_at : (int64_t)time(NULL));
	if (r->is_default)
		status = pg_relay_clear_default(s, 0);
	if (status == STORE_OK)
		res = pg_run(s, &status, "add relay", "INSERT INTO relays (name, host, port,"
		    " is_default, active, tls, verify, auth, account, password, sender, timeout,"
		    " chunking, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
		    " $12, $13, $14) RETURNING id", 14, v);
	if (status == STORE_EXISTS)
		store_fail(s, status, "relay %s exists", name);
	if (res)
		id = pg_col_i64(res, 0, 0);
	PQclear(res);
	if (status == STORE_OK && r->active)
		status = pg_relay_domains_free(s, r, id);
	if (status == STORE_OK)
		status = pg_relay_domains_write(s, id, r);
	free(name);
	return pg_txn_end(s, own, status);
}

/* Read, merge, check the whole, write back: one transaction (see sqlite_relay.c). */
int
pg_relay_set(struct store *s, const char *name, const struct store_relay *r, unsigned fields)
{
	char bufs[2][PG_INT_LEN], idbuf[PG_INT_LEN];
	const char *v[13];
	struct store_relay cur = { 0 };
	int own, status;

	if ((status = pg_txn_begin(s, &own)) != STORE_OK)
		return status;
	status = pg_relay_get(s, name, &cur);
	if (status == STORE_OK) {
		store_relay_merge(&cur, r, fields);
		status = store_relay_check(s, &cur);
	}
	if (status == STORE_OK && cur.active && (fields & (STORE_RELAY_DOMAINS | STORE_RELAY_ACTIVE)))
		status = pg_relay_domains_free(s, &cur, cur.id);
	if (status == STORE_OK && cur.is_default && (fields & STORE_RELAY_DEFAULT))
		status = pg_relay_clear_default(s, cur.id);
	if (status == STORE_OK) {
		v[0] = pg_i64(idbuf, cur.id);
		pg_relay_params(&cur, v, bufs);
		status = pg_exec(s, "update relay", "UPDATE relays SET host = $2, port = $3,"
		    " is_default = $4, active = $5, tls = $6, verify = $7, auth = $8, account = $9,"
		    " password = $10, sender = $11, timeout = $12, chunking = $13 WHERE id = $1",
		    13, v);
	}
	if (status == STORE_OK && (fields & STORE_RELAY_DOMAINS))
		status = pg_relay_domains_write(s, cur.id, &cur);
	store_relay_clear(&cur);
	return pg_txn_end(s, own, status);
}

int
pg_relay_del(struct store *s, const char *name)
{
	char missing[300];
	const char *v[] = { name };

	snprintf(missing, sizeof(missing), "no relay %s", name);
	return pg_exec_one(s, "delete relay", "DELETE FROM relays WHERE name = lower($1)",
	    1, v, missing);
}

int
pg_relay_get(struct store *s, const char *name, struct store_relay *out)
{
	const char *v[] = { name };
	int status = pg_relay_fetch(s, PG_RELAY_COLS "WHERE r.name = lower($1)", 1, v, out);

	if (status == STORE_NOTFOUND)
		store_fail(s, status, "no relay %s", name);
	return status;
}

int
pg_relay_list(struct store *s, struct store_relay **out, size_t *n)
{
	return pg_rows(s, "list relays", PG_RELAY_COLS "ORDER BY r.name", 0, NULL,
	    sizeof(struct store_relay), pg_row_relay, out, n);
}

/* First match wins: the active relay listing the domain, then the active default. */
int
pg_relay_route(struct store *s, const char *domain, struct store_relay *out)
{
	const char *v[] = { domain };
	int status = pg_relay_fetch(s, PG_RELAY_COLS "JOIN relay_domains d ON d.relay_id = r.id"
	    " WHERE d.domain = $1 AND d.active AND r.active", 1, v, out);

	if (status == STORE_NOTFOUND)
		status = pg_relay_fetch(s, PG_RELAY_COLS "WHERE r.is_default AND r.active", 0,
		    NULL, out);
	if (status == STORE_NOTFOUND)
		store_fail(s, status, "no relay for %s: direct delivery to its MX hosts", domain);
	return status;
}
