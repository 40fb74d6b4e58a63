/*
 * store.h - umbox's persistent state: domains, users, aliases, relays,
 * messages, mailbox entries, the outbound queue and POP3 locks.
 *
 * Callers never see SQL.  Two ways in:
 *
 *   - the synchronous API below (struct store): for umboxctl, tests, and
 *     the daemons' reads.  Writes commit with synchronous=FULL before they
 *     return.
 *   - the asynchronous commit path (struct store_writer): a writer thread
 *     that groups many requests into one transaction and one fsync and
 *     reports each request's result back on the caller's libevent loop.
 *
 * All functions return STORE_OK (0) or a negative enum store_status; the
 * message for the last failure on a handle is store_errmsg().
 */
#ifndef UMBOX_STORE_H
#define UMBOX_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util.h"
#include "lib/completion.h"

struct event_base;
struct store;
struct store_writer;

enum store_status {
	STORE_OK = 0,
	STORE_ERROR = -1,	/* database or I/O error: a temporary failure */
	STORE_NOTFOUND = -2,
	STORE_EXISTS = -3,	/* unique name already taken */
	STORE_FULL = -4,	/* disk full: temporary */
	STORE_QUOTA = -5,	/* a mailbox would exceed its quota */
	STORE_INVALID = -6,	/* a value the store refuses */
	STORE_LOCKED = -7,	/* a POP3 mailbox lock held by someone else */
};

#define STORE_CREATE	0x01	/* create the database file if missing */
#define STORE_READONLY	0x02

enum store_backend_kind {
	STORE_BACKEND_SQLITE = 0,
	STORE_BACKEND_POSTGRESQL,
};

/* Which store to open ([store] in umbox.conf). */
struct store_config {
	enum store_backend_kind backend;
	const char *path;	/* sqlite: the database file, DATA_DIR/store.db */
	const char *dsn;	/* postgresql: a libpq conninfo */
	const char *node_id;	/* postgresql: this node's name */
	/* postgresql: where the dsn's host names are looked up ([dns] servers; NULL: resolv.conf) */
	const struct config_endpoints *dns_servers;
};

/* An SQLite store at path, as a config for store_open(). */
#define STORE_SQLITE(p)	(&(const struct store_config){ .backend = STORE_BACKEND_SQLITE, .path = (p) })

struct umbox_config;
struct config_endpoints;
/*
 * The store a umbox.conf names.  For SQLite, *path is set to the file's
 * name, which out points to: free it after the last store_open().
 */
void store_config_of(const struct umbox_config *cfg, struct store_config *out, char **path);
/*
 * How long (seconds) a daemon's session waits for the store to answer a
 * read or a commit before it gives its client a temporary error: a
 * PostgreSQL server that stopped answering (frozen, cut off) must not
 * hold sessions for ever, and a local disk is given longer.  A commit so
 * abandoned may still be stored later, and the client's retry then
 * delivers the message twice: never zero times.
 */
#define STORE_WAIT_REMOTE	5
#define STORE_WAIT_LOCAL	30
/*
 * The commit at the end of a message, on either backend: long enough for
 * PostgreSQL's writer to reconnect and learn what a batch whose answer
 * was lost did (PG_LOST_COMMIT_WAIT), so that the client hears the truth
 * rather than a 451 for a message that was stored.
 */
#define STORE_WAIT_COMMIT	30
unsigned store_wait_limit(const struct umbox_config *cfg);
/*
 * This daemon's name at the start of the owners of the POP3 locks and
 * queue claims it takes ("NAME:pid..."), and of those a restart may
 * drop as an earlier process's: on PostgreSQL the node's name, the one
 * thing no other node shares; on SQLite the host name.
 */
const char *store_owner_name(const struct umbox_config *cfg);
/* What to call the store in messages: its file, or the database's name. */
const char *store_config_name(const struct store_config *cfg);

/*
 * Open the store (SQLite: set the pragmas; both: migrate the schema
 * forward, refusing a newer one).  On failure returns the status and
 * writes a message into err.
 */
int store_open(const struct store_config *cfg, int flags, struct store **out, char *err,
    size_t errlen);
void store_close(struct store **s);
const char *store_errmsg(const struct store *s);
/* Where an open store is, for people: the SQLite file, or PostgreSQL's database and server. */
const char *store_where(const struct store *s);
int store_schema_version(struct store *s);
const char *store_status_str(int status);

/*
 * A read view: the reads between store_read_begin() and store_read_end()
 * see one state of the store and share its cost (on SQLite, one read
 * transaction instead of one per statement, and pages read once).  For a
 * reader's connection only, never around writes.  If the view cannot be
 * opened each read simply runs on its own.
 */
void store_read_begin(struct store *s);
void store_read_end(struct store *s);

/* ---- domains ---- */

struct store_domain {
	int64_t id;
	char *name;		/* lowercase */
	char *guard;		/* MX guard verdict: "unchecked", "claimed", "internal", "foreign", "dns-error" */
	char *guard_detail;	/* what DNS said */
	int forced;		/* claimed with --force */
	int64_t checked_at;	/* unix time of the last guard check, 0 = never */
	int64_t created_at;
};

int store_domain_add(struct store *s, const struct store_domain *d);
int store_domain_del(struct store *s, const char *name);
int store_domain_get(struct store *s, const char *name, struct store_domain *out);
int store_domain_exists(struct store *s, const char *name);	/* 1, 0, or < 0 */
int store_domain_set_guard(struct store *s, const char *name, const char *guard,
    const char *detail, int64_t checked_at);
int store_domain_list(struct store *s, struct store_domain **out, size_t *n);
void store_domain_clear(struct store_domain *d);
void store_domain_list_free(struct store_domain **v, size_t n);

/* ---- users ---- */

struct store_user {
	int64_t id;
	char *login;		/* lowercase */
	char *extension;	/* digits, or NULL */
	char *name;		/* display name, or NULL */
	char *email;		/* external email address, or NULL */
	char *password;		/* yescrypt hash, or NULL: no password set */
	uint64_t quota;		/* bytes; 0 = unlimited */
	int pop3;		/* POP3 enabled */
	int64_t created_at;
	/* filled by get/list, ignored by add: */
	uint64_t used;		/* bytes in the mailbox */
	uint64_t messages;	/* entries in the mailbox */
};

/* Fields for store_user_set: only those whose bit is set change. */
#define STORE_USER_EXTENSION	0x01
#define STORE_USER_NAME		0x02
#define STORE_USER_EMAIL	0x04
#define STORE_USER_QUOTA	0x08
#define STORE_USER_POP3		0x10
#define STORE_USER_PASSWORD	0x20

int store_user_add(struct store *s, const struct store_user *u);
int store_user_set(struct store *s, const char *login, const struct store_user *u, unsigned fields);
int store_user_del(struct store *s, const char *login);
int store_user_get(struct store *s, const char *login, struct store_user *out);
int store_user_get_by_extension(struct store *s, const char *ext, struct store_user *out);
int store_user_get_by_id(struct store *s, int64_t id, struct store_user *out);
int store_user_list(struct store *s, struct store_user **out, size_t *n);
void store_user_clear(struct store_user *u);
/* For a user allocated on its own: clear, free, set to NULL. */
void store_user_free(struct store_user **u);
void store_user_list_free(struct store_user **v, size_t n);

/* ---- aliases ---- */

struct store_alias {
	int64_t id;
	char *name;		/* lowercase local name */
	struct strlist members;	/* in the order added */
};

/* Create an alias with its first members; STORE_EXISTS if the name is taken. */
int store_alias_add(struct store *s, const char *name, const char *const *members, size_t n);
/* Add members (duplicates are ignored) / remove members (STORE_NOTFOUND if one is not there). */
int store_alias_add_members(struct store *s, const char *name, const char *const *members, size_t n);
int store_alias_del_members(struct store *s, const char *name, const char *const *members, size_t n);
int store_alias_del(struct store *s, const char *name);
int store_alias_get(struct store *s, const char *name, struct store_alias *out);
int store_alias_list(struct store *s, struct store_alias **out, size_t *n);
void store_alias_clear(struct store_alias *a);
void store_alias_list_free(struct store_alias **v, size_t n);

/* ---- relays (smarthosts, SPEC §6) ----
 *
 * Route for an outside recipient, first match wins: the active relay that
 * lists the recipient's domain, else the active default relay, else
 * direct delivery to the domain's MX hosts.  A domain is listed by at
 * most one active relay (inactive ones may list it too, as standbys);
 * at most one relay is the default.  Domains match whole and without
 * regard to case: example.com does not cover mail.example.com.
 */

enum store_relay_tls {
	STORE_TLS_AUTO = 0,	/* STARTTLS when offered, else plain */
	STORE_TLS_STARTTLS,	/* STARTTLS or nothing */
	STORE_TLS_IMPLICIT,	/* TLS from the first byte (SMTPS) */
	STORE_TLS_NONE,		/* never TLS */
};

enum store_relay_auth {
	STORE_AUTH_AUTO = 0,	/* the most secure the server offers; never a password in clear */
	STORE_AUTH_PLAIN,
	STORE_AUTH_LOGIN,
	STORE_AUTH_CRAM_MD5,
	STORE_AUTH_NONE,
};

#define STORE_RELAY_PORT_SMTP		25	/* tls auto, starttls, none */
#define STORE_RELAY_PORT_IMPLICIT	465	/* tls implicit */
#define STORE_RELAY_TIMEOUT_DEFAULT	120	/* seconds */
#define STORE_RELAY_TIMEOUT_MAX		3600
#define STORE_RELAY_NAME_MAX		64
#define STORE_RELAY_DOMAINS_MAX		1000
#define STORE_RELAY_ACCOUNT_MAX		255
#define STORE_RELAY_PASSWORD_MAX	512

struct store_relay {
	int64_t id;
	char *name;		/* lowercase; see store_relay_valid_name() */
	char *host;		/* a host name or an IP address */
	/*
	 * add/set: the port, or 0 for the TLS mode's default (25, 465 for
	 * implicit).  get/list: the port to connect to; port_given says
	 * whether it was set or follows the TLS mode.
	 */
	unsigned port;
	int port_given;
	struct strlist domains;	/* lowercase, sorted when read */
	int is_default;
	int active;
	enum store_relay_tls tls;
	int verify;		/* verify the certificate (starttls, implicit) */
	enum store_relay_auth auth;
	/*
	 * Credentials, both or neither.  The password is kept as given, since
	 * it must be sent to the relay: the store file is mode 0600.
	 */
	char *account;
	char *password;
	char *sender;		/* envelope sender override, or NULL */
	unsigned timeout;	/* seconds, 1..STORE_RELAY_TIMEOUT_MAX */
	int chunking;		/* BDAT when the server offers it */
	int64_t created_at;
};

/* Fields for store_relay_set: only those whose bit is set change. */
#define STORE_RELAY_HOST	0x0001
#define STORE_RELAY_PORT	0x0002
#define STORE_RELAY_DOMAINS	0x0004	/* replaces the whole list */
#define STORE_RELAY_DEFAULT	0x0008	/* setting it clears every other relay's */
#define STORE_RELAY_ACTIVE	0x0010
#define STORE_RELAY_TLS		0x0020
#define STORE_RELAY_VERIFY	0x0040
#define STORE_RELAY_AUTH	0x0080
#define STORE_RELAY_ACCOUNT	0x0100
#define STORE_RELAY_PASSWORD	0x0200
#define STORE_RELAY_SENDER	0x0400
#define STORE_RELAY_TIMEOUT	0x0800
#define STORE_RELAY_CHUNKING	0x1000

/* Zero r and fill in the defaults: active, tls auto, verify, auth auto, 120 s, chunking. */
void store_relay_init(struct store_relay *r);
/*
 * Add a relay; set one.  STORE_EXISTS: the name is taken, or a domain
 * is already listed by another active relay (nothing changes).
 * STORE_INVALID: a value the store refuses (an account without a
 * password, a named mechanism without an account, ...).
 * STORE_NOTFOUND (set): no such relay.
 */
int store_relay_add(struct store *s, const struct store_relay *r);
int store_relay_set(struct store *s, const char *name, const struct store_relay *r,
    unsigned fields);
int store_relay_del(struct store *s, const char *name);
int store_relay_get(struct store *s, const char *name, struct store_relay *out);
int store_relay_list(struct store *s, struct store_relay **out, size_t *n);
/*
 * The route for a recipient domain: the active relay that lists it, else
 * the active default relay; STORE_NOTFOUND means direct MX delivery.
 */
int store_relay_for_domain(struct store *s, const char *domain, struct store_relay *out);
void store_relay_clear(struct store_relay *r);
void store_relay_list_free(struct store_relay **v, size_t n);

/* 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit; upper case is lowered first. */
int store_relay_valid_name(const char *name);
unsigned store_relay_default_port(enum store_relay_tls tls);
const char *store_relay_tls_name(enum store_relay_tls tls);
const char *store_relay_auth_name(enum store_relay_auth auth);
/* 0 and *out set, or -1 for a name that is not a mode / mechanism (any case). */
int store_relay_tls_parse(const char *name, enum store_relay_tls *out);
int store_relay_auth_parse(const char *name, enum store_relay_auth *out);

/* ---- messages and mailboxes ---- */

enum store_kind {
	STORE_KIND_EMAIL = 0,
	STORE_KIND_VOICEMAIL = 1,
	STORE_KIND_FAX = 2,
};
const char *store_kind_name(enum store_kind k);

/* Entry flags. */
#define STORE_FLAG_SEEN		0x01	/* retrieved over POP3, or heard */

/* One local recipient of a delivery. */
struct store_rcpt_local {
	int64_t user_id;
	/*
	 * Header lines written before the message for this mailbox only
	 * (Return-Path:, Delivered-To:), CRLF terminated; may be NULL.
	 */
	const char *prefix;
	/* The recipient a deferred queue entry shows (login@domain); NULL: the login. */
	const char *address;
};

/*
 * One message to deposit: its bytes, stored once, are referenced by every
 * local mailbox entry and every queue entry made from it.  The bytes come
 * from memory (data/len) or, for large messages, from a file (fd >= 0,
 * read from offset 0 for len bytes) so that they never need to be in
 * memory whole.
 *
 * Each target is committed on its own.  With check_quota, a local target
 * whose mailbox would exceed its quota (usage + prefix + message > quota)
 * becomes a deferred queue entry for that mailbox ("mailbox full"),
 * delivered when it has room, and the others are not held back; only
 * when no target at all can take the message is the result STORE_QUOTA,
 * with nothing stored.  Remote targets can always take it.
 */
/*
 * Room for a queue ID: umbox-smtpd's are 17 hex digits, and on
 * PostgreSQL a dot and the node's name (at most 64) after them.
 */
#define STORE_QID_MAX	96

struct store_delivery {
	const char *qid;		/* the caller's queue ID, or NULL: made from the row */
	const char *sender;		/* envelope sender, "" for the null path */
	enum store_kind kind;
	const void *data;
	int fd;				/* -1 when data is used */
	uint64_t len;
	int check_quota;		/* defer full mailboxes (see above) */
	const struct store_rcpt_local *local;
	size_t nlocal;
	const char *const *remote;	/* outside recipients for the queue */
	size_t nremote;
	/*
	 * Instead of new bytes, an existing message (message_id != 0: data,
	 * fd and len are not used; check_quota must be 0): the postmaster's
	 * copy of a bounce that failed.
	 */
	int64_t message_id;
	/*
	 * Queue rows this delivery settles (a bounce reports on them):
	 * deleted in the same transaction, after the new entries are made;
	 * rows already gone are skipped.
	 */
	const int64_t *consume;
	size_t nconsume;
};

/* What became of one local target. */
enum store_target_status {
	STORE_TARGET_DELIVERED = 0,	/* an entry in its mailbox */
	STORE_TARGET_DEFERRED_FULL,	/* mailbox full: a deferred queue entry */
};

struct store_delivery_result {
	int64_t message_id;
	char qid[STORE_QID_MAX];	/* queue ID shown to clients and in logs */
	size_t delivered;		/* local targets now in their mailbox */
	size_t deferred;		/* local targets deferred: mailbox full */
	size_t queued;			/* remote targets in the queue */
	/*
	 * Per local[] target, in order; NULL when every local target was
	 * delivered.  Read it with store_delivery_local_status().
	 */
	enum store_target_status *local;
};

/*
 * Deposit a message in one transaction.  STORE_OK: every target was
 * delivered, deferred or queued as res says; release res with
 * store_delivery_result_clear().  Any other status: nothing is stored.
 */
int store_deliver(struct store *s, const struct store_delivery *d, struct store_delivery_result *res);
enum store_target_status store_delivery_local_status(const struct store_delivery_result *r,
    size_t i);
void store_delivery_result_clear(struct store_delivery_result *r);

struct store_entry {
	int64_t uid;		/* never reused */
	char uidl[40];		/* POP3 UIDL string */
	int64_t user_id;
	int64_t message_id;
	enum store_kind kind;
	unsigned flags;
	uint64_t size;		/* exact octets: prefix + message, CRLF line ends */
	int64_t arrived;
	char *sender;
};

int store_mailbox_list(struct store *s, int64_t user_id, struct store_entry **out, size_t *n);
int store_entry_get(struct store *s, int64_t user_id, const char *uidl, struct store_entry *out);
/* Read up to len bytes of the entry's full text from offset; *got is 0 at the end. */
int store_entry_read(struct store *s, const struct store_entry *e, uint64_t offset,
    void *buf, size_t len, size_t *got);
/*
 * The whole texts of n entries at once (reading ahead): each of e[] in
 * turn, while the texts fit in len bytes, goes into buf after the one
 * before, its length in lens[i]; an entry that is gone, or that no
 * longer fits, gets lens[i] = STORE_NO_TEXT.  An error of the store
 * fails the whole call.
 */
#define STORE_NO_TEXT	SIZE_MAX
int store_entries_read(struct store *s, const struct store_entry *e, size_t n, void *buf,
    size_t len, size_t *lens);
/*
 * A reader for streaming one entry out in slices (POP3 RETR, mail export):
 * reads at increasing offsets cost the same however far into a large
 * message they are.  A large entry is read from a snapshot of its own, so
 * it stays readable to the end even if it is deleted meanwhile.
 */
struct store_reader;
int store_reader_open(struct store *s, const struct store_entry *e, struct store_reader **out);
int store_reader_read(struct store_reader *r, uint64_t offset, void *buf, size_t len,
    size_t *got);
void store_reader_close(struct store_reader **r);

int store_entries_delete(struct store *s, int64_t user_id, const int64_t *uids, size_t n);
int store_entry_set_flags(struct store *s, int64_t user_id, int64_t uid, unsigned flags);
void store_entry_clear(struct store_entry *e);
void store_entry_list_free(struct store_entry **v, size_t n);

/* ---- the outbound queue (SPEC §6) ----
 *
 * One row per recipient of a message: an outside address, or a local
 * mailbox that was full when the message came (local_user_id != 0),
 * which waits for room.  A row is queued or failed; a delivered row is
 * deleted, and the message goes with its last reference.  Failed rows
 * stay for their bounce (RFC 3464) until something deletes them.
 *
 * A queue runner claims due rows for a lease: claimed_by names it and
 * claimed_until ends the claim, so that the rows of a runner that
 * crashed are claimed again once the lease runs out.  A recipient may
 * then be delivered twice, never lost.  The runner reports each attempt
 * (delivered, deferred, failed), which ends the claim.
 */

enum store_queue_status {
	STORE_QUEUE_QUEUED = 0,		/* waits for its next attempt, or is being tried */
	STORE_QUEUE_FAILED = 1,		/* given up on; kept for its bounce */
};

struct store_queue_entry {
	int64_t id;
	int64_t message_id;
	char qid[STORE_QID_MAX];	/* the message's queue ID, as in logs and Received: */
	char *sender;			/* envelope sender, "" for the null path */
	char *recipient;
	char *domain;			/* the recipient's domain, lowercase; "" for a bare login */
	enum store_kind kind;
	int64_t local_user_id;		/* a full mailbox waiting for room; 0: outside */
	uint64_t size;			/* the message's octets */
	unsigned attempts;
	int64_t next_attempt;
	int64_t last_attempt;		/* 0: never tried */
	char *last_error;		/* "" when none */
	enum store_queue_status status;
	int held;			/* not tried until released */
	char *claimed_by;		/* NULL when not claimed */
	int64_t claimed_until;		/* the claim holds while now < claimed_until */
	int64_t created_at;
};

/* [queue] retry_initial, retry_max and lifetime, in seconds. */
struct store_retry {
	unsigned initial;
	unsigned max;
	unsigned lifetime;
};

/*
 * Seconds until the next attempt after the attempts-th one failed:
 * initial * 2^(attempts - 1), at most max, at least 1 (attempts 0 and 1
 * both give initial).  Never overflows, however many attempts.
 */
uint64_t store_queue_backoff(unsigned attempts, unsigned initial, unsigned max);

/* Every row, oldest first. */
int store_queue_list(struct store *s, struct store_queue_entry **out, size_t *n);
int store_queue_get(struct store *s, int64_t id, struct store_queue_entry *out);
/*
 * Failed rows that are not held, waiting for their bounce: at most max,
 * a message's rows together (by message, then id); none of a message
 * while another of its rows is claimed (being tried) or due, so that the
 * failures of one pass over the message make one bounce.
 */
int store_queue_failed(struct store *s, size_t max, struct store_queue_entry **out, size_t *n);
/* Delete a row whatever its state (a claimed one may still be delivered). */
int store_queue_del(struct store *s, int64_t id);
/* Hold (1) or release (0) a row; release keeps its schedule. */
int store_queue_hold(struct store *s, int64_t id, int held);
/*
 * Make queued rows that are not held due at now: the one with id, or
 * every one (id 0).  *n says how many are due now.  STORE_NOTFOUND: no
 * row id; a held or failed row id is left alone with *n = 0.
 */
int store_queue_flush(struct store *s, int64_t id, int64_t now, size_t *n);
/*
 * Claim up to max rows for owner until now + lease: queued, not held,
 * not claimed (or with a claim that ran out), and due: next_attempt <=
 * now, or a local row whose mailbox now has room.  They come ordered by
 * message, then recipient domain, then id, so that the rows of one
 * message to one destination are next to each other; a message's rows to
 * one domain are not split across two claims unless they are more than
 * max.  Free *out with store_queue_list_free().
 */
int store_queue_claim(struct store *s, const char *owner, int64_t now, unsigned lease,
    size_t max, struct store_queue_entry **out, size_t *n);
/* End every claim whose owner starts with prefix (a restarted runner's). */
int store_queue_release_claims(struct store *s, const char *prefix);
/*
 * Extend owner's claims on the rows ids[0..n-1] to until, while their
 * delivery goes on; rows no longer claimed by owner are left alone.
 */
int store_queue_renew(struct store *s, const char *owner, const int64_t *ids, size_t n,
    int64_t until);
/*
 * When the next row becomes claimable by the clock alone (a local row
 * may become claimable earlier, when its mailbox gains room).
 * STORE_NOTFOUND: nothing is waiting.
 */
int store_queue_next_due(struct store *s, int64_t *when);

enum store_attempt_result {
	STORE_ATTEMPT_DELIVERED = 0,	/* the row is deleted */
	STORE_ATTEMPT_DEFERRED,		/* tried again later; failed once past lifetime */
	STORE_ATTEMPT_FAILED,		/* marked failed, kept */
};

/* The outcome of one attempt at one row, as a runner reports it. */
struct store_attempt {
	int64_t id;
	enum store_attempt_result result;
	const char *error;		/* the reply or what went wrong; NULL when delivered */
	/* Filled in by the store: */
	int status;			/* STORE_OK; STORE_NOTFOUND: the row is gone or failed
					 * already; STORE_LOCKED: another runner claimed it */
	int failed;			/* the row is failed now (reported so, or expired) */
};

/*
 * Record attempts in one transaction, ending their claims.  Deferred:
 * attempts + 1, the error, next attempt at now + store_queue_backoff();
 * but failed instead once now - created_at >= lifetime.  Failed:
 * attempts + 1, the error, kept.  Delivered: deleted (even if another
 * runner claimed it since).  Errors are stored as printable ASCII,
 * at most 512 bytes.  With owner NULL any claim is overridden.  A row
 * that cannot be updated is noted in its status and does not fail the
 * others; the return value is STORE_OK unless the store failed.
 */
int store_queue_report(struct store *s, const char *owner, int64_t now,
    const struct store_retry *retry, struct store_attempt *v, size_t n);
/*
 * Deliver a local row (a full mailbox) now, if its mailbox has room: a
 * mailbox entry with the row's own prefix, quota checked, and the row
 * deleted.  STORE_QUOTA: still no room, nothing changed (report the
 * attempt as deferred); STORE_INVALID: not a local row; STORE_NOTFOUND;
 * STORE_LOCKED: another runner claimed it.
 */
int store_queue_deliver_local(struct store *s, int64_t id, const char *owner, int64_t now);
/*
 * Stream a row's message out, the bytes as received (size of them):
 * read with store_reader_read(), close with store_reader_close().  A
 * large message stays readable to the end even if the row is deleted
 * meanwhile.  STORE_NOTFOUND: the message is gone.
 */
int store_queue_reader_open(struct store *s, const struct store_queue_entry *e,
    struct store_reader **out);
void store_queue_entry_clear(struct store_queue_entry *e);
void store_queue_list_free(struct store_queue_entry **v, size_t n);

/* ---- POP3 mailbox locks ----
 *
 * One POP3 session per mailbox: a lock row with an owner and a lease.  A
 * lock whose lease ran out is free for the taking, so a crashed pop3d (or
 * another node) never keeps a mailbox locked for longer than the lease.
 * On PostgreSQL the lease runs on the database's clock (now is not
 * used), and a lock is also free once its node's heartbeat is stale.
 */

/* Take or renew; STORE_LOCKED if someone else holds an unexpired lease. */
int store_pop3_lock(struct store *s, int64_t user_id, const char *owner, int64_t now,
    unsigned lease_seconds);
/* Give it back; STORE_NOTFOUND when it is not owner's (nothing done). */
int store_pop3_unlock(struct store *s, int64_t user_id, const char *owner);
/* Drop every lock whose owner starts with prefix (a restarted daemon's old locks). */
int store_pop3_unlock_prefix(struct store *s, const char *prefix);

/* ---- nodes sharing one store ----
 *
 * On PostgreSQL several nodes share the store, each under its own name
 * ([store] node_id).  A process claims its node's name with an instance
 * string of its own (host, pid, start time) and beats at least every
 * STORE_NODE_BEAT seconds; a name whose heartbeat is older than
 * STORE_NODE_STALE (on the database's clock) is free, and so are the
 * POP3 locks its node held.  On SQLite, one node only, these do nothing.
 */
#define STORE_NODE_BEAT		10
#define STORE_NODE_STALE	30
/*
 * Claim the name for instance: it is free, stale, instance's already, or
 * held by replace (NULL: no one).  STORE_EXISTS: another process holds
 * it (the message says which; its instance in holder, when given).
 */
int store_node_claim(struct store *s, const char *instance, const char *replace, char *holder,
    size_t holderlen);
/* STORE_LOCKED: the name went to another instance (this one was thought dead). */
int store_node_beat(struct store *s, const char *instance);
void store_node_release(struct store *s, const char *instance);

/* ---- counts for status ---- */

struct store_stats {
	uint64_t domains, users, aliases, relays;
	uint64_t messages, message_bytes, entries, queued;
	uint64_t queue_failed;	/* failed rows, kept for their bounce; not in queued */
};
int store_stats(struct store *s, struct store_stats *out);

/*
 * Remove the bytes of messages that lost their last reference before
 * `before` (unix time); *n says how many.  On PostgreSQL a message
 * outlives its references until then, so that a RETR in progress on
 * another node finishes; on SQLite a message goes at once and this does
 * nothing.
 */
int store_sweep(struct store *s, int64_t before, size_t *n);
/* How long the daemons keep an unreferenced message (a RETR elsewhere may read it). */
#define STORE_SWEEP_AFTER	3600

/* ---- moving a site to PostgreSQL ---- */

struct store_copy_counts {
	uint64_t domains, users, aliases, relays, messages, entries, queued;
};

/*
 * Copy the SQLite store at path (migrated forward first) into to, an
 * empty PostgreSQL store, keeping every id, uid and the UIDL epoch, in
 * one transaction.  STORE_EXISTS: to holds data already; STORE_INVALID:
 * to is not PostgreSQL.  Offline: run it with the daemons stopped.
 */
int store_copy_from_sqlite(struct store *to, const char *path, struct store_copy_counts *n);

/*
 * What keeps the store's promises, item by item, each reported through
 * fn: the schema, and the durability settings (SQLite: WAL, synchronous
 * FULL, the file's integrity; PostgreSQL: synchronous_commit, a
 * synchronous standby).  A warning is a risk, a failure a broken promise.
 */
enum store_check_level {
	STORE_CHECK_OK = 0,
	STORE_CHECK_WARNING,
	STORE_CHECK_FAILED,
};
typedef void store_check_fn(void *arg, const char *item, enum store_check_level level,
    const char *text);
int store_check(struct store *s, store_check_fn *fn, void *arg);

/* ---- a daemon's store ---- */

struct server;

/*
 * The hooks of lib/server.h for a daemon's store (srv->store, srv->writer).
 * Before detaching: open (creating) and close the store, and give it to
 * [general] user.  After dropping privileges: the loop's read handle and
 * the writer thread.  After the loop: finish every submitted request, then
 * close.  0 or -1 (logged).
 */
int store_daemon_check(struct server *srv);
int store_daemon_open(struct server *srv);
void store_daemon_close(struct server *srv);
/*
 * Before the loops run (a daemon's start hook): fn with a store
 * connection, loop 0's or one opened for it; fn's status, or the open's
 * (then logged as a warning: "cannot WHAT").
 */
int store_daemon_startup(struct server *srv, const char *what,
    int (*fn)(struct store *s, void *arg), void *arg);

/*
 * On SQLite a running daemon holds an flock on a file beside the store,
 * "PATH-PROG.lock", with its pid in it.  The file's name (malloc'd), and
 * the pid read from an open one into pid (empty when there is none).
 */
char *store_daemon_lock_file(const char *path, const char *prog);
void store_daemon_lock_pid(int fd, char *pid, size_t len);

/*
 * ---- reads off the loop ----
 *
 * Every read a daemon makes goes through its loop's readers: a request
 * whose work() runs with a store connection and whose done() follows on
 * the loop.  On SQLite a read is a page-cache hit, so work() runs at
 * once on the loop's own connection and done() before
 * store_read_submit() returns.  On PostgreSQL the loop has a reader
 * connection, and each read's work() runs in turn in a coroutine on the
 * loop (lib/coro.h): where it waits for the server, the loop goes on,
 * and libevent resumes it when the answer is in.  So no loop ever waits
 * for the server, and a read costs no thread's wake-up.
 */
struct store_readers;

struct store_read {
	/* With a store connection: the loop's (SQLite) or its reader's. */
	void (*work)(struct store *s, struct store_read *r);
	/* On the loop; cancelled: the owner went away, only free what is left. */
	void (*done)(struct store_read *r, int cancelled);
	/*
	 * Set before work() runs on the loop's own connection (SQLite): what
	 * it opens there may stay open for the loop; and done() then runs
	 * inside store_read_submit().
	 */
	int now;
	int cancelled;			/* store_read_cancel */
	struct store_read *next;	/* the readers' queue */
};

/*
 * A connection that hears of changes (PostgreSQL's LISTEN; STORE_INVALID
 * on SQLite): after store_listen (once per channel), poll store_listen_fd
 * for reading and call store_notified, which never waits: how many
 * notifications came since the last call, with *on set to how many of
 * them came on channel; or -1 when the connection is gone (close it and
 * open another).  Such a connection is for nothing else.
 */
int store_listen(struct store *s, const char *channel);
int store_listen_fd(struct store *s);
int store_notified(struct store *s, const char *channel, int *on);
/*
 * Notified (PostgreSQL) once per transaction that queued rows, and by
 * queue flush, hold and claim releases: rows may be due that no runner
 * has seen yet.
 */
#define STORE_QUEUE_CHANNEL	"umbox_queue"

/*
 * The directory in memory (directory.c): loaded through readers on
 * base's loop and again whenever the database's copy changes.  A loop's
 * view answers store_domain_get, store_user_get* and store_alias_get
 * from the newest snapshot without reading the database; it is NULL
 * while the snapshot may be behind the database (before the first load,
 * between hearing of a change and loading it, while the connection that
 * hears of changes is down or, on SQLite, the change counter could not
 * be had).  Its "not found" means "not found yet".
 */
struct store_directory;
struct store_dirview;
struct store_directory *store_directory_new(const struct store_config *cfg,
    struct event_base *base, struct store_readers *readers);
/* Stop polling; free once the readers are gone. */
void store_directory_stop(struct store_directory *dir);
void store_directory_free(struct store_directory **dir);
/*
 * On loop 0: queue_changed(arg) runs whenever the database tells of rows
 * that may be due (STORE_QUEUE_CHANNEL), and when the connection that
 * hears of it is made again (it may have missed some); NULL stops it.
 * store_directory_hearing: whether that connection is up now, so that
 * polling can wait longer.
 */
void store_directory_hear_queue(struct store_directory *dir, void (*queue_changed)(void *),
    void *arg);
int store_directory_hearing(const struct store_directory *dir);
/* A view for base's loop; the view of the directory's own loop may reload on the spot. */
struct store_dirview *store_dirview_new(struct store_directory *dir, struct event_base *base);
void store_dirview_free(struct store_dirview **v);
/* On the view's loop: the newest snapshot as a store, or NULL (v NULL: none kept). */
struct store *store_dirview_get(struct store_dirview *v);

/*
 * The readers of one loop, answering on base's thread.  loop_store is the
 * loop's own connection, which SQLite reads use; PostgreSQL opens one of
 * its own.
 */
int store_readers_new(const struct store_config *cfg, struct event_base *base,
    struct store *loop_store, struct store_readers **out, char *err, size_t errlen);
/* Finish every submitted read (each done() runs; the loop need not run). */
void store_readers_free(struct store_readers **rd);
/*
 * The same, for at most until deadline (monotonic_ms(); -1: none): 0 when
 * every read has ended; else how many are left, one of them waiting on
 * the server, and then rd must not be freed (a daemon stopping leaves it
 * to the exit).
 */
unsigned store_readers_finish(struct store_readers *rd, int64_t deadline);
/*
 * Run r: returns 1 when done() has already run (the caller must not
 * touch r again), 0 when it will run later on the loop.
 */
int store_read_submit(struct store_readers *rd, struct store_read *r);
/* The owner goes away before done(): work() is skipped if it has not started. */
void store_read_cancel(struct store_read *r);

/* ---- the asynchronous commit path (group commit) ---- */

struct store_writer;
struct store_req;

typedef void store_req_cb(struct store_req *req, void *arg);

/*
 * A writer with its own connection to the store, answering on base's
 * thread; base must stay alive until store_writer_free().  On SQLite a
 * thread; on PostgreSQL base's loop runs it (writer.c).
 */
int store_writer_new(const struct store_config *cfg, struct event_base *base,
    struct store_writer **out, char *err, size_t errlen);
/*
 * Another loop's writer: on SQLite a handle on w's thread, whose requests
 * are committed in the same batches and answered on base's thread; on
 * PostgreSQL a writer of base's own (cfg's connection).
 */
int store_writer_attach(struct store_writer *w, const struct store_config *cfg,
    struct event_base *base, struct store_writer **out, char *err, size_t errlen);
/*
 * Freeing a writer finishes every request submitted through it (their
 * callbacks run; its loop need not).  On SQLite, freeing the handle from
 * store_writer_new finishes every request submitted through any handle
 * and stops the thread; free the attached handles after it (once their
 * loops have stopped submitting): their callbacks still run then.
 */
void store_writer_free(struct store_writer **w);
/*
 * What freeing does first, for at most until deadline (monotonic_ms();
 * -1: none): 0 when every request has ended (SQLite's thread: always);
 * else how many are left, a batch waiting on the server, and then w must
 * not be freed.
 */
unsigned store_writer_finish(struct store_writer *w, int64_t deadline);

/*
 * Requests.  A request owns copies of everything it needs (a delivery
 * copies in-memory data and dup()s the fd), so the caller may go away at
 * any time.  The callback runs once on the loop, never from inside
 * store_writer_submit, unless the request was cancelled first; the
 * request is freed when the callback returns.  A request that could not
 * be made whole (no descriptor left to dup the spool file) fails with
 * STORE_ERROR through its callback like any other.
 */
struct store_req *store_req_deliver(const struct store_delivery *d, store_req_cb *cb, void *arg);
struct store_req *store_req_delete(int64_t user_id, const int64_t *uids, size_t n,
    store_req_cb *cb, void *arg);
struct store_req *store_req_pop3_lock(int64_t user_id, const char *owner, unsigned lease_seconds,
    store_req_cb *cb, void *arg);
/*
 * The queue runner's writes: claim, report attempts, deliver a local
 * row, as the synchronous functions above with now = time(NULL) when
 * the writer applies them.  A claim's rows are taken from the finished
 * request with store_req_queue_claimed() (none unless it succeeded).
 */
struct store_req *store_req_queue_claim(const char *owner, unsigned lease, size_t max,
    store_req_cb *cb, void *arg);
void store_req_queue_claimed(struct store_req *req, struct store_queue_entry **out,
    size_t *n);
struct store_req *store_req_queue_report(const char *owner, const struct store_retry *retry,
    const struct store_attempt *v, size_t n, store_req_cb *cb, void *arg);
/* The attempts of a finished report request as applied (status, failed); NULL for others. */
const struct store_attempt *store_req_queue_attempts(const struct store_req *req, size_t *n);
struct store_req *store_req_queue_deliver_local(int64_t id, const char *owner,
    store_req_cb *cb, void *arg);
/* store_queue_renew() to now + lease. */
struct store_req *store_req_queue_renew(const char *owner, const int64_t *ids, size_t n,
    unsigned lease, store_req_cb *cb, void *arg);
/* The MX guard's verdict on a domain, as store_domain_set_guard(). */
struct store_req *store_req_domain_guard(const char *name, const char *guard,
    const char *detail, int64_t checked_at, store_req_cb *cb, void *arg);
/*
 * POP3 QUIT: delete the entries in del, mark those in seen as retrieved,
 * and release the lock, in one transaction.
 */
struct store_req *store_req_pop3_quit(int64_t user_id, const char *owner,
    const int64_t *del, size_t ndel, const int64_t *seen, size_t nseen,
    store_req_cb *cb, void *arg);
void store_writer_submit(struct store_writer *w, struct store_req *req);
/* Detach the caller: no callback; the request is freed when done. */
void store_req_cancel(struct store_req *req);
/* Free a request that was made but will not be submitted after all. */
void store_req_discard(struct store_req *req);

int store_req_status(const struct store_req *req);
const char *store_req_errmsg(const struct store_req *req);
/* The result of a store_req_deliver request; NULL for other kinds. */
const struct store_delivery_result *store_req_delivery(const struct store_req *req);

#endif
