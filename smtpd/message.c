/*
 * message.c - a message's content: the Received: header, DATA/BDAT bytes
 * into a spool (memory, then an unlinked file in data_dir for large
 * messages), and the group commit that stands behind the 250.
 */
#include "smtpd/smtpd.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "aliases/voicemail.h"
#include "lib/header.h"
#include "lib/log.h"

/*
 * A voicemail or fax forwarded by another appliance stays one: its
 * X-Umbox-Kind header says so, within the first SMTP_SPOOL_MEM bytes (the
 * part of a message held in memory).  Only from a client that may relay
 * (authenticated, or in trusted_networks): from anyone else it is email,
 * so that no outsider can leave a "voicemail" with a caller ID of their
 * choosing and light the message-waiting lamp.
 */
static enum store_kind
smtp_message_kind(const struct smtp_session *s, const char *msg, size_t len)
{
	char kind[32];

	if (!smtp_may_relay(s) || !header_get(msg, len, "X-Umbox-Kind", kind, sizeof(kind)))
		return STORE_KIND_EMAIL;
	if (strcasecmp(kind, "voicemail") == 0)
		return STORE_KIND_VOICEMAIL;
	if (strcasecmp(kind, "fax") == 0)
		return STORE_KIND_FAX;
	return STORE_KIND_EMAIL;
}

/* How often the header section says this server took the message ("by HOST (umbox)"). */
static unsigned
smtp_message_passes(const struct smtp_session *s, const char *msg, size_t len)
{
	char mark[300];
	size_t end = header_block_len(msg, len), n;
	unsigned passes = 0;

	n = (size_t)snprintf(mark, sizeof(mark), "\tby %s (umbox) with ",
	    s->server->cfg->general.hostname);
	if (n >= sizeof(mark))
		return 0;
	for (const char *p = msg; (p = memmem(p, end - (size_t)(p - msg), mark, n)) != NULL;
	    p += n)
		passes++;
	return passes;
}

/* What the header section tells, read once while it is in memory. */
static void
smtp_message_header(struct smtp_session *s, const char *msg, size_t len)
{
	struct smtp_txn *t = s->txn;

	t->kind = smtp_message_kind(s, msg, len);
	t->passes = smtp_message_passes(s, msg, len);
	t->header_read = 1;
}

static void
spool_write(struct smtp_session *s, const char *buf, size_t len)
{
	struct smtp_txn *t = s->txn;

	if (t->spool_error || len == 0)
		return;
	if (t->spool_fd < 0 && evbuffer_get_length(t->spool_mem) + len > SMTP_SPOOL_MEM) {
		size_t have = evbuffer_get_length(t->spool_mem);
		const char *first = (const char *)evbuffer_pullup(t->spool_mem, -1);

		/* The header section is read while it is in memory. */
		smtp_message_header(s, first, have);
		t->spool_fd = spool_file_open(s->server->cfg->general.data_dir);
		if (t->spool_fd < 0 || write_all(t->spool_fd, first, have) != 0) {
			t->spool_error = errno ? errno : EIO;
			log_err("%s: cannot spool a large message in %s: %s", s->c.id,
			    s->server->cfg->general.data_dir, strerror(t->spool_error));
			return;
		}
		evbuffer_drain(t->spool_mem, have);
	}
	if (t->spool_fd >= 0) {
		if (write_all(t->spool_fd, buf, len) != 0) {
			t->spool_error = errno ? errno : EIO;
			log_err("%s: writing the spool file: %s", s->c.id, strerror(t->spool_error));
			return;
		}
	} else
		evbuffer_add(t->spool_mem, buf, len);
	t->spool_len += len;
	if (len >= 2)
		memcpy(t->tail, buf + len - 2, 2);
	else {
		t->tail[0] = t->tail[1];
		t->tail[1] = buf[0];
	}
}

/*
 * The first line decides: bytes kept in t->lead until they are a field
 * name and its colon (a header: as they are), an empty line (no header:
 * as they are too), or something else, a message without a header whose
 * first line would otherwise run on from our Received: field as if it
 * were one.  That one gets the empty line that ends the header section
 * (RFC 5322 §2.1), as Postfix's cleanup gives it.
 */
static void
lead_settle(struct smtp_session *s, int header)
{
	struct smtp_txn *t = s->txn;

	t->lead_done = 1;
	if (!header)
		spool_write(s, "\r\n", 2);
	spool_write(s, t->lead, t->lead_len);
	t->lead_len = 0;
}

static void
spool_sink(void *ctx, const char *buf, size_t len)
{
	struct smtp_session *s = ctx;
	struct smtp_txn *t = s->txn;
	size_t i;

	for (i = 0; !t->lead_done && i < len; i++) {
		unsigned char c = (unsigned char)buf[i];
		size_t at = t->lead_len + i;

		if (c == ':' && at > 0)
			lead_settle(s, 1);
		else if ((c == '\r' || c == '\n') && at == 0)
			lead_settle(s, 1);
		else if (c <= ' ' || c >= 0x7f || c == ':' || at >= SMTP_LEAD_MAX)
			lead_settle(s, 0);
	}
	if (t->lead_done) {
		spool_write(s, buf, len);
		return;
	}
	/* Still a possible field name: keep it until the rest comes. */
	memcpy(t->lead + t->lead_len, buf, len);
	t->lead_len += len;
}

/* RFC 5322 date, local time with its offset. */
static void
rfc5322_date(char *buf, size_t len)
{
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(buf, len, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* RFC 3848 protocol names, and RFC 6531 §4.3's for a transaction with SMTPUTF8. */
static const char *
smtp_protocol(const struct smtp_session *s)
{
	static const char *const names[2][2][2] = {
		{ { "SMTP", "SMTP" }, { "ESMTP", "ESMTPA" } },
		{ { "SMTPS", "SMTPS" }, { "ESMTPS", "ESMTPSA" } },
	};
	static const char *const utf8[2][2] = {
		{ "UTF8SMTP", "UTF8SMTPA" }, { "UTF8SMTPS", "UTF8SMTPSA" },
	};

	if (s->esmtp && s->txn && s->txn->smtputf8)
		return utf8[s->c.tls][s->user != NULL];
	return names[s->c.tls][s->esmtp][s->user != NULL];
}

/*
 * The HELO name as the Received: header gives it.  It is any printable
 * word the client chose; a "(" would open a comment that swallows the
 * rest of the field, a ";" would end the list before the real date.
 * What a domain or an address literal cannot hold becomes "_".
 */
static void
received_helo(const char *helo, char *buf, size_t len)
{
	size_t i;

	for (i = 0; helo[i] && i + 1 < len; i++) {
		unsigned char c = (unsigned char)helo[i];

		buf[i] = isalnum(c) || strchr(".-_:[]", c) ? (char)c : '_';
	}
	buf[i] = '\0';
}

int
smtp_message_begin(struct smtp_session *s, int bdat)
{
	struct smtp_txn *t = s->txn;
	const struct umbox_config *cfg = s->server->cfg;
	char date[64], host[64], tls[128], helo[ADDR_DOMAIN_MAX + 1], *hdr;

	if (t->data_started) {
		smtp_reply(s, "503 5.5.1 Error: DATA and BDAT cannot be mixed");
		return -1;
	}
	t->data_started = 1;
	s->data_started = time(NULL);
	t->spool_mem = evbuffer_new();
	/*
	 * The queue ID: seconds, process and a counter, so that it is unique
	 * across restarts and beside umboxctl's deposits; on PostgreSQL with
	 * the node's name after a dot, unique across the nodes too.
	 */
	snprintf(t->qid, sizeof(t->qid), "%08llX%04X%05X%s%s", (unsigned long long)time(NULL),
	    smtp_daemon(s)->qid_pid,
	    __atomic_add_fetch(&smtp_daemon(s)->next_qid, 1, __ATOMIC_RELAXED) & 0xfffff,
	    cfg->store.backend == CONFIG_BACKEND_POSTGRESQL ? "." : "",
	    cfg->store.backend == CONFIG_BACKEND_POSTGRESQL ? cfg->store.node_id : "");
	smtp_data_init(&t->data, bdat, cfg->smtpd.max_message_size, spool_sink, s);

	rfc5322_date(date, sizeof(date));
	snprintf(host, sizeof(host), "%s", s->c.peer + 1);
	*strrchr(host, ']') = '\0';
	received_helo(s->helo ? s->helo : "unknown", helo, sizeof(helo));
	hdr = xasprintf("Received: from %s ([%s])\r\n"
	    "\tby %s (umbox) with %s id %s%s%s%s\r\n"
	    "\t%s%s%s%s; %s\r\n",
	    helo, host,
	    cfg->general.hostname, smtp_protocol(s), t->qid,
	    s->c.tls ? "\r\n\t(" : "", conn_tls_info(&s->c, tls, sizeof(tls)), s->c.tls ? ")" : "",
	    t->nrcpts == 1 ? "for <" : "", t->nrcpts == 1 ? t->rcpts[0].address : "",
	    t->nrcpts == 1 ? ">" : "", t->nrcpts == 1 ? "" : "(multiple recipients)", date);
	spool_write(s, hdr, strlen(hdr));
	free(hdr);
	return 0;
}

static void
smtp_message_done(struct smtp_session *s, int close_after)
{
	smtp_txn_free(&s->txn);
	smtp_set_state(s, SMTP_S_READY);
	if (close_after || s->loop->stopping) {
		conn_close(&s->c);
		return;
	}
	smtp_resume(s);
}

/* A voicemail delivered here changes its mailboxes' message waiting counts. */
static void
smtp_mwi(struct smtp_session *s, const struct store_delivery_result *r)
{
	const struct umbox_config *cfg = s->server->cfg;
	const struct smtp_txn *t = s->txn;
	size_t k = 0;

	if (cfg->voicemail.mwi_command[0] == '\0' || t->kind != STORE_KIND_VOICEMAIL)
		return;
	for (size_t i = 0; i < t->targets.n; i++) {
		if (t->targets.v[i].remote)
			continue;
		if (store_delivery_local_status(r, k++) == STORE_TARGET_DELIVERED)
			voicemail_mwi_changed(s->loop->readers, s->loop->base, cfg,
			    t->targets.v[i].user_id, t->targets.v[i].login);
	}
}

/* Local targets whose mailbox was full wait in the queue: say so in the log. */
static void
smtp_log_deferred(struct smtp_session *s, const struct store_delivery_result *r)
{
	const struct smtp_txn *t = s->txn;
	size_t k = 0;

	if (r->deferred == 0)
		return;
	for (size_t i = 0; i < t->targets.n; i++) {
		if (t->targets.v[i].remote)
			continue;
		if (store_delivery_local_status(r, k++) == STORE_TARGET_DEFERRED_FULL)
			log_info("%s: qid=%s to=%s status=deferred (mailbox full)", s->c.id, r->qid,
			    t->targets.v[i].login);
	}
}

static void
smtp_commit_done(struct store_req *req, void *arg)
{
	struct smtp_session *s = arg;
	const struct store_delivery_result *r = store_req_delivery(req);
	struct smtp_txn *t = s->txn;
	char from[300];

	s->commit = NULL;
	switch (store_req_status(req)) {
	case STORE_OK:
		log_info("%s: qid=%s from=<%s> size=%" PRIu64 " nrcpt=%zu proto=%s", s->c.id, r->qid,
		    log_escape(from, sizeof(from), t->sender.mailbox, strlen(t->sender.mailbox)),
		    t->spool_len, t->nrcpts, smtp_protocol(s));
		smtp_log_deferred(s, r);
		smtp_reply(s, "250 2.0.0 Ok: queued as %s", r->qid);
		smtp_mwi(s, r);
		if (r->queued > 0)
			queue_runner_kick(smtp_daemon(s)->queue);
		break;
	case STORE_QUOTA:
		/* Who is full and by how much is for the log, never for the client. */
		log_info("%s: qid=%s refused: %s", s->c.id, t->qid, store_req_errmsg(req));
		smtp_reply(s, "452 4.2.2 Mailbox full");
		break;
	case STORE_FULL:
		log_err("%s: store: %s", s->c.id, store_req_errmsg(req));
		smtp_reply(s, "452 4.3.1 Insufficient system storage");
		break;
	default:
		log_err("%s: store: %s", s->c.id, store_req_errmsg(req));
		smtp_reply(s, "451 4.3.0 Error: local error in processing");
		break;
	}
	smtp_message_done(s, 0);
}

/*
 * The store did not confirm the message in time.  It is not refused
 * (the commit may yet go through, and then the client's retry stores it
 * twice), only not acknowledged; a delivery not yet begun is dropped.
 */
static void
smtp_commit_timeout(struct conn *c)
{
	struct smtp_session *s = (struct smtp_session *)c;

	log_err("%s: qid=%s the store did not answer in time", s->c.id, s->txn->qid);
	store_req_cancel(s->commit);
	s->commit = NULL;
	smtp_reply(s, "451 4.3.0 Error: local error in processing");
	smtp_message_done(s, 0);
}

/*
 * SIGTERM: a commit still unanswered is waited for at most the store's
 * short limit from now (5 s on PostgreSQL), so that a server that does not
 * answer cannot hold the stop for the whole STORE_WAIT_COMMIT.
 */
void
smtp_commit_stopping(struct smtp_session *s)
{
	if (s->commit)
		conn_set_timer(&s->c, store_wait_limit(s->server->cfg) * 1000, smtp_commit_timeout);
}

/*
 * The content is complete: refuse it for what the parser saw, or commit
 * it to every target at once through the delivery pipeline: local
 * mailboxes (a full one is deferred through the queue) and the queue.
 */
void
smtp_message_end(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	struct alias_message m = { .fd = -1 };

	/* The content is over whatever the answer: no more bytes are fed to it. */
	smtp_set_state(s, SMTP_S_READY);
	conn_wait(&s->c);
	if (t->data.flags & SMTP_DATA_F_TOO_BIG) {
		smtp_reply(s, "552 5.3.4 Error: message file too big");
		smtp_message_done(s, 0);
		return;
	}
	if (t->data.received > SMTP_HOPS_MAX) {
		smtp_reply(s, "554 5.4.6 Too many hops: mail loop detected");
		smtp_message_done(s, 0);
		return;
	}
	if (!t->header_read && t->spool_fd < 0)
		smtp_message_header(s, (const char *)evbuffer_pullup(t->spool_mem, -1),
		    evbuffer_get_length(t->spool_mem));
	if (t->passes > SMTP_PASSES_MAX) {
		log_info("%s: qid=%s from=<%s> refused: it passed here %u times (a forwarding"
		    " loop)", s->c.id, t->qid, t->sender.mailbox, t->passes);
		smtp_reply(s, "554 5.4.6 Mail forwarding loop: the message passed here %u times",
		    t->passes);
		smtp_message_done(s, 0);
		return;
	}
	if (t->data.flags & SMTP_DATA_F_NUL) {
		smtp_reply(s, "554 5.6.0 Error: message contains NUL characters");
		smtp_message_done(s, 0);
		return;
	}
	if (!t->lead_done && t->lead_len > 0)
		lead_settle(s, 0);	/* a first word and no colon: not a header */
	/*
	 * BDAT content may stop without a final CRLF; stored messages always
	 * end with one, so that POP3 sends exactly the size it lists.
	 */
	if (t->tail[0] != '\r' || t->tail[1] != '\n')
		spool_write(s, "\r\n", 2);
	if (t->spool_error) {
		/* RFC 5321 §4.2.3, RFC 3463 X.3.1: a full disk is said as such. */
		if (t->spool_error == ENOSPC || t->spool_error == EDQUOT)
			smtp_reply(s, "452 4.3.1 Insufficient system storage");
		else
			smtp_reply(s, "451 4.3.0 Error: local error in processing");
		smtp_message_done(s, 0);
		return;
	}

	/* Delivered-To: names the domain the client used, else our hostname. */
	m.domain = s->server->cfg->general.hostname;
	for (size_t i = 0; i < t->nrcpts; i++) {
		const char *at = strrchr(t->rcpts[i].address, '@');
		if (t->rcpts[i].local && at) {
			m.domain = at + 1;
			break;
		}
	}
	m.qid = t->qid;
	m.sender = t->sender.mailbox;
	m.len = t->spool_len;
	if (t->spool_fd >= 0)
		m.fd = t->spool_fd;
	else
		m.data = evbuffer_pullup(t->spool_mem, -1);
	m.kind = t->kind;
	m.check_quota = 1;
	s->commit = alias_deliver_req(&m, t->targets.v, t->targets.n, smtp_commit_done, s);
	store_writer_submit(s->loop->writer, s->commit);
	if (s->commit)
		conn_set_timer(&s->c, STORE_WAIT_COMMIT * 1000, smtp_commit_timeout);
}

/*
 * Content bytes for the current DATA or BDAT chunk.  Returns how many
 * were used; for DATA that stops at the end-of-data line.
 */
size_t
smtp_message_feed(struct smtp_session *s, const char *buf, size_t len)
{
	struct smtp_txn *t = s->txn;
	size_t used;

	if (s->state == SMTP_S_DATA) {
		used = smtp_data_feed(&t->data, buf, len);
		if (t->data.done)
			smtp_message_end(s);
		return used;
	}
	/* BDAT: the caller never hands more than the chunk's remaining bytes. */
	if (!t->bdat_discard)
		smtp_data_feed(&t->data, buf, len);
	t->bdat_left -= len;
	if (t->bdat_left > 0)
		return len;
	if (t->bdat_discard) {
		int had_helo = s->helo != NULL;

		smtp_txn_free(&s->txn);
		smtp_set_state(s, had_helo ? SMTP_S_READY : SMTP_S_CONNECTED);
		smtp_reply(s, "503 5.5.1 Error: BDAT without a valid recipient");
		return len;
	}
	if (!t->bdat_last) {
		smtp_set_state(s, SMTP_S_RCPT);
		smtp_reply(s, "250 2.0.0 %" PRIu64 " octets received", t->bdat_chunk);
		return len;
	}
	smtp_data_finish(&t->data);
	smtp_message_end(s);
	return len;
}
