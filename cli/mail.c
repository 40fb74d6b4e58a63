/*
 * mail.c - umboxctl mail list | show | export | del
 *
 * MAILBOX is a login, login@localdomain or an extension; UID is the
 * entry's POP3 UIDL string, as mail list prints it.
 */
#include "cli/cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/header.h"

#define MAIL_HEAD_MAX	(64 * 1024)	/* how much of a message listings read */

/* The start of an entry's text, enough for its header block. */
static char *
mail_head(struct cli *c, const struct store_entry *e, size_t *len)
{
	size_t want = e->size < MAIL_HEAD_MAX ? (size_t)e->size : MAIL_HEAD_MAX;
	char *buf = xmalloc(want + 1);

	if (store_entry_read(c->store, e, 0, buf, want, len) != STORE_OK)
		*len = 0;
	buf[*len] = '\0';
	return buf;
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
		char *head = mail_head(c, &v[i], &hlen);

		hlen = header_block_len(head, hlen);
		header_get(head, hlen, "From", from, sizeof(from));
		header_get(head, hlen, "Subject", subject, sizeof(subject));
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
			json_kv_str(stdout, &first, "from", from);
			json_kv_str(stdout, &first, "subject", subject);
			fputs("}", stdout);
		} else {
			snprintf(size, sizeof(size), "%" PRIu64, v[i].size);
			if (strlen(subject) > 60)
				strcpy(subject + 57, "...");
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

/* Look up MAILBOX and UID for show, export and del. */
static int
mail_entry(struct cli *c, int argc, char **argv, struct store_entry *e)
{
	struct store_user u;
	int r;

	if (argc != 3)
		return cli_error(EX_USAGE, "usage: mail %s MAILBOX UID", argv[0]);
	if ((r = cli_open_store(c)) != 0 || (r = cli_find_mailbox(c, argv[1], &u)) != 0)
		return r;
	r = store_entry_get(c->store, u.id, argv[2], e);
	store_user_clear(&u);
	if (r == STORE_NOTFOUND)
		return cli_error(EX_NOTFOUND, "no message %s in mailbox %s (see mail list)",
		    argv[2], argv[1]);
	return r == STORE_OK ? 0 : cli_store_error(c, r);
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
	head = mail_head(c, &e, &hlen);
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
		/* Header lines as stored, CRLF shown as the terminal's newline. */
		for (char *p = head; *p; p++)
			if (*p != '\r')
				putchar(*p);
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

int
cmd_mail(struct cli *c, int argc, char **argv)
{
	if (argc < 1)
		return cli_error(EX_USAGE, "usage: mail list|show|export|del MAILBOX [UID]");
	if (strcmp(argv[0], "list") == 0)
		return mail_list(c, argc, argv);
	if (strcmp(argv[0], "show") == 0)
		return mail_show(c, argc, argv);
	if (strcmp(argv[0], "export") == 0)
		return mail_export(c, argc, argv);
	if (strcmp(argv[0], "del") == 0)
		return mail_del(c, argc, argv);
	return cli_error(EX_USAGE, "unknown verb mail %s; try list, show, export, del", argv[0]);
}
