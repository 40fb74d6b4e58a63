/*
 * user.c - umboxctl user add | list | show | del | passwd | set
 */
#include "cli/cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "aliases/resolve.h"
#include "lib/addr.h"
#include "lib/password.h"
#include "lib/sasl.h"

enum { O_EXT = 1, O_NAME, O_EMAIL, O_QUOTA, O_NOPOP3, O_POP3, O_PWSTDIN };

/* What the options of add/set/passwd say; strings point into argv. */
struct user_opts {
	struct store_user u;
	unsigned fields;
	int password_stdin;
	char *lower_login;
};

/* Text shown to people: UTF-8, at most max characters, no control characters. */
static int
user_check_text(const char *what, const char *v, size_t max)
{
	if (!g_utf8_validate(v, -1, NULL))
		return cli_error(EX_USAGE, "%s is not UTF-8 text", what);
	if ((size_t)g_utf8_strlen(v, -1) > max)
		return cli_error(EX_USAGE, "%s is longer than %zu characters", what, max);
	for (const char *p = v; *p; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (c < 0x20 || (c >= 0x7f && c < 0xa0))
			return cli_error(EX_USAGE, "%s must not contain control characters", what);
	}
	return 0;
}

/*
 * Parse the options that add, set and passwd share.  allowed is a bit
 * set of the STORE_USER_* fields the verb accepts.
 */
static int
user_parse_opts(int argc, char **argv, unsigned allowed, int allow_nopop3,
    struct user_opts *o, const char *usage)
{
	static const struct option opts[] = {
		{ "extension", required_argument, NULL, O_EXT },
		{ "name", required_argument, NULL, O_NAME },
		{ "email", required_argument, NULL, O_EMAIL },
		{ "quota", required_argument, NULL, O_QUOTA },
		{ "no-pop3", no_argument, NULL, O_NOPOP3 },
		{ "pop3", required_argument, NULL, O_POP3 },
		{ "password-stdin", no_argument, NULL, O_PWSTDIN },
		{ NULL, 0, NULL, 0 },
	};
	struct addr a;
	int ch, r;

	memset(o, 0, sizeof(*o));
	o->u.pop3 = 1;
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case O_EXT:
			if (!(allowed & STORE_USER_EXTENSION))
				goto bad;
			if (*optarg && !alias_valid_extension(optarg))
				return cli_error(EX_USAGE, "extension %s: give 1 to 16 digits", optarg);
			o->u.extension = *optarg ? optarg : NULL;
			o->fields |= STORE_USER_EXTENSION;
			break;
		case O_NAME:
			if (!(allowed & STORE_USER_NAME))
				goto bad;
			if ((r = user_check_text("the name", optarg, 200)) != 0)
				return r;
			o->u.name = *optarg ? optarg : NULL;
			o->fields |= STORE_USER_NAME;
			break;
		case O_EMAIL:
			if (!(allowed & STORE_USER_EMAIL))
				goto bad;
			if (*optarg && addr_parse_mailbox(optarg, strlen(optarg), 1, &a) != ADDR_OK)
				return cli_error(EX_USAGE, "%s is not an email address", optarg);
			o->u.email = *optarg ? optarg : NULL;
			o->fields |= STORE_USER_EMAIL;
			break;
		case O_QUOTA:
			if (!(allowed & STORE_USER_QUOTA))
				goto bad;
			if (config_parse_size(optarg, &o->u.quota) != 0 || o->u.quota > INT64_MAX)
				return cli_error(EX_USAGE, "quota %s: give bytes with an optional"
				    " K, M or G suffix (0 = unlimited)", optarg);
			o->fields |= STORE_USER_QUOTA;
			break;
		case O_NOPOP3:
			if (!allow_nopop3)
				goto bad;
			o->u.pop3 = 0;
			break;
		case O_POP3:
			if (!(allowed & STORE_USER_POP3))
				goto bad;
			if ((o->u.pop3 = cli_parse_onoff(optarg)) < 0)
				return cli_error(EX_USAGE, "--pop3 takes on or off");
			o->fields |= STORE_USER_POP3;
			break;
		case O_PWSTDIN:
			if (!(allowed & STORE_USER_PASSWORD))
				goto bad;
			o->password_stdin = 1;
			break;
		default:
			goto bad;
		}
	}
	if (argc - optind != 1)
		goto bad;
	o->lower_login = xstrdup(argv[optind]);
	str_lower(o->lower_login);
	return 0;
bad:
	return cli_bad_option(argc, argv, ch, usage);
}

static int
user_set_password(struct user_opts *o, char *hash, size_t hashlen)
{
	char pw[SASL_FIELD_MAX + 2];	/* the daemons take at most SASL_FIELD_MAX */
	int r;

	if ((r = cli_read_password(pw, sizeof(pw))) != 0)
		return r;
	/* A CR from a file saved with DOS line ends would make it untypable. */
	for (const char *p = pw; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			explicit_bzero(pw, sizeof(pw));
			return cli_error(EX_USAGE, "the password must not contain control"
			    " characters (a CR, from a file with DOS line ends?)");
		}
	r = password_hash(pw, hash, hashlen);
	explicit_bzero(pw, sizeof(pw));
	if (r != 0)
		return cli_error(EX_FAILED, "cannot hash the password (yescrypt unavailable?)");
	o->u.password = hash;
	o->fields |= STORE_USER_PASSWORD;
	return 0;
}

static int
user_add(struct cli *c, int argc, char **argv)
{
	static const char usage[] = "user add LOGIN [--extension N] [--name NAME]"
	    " [--email ADDR] [--quota SIZE] [--no-pop3] [--password-stdin]";
	struct user_opts o;
	char hash[PASSWORD_HASH_MAX];
	int r;

	if ((r = user_parse_opts(argc, argv, ~STORE_USER_POP3, 1, &o, usage)) != 0)
		return r;
	if (!alias_valid_login(o.lower_login)) {
		free(o.lower_login);
		return cli_error(EX_USAGE, "login %s: use up to 64 of a-z 0-9 . _ -, starting"
		    " with a letter or digit, not ending with a dot nor with two dots in a row,"
		    " and not all digits", argv[optind]);
	}
	if (o.password_stdin && (r = user_set_password(&o, hash, sizeof(hash))) != 0) {
		free(o.lower_login);
		return r;
	}
	if ((r = cli_open_store(c)) == 0) {
		o.u.login = o.lower_login;
		r = store_user_add(c->store, &o.u);
		if (r == STORE_OK)
			printf("user %s added\n", o.lower_login);
		r = r == STORE_OK ? EX_DONE : cli_store_error(c, r);
	}
	explicit_bzero(hash, sizeof(hash));
	free(o.lower_login);
	return r;
}

static int
user_set(struct cli *c, int argc, char **argv)
{
	static const char usage[] = "user set LOGIN [--extension N] [--name NAME]"
	    " [--email ADDR] [--quota SIZE] [--pop3 on|off]";
	struct user_opts o;
	int r;

	if ((r = user_parse_opts(argc, argv, ~STORE_USER_PASSWORD, 0, &o, usage)) != 0)
		return r;
	if (o.fields == 0) {
		free(o.lower_login);
		return cli_error(EX_USAGE, "nothing to change; usage: %s", usage);
	}
	if ((r = cli_open_store(c)) == 0) {
		r = store_user_set(c->store, o.lower_login, &o.u, o.fields);
		if (r == STORE_OK)
			printf("user %s changed\n", o.lower_login);
		r = r == STORE_OK ? EX_DONE : cli_store_error(c, r);
	}
	free(o.lower_login);
	return r;
}

static int
user_passwd(struct cli *c, int argc, char **argv)
{
	static const char usage[] = "user passwd LOGIN --password-stdin";
	struct user_opts o;
	char hash[PASSWORD_HASH_MAX];
	struct store_user cur;
	int r;

	if ((r = user_parse_opts(argc, argv, STORE_USER_PASSWORD, 0, &o, usage)) != 0)
		return r;
	if (!o.password_stdin) {
		free(o.lower_login);
		return cli_error(EX_USAGE, "passwords are read only from stdin; usage: %s", usage);
	}
	/* Say "no such user" before asking for a password. */
	if ((r = cli_open_store(c)) != 0 ||
	    (r = store_user_get(c->store, o.lower_login, &cur)) != STORE_OK) {
		free(o.lower_login);
		return r > 0 ? r : cli_store_error(c, r);
	}
	store_user_clear(&cur);
	if ((r = user_set_password(&o, hash, sizeof(hash))) == 0) {
		r = store_user_set(c->store, o.lower_login, &o.u, STORE_USER_PASSWORD);
		if (r == STORE_OK)
			printf("password of %s changed\n", o.lower_login);
		r = r == STORE_OK ? EX_DONE : cli_store_error(c, r);
	}
	explicit_bzero(hash, sizeof(hash));
	free(o.lower_login);
	return r;
}

static int
user_del(struct cli *c, int argc, char **argv)
{
	char *login;
	int r;

	if (argc != 2)
		return cli_error(EX_USAGE, "usage: user del LOGIN");
	if ((r = cli_open_store(c)) != 0)
		return r;
	login = xstrdup(argv[1]);
	str_lower(login);
	r = store_user_del(c->store, login);
	if (r == STORE_OK)
		printf("user %s deleted with its mailbox\n", login);
	free(login);
	return r == STORE_OK ? EX_DONE : cli_store_error(c, r);
}

static void
user_json(const struct store_user *u)
{
	int first = 1;

	fputs("{", stdout);
	json_kv_str(stdout, &first, "login", u->login);
	json_kv_str(stdout, &first, "extension", u->extension);
	json_kv_str(stdout, &first, "name", u->name);
	json_kv_str(stdout, &first, "email", u->email);
	json_kv_int(stdout, &first, "quota", (long long)u->quota);
	json_kv_int(stdout, &first, "used", (long long)u->used);
	json_kv_int(stdout, &first, "messages", (long long)u->messages);
	json_kv_bool(stdout, &first, "pop3", u->pop3);
	json_kv_bool(stdout, &first, "password_set", u->password != NULL);
	json_kv_int(stdout, &first, "created_at", u->created_at);
	fputs("}", stdout);
}

static int
user_list(struct cli *c, int argc, char **argv)
{
	struct store_user *v;
	size_t n;
	int r;

	if (argc != 1)
		return cli_error(EX_USAGE, "usage: user list");
	if ((r = cli_open_store(c)) != 0)
		return r;
	if ((r = store_user_list(c->store, &v, &n)) != STORE_OK)
		return cli_store_error(c, r);
	if (c->json) {
		fputs("[", stdout);
		for (size_t i = 0; i < n; i++) {
			fputs(i ? ",\n " : "", stdout);
			user_json(&v[i]);
		}
		fputs("]\n", stdout);
	} else {
		struct table *t = table_new(8, "LOGIN", "EXTENSION", "NAME", "EMAIL",
		    "QUOTA", "USED", "MESSAGES", "POP3");
		char q[32], used[32], msgs[32];

		for (size_t i = 0; i < n; i++) {
			snprintf(msgs, sizeof(msgs), "%" PRIu64, v[i].messages);
			table_row(t, v[i].login, v[i].extension, v[i].name, v[i].email,
			    v[i].quota ? cli_size(v[i].quota, q, sizeof(q)) : "unlimited",
			    cli_size(v[i].used, used, sizeof(used)), msgs,
			    v[i].pop3 ? "on" : "off");
		}
		table_print(t, stdout);
	}
	store_user_list_free(&v, n);
	return EX_DONE;
}

static int
user_show(struct cli *c, int argc, char **argv)
{
	struct store_user u;
	char *login, when[32], q[32];
	int r;

	if (argc != 2)
		return cli_error(EX_USAGE, "usage: user show LOGIN");
	if ((r = cli_open_store(c)) != 0)
		return r;
	login = xstrdup(argv[1]);
	str_lower(login);
	r = store_user_get(c->store, login, &u);
	free(login);
	if (r != STORE_OK)
		return cli_store_error(c, r);
	if (c->json) {
		user_json(&u);
		fputs("\n", stdout);
	} else {
		printf("login:      %s\n", u.login);
		printf("extension:  %s\n", u.extension ? u.extension : "-");
		printf("name:       %s\n", u.name ? u.name : "-");
		printf("email:      %s\n", u.email ? u.email : "-");
		printf("quota:      %s\n", u.quota ? cli_size(u.quota, q, sizeof(q)) : "unlimited");
		printf("used:       %" PRIu64 " bytes in %" PRIu64 " messages\n", u.used, u.messages);
		printf("pop3:       %s\n", u.pop3 ? "on" : "off");
		printf("password:   %s\n", u.password ? "set" : "not set (cannot log in)");
		printf("created:    %s\n", cli_time(u.created_at, when, sizeof(when)));
	}
	store_user_clear(&u);
	return EX_DONE;
}

int
cmd_user(struct cli *c, int argc, char **argv)
{
	static const struct {
		const char *verb;
		int (*fn)(struct cli *, int, char **);
	} verbs[] = {
		{ "add", user_add }, { "set", user_set }, { "passwd", user_passwd },
		{ "del", user_del }, { "list", user_list }, { "show", user_show },
	};

	if (argc < 1)
		return cli_error(EX_USAGE, "usage: user add|list|show|del|passwd|set ...");
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		if (strcmp(argv[0], verbs[i].verb) == 0)
			return verbs[i].fn(c, argc, argv);
	return cli_error(EX_USAGE, "unknown verb user %s; try add, list, show, del, passwd, set",
	    argv[0]);
}
