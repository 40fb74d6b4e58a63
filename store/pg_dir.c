/*
 * pg_dir.c - the directory in PostgreSQL: domains, users, aliases.
 */
#include "store/pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- domains ---- */

#define PG_DOMAIN_COLS "SELECT id, name, guard, guard_detail, forced, checked_at," \
	" created_at FROM domains "

static void
pg_row_domain(struct store *s, const PGresult *r, int i, void *elem)
{
	struct store_domain *d = elem;

	d->id = pg_col_i64(r, i, 0);
	d->name = pg_col_str(r, i, 1);
	d->guard = pg_col_str(r, i, 2);
	d->guard_detail = pg_col_str(r, i, 3);
	d->forced = pg_col_bool(r, i, 4);
	d->checked_at = pg_col_i64(r, i, 5);
	d->created_at = pg_col_i64(r, i, 6);
}

int
pg_domain_add(struct store *s, const struct store_domain *d)
{
	char checked[PG_INT_LEN], created[PG_INT_LEN];
	const char *v[] = { d->name, d->guard ? d->guard : "unchecked",
	    d->guard_detail ? d->guard_detail : "", d->forced ? "t" : "f",
	    pg_i64(checked, d->checked_at),
	    pg_i64(created, d->created_at ? d->created_at : (int64_t)time(NULL)) };

	return pg_exec(s, "add domain", "INSERT INTO domains (name, guard, guard_detail,"
	    " forced, checked_at, created_at) VALUES (lower($1), $2, $3, $4, $5, $6)", 6, v);
}

int
pg_domain_del(struct store *s, const char *name)
{
	char missing[300];
	const char *v[] = { name };

	snprintf(missing, sizeof(missing), "no domain %s", name);
	return pg_exec_one(s, "delete domain", "DELETE FROM domains WHERE name = lower($1)",
	    1, v, missing);
}

int
pg_domain_get(struct store *s, const char *name, struct store_domain *out)
{
	const char *v[] = { name };
	int status;
	PGresult *r = pg_run(s, &status, "get domain",
	    PG_DOMAIN_COLS "WHERE name = lower($1)", 1, v);

	if (r == NULL)
		return status;
	if (PQntuples(r) == 1)
		pg_row_domain(s, r, 0, out);
	else
		status = store_fail(s, STORE_NOTFOUND, "no domain %s", name);
	PQclear(r);
	return status;
}

int
pg_domain_set_guard(struct store *s, const char *name, const char *guard,
    const char *detail, int64_t checked_at)
{
	char at[PG_INT_LEN], missing[300];
	const char *v[] = { name, guard, detail ? detail : "", pg_i64(at, checked_at) };

	snprintf(missing, sizeof(missing), "no domain %s", name);
	return pg_exec_one(s, "set domain guard", "UPDATE domains SET guard = $2,"
	    " guard_detail = $3, checked_at = $4 WHERE name = lower($1)", 4, v, missing);
}

int
pg_domain_list(struct store *s, struct store_domain **out, size_t *n)
{
	return pg_rows(s, "list domains", PG_DOMAIN_COLS "ORDER BY name", 0, NULL,
	    sizeof(struct store_domain), pg_row_domain, out, n);
}

/* ---- users ---- */

/* Usage is the user's row and the deltas not yet folded into it (schema step 11). */
#define PG_USER_COLS "SELECT id, login, extension, name, email, password, quota," \
	" pop3, created_at, used + coalesce(d.size, 0), messages + coalesce(d.n, 0)" \
	" FROM users LEFT JOIN LATERAL (SELECT sum(size) AS size, sum(messages) AS n" \
	" FROM usage_deltas WHERE user_id = users.id) d ON true "

static void
pg_row_user(struct store *s, const PGresult *r, int i, void *elem)
{
	struct store_user *u = elem;

	u->id = pg_col_i64(r, i, 0);
	u->login = pg_col_str(r, i, 1);
	u->extension = pg_col_str(r, i, 2);
	u->name = pg_col_str(r, i, 3);
	u->email = pg_col_str(r, i, 4);
	u->password = pg_col_str(r, i, 5);
	u->quota = (uint64_t)pg_col_i64(r, i, 6);
	u->pop3 = pg_col_bool(r, i, 7);
	u->created_at = pg_col_i64(r, i, 8);
	u->used = (uint64_t)pg_col_i64(r, i, 9);
	u->messages = (uint64_t)pg_col_i64(r, i, 10);
}

int
pg_user_add(struct store *s, const struct store_user *u)
{
	char quota[PG_INT_LEN], created[PG_INT_LEN];
	const char *v[] = { u->login, u->extension, u->name, u->email, u->password,
	    pg_i64(quota, (int64_t)u->quota), u->pop3 ? "t" : "f",
	    pg_i64(created, u->created_at ? u->created_at : (int64_t)time(NULL)) };

	return pg_exec(s, "add user", "INSERT INTO users (login, extension, name, email,"
	    " password, quota, pop3, created_at) VALUES (lower($1), $2, $3, $4, $5, $6, $7, $8)",
	    8, v);
}

int
pg_user_get(struct store *s, int by, const char *key, int64_t id, struct store_user *out)
{
	char idbuf[PG_INT_LEN];
	const char *v[1];
	const char *sql;
	int status;
	PGresult *r;

	switch (by) {
	case STORE_USER_BY_LOGIN:
		sql = PG_USER_COLS "WHERE login = lower($1)";
		v[0] = key;
		break;
	case STORE_USER_BY_EXTENSION:
		sql = PG_USER_COLS "WHERE extension = $1";
		v[0] = key;
		break;
	default:
		sql = PG_USER_COLS "WHERE id = $1";
		v[0] = pg_i64(idbuf, id);
		break;
	}
	if ((r = pg_run(s, &status, "get user", sql, 1, v)) == NULL)
		return status;
	if (PQntuples(r) == 1)
		pg_row_user(s, r, 0, out);
	else if (by == STORE_USER_BY_ID)
		status = store_fail(s, STORE_NOTFOUND, "no user with id %lld", (long long)id);
	else
		status = store_fail(s, STORE_NOTFOUND, "no user %s %s",
		    by == STORE_USER_BY_LOGIN ? "named" : "with extension", key);
	PQclear(r);
	return status;
}

/* The user's row locked, and its usage deltas folded into it (schema step 11). */
static int
pg_user_settle(struct store *s, const char *login)
{
	const char *v[] = { login };
	int status;
	PGresult *r = pg_run(s, &status, "lock user", "SELECT id FROM users"
	    " WHERE login = lower($1) FOR UPDATE", 1, v);

	if (r == NULL)
		return status;
	if (PQntuples(r) == 1) {
		v[0] = PQgetvalue(r, 0, 0);
		status = pg_exec(s, "settle usage", "SELECT usage_settle($1::bigint)", 1, v);
	}
	PQclear(r);
	return status;
}

/*
 * One UPDATE of the chosen columns; a column not chosen keeps its value
 * because its parameter's flag ($8..$13) is false.
 */
static int
pg_user_update(struct store *s, const char *login, const struct store_user *u,
    unsigned fields)
{
	char quota[PG_INT_LEN], missing[300];
	const char *v[] = { login, u->extension, u->name, u->email,
	    pg_i64(quota, (int64_t)u->quota), u->pop3 ? "t" : "f", u->password,
	    fields & STORE_USER_EXTENSION ? "t" : "f", fields & STORE_USER_NAME ? "t" : "f",
	    fields & STORE_USER_EMAIL ? "t" : "f", fields & STORE_USER_QUOTA ? "t" : "f",
	    fields & STORE_USER_POP3 ? "t" : "f", fields & STORE_USER_PASSWORD ? "t" : "f" };

	snprintf(missing, sizeof(missing), "no user named %s", login);
	return pg_exec_one(s, "update user", "UPDATE users SET"
	    " extension = CASE WHEN $8 THEN $2 ELSE extension END,"
	    " name = CASE WHEN $9 THEN $3 ELSE name END,"
	    " email = CASE WHEN $10 THEN $4 ELSE email END,"
	    " quota = CASE WHEN $11 THEN $5::bigint ELSE quota END,"
	    " pop3 = CASE WHEN $12 THEN $6::boolean ELSE pop3 END,"
	    " password = CASE WHEN $13 THEN $7 ELSE password END"
	    " WHERE login = lower($1)", 13, v, missing);
}

/*
 * A quota set makes the row's usage exact first: locking the row waits
 * for the deliveries to it in flight, which a quota read before it was
 * set let go unlocked.
 */
int
pg_user_set(struct store *s, const char *login, const struct store_user *u, unsigned fields)
{
	int own, status;

	if (!(fields & STORE_USER_QUOTA))
		return pg_user_update(s, login, u, fields);
	if ((status = pg_txn_begin(s, &own)) != STORE_OK)
		return status;
	status = pg_user_settle(s, login);
	if (status == STORE_OK)
		status = pg_user_update(s, login, u, fields);
	return pg_txn_end(s, own, status);
}

int
pg_user_del(struct store *s, const char *login)
{
	char missing[300];
	const char *v[] = { login };

	snprintf(missing, sizeof(missing), "no user %s", login);
	return pg_exec_one(s, "delete user", "DELETE FROM users WHERE login = lower($1)",
	    1, v, missing);
}

int
pg_user_list(struct store *s, struct store_user **out, size_t *n)
{
	return pg_rows(s, "list users", PG_USER_COLS "ORDER BY login", 0, NULL,
	    sizeof(struct store_user), pg_row_user, out, n);
}

/* ---- aliases ---- */

static int
pg_alias_id(struct store *s, const char *name, int64_t *id)
{
	const char *v[] = { name };
	int status;
	PGresult *r = pg_run(s, &status, "get alias",
	    "SELECT id FROM aliases WHERE name = lower($1)", 1, v);

	if (r == NULL)
		return status;
	if (PQntuples(r) == 1)
		*id = pg_col_i64(r, 0, 0);
	else
		status = store_fail(s, STORE_NOTFOUND, "no alias %s", name);
	PQclear(r);
	return status;
}

/* After the alias's last member, in order; one already there (any case) is skipped. */
static int
pg_members_add(struct store *s, int64_t id, const char *const *m, size_t n)
{
	char idbuf[PG_INT_LEN];
	int status = STORE_OK;

	pg_i64(idbuf, id);
	for (size_t i = 0; i < n && status == STORE_OK; i++) {
		const char *v[] = { idbuf, m[i] };

		status = pg_exec(s, "add alias member", "INSERT INTO alias_members"
		    " (alias_id, member, position) SELECT $1, $2, coalesce(max(position), 0) + 1"
		    " FROM alias_members WHERE alias_id = $1"
		    " ON CONFLICT (alias_id, lower(member)) DO NOTHING", 2, v);
	}
	return status;
}

int
pg_alias_add(struct store *s, const char *name, const char *const *m, size_t n)
{
	char now[PG_INT_LEN];
	const char *v[] = { name, pg_i64(now, (int64_t)time(NULL)) };
	int own, status;
	PGresult *r;

	if ((status = pg_txn_begin(s, &own)) != STORE_OK)
		return status;
	r = pg_run(s, &status, "add alias", "INSERT INTO aliases (name, created_at)"
	    " VALUES (lower($1), $2) RETURNING id", 2, v);
	if (status == STORE_EXISTS)
		store_fail(s, status, "alias %s exists", name);
	if (r != NULL)
		status = pg_members_add(s, pg_col_i64(r, 0, 0), m, n);
	PQclear(r);
	return pg_txn_end(s, own, status);
}

int
pg_alias_add_members(struct store *s, const char *name, const char *const *m, size_t n)
{
	int64_t id;
	int own, status;

	if ((status = pg_txn_begin(s, &own)) != STORE_OK)
		return status;
	if ((status = pg_alias_id(s, name, &id)) == STORE_OK)
		status = pg_members_add(s, id, m, n);
	return pg_txn_end(s, own, status);
}

int
pg_alias_del_members(struct store *s, const char *name, const char *const *m, size_t n)
{
	char idbuf[PG_INT_LEN], missing[600];
	int64_t id = 0;
	int own, status;

	if ((status = pg_txn_begin(s, &own)) != STORE_OK)
		return status;
	status = pg_alias_id(s, name, &id);
	pg_i64(idbuf, id);
	for (size_t i = 0; i < n && status == STORE_OK; i++) {
		const char *v[] = { idbuf, m[i] };

		snprintf(missing, sizeof(missing), "%s is not a member of alias %s", m[i], name);
		status = pg_exec_one(s, "delete alias member", "DELETE FROM alias_members"
		    " WHERE alias_id = $1 AND lower(member) = lower($2)", 2, v, missing);
	}
	return pg_txn_end(s, own, status);
}

int
pg_alias_del(struct store *s, const char *name)
{
	char missing[300];
	const char *v[] = { name };

	snprintf(missing, sizeof(missing), "no alias %s", name);
	return pg_exec_one(s, "delete alias", "DELETE FROM aliases WHERE name = lower($1)",
	    1, v, missing);
}

/*
 * The aliases with their members in order: one alias (name) or all
 * (name NULL), in one query.  STORE_NOTFOUND when the named one is not there.
 */
static int
pg_alias_load(struct store *s, const char *name, struct store_alias **out, size_t *n)
{
	const char *v[] = { name };
	int status;
	PGresult *r = pg_run(s, &status, name ? "get alias" : "list aliases",
	    "SELECT a.id, a.name, m.member FROM aliases a"
	    " LEFT JOIN alias_members m ON m.alias_id = a.id"
	    " WHERE $1::text IS NULL OR a.name = lower($1)"
	    " ORDER BY a.name, m.position", 1, v);
	struct store_alias *list = NULL;
	size_t k = 0;

	if (r == NULL)
		return status;
	for (int i = 0; i < PQntuples(r); i++) {
		int64_t id = pg_col_i64(r, i, 0);

		if (k == 0 || list[k - 1].id != id) {
			list = xreallocarray(list, k + 1, sizeof(*list));
			memset(&list[k], 0, sizeof(list[k]));
			list[k].id = id;
			list[k].name = pg_col_str(r, i, 1);
			k++;
		}
		if (!PQgetisnull(r, i, 2))
			strlist_add(&list[k - 1].members, PQgetvalue(r, i, 2));
	}
	PQclear(r);
	if (name && k == 0)
		return store_fail(s, STORE_NOTFOUND, "no alias %s", name);
	*out = list;
	*n = k;
	return STORE_OK;
}

int
pg_alias_get(struct store *s, const char *name, struct store_alias *out)
{
	struct store_alias *v;
	size_t n;
	int status;

	memset(out, 0, sizeof(*out));
	if ((status = pg_alias_load(s, name, &v, &n)) != STORE_OK)
		return status;
	*out = v[0];
	free(v);
	return STORE_OK;
}

int
pg_alias_list(struct store *s, struct store_alias **out, size_t *n)
{
	return pg_alias_load(s, NULL, out, n);
}


int
pg_directory_version(struct store *s, int64_t *v)
{
	int status;
	PGresult *r = pg_run(s, &status, "directory version", "SELECT v FROM directory_version",
	    0, NULL);

	if (r == NULL)
		return status;
	*v = PQntuples(r) == 1 ? pg_col_i64(r, 0, 0) : 0;
	PQclear(r);
	return STORE_OK;
}
