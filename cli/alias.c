/*
 * alias.c - umboxctl alias add | list | show | del | add-member | del-member | resolve
 */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aliases/resolve.h"
#include "lib/addr.h"

/*
 * Check and canonicalise members: bare names lowercased, addresses with
 * their domain lowercased.  Returns an allocated array or NULL after
 * printing the error.
 */
static char **
alias_members(char **argv, int n, int *code)
{
	char **v = xcalloc((size_t)n + 1, sizeof(*v));

	for (int i = 0; i < n; i++) {
		if (!alias_valid_member(argv[i])) {
			*code = cli_error(EX_USAGE, "member %s: give a login, an extension, an"
			    " alias name or an address local@domain", argv[i]);
			for (int k = 0; k < i; k++)
				free(v[k]);
			free(v);
			return NULL;
		}
		if (strchr(argv[i], '@')) {
			struct addr a;

			addr_parse_mailbox(argv[i], strlen(argv[i]), 0, &a);
			v[i] = xstrdup(a.mailbox);
		} else {
			v[i] = xstrdup(argv[i]);
			str_lower(v[i]);
		}
	}
	return v;
}

static void
alias_members_free(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/*
 * An alias past the resolver's limits (more than ALIAS_MAX_TARGETS
 * addresses, nesting deeper than ALIAS_MAX_DEPTH) cannot take mail: the
 * MX answers 451 to it until it is mended.  Said at once, after a change.
 */
static void
alias_check_limits(struct cli *c, const char *name)
{
	struct alias_resolver rv = { .store = c->store, .postmaster = c->cfg.general.postmaster,
	    .srs_secret = c->cfg.queue.srs_secret };
	struct alias_result res;

	if (alias_resolve(&rv, name, &res) == ALIAS_ERROR)
		cli_warn("alias %s cannot take mail as it is now: %s; senders get 451 until it"
		    " is changed", name, res.error);
	alias_result_clear(&res);
}

/* Whether every one of m (normalized) is a member of the alias already. */
static int
already_members(struct cli *c, const char *name, char **m, int n)
{
	struct store_alias a;
	int all = 1;

	if (store_alias_get(c->store, name, &a) != STORE_OK)
		return 0;	/* no such alias, or trouble: the change itself says */
	for (int i = 0; i < n && all; i++) {
		int found = 0;

		for (size_t k = 0; k < a.members.n && !found; k++)
			found = strcasecmp(a.members.v[k], m[i]) == 0;
		all = found;
	}
	store_alias_clear(&a);
	return all;
}

/* add, add-member and del-member: NAME MEMBER... */
static int
alias_change(struct cli *c, int argc, char **argv)
{
	const char *verb = argv[0];
	char **m, *name;
	int code = 0, n = argc - 2, r;

	if (argc < 3)
		return cli_error(EX_USAGE, "usage: alias %s NAME MEMBER...", verb);
	if (!alias_valid_name(argv[1]))
		return cli_error(EX_USAGE, "alias name %s: use up to 64 of a-z 0-9 . _ -,"
		    " starting with a letter or digit, not ending with a dot nor with two"
		    " dots in a row", argv[1]);
	if ((m = alias_members(argv + 2, n, &code)) == NULL)
		return code;
	if ((r = cli_open_store(c)) != 0) {
		alias_members_free(m, n);
		return r;
	}
	name = xstrdup(argv[1]);
	str_lower(name);
	if (strcmp(verb, "add-member") == 0 && already_members(c, name, m, n)) {
		printf("alias %s unchanged: already %s\n", name, n == 1 ? "a member" : "members");
		alias_members_free(m, n);
		free(name);
		return EX_DONE;
	}
	if (strcmp(verb, "add") == 0)
		r = store_alias_add(c->store, name, (const char *const *)m, (size_t)n);
	else if (strcmp(verb, "add-member") == 0)
		r = store_alias_add_members(c->store, name, (const char *const *)m, (size_t)n);
	else
		r = store_alias_del_members(c->store, name, (const char *const *)m, (size_t)n);
	if (r == STORE_OK) {
		printf("alias %s %s\n", name, strcmp(verb, "add") == 0 ? "added" : "changed");
		alias_check_limits(c, name);
	}
	alias_members_free(m, n);
	free(name);
	return r == STORE_OK ? EX_DONE : cli_store_error(c, r);
}

static int
alias_del(struct cli *c, int argc, char **argv)
{
	char *name;
	int r;

	if (argc != 2)
		return cli_error(EX_USAGE, "usage: alias del NAME");
	if ((r = cli_open_store(c)) != 0)
		return r;
	name = xstrdup(argv[1]);
	str_lower(name);
	r = store_alias_del(c->store, name);
	if (r == STORE_OK)
		printf("alias %s deleted\n", name);
	free(name);
	return r == STORE_OK ? EX_DONE : cli_store_error(c, r);
}

static void
alias_json(const struct store_alias *a)
{
	int first = 1;

	fputs("{", stdout);
	json_kv_str(stdout, &first, "name", a->name);
	json_key(stdout, &first, "members");
	fputs("[", stdout);
	for (size_t i = 0; i < a->members.n; i++) {
		fputs(i ? ", " : "", stdout);
		json_str(stdout, a->members.v[i]);
	}
	fputs("]}", stdout);
}

static char *
alias_joined(const struct store_alias *a)
{
	size_t len = 1;
	char *s;

	for (size_t i = 0; i < a->members.n; i++)
		len += strlen(a->members.v[i]) + 2;
	s = xcalloc(1, len);
	for (size_t i = 0; i < a->members.n; i++) {
		if (i)
			strcat(s, ", ");
		strcat(s, a->members.v[i]);
	}
	return s;
}

static int
alias_list(struct cli *c, int argc, char **argv)
{
	struct store_alias *v;
	size_t n;
	int r;

	if (argc != 1)
		return cli_error(EX_USAGE, "usage: alias list");
	if ((r = cli_open_store(c)) != 0)
		return r;
	if ((r = store_alias_list(c->store, &v, &n)) != STORE_OK)
		return cli_store_error(c, r);
	if (c->json) {
		fputs("[", stdout);
		for (size_t i = 0; i < n; i++) {
			fputs(i ? ",\n " : "", stdout);
			alias_json(&v[i]);
		}
		fputs("]\n", stdout);
	} else {
		struct table *t = table_new(2, "ALIAS", "MEMBERS");

		for (size_t i = 0; i < n; i++) {
			char *m = alias_joined(&v[i]);
			table_row(t, v[i].name, m);
			free(m);
		}
		table_print(t, stdout);
	}
	store_alias_list_free(&v, n);
	return EX_DONE;
}

static int
alias_show(struct cli *c, int argc, char **argv)
{
	struct store_alias a;
	char *name;
	int r;

	if (argc != 2)
		return cli_error(EX_USAGE, "usage: alias show NAME");
	if ((r = cli_open_store(c)) != 0)
		return r;
	name = xstrdup(argv[1]);
	str_lower(name);
	r = store_alias_get(c->store, name, &a);
	free(name);
	if (r != STORE_OK)
		return cli_store_error(c, r);
	if (c->json) {
		alias_json(&a);
		fputs("\n", stdout);
	} else {
		printf("alias:    %s\n", a.name);
		for (size_t i = 0; i < a.members.n; i++)
			printf("%s%s\n", i ? "          " : "members:  ", a.members.v[i]);
		if (a.members.n == 0)
			printf("members:  -\n");
	}
	store_alias_clear(&a);
	return EX_DONE;
}

/*
 * The route of an outside address, as the queue will take it: the name
 * of its relay into relay (empty for direct MX delivery).  0 or an exit
 * code.
 */
static int
alias_route(struct cli *c, const char *address, char *relay, size_t len)
{
	const char *at = strrchr(address, '@');
	struct store_relay r;
	int status;

	relay[0] = '\0';
	if (at == NULL)
		return 0;
	status = store_relay_for_domain(c->store, at + 1, &r);
	if (status == STORE_NOTFOUND)
		return 0;
	if (status != STORE_OK)
		return cli_store_error(c, status);
	snprintf(relay, len, "%s", r.name);
	store_relay_clear(&r);
	return 0;
}

/*
 * One final target a line: "local LOGIN", or "remote ADDRESS via ROUTE"
 * where ROUTE is "relay NAME" or "mx".
 */
static int
alias_resolve_cmd(struct cli *c, int argc, char **argv)
{
	struct alias_resolver rv;
	struct alias_result res;
	enum alias_status st;
	char (*relays)[STORE_RELAY_NAME_MAX + 1] = NULL;
	int r;

	if (argc != 2)
		return cli_error(EX_USAGE, "usage: alias resolve ADDRESS");
	if ((r = cli_open_store(c)) != 0)
		return r;
	rv.store = c->store;
	rv.postmaster = c->cfg.general.postmaster;
	rv.srs_secret = c->cfg.queue.srs_secret;
	st = alias_resolve(&rv, argv[1], &res);
	for (size_t i = 0; i < res.dangling.n; i++)
		cli_warn("alias member %s names no user, extension or alias", res.dangling.v[i]);
	switch (st) {
	case ALIAS_OK:
		break;
	case ALIAS_UNKNOWN:
		r = cli_error(EX_NOTFOUND, "%s: %s", argv[1], res.error);
		goto out;
	case ALIAS_INVALID:
		r = cli_error(EX_USAGE, "%s: %s", argv[1], res.error);
		goto out;
	default:
		r = cli_error(EX_FAILED, "%s: %s", argv[1], res.error);
		goto out;
	}
	/* Routes first: a store error must not leave half a list printed. */
	relays = xcalloc(res.n ? res.n : 1, sizeof(*relays));
	for (size_t i = 0; i < res.n; i++)
		if (res.v[i].remote &&
		    (r = alias_route(c, res.v[i].address, relays[i], sizeof(relays[i]))) != 0)
			goto out;
	if (c->json)
		fputs("[", stdout);
	for (size_t i = 0; i < res.n; i++) {
		const struct alias_target *t = &res.v[i];

		if (c->json) {
			int first = 1;

			fputs(i ? ",\n {" : "{", stdout);
			json_kv_str(stdout, &first, "type", t->remote ? "remote" : "local");
			if (t->remote) {
				json_kv_str(stdout, &first, "address", t->address);
				json_kv_str(stdout, &first, "route", relays[i][0] ? "relay" : "mx");
				if (relays[i][0])
					json_kv_str(stdout, &first, "relay", relays[i]);
			} else
				json_kv_str(stdout, &first, "login", t->login);
			fputs("}", stdout);
		} else if (t->remote && relays[i][0])
			printf("remote %s via relay %s\n", t->address, relays[i]);
		else if (t->remote)
			printf("remote %s via mx\n", t->address);
		else
			printf("local %s\n", t->login);
	}
	if (c->json)
		fputs("]\n", stdout);
	r = EX_DONE;
out:
	free(relays);
	alias_result_clear(&res);
	return r;
}

int
cmd_alias(struct cli *c, int argc, char **argv)
{
	if (argc < 1)
		return cli_error(EX_USAGE, "usage: alias add|list|show|del|add-member|del-member|resolve ...");
	if (strcmp(argv[0], "add") == 0 || strcmp(argv[0], "add-member") == 0 ||
	    strcmp(argv[0], "del-member") == 0)
		return alias_change(c, argc, argv);
	if (strcmp(argv[0], "del") == 0)
		return alias_del(c, argc, argv);
	if (strcmp(argv[0], "list") == 0)
		return alias_list(c, argc, argv);
	if (strcmp(argv[0], "show") == 0)
		return alias_show(c, argc, argv);
	if (strcmp(argv[0], "resolve") == 0)
		return alias_resolve_cmd(c, argc, argv);
	return cli_error(EX_USAGE, "unknown verb alias %s; try add, list, show, del,"
	    " add-member, del-member, resolve", argv[0]);
}
