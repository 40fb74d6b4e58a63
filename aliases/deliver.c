/*
 * deliver.c - from final targets to one store delivery.
 */
#include "aliases/deliver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char *
own(struct alias_delivery *ad, char *s)
{
	ad->owned[ad->nowned++] = s;
	return s;
}

/*
 * Each local target's prefix names the envelope sender (Return-Path:,
 * "<>" for the null path) and the mailbox it was delivered to
 * (Delivered-To:, login@domain), which is also what a deferred queue
 * entry for it shows.
 */
void
alias_delivery_build(struct alias_delivery *out, const struct alias_message *m,
    const struct alias_target *targets, size_t n)
{
	struct store_delivery *d = &out->d;
	const char *sender = m->sender ? m->sender : "";

	memset(out, 0, sizeof(*out));
	out->local = xcalloc(n ? n : 1, sizeof(*out->local));
	out->owned = xreallocarray(NULL, 2 * n + 1, sizeof(*out->owned));
	out->remote = xcalloc(n ? n : 1, sizeof(*out->remote));
	for (size_t i = 0; i < n; i++) {
		const struct alias_target *t = &targets[i];
		struct store_rcpt_local *l;

		if (t->remote) {
			out->remote[d->nremote++] = t->address;
			continue;
		}
		l = &out->local[d->nlocal++];
		l->user_id = t->user_id;
		l->prefix = own(out, xasprintf("Return-Path: <%s>\r\nDelivered-To: %s@%s\r\n",
		    sender, t->login, m->domain));
		l->address = own(out, xasprintf("%s@%s", t->login, m->domain));
	}
	d->qid = m->qid;
	d->sender = sender;
	d->kind = m->kind;
	d->data = m->fd >= 0 ? NULL : m->data;
	d->fd = m->fd;
	d->len = m->len;
	d->check_quota = m->check_quota;
	d->message_id = m->message_id;
	d->consume = m->consume;
	d->nconsume = m->nconsume;
	d->local = out->local;
	d->remote = out->remote;
}

void
alias_delivery_clear(struct alias_delivery *ad)
{
	for (size_t i = 0; i < ad->nowned; i++)
		free(ad->owned[i]);
	free(ad->owned);
	free(ad->local);
	free(ad->remote);
	memset(ad, 0, sizeof(*ad));
}

struct store_req *
alias_deliver_req(const struct alias_message *m, const struct alias_target *targets, size_t n,
    store_req_cb *cb, void *arg)
{
	struct alias_delivery ad;
	struct store_req *req;

	alias_delivery_build(&ad, m, targets, n);
	req = store_req_deliver(&ad.d, cb, arg);
	alias_delivery_clear(&ad);
	return req;
}

int
alias_deliver(struct store *s, const struct alias_message *m,
    const struct alias_target *targets, size_t n, struct store_delivery_result *res)
{
	struct alias_delivery ad;
	int status;

	alias_delivery_build(&ad, m, targets, n);
	status = store_deliver(s, &ad.d, res);
	alias_delivery_clear(&ad);
	return status;
}

static int
same_target(const struct alias_target *a, const struct alias_target *b)
{
	if (a->remote != b->remote)
		return 0;
	return a->remote ? strcasecmp(a->address, b->address) == 0 : a->user_id == b->user_id;
}

/* Quadratic, like the RCPT path it serves: targets are capped (ALIAS_MAX_TARGETS). */
void
alias_targets_merge(struct alias_result *into, const struct alias_result *from)
{
	for (size_t i = 0; i < from->n; i++) {
		const struct alias_target *a = &from->v[i];
		struct alias_target *t;
		size_t k;

		for (k = 0; k < into->n && !same_target(a, &into->v[k]); k++)
			;
		if (k < into->n)
			continue;
		into->v = xreallocarray(into->v, into->n + 1, sizeof(*into->v));
		t = &into->v[into->n++];
		memset(t, 0, sizeof(*t));
		t->remote = a->remote;
		t->user_id = a->user_id;
		t->login = a->login ? xstrdup(a->login) : NULL;
		t->address = a->address ? xstrdup(a->address) : NULL;
	}
}

enum alias_status
alias_resolve_recipients(const struct alias_resolver *r, const char *const *rcpts, size_t n,
    struct alias_result *out)
{
	memset(out, 0, sizeof(*out));
	out->local_domain = 1;
	for (size_t i = 0; i < n; i++) {
		struct alias_result one;
		enum alias_status st = alias_resolve(r, rcpts[i], &one);

		if (st != ALIAS_OK) {
			snprintf(out->error, sizeof(out->error), "<%.100s>: %.140s", rcpts[i],
			    one.error);
			alias_result_clear(&one);
			return st;
		}
		if (!one.local_domain)
			out->local_domain = 0;
		alias_targets_merge(out, &one);
		alias_result_clear(&one);
	}
	return ALIAS_OK;
}
