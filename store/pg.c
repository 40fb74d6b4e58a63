/*
 * pg.c - the PostgreSQL backend: connecting, schema migrations, the
 * transactions of the writer, and the directory (domains and users).
 *
 * Several umbox nodes share one database.  Each schema step runs in its
 * own transaction under an advisory lock, so two nodes starting at once
 * migrate one after the other; a schema newer than this program knows is
 * refused.  This connection is synchronous: it serves the store API's
 * synchronous callers.  The daemons refuse this backend until their
 * reads and commits run on it without blocking a loop; the rest of the
 * store (aliases, relays, mail, the queue, POP3 locks) follows here.
 */
#include "store/backend.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

/* The key of the advisory lock that serialises migrations between nodes. */
#define PG_MIGRATE_LOCK	"7565746f6d626f78"	/* any fixed bigint */

/* The schema, one step each; never edit a released step, add one. */
static const char *const pg_migrations[] = {
	/* 1: the directory; the rest of SPEC §3 comes with its operations. */
	"CREATE TABLE meta ("
	"  key text PRIMARY KEY, value text NOT NULL);"
	"CREATE TABLE domains ("
	"  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
	"  name text NOT NULL UNIQUE CHECK (name = lower(name)),"
	"  guard text NOT NULL DEFAULT 'unchecked',"
	"  guard_detail text NOT NULL DEFAULT '',"
	"  forced boolean NOT NULL DEFAULT false,"
	"  checked_at bigint NOT NULL DEFAULT 0,"
	"  created_at bigint NOT NULL);"
	"CREATE TABLE users ("
	"  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
	"  login text NOT NULL UNIQUE CHECK (login = lower(login)),"
	"  extension text UNIQUE,"
	"  name text, email text, password text,"
	"  quota bigint NOT NULL DEFAULT 0,"
	"  pop3 boolean NOT NULL DEFAULT true,"
	"  used bigint NOT NULL DEFAULT 0,"
	"  messages bigint NOT NULL DEFAULT 0,"
	"  created_at bigint NOT NULL);",

	/* 2: aliases; a member is kept as given and unique without regard to case. */
	"CREATE TABLE aliases ("
	"  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
	"  name text NOT NULL UNIQUE CHECK (name = lower(name)),"
	"  created_at bigint NOT NULL);"
	"CREATE TABLE alias_members ("
	"  alias_id bigint NOT NULL REFERENCES aliases(id) ON DELETE CASCADE,"
	"  member text NOT NULL,"
	"  position bigint NOT NULL);"
	"CREATE UNIQUE INDEX alias_members_key ON alias_members (alias_id, lower(member));",
};
#define PG_SCHEMA_VERSION	(int)(sizeof(pg_migrations) / sizeof(pg_migrations[0]))

struct pg {
	PGconn *conn;
	int in_txn;		/* inside begin()...commit() from outside */
	int in_read;		/* inside read_begin()...read_end() */
};

static PGconn *
pg_conn(struct store *s)
{
	return ((struct pg *)s->impl)->conn;
}

/*
 * A failed command's status, from its SQLSTATE: a unique key taken is
 * STORE_EXISTS, a full disk STORE_FULL, a value refused STORE_INVALID;
 * the rest (connection lost, server errors) a temporary STORE_ERROR.
 */
static int
pg_status_of(const PGresult *r)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	if (state == NULL)
		return STORE_ERROR;
	if (strcmp(state, "23505") == 0)		/* unique_violation */
		return STORE_EXISTS;
	if (strcmp(state, "53100") == 0)		/* disk_full */
		return STORE_FULL;
	if (strncmp(state, "22", 2) == 0 ||		/* data exception */
	    strcmp(state, "23514") == 0 ||		/* check_violation */
	    strcmp(state, "23502") == 0)		/* not_null_violation */
		return STORE_INVALID;
	return STORE_ERROR;
}

/* The error of a failed command as a store status and message. */
static int
pg_fail(struct store *s, PGresult *r, const char *what)
{
	const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(pg_conn(s));
	int status = pg_status_of(r);
	size_t n = strlen(msg);

	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		n--;
	store_fail(s, status, "%s: %.*s", what, (int)n, msg);
	PQclear(r);
	return status;
}

/*
 * Run one command with text parameters (NULL is SQL NULL).  Returns the
 * result when it succeeded (free it with PQclear), else NULL with the
 * status in *status and the message recorded.
 */
static PGresult *
pg_run(struct store *s, int *status, const char *what, const char *sql, int n,
    const char *const *params)
{
	/* Without parameters, the simple protocol: the text may hold several commands. */
	PGresult *r = n == 0 ? PQexec(pg_conn(s), sql) :
	    PQexecParams(pg_conn(s), sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType t = PQresultStatus(r);

	if (t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK) {
		*status = STORE_OK;
		return r;
	}
	*status = pg_fail(s, r, what);
	return NULL;
}

/* A command whose rows do not matter: STORE_OK, or the status. */
static int
pg_exec(struct store *s, const char *what, const char *sql, int n, const char *const *params)
{
	int status;
	PGresult *r = pg_run(s, &status, what, sql, n, params);

	PQclear(r);
	return status;
}

/* A command that changes one named row: STORE_NOTFOUND when there was none. */
static int
pg_exec_one(struct store *s, const char *what, const char *sql, int n,
    const char *const *params, const char *missing)
{
	int status;
	PGresult *r = pg_run(s, &status, what, sql, n, params);

	if (r && strcmp(PQcmdTuples(r), "0") == 0)
		status = store_fail(s, STORE_NOTFOUND, "%s", missing);
	PQclear(r);
	return status;
}

static char *
pg_col_str(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : xstrdup(PQgetvalue(r, row, col));
}

static int64_t
pg_col_i64(const PGresult *r, int row, int col)
{
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static int
pg_col_bool(const PGresult *r, int row, int col)
{
	return PQgetvalue(r, row, col)[0] == 't';
}

/* Text for an integer parameter, in a buffer of the caller's. */
#define PG_INT_LEN	24
static const char *
pg_i64(char *buf, int64_t v)
{
	snprintf(buf, PG_INT_LEN, "%" PRId64, v);
	return buf;
}

/* ---- opening and the schema ---- */

static int
pg_schema_version(struct store *s)
{
	int status, v = -1;
	PGresult *r = pg_run(s, &status, "schema version",
	    "SELECT version FROM umbox_schema", 0, NULL);

	if (r && PQntuples(r) == 1)
		v = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

/*
 * One step per transaction, each under the advisory lock and reading the
 * version again once it holds it: another node may have moved it on.
 * Returns STORE_OK when the schema is this program's.
 */
static int
pg_migrate(struct store *s)
{
	for (;;) {
		int status, have;
		PGresult *r;
		char *sql;

		if ((status = pg_exec(s, "begin", "BEGIN", 0, NULL)) != STORE_OK)
			return status;
		r = pg_run(s, &status, "lock the schema",
		    "SELECT pg_advisory_xact_lock(x'" PG_MIGRATE_LOCK "'::bigint);"
		    "CREATE TABLE IF NOT EXISTS umbox_schema (version integer NOT NULL);"
		    "INSERT INTO umbox_schema SELECT 0"
		    "  WHERE NOT EXISTS (SELECT 1 FROM umbox_schema);"
		    "SELECT version FROM umbox_schema", 0, NULL);
		if (r == NULL) {
			pg_exec(s, "rollback", "ROLLBACK", 0, NULL);
			return status;
		}
		have = atoi(PQgetvalue(r, 0, 0));
		PQclear(r);
		if (have >= PG_SCHEMA_VERSION) {
			pg_exec(s, "rollback", "ROLLBACK", 0, NULL);
			if (have > PG_SCHEMA_VERSION)
				return store_fail(s, STORE_INVALID, "the database's schema"
				    " version %d is newer than this umbox knows (%d):"
				    " upgrade umbox", have, PG_SCHEMA_VERSION);
			return STORE_OK;
		}
		sql = xasprintf("%s; UPDATE umbox_schema SET version = %d",
		    pg_migrations[have], have + 1);
		status = pg_exec(s, "migrate the schema", sql, 0, NULL);
		free(sql);
		if (status != STORE_OK) {
			pg_exec(s, "rollback", "ROLLBACK", 0, NULL);
			return status;
		}
		if ((status = pg_exec(s, "commit", "COMMIT", 0, NULL)) != STORE_OK)
			return status;
	}
}

static void
pg_ignore_notice(void *arg, const char *message)
{
}

static int
pg_open(struct store *s, const struct store_config *cfg, int flags)
{
	struct pg *p = xcalloc(1, sizeof(*p));
	int status;

	s->impl = p;
	p->conn = PQconnectdb(cfg->dsn ? cfg->dsn : "");
	if (PQstatus(p->conn) != CONNECTION_OK) {
		const char *msg = PQerrorMessage(p->conn);
		size_t n = strlen(msg);

		while (n > 0 && msg[n - 1] == '\n')
			n--;
		return store_fail(s, STORE_ERROR, "cannot connect to PostgreSQL: %.*s",
		    (int)n, msg);
	}
	/* Notices (a warning from the server) are not failures: not printed. */
	PQsetNoticeProcessor(p->conn, pg_ignore_notice, NULL);
	/* An acknowledgement means the commit is flushed (and replicated). */
	if ((status = pg_exec(s, "set up the session",
	    "SET synchronous_commit = on; SET client_min_messages = warning", 0, NULL)) != STORE_OK)
		return status;
	if (flags & STORE_READONLY) {
		int v = pg_schema_version(s);

		if (v > PG_SCHEMA_VERSION)
			return store_fail(s, STORE_INVALID, "the database's schema version %d"
			    " is newer than this umbox knows (%d): upgrade umbox", v,
			    PG_SCHEMA_VERSION);
		return v == PG_SCHEMA_VERSION ? STORE_OK : store_fail(s, STORE_NOTFOUND,
		    "the database has no umbox schema");
	}
	return pg_migrate(s);
}

static void
pg_close(struct store *s)
{
	struct pg *p = s->impl;

	if (p == NULL)
		return;
	PQfinish(p->conn);
	free(p);
	s->impl = NULL;
}

/* ---- transactions ---- */

/* A transaction of the operation's own, unless the writer's is open. */
static int
pg_txn_begin(struct store *s, int *own)
{
	*own = 0;
	if (((struct pg *)s->impl)->in_txn)
		return STORE_OK;
	*own = 1;
	return pg_exec(s, "begin", "BEGIN", 0, NULL);
}

static int
pg_txn_end(struct store *s, int own, int status)
{
	if (!own)
		return status;
	if (status == STORE_OK && (status = pg_exec(s, "commit", "COMMIT", 0, NULL)) == STORE_OK)
		return STORE_OK;
	PQclear(PQexec(pg_conn(s), "ROLLBACK"));
	return status;
}

static int
pg_begin(struct store *s)
{
	int status = pg_exec(s, "begin", "BEGIN", 0, NULL);

	if (status == STORE_OK)
		((struct pg *)s->impl)->in_txn = 1;
	return status;
}

static int
pg_commit(struct store *s)
{
	((struct pg *)s->impl)->in_txn = 0;
	return pg_exec(s, "commit", "COMMIT", 0, NULL);
}

static void
pg_rollback(struct store *s)
{
	((struct pg *)s->impl)->in_txn = 0;
	pg_exec(s, "rollback", "ROLLBACK", 0, NULL);
}

static int
pg_savepoint(struct store *s)
{
	return pg_exec(s, "savepoint", "SAVEPOINT req", 0, NULL);
}

static int
pg_release(struct store *s, int ok)
{
	if (ok)
		return pg_exec(s, "release", "RELEASE req", 0, NULL);
	return pg_exec(s, "roll back the request", "ROLLBACK TO req; RELEASE req", 0, NULL);
}

/* A read view: one snapshot for a group of reads. */
static void
pg_read_begin(struct store *s)
{
	struct pg *p = s->impl;

	if (!p->in_txn && !p->in_read)
		p->in_read = pg_exec(s, "begin", "BEGIN ISOLATION LEVEL REPEATABLE READ"
		    " READ ONLY", 0, NULL) == STORE_OK;
}

static void
pg_read_end(struct store *s)
{
	struct pg *p = s->impl;

	if (p->in_read)
		pg_exec(s, "end", "COMMIT", 0, NULL);
	p->in_read = 0;
}

/* ---- domains ---- */

#define PG_DOMAIN_COLS "SELECT id, name, guard, guard_detail, forced, checked_at," \
	" created_at FROM domains "

static void
pg_row_domain(const PGresult *r, int i, struct store_domain *d)
{
	d->id = pg_col_i64(r, i, 0);
	d->name = pg_col_str(r, i, 1);
	d->guard = pg_col_str(r, i, 2);
	d->guard_detail = pg_col_str(r, i, 3);
	d->forced = pg_col_bool(r, i, 4);
	d->checked_at = pg_col_i64(r, i, 5);
	d->created_at = pg_col_i64(r, i, 6);
}

static int
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

static int
pg_domain_del(struct store *s, const char *name)
{
	char missing[300];
	const char *v[] = { name };

	snprintf(missing, sizeof(missing), "no domain %s", name);
	return pg_exec_one(s, "delete domain", "DELETE FROM domains WHERE name = lower($1)",
	    1, v, missing);
}

static int
pg_domain_get(struct store *s, const char *name, struct store_domain *out)
{
	const char *v[] = { name };
	int status;
	PGresult *r = pg_run(s, &status, "get domain",
	    PG_DOMAIN_COLS "WHERE name = lower($1)", 1, v);

	if (r == NULL)
		return status;
	if (PQntuples(r) == 1)
		pg_row_domain(r, 0, out);
	else
		status = store_fail(s, STORE_NOTFOUND, "no domain %s", name);
	PQclear(r);
	return status;
}

static int
pg_domain_set_guard(struct store *s, const char *name, const char *guard,
    const char *detail, int64_t checked_at)
{
	char at[PG_INT_LEN], missing[300];
	const char *v[] = { name, guard, detail ? detail : "", pg_i64(at, checked_at) };

	snprintf(missing, sizeof(missing), "no domain %s", name);
	return pg_exec_one(s, "set domain guard", "UPDATE domains SET guard = $2,"
	    " guard_detail = $3, checked_at = $4 WHERE name = lower($1)", 4, v, missing);
}

static int
pg_domain_list(struct store *s, struct store_domain **out, size_t *n)
{
	int status;
	PGresult *r = pg_run(s, &status, "list domains", PG_DOMAIN_COLS "ORDER BY name", 0, NULL);
	struct store_domain *v;
	int k;

	if (r == NULL)
		return status;
	k = PQntuples(r);
	v = xcalloc(k > 0 ? (size_t)k : 1, sizeof(*v));
	for (int i = 0; i < k; i++)
		pg_row_domain(r, i, &v[i]);
	PQclear(r);
	*out = v;
	*n = (size_t)k;
	return STORE_OK;
}

/* ---- users ---- */

#define PG_USER_COLS "SELECT id, login, extension, name, email, password, quota," \
	" pop3, created_at, used, messages FROM users "

static void
pg_row_user(const PGresult *r, int i, struct store_user *u)
{
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

static int
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

static int
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
		pg_row_user(r, 0, out);
	else if (by == STORE_USER_BY_ID)
		status = store_fail(s, STORE_NOTFOUND, "no user with id %lld", (long long)id);
	else
		status = store_fail(s, STORE_NOTFOUND, "no user %s %s",
		    by == STORE_USER_BY_LOGIN ? "named" : "with extension", key);
	PQclear(r);
	return status;
}

/*
 * One UPDATE of the chosen columns; a column not chosen keeps its value
 * because its parameter's flag ($8..$13) is false.
 */
static int
pg_user_set(struct store *s, const char *login, const struct store_user *u, unsigned fields)
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

static int
pg_user_del(struct store *s, const char *login)
{
	char missing[300];
	const char *v[] = { login };

	snprintf(missing, sizeof(missing), "no user %s", login);
	return pg_exec_one(s, "delete user", "DELETE FROM users WHERE login = lower($1)",
	    1, v, missing);
}

static int
pg_user_list(struct store *s, struct store_user **out, size_t *n)
{
	int status;
	PGresult *r = pg_run(s, &status, "list users", PG_USER_COLS "ORDER BY login", 0, NULL);
	struct store_user *v;
	int k;

	if (r == NULL)
		return status;
	k = PQntuples(r);
	v = xcalloc(k > 0 ? (size_t)k : 1, sizeof(*v));
	for (int i = 0; i < k; i++)
		pg_row_user(r, i, &v[i]);
	PQclear(r);
	*out = v;
	*n = (size_t)k;
	return STORE_OK;
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

static int
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

static int
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

static int
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

static int
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

static int
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

static int
pg_alias_list(struct store *s, struct store_alias **out, size_t *n)
{
	return pg_alias_load(s, NULL, out, n);
}

/* Operations left NULL are not on this backend yet (see the top). */
const struct store_backend store_pg_backend = {
	.name = "postgresql",
	.open = pg_open,
	.close = pg_close,
	.schema_version = pg_schema_version,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.savepoint = pg_savepoint,
	.release = pg_release,
	.read_begin = pg_read_begin,
	.read_end = pg_read_end,
	.domain_add = pg_domain_add,
	.domain_del = pg_domain_del,
	.domain_get = pg_domain_get,
	.domain_set_guard = pg_domain_set_guard,
	.domain_list = pg_domain_list,
	.user_add = pg_user_add,
	.user_set = pg_user_set,
	.user_del = pg_user_del,
	.user_get = pg_user_get,
	.user_list = pg_user_list,
	.alias_add = pg_alias_add,
	.alias_add_members = pg_alias_add_members,
	.alias_del_members = pg_alias_del_members,
	.alias_del = pg_alias_del,
	.alias_get = pg_alias_get,
	.alias_list = pg_alias_list,
};
