/*
 * bounce.h - what becomes of failed queue rows (SPEC §6): one delivery
 * status notification (RFC 3464, dsn.h) per message to its envelope
 * sender, from MAILER-DAEMON with a null sender; for a message that has
 * a null sender itself (a bounce that failed), no notification but a copy
 * in the local postmaster's mailbox.  Either way the failed rows are
 * deleted in the transaction that delivers the notification or the copy,
 * so a crash between the two never sends a bounce twice nor loses one.
 *
 * A local sender's notification goes to their mailbox; a remote one's
 * through the queue like any outside mail.  Bounces skip quotas: they are
 * small and must not wait for room.
 */
#ifndef UMBOX_ALIASES_BOUNCE_H
#define UMBOX_ALIASES_BOUNCE_H

#include <stddef.h>
#include <stdint.h>

struct store_readers;
struct store_writer;
struct umbox_config;
struct bouncer;

struct bouncer *bounce_new(struct store_readers *readers, struct store_writer *w,
    const struct umbox_config *cfg);
/* Look for failed rows now (the queue runner just failed some, or its tick). */
void bounce_kick(struct bouncer *b);
/* Stop; a bounce in flight is finished by the writer, its callback dropped. */
void bounce_free(struct bouncer **b);

/*
 * What a failed row's last error says, split for the report: the queue
 * runner stores "host NAME[ADDR] said: REPLY" for a server's reply, else
 * plain words.  remote gets NAME (for Remote-MTA) or "", diag the rest.
 * Pure.
 */
void bounce_split_error(const char *error, char *remote, size_t rlen, const char **diag);

#endif
