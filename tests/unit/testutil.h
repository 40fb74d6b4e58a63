/*
 * testutil.h - helpers for the cmocka unit tests: temp dirs and stores.
 */
#ifndef UMBOX_TESTUTIL_H
#define UMBOX_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <libpq-fe.h>

/* A fresh directory under $TMPDIR; removed by tu_rmdir. */
static inline char *
tu_tempdir(void)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *p;

	if (asprintf(&p, "%s/umbox-test.XXXXXX", base) < 0 || mkdtemp(p) == NULL)
		abort();
	return p;
}

static inline void
tu_rmdir(char *dir)
{
	char *cmd;

	if (asprintf(&cmd, "rm -rf '%s'", dir) >= 0) {
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
		free(cmd);
	}
	free(dir);
}

static inline char *
tu_path(const char *dir, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		abort();
	return p;
}

/*
 * PostgreSQL: UMBOX_TEST_PG is the conninfo of a private cluster that
 * tests/run started (tests/pg-cluster).  tu_pg_admin runs one statement
 * there; tu_pg_create makes a database of the test's own and returns the
 * conninfo to reach it (free it) with the name in *db; tu_pg_drop drops
 * it and frees the name.
 */
static inline int
tu_pg_admin(const char *sql)
{
	PGconn *c = PQconnectdb(getenv("UMBOX_TEST_PG") ? getenv("UMBOX_TEST_PG") : "");
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;

	if (!ok)
		fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return ok ? 0 : -1;
}

static inline char *
tu_pg_create(char **db)
{
	static int seq;
	char *sql, *dsn;

	if (asprintf(db, "umbox_test_%d_%d", (int)getpid(), ++seq) < 0 ||
	    asprintf(&sql, "CREATE DATABASE %s", *db) < 0)
		abort();
	if (tu_pg_admin(sql) != 0) {
		free(sql);
		return NULL;
	}
	free(sql);
	if (asprintf(&dsn, "%s dbname=%s", getenv("UMBOX_TEST_PG"), *db) < 0)
		abort();
	return dsn;
}

/* Run a group of tests on PostgreSQL, or say why they did not run. */
#define TU_PG_GROUP(tests) (getenv("UMBOX_TEST_PG") ? \
	cmocka_run_group_tests_name("postgresql", tests, NULL, NULL) : \
	(fprintf(stderr, "UMBOX_TEST_PG is not set: the PostgreSQL tests did not run" \
	    " (tests/run starts a cluster for them)\n"), 0))

static inline void
tu_pg_drop(char *db)
{
	char *sql;

	if (asprintf(&sql, "DROP DATABASE %s WITH (FORCE)", db) < 0)
		abort();
	tu_pg_admin(sql);
	free(sql);
	free(db);
}

#endif
