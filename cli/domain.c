/*
 * domain.c - umboxctl domain add | check | list | del, with the MX guard
 */
#include "cli/cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "aliases/dns.h"
#include "aliases/guard.h"
#include "lib/addr.h"

/* Checks run to completion: the same code as umbox-smtpd's, on a loop of our own. */
struct guard_run {
	struct event_base *base;
	struct guard_result *res;
	size_t pending;
};

struct guard_slot {
	struct guard_run *run;
	size_t i;
};

static void
guard_done(const char *domain, const struct guard_result *res, void *arg)
{
	struct guard_slot *slot = arg;

	slot->run->res[slot->i] = *res;
	if (--slot->run->pending == 0)
		event_base_loopbreak(slot->run->base);
}

/*
 * Check names[0..n-1] into res[], all at once, each on a resolver of its
 * own: lookups in flight together on one resolver share its connection to
 * each server, and one that fails over TCP (an answer too large for UDP,
 * TCP dropped on the way) would fail the others with it.  -1 (with the
 * message printed) if DNS cannot be set up.
 */
static int
guard_run(struct cli *c, char *const *names, size_t n, struct guard_result *res)
{
	/* Shorter than the daemon's: an administrator waits for the answer. */
	const struct dns_options opts = { .timeout_ms = 1500, .tries = 2 };
	struct guard_run run = { .res = res, .pending = n };
	struct guard_slot *slots = xcalloc(n ? n : 1, sizeof(*slots));
	struct dns_resolver **dns = xcalloc(n ? n : 1, sizeof(*dns));
	struct guard **g = xcalloc(n ? n : 1, sizeof(*g));
	char err[512];
	size_t made = 0;
	int rc = 0;

	if ((run.base = event_base_new()) == NULL) {
		cli_error(EX_FAILED, "cannot set up DNS: no event base");
		rc = -1;
		goto out;
	}
	for (; made < n; made++) {
		dns[made] = dns_new_opts(run.base, &c->cfg.dns.servers, &opts, err, sizeof(err));
		if (dns[made] == NULL) {
			cli_error(EX_FAILED, "cannot set up DNS: %s", err);
			rc = -1;
			goto out;
		}
		g[made] = guard_new(dns[made], &c->cfg);
	}
	for (size_t i = 0; i < n; i++) {
		slots[i] = (struct guard_slot){ &run, i };
		guard_check(g[i], names[i], guard_done, &slots[i]);
	}
	if (n)
		event_base_dispatch(run.base);
out:
	for (size_t i = 0; i < made; i++) {
		guard_free(&g[i]);
		dns_free(&dns[i]);
	}
	if (run.base)
		event_base_free(run.base);
	free(g);
	free(dns);
	free(slots);
	return rc;
}

static int
verdict_exit(enum guard_verdict v)
{
	return v == GUARD_FOREIGN ? EX_REFUSED : v == GUARD_DNS_ERROR ? EX_FAILED : EX_DONE;
}

/* Why a foreign domain is refused, in the words the administrator reads. */
static int
refuse_foreign(const char *name, const struct guard_result *res)
{
	if (guard_nowhere(res->detail))
		return cli_error(EX_REFUSED, "refusing to claim %s: its DNS sends its mail"
		    " nowhere (%s), so senders never bring its mail here. Point its MX"
		    " at this server first, or use --force to claim it anyway.",
		    name, res->detail);
	return cli_error(EX_REFUSED, "refusing to claim %s: its mail goes to another "
	    "server (%s). If this server claimed %s, mail for %s's users, "
	    "including mail that aliases forward to them, would be kept here "
	    "instead of reaching them. Use --force to claim it anyway.",
	    name, res->detail, name, name);
}

static int
domain_add(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	struct store_domain d = { 0 };
	struct guard_result res;
	char *name;
	int force = 0, ch, status;

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'f')
			return cli_bad_option(argc, argv, ch, "domain add D [--force]");
		force = 1;
	}
	if (argc - optind != 1)
		return cli_error(EX_USAGE, "usage: domain add D [--force]");
	if (!cli_valid_domain(argv[optind]))
		return cli_error(EX_USAGE, "%s is not a valid domain name", argv[optind]);
	if ((status = cli_open_store(c)) != 0)
		return status;

	name = xstrdup(argv[optind]);
	str_lower(name);
	if ((status = store_domain_exists(c->store, name)) != 0) {
		free(name);
		if (status > 0)
			return cli_error(EX_FAILED, "domain %s already exists", argv[optind]);
		return cli_store_error(c, status);
	}
	if (guard_run(c, &name, 1, &res) != 0) {
		free(name);
		return EX_FAILED;
	}
	if (!force && res.verdict == GUARD_FOREIGN) {
		status = refuse_foreign(name, &res);
		free(name);
		return status;
	}
	if (!force && res.verdict == GUARD_DNS_ERROR) {
		status = cli_error(EX_FAILED, "cannot check %s's MX: %s. Try again when "
		    "DNS answers, or use --force to claim it unchecked.", name, res.detail);
		free(name);
		return status;
	}
	d.name = name;
	/* --force is recorded when it overrode something. */
	d.forced = res.verdict == GUARD_FOREIGN || res.verdict == GUARD_DNS_ERROR;
	d.guard = (char *)guard_verdict_name(res.verdict);
	d.guard_detail = res.detail;
	d.checked_at = (int64_t)time(NULL);
	status = store_domain_add(c->store, &d);
	if (status != STORE_OK) {
		free(name);
		return cli_store_error(c, status);
	}
	if (res.verdict == GUARD_INTERNAL)
		cli_warn("%s is an internal name (%s): outside senders cannot reach it",
		    name, res.detail);
	if (d.forced)
		printf("domain %s added with --force over the MX guard's verdict %s: %s\n",
		    name, d.guard, res.detail);
	else
		printf("domain %s added: MX guard %s: %s\n", name, d.guard, res.detail);
	free(name);
	return EX_DONE;
}

/* domain check [D]: the verdict now, nothing changed; every domain without D. */
static int
domain_check(struct cli *c, int argc, char **argv)
{
	struct guard_result *res;
	struct store_domain *v = NULL;
	char **names;
	size_t n = 0;
	int status, worst = EX_DONE;

	if (argc > 2)
		return cli_error(EX_USAGE, "usage: domain check [D]");
	if (argc == 2) {
		if (!cli_valid_domain(argv[1]))
			return cli_error(EX_USAGE, "%s is not a valid domain name", argv[1]);
		names = xcalloc(1, sizeof(*names));
		names[0] = xstrdup(argv[1]);
		str_lower(names[0]);
		n = 1;
	} else {
		if ((status = cli_open_store(c)) != 0)
			return status;
		if ((status = store_domain_list(c->store, &v, &n)) != STORE_OK)
			return cli_store_error(c, status);
		names = xcalloc(n ? n : 1, sizeof(*names));
		for (size_t i = 0; i < n; i++)
			names[i] = xstrdup(v[i].name);
		store_domain_list_free(&v, n);
	}
	res = xcalloc(n ? n : 1, sizeof(*res));
	if (guard_run(c, names, n, res) != 0) {
		worst = EX_FAILED;
		goto out;
	}
	if (c->json) {
		fputs("[", stdout);
		for (size_t i = 0; i < n; i++) {
			int first = 1;

			fputs(i ? ",\n {" : "{", stdout);
			json_kv_str(stdout, &first, "name", names[i]);
			json_kv_str(stdout, &first, "guard", guard_verdict_name(res[i].verdict));
			json_kv_str(stdout, &first, "guard_detail", res[i].detail);
			fputs("}", stdout);
		}
		fputs("]\n", stdout);
	} else if (n == 0)
		printf("no domains to check\n");
	for (size_t i = 0; i < n; i++) {
		int code = verdict_exit(res[i].verdict);

		if (!c->json)
			printf("%s: %s: %s\n", names[i], guard_verdict_name(res[i].verdict),
			    res[i].detail);
		if (code == EX_REFUSED || (code == EX_FAILED && worst == EX_DONE))
			worst = code;
	}
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(res);
	return worst;
}

static int
domain_del(struct cli *c, int argc, char **argv)
{
	char *name;
	int status;

	if (argc != 2)
		return cli_error(EX_USAGE, "usage: domain del D");
	if (!cli_valid_domain(argv[1]))
		return cli_error(EX_USAGE, "%s is not a valid domain name", argv[1]);
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
		struct table *t = table_new(5, "DOMAIN", "GUARD", "FORCED", "CHECKED", "DETAIL");
		char when[32];

		for (size_t i = 0; i < n; i++)
			table_row(t, v[i].name, v[i].guard, v[i].forced ? "yes" : "no",
			    cli_time(v[i].checked_at, when, sizeof(when)),
			    v[i].guard_detail && v[i].guard_detail[0] ? v[i].guard_detail : NULL);
		table_print(t, stdout);
	}
	store_domain_list_free(&v, n);
	return EX_DONE;
}

int
cmd_domain(struct cli *c, int argc, char **argv)
{
	if (argc < 1)
		return cli_error(EX_USAGE, "usage: domain add D [--force] | check [D] | list | del D");
	if (strcmp(argv[0], "add") == 0)
		return domain_add(c, argc, argv);
	if (strcmp(argv[0], "check") == 0)
		return domain_check(c, argc, argv);
	if (strcmp(argv[0], "del") == 0)
		return domain_del(c, argc, argv);
	if (strcmp(argv[0], "list") == 0)
		return domain_list(c, argc, argv);
	return cli_error(EX_USAGE, "unknown verb domain %s; try add, check, list, del", argv[0]);
}
