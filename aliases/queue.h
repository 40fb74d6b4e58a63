/*
 * queue.h - the queue runner inside umbox-smtpd: outside recipients and
 * full local mailboxes, tried until delivered or past their lifetime.
 *
 * Every second the runner claims due rows (a lease, so a crashed
 * runner's rows are taken up again: a recipient may be delivered twice,
 * never lost), groups a message's rows by destination domain, chooses the
 * route (SPEC §6: a relay listing the domain, the default relay, else the
 * domain's MX hosts from DNS), hands each group to the SMTP client
 * (mta.h) and reports every recipient's outcome back to the store, which
 * schedules the retry (retry_initial doubling to retry_max) or fails it
 * past lifetime.  A local row is delivered into its mailbox once there is
 * room.  All store writes go through the writer thread; nothing blocks
 * the loop.
 */
#ifndef UMBOX_ALIASES_QUEUE_H
#define UMBOX_ALIASES_QUEUE_H

#include <stddef.h>

struct dns_resolver;
struct event_base;
struct store_readers;
struct store_writer;
struct umbox_config;
struct queue_runner;

#define QUEUE_MAX_ATTEMPTS	100	/* messages being delivered at once */
#define QUEUE_MAX_PER_DOMAIN	20	/* ... to one destination domain (Postfix's default) */
#define QUEUE_MAX_CLAIMED	500	/* rows claimed and not yet reported */

/*
 * Before the runner starts (with a store connection of the caller's): the
 * claims of an earlier runner on this host died with it.  cfg is the
 * struct umbox_config.  A store status.
 */
struct store;
int queue_release_old_claims(struct store *s, void *cfg);
/*
 * A runner on base, reading through readers, writing through w and
 * asking dns (the caller's; it must outlive the runner); a thread of its
 * own makes messages 7-bit for servers without 8BITMIME.  NULL with a
 * message when TLS cannot be set up.
 */
struct queue_runner *queue_runner_new(struct event_base *base, struct store_readers *readers,
    struct store_writer *w, struct dns_resolver *dns, const struct umbox_config *cfg,
    char *err, size_t errlen);

/*
 * Look for due rows soon rather than at the next tick (new mail was
 * queued).  From any event loop's thread: the runner looks on its own.
 */
void queue_runner_kick(struct queue_runner *q);

/*
 * Be kicked by dir (PostgreSQL: the database tells of rows queued or
 * made due on any node) and, while it hears, look for due rows less
 * often.  dir NULL (SQLite): nothing changes.  On the runner's loop (0).
 */
struct store_directory;
void queue_runner_hear(struct queue_runner *q, struct store_directory *dir);

/*
 * Stop: attempts in flight are abandoned (their rows' claims end when the
 * lease runs out, or when the next runner starts).  Before the writer
 * stops.
 */
void queue_runner_free(struct queue_runner **q);

#endif
