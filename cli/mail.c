/*
 * mail.c - umboxctl mail list | show | export | del | speak
 *
 * MAILBOX is a login, login@localdomain or an extension; UID is the
 * entry's POP3 UIDL string, as mail list prints it.
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aliases/speak.h"
#include "aliases/mime.h"
#include "lib/header.h"

#define MAIL_HEAD_MAX	(64 * 1024)	/* how much of a message listings read */
#define MAIL_SPEAK_MAX	(32 * 1024 * 1024)	/* the largest message read aloud */

/* The start of an entry's text, enough for its header block. */
char *
cli_entry_head(struct cli *c, const struct store_entry *e, size_t *len)
{
	size_t want = e->size < MAIL_HEAD_MAX ? (size_t)e->size : MAIL_HEAD_MAX;
	char *buf = xmalloc(want + 1);

	if (store_entry_read(c->store, e, 0, buf, want, len) != STORE_OK)
		*len = 0;
	buf[*len] = '\0';
	return buf;
}

/* RFC 2047 encoded words ("=?utf-8?q?...?=") as the text they stand for. */
static void
decode_words(char *text, size_t len)
{
	char *d;

	if (strstr(text, "=?") == NULL)
		return;
	mime_init();
	if ((d = g_mime_utils_header_decode_text(NULL, text)) != NULL) {
		text_copy(text, len, d);
		g_free(d);
	}
}

static const char *
mail_flags(const struct store_entry *e)
{
	if (e->kind == STORE_KIND_VOICEMAIL)
		return e->flags & STORE_FLAG_SEEN ? "heard" : "new";
	return e->flags & STORE_FLAG_SEEN ? "read" : "new";
}

static int
mail_list(struct cli *c, int argc, char **argv)
{
	struct store_user u;
	struct store_entry *v;
	size_t n;
	int r;

	if (argc != 2)
		return cli_error(EX_USAGE, "usage: mail list MAILBOX");
	if ((r = cli_open_store(c)) != 0 || (r = cli_find_mailbox(c, argv[1], &u)) != 0)
		return r;
	r = store_mailbox_list(c->store, u.id, &v, &n);
	store_user_clear(&u);
	if (r != STORE_OK)
		return cli_store_error(c, r);

	struct table *t = c->json ? NULL :
	    table_new(7, "UID", "KIND", "STATUS", "SIZE", "ARRIVED", "FROM", "SUBJECT");
	if (c->json)
		fputs("[", stdout);
	for (size_t i = 0; i < n; i++) {
		char from[256], subject[256], when[32], size[32];
		size_t hlen;
		char *head = cli_entry_head(c, &v[i], &hlen);
		int has_from, has_subject;

		hlen = header_block_len(head, hlen);
		has_from = header_get(head, hlen, "From", from, sizeof(from));
		has_subject = header_get(head, hlen, "Subject", subject, sizeof(subject));
		decode_words(from, sizeof(from));
		decode_words(subject, sizeof(subject));
		free(head);
		if (c->json) {
			int first = 1;

			fputs(i ? ",\n {" : "{", stdout);
			json_kv_str(stdout, &first, "uid", v[i].uidl);
			json_kv_str(stdout, &first, "kind", store_kind_name(v[i].kind));
			json_kv_str(stdout, &first, "status", mail_flags(&v[i]));
			json_kv_int(stdout, &first, "size", (long long)v[i].size);
			json_kv_int(stdout, &first, "arrived", v[i].arrived);
			json_kv_str(stdout, &first, "sender", v[i].sender);
			json_kv_str(stdout, &first, "from", has_from ? from : NULL);
			json_kv_str(stdout, &first, "subject", has_subject ? subject : NULL);
			fputs("}", stdout);
		} else {
			snprintf(size, sizeof(size), "%" PRIu64, v[i].size);
			text_cut(subject, 60);
			table_row(t, v[i].uidl, store_kind_name(v[i].kind), mail_flags(&v[i]),
			    size, cli_time(v[i].arrived, when, sizeof(when)), from, subject);
		}
	}
	if (c->json)
		fputs("]\n", stdout);
	else
		table_print(t, stdout);
	store_entry_list_free(&v, n);
	return EX_DONE;
}

/* Look up MAILBOX and UID (argv[1], argv[2]) for NOUN's verb argv[0]. */
int
cli_find_entry(struct cli *c, const char *noun, int argc, char **argv, struct store_entry *e)
{
	struct store_user u;
	int r;

	if (argc != 3)
		return cli_error(EX_USAGE, "usage: %s %s MAILBOX UID", noun, argv[0]);
	if ((r = cli_open_store(c)) != 0 || (r = cli_find_mailbox(c, argv[1], &u)) != 0)
		return r;
	r = store_entry_get(c->store, u.id, argv[2], e);
	store_user_clear(&u);
	if (r == STORE_NOTFOUND)
		return cli_error(EX_NOTFOUND, "no %s %s in mailbox %s (see %s list)",
		    strcmp(noun, "mail") == 0 ? "message" : noun, argv[2], argv[1], noun);
	return r == STORE_OK ? 0 : cli_store_error(c, r);
}

static int
mail_entry(struct cli *c, int argc, char **argv, struct store_entry *e)
{
	return cli_find_entry(c, "mail", argc, argv, e);
}

static int
mail_show(struct cli *c, int argc, char **argv)
{
	struct store_entry e;
	char when[32];
	size_t hlen;
	char *head;
	int r;

	if ((r = mail_entry(c, argc, argv, &e)) != 0)
		return r;
	head = cli_entry_head(c, &e, &hlen);
	hlen = header_block_len(head, hlen);
	head[hlen] = '\0';
	if (c->json) {
		int first = 1;

		fputs("{", stdout);
		json_kv_str(stdout, &first, "uid", e.uidl);
		json_kv_str(stdout, &first, "kind", store_kind_name(e.kind));
		json_kv_str(stdout, &first, "status", mail_flags(&e));
		json_kv_int(stdout, &first, "size", (long long)e.size);
		json_kv_int(stdout, &first, "arrived", e.arrived);
		json_kv_str(stdout, &first, "sender", e.sender);
		json_kv_str(stdout, &first, "headers", head);
		fputs("}\n", stdout);
	} else {
		printf("uid:      %s\n", e.uidl);
		printf("kind:     %s\n", store_kind_name(e.kind));
		printf("status:   %s\n", mail_flags(&e));
		printf("size:     %" PRIu64 "\n", e.size);
		printf("arrived:  %s\n", cli_time(e.arrived, when, sizeof(when)));
		printf("sender:   <%s>\n\n", e.sender ? e.sender : "");
		/*
		 * Header lines as stored, CRLF shown as the terminal's newline,
		 * and what a terminal would act on (an outsider's escape
		 * sequences) as '?', as in the tables.
		 */
		char *o = head, *shown;

		for (char *p = head; *p; p++)
			if (*p != '\r')
				*o++ = *p;
		*o = '\0';
		shown = text_printable(head, 1);
		fputs(shown, stdout);
		free(shown);
	}
	free(head);
	store_entry_clear(&e);
	return EX_DONE;
}

/* The message exactly as POP3 RETR would send it (before dot-stuffing). */
static int
mail_export(struct cli *c, int argc, char **argv)
{
	struct store_entry e;
	struct store_reader *rd;
	uint64_t off = 0;
	char *buf;
	int r;

	if ((r = mail_entry(c, argc, argv, &e)) != 0)
		return r;
	if ((r = store_reader_open(c->store, &e, &rd)) != STORE_OK) {
		store_entry_clear(&e);
		return cli_store_error(c, r);
	}
	buf = xmalloc(64 * 1024);
	while (off < e.size) {
		size_t got;

		if ((r = store_reader_read(rd, off, buf, 64 * 1024, &got)) != STORE_OK) {
			r = cli_store_error(c, r);
			break;
		}
		if (got == 0)
			break;
		if (fwrite(buf, 1, got, stdout) != got) {
			r = cli_error(EX_FAILED, "writing the message: %s", strerror(errno));
			break;
		}
		off += got;
	}
	free(buf);
	store_reader_close(&rd);
	store_entry_clear(&e);
	return r;
}

static int
mail_del(struct cli *c, int argc, char **argv)
{
	struct store_entry e;
	int r;

	if ((r = mail_entry(c, argc, argv, &e)) != 0)
		return r;
	r = store_entries_delete(c->store, e.user_id, &e.uid, 1);
	if (r == STORE_OK) {
		printf("message %s deleted from %s\n", e.uidl, argv[1]);
		fflush(stdout);
		cli_mwi_after_delete(c, &e);
	}
	store_entry_clear(&e);
	return r == STORE_OK ? EX_DONE : cli_store_error(c, r);
}

/* The whole text of entry e, NUL-terminated, in *out (malloc'd). */
int
cli_entry_text(struct cli *c, const struct store_entry *e, char **out, size_t *len)
{
	struct store_reader *rd;
	char *buf;
	size_t off = 0;
	int r;

	*out = NULL;
	if ((r = store_reader_open(c->store, e, &rd)) != STORE_OK)
		return cli_store_error(c, r);
	buf = xmalloc((size_t)e->size + 1);
	while (off < e->size) {
		size_t got;

		if ((r = store_reader_read(rd, off, buf + off, (size_t)e->size - off, &got))
		    != STORE_OK) {
			store_reader_close(&rd);
			free(buf);
			return cli_store_error(c, r);
		}
		if (got == 0)
			break;
		off += got;
	}
	store_reader_close(&rd);
	buf[off] = '\0';
	*out = buf;
	*len = off;
	return 0;
}

/*
 * Write the file at path whole or not at all: into a temporary file in
 * the same directory, then renamed over path, so that a reader (a phone
 * system picking the file up) never sees half of it.
 */
static int
mail_write_file(const char *path, const unsigned char *data, size_t len)
{
	char *tmp = xasprintf("%s.XXXXXX", path);
	int fd = mkstemp(tmp), saved;

	if (fd < 0) {
		saved = errno;
		free(tmp);
		return cli_error(EX_FAILED, "cannot create a file beside %s: %s", path,
		    strerror(saved));
	}
	if (fchmod(fd, 0644) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0) {
		saved = errno;
		close(fd);
		unlink(tmp);
		free(tmp);
		return cli_error(EX_FAILED, "writing %s: %s", path, strerror(saved));
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		saved = errno;
		unlink(tmp);
		free(tmp);
		return cli_error(EX_FAILED, "writing %s: %s", path, strerror(saved));
	}
	free(tmp);
	return EX_DONE;
}

/*
 * Read an email aloud into a WAVE file for the phone (SPEC §8): its
 * sender, subject, date and text in [voicemail] speech_voice.
 * Voicemail is already audio and is played, not spoken.
 */
static int
mail_speak(struct cli *c, int argc, char **argv)
{
	const char *out = NULL;
	char *args[3], *msg, *text;
	char err[SPEAK_ERR_MAX];
	struct store_entry e;
	unsigned char *wav;
	size_t len = 0, wavlen;
	int n = 0, r;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--out") == 0) {
			if (++i >= argc)
				return cli_error(EX_USAGE, "--out needs a file name");
			out = argv[i];
		} else if (strncmp(argv[i], "--out=", 6) == 0)
			out = argv[i] + 6;
		else if (i > 0 && argv[i][0] == '-')
			return cli_error(EX_USAGE, "unknown option %s for mail speak", argv[i]);
		else if (n < 3)
			args[n++] = argv[i];
		else
			return cli_error(EX_USAGE, "usage: mail speak MAILBOX UID [--out FILE]");
	}
	if (n != 3)
		return cli_error(EX_USAGE, "usage: mail speak MAILBOX UID [--out FILE]");
	if (out != NULL && *out == '\0')
		return cli_error(EX_USAGE, "--out needs a file name");
	if (out == NULL && isatty(STDOUT_FILENO))
		return cli_error(EX_USAGE, "not writing audio to a terminal: give --out FILE"
		    " or redirect the output");
	if ((r = mail_entry(c, n, args, &e)) != 0)
		return r;
	if (e.kind == STORE_KIND_VOICEMAIL) {
		r = cli_error(EX_FAILED, "%s is a voicemail: use voicemail play", e.uidl);
		store_entry_clear(&e);
		return r;
	}
	if (e.size > MAIL_SPEAK_MAX)
		r = cli_error(EX_FAILED, "message %s is %" PRIu64 " bytes, too long to read"
		    " aloud", e.uidl, e.size);
	else
		r = cli_entry_text(c, &e, &msg, &len);
	store_entry_clear(&e);
	if (r != 0)
		return r;
	r = speak_text_of_message(msg, len, &text, err, sizeof(err));
	free(msg);
	if (r != 0)
		return cli_error(EX_FAILED, "message %s: %s", args[2], err);
	r = speak_wav(text, c->cfg.voicemail.speech_voice, &wav, &wavlen, err, sizeof(err));
	free(text);
	speak_shutdown();
	if (r != 0)
		return cli_error(EX_FAILED, "%s", err);
	if (out != NULL)
		r = mail_write_file(out, wav, wavlen);
	else if (write_all(STDOUT_FILENO, wav, wavlen) != 0)
		r = cli_error(EX_FAILED, "writing the audio: %s", strerror(errno));
	else
		r = EX_DONE;
	free(wav);
	return r;
}

int
cmd_mail(struct cli *c, int argc, char **argv)
{
	if (argc < 1)
		return cli_error(EX_USAGE, "usage: mail list|show|export|del|speak MAILBOX [UID]");
	if (strcmp(argv[0], "list") == 0)
		return mail_list(c, argc, argv);
	if (strcmp(argv[0], "show") == 0)
		return mail_show(c, argc, argv);
	if (strcmp(argv[0], "export") == 0)
		return mail_export(c, argc, argv);
	if (strcmp(argv[0], "del") == 0)
		return mail_del(c, argc, argv);
	if (strcmp(argv[0], "speak") == 0)
		return mail_speak(c, argc, argv);
	return cli_error(EX_USAGE, "unknown verb mail %s; try list, show, export, del, speak",
	    argv[0]);
}
