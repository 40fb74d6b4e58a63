/*
 * voicemail.c - umboxctl voicemail deposit | list | play | heard,
 * fax deposit, and mwi: the phone's side of the unified inbox (SPEC §8).
 *
 * They act on the same mailbox entries POP3 sees: a voicemail heard on
 * the phone or retrieved by Outlook is old; one deleted on either side is
 * gone from both.
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aliases/resolve.h"
#include "aliases/voicemail.h"
#include "lib/log.h"
#include "lib/spawn.h"

#define DEPOSIT_FILE_MAX	(64u * 1024 * 1024)	/* an hour of 8 kHz 16-bit is 55 MB */

/* The whole file, or NULL with the error printed. */
static char *
read_file(const char *path, size_t *len)
{
	/* O_NONBLOCK: opening a FIFO does not wait for a writer (it is refused below). */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	FILE *f;
	struct stat st;
	char *buf;

	if (fd < 0) {
		cli_error(EX_FAILED, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		cli_error(EX_FAILED, "%s: not a regular file", path);
		close(fd);
		return NULL;
	}
	if ((f = fdopen(fd, "rb")) == NULL) {
		cli_error(EX_FAILED, "%s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	if ((uint64_t)st.st_size > DEPOSIT_FILE_MAX) {
		cli_error(EX_FAILED, "%s: %" PRIu64 " bytes, more than the %u MB a deposit "
		    "may have", path, (uint64_t)st.st_size, DEPOSIT_FILE_MAX >> 20);
		fclose(f);
		return NULL;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	*len = fread(buf, 1, (size_t)st.st_size, f);
	if (ferror(f) || *len != (size_t)st.st_size) {
		cli_error(EX_FAILED, "%s: cannot read it whole", path);
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	return buf;
}

/* Tell the phone system of a mailbox whose counts changed: started into set. */
static void
mwi_changed(struct cli *c, const char *login, struct spawn_set *set)
{
	struct store_user u;
	unsigned n, o;

	if (c->cfg.voicemail.mwi_command[0] == '\0')
		return;
	if (store_user_get(c->store, login, &u) != STORE_OK)
		return;
	if (voicemail_counts(c->store, u.id, &n, &o) == STORE_OK)
		voicemail_mwi_notify(set, &c->cfg, u.login, n, o);
	store_user_clear(&u);
}

/* The same for one mailbox, waited for. */
static void
mwi_changed_one(struct cli *c, const char *login)
{
	struct spawn_set set = { 0 };

	mwi_changed(c, login, &set);
	spawn_set_wait(&set, VOICEMAIL_MWI_TIMEOUT_MS);
}

/* voicemail deposit / fax deposit */
static int
deposit(struct cli *c, int argc, char **argv, enum store_kind kind)
{
	int fax = kind == STORE_KIND_FAX;
	static const struct option vm_opts[] = {
		{ "audio", required_argument, NULL, 'a' },
		{ "caller", required_argument, NULL, 'c' },
		{ "caller-name", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct option fax_opts[] = {
		{ "tiff", required_argument, NULL, 'a' },
		{ "caller", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	const char *usage = fax ? "fax deposit MAILBOX --tiff FILE [--caller NUMBER]" :
	    "voicemail deposit MAILBOX --audio FILE [--caller NUMBER] [--caller-name NAME]";
	struct voicemail_deposit d = { .kind = kind };
	struct voicemail_result res;
	struct alias_resolver rv = { 0 };
	const char *file = NULL;
	char err[512];
	char *data;
	int ch, st;

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", fax ? fax_opts : vm_opts, NULL)) != -1) {
		switch (ch) {
		case 'a': file = optarg; break;
		case 'c': d.caller = optarg; break;
		case 'n': d.caller_name = optarg; break;
		default:
			return cli_bad_option(argc, argv, ch, usage);
		}
	}
	if (argc - optind != 1 || file == NULL)
		return cli_error(EX_USAGE, "usage: %s", usage);
	if (d.caller && strlen(d.caller) > VOICEMAIL_CALLER_MAX &&
	    strspn(d.caller, "0123456789+*#") == strlen(d.caller))
		return cli_error(EX_USAGE, "--caller has %zu characters; a phone number has at"
		    " most %d", strlen(d.caller), VOICEMAIL_CALLER_MAX);
	if (d.caller && !voicemail_caller_valid(d.caller)) {
		char shown[2 * VOICEMAIL_CALLER_MAX];

		/* What was given, controls and all, without breaking the line. */
		log_escape(shown, sizeof(shown), d.caller, strlen(d.caller));
		return cli_error(EX_USAGE, "--caller %s is not a phone number (digits, +, *, #;"
		    " a + only first)", shown);
	}
	d.mailbox = argv[optind];
	if ((st = cli_open_store(c)) != 0)
		return st;
	if ((data = read_file(file, &d.len)) == NULL)
		return EX_FAILED;
	d.data = data;
	rv.store = c->store;
	rv.postmaster = c->cfg.general.postmaster;
	rv.srs_secret = c->cfg.queue.srs_secret;
	st = voicemail_deposit(c->store, &rv, &c->cfg, &d, &res, err, sizeof(err));
	free(data);
	switch (st) {
	case STORE_OK:
		break;
	case STORE_INVALID:
		return cli_error(EX_FAILED, "%s: %s; nothing was stored", file, err);
	case STORE_NOTFOUND:
		return cli_error(EX_NOTFOUND, "%s", err);
	default:
		return cli_error(EX_FAILED, "%s; nothing was stored", err);
	}
	if (fax)
		printf("fax deposited: %s, %u page%s, %zu delivered, %zu queued\n", res.qid,
		    res.pages, res.pages == 1 ? "" : "s", res.delivered,
		    res.queued + res.deferred);
	else
		printf("voicemail deposited: %s, %u s, %zu delivered, %zu queued\n", res.qid,
		    res.seconds, res.delivered, res.queued + res.deferred);
	fflush(stdout);
	if (!fax) {
		struct spawn_set set = { 0 };

		/* Every mailbox's helper at once: one wait, not one per mailbox. */
		for (size_t i = 0; i < res.mailboxes.n; i++)
			mwi_changed(c, res.mailboxes.v[i], &set);
		spawn_set_wait(&set, VOICEMAIL_MWI_TIMEOUT_MS);
	}
	strlist_clear(&res.mailboxes);
	return EX_DONE;
}

static void
duration(unsigned s, char *buf, size_t len)
{
	snprintf(buf, len, "%u:%02u", s / 60, s % 60);
}

static int
vm_list(struct cli *c, int argc, char **argv)
{
	struct store_user u;
	struct store_entry *v;
	struct table *t = NULL;
	size_t n, shown = 0;
	int r;

	if (argc != 2)
		return cli_error(EX_USAGE, "usage: voicemail list MAILBOX");
	if ((r = cli_open_store(c)) != 0 || (r = cli_find_mailbox(c, argv[1], &u)) != 0)
		return r;
	r = store_mailbox_list(c->store, u.id, &v, &n);
	store_user_clear(&u);
	if (r != STORE_OK)
		return cli_store_error(c, r);
	if (c->json)
		fputs("[", stdout);
	else
		t = table_new(5, "UID", "CALLER", "DATE", "DURATION", "STATUS");
	for (size_t i = 0; i < n; i++) {
		struct voicemail_info vi;
		char when[32], dur[16], who[VOICEMAIL_NAME_MAX + VOICEMAIL_CALLER_MAX + 8];
		const char *status = v[i].flags & STORE_FLAG_SEEN ? "heard" : "new";
		size_t hlen;
		char *head;

		if (v[i].kind != STORE_KIND_VOICEMAIL)
			continue;
		head = cli_entry_head(c, &v[i], &hlen);
		voicemail_info_parse(head, hlen, &vi);
		free(head);
		if (c->json) {
			int first = 1;

			fputs(shown++ ? ",\n {" : "{", stdout);
			json_kv_str(stdout, &first, "uid", v[i].uidl);
			/* A deposit without a number says "unknown" in the header. */
			json_kv_str(stdout, &first, "caller", vi.caller[0] &&
			    strcmp(vi.caller, "unknown") != 0 ? vi.caller : NULL);
			json_kv_str(stdout, &first, "caller_name", vi.caller_name[0] ?
			    vi.caller_name : NULL);
			json_kv_int(stdout, &first, "arrived", v[i].arrived);
			json_kv_int(stdout, &first, "duration", vi.seconds);
			json_kv_str(stdout, &first, "status", status);
			json_kv_int(stdout, &first, "size", (long long)v[i].size);
			fputs("}", stdout);
			continue;
		}
		if (vi.caller_name[0] && strcmp(vi.caller_name, vi.caller) != 0)
			snprintf(who, sizeof(who), "%s (%s)", vi.caller_name, vi.caller);
		else
			snprintf(who, sizeof(who), "%s", vi.caller[0] ? vi.caller : "unknown");
		duration(vi.seconds, dur, sizeof(dur));
		table_row(t, v[i].uidl, who, cli_time(v[i].arrived, when, sizeof(when)), dur,
		    status);
	}
	if (c->json)
		fputs("]\n", stdout);
	else
		table_print(t, stdout);
	store_entry_list_free(&v, n);
	return EX_DONE;
}

/* MAILBOX UID naming a voicemail entry. */
static int
vm_entry(struct cli *c, int argc, char **argv, struct store_entry *e)
{
	int r;

	if ((r = cli_find_entry(c, "voicemail", argc, argv, e)) != 0)
		return r;
	if (e->kind != STORE_KIND_VOICEMAIL) {
		store_entry_clear(e);
		return cli_error(EX_NOTFOUND, "%s in mailbox %s is not a voicemail (see "
		    "voicemail list)", argv[2], argv[1]);
	}
	return 0;
}

/* The recording, byte for byte as deposited, on stdout. */
static int
vm_play(struct cli *c, int argc, char **argv)
{
	struct store_entry e;
	char *msg, *audio, err[256];
	size_t len, alen;
	int r;

	if ((r = vm_entry(c, argc, argv, &e)) != 0)
		return r;
	if (isatty(STDOUT_FILENO)) {
		store_entry_clear(&e);
		return cli_error(EX_USAGE, "not writing audio to a terminal: redirect the"
		    " output to a file or a player");
	}
	r = cli_entry_text(c, &e, &msg, &len);
	store_entry_clear(&e);
	if (r != 0)
		return r;
	if (voicemail_attachment(msg, len, &audio, &alen, err, sizeof(err)) != 0) {
		free(msg);
		return cli_error(EX_FAILED, "%s: %s", argv[2], err);
	}
	free(msg);
	r = fwrite(audio, 1, alen, stdout) == alen && fflush(stdout) == 0 ? EX_DONE :
	    cli_error(EX_FAILED, "writing the recording: %s", strerror(errno));
	free(audio);
	return r;
}

static int
vm_heard(struct cli *c, int argc, char **argv)
{
	struct store_entry e;
	struct store_user u;
	int r;

	if ((r = vm_entry(c, argc, argv, &e)) != 0)
		return r;
	r = store_entry_set_flags(c->store, e.user_id, e.uid, e.flags | STORE_FLAG_SEEN);
	if (r == STORE_OK) {
		printf("voicemail %s heard\n", e.uidl);
		fflush(stdout);
		if (!(e.flags & STORE_FLAG_SEEN) && store_user_get_by_id(c->store, e.user_id,
		    &u) == STORE_OK) {
			mwi_changed_one(c, u.login);
			store_user_clear(&u);
		}
	}
	store_entry_clear(&e);
	return r == STORE_OK ? EX_DONE : cli_store_error(c, r);
}

int
cmd_voicemail(struct cli *c, int argc, char **argv)
{
	if (argc < 1)
		return cli_error(EX_USAGE, "usage: voicemail deposit|list|play|heard MAILBOX ...");
	if (strcmp(argv[0], "deposit") == 0)
		return deposit(c, argc, argv, STORE_KIND_VOICEMAIL);
	if (strcmp(argv[0], "list") == 0)
		return vm_list(c, argc, argv);
	if (strcmp(argv[0], "play") == 0)
		return vm_play(c, argc, argv);
	if (strcmp(argv[0], "heard") == 0)
		return vm_heard(c, argc, argv);
	return cli_error(EX_USAGE, "unknown verb voicemail %s; try deposit, list, play, heard",
	    argv[0]);
}

int
cmd_fax(struct cli *c, int argc, char **argv)
{
	if (argc < 1 || strcmp(argv[0], "deposit") != 0)
		return cli_error(EX_USAGE, "usage: fax deposit MAILBOX --tiff FILE [--caller NUMBER]");
	return deposit(c, argc, argv, STORE_KIND_FAX);
}

int
cmd_mwi(struct cli *c, int argc, char **argv)
{
	struct store_user u;
	unsigned n, o;
	int r;

	/* argv[0] is the mailbox: mwi has no verb. */
	if (argc != 1)
		return cli_error(EX_USAGE, "usage: mwi MAILBOX");
	if ((r = cli_open_store(c)) != 0 || (r = cli_find_mailbox(c, argv[0], &u)) != 0)
		return r;
	r = voicemail_counts(c->store, u.id, &n, &o);
	store_user_clear(&u);
	if (r != STORE_OK)
		return cli_store_error(c, r);
	if (c->json)
		printf("{\"new\": %u, \"old\": %u}\n", n, o);
	else
		printf("new=%u old=%u\n", n, o);
	return EX_DONE;
}

/* After mail del: a voicemail's mailbox has new counts. */
void
cli_mwi_after_delete(struct cli *c, const struct store_entry *e)
{
	struct store_user u;

	if (e->kind != STORE_KIND_VOICEMAIL)
		return;
	if (store_user_get_by_id(c->store, e->user_id, &u) == STORE_OK) {
		mwi_changed_one(c, u.login);
		store_user_clear(&u);
	}
}
