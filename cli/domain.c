/*
 * domain.c - umboxctl domain add | list | del
 */
#include "cli/cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/addr.h"

static int
domain_add(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	struct store_domain d = { 0 };
	char *name;
	int force = 0, ch, status;

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'f')
			return cli_error(EX_USAGE, "domain add: bad option %s; usage: domain add D"
			    " [--force]", argv[optind - 1]);
		force = 1;
	}
	if (argc - optind != 1)
		return cli_error(EX_USAGE, "usage: domain add D [--force]");
	if (!addr_valid_domain(argv[optind], strlen(argv[optind])))
		return cli_error(EX_USAGE, "%s is not a valid domain name", argv[optind]);
	if ((status = cli_open_store(c)) != 0)
		return status;

	name = xstrdup(argv[optind]);
	str_lower(name);
	d.name = name;
	d.forced = force;
	d.guard = "unchecked";
	d.guard_detail = force ? "claimed with --force" : "";
	status = store_domain_add(c->store, &d);
	if (status != STORE_OK) {
		free(name);
		return cli_store_error(c, status);
	}
	printf("domain %s added\n", name);
	free(name);
	return EX_DONE;
}

static int
domain_del(struct cli *c, int argc, char **argv)
{
	char *name;
	int status;

	if (argc != 2)
		return cli_error(EX_USAGE, "usage: domain del D");
	if ((status = cli_open_store(c)) != 0)
		return status;
	name = xstrdup(argv[1]);
	str_lower(name);
	status = store_domain_del(c->store, name);
	if (status == STORE_OK)
		printf("domain %s deleted\n", name);
	free(name);
	return status == STORE_OK ? EX_DONE : cli_store_error(c, status);
}

static int
domain_list(struct cli *c, int argc, char **argv)
{
	struct store_domain *v;
	size_t n;
	int status;

	if (argc != 1)
		return cli_error(EX_USAGE, "usage: domain list");
	if ((status = cli_open_store(c)) != 0)
		return status;
	if ((status = store_domain_list(c->store, &v, &n)) != STORE_OK)
		return cli_store_error(c, status);
	if (c->json) {
		fputs("[", stdout);
		for (size_t i = 0; i < n; i++) {
			int first = 1;

			fputs(i ? ",\n {" : "{", stdout);
			json_kv_str(stdout, &first, "name", v[i].name);
			json_kv_str(stdout, &first, "guard", v[i].guard);
			json_kv_str(stdout, &first, "guard_detail", v[i].guard_detail);
			json_kv_bool(stdout, &first, "forced", v[i].forced);
			json_kv_int(stdout, &first, "checked_at", v[i].checked_at);
			json_kv_int(stdout, &first, "created_at", v[i].created_at);
			fputs("}", stdout);
		}
		fputs("]\n", stdout);
	} else {
		struct table *t = table_new(4, "DOMAIN", "GUARD", "FORCED", "CHECKED");
		char when[32];

		for (size_t i = 0; i < n; i++)
			table_row(t, v[i].name, v[i].guard, v[i].forced ? "yes" : "no",
			    cli_time(v[i].checked_at, when, sizeof(when)));
		table_print(t, stdout);
	}
	store_domain_list_free(&v, n);
	return EX_DONE;
}

int
cmd_domain(struct cli *c, int argc, char **argv)
{
	if (argc < 1)
		return cli_error(EX_USAGE, "usage: domain add D [--force] | list | del D");
	if (strcmp(argv[0], "add") == 0)
		return domain_add(c, argc, argv);
	if (strcmp(argv[0], "del") == 0)
		return domain_del(c, argc, argv);
	if (strcmp(argv[0], "list") == 0)
		return domain_list(c, argc, argv);
	return cli_error(EX_USAGE, "unknown verb domain %s; try add, list, del", argv[0]);
}
