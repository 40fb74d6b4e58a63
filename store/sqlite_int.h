/*
 * sqlite_int.h - internals shared by the SQLite backend's files.
 */
#ifndef UMBOX_STORE_SQLITE_INT_H
#define UMBOX_STORE_SQLITE_INT_H

#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>

#include "store/backend.h"

/* Every statement the backend runs, prepared once on first use. */
enum sq_stmt {
	SQ_BEGIN, SQ_READ_BEGIN, SQ_COMMIT, SQ_ROLLBACK, SQ_SAVEPOINT, SQ_RELEASE, SQ_ROLLBACK_TO,
	SQ_DIRECTORY_VERSION,
	SQ_DOMAIN_ADD, SQ_DOMAIN_DEL, SQ_DOMAIN_GET, SQ_DOMAIN_GUARD, SQ_DOMAIN_LIST,
	SQ_USER_ADD, SQ_USER_DEL, SQ_USER_BY_LOGIN, SQ_USER_BY_EXT, SQ_USER_BY_ID,
	SQ_USER_LIST, SQ_USER_SET_EXT, SQ_USER_SET_NAME, SQ_USER_SET_EMAIL,
	SQ_USER_SET_QUOTA, SQ_USER_SET_POP3, SQ_USER_SET_PASSWORD,
	SQ_ALIAS_ADD, SQ_ALIAS_ID, SQ_ALIAS_DEL, SQ_ALIAS_LIST, SQ_MEMBER_ADD,
	SQ_MEMBER_DEL, SQ_MEMBER_LIST, SQ_MEMBER_NEXTPOS,
	SQ_RELAY_ADD, SQ_RELAY_UPDATE, SQ_RELAY_CLEAR_DEFAULT, SQ_RELAY_DEL, SQ_RELAY_GET,
	SQ_RELAY_LIST, SQ_RELAY_BY_DOMAIN, SQ_RELAY_DEFAULT, SQ_RELAY_DOMAINS,
	SQ_RELAY_DOMAIN_ADD, SQ_RELAY_DOMAINS_DEL, SQ_RELAY_DOMAIN_TAKEN,
	SQ_MESSAGE_ADD, SQ_MESSAGE_SIZE, SQ_ENTRY_ADD, SQ_QUEUE_ADD, SQ_QUEUE_ADD_LOCAL, SQ_USER_USAGE,
	SQ_ENTRY_LIST, SQ_ENTRY_GET, SQ_ENTRY_PREFIX, SQ_MESSAGE_EXISTS, SQ_ENTRY_DEL, SQ_ENTRY_FLAGS,
	SQ_QUEUE_LIST, SQ_QUEUE_FAILED, SQ_QUEUE_GET, SQ_QUEUE_DEL, SQ_QUEUE_HOLD, SQ_QUEUE_EXISTS,
	SQ_QUEUE_FLUSH_ONE, SQ_QUEUE_FLUSH_ALL, SQ_QUEUE_CLAIMABLE, SQ_QUEUE_CLAIM,
	SQ_QUEUE_UNCLAIM_PREFIX, SQ_QUEUE_RENEW, SQ_QUEUE_NEXT_DUE, SQ_QUEUE_STATE, SQ_QUEUE_ATTEMPT,
	SQ_QUEUE_LOCAL,
	SQ_LOCK, SQ_UNLOCK, SQ_UNLOCK_PREFIX,
	SQ_STATS, SQ_FREE_PAGES,
	SQ__COUNT
};

struct sq {
	sqlite3 *db;
	sqlite3_stmt *st[SQ__COUNT];
	uint32_t epoch;		/* per-store UIDL prefix, fixed at creation */
	int in_txn;		/* inside begin()...commit() from outside */
	int in_read;		/* inside read_begin()...read_end() */
	char *path;
	int directory_moved;	/* this transaction changed the directory */
	/*
	 * Room for new mail as last measured (the file system's free space
	 * and the database's free pages), less what was stored since.
	 */
	uint64_t disk_free;
	uint64_t disk_size;
	int64_t disk_checked_ms;	/* 0: never */
};

/* The prepared statement, reset and with bindings cleared. */
sqlite3_stmt *sq_stmt(struct store *s, enum sq_stmt id);
/* Turn an SQLite result code into a store status, with a message. */
int sq_fail(struct store *s, int rc, const char *what);
/* Run a statement that returns no rows; STORE_OK or a status. */
int sq_exec_stmt(struct store *s, sqlite3_stmt *st, const char *what);
/* Run fn inside BEGIN IMMEDIATE..COMMIT unless already in a transaction. */
int sq_txn_begin(struct store *s, int *own);
int sq_txn_end(struct store *s, int own, int status);
char *sq_col_strdup(sqlite3_stmt *st, int col);	/* NULL for SQL NULL */
void sq_bind_text_or_null(sqlite3_stmt *st, int idx, const char *v);

struct sq *sq_of(struct store *s);

/*
 * The directory's change counter (sqlite_changes.c): hooks on a
 * connection that writes, and the daemon's mapping of it.
 */
void sq_watch_directory(struct sq *q);
const _Atomic uint64_t *sq_directory_changes(struct store *s);

/* The VFS that gathers WAL writes (sqlite_vfs.c); NULL if it could not be made. */
const char *sq_vfs_register(void);

/* Directory (domains, users, aliases), relays and mail (messages, entries) ops. */
int sq_domain_add(struct store *s, const struct store_domain *d);
int sq_domain_del(struct store *s, const char *name);
int sq_domain_get(struct store *s, const char *name, struct store_domain *out);
int sq_domain_set_guard(struct store *s, const char *name, const char *guard,
    const char *detail, int64_t checked_at);
int sq_domain_list(struct store *s, struct store_domain **out, size_t *n);
int sq_user_add(struct store *s, const struct store_user *u);
int sq_user_set(struct store *s, const char *login, const struct store_user *u, unsigned fields);
int sq_user_del(struct store *s, const char *login);
int sq_user_get(struct store *s, int by, const char *key, int64_t id, struct store_user *out);
int sq_user_list(struct store *s, struct store_user **out, size_t *n);
int sq_alias_add(struct store *s, const char *name, const char *const *m, size_t n);
int sq_alias_add_members(struct store *s, const char *name, const char *const *m, size_t n);
int sq_alias_del_members(struct store *s, const char *name, const char *const *m, size_t n);
int sq_alias_del(struct store *s, const char *name);
int sq_alias_get(struct store *s, const char *name, struct store_alias *out);
int sq_alias_list(struct store *s, struct store_alias **out, size_t *n);
int sq_relay_add(struct store *s, const struct store_relay *r);
int sq_relay_set(struct store *s, const char *name, const struct store_relay *r,
    unsigned fields);
int sq_relay_del(struct store *s, const char *name);
int sq_relay_get(struct store *s, const char *name, struct store_relay *out);
int sq_relay_list(struct store *s, struct store_relay **out, size_t *n);
int sq_relay_route(struct store *s, const char *domain, struct store_relay *out);
int sq_deliver(struct store *s, const struct store_delivery *d, struct store_delivery_result *res);
int sq_mailbox_list(struct store *s, int64_t user_id, struct store_entry **out, size_t *n);
int sq_entry_get(struct store *s, int64_t user_id, const char *uidl, struct store_entry *out);
int sq_entry_read(struct store *s, const struct store_entry *e, uint64_t offset,
    void *buf, size_t len, size_t *got);
int sq_body_open(sqlite3 *db, int64_t message_id, int write, sqlite3_blob **out);
int sq_reader_open(struct store *s, const struct store_entry *e, struct store_reader **out);
int sq_reader_read(struct store_reader *r, uint64_t offset, void *buf, size_t len, size_t *got);
void sq_reader_close(struct store_reader *r);
int sq_entries_delete(struct store *s, int64_t user_id, const int64_t *uids, size_t n);
int sq_entry_set_flags(struct store *s, int64_t user_id, int64_t uid, unsigned flags);
int sq_queue_list(struct store *s, int64_t id, struct store_queue_entry **out, size_t *n);
int sq_queue_del(struct store *s, int64_t id);
int sq_queue_failed(struct store *s, size_t max, struct store_queue_entry **out, size_t *n);
int sq_queue_hold(struct store *s, int64_t id, int held);
int sq_queue_flush(struct store *s, int64_t id, int64_t now, size_t *n);
int sq_queue_claim(struct store *s, const char *owner, int64_t now, unsigned lease,
    size_t max, struct store_queue_entry **out, size_t *n);
int sq_queue_release_claims(struct store *s, const char *prefix);
int sq_queue_renew(struct store *s, const char *owner, const int64_t *ids, size_t n,
    int64_t until);
int sq_queue_next_due(struct store *s, int64_t *when);
int sq_queue_report(struct store *s, const char *owner, int64_t now,
    const struct store_retry *retry, struct store_attempt *v, size_t n);
int sq_queue_deliver_local(struct store *s, int64_t id, const char *owner, int64_t now);
/* The lowercase domain of a recipient, after its last '@'; "" without one. */
int sq_pop3_lock(struct store *s, int64_t user_id, const char *owner, int64_t now,
    unsigned lease);
int sq_pop3_unlock(struct store *s, int64_t user_id, const char *owner, const char *prefix);
int sq_stats(struct store *s, struct store_stats *out);

#endif
