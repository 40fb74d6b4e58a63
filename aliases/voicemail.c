/*
 * voicemail.c - voicemail and fax deposits, what a stored one says of
 * itself, and message waiting.
 */
#include "aliases/voicemail.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aliases/deliver.h"
#include "aliases/mime.h"
#include "lib/config.h"
#include "lib/header.h"
#include "lib/log.h"
#include "lib/media.h"
#include "lib/spawn.h"

/* A caller ID as it may stand in a local part: digits and + * # only. */
static void
clean_number(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (; in && *in && o + 1 < len; in++)
		if ((*in >= '0' && *in <= '9') || *in == '+' || *in == '*' || *in == '#')
			out[o++] = *in;
	out[o] = '\0';
}

/*
 * A caller's name as a display name: UTF-8 (a name in another encoding
 * keeps what it can, bad bytes becoming U+FFFD), controls (C0, DEL, C1) as
 * spaces, no blanks around it, cut before a character that does not fit
 * in len.  Blank: no name.
 */
static void
clean_name(const char *in, char *out, size_t len)
{
	char *valid = g_utf8_make_valid(in ? in : "", -1);
	size_t o = 0, end = 0;

	for (const char *p = valid; *p; p = g_utf8_next_char(p)) {
		gunichar u = g_utf8_get_char(p);
		size_t n = (size_t)(g_utf8_next_char(p) - p);

		if (o + n + 1 > len)
			break;
		if (u < 0x20 || (u >= 0x7f && u < 0xa0) || g_unichar_isspace(u)) {
			if (o > 0 && out[o - 1] != ' ')
				out[o++] = ' ';
			continue;
		}
		memcpy(out + o, p, n);
		o += n;
		end = o;
	}
	out[end] = '\0';
	g_free(valid);
}

/* "0:12", "1:05:00" */
static void
duration_text(unsigned seconds, char *buf, size_t len)
{
	if (seconds >= 3600)
		snprintf(buf, len, "%u:%02u:%02u", seconds / 3600, seconds / 60 % 60,
		    seconds % 60);
	else
		snprintf(buf, len, "%u:%02u", seconds / 60, seconds % 60);
}

/* Who called, as the Subject and the text say it. */
static void
caller_text(const char *number, const char *name, char *buf, size_t len)
{
	if (name[0] && number[0] && strcmp(name, number) != 0)
		snprintf(buf, len, "%s (%s)", name, number);
	else if (name[0] || number[0])
		snprintf(buf, len, "%s", name[0] ? name : number);
	else
		snprintf(buf, len, "an unknown caller");
}

static GMimePart *
text_part(const char *text)
{
	GMimeTextPart *t = g_mime_text_part_new_with_subtype("plain");

	/* GMime labels the text with the charset it writes it in. */
	g_mime_text_part_set_text(t, text);
	return (GMimePart *)t;
}

static GMimePart *
file_part(const struct voicemail_deposit *d, const char *filename)
{
	int fax = d->kind == STORE_KIND_FAX;
	GMimePart *p = g_mime_part_new_with_type(fax ? "image" : "audio", fax ? "tiff" : "wav");
	GMimeStream *stream = g_mime_stream_mem_new_with_buffer(d->data, d->len);
	GMimeDataWrapper *content = g_mime_data_wrapper_new_with_stream(stream,
	    GMIME_CONTENT_ENCODING_DEFAULT);

	g_mime_part_set_content(p, content);
	g_mime_part_set_content_encoding(p, GMIME_CONTENT_ENCODING_BASE64);
	g_mime_part_set_filename(p, filename);
	g_mime_object_set_disposition((GMimeObject *)p, "attachment");
	g_object_unref(content);
	g_object_unref(stream);
	return p;
}

int
voicemail_message(const struct voicemail_deposit *d, const struct store_user *u,
    const char *domain, const char *hostname, unsigned seconds, unsigned pages,
    char **out, size_t *outlen, char *err, size_t errlen)
{
	int fax = d->kind == STORE_KIND_FAX;
	int64_t now = d->now ? d->now : (int64_t)time(NULL);
	char number[VOICEMAIL_CALLER_MAX + 1], name[VOICEMAIL_NAME_MAX + 1];
	char who[VOICEMAIL_NAME_MAX + VOICEMAIL_CALLER_MAX + 8], dur[32], when[64];
	char filename[64], received[64], *from, *to, *subject, *text, *mid, *trace;
	time_t tt = (time_t)now;
	struct tm tm;
	GMimeMessage *msg;
	GMimeMultipart *mp;
	GMimePart *part;
	GDateTime *date;
	int ret;

	mime_init();
	clean_number(d->caller, number, sizeof(number));
	clean_name(d->caller_name, name, sizeof(name));
	caller_text(number, name, who, sizeof(who));
	duration_text(seconds, dur, sizeof(dur));
	localtime_r(&tt, &tm);
	strftime(when, sizeof(when), "%A, %d %B %Y at %H:%M", &tm);
	strftime(filename, sizeof(filename), fax ? "fax-%Y%m%d-%H%M%S.tif" :
	    "voicemail-%Y%m%d-%H%M%S.wav", &tm);

	msg = g_mime_message_new(TRUE);
	from = g_strdup_printf("%s@%s", number[0] ? number : "unknown", domain);
	g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_FROM,
	    name[0] ? name : number[0] ? number : "Unknown caller", from);
	to = g_strdup_printf("%s@%s", u->login, domain);
	g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_TO, u->name, to);
	if (fax)
		subject = g_strdup_printf("Fax from %s, %u page%s", who, pages,
		    pages == 1 ? "" : "s");
	else
		subject = g_strdup_printf("Voicemail from %s, %s", who, dur);
	g_mime_message_set_subject(msg, subject, "utf-8");
	date = g_date_time_new_from_unix_local(now);
	g_mime_message_set_date(msg, date);
	g_date_time_unref(date);
	mid = mime_message_id(fax ? "fax" : "voicemail", now, hostname);
	g_mime_object_set_header((GMimeObject *)msg, "Message-ID", mid, NULL);
	/* Every stored message gets one (SPEC §4): this one was not received over SMTP. */
	strftime(received, sizeof(received), "%a, %d %b %Y %H:%M:%S %z", &tm);
	trace = g_strdup_printf("by %s (umbox %s deposit); %s", hostname,
	    fax ? "fax" : "voicemail", received);
	g_mime_object_prepend_header((GMimeObject *)msg, "Received", trace, NULL);
	g_free(trace);
	g_mime_object_set_header((GMimeObject *)msg, "X-Umbox-Kind", fax ? "fax" : "voicemail",
	    NULL);
	g_mime_object_set_header((GMimeObject *)msg, "X-Umbox-Caller-ID",
	    number[0] ? number : "unknown", NULL);
	if (fax) {
		char n[16];

		snprintf(n, sizeof(n), "%u", pages);
		g_mime_object_set_header((GMimeObject *)msg, "X-Umbox-Pages", n, NULL);
		text = g_strdup_printf("Fax from %s, received %s: %u page%s.\n\n"
		    "The fax is attached as %s.\n", who, when, pages, pages == 1 ? "" : "s",
		    filename);
	} else {
		char n[16];

		snprintf(n, sizeof(n), "%u", seconds);
		g_mime_object_set_header((GMimeObject *)msg, "X-Umbox-Duration", n, NULL);
		text = g_strdup_printf("Voicemail from %s, received %s, %s long.\n\n"
		    "The recording is attached as %s.\n", who, when, dur, filename);
	}

	mp = g_mime_multipart_new_with_subtype("mixed");
	part = text_part(text);
	g_mime_multipart_add(mp, (GMimeObject *)part);
	g_object_unref(part);
	part = file_part(d, filename);
	g_mime_multipart_add(mp, (GMimeObject *)part);
	g_object_unref(part);
	g_mime_message_set_mime_part(msg, (GMimeObject *)mp);
	g_object_unref(mp);

	ret = mime_write((GMimeObject *)msg, out, outlen, err, errlen);
	g_object_unref(msg);
	g_free(from);
	g_free(to);
	g_free(subject);
	g_free(text);
	g_free(mid);
	return ret;
}

/* The domain the mailbox is named in, else the home domain, else the host. */
static void
mailbox_domain(struct store *s, const char *mailbox, const char *hostname, char *out,
    size_t len)
{
	const char *at = strrchr(mailbox, '@');

	if (at && at[1]) {
		snprintf(out, len, "%s", at + 1);
		str_lower(out);
		return;
	}
	if (alias_home_domain(s, out, len) != 0)
		snprintf(out, len, "%s", hostname);
}

int
voicemail_caller_valid(const char *number)
{
	int digits = 0, plus = 0;

	for (; *number; number++) {
		if ((*number >= '0' && *number <= '9') || *number == '*' || *number == '#')
			digits++;
		else if (*number == '+' && digits == 0 && !plus)
			plus = 1;	/* once, before the digits: +44... */
		else if (strchr(" -().", *number) == NULL)
			return 0;
	}
	return digits > 0 && digits + plus <= VOICEMAIL_CALLER_MAX;
}

int
voicemail_deposit(struct store *s, const struct alias_resolver *r,
    const struct umbox_config *cfg, const struct voicemail_deposit *d,
    struct voicemail_result *out, char *err, size_t errlen)
{
	const struct media_limits lim = { 0, 0 };
	struct alias_message m = { 0 };
	struct alias_result targets = { 0 };
	struct store_delivery_result res = { 0 };
	struct store_user u = { 0 };
	char domain[256], sender[300], why[MEDIA_ERR_MAX], *msg = NULL;
	size_t msglen;
	enum alias_status as;
	int st;

	memset(out, 0, sizeof(*out));
	err[0] = '\0';
	if (d->kind == STORE_KIND_FAX) {
		struct tiff_info ti;

		if (tiff_parse(d->data, d->len, &lim, &ti, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s", why);
			return STORE_INVALID;
		}
		out->pages = ti.pages;
	} else {
		struct wav_info wi;

		if (wav_parse(d->data, d->len, &lim, &wi, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s", why);
			return STORE_INVALID;
		}
		out->seconds = wi.seconds;
	}
	if ((st = alias_lookup_user(s, d->mailbox, &u)) != STORE_OK) {
		if (st == STORE_NOTFOUND)
			snprintf(err, errlen, "no mailbox %s (give a login, login@domain or an "
			    "extension)", d->mailbox);
		else
			snprintf(err, errlen, "%s", store_errmsg(s));
		return st;
	}
	snprintf(out->login, sizeof(out->login), "%s", u.login);
	mailbox_domain(s, d->mailbox, cfg->general.hostname, domain, sizeof(domain));
	if (voicemail_message(d, &u, domain, cfg->general.hostname, out->seconds, out->pages,
	    &msg, &msglen, err, errlen) != 0) {
		store_user_clear(&u);
		return STORE_ERROR;
	}
	/* As mail to the mailbox's name: an alias named like it takes it. */
	as = alias_resolve(r, d->mailbox, &targets);
	if (as != ALIAS_OK) {
		snprintf(err, errlen, "%s: %s", d->mailbox, targets.error);
		st = as == ALIAS_ERROR ? STORE_ERROR : STORE_NOTFOUND;
		goto out;
	}
	/* Bounces of a forwarded voicemail go to the postmaster. */
	snprintf(sender, sizeof(sender), "postmaster@%s", domain);
	m.sender = sender;
	m.kind = d->kind;
	m.data = msg;
	m.fd = -1;
	m.len = msglen;
	m.domain = domain;
	m.check_quota = 1;
	st = alias_deliver(s, &m, targets.v, targets.n, &res);
	if (st == STORE_QUOTA)
		snprintf(err, errlen, "the %s does not fit: %s; delete mail from it"
		    " (umboxctl mail del) or raise the quota (umboxctl user set --quota)",
		    d->kind == STORE_KIND_FAX ? "fax" : "voicemail", store_errmsg(s));
	else if (st != STORE_OK)
		snprintf(err, errlen, "%s", store_errmsg(s));
	else {
		snprintf(out->qid, sizeof(out->qid), "%s", res.qid);
		out->delivered = res.delivered;
		out->deferred = res.deferred;
		out->queued = res.queued;
		for (size_t i = 0, k = 0; i < targets.n; i++) {
			if (targets.v[i].remote)
				continue;
			if (store_delivery_local_status(&res, k++) == STORE_TARGET_DELIVERED &&
			    !strlist_contains_nocase(&out->mailboxes, targets.v[i].login))
				strlist_add(&out->mailboxes, targets.v[i].login);
		}
		store_delivery_result_clear(&res);
	}
out:
	alias_result_clear(&targets);
	store_user_clear(&u);
	free(msg);
	return st;
}

void
voicemail_info_parse(const char *head, size_t len, struct voicemail_info *out)
{
	char v[512];
	uint64_t num;

	memset(out, 0, sizeof(*out));
	len = header_block_len(head, len);
	header_get(head, len, "X-Umbox-Caller-ID", out->caller, sizeof(out->caller));
	/* Counts as written by a deposit; anything else (-1, 2^64, text) is none. */
	if (header_get(head, len, "X-Umbox-Duration", v, sizeof(v)) &&
	    parse_uint(v, UINT32_MAX, &num) == 0)
		out->seconds = (unsigned)num;
	if (header_get(head, len, "X-Umbox-Pages", v, sizeof(v)) &&
	    parse_uint(v, UINT32_MAX, &num) == 0)
		out->pages = (unsigned)num;
	/* The caller's name is the From display name, decoded. */
	if (header_get(head, len, "From", v, sizeof(v))) {
		InternetAddressList *l;

		mime_init();
		if ((l = internet_address_list_parse(NULL, v)) != NULL) {
			if (internet_address_list_length(l) > 0) {
				const char *n = internet_address_get_name(
				    internet_address_list_get_address(l, 0));

				/* The number, or our placeholder, is no name. */
				if (n && strcmp(n, out->caller) != 0 &&
				    strcmp(n, "Unknown caller") != 0)
					snprintf(out->caller_name, sizeof(out->caller_name), "%s", n);
			}
			g_object_unref(l);
		}
	}
}

int
voicemail_attachment(const char *msg, size_t len, char **out, size_t *outlen, char *err,
    size_t errlen)
{
	GMimeStream *stream, *mem;
	GMimeParser *parser;
	GMimeMessage *m;
	GMimeObject *part = NULL;
	GMimePartIter *it;
	GByteArray *bytes;
	int ret = -1;

	mime_init();
	*out = NULL;
	*outlen = 0;
	stream = g_mime_stream_mem_new_with_buffer(msg, len);
	parser = g_mime_parser_new_with_stream(stream);
	m = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	g_object_unref(stream);
	if (m == NULL) {
		snprintf(err, errlen, "the message does not parse");
		return -1;
	}
	it = g_mime_part_iter_new((GMimeObject *)m);
	do {
		GMimeObject *o = g_mime_part_iter_get_current(it);
		GMimeContentType *ct = o ? g_mime_object_get_content_type(o) : NULL;

		if (o && GMIME_IS_PART(o) && ct && (g_mime_content_type_is_type(ct, "audio", "*") ||
		    g_mime_content_type_is_type(ct, "image", "tiff"))) {
			part = o;
			break;
		}
	} while (g_mime_part_iter_next(it));
	if (part == NULL) {
		snprintf(err, errlen, "the message has no audio or fax part");
		goto done;
	}
	mem = g_mime_stream_mem_new();
	if (g_mime_data_wrapper_write_to_stream(g_mime_part_get_content((GMimePart *)part),
	    mem) < 0) {
		snprintf(err, errlen, "the attachment does not decode");
		g_object_unref(mem);
		goto done;
	}
	bytes = g_mime_stream_mem_get_byte_array((GMimeStreamMem *)mem);
	*out = xmalloc(bytes->len + 1);
	memcpy(*out, bytes->data, bytes->len);
	*outlen = bytes->len;
	g_object_unref(mem);
	ret = 0;
done:
	g_mime_part_iter_free(it);
	g_object_unref(m);
	return ret;
}

int
voicemail_counts(struct store *s, int64_t user_id, unsigned *new_n, unsigned *old_n)
{
	struct store_entry *v;
	size_t n;
	int st;

	*new_n = *old_n = 0;
	if ((st = store_mailbox_list(s, user_id, &v, &n)) != STORE_OK)
		return st;
	for (size_t i = 0; i < n; i++) {
		if (v[i].kind != STORE_KIND_VOICEMAIL)
			continue;
		if (v[i].flags & STORE_FLAG_SEEN)
			(*old_n)++;
		else
			(*new_n)++;
	}
	store_entry_list_free(&v, n);
	return STORE_OK;
}

/* argv for mwi_command LOGIN NEW OLD, in buffers of the caller's. */
static int
mwi_argv(const struct umbox_config *cfg, const char *login, unsigned new_n, unsigned old_n,
    char *argv[5], char snew[16], char sold[16])
{
	const char *cmd = cfg->voicemail.mwi_command;

	if (cmd == NULL || cmd[0] == '\0')
		return -1;
	snprintf(snew, 16, "%u", new_n);
	snprintf(sold, 16, "%u", old_n);
	argv[0] = (char *)cmd;
	argv[1] = (char *)login;
	argv[2] = snew;
	argv[3] = sold;
	argv[4] = NULL;
	return 0;
}

void
voicemail_mwi_notify(struct spawn_set *set, const struct umbox_config *cfg, const char *login,
    unsigned new_n, unsigned old_n)
{
	char snew[16], sold[16], *argv[5];

	if (mwi_argv(cfg, login, new_n, old_n, argv, snew, sold) == 0)
		spawn_set_start(set, argv);
}

void
voicemail_mwi_notify_async(struct event_base *base, const struct umbox_config *cfg,
    const char *login, unsigned new_n, unsigned old_n, unsigned timeout_ms)
{
	char snew[16], sold[16], *argv[5];

	if (mwi_argv(cfg, login, new_n, old_n, argv, snew, sold) == 0)
		spawn_async(base, argv, timeout_ms);
}

/* A daemon's notice: the counts read through the readers, then the command. */
struct mwi_read {
	struct store_read read;
	struct event_base *base;
	const struct umbox_config *cfg;
	int64_t user_id;
	char *login;
	int status;
	unsigned new_n, old_n;
};

static void
mwi_read_work(struct store *s, struct store_read *r)
{
	struct mwi_read *m = COMPLETION_OWNER(r, struct mwi_read, read);
	struct store_user u;

	if (m->login == NULL) {
		if ((m->status = store_user_get_by_id(s, m->user_id, &u)) != STORE_OK) {
			if (m->status != STORE_NOTFOUND)
				log_warn("voicemail: reading user %" PRId64 ": %s", m->user_id,
				    store_errmsg(s));
			return;
		}
		m->login = u.login;
		u.login = NULL;
		store_user_clear(&u);
	}
	if ((m->status = voicemail_counts(s, m->user_id, &m->new_n, &m->old_n)) != STORE_OK)
		log_warn("voicemail: counting %s's messages: %s", m->login, store_errmsg(s));
}

static void
mwi_read_done(struct store_read *r, int cancelled)
{
	struct mwi_read *m = COMPLETION_OWNER(r, struct mwi_read, read);

	if (!cancelled && m->status == STORE_OK)
		voicemail_mwi_notify_async(m->base, m->cfg, m->login, m->new_n, m->old_n,
		    VOICEMAIL_MWI_TIMEOUT_MS);
	free(m->login);
	free(m);
}

void
voicemail_mwi_changed(struct store_readers *rd, struct event_base *base,
    const struct umbox_config *cfg, int64_t user_id, const char *login)
{
	struct mwi_read *m;

	if (cfg->voicemail.mwi_command[0] == '\0')
		return;
	m = xcalloc(1, sizeof(*m));
	m->base = base;
	m->cfg = cfg;
	m->user_id = user_id;
	m->login = login ? xstrdup(login) : NULL;
	m->read.work = mwi_read_work;
	m->read.done = mwi_read_done;
	store_read_submit(rd, &m->read);
}
