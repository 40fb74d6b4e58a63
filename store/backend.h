/*
 * backend.h - what a storage backend implements.  store.c dispatches the
 * public API of store.h through one of these: SQLite (sqlite*.c), and
 * PostgreSQL (pg.c), whose table leaves NULL what it does not have yet.
 * Nothing outside store/ includes this file.
 */
#ifndef UMBOX_STORE_BACKEND_H
#define UMBOX_STORE_BACKEND_H

#include <stdatomic.h>

#include "store/store.h"

struct store {
	const struct store_backend *be;
	char *path;
	char *where;	/* store_where(), when not the path */
	void *impl;
	char errmsg[512];
	/*
	 * Set by a backend whose writer runs without savepoints: the failure
	 * just recorded left nothing behind (clean), so the transaction may
	 * go on; it was a conflict with another transaction (retry), so the
	 * same work may succeed if run again.
	 */
	int clean;
	int retry;
};

struct store_backend {
	const char *name;
	int (*open)(struct store *s, const struct store_config *cfg, int flags);
	void (*close)(struct store *s);
	int (*schema_version)(struct store *s);

	/*
	 * Transactions for the writer: begin, commit, and per-request
	 * savepoints.  Without savepoints (NULL) the writer runs a batch
	 * whole and, should a request fail other than cleanly, runs each
	 * of the batch's requests again alone (writer.c).
	 */
	int (*begin)(struct store *s);
	int (*commit)(struct store *s);
	void (*rollback)(struct store *s);
	int (*savepoint)(struct store *s);
	int (*release)(struct store *s, int ok);
	/*
	 * A batch in one round trip (NULL: not offered).  pipe_begin opens
	 * the transaction and locks the user rows the batch writes, in id
	 * order; each request then sends its work (deliver_send); pipe_commit
	 * sends COMMIT and reads what pipe_begin sent; each request reads its
	 * answers (deliver_recv) in order; pipe_end (commit 1, once
	 * pipe_commit has been called) reads the rest and returns STORE_OK
	 * when the batch committed, or (0: COMMIT never sent) rolls it back.
	 * A failed pipe_begin leaves nothing to end.
	 */
	int (*pipe_begin)(struct store *s, const int64_t *users, size_t n);
	int (*pipe_commit)(struct store *s);
	int (*pipe_end)(struct store *s, int commit);
	int (*deliver_send)(struct store *s, const struct store_delivery *d);
	int (*deliver_recv)(struct store *s, const struct store_delivery *d,
	    struct store_delivery_result *res);
	/*
	 * Optional: the batch holding d committed (pipe_end said so) but d's
	 * answer was lost with the connection.  What d did, learned from the
	 * store by its queue ID: STORE_OK with res (its counts; no per-target
	 * statuses), or STORE_QUOTA when it stored nothing (it was refused).
	 */
	int (*deliver_resolve)(struct store *s, const struct store_delivery *d,
	    struct store_delivery_result *res);
	/* A read view (store_read_begin); a failure leaves each read on its own. */
	void (*read_begin)(struct store *s);
	void (*read_end)(struct store *s);

	int (*domain_add)(struct store *s, const struct store_domain *d);
	int (*domain_del)(struct store *s, const char *name);
	int (*domain_get)(struct store *s, const char *name, struct store_domain *out);
	int (*domain_set_guard)(struct store *s, const char *name, const char *guard,
	    const char *detail, int64_t checked_at);
	int (*domain_list)(struct store *s, struct store_domain **out, size_t *n);

	int (*user_add)(struct store *s, const struct store_user *u);
	int (*user_set)(struct store *s, const char *login, const struct store_user *u, unsigned fields);
	int (*user_del)(struct store *s, const char *login);
	int (*user_get)(struct store *s, int by, const char *key, int64_t id, struct store_user *out);
	int (*user_list)(struct store *s, struct store_user **out, size_t *n);

	int (*alias_add)(struct store *s, const char *name, const char *const *m, size_t n);
	int (*alias_add_members)(struct store *s, const char *name, const char *const *m, size_t n);
	int (*alias_del_members)(struct store *s, const char *name, const char *const *m, size_t n);
	int (*alias_del)(struct store *s, const char *name);
	int (*alias_get)(struct store *s, const char *name, struct store_alias *out);
	int (*alias_list)(struct store *s, struct store_alias **out, size_t *n);

	/* Each checks the relay with store_relay_check() (set: once merged). */
	int (*relay_add)(struct store *s, const struct store_relay *r);
	int (*relay_set)(struct store *s, const char *name, const struct store_relay *r,
	    unsigned fields);
	int (*relay_del)(struct store *s, const char *name);
	int (*relay_get)(struct store *s, const char *name, struct store_relay *out);
	int (*relay_list)(struct store *s, struct store_relay **out, size_t *n);
	int (*relay_route)(struct store *s, const char *domain, struct store_relay *out);

	/* Apply a delivery inside the caller's transaction. */
	int (*deliver)(struct store *s, const struct store_delivery *d, struct store_delivery_result *res);
	int (*mailbox_list)(struct store *s, int64_t user_id, struct store_entry **out, size_t *n);
	int (*entry_get)(struct store *s, int64_t user_id, const char *uidl, struct store_entry *out);
	int (*entry_read)(struct store *s, const struct store_entry *e, uint64_t offset,
	    void *buf, size_t len, size_t *got);
	/* NULL: store_entries_read reads each entry alone. */
	int (*entries_read)(struct store *s, const struct store_entry *e, size_t n, void *buf,
	    size_t len, size_t *lens);
	/* An entry with uid 0 is a queue row's message alone, without a prefix. */
	int (*reader_open)(struct store *s, const struct store_entry *e, struct store_reader **out);
	int (*reader_read)(struct store_reader *r, uint64_t offset, void *buf, size_t len,
	    size_t *got);
	void (*reader_close)(struct store_reader *r);
	/* Delete inside the caller's transaction. */
	int (*entries_delete)(struct store *s, int64_t user_id, const int64_t *uids, size_t n);
	int (*entry_set_flags)(struct store *s, int64_t user_id, int64_t uid, unsigned flags);

	int (*queue_list)(struct store *s, int64_t id, struct store_queue_entry **out, size_t *n);
	int (*queue_del)(struct store *s, int64_t id);
	int (*queue_failed)(struct store *s, size_t max, struct store_queue_entry **out,
	    size_t *n);
	int (*queue_hold)(struct store *s, int64_t id, int held);
	int (*queue_flush)(struct store *s, int64_t id, int64_t now, size_t *n);
	int (*queue_claim)(struct store *s, const char *owner, int64_t now, unsigned lease,
	    size_t max, struct store_queue_entry **out, size_t *n);
	int (*queue_release_claims)(struct store *s, const char *prefix);
	int (*queue_renew)(struct store *s, const char *owner, const int64_t *ids, size_t n,
	    int64_t until);
	int (*queue_next_due)(struct store *s, int64_t *when);
	/* Inside the caller's transaction when there is one (the writer's). */
	int (*queue_report)(struct store *s, const char *owner, int64_t now,
	    const struct store_retry *retry, struct store_attempt *v, size_t n);
	int (*queue_deliver_local)(struct store *s, int64_t id, const char *owner, int64_t now);

	int (*pop3_lock)(struct store *s, int64_t user_id, const char *owner, int64_t now,
	    unsigned lease);
	/*
	 * owner NULL: every lock whose owner starts with prefix.  With an
	 * owner, STORE_NOTFOUND (nothing written) when the lock is not its.
	 */
	int (*pop3_unlock)(struct store *s, int64_t user_id, const char *owner, const char *prefix);
	int (*stats)(struct store *s, struct store_stats *out);
	/* Report the backend's own items for store_check(). */
	int (*check)(struct store *s, store_check_fn *fn, void *arg);
	/* NULL: one node only (SQLite). */
	int (*node_claim)(struct store *s, const char *instance, const char *replace,
	    char *holder, size_t holderlen);
	int (*node_beat)(struct store *s, const char *instance);
	void (*node_release)(struct store *s, const char *instance);
	/* The directory's version, moved by every change to it. */
	int (*directory_version)(struct store *s, int64_t *v);
	/*
	 * SQLite: a counter shared by every process on the machine, moved
	 * after each commit that changes the directory (NULL when it cannot
	 * be had); PostgreSQL: NULL, changes are heard through listen().
	 */
	const _Atomic uint64_t *(*directory_changes)(struct store *s);
	/* A connection kept to hear of changes (NULL: SQLite): store_listen(). */
	int (*listen)(struct store *s, const char *channel);
	int (*listen_fd)(struct store *s);
	int (*notified)(struct store *s, const char *channel, int *on);
	/* NULL: messages go with their last reference (SQLite). */
	int (*sweep)(struct store *s, int64_t before, size_t *n);
};

/* SQLite: the change counter's file is the database's path and this. */
#define STORE_DIRECTORY_COUNTER	"-directory"

#define STORE_USER_BY_LOGIN	0
#define STORE_USER_BY_EXTENSION	1
#define STORE_USER_BY_ID	2

extern const struct store_backend store_sqlite_backend;
extern const struct store_backend store_pg_backend;
/* store_copy_from_sqlite() into a PostgreSQL store (pg_copy.c). */
int pg_copy_from_sqlite(struct store *s, const char *path, struct store_copy_counts *n);

/*
 * Is r a relay the store may hold?  STORE_OK, or STORE_INVALID with a
 * message.  What every backend checks before writing one.
 */
int store_relay_check(struct store *s, const struct store_relay *r);
/*
 * Apply the fields of r named in fields to cur, which owns its strings
 * (a relay_set reads the relay, merges, checks the whole, writes it).
 */
void store_relay_merge(struct store_relay *cur, const struct store_relay *r, unsigned fields);

/*
 * A remote server's text made fit to store and print: printable ASCII
 * only (anything else becomes '?'), at most len - 1 bytes.
 */
void store_queue_clean_error(const char *in, char *out, size_t len);
/* A queue row's domain: what follows the recipient's last '@', lowercase ("" if none). */
char *store_recipient_domain(const char *recipient);
/*
 * A claim's candidates v[0..k), ordered by message, domain, id, and up to
 * one more than max: how many to claim.  A message's rows to one domain
 * are not split across claims unless that group alone is more than max.
 */
size_t store_queue_claim_keep(const struct store_queue_entry *v, size_t k, size_t max);
#define STORE_QUEUE_ERROR_MAX	512

/*
 * A mailbox entry's POP3 UIDL, "EPOCH.UID": the store's epoch (fixed when
 * it was created, so a recreated store's UIDs never look like the old
 * ones) as 8 hex digits, and the uid.  Parse gives 0 and the uid, or -1
 * for a UIDL that is not this store's.  The same for every backend.
 */
void store_uidl_format(char *buf, size_t len, uint32_t epoch, int64_t uid);
int store_uidl_parse(const char *uidl, uint32_t epoch, int64_t *uid);

/* Record a message for store_errmsg(); returns status for tail calls. */
int store_fail(struct store *s, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
