/*
 * umboxctl - administration of umbox: domains, users, aliases, relays, the
 * queue, mailboxes.
 *
 *   umboxctl [-c FILE] [--json] NOUN VERB [ARGS]
 *
 * Exit codes: 0 done, 1 failed, 2 usage, 3 refused by a guard or policy,
 * 4 not found.  Errors go to stderr as "umboxctl: ...".
 */
#include "cli/cli.h"
#include "lib/log.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aliases/resolve.h"
#include "lib/addr.h"
#include "lib/daemon.h"

static const char usage_text[] =
"usage: umboxctl [-c FILE] [--json] NOUN VERB [ARGS]\n"
"\n"
"  domain add D [--force] | check [D] | list | del D\n"
"  user add LOGIN [--extension N] [--name NAME] [--email ADDR] [--quota SIZE]\n"
"                 [--no-pop3] [--password-stdin]\n"
"  user list | show LOGIN | del LOGIN | passwd LOGIN --password-stdin\n"
"  user set LOGIN [--extension N] [--name NAME] [--email ADDR] [--quota SIZE]\n"
"                 [--pop3 on|off]\n"
"  alias add NAME MEMBER... | list | show NAME | del NAME\n"
"  alias add-member NAME MEMBER... | del-member NAME MEMBER... | resolve ADDRESS\n"
"  relay add NAME --host H [--port P] [--domain D]... [--default] [--inactive]\n"
"                 [--tls MODE] [--no-verify] [--auth MECH] [--user U --password-stdin]\n"
"                 [--sender ADDR] [--timeout SECS] [--no-chunking]\n"
"  relay list | show NAME | del NAME | test NAME\n"
"  relay set NAME [the options of add] [--active] [--no-default] [--verify]\n"
"                 [--chunking]\n"
"  queue list | show ID | flush [ID] | del ID | hold ID | release ID\n"
"  mail list MAILBOX | show MAILBOX UID | export MAILBOX UID | del MAILBOX UID\n"
"  mail speak MAILBOX UID [--out FILE]\n"
"  voicemail deposit MAILBOX --audio FILE [--caller NUMBER] [--caller-name NAME]\n"
"  voicemail list MAILBOX | play MAILBOX UID | heard MAILBOX UID\n"
"  fax deposit MAILBOX --tiff FILE [--caller NUMBER]\n"
"  mwi MAILBOX\n"
"  status\n"
"  store copy --to postgresql | check\n"
"\n"
"  -c FILE   configuration file (default " UMBOX_DEFAULT_CONFIG ")\n"
"  --json    print lists and details as JSON\n"
"\n"
"See umboxctl(8).\n";

int
cli_error(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("umboxctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

void
cli_warn(const char *fmt, ...)
{
	va_list ap;

	fputs("umboxctl: warning: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
cli_store_error(struct cli *c, int status)
{
	int code;

	switch (status) {
	case STORE_NOTFOUND:	code = EX_NOTFOUND; break;
	case STORE_QUOTA:	code = EX_REFUSED; break;
	case STORE_INVALID:	code = EX_USAGE; break;
	default:		code = EX_FAILED; break;
	}
	return cli_error(code, "%s", c->store ? store_errmsg(c->store) : store_status_str(status));
}

/*
 * Run as root, umboxctl would leave data_dir and store.db owned by root,
 * and daemons running as [general] user could not write them.  (SQLite
 * itself gives new -wal and -shm files the owner of the database file.)
 */
static void
cli_fix_owner(struct cli *c, const char *path)
{
	if (daemon_give_to_user(&c->cfg, path) != 0)
		cli_warn("cannot give %s to user %s: %s", path, c->cfg.general.user,
		    strerror(errno));
}

int
cli_open_store_quietly(struct cli *c, char *err, size_t errlen)
{
	struct store_config sc;
	char *path;
	int status;

	if (c->store)
		return 0;
	store_config_of(&c->cfg, &sc, &path);
	if (sc.backend == STORE_BACKEND_SQLITE && mkdir_p(c->cfg.general.data_dir, 0750) != 0) {
		snprintf(err, errlen, "cannot create data_dir %s: %s", c->cfg.general.data_dir,
		    strerror(errno));
		free(path);
		return EX_FAILED;
	}
	status = store_open(&sc, STORE_CREATE, &c->store, err, errlen);
	if (status == STORE_OK && path) {
		cli_fix_owner(c, c->cfg.general.data_dir);
		cli_fix_owner(c, path);
	}
	free(path);
	return status == STORE_OK ? 0 : EX_FAILED;
}

int
cli_open_store(struct cli *c)
{
	char err[512];

	if (cli_open_store_quietly(c, err, sizeof(err)) != 0)
		return cli_error(EX_FAILED, "%s", err);
	return 0;
}

int
cli_read_password(char *buf, size_t len)
{
	size_t n = 0;
	ssize_t r;
	char more;

	/* len - 2 bytes of password, its newline, and the NUL. */
	while (n + 1 < len && (r = read(STDIN_FILENO, buf + n, len - 1 - n)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return cli_error(EX_FAILED, "reading the password from stdin: %s",
			    strerror(errno));
		}
		n += (size_t)r;
	}
	if (n + 1 == len) {	/* full: one byte more is one too many */
		do
			r = read(STDIN_FILENO, &more, 1);
		while (r < 0 && errno == EINTR);
		if (r != 0)
			n = len;
	}
	if (n < len) {
		buf[n] = '\0';
		if (n > 0 && buf[n - 1] == '\n')
			buf[--n] = '\0';
	}
	if (n > len - 2) {
		explicit_bzero(buf, len);
		return cli_error(EX_USAGE, "the password on stdin is longer than %zu bytes",
		    len - 2);
	}
	if (n == 0)
		return cli_error(EX_USAGE, "the password on stdin is empty");
	if (memchr(buf, '\0', n) != NULL || strchr(buf, '\n') != NULL)
		return cli_error(EX_USAGE, "the password must be one line without NUL bytes");
	return 0;
}

int
cli_find_mailbox(struct cli *c, const char *mailbox, struct store_user *u)
{
	int status = alias_lookup_user(c->store, mailbox, u);

	if (status == STORE_NOTFOUND)
		return cli_error(EX_NOTFOUND, "no mailbox %s (give a login, login@domain or an"
		    " extension)", mailbox);
	if (status != STORE_OK)
		return cli_store_error(c, status);
	return 0;
}

int
cli_bad_option(int argc, char **argv, int ch, const char *usage)
{
	const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";
	char letter[3] = { '-', (char)optopt, '\0' };

	/* "-x..." stops at its first letter; a "--name" is named whole. */
	if (ch == '?' && optopt > ' ' && optopt < 0x7f && strncmp(arg, "--", 2) != 0)
		arg = letter;
	if (ch == -1 || arg[0] != '-')
		return cli_error(EX_USAGE, "usage: %s", usage);
	/* getopt_long: a known --name without its value keeps its code in optopt. */
	if (ch == '?' && optopt != 0 && strncmp(arg, "--", 2) == 0 && strchr(arg, '=') == NULL)
		return cli_error(EX_USAGE, "%s needs a value; usage: %s", arg, usage);
	return cli_error(EX_USAGE, "bad option %s; usage: %s", arg, usage);
}

int
cli_valid_domain(const char *d)
{
	size_t n = strlen(d);
	const char *last = strrchr(d, '.');

	last = last ? last + 1 : d;
	/* All digits at the end is an IPv4 address, not a name (RFC 3696 §2). */
	return n <= 253 && addr_valid_domain(d, n) && strspn(last, "0123456789") < strlen(last);
}

int
cli_parse_onoff(const char *s)
{
	if (strcasecmp(s, "on") == 0 || strcasecmp(s, "yes") == 0)
		return 1;
	if (strcasecmp(s, "off") == 0 || strcasecmp(s, "no") == 0)
		return 0;
	return -1;
}

static const struct {
	const char *noun;
	int (*fn)(struct cli *, int, char **);
} nouns[] = {
	{ "domain", cmd_domain },
	{ "user", cmd_user },
	{ "alias", cmd_alias },
	{ "relay", cmd_relay },
	{ "queue", cmd_queue },
	{ "mail", cmd_mail },
	{ "voicemail", cmd_voicemail },
	{ "fax", cmd_fax },
	{ "mwi", cmd_mwi },
	{ "status", cmd_status },
	{ "store", cmd_store },
};

int
main(int argc, char **argv)
{
	struct cli c = { .config_path = NULL };
	static char err[CONFIG_ERR_TEXT_MAX];
	int i, rc;

	/* What the shared code logs as it works is for daemons; a command says what matters itself. */
	log_set_max(LOG_WARNING);
	log_init("umboxctl", 1);
	log_set_plain(1);
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
			if (++i >= argc)
				return cli_error(EX_USAGE, "-c needs a file name");
			c.config_path = argv[i];
		} else if (strncmp(argv[i], "--config=", 9) == 0)
			c.config_path = argv[i] + 9;
		else if (strcmp(argv[i], "--json") == 0)
			c.json = 1;
		else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(usage_text, stdout);
			return EX_DONE;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("umboxctl %s\n", UMBOX_VERSION);
			return EX_DONE;
		} else {
			fputs(usage_text, stderr);
			return cli_error(EX_USAGE, "unknown option %s", argv[i]);
		}
	}
	if (i >= argc) {
		fputs(usage_text, stderr);
		return cli_error(EX_USAGE, "no command given");
	}
	if (strcmp(argv[i], "help") == 0) {
		fputs(usage_text, stdout);
		return EX_DONE;
	}

	for (size_t n = 0; n < ARRAY_SIZE(nouns); n++) {
		if (strcmp(argv[i], nouns[n].noun) != 0)
			continue;
		/* The default file may be absent (defaults apply); a named one may not. */
		if (config_load(&c.cfg, c.config_path ? c.config_path : UMBOX_DEFAULT_CONFIG,
		    c.config_path == NULL, err, sizeof(err)) != 0) {
			for (char *line = strtok(err, "\n"); line; line = strtok(NULL, "\n"))
				fprintf(stderr, "umboxctl: %s\n", line);
			config_free(&c.cfg);
			return cli_error(EX_FAILED, "configuration errors; nothing was changed");
		}
		rc = nouns[n].fn(&c, argc - i - 1, argv + i + 1);
		store_close(&c.store);
		config_free(&c.cfg);
		if (fflush(stdout) != 0 && rc == EX_DONE)
			rc = cli_error(EX_FAILED, "writing output: %s", strerror(errno));
		return rc;
	}
	fputs(usage_text, stderr);
	return cli_error(EX_USAGE, "unknown command %s", argv[i]);
}
