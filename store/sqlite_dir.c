/*
 * sqlite_dir.c - the directory in SQLite: domains, users, aliases.
 */
#include "store/sqlite_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- domains ---- */

static void
sq_row_domain(sqlite3_stmt *st, struct store_domain *d)
{
	d->id = sqlite3_column_int64(st, 0);
	d->name = sq_col_strdup(st, 1);
	d->guard = sq_col_strdup(st, 2);
	d->guard_detail = sq_col_strdup(st, 3);
	d->forced = sqlite3_column_int(st, 4);
	d->checked_at = sqlite3_column_int64(st, 5);
	d->created_at = sqlite3_column_int64(st, 6);
}

int
sq_domain_add(struct store *s, const struct store_domain *d)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_DOMAIN_ADD);

	sqlite3_bind_text(st, 1, d->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, d->guard ? d->guard : "unchecked", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, d->guard_detail ? d->guard_detail : "", -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, d->forced);
	sqlite3_bind_int64(st, 5, d->checked_at);
	sqlite3_bind_int64(st, 6, d->created_at ? d->created_at : (int64_t)time(NULL));
	return sq_exec_stmt(s, st, "add domain");
}

int
sq_domain_del(struct store *s, const char *name)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_DOMAIN_DEL);
	int status;

	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if ((status = sq_exec_stmt(s, st, "delete domain")) != STORE_OK)
		return status;
	if (sqlite3_changes(sq_of(s)->db) == 0)
		return store_fail(s, STORE_NOTFOUND, "no domain %s", name);
	return STORE_OK;
}

int
sq_domain_get(struct store *s, const char *name, struct store_domain *out)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_DOMAIN_GET);
	int rc;

	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		sq_row_domain(st, out);
		sqlite3_reset(st);
		return STORE_OK;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return store_fail(s, STORE_NOTFOUND, "no domain %s", name);
	return sq_fail(s, rc, "get domain");
}

int
sq_domain_set_guard(struct store *s, const char *name, const char *guard,
    const char *detail, int64_t checked_at)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_DOMAIN_GUARD);
	int status;

	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, guard, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, detail ? detail : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, checked_at);
	if ((status = sq_exec_stmt(s, st, "set domain guard")) != STORE_OK)
		return status;
	if (sqlite3_changes(sq_of(s)->db) == 0)
		return store_fail(s, STORE_NOTFOUND, "no domain %s", name);
	return STORE_OK;
}

int
sq_domain_list(struct store *s, struct store_domain **out, size_t *n)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_DOMAIN_LIST);
	struct store_domain *v = NULL;
	size_t k = 0;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		v = xreallocarray(v, k + 1, sizeof(*v));
		memset(&v[k], 0, sizeof(v[k]));
		sq_row_domain(st, &v[k++]);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store_domain_list_free(&v, k);
		return sq_fail(s, rc, "list domains");
	}
	*out = v;
	*n = k;
	return STORE_OK;
}

/* ---- users ---- */

static void
sq_row_user(sqlite3_stmt *st, struct store_user *u)
{
	u->id = sqlite3_column_int64(st, 0);
	u->login = sq_col_strdup(st, 1);
	u->extension = sq_col_strdup(st, 2);
	u->name = sq_col_strdup(st, 3);
	u->email = sq_col_strdup(st, 4);
	u->password = sq_col_strdup(st, 5);
	u->quota = (uint64_t)sqlite3_column_int64(st, 6);
	u->pop3 = sqlite3_column_int(st, 7);
	u->created_at = sqlite3_column_int64(st, 8);
	u->used = (uint64_t)sqlite3_column_int64(st, 9);
	u->messages = (uint64_t)sqlite3_column_int64(st, 10);
}

int
sq_user_add(struct store *s, const struct store_user *u)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_USER_ADD);

	sqlite3_bind_text(st, 1, u->login, -1, SQLITE_STATIC);
	sq_bind_text_or_null(st, 2, u->extension);
	sq_bind_text_or_null(st, 3, u->name);
	sq_bind_text_or_null(st, 4, u->email);
	sq_bind_text_or_null(st, 5, u->password);
	sqlite3_bind_int64(st, 6, (int64_t)u->quota);
	sqlite3_bind_int(st, 7, u->pop3);
	sqlite3_bind_int64(st, 8, u->created_at ? u->created_at : (int64_t)time(NULL));
	return sq_exec_stmt(s, st, "add user");
}

/* One UPDATE per changed field, all in one transaction. */
int
sq_user_set(struct store *s, const char *login, const struct store_user *u, unsigned fields)
{
	static const struct {
		unsigned bit;
		enum sq_stmt stmt;
	} map[] = {
		{ STORE_USER_EXTENSION, SQ_USER_SET_EXT },
		{ STORE_USER_NAME, SQ_USER_SET_NAME },
		{ STORE_USER_EMAIL, SQ_USER_SET_EMAIL },
		{ STORE_USER_QUOTA, SQ_USER_SET_QUOTA },
		{ STORE_USER_POP3, SQ_USER_SET_POP3 },
		{ STORE_USER_PASSWORD, SQ_USER_SET_PASSWORD },
	};
	struct store_user cur = { 0 };
	int own, status;

	if ((status = sq_txn_begin(s, &own)) != STORE_OK)
		return status;
	status = sq_user_get(s, STORE_USER_BY_LOGIN, login, 0, &cur);
	store_user_clear(&cur);
	for (size_t i = 0; status == STORE_OK && i < ARRAY_SIZE(map); i++) {
		sqlite3_stmt *st;

		if (!(fields & map[i].bit))
			continue;
		st = sq_stmt(s, map[i].stmt);
		sqlite3_bind_text(st, 1, login, -1, SQLITE_STATIC);
		switch (map[i].bit) {
		case STORE_USER_EXTENSION:
			sq_bind_text_or_null(st, 2, u->extension);
			break;
		case STORE_USER_NAME:
			sq_bind_text_or_null(st, 2, u->name);
			break;
		case STORE_USER_EMAIL:
			sq_bind_text_or_null(st, 2, u->email);
			break;
		case STORE_USER_QUOTA:
			sqlite3_bind_int64(st, 2, (int64_t)u->quota);
			break;
		case STORE_USER_POP3:
			sqlite3_bind_int(st, 2, u->pop3);
			break;
		case STORE_USER_PASSWORD:
			sq_bind_text_or_null(st, 2, u->password);
			break;
		}
		status = sq_exec_stmt(s, st, "update user");
	}
	return sq_txn_end(s, own, status);
}

int
sq_user_del(struct store *s, const char *login)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_USER_DEL);
	int status;

	sqlite3_bind_text(st, 1, login, -1, SQLITE_STATIC);
	if ((status = sq_exec_stmt(s, st, "delete user")) != STORE_OK)
		return status;
	if (sqlite3_changes(sq_of(s)->db) == 0)
		return store_fail(s, STORE_NOTFOUND, "no user %s", login);
	return STORE_OK;
}

int
sq_user_get(struct store *s, int by, const char *key, int64_t id, struct store_user *out)
{
	sqlite3_stmt *st;
	int rc;

	switch (by) {
	case STORE_USER_BY_LOGIN:
		st = sq_stmt(s, SQ_USER_BY_LOGIN);
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		break;
	case STORE_USER_BY_EXTENSION:
		st = sq_stmt(s, SQ_USER_BY_EXT);
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		break;
	default:
		st = sq_stmt(s, SQ_USER_BY_ID);
		sqlite3_bind_int64(st, 1, id);
		break;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		sq_row_user(st, out);
		sqlite3_reset(st);
		return STORE_OK;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE) {
		if (by == STORE_USER_BY_ID)
			return store_fail(s, STORE_NOTFOUND, "no user with id %lld", (long long)id);
		return store_fail(s, STORE_NOTFOUND, "no user %s %s",
		    by == STORE_USER_BY_LOGIN ? "named" : "with extension", key);
	}
	return sq_fail(s, rc, "get user");
}

int
sq_user_list(struct store *s, struct store_user **out, size_t *n)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_USER_LIST);
	struct store_user *v = NULL;
	size_t k = 0;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		v = xreallocarray(v, k + 1, sizeof(*v));
		memset(&v[k], 0, sizeof(v[k]));
		sq_row_user(st, &v[k++]);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store_user_list_free(&v, k);
		return sq_fail(s, rc, "list users");
	}
	*out = v;
	*n = k;
	return STORE_OK;
}

/* ---- aliases ---- */

static int
sq_alias_id(struct store *s, const char *name, int64_t *id)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_ALIAS_ID);
	int rc;

	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return STORE_OK;
	if (rc == SQLITE_DONE)
		return store_fail(s, STORE_NOTFOUND, "no alias %s", name);
	return sq_fail(s, rc, "get alias");
}

static int
sq_members_add(struct store *s, int64_t id, const char *const *m, size_t n)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_MEMBER_NEXTPOS);
	int64_t pos;
	int rc, status = STORE_OK;

	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		return sq_fail(s, rc, "alias members");
	pos = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	for (size_t i = 0; i < n && status == STORE_OK; i++) {
		st = sq_stmt(s, SQ_MEMBER_ADD);
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_text(st, 2, m[i], -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, pos++);
		status = sq_exec_stmt(s, st, "add alias member");
	}
	return status;
}

int
sq_alias_add(struct store *s, const char *name, const char *const *m, size_t n)
{
	sqlite3_stmt *st;
	int own, status;

	if ((status = sq_txn_begin(s, &own)) != STORE_OK)
		return status;
	st = sq_stmt(s, SQ_ALIAS_ADD);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)time(NULL));
	status = sq_exec_stmt(s, st, "add alias");
	if (status == STORE_EXISTS)
		store_fail(s, status, "alias %s exists", name);
	if (status == STORE_OK)
		status = sq_members_add(s, sqlite3_last_insert_rowid(sq_of(s)->db), m, n);
	return sq_txn_end(s, own, status);
}

int
sq_alias_add_members(struct store *s, const char *name, const char *const *m, size_t n)
{
	int64_t id;
	int own, status;

	if ((status = sq_txn_begin(s, &own)) != STORE_OK)
		return status;
	status = sq_alias_id(s, name, &id);
	if (status == STORE_OK)
		status = sq_members_add(s, id, m, n);
	return sq_txn_end(s, own, status);
}

int
sq_alias_del_members(struct store *s, const char *name, const char *const *m, size_t n)
{
	int64_t id;
	int own, status;

	if ((status = sq_txn_begin(s, &own)) != STORE_OK)
		return status;
	status = sq_alias_id(s, name, &id);
	for (size_t i = 0; i < n && status == STORE_OK; i++) {
		sqlite3_stmt *st = sq_stmt(s, SQ_MEMBER_DEL);

		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_text(st, 2, m[i], -1, SQLITE_STATIC);
		status = sq_exec_stmt(s, st, "delete alias member");
		if (status == STORE_OK && sqlite3_changes(sq_of(s)->db) == 0)
			status = store_fail(s, STORE_NOTFOUND, "%s is not a member of alias %s",
			    m[i], name);
	}
	return sq_txn_end(s, own, status);
}

int
sq_alias_del(struct store *s, const char *name)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_ALIAS_DEL);
	int status;

	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if ((status = sq_exec_stmt(s, st, "delete alias")) != STORE_OK)
		return status;
	if (sqlite3_changes(sq_of(s)->db) == 0)
		return store_fail(s, STORE_NOTFOUND, "no alias %s", name);
	return STORE_OK;
}

static int
sq_members_load(struct store *s, struct store_alias *a)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_MEMBER_LIST);
	int rc;

	sqlite3_bind_int64(st, 1, a->id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		strlist_add(&a->members, (const char *)sqlite3_column_text(st, 0));
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? STORE_OK : sq_fail(s, rc, "alias members");
}

int
sq_alias_get(struct store *s, const char *name, struct store_alias *out)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_ALIAS_ID);
	int rc, status;

	memset(out, 0, sizeof(*out));
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->id = sqlite3_column_int64(st, 0);
		out->name = sq_col_strdup(st, 1);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return store_fail(s, STORE_NOTFOUND, "no alias %s", name);
	if (rc != SQLITE_ROW)
		return sq_fail(s, rc, "get alias");
	if ((status = sq_members_load(s, out)) != STORE_OK)
		store_alias_clear(out);
	return status;
}

int
sq_alias_list(struct store *s, struct store_alias **out, size_t *n)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_ALIAS_LIST);
	struct store_alias *v = NULL;
	size_t k = 0;
	int rc, status = STORE_OK;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		v = xreallocarray(v, k + 1, sizeof(*v));
		memset(&v[k], 0, sizeof(v[k]));
		v[k].id = sqlite3_column_int64(st, 0);
		v[k].name = sq_col_strdup(st, 1);
		k++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		status = sq_fail(s, rc, "list aliases");
	for (size_t i = 0; i < k && status == STORE_OK; i++)
		status = sq_members_load(s, &v[i]);
	if (status != STORE_OK) {
		store_alias_list_free(&v, k);
		return status;
	}
	*out = v;
	*n = k;
	return STORE_OK;
}
