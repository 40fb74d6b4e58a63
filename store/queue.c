/*
 * queue.c - the public queue API: dispatch to the backend, the retry
 * arithmetic, what is stored of a server's error, and the free
 * functions.
 */
#include "store/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * initial * 2^(attempts - 1), capped at max.  The shift is capped before
 * it is made: past 63 bits, or once the product no longer shifts back to
 * initial, the answer is max.  At least one second, so that a zero in
 * the configuration cannot make a runner spin.
 */
uint64_t
store_queue_backoff(unsigned attempts, unsigned initial, unsigned max)
{
	unsigned shift = attempts > 1 ? attempts - 1 : 0;
	uint64_t v;

	if (shift >= 63 || (v = (uint64_t)initial << shift) >> shift != initial || v > max)
		v = max;
	return v > 0 ? v : 1;
}

/*
 * Line ends (a multi-line reply) become one space each, other control
 * bytes and anything not ASCII '?'; trailing line ends and blanks go.
 */
void
store_queue_clean_error(const char *in, char *out, size_t len)
{
	size_t k = 0, end = in ? strlen(in) : 0;

	if (len == 0)
		return;
	while (end > 0 && (in[end - 1] == '\r' || in[end - 1] == '\n' || in[end - 1] == ' '))
		end--;
	for (size_t i = 0; i < end && k + 1 < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '\r')
			continue;
		out[k++] = c == '\n' || c == '\t' ? ' ' : (c >= 0x20 && c < 0x7f ? (char)c : '?');
	}
	out[k] = '\0';
}

char *
store_recipient_domain(const char *recipient)
{
	const char *at = strrchr(recipient, '@');
	char *d = xstrdup(at ? at + 1 : "");

	str_lower(d);
	return d;
}

size_t
store_queue_claim_keep(const struct store_queue_entry *v, size_t k, size_t max)
{
	size_t keep = k;

	if (k > max) {
		const struct store_queue_entry *next = &v[max];

		keep = max;
		while (keep > 0 && v[keep - 1].message_id == next->message_id &&
		    strcmp(v[keep - 1].domain, next->domain) == 0)
			keep--;
		if (keep == 0)		/* one group larger than max: split it */
			keep = max;
	}
	return keep;
}

int
store_queue_list(struct store *s, struct store_queue_entry **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	return s->be->queue_list(s, 0, out, n);
}

int
store_queue_get(struct store *s, int64_t id, struct store_queue_entry *out)
{
	struct store_queue_entry *v = NULL;
	size_t n = 0;
	int status;

	memset(out, 0, sizeof(*out));
	if (id <= 0)
		return store_fail(s, STORE_NOTFOUND, "no queue entry %lld", (long long)id);
	status = s->be->queue_list(s, id, &v, &n);
	if (status == STORE_OK && n == 0)
		status = store_fail(s, STORE_NOTFOUND, "no queue entry %lld", (long long)id);
	if (status == STORE_OK) {
		*out = v[0];
		memset(&v[0], 0, sizeof(v[0]));
	}
	store_queue_list_free(&v, n);
	return status;
}

int
store_queue_failed(struct store *s, size_t max, struct store_queue_entry **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	return s->be->queue_failed(s, max, out, n);
}

int
store_queue_del(struct store *s, int64_t id)
{
	return s->be->queue_del(s, id);
}

int
store_queue_hold(struct store *s, int64_t id, int held)
{
	return s->be->queue_hold(s, id, held);
}

int
store_queue_flush(struct store *s, int64_t id, int64_t now, size_t *n)
{
	*n = 0;
	return s->be->queue_flush(s, id, now, n);
}

int
store_queue_claim(struct store *s, const char *owner, int64_t now, unsigned lease,
    size_t max, struct store_queue_entry **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (max == 0)
		return STORE_OK;
	return s->be->queue_claim(s, owner, now, lease, max, out, n);
}

int
store_queue_release_claims(struct store *s, const char *prefix)
{
	return s->be->queue_release_claims(s, prefix);
}

int
store_queue_renew(struct store *s, const char *owner, const int64_t *ids, size_t n,
    int64_t until)
{
	return s->be->queue_renew(s, owner, ids, n, until);
}

int
store_queue_next_due(struct store *s, int64_t *when)
{
	return s->be->queue_next_due(s, when);
}

int
store_queue_report(struct store *s, const char *owner, int64_t now,
    const struct store_retry *retry, struct store_attempt *v, size_t n)
{
	return s->be->queue_report(s, owner, now, retry, v, n);
}

int
store_queue_deliver_local(struct store *s, int64_t id, const char *owner, int64_t now)
{
	return s->be->queue_deliver_local(s, id, owner, now);
}

/*
 * The message is read through the mailbox reader, as an entry with uid 0
 * and no prefix of its own: the backends take that to mean a queue row's
 * message alone.
 */
int
store_queue_reader_open(struct store *s, const struct store_queue_entry *e,
    struct store_reader **out)
{
	struct store_entry m = { .uid = 0, .message_id = e->message_id, .size = e->size,
	    .kind = e->kind };

	*out = NULL;
	snprintf(m.uidl, sizeof(m.uidl), "of queue entry %lld", (long long)e->id);
	return s->be->reader_open(s, &m, out);
}

void
store_queue_entry_clear(struct store_queue_entry *e)
{
	free(e->sender);
	free(e->recipient);
	free(e->domain);
	free(e->last_error);
	free(e->claimed_by);
	memset(e, 0, sizeof(*e));
}

void
store_queue_list_free(struct store_queue_entry **v, size_t n)
{
	for (size_t i = 0; *v && i < n; i++)
		store_queue_entry_clear(&(*v)[i]);
	xfree(v);
}
