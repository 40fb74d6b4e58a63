/*
 * pg_int.h - what the PostgreSQL backend's files share: the connection,
 * running a command with text parameters, reading columns, transactions.
 */
#ifndef UMBOX_STORE_PG_INT_H
#define UMBOX_STORE_PG_INT_H

#include <time.h>

#include <libpq-fe.h>

#include "lib/endpoint.h"
#include "store/backend.h"

/*
 * A message's bytes are rows of message_chunks of PG_CHUNK bytes (the
 * last shorter); readers find an offset's chunk by this size, so it may
 * change only with a migration that rewrites the chunks.
 */
#define PG_CHUNK	(256 * 1024)
/* Distinct statements a connection prepares, at most; the rest are parsed each time. */
#define PG_STMTS	512

struct pg {
	PGconn *conn;
	int in_txn;		/* inside begin()...commit() from outside */
	int in_read;		/* inside read_begin()...read_end() */
	int open;		/* a BEGIN went through and no COMMIT/ROLLBACK since */
	char mark[33];		/* the writer's open transaction's (pg_begin) */
	int locked;		/* the pipeline's batch locked user rows */
	int synced;		/* the pipeline's Sync is on its way */
	/* Statements prepared on this connection, by their text ("p" + slot). */
	struct pg_stmt {
		char *sql;
		uint32_t hash;
	} stmts[PG_STMTS];
	char *dsn;		/* to connect again */
	struct config_endpoints dns;	/* where its host names are looked up */
	int64_t next_try;	/* CLOCK_MONOTONIC ms: no new connection before */
	unsigned backoff;	/* ms, doubling with each failure to connect again */
	char conn_err[440];	/* why the last attempt failed */
	uint32_t epoch;		/* the UIDL prefix (meta uidl_epoch) */
	char *node;		/* this node's name ([store] node_id) */
	/*
	 * Above the highest id of a message this handle stored: the ids of
	 * the messages it stores next are at least this (the sequence only
	 * grows), so a lost answer is looked for among those (0: unknown).
	 */
	int64_t message_floor;
};

PGconn *pg_conn(struct store *s);
/*
 * A new connection per dsn (pg_connect.c): host names looked up with
 * c-ares through dns, each address given a bounded time.  NULL with the
 * reasons in err when none could be made.
 */
/* libpq's message (err, notice) as one line into err. */
void pg_msg(const char *msg, char *err, size_t errlen);
PGconn *pg_connect(const char *dsn, const struct config_endpoints *dns, char *err, size_t errlen);
/* Record a failed command's error (r may be NULL) as a status; frees r. */
int pg_fail(struct store *s, PGresult *r, const char *what);
/*
 * Run one command with n text parameters (NULL is SQL NULL; n 0: the
 * text may hold several commands).  The result when it succeeded (free
 * it with PQclear), else NULL with *status set and the message recorded.
 */
PGresult *pg_run(struct store *s, int *status, const char *what, const char *sql, int n,
    const char *const *params);
/* The same with binary parameters where formats[i] is 1, and binary results if binary. */
PGresult *pg_query(struct store *s, int *status, const char *what, const char *sql, int n,
    const char *const *params, const int *lengths, const int *formats, int binary);
/* A command whose rows do not matter: STORE_OK, or the status. */
int pg_exec(struct store *s, const char *what, const char *sql, int n, const char *const *params);
/* A command that changes at least one row: STORE_NOTFOUND with missing as the message if none. */
int pg_exec_one(struct store *s, const char *what, const char *sql, int n,
    const char *const *params, const char *missing);
/*
 * Every row of a query as an element of a new array of elements of size
 * bytes, each zeroed and filled by row(); *(T **)out and *count are set.
 */
typedef void pg_row_fn(struct store *s, const PGresult *r, int i, void *elem);
int pg_rows(struct store *s, const char *what, const char *sql, int n, const char *const *params,
    size_t size, pg_row_fn *row, void *out, size_t *count);
/*
 * Lock the rows of those users ($1, a bigint[]) who have a quota, in id
 * order: before deliveries to them (schema step 11).
 */
#define PG_LOCK_USERS_SQL	"SELECT 1 FROM users WHERE id = ANY($1::bigint[])" \
	" AND quota <> 0 ORDER BY id FOR UPDATE"
/*
 * In the writer's pipeline (pg.c): send one statement without waiting
 * (STORE_OK, or the failure to send); later, in the same order, take its
 * answer: the result when it succeeded, else NULL with *status set.
 */
int pg_pipe_send(struct store *s, const char *what, const char *sql, int n,
    const char *const *params, const int *lengths, const int *formats);
PGresult *pg_pipe_result(struct store *s, int *status, const char *what);
/* Prepare sql now, if it is not yet (a statement the pipeline will send). */
void pg_prepare(struct store *s, const char *sql, int n);
/* Prepare the pipeline's statements of pg_mail.c while that can still wait. */
void pg_pipe_prepare(struct store *s);
int pg_deliver_send(struct store *s, const struct store_delivery *d);
int pg_deliver_resolve(struct store *s, const struct store_delivery *d,
    struct store_delivery_result *res);
int pg_deliver_recv(struct store *s, const struct store_delivery *d,
    struct store_delivery_result *res);
/* Roll back after a failure, keeping that failure's message. */
void pg_abort(struct store *s);
/* A transaction of the operation's own, unless the writer's is open. */
int pg_txn_begin(struct store *s, int *own);
int pg_txn_end(struct store *s, int own, int status);

char *pg_col_str(const PGresult *r, int row, int col);	/* NULL for SQL NULL */
int64_t pg_col_i64(const PGresult *r, int row, int col);
int pg_col_bool(const PGresult *r, int row, int col);
/* An integer column (smallint, integer, bigint) of a result in binary format. */
int64_t pg_bin_i64(const PGresult *r, int row, int col);
/* Text for an integer parameter, in a buffer of PG_INT_LEN of the caller's. */
#define PG_INT_LEN	24
const char *pg_i64(char *buf, int64_t v);
/* "{1,2,3}": the text of a bigint[] parameter.  Free it. */
char *pg_int_array(const int64_t *v, size_t n);

int pg_domain_add(struct store *s, const struct store_domain *d);
int pg_domain_del(struct store *s, const char *name);
int pg_domain_get(struct store *s, const char *name, struct store_domain *out);
int pg_domain_set_guard(struct store *s, const char *name, const char *guard,
    const char *detail, int64_t checked_at);
int pg_domain_list(struct store *s, struct store_domain **out, size_t *n);
int pg_user_add(struct store *s, const struct store_user *u);
int pg_user_set(struct store *s, const char *login, const struct store_user *u, unsigned fields);
int pg_user_del(struct store *s, const char *login);
int pg_user_get(struct store *s, int by, const char *key, int64_t id, struct store_user *out);
int pg_user_list(struct store *s, struct store_user **out, size_t *n);
int pg_alias_add(struct store *s, const char *name, const char *const *m, size_t n);
int pg_alias_add_members(struct store *s, const char *name, const char *const *m, size_t n);
int pg_alias_del_members(struct store *s, const char *name, const char *const *m, size_t n);
int pg_alias_del(struct store *s, const char *name);
int pg_alias_get(struct store *s, const char *name, struct store_alias *out);
int pg_alias_list(struct store *s, struct store_alias **out, size_t *n);
int pg_directory_version(struct store *s, int64_t *v);
int pg_relay_add(struct store *s, const struct store_relay *r);
int pg_relay_set(struct store *s, const char *name, const struct store_relay *r, unsigned fields);
int pg_relay_del(struct store *s, const char *name);
int pg_relay_get(struct store *s, const char *name, struct store_relay *out);
int pg_relay_list(struct store *s, struct store_relay **out, size_t *n);
int pg_relay_route(struct store *s, const char *domain, struct store_relay *out);
int pg_deliver(struct store *s, const struct store_delivery *d, struct store_delivery_result *res);
int pg_mailbox_list(struct store *s, int64_t user_id, struct store_entry **out, size_t *n);
int pg_entry_get(struct store *s, int64_t user_id, const char *uidl, struct store_entry *out);
int pg_entry_read(struct store *s, const struct store_entry *e, uint64_t offset,
    void *buf, size_t len, size_t *got);
int pg_entries_read(struct store *s, const struct store_entry *e, size_t n, void *buf,
    size_t len, size_t *lens);
int pg_reader_open(struct store *s, const struct store_entry *e, struct store_reader **out);
int pg_reader_read(struct store_reader *r, uint64_t offset, void *buf, size_t len, size_t *got);
void pg_reader_close(struct store_reader *r);
int pg_entries_delete(struct store *s, int64_t user_id, const int64_t *uids, size_t n);
int pg_entry_set_flags(struct store *s, int64_t user_id, int64_t uid, unsigned flags);
int pg_pop3_lock(struct store *s, int64_t user_id, const char *owner, int64_t now,
    unsigned lease);
int pg_pop3_unlock(struct store *s, int64_t user_id, const char *owner, const char *prefix);
int pg_stats(struct store *s, struct store_stats *out);
int pg_sweep(struct store *s, int64_t before, size_t *n);
int pg_node_claim(struct store *s, const char *instance, const char *replace, char *holder,
    size_t holderlen);
int pg_node_beat(struct store *s, const char *instance);
void pg_node_release(struct store *s, const char *instance);
int pg_queue_list(struct store *s, int64_t id, struct store_queue_entry **out, size_t *n);
int pg_queue_failed(struct store *s, size_t max, struct store_queue_entry **out, size_t *n);
int pg_queue_del(struct store *s, int64_t id);
int pg_queue_hold(struct store *s, int64_t id, int held);
int pg_queue_flush(struct store *s, int64_t id, int64_t now, size_t *n);
int pg_queue_claim(struct store *s, const char *owner, int64_t now, unsigned lease,
    size_t max, struct store_queue_entry **out, size_t *n);
int pg_queue_release_claims(struct store *s, const char *prefix);
int pg_queue_renew(struct store *s, const char *owner, const int64_t *ids, size_t n,
    int64_t until);
int pg_queue_next_due(struct store *s, int64_t *when);
int pg_queue_report(struct store *s, const char *owner, int64_t now,
    const struct store_retry *retry, struct store_attempt *v, size_t n);
int pg_queue_deliver_local(struct store *s, int64_t id, const char *owner, int64_t now);

#endif
