/*
 * sqlite.c - the SQLite backend: opening, pragmas, schema migrations,
 * the statement table and transactions.  Domain/user/alias statements are
 * in sqlite_dir.c, relays in sqlite_relay.c, messages and mailboxes in
 * sqlite_mail.c, the queue runner's side of the queue in sqlite_queue.c.
 */
#include "store/sqlite_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

/* Step 5: a trigger that moves the directory's version (one event each, as SQLite has it). */
#define SQ_VERSION_TRIGGER(name, event, table) \
	"CREATE TRIGGER " name " AFTER " event " ON " table " BEGIN" \
	"  UPDATE directory_version SET v = v + 1;" \
	" END;"

/*
 * The schema, one migration per step; PRAGMA user_version holds how many
 * have been applied.  Each runs in its own transaction.  Never edit a
 * released step: add a new one.
 */
static const char *const sq_migrations[] = {
	/* 1: everything of SPEC §3. */
	"CREATE TABLE meta ("
	"  key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE domains ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
	"  guard TEXT NOT NULL DEFAULT 'unchecked',"
	"  guard_detail TEXT NOT NULL DEFAULT '',"
	"  forced INTEGER NOT NULL DEFAULT 0,"
	"  checked_at INTEGER NOT NULL DEFAULT 0,"
	"  created_at INTEGER NOT NULL);"
	"CREATE TABLE users ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  login TEXT NOT NULL UNIQUE COLLATE NOCASE,"
	"  extension TEXT UNIQUE,"
	"  name TEXT, email TEXT, password TEXT,"
	"  quota INTEGER NOT NULL DEFAULT 0,"
	"  pop3 INTEGER NOT NULL DEFAULT 1,"
	"  used INTEGER NOT NULL DEFAULT 0,"
	"  messages INTEGER NOT NULL DEFAULT 0,"
	"  created_at INTEGER NOT NULL);"
	"CREATE TABLE aliases ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
	"  created_at INTEGER NOT NULL);"
	"CREATE TABLE alias_members ("
	"  alias_id INTEGER NOT NULL REFERENCES aliases(id) ON DELETE CASCADE,"
	"  member TEXT NOT NULL COLLATE NOCASE,"
	"  position INTEGER NOT NULL,"
	"  PRIMARY KEY (alias_id, member)) WITHOUT ROWID;"
	"CREATE TABLE relays ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
	"  host TEXT NOT NULL,"
	"  port INTEGER NOT NULL DEFAULT 25,"
	"  domains TEXT NOT NULL DEFAULT '',"
	"  is_default INTEGER NOT NULL DEFAULT 0,"
	"  active INTEGER NOT NULL DEFAULT 1,"
	"  tls TEXT NOT NULL DEFAULT 'auto',"
	"  verify INTEGER NOT NULL DEFAULT 1,"
	"  auth TEXT NOT NULL DEFAULT 'auto',"
	"  account TEXT, password TEXT, sender TEXT,"
	"  timeout INTEGER NOT NULL DEFAULT 120,"
	"  chunking INTEGER NOT NULL DEFAULT 1,"
	"  created_at INTEGER NOT NULL);"
	"CREATE TABLE messages ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  qid TEXT,"
	"  sender TEXT NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  body BLOB NOT NULL,"
	"  created_at INTEGER NOT NULL);"
	"CREATE TABLE entries ("
	"  uid INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  message_id INTEGER NOT NULL REFERENCES messages(id),"
	"  kind INTEGER NOT NULL,"
	"  flags INTEGER NOT NULL DEFAULT 0,"
	"  prefix BLOB NOT NULL DEFAULT x'',"
	"  size INTEGER NOT NULL,"
	"  arrived INTEGER NOT NULL);"
	"CREATE INDEX entries_user ON entries(user_id, uid);"
	"CREATE INDEX entries_message ON entries(message_id);"
	"CREATE TABLE queue ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  message_id INTEGER NOT NULL REFERENCES messages(id),"
	"  sender TEXT NOT NULL,"
	"  recipient TEXT NOT NULL,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  next_attempt INTEGER NOT NULL,"
	"  last_error TEXT NOT NULL DEFAULT '',"
	"  held INTEGER NOT NULL DEFAULT 0,"
	"  created_at INTEGER NOT NULL);"
	"CREATE INDEX queue_next ON queue(held, next_attempt);"
	"CREATE INDEX queue_message ON queue(message_id);"
	"CREATE TABLE pop3_locks ("
	"  user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,"
	"  owner TEXT NOT NULL,"
	"  expires INTEGER NOT NULL);"
	/* Mailbox usage follows its entries; a message goes with its last reference. */
	"CREATE TRIGGER entries_ins AFTER INSERT ON entries BEGIN"
	"  UPDATE users SET used = used + NEW.size, messages = messages + 1"
	"   WHERE id = NEW.user_id;"
	" END;"
	"CREATE TRIGGER entries_del AFTER DELETE ON entries BEGIN"
	"  UPDATE users SET used = used - OLD.size, messages = messages - 1"
	"   WHERE id = OLD.user_id;"
	"  DELETE FROM messages WHERE id = OLD.message_id"
	"   AND NOT EXISTS (SELECT 1 FROM entries WHERE message_id = OLD.message_id)"
	"   AND NOT EXISTS (SELECT 1 FROM queue WHERE message_id = OLD.message_id);"
	" END;"
	"CREATE TRIGGER queue_del AFTER DELETE ON queue BEGIN"
	"  DELETE FROM messages WHERE id = OLD.message_id"
	"   AND NOT EXISTS (SELECT 1 FROM entries WHERE message_id = OLD.message_id)"
	"   AND NOT EXISTS (SELECT 1 FROM queue WHERE message_id = OLD.message_id);"
	" END;",

	/*
	 * 2: a queue entry may be a local delivery that waits for room in a
	 * full mailbox (SPEC §6): the mailbox, the entry's own prefix
	 * (Return-Path:, Delivered-To:) and its kind, kept for when it is
	 * delivered.  local_user_id is NULL for outside recipients.
	 */
	"ALTER TABLE queue ADD COLUMN local_user_id INTEGER"
	"  REFERENCES users(id) ON DELETE CASCADE;"
	"ALTER TABLE queue ADD COLUMN prefix BLOB NOT NULL DEFAULT x'';"
	"ALTER TABLE queue ADD COLUMN kind INTEGER NOT NULL DEFAULT 0;"
	"CREATE INDEX queue_local ON queue(local_user_id) WHERE local_user_id IS NOT NULL;",

	/*
	 * 3: relays (SPEC §6).  Their domains get a table of their own: a
	 * domain is listed by at most one active relay (a partial unique
	 * index; each row's active flag follows its relay's through a
	 * trigger), and at most one relay is the default.  port 0 stands for
	 * the TLS mode's default port.  No umbox before this schema wrote a
	 * relay, so the old domains column goes with nothing to carry over.
	 */
	"ALTER TABLE relays DROP COLUMN domains;"
	"CREATE TABLE relay_domains ("
	"  relay_id INTEGER NOT NULL REFERENCES relays(id) ON DELETE CASCADE,"
	"  domain TEXT NOT NULL COLLATE NOCASE,"
	"  active INTEGER NOT NULL,"
	"  PRIMARY KEY (relay_id, domain)) WITHOUT ROWID;"
	"CREATE UNIQUE INDEX relay_domains_active ON relay_domains(domain) WHERE active = 1;"
	"CREATE UNIQUE INDEX relays_default ON relays(is_default) WHERE is_default = 1;"
	"CREATE TRIGGER relays_active AFTER UPDATE OF active ON relays BEGIN"
	"  UPDATE relay_domains SET active = NEW.active WHERE relay_id = NEW.id;"
	" END;",

	/*
	 * 4: what a queue runner needs (SPEC §6).  status: 0 queued, 1 failed
	 * (kept for its bounce); a delivered row is deleted.  A claim is a
	 * lease, claimed_by until claimed_until, so that a crashed runner's
	 * rows are tried again when it runs out.  domain: the recipient's,
	 * lowercase, for claiming one destination's rows together (the
	 * rtrim() keeps what is up to the last '@').  last_attempt: when the
	 * latest attempt ended, 0 for never.
	 */
	"ALTER TABLE queue ADD COLUMN status INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE queue ADD COLUMN claimed_by TEXT;"
	"ALTER TABLE queue ADD COLUMN claimed_until INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE queue ADD COLUMN domain TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE queue ADD COLUMN last_attempt INTEGER NOT NULL DEFAULT 0;"
	"UPDATE queue SET domain = lower(substr(recipient,"
	"  length(rtrim(recipient, replace(recipient, '@', ''))) + 1))"
	"  WHERE instr(recipient, '@') > 0;"
	"DROP INDEX queue_next;"
	"CREATE INDEX queue_due ON queue(status, held, next_attempt);",

	/*
	 * 5: the directory's version, for the daemons' copies of it in
	 * memory (directory.c, sqlite_changes.c): every row changed in a
	 * domain, a user (not its password, nor the counts each delivery
	 * moves), an alias or its members moves it.
	 */
	"CREATE TABLE directory_version (v INTEGER NOT NULL);"
	"INSERT INTO directory_version VALUES (1);"
	SQ_VERSION_TRIGGER("domains_insert_version", "INSERT", "domains")
	SQ_VERSION_TRIGGER("domains_update_version", "UPDATE", "domains")
	SQ_VERSION_TRIGGER("domains_delete_version", "DELETE", "domains")
	SQ_VERSION_TRIGGER("aliases_insert_version", "INSERT", "aliases")
	SQ_VERSION_TRIGGER("aliases_update_version", "UPDATE", "aliases")
	SQ_VERSION_TRIGGER("aliases_delete_version", "DELETE", "aliases")
	SQ_VERSION_TRIGGER("alias_members_insert_version", "INSERT", "alias_members")
	SQ_VERSION_TRIGGER("alias_members_update_version", "UPDATE", "alias_members")
	SQ_VERSION_TRIGGER("alias_members_delete_version", "DELETE", "alias_members")
	SQ_VERSION_TRIGGER("users_insert_version", "INSERT", "users")
	SQ_VERSION_TRIGGER("users_delete_version", "DELETE", "users")
	SQ_VERSION_TRIGGER("users_update_version",
	    "UPDATE OF login, extension, name, email, quota, pop3", "users"),

	/*
	 * 6: a message's bytes in the row's last column.  A message spooled
	 * to a file is inserted as a zeroblob and filled in slices, and
	 * SQLite keeps a zeroblob unexpanded only when nothing follows it in
	 * the row: in body, with created_at after it, storing a message cost
	 * its size in memory.  New messages keep body empty; a message
	 * stored before this step keeps its bytes in body, content NULL
	 * (sq_body_open).  Adding a column rewrites no row.
	 */
	"ALTER TABLE messages ADD COLUMN content BLOB;",
};

static const char *const sq_sql[SQ__COUNT] = {
	[SQ_BEGIN] = "BEGIN IMMEDIATE",
	[SQ_READ_BEGIN] = "BEGIN",
	[SQ_DIRECTORY_VERSION] = "SELECT v FROM directory_version",
	[SQ_COMMIT] = "COMMIT",
	[SQ_ROLLBACK] = "ROLLBACK",
	[SQ_SAVEPOINT] = "SAVEPOINT req",
	[SQ_RELEASE] = "RELEASE req",
	[SQ_ROLLBACK_TO] = "ROLLBACK TO req",

	[SQ_DOMAIN_ADD] = "INSERT INTO domains (name, guard, guard_detail, forced,"
	    " checked_at, created_at) VALUES (lower(?1), ?2, ?3, ?4, ?5, ?6)",
	[SQ_DOMAIN_DEL] = "DELETE FROM domains WHERE name = ?1",
	[SQ_DOMAIN_GET] = "SELECT id, name, guard, guard_detail, forced, checked_at,"
	    " created_at FROM domains WHERE name = ?1",
	[SQ_DOMAIN_GUARD] = "UPDATE domains SET guard = ?2, guard_detail = ?3,"
	    " checked_at = ?4 WHERE name = ?1",
	[SQ_DOMAIN_LIST] = "SELECT id, name, guard, guard_detail, forced, checked_at,"
	    " created_at FROM domains ORDER BY name",

	[SQ_USER_ADD] = "INSERT INTO users (login, extension, name, email, password,"
	    " quota, pop3, created_at) VALUES (lower(?1), ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[SQ_USER_DEL] = "DELETE FROM users WHERE login = ?1",
#define SQ_USER_COLS "SELECT id, login, extension, name, email, password, quota," \
	    " pop3, created_at, used, messages FROM users "
	[SQ_USER_BY_LOGIN] = SQ_USER_COLS "WHERE login = ?1",
	[SQ_USER_BY_EXT] = SQ_USER_COLS "WHERE extension = ?1",
	[SQ_USER_BY_ID] = SQ_USER_COLS "WHERE id = ?1",
	[SQ_USER_LIST] = SQ_USER_COLS "ORDER BY login",
	[SQ_USER_SET_EXT] = "UPDATE users SET extension = ?2 WHERE login = ?1",
	[SQ_USER_SET_NAME] = "UPDATE users SET name = ?2 WHERE login = ?1",
	[SQ_USER_SET_EMAIL] = "UPDATE users SET email = ?2 WHERE login = ?1",
	[SQ_USER_SET_QUOTA] = "UPDATE users SET quota = ?2 WHERE login = ?1",
	[SQ_USER_SET_POP3] = "UPDATE users SET pop3 = ?2 WHERE login = ?1",
	[SQ_USER_SET_PASSWORD] = "UPDATE users SET password = ?2 WHERE login = ?1",

	[SQ_ALIAS_ADD] = "INSERT INTO aliases (name, created_at) VALUES (lower(?1), ?2)",
	[SQ_ALIAS_ID] = "SELECT id, name FROM aliases WHERE name = ?1",
	[SQ_ALIAS_DEL] = "DELETE FROM aliases WHERE name = ?1",
	[SQ_ALIAS_LIST] = "SELECT id, name FROM aliases ORDER BY name",
	[SQ_MEMBER_ADD] = "INSERT OR IGNORE INTO alias_members (alias_id, member, position)"
	    " VALUES (?1, ?2, ?3)",
	[SQ_MEMBER_DEL] = "DELETE FROM alias_members WHERE alias_id = ?1 AND member = ?2",
	[SQ_MEMBER_LIST] = "SELECT member FROM alias_members WHERE alias_id = ?1"
	    " ORDER BY position",
	[SQ_MEMBER_NEXTPOS] = "SELECT coalesce(max(position), 0) + 1 FROM alias_members"
	    " WHERE alias_id = ?1",

#define SQ_RELAY_COLS "SELECT r.id, r.name, r.host, r.port, r.is_default, r.active, r.tls," \
	    " r.verify, r.auth, r.account, r.password, r.sender, r.timeout, r.chunking," \
	    " r.created_at FROM relays r "
	[SQ_RELAY_ADD] = "INSERT INTO relays (name, host, port, is_default, active, tls, verify,"
	    " auth, account, password, sender, timeout, chunking, created_at)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
	[SQ_RELAY_UPDATE] = "UPDATE relays SET host = ?2, port = ?3, is_default = ?4, active = ?5,"
	    " tls = ?6, verify = ?7, auth = ?8, account = ?9, password = ?10, sender = ?11,"
	    " timeout = ?12, chunking = ?13 WHERE id = ?1",
	[SQ_RELAY_CLEAR_DEFAULT] = "UPDATE relays SET is_default = 0 WHERE is_default = 1"
	    " AND id <> ?1",
	[SQ_RELAY_DEL] = "DELETE FROM relays WHERE name = ?1",
	[SQ_RELAY_GET] = SQ_RELAY_COLS "WHERE r.name = ?1",
	[SQ_RELAY_LIST] = SQ_RELAY_COLS "ORDER BY r.name",
	[SQ_RELAY_BY_DOMAIN] = SQ_RELAY_COLS "JOIN relay_domains d ON d.relay_id = r.id"
	    " WHERE d.domain = ?1 AND d.active = 1 AND r.active = 1",
	[SQ_RELAY_DEFAULT] = SQ_RELAY_COLS "WHERE r.is_default = 1 AND r.active = 1",
	[SQ_RELAY_DOMAINS] = "SELECT domain FROM relay_domains WHERE relay_id = ?1 ORDER BY domain",
	[SQ_RELAY_DOMAIN_ADD] = "INSERT OR IGNORE INTO relay_domains (relay_id, domain, active)"
	    " VALUES (?1, ?2, ?3)",
	[SQ_RELAY_DOMAINS_DEL] = "DELETE FROM relay_domains WHERE relay_id = ?1",
	[SQ_RELAY_DOMAIN_TAKEN] = "SELECT r.name FROM relay_domains d JOIN relays r"
	    " ON r.id = d.relay_id WHERE d.domain = ?1 AND d.active = 1 AND d.relay_id <> ?2",

	[SQ_MESSAGE_SIZE] = "SELECT size FROM messages WHERE id = ?1",
	[SQ_MESSAGE_ADD] = "INSERT INTO messages (sender, size, body, created_at, qid, content)"
	    " VALUES (?1, ?2, x'', ?4, ?5, ?3)",
	[SQ_ENTRY_ADD] = "INSERT INTO entries (user_id, message_id, kind, prefix, size, arrived)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[SQ_QUEUE_ADD] = "INSERT INTO queue (message_id, sender, recipient, next_attempt,"
	    " created_at, kind, domain) VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6)",
	[SQ_QUEUE_ADD_LOCAL] = "INSERT INTO queue (message_id, sender, recipient, next_attempt,"
	    " created_at, kind, local_user_id, prefix, last_error, domain)"
	    " VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9)",
	[SQ_USER_USAGE] = "SELECT login, quota, used FROM users WHERE id = ?1",
#define SQ_ENTRY_COLS "SELECT e.uid, e.user_id, e.message_id, e.kind, e.flags, e.size," \
	    " e.arrived, m.sender FROM entries e JOIN messages m ON m.id = e.message_id "
	[SQ_ENTRY_LIST] = SQ_ENTRY_COLS "WHERE e.user_id = ?1 ORDER BY e.uid",
	[SQ_ENTRY_GET] = SQ_ENTRY_COLS "WHERE e.user_id = ?1 AND e.uid = ?2",
	[SQ_ENTRY_PREFIX] = "SELECT prefix FROM entries WHERE uid = ?1",
	[SQ_MESSAGE_EXISTS] = "SELECT 1 FROM messages WHERE id = ?1",
	/* ?2: a JSON array of uids, so that a QUIT's deletions are one statement. */
	[SQ_ENTRY_DEL] = "DELETE FROM entries WHERE user_id = ?1"
	    " AND uid IN (SELECT value FROM json_each(?2))",
	[SQ_ENTRY_FLAGS] = "UPDATE entries SET flags = ?3 WHERE user_id = ?1 AND uid = ?2",

#define SQ_QUEUE_COLS_FROM "SELECT q.id, q.message_id, m.qid, q.sender, q.recipient," \
	    " q.domain, q.kind, q.local_user_id, m.size, q.attempts, q.next_attempt," \
	    " q.last_attempt, q.last_error, q.status, q.held, q.claimed_by, q.claimed_until," \
	    " q.created_at FROM "
#define SQ_QUEUE_JOIN " JOIN messages m ON m.id = q.message_id "
/*
 * A full mailbox's row q (of message m), waiting for room (its last try
 * found none: a row whose last try failed otherwise keeps its schedule),
 * whose mailbox has room for it now.
 */
#define SQ_LOCAL_ROOM " AND q.last_error = 'mailbox full' AND EXISTS (SELECT 1 FROM users u" \
	" WHERE u.id = q.local_user_id" \
	" AND (u.quota = 0 OR u.used + m.size + length(q.prefix) <= u.quota))"
#define SQ_QUEUE_COLS SQ_QUEUE_COLS_FROM "queue q" SQ_QUEUE_JOIN
	[SQ_QUEUE_LIST] = SQ_QUEUE_COLS "ORDER BY q.id",
	[SQ_QUEUE_GET] = SQ_QUEUE_COLS "WHERE q.id = ?1",
	/* Not while another row of the message is being tried: one bounce per message. */
	[SQ_QUEUE_FAILED] = SQ_QUEUE_COLS "WHERE q.status = 1 AND q.held = 0"
	    " AND NOT EXISTS (SELECT 1 FROM queue o WHERE o.message_id = q.message_id"
	    " AND o.status = 0 AND o.held = 0 AND (o.claimed_until > ?2 OR o.next_attempt <= ?2))"
	    " ORDER BY q.message_id, q.id LIMIT ?1",
	[SQ_QUEUE_DEL] = "DELETE FROM queue WHERE id = ?1",
	[SQ_QUEUE_HOLD] = "UPDATE queue SET held = ?2 WHERE id = ?1",
	[SQ_QUEUE_EXISTS] = "SELECT 1 FROM queue WHERE id = ?1",
	[SQ_QUEUE_FLUSH_ONE] = "UPDATE queue SET next_attempt = min(next_attempt, ?2)"
	    " WHERE id = ?1 AND status = 0 AND held = 0",
	[SQ_QUEUE_FLUSH_ALL] = "UPDATE queue SET next_attempt = min(next_attempt, ?1)"
	    " WHERE status = 0 AND held = 0",
	/*
	 * Due by the clock (a range of queue_due), or not yet but a full
	 * mailbox's row whose mailbox has room now (the few rows of the
	 * partial index queue_local); ordered by message, domain, id:
	 * result columns 2, 6 and 1.
	 */
	[SQ_QUEUE_CLAIMABLE] = SQ_QUEUE_COLS_FROM "queue q" SQ_QUEUE_JOIN
	    "WHERE q.status = 0 AND q.held = 0 AND q.next_attempt <= ?1 AND q.claimed_until <= ?1"
	    " UNION ALL " SQ_QUEUE_COLS_FROM "queue q INDEXED BY queue_local" SQ_QUEUE_JOIN
	    "WHERE q.local_user_id IS NOT NULL AND q.status = 0 AND q.held = 0"
	    " AND q.next_attempt > ?1 AND q.claimed_until <= ?1" SQ_LOCAL_ROOM
	    " ORDER BY 2, 6, 1 LIMIT ?2",
	[SQ_QUEUE_CLAIM] = "UPDATE queue SET claimed_by = ?2, claimed_until = ?3 WHERE id = ?1",
	[SQ_QUEUE_RENEW] = "UPDATE queue SET claimed_until = ?3 WHERE id = ?1 AND claimed_by = ?2",
	[SQ_QUEUE_UNCLAIM_PREFIX] = "UPDATE queue SET claimed_by = NULL, claimed_until = 0"
	    " WHERE claimed_by IS NOT NULL AND substr(claimed_by, 1, length(?1)) = ?1",
	/*
	 * When the runner should next claim: the earliest row due by the
	 * clock, or a full mailbox's row as soon as its mailbox has room
	 * (and no claim holds it), whatever its next attempt says.
	 */
	[SQ_QUEUE_NEXT_DUE] = "SELECT min(due) FROM ("
	    "SELECT min(max(next_attempt, claimed_until)) AS due FROM queue"
	    " WHERE status = 0 AND held = 0"
	    " UNION ALL SELECT min(q.claimed_until) FROM queue q INDEXED BY queue_local"
	    " JOIN messages m ON m.id = q.message_id"
	    " WHERE q.local_user_id IS NOT NULL AND q.status = 0 AND q.held = 0" SQ_LOCAL_ROOM ")",
	[SQ_QUEUE_STATE] = "SELECT attempts, created_at, claimed_by, status FROM queue"
	    " WHERE id = ?1",
	[SQ_QUEUE_ATTEMPT] = "UPDATE queue SET attempts = ?2, last_error = ?3, next_attempt = ?4,"
	    " last_attempt = ?5, status = ?6, claimed_by = NULL, claimed_until = 0 WHERE id = ?1",
	[SQ_QUEUE_LOCAL] = "SELECT q.local_user_id, q.message_id, q.kind, q.prefix, q.claimed_by,"
	    " q.status, m.size, u.quota, u.used, u.login FROM queue q"
	    " JOIN messages m ON m.id = q.message_id LEFT JOIN users u ON u.id = q.local_user_id"
	    " WHERE q.id = ?1",

	[SQ_LOCK] = "INSERT INTO pop3_locks (user_id, owner, expires) VALUES (?1, ?2, ?3)"
	    " ON CONFLICT (user_id) DO UPDATE SET owner = excluded.owner,"
	    " expires = excluded.expires"
	    " WHERE pop3_locks.expires < ?4 OR pop3_locks.owner = excluded.owner",
	[SQ_UNLOCK] = "DELETE FROM pop3_locks WHERE user_id = ?1 AND owner = ?2",
	[SQ_UNLOCK_PREFIX] = "DELETE FROM pop3_locks WHERE substr(owner, 1, length(?1)) = ?1",

	[SQ_STATS] = "SELECT (SELECT count(*) FROM domains), (SELECT count(*) FROM users),"
	    " (SELECT count(*) FROM aliases), (SELECT count(*) FROM relays),"
	    " (SELECT count(*) FROM messages), (SELECT coalesce(sum(size), 0) FROM messages),"
	    " (SELECT count(*) FROM entries), (SELECT count(*) FROM queue WHERE status = 0),"
	    " (SELECT count(*) FROM queue WHERE status = 1)",
	[SQ_FREE_PAGES] = "SELECT f.freelist_count * p.page_size"
	    " FROM pragma_freelist_count() f, pragma_page_size() p",
};

struct sq *
sq_of(struct store *s)
{
	return s->impl;
}

sqlite3_stmt *
sq_stmt(struct store *s, enum sq_stmt id)
{
	struct sq *q = sq_of(s);
	sqlite3_stmt *st = q->st[id];

	if (st == NULL) {
		int rc = sqlite3_prepare_v3(q->db, sq_sql[id], -1,
		    SQLITE_PREPARE_PERSISTENT, &q->st[id], NULL);
		if (rc != SQLITE_OK)
			fatal("store: cannot prepare statement %d: %s", (int)id,
			    sqlite3_errmsg(q->db));
		return q->st[id];
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

/*
 * SQLite says "disk I/O error" for most of what the system refused; the
 * system's own reason goes with it, and no room on the disk (a -shm or
 * WAL that could not grow, say) is a full disk whatever SQLite called it.
 */
int
sq_fail(struct store *s, int rc, const char *what)
{
	struct sq *q = sq_of(s);
	const char *msg = q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc);
	int sys = q->db ? sqlite3_system_errno(q->db) : 0;
	int status;

	switch (rc & 0xff) {
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
		if (sys == ENOSPC || sys == EDQUOT)
			status = STORE_FULL;
		else
			status = STORE_ERROR;
		if (sys != 0)
			return store_fail(s, status, "%s: %s (%s)", what, msg, strerror(sys));
		break;
	case SQLITE_FULL:
		status = STORE_FULL;
		break;
	case SQLITE_CONSTRAINT:
		status = (rc == SQLITE_CONSTRAINT_UNIQUE ||
		    rc == SQLITE_CONSTRAINT_PRIMARYKEY) ? STORE_EXISTS : STORE_INVALID;
		break;
	case SQLITE_TOOBIG:
		status = STORE_INVALID;
		break;
	default:
		status = STORE_ERROR;
	}
	return store_fail(s, status, "%s: %s", what, msg);
}

int
sq_exec_stmt(struct store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		int status = sq_fail(s, rc, what);
		sqlite3_reset(st);
		return status;
	}
	sqlite3_reset(st);
	return STORE_OK;
}

char *
sq_col_strdup(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	return t ? xstrdup((const char *)t) : NULL;
}

void
sq_bind_text_or_null(sqlite3_stmt *st, int idx, const char *v)
{
	if (v)
		sqlite3_bind_text(st, idx, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, idx);
}

/*
 * A write of the synchronous API runs in its own BEGIN IMMEDIATE..COMMIT,
 * unless the writer thread already opened a transaction around it.
 */
int
sq_txn_begin(struct store *s, int *own)
{
	struct sq *q = sq_of(s);

	*own = 0;
	if (q->in_txn)
		return STORE_OK;
	if (sq_exec_stmt(s, sq_stmt(s, SQ_BEGIN), "begin") != STORE_OK)
		return STORE_ERROR;
	*own = 1;
	return STORE_OK;
}

int
sq_txn_end(struct store *s, int own, int status)
{
	if (!own)
		return status;
	if (status == STORE_OK) {
		status = sq_exec_stmt(s, sq_stmt(s, SQ_COMMIT), "commit");
		if (status == STORE_OK)
			return STORE_OK;
	}
	sqlite3_exec(sq_of(s)->db, "ROLLBACK", NULL, NULL, NULL);
	return status;
}

static int
sq_begin(struct store *s)
{
	int status = sq_exec_stmt(s, sq_stmt(s, SQ_BEGIN), "begin");

	if (status == STORE_OK)
		sq_of(s)->in_txn = 1;
	return status;
}

static int
sq_commit(struct store *s)
{
	int status = sq_exec_stmt(s, sq_stmt(s, SQ_COMMIT), "commit");

	if (status != STORE_OK)
		sqlite3_exec(sq_of(s)->db, "ROLLBACK", NULL, NULL, NULL);
	sq_of(s)->in_txn = 0;
	return status;
}

static void
sq_rollback(struct store *s)
{
	sqlite3_exec(sq_of(s)->db, "ROLLBACK", NULL, NULL, NULL);
	sq_of(s)->in_txn = 0;
}

/*
 * A deferred transaction: its first read takes the WAL snapshot that
 * every later read in it shares.
 */
static void
sq_read_begin(struct store *s)
{
	struct sq *q = sq_of(s);

	if (!q->in_txn && !q->in_read &&
	    sq_exec_stmt(s, sq_stmt(s, SQ_READ_BEGIN), "begin") == STORE_OK)
		q->in_read = 1;
}

static void
sq_read_end(struct store *s)
{
	struct sq *q = sq_of(s);

	if (!q->in_read)
		return;
	q->in_read = 0;
	if (sq_exec_stmt(s, sq_stmt(s, SQ_COMMIT), "commit") != STORE_OK)
		sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
}

static int
sq_savepoint(struct store *s)
{
	return sq_exec_stmt(s, sq_stmt(s, SQ_SAVEPOINT), "savepoint");
}

/* Keep (ok) or undo one request's work; the savepoint is gone either way. */
static int
sq_release(struct store *s, int ok)
{
	if (!ok) {
		int status = sq_exec_stmt(s, sq_stmt(s, SQ_ROLLBACK_TO), "rollback to");
		if (status != STORE_OK)
			return status;
	}
	return sq_exec_stmt(s, sq_stmt(s, SQ_RELEASE), "release");
}

static int
sq_pragma(struct store *s, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(sq_of(s)->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		int status = store_fail(s, STORE_ERROR, "%s: %s", sql, msg ? msg : "?");
		sqlite3_free(msg);
		return status;
	}
	return STORE_OK;
}

static int
sq_user_version(struct store *s)
{
	sqlite3_stmt *st;
	int v = -1;

	if (sqlite3_prepare_v2(sq_of(s)->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

/*
 * Bring the schema forward one step at a time, each in its own
 * transaction together with the new user_version, so a crash leaves
 * either the old or the new version.  A database from a newer umbox
 * is refused rather than guessed at.
 */
static int
sq_migrate(struct store *s, int readonly)
{
	struct sq *q = sq_of(s);
	int have = sq_user_version(s), want = (int)ARRAY_SIZE(sq_migrations);

	if (have < 0)
		return store_fail(s, STORE_ERROR, "cannot read schema version: %s",
		    sqlite3_errmsg(q->db));
	if (have > want)
		return store_fail(s, STORE_INVALID, "database schema version %d is newer"
		    " than this umbox understands (%d); upgrade umbox", have, want);
	if (have < want && readonly)
		return store_fail(s, STORE_INVALID, "database schema version %d needs"
		    " migrating to %d; open it read-write once", have, want);
	while (have < want) {
		char *sql, *msg = NULL;
		int rc;

		if (sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK)
			goto fail;
		/* Someone else may have migrated while we waited for the lock. */
		if ((have = sq_user_version(s)) >= want) {
			sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL);
			break;
		}
		sql = xasprintf("%s; PRAGMA user_version = %d;", sq_migrations[have], have + 1);
		rc = sqlite3_exec(q->db, sql, NULL, NULL, &msg);
		free(sql);
		if (rc == SQLITE_OK && have == 0) {
			uint32_t epoch;
			char *ins;

			/* The UIDL prefix: tells this store's entries from a recreated one's. */
			if (getrandom(&epoch, sizeof(epoch), 0) != sizeof(epoch))
				epoch = (uint32_t)time(NULL);
			ins = xasprintf("INSERT INTO meta VALUES ('uidl_epoch', '%08x')", epoch);
			rc = sqlite3_exec(q->db, ins, NULL, NULL, &msg);
			free(ins);
		}
		if (rc != SQLITE_OK || sqlite3_exec(q->db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
			sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
			goto fail;
		}
		have++;
		continue;
fail:
		{
			int status = store_fail(s, STORE_ERROR, "schema migration to version %d: %s",
			    have + 1, msg ? msg : sqlite3_errmsg(q->db));
			sqlite3_free(msg);
			return status;
		}
	}
	return STORE_OK;
}

static int
sq_load_epoch(struct store *s)
{
	struct sq *q = sq_of(s);
	sqlite3_stmt *st;
	int status = STORE_ERROR;

	if (sqlite3_prepare_v2(q->db, "SELECT value FROM meta WHERE key = 'uidl_epoch'",
	    -1, &st, NULL) != SQLITE_OK)
		return sq_fail(s, sqlite3_errcode(q->db), "read uidl epoch");
	if (sqlite3_step(st) == SQLITE_ROW) {
		q->epoch = (uint32_t)strtoul((const char *)sqlite3_column_text(st, 0), NULL, 16);
		status = STORE_OK;
	} else
		store_fail(s, STORE_ERROR, "store has no uidl epoch");
	sqlite3_finalize(st);
	return status;
}

/*
 * The store holds relay passwords as given (they must be sent to the
 * relay), so only its owner may read it: mode 0600.  A new database is
 * created 0600 before SQLite opens it, and SQLite gives the -wal and
 * -shm files it creates the database's mode.  A store made by an older
 * umbox (0644 under the usual umask) is tightened, with its -wal and
 * -shm, when it is next opened for writing.  Failing to tighten (not the
 * owner) is not fatal: the data directory is 0750 to begin with.
 */
static void
sq_private_files(const char *path, int create)
{
	static const char *const suffix[] = { "", "-wal", "-shm" };

	if (create) {
		int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

		if (fd >= 0)
			close(fd);
	}
	for (size_t i = 0; i < ARRAY_SIZE(suffix); i++) {
		char *p = xasprintf("%s%s", path, suffix[i]);
		struct stat st;

		if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0177) != 0)
			(void)chmod(p, st.st_mode & 0600);
		free(p);
	}
}

/*
 * Open and configure a connection as STYLE.md says: extended result codes
 * and a busy timeout first, then WAL (checking the mode we got),
 * synchronous=FULL because acknowledgements depend on it, foreign keys,
 * and no trust in the schema's functions.
 */
/*
 * Before the library's first use: no allocation statistics.  They take a
 * mutex shared by every connection on each malloc, and the daemons'
 * writer and loops would meet on it; nothing here reads them.
 *
 * The writer runs each request in a savepoint, so SQLite keeps the first
 * copy of every page a request changes in a statement journal, a temp
 * file once past 64 KiB: a QUIT that deletes a few hundred messages wrote
 * each page a second time there, most of the writer's pwrites.  Up to
 * SQ_STMTJRNL_SPILL it stays in memory (and is dropped at each request's
 * end); a larger request still spills, and SQLite then writes the kept
 * part in one call, which only the VFS below can take (sqlite_vfs.c).
 *
 * Connections open through the VFS that gathers the WAL's writes
 * (sqlite_vfs.c).  Without it the spill above would fail large requests
 * as a full disk, so a store is not opened at all should it not register.
 */
#define SQ_STMTJRNL_SPILL	(4 << 20)
static const char *sq_vfs;
static void
sq_configure(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, SQ_STMTJRNL_SPILL);
	sq_vfs = sq_vfs_register();
}

static int
sq_open(struct store *s, const struct store_config *cfg, int flags)
{
	const char *path = cfg->path;
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct sq *q = xcalloc(1, sizeof(*q));
	int oflags, rc, status;
	sqlite3_stmt *st;

	pthread_once(&once, sq_configure);
	s->impl = q;
	q->path = xstrdup(path);
	if (sq_vfs == NULL)
		return store_fail(s, STORE_ERROR, "cannot open %s: SQLite's file layer for umbox"
		    " could not be registered", path);
	if (!(flags & STORE_READONLY))
		sq_private_files(path, flags & STORE_CREATE);
	oflags = (flags & STORE_READONLY) ? SQLITE_OPEN_READONLY :
	    SQLITE_OPEN_READWRITE | ((flags & STORE_CREATE) ? SQLITE_OPEN_CREATE : 0);
	rc = sqlite3_open_v2(path, &q->db, oflags | SQLITE_OPEN_NOMUTEX, sq_vfs);
	if (rc != SQLITE_OK) {
		status = store_fail(s, rc == SQLITE_CANTOPEN ? STORE_NOTFOUND : STORE_ERROR,
		    "cannot open %s: %s", path, q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
		return status;
	}
	sqlite3_extended_result_codes(q->db, 1);
	sqlite3_busy_timeout(q->db, 10000);
	/* SQLite opens a file it may not write read-only, and fails at the first write. */
	if (!(flags & STORE_READONLY) && sqlite3_db_readonly(q->db, "main") == 1)
		return store_fail(s, STORE_ERROR, "%s is read-only to this user (uid %u): run as"
		    " the user the store belongs to (the daemons' [general] user), or as root",
		    path, (unsigned)geteuid());

	if (!(flags & STORE_READONLY)) {
		if (sqlite3_prepare_v2(q->db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK)
			return sq_fail(s, sqlite3_errcode(q->db), path);
		/*
		 * Switching a new database to WAL needs it to itself; another
		 * process opening it at the same moment can make this fail at
		 * once, without the busy handler: try again for a while.
		 */
		for (int tries = 0; ((rc = sqlite3_step(st)) & 0xff) == SQLITE_BUSY && tries < 100; tries++) {
			sqlite3_reset(st);
			usleep(50000);
		}
		if (rc != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
			sqlite3_finalize(st);
			return store_fail(s, STORE_ERROR, "%s: cannot switch to WAL mode: %s",
			    path, sqlite3_errmsg(q->db));
		}
		sqlite3_finalize(st);
	}
	/*
	 * Debian's SQLite zeroes every freed page (SECURE_DELETE), so deleting
	 * a mailbox wrote each message's pages once more.  FAST zeroes what is
	 * written anyway; freed pages are overwritten when reused.
	 */
	if ((status = sq_pragma(s, "PRAGMA synchronous=FULL")) != STORE_OK ||
	    (status = sq_pragma(s, "PRAGMA secure_delete=FAST")) != STORE_OK ||
	    (status = sq_pragma(s, "PRAGMA foreign_keys=ON")) != STORE_OK ||
	    (status = sq_pragma(s, "PRAGMA trusted_schema=OFF")) != STORE_OK)
		return status;
	if ((status = sq_migrate(s, flags & STORE_READONLY)) != STORE_OK)
		return status;
	if (!(flags & STORE_READONLY))
		sq_watch_directory(q);
	return sq_load_epoch(s);
}

static void
sq_close(struct store *s)
{
	struct sq *q = sq_of(s);

	if (q == NULL)
		return;
	for (size_t i = 0; i < SQ__COUNT; i++)
		sqlite3_finalize(q->st[i]);
	sqlite3_close(q->db);
	free(q->path);
	free(q);
	s->impl = NULL;
}

static int
sq_directory_version(struct store *s, int64_t *v)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_DIRECTORY_VERSION);
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? STORE_OK : sq_fail(s, rc, "directory version");
}

static int
sq_schema_version(struct store *s)
{
	return sq_user_version(s);
}

int
sq_stats(struct store *s, struct store_stats *out)
{
	sqlite3_stmt *st = sq_stmt(s, SQ_STATS);
	int rc = sqlite3_step(st);

	if (rc != SQLITE_ROW)
		return sq_fail(s, rc, "stats");
	out->domains = (uint64_t)sqlite3_column_int64(st, 0);
	out->users = (uint64_t)sqlite3_column_int64(st, 1);
	out->aliases = (uint64_t)sqlite3_column_int64(st, 2);
	out->relays = (uint64_t)sqlite3_column_int64(st, 3);
	out->messages = (uint64_t)sqlite3_column_int64(st, 4);
	out->message_bytes = (uint64_t)sqlite3_column_int64(st, 5);
	out->entries = (uint64_t)sqlite3_column_int64(st, 6);
	out->queued = (uint64_t)sqlite3_column_int64(st, 7);
	out->queue_failed = (uint64_t)sqlite3_column_int64(st, 8);
	sqlite3_reset(st);
	return STORE_OK;
}

/* store_check(): WAL (readers never wait for the writer) and the file's integrity. */
static int
sq_check(struct store *s, store_check_fn *fn, void *arg)
{
	struct sq *q = sq_of(s);
	sqlite3_stmt *st;
	char text[256];
	int rc;

	if (sqlite3_prepare_v2(q->db, "PRAGMA journal_mode", -1, &st, NULL) != SQLITE_OK)
		return sq_fail(s, sqlite3_errcode(q->db), "check");
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *mode = (const char *)sqlite3_column_text(st, 0);

		fn(arg, "journal", mode && strcmp(mode, "wal") == 0 ? STORE_CHECK_OK :
		    STORE_CHECK_FAILED, mode ? mode : "unknown");
	}
	sqlite3_finalize(st);
	fn(arg, "synchronous", STORE_CHECK_OK, "full");
	if (sqlite3_prepare_v2(q->db, "PRAGMA quick_check", -1, &st, NULL) != SQLITE_OK)
		return sq_fail(s, sqlite3_errcode(q->db), "check");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *res = (const char *)sqlite3_column_text(st, 0);

		snprintf(text, sizeof(text), "%s", res ? res : "");
		fn(arg, "integrity", strcmp(text, "ok") == 0 ? STORE_CHECK_OK : STORE_CHECK_FAILED,
		    text);
	} else
		fn(arg, "integrity", STORE_CHECK_FAILED, sqlite3_errmsg(q->db));
	sqlite3_finalize(st);
	return STORE_OK;
}

const struct store_backend store_sqlite_backend = {
	.name = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.schema_version = sq_schema_version,
	.begin = sq_begin,
	.commit = sq_commit,
	.read_begin = sq_read_begin,
	.read_end = sq_read_end,
	.rollback = sq_rollback,
	.savepoint = sq_savepoint,
	.release = sq_release,
	.domain_add = sq_domain_add,
	.domain_del = sq_domain_del,
	.domain_get = sq_domain_get,
	.domain_set_guard = sq_domain_set_guard,
	.domain_list = sq_domain_list,
	.user_add = sq_user_add,
	.user_set = sq_user_set,
	.user_del = sq_user_del,
	.user_get = sq_user_get,
	.user_list = sq_user_list,
	.alias_add = sq_alias_add,
	.alias_add_members = sq_alias_add_members,
	.alias_del_members = sq_alias_del_members,
	.alias_del = sq_alias_del,
	.alias_get = sq_alias_get,
	.alias_list = sq_alias_list,
	.relay_add = sq_relay_add,
	.relay_set = sq_relay_set,
	.relay_del = sq_relay_del,
	.relay_get = sq_relay_get,
	.relay_list = sq_relay_list,
	.relay_route = sq_relay_route,
	.deliver = sq_deliver,
	.mailbox_list = sq_mailbox_list,
	.entry_get = sq_entry_get,
	.entry_read = sq_entry_read,
	.reader_open = sq_reader_open,
	.reader_read = sq_reader_read,
	.reader_close = sq_reader_close,
	.entries_delete = sq_entries_delete,
	.entry_set_flags = sq_entry_set_flags,
	.queue_list = sq_queue_list,
	.queue_del = sq_queue_del,
	.queue_failed = sq_queue_failed,
	.queue_hold = sq_queue_hold,
	.queue_flush = sq_queue_flush,
	.queue_claim = sq_queue_claim,
	.queue_release_claims = sq_queue_release_claims,
	.queue_renew = sq_queue_renew,
	.queue_next_due = sq_queue_next_due,
	.queue_report = sq_queue_report,
	.queue_deliver_local = sq_queue_deliver_local,
	.pop3_lock = sq_pop3_lock,
	.pop3_unlock = sq_pop3_unlock,
	.stats = sq_stats,
	.directory_version = sq_directory_version,
	.directory_changes = sq_directory_changes,
	.check = sq_check,
};
