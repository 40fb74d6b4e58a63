/*
 * sqlite_changes.c - telling the daemons at once that the directory
 * changed (SQLite).
 *
 * A daemon keeps the directory in memory (directory.c).  On SQLite every
 * process that writes the store is on this machine, so the signal is a
 * counter in a small file next to the database (<store>-directory),
 * mapped shared by every process that opens it: a commit that changed
 * the directory adds one after the commit, and a daemon compares it with
 * the value it read before loading its copy, at each recipient, for the
 * price of one memory read.
 *
 * Which commits: schema step 5's triggers move directory_version on every
 * change to a domain, a user (not its password nor the counts each
 * delivery moves), an alias or its members; the update hook sees that
 * row move inside the transaction, the WAL hook runs after the commit.
 * A transaction rolled back forgets it.  A change made where this code
 * does not run (the sqlite3 shell), or a process killed between its
 * commit and the count, still moves directory_version, which the daemons
 * also compare every second.
 *
 * Only a daemon creates the file (store_directory_changes); a process
 * that finds none has nobody to tell.  The file's content needs no
 * durability: any value does, as long as it moves.
 */
#include "store/sqlite_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

/* What SQLite's own automatic checkpoint does, which a WAL hook replaces. */
#define SQ_AUTOCHECKPOINT	1000

/* One mapping per database per process, kept until exit. */
struct sq_counter {
	struct sq_counter *next;
	char *path;
	_Atomic uint64_t *value;
};

static pthread_mutex_t sq_counters_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sq_counter *sq_counters;

static _Atomic uint64_t *
sq_counter_map(const char *db_path, int create)
{
	char *path = xasprintf("%s" STORE_DIRECTORY_COUNTER, db_path);
	struct sq_counter *c;
	_Atomic uint64_t *value = NULL;
	void *p;
	int fd;

	pthread_mutex_lock(&sq_counters_lock);
	for (c = sq_counters; c && strcmp(c->path, path) != 0; c = c->next)
		;
	if (c) {
		value = c->value;
		goto out;
	}
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0), 0600);
	if (fd < 0)
		goto out;
	/* The counter is the file's first 8 bytes; the rest of the page reads as zero. */
	if (ftruncate(fd, sizeof(*value)) != 0 ||
	    (p = mmap(NULL, sizeof(*value), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) ==
	    MAP_FAILED) {
		close(fd);
		goto out;
	}
	close(fd);
	value = p;
	c = xcalloc(1, sizeof(*c));
	c->path = path, path = NULL;
	c->value = value;
	c->next = sq_counters;
	sq_counters = c;
out:
	pthread_mutex_unlock(&sq_counters_lock);
	free(path);
	return value;
}

const _Atomic uint64_t *
sq_directory_changes(struct store *s)
{
	return sq_counter_map(sq_of(s)->path, 1);
}

static void
sq_update_hook(void *arg, int op, const char *db, const char *table, sqlite3_int64 rowid)
{
	struct sq *q = arg;

	(void)op;
	(void)db;
	(void)rowid;
	if (strcmp(table, "directory_version") == 0)
		q->directory_moved = 1;
}

static void
sq_rollback_hook(void *arg)
{
	((struct sq *)arg)->directory_moved = 0;
}

/* After each commit, with the write lock released. */
static int
sq_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct sq *q = arg;

	if (q->directory_moved) {
		_Atomic uint64_t *value = sq_counter_map(q->path, 0);

		q->directory_moved = 0;
		if (value)
			atomic_fetch_add_explicit(value, 1, memory_order_release);
	}
	if (frames >= SQ_AUTOCHECKPOINT)
		sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	return SQLITE_OK;
}

void
sq_watch_directory(struct sq *q)
{
	sqlite3_update_hook(q->db, sq_update_hook, q);
	sqlite3_rollback_hook(q->db, sq_rollback_hook, q);
	sqlite3_wal_hook(q->db, sq_wal_hook, q);
}
