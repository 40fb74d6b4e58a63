/*
 * voicemail.h - voicemail and fax in the unified inbox (SPEC §8).
 *
 * A deposit checks the recording (lib/media.h: a WAV's duration, a
 * TIFF's pages), builds an ordinary MIME message around it with GMime 3
 * (a text part saying who called, when and for how long; the file as
 * audio/wav or image/tiff in base64) and delivers it through the same
 * pipeline as SMTP mail (aliases/deliver.h): aliases apply, quotas
 * apply, outside members get it through the queue.  It is a library
 * call, so a telephony program can deposit without umboxctl; it commits
 * synchronously (durable when it returns).
 *
 * Message waiting: a mailbox's voicemail counts (new = not yet heard or
 * retrieved, old = heard), and [voicemail] mwi_command run when they
 * change, without a shell.
 */
#ifndef UMBOX_ALIASES_VOICEMAIL_H
#define UMBOX_ALIASES_VOICEMAIL_H

#include <stddef.h>
#include <stdint.h>

#include "aliases/resolve.h"
#include "store/store.h"

struct umbox_config;

#define VOICEMAIL_CALLER_MAX	64	/* digits of a caller ID kept */
#define VOICEMAIL_NAME_MAX	128	/* octets of a caller's name kept */

struct voicemail_deposit {
	enum store_kind kind;		/* STORE_KIND_VOICEMAIL or STORE_KIND_FAX */
	const char *mailbox;		/* a login, login@localdomain or an extension */
	const void *data;		/* the WAV or TIFF file */
	size_t len;
	const char *caller;		/* the caller's number, or NULL */
	const char *caller_name;	/* or NULL */
	int64_t now;			/* 0: time(NULL) */
};

struct voicemail_result {
	char qid[STORE_QID_MAX];
	char login[80];			/* the mailbox's user */
	unsigned seconds;		/* voicemail: duration */
	unsigned pages;			/* fax */
	size_t delivered, deferred, queued;
	struct strlist mailboxes;	/* logins it was delivered to; strlist_clear() it */
};

/*
 * A caller ID as given: digits, '+', '*', '#' (1 to VOICEMAIL_CALLER_MAX),
 * with blanks, '-', '(', ')' and '.' between them, which are dropped.
 */
int voicemail_caller_valid(const char *number);

/*
 * Deposit.  STORE_OK with *out filled; STORE_INVALID: the file is not a
 * recording or fax we read (err says what was found); STORE_NOTFOUND: no
 * such mailbox; STORE_QUOTA: no target has room, nothing stored; else a
 * store error.  err always says why in words an administrator reads.
 */
int voicemail_deposit(struct store *s, const struct alias_resolver *r,
    const struct umbox_config *cfg, const struct voicemail_deposit *d,
    struct voicemail_result *out, char *err, size_t errlen);

/*
 * The message alone (for tests and tools): headers for mailbox user u
 * at domain, the file checked already (seconds or pages given).
 */
int voicemail_message(const struct voicemail_deposit *d, const struct store_user *u,
    const char *domain, const char *hostname, unsigned seconds, unsigned pages,
    char **out, size_t *outlen, char *err, size_t errlen);

/* What a stored voicemail says of itself, read from its headers. */
struct voicemail_info {
	char caller[VOICEMAIL_CALLER_MAX + 1];
	char caller_name[VOICEMAIL_NAME_MAX + 1];
	unsigned seconds;
	unsigned pages;
};
void voicemail_info_parse(const char *head, size_t len, struct voicemail_info *out);

/*
 * The audio (or fax) part of a stored message, decoded: *out malloc'd.
 * 0, or -1 with err.
 */
int voicemail_attachment(const char *msg, size_t len, char **out, size_t *outlen,
    char *err, size_t errlen);

/* new = voicemail entries not yet heard or retrieved, old = the others. */
int voicemail_counts(struct store *s, int64_t user_id, unsigned *new_n, unsigned *old_n);

/*
 * Start [voicemail] mwi_command LOGIN NEW OLD (no shell, lib/spawn.h) into
 * set, when it is set, for spawn_set_wait(): umboxctl waits for all it
 * started at once, VOICEMAIL_MWI_TIMEOUT_MS in all; a failure is logged,
 * never returned.  The daemons must not wait: see below.
 */
struct spawn_set;
void voicemail_mwi_notify(struct spawn_set *set, const struct umbox_config *cfg,
    const char *login, unsigned new_n, unsigned old_n);
/* The same for a daemon: started, then reaped by the loop; never waited for. */
struct event_base;
void voicemail_mwi_notify_async(struct event_base *base, const struct umbox_config *cfg,
    const char *login, unsigned new_n, unsigned old_n, unsigned timeout_ms);
#define VOICEMAIL_MWI_TIMEOUT_MS	5000
/*
 * A daemon changed login's voicemail: count it through the loop's
 * readers, then notify as above (when mwi_command is set).  login NULL:
 * read from the store with the counts.
 */
void voicemail_mwi_changed(struct store_readers *rd, struct event_base *base,
    const struct umbox_config *cfg, int64_t user_id, const char *login);

#endif
