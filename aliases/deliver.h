/*
 * deliver.h - the one way a message reaches the store.
 *
 * Recipients resolve to final targets (resolve.h); each local target gets
 * its own envelope prefix (Return-Path:, Delivered-To:), each outside one
 * a queue entry; and the whole message becomes one store request whose
 * result says what became of every target (delivered, deferred because
 * the mailbox is full, queued).  SMTP uses it at the end of DATA;
 * voicemail deposits, delivery status notifications and SRS bounces use
 * it too, so every message is stored alike.
 */
#ifndef UMBOX_ALIASES_DELIVER_H
#define UMBOX_ALIASES_DELIVER_H

#include <stddef.h>
#include <stdint.h>

#include "aliases/resolve.h"
#include "store/store.h"

/* A message and its envelope, without its recipients. */
struct alias_message {
	const char *qid;		/* queue ID for logs and replies, or NULL: the store's */
	const char *sender;		/* envelope sender, "" for the null path <> */
	enum store_kind kind;
	/* The bytes: in memory (data), or in a file read from offset 0 (fd >= 0). */
	const void *data;
	int fd;				/* -1 when data is used */
	uint64_t len;
	const char *domain;		/* for Delivered-To: login@domain */
	/*
	 * Defer a local target whose mailbox would go over quota; STORE_QUOTA
	 * when no target at all can take the message (see store.h).
	 */
	int check_quota;
	/* A bounce's extras, as in struct store_delivery (store.h). */
	int64_t message_id;		/* deliver this stored message instead of bytes */
	const int64_t *consume;		/* queue rows settled in the same transaction */
	size_t nconsume;
};

/*
 * A store delivery built from targets, and the storage behind it.  The
 * store's per-local-target results (store_delivery_local_status) follow
 * the order of the local targets in the targets[] it was built from.
 */
struct alias_delivery {
	struct store_delivery d;	/* for store_deliver() or store_req_deliver() */
	struct store_rcpt_local *local;
	char **owned;			/* prefixes and addresses */
	size_t nowned;
	const char **remote;
};

/*
 * Build the delivery of m to targets[0..n).  Targets are taken as they
 * are: resolve and de-duplicate them first (alias_resolve_recipients).
 * Release with alias_delivery_clear().
 */
void alias_delivery_build(struct alias_delivery *out, const struct alias_message *m,
    const struct alias_target *targets, size_t n);
void alias_delivery_clear(struct alias_delivery *ad);

/*
 * The request for the writer thread (store_writer_submit) that delivers m
 * to targets[0..n): built, copied into the request, released.
 */
struct store_req *alias_deliver_req(const struct alias_message *m,
    const struct alias_target *targets, size_t n, store_req_cb *cb, void *arg);

/*
 * The same, committed synchronously on s (umboxctl).  A store status; on
 * STORE_OK release res with store_delivery_result_clear().
 */
int alias_deliver(struct store *s, const struct alias_message *m,
    const struct alias_target *targets, size_t n, struct store_delivery_result *res);

/*
 * Resolve several recipients into one list of final targets, each local
 * mailbox and outside address once, in the order first reached.  Stops at
 * the first recipient that does not resolve (ALIAS_UNKNOWN, ...) and says
 * which in out->error.  Clear out with alias_result_clear().
 */
enum alias_status alias_resolve_recipients(const struct alias_resolver *r,
    const char *const *rcpts, size_t n, struct alias_result *out);

/* Add the targets of from that into does not have yet. */
void alias_targets_merge(struct alias_result *into, const struct alias_result *from);

#endif
