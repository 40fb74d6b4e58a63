/*
 * relay.c - umboxctl relay add | set | del | list | show
 *
 * A relay (smarthost) carries outside mail for the domains it lists, or
 * for every domain when it is the default (SPEC §6).  Its password is
 * read only from stdin and never printed.
 */
#include "cli/cli.h"

#include <getopt.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aliases/dns.h"
#include "aliases/route.h"
#include "lib/addr.h"
#include "lib/tls.h"
#include "lib/value.h"

enum {
	O_HOST = 1, O_PORT, O_DOMAIN, O_DEFAULT, O_NODEFAULT, O_ACTIVE, O_INACTIVE, O_TLS,
	O_VERIFY, O_NOVERIFY, O_AUTH, O_USER, O_PWSTDIN, O_SENDER, O_TIMEOUT, O_CHUNKING,
	O_NOCHUNKING,
};

static const char add_usage[] = "relay add NAME --host H [--port P] [--domain D]..."
    " [--default] [--inactive] [--tls MODE] [--no-verify] [--auth MECH]"
    " [--user U --password-stdin] [--sender ADDR] [--timeout SECS] [--no-chunking]";
static const char set_usage[] = "relay set NAME [--host H] [--port P] [--domain D]..."
    " [--default|--no-default] [--active|--inactive] [--tls MODE] [--verify|--no-verify]"
    " [--auth MECH] [--user U --password-stdin] [--password-stdin] [--sender ADDR]"
    " [--timeout SECS] [--chunking|--no-chunking]";

/* What the options of add and set say; strings point into argv. */
struct relay_opts {
	struct store_relay r;
	unsigned fields;
	int password_stdin;
	char *name;		/* lowercased copy of NAME */
};

static void
relay_opts_clear(struct relay_opts *o)
{
	strlist_clear(&o->r.domains);
	if (o->r.password) {
		explicit_bzero(o->r.password, strlen(o->r.password));
		free(o->r.password);
	}
	free(o->name);
	memset(o, 0, sizeof(*o));
}

static int
relay_valid_host(const char *h)
{
	unsigned char buf[16];

	return value_ip_literal(h, buf) || addr_valid_domain(h, strlen(h));
}

static int
relay_printable(const char *v)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

/*
 * Parse the options add and set share.  set = 1 allows the switches
 * that undo a default (--active, --verify, --chunking, --no-default) and
 * empty values that clear a field; add starts from the defaults.
 */
static int
relay_parse_opts(int argc, char **argv, int set, struct relay_opts *o)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, O_HOST },
		{ "port", required_argument, NULL, O_PORT },
		{ "domain", required_argument, NULL, O_DOMAIN },
		{ "default", no_argument, NULL, O_DEFAULT },
		{ "no-default", no_argument, NULL, O_NODEFAULT },
		{ "active", no_argument, NULL, O_ACTIVE },
		{ "inactive", no_argument, NULL, O_INACTIVE },
		{ "tls", required_argument, NULL, O_TLS },
		{ "verify", no_argument, NULL, O_VERIFY },
		{ "no-verify", no_argument, NULL, O_NOVERIFY },
		{ "auth", required_argument, NULL, O_AUTH },
		{ "user", required_argument, NULL, O_USER },
		{ "password-stdin", no_argument, NULL, O_PWSTDIN },
		{ "sender", required_argument, NULL, O_SENDER },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "chunking", no_argument, NULL, O_CHUNKING },
		{ "no-chunking", no_argument, NULL, O_NOCHUNKING },
		{ NULL, 0, NULL, 0 },
	};
	const char *usage = set ? set_usage : add_usage;
	int ch, clear_domains = 0;
	uint64_t v;
	unsigned secs;
	struct addr a;

	memset(o, 0, sizeof(*o));
	store_relay_init(&o->r);
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case O_HOST:
			if (!relay_valid_host(optarg))
				return cli_error(EX_USAGE, "host %s: give a host name or an IP address",
				    optarg);
			o->r.host = optarg;
			o->fields |= STORE_RELAY_HOST;
			break;
		case O_PORT:
			if (set && *optarg == '\0')
				o->r.port = 0;
			else if (parse_uint(optarg, 65535, &v) != 0 || v == 0)
				return cli_error(EX_USAGE, "port %s: give 1 to 65535%s", optarg,
				    set ? ", or \"\" for the TLS mode's default" : "");
			else
				o->r.port = (unsigned)v;
			o->fields |= STORE_RELAY_PORT;
			break;
		case O_DOMAIN:
			if (set && *optarg == '\0')
				clear_domains = 1;
			else if (!cli_valid_domain(optarg))
				return cli_error(EX_USAGE, "%s is not a valid domain name", optarg);
			else {
				char *d = xstrdup(optarg);

				str_lower(d);
				if (!strlist_contains_nocase(&o->r.domains, d))
					strlist_add(&o->r.domains, d);
				free(d);
			}
			o->fields |= STORE_RELAY_DOMAINS;
			break;
		case O_DEFAULT:
		case O_NODEFAULT:
			if (!set && ch == O_NODEFAULT)
				goto bad;
			o->r.is_default = ch == O_DEFAULT;
			o->fields |= STORE_RELAY_DEFAULT;
			break;
		case O_ACTIVE:
		case O_INACTIVE:
			if (!set && ch == O_ACTIVE)
				goto bad;
			o->r.active = ch == O_ACTIVE;
			o->fields |= STORE_RELAY_ACTIVE;
			break;
		case O_TLS:
			if (store_relay_tls_parse(optarg, &o->r.tls) != 0)
				return cli_error(EX_USAGE, "--tls takes auto, starttls, implicit or none");
			o->fields |= STORE_RELAY_TLS;
			break;
		case O_VERIFY:
		case O_NOVERIFY:
			if (!set && ch == O_VERIFY)
				goto bad;
			o->r.verify = ch == O_VERIFY;
			o->fields |= STORE_RELAY_VERIFY;
			break;
		case O_AUTH:
			if (store_relay_auth_parse(optarg, &o->r.auth) != 0)
				return cli_error(EX_USAGE, "--auth takes auto, plain, login, cram-md5"
				    " or none");
			o->fields |= STORE_RELAY_AUTH;
			break;
		case O_USER:
			if (set && *optarg == '\0') {
				/* No account: the password goes too. */
				o->r.account = NULL;
				o->fields |= STORE_RELAY_ACCOUNT | STORE_RELAY_PASSWORD;
				break;
			}
			if (strlen(optarg) > STORE_RELAY_ACCOUNT_MAX || !relay_printable(optarg) ||
			    *optarg == '\0')
				return cli_error(EX_USAGE, "--user: give 1 to %d bytes without control"
				    " characters", STORE_RELAY_ACCOUNT_MAX);
			o->r.account = optarg;
			o->fields |= STORE_RELAY_ACCOUNT;
			break;
		case O_PWSTDIN:
			o->password_stdin = 1;
			break;
		case O_SENDER:
			if (set && *optarg == '\0')
				o->r.sender = NULL;
			else if (addr_parse_mailbox(optarg, strlen(optarg), 0, &a) != ADDR_OK ||
			    (a.flags & (ADDR_F_NO_DOMAIN | ADDR_F_QUOTED)))
				return cli_error(EX_USAGE, "sender %s: give an address local@domain",
				    optarg);
			else
				o->r.sender = optarg;
			o->fields |= STORE_RELAY_SENDER;
			break;
		case O_TIMEOUT:
			if (config_parse_duration(optarg, &secs) != 0 || secs < 1 ||
			    secs > STORE_RELAY_TIMEOUT_MAX)
				return cli_error(EX_USAGE, "timeout %s: give 1 to %d seconds", optarg,
				    STORE_RELAY_TIMEOUT_MAX);
			o->r.timeout = secs;
			o->fields |= STORE_RELAY_TIMEOUT;
			break;
		case O_CHUNKING:
		case O_NOCHUNKING:
			if (!set && ch == O_CHUNKING)
				goto bad;
			o->r.chunking = ch == O_CHUNKING;
			o->fields |= STORE_RELAY_CHUNKING;
			break;
		default:
			goto bad;
		}
	}
	if (argc - optind != 1)
		return cli_error(EX_USAGE, "usage: %s", usage);
	if (clear_domains && o->r.domains.n > 0)
		return cli_error(EX_USAGE, "--domain \"\" empties the list and goes alone");
	if (o->r.account && !o->password_stdin)
		return cli_error(EX_USAGE, "--user needs --password-stdin: the password is read"
		    " only from stdin");
	if (o->password_stdin && !set && !o->r.account)
		return cli_error(EX_USAGE, "--password-stdin needs --user");
	if ((o->fields & STORE_RELAY_ACCOUNT) && o->r.account == NULL && o->password_stdin)
		return cli_error(EX_USAGE, "--user \"\" removes the credentials; it takes no"
		    " password");
	if (!store_relay_valid_name(argv[optind]))
		return cli_error(EX_USAGE, "relay name %s: use up to %d of a-z 0-9 . _ -,"
		    " starting with a letter or digit", argv[optind], STORE_RELAY_NAME_MAX);
	o->name = xstrdup(argv[optind]);
	str_lower(o->name);
	return 0;
bad:
	return cli_bad_option(argc, argv, ch, usage);
}

/* The password from stdin into o (owned), for add and set. */
static int
relay_read_password(struct relay_opts *o)
{
	char pw[STORE_RELAY_PASSWORD_MAX + 2];
	int r;

	if ((r = cli_read_password(pw, sizeof(pw))) != 0)
		return r;
	if (!relay_printable(pw)) {
		explicit_bzero(pw, sizeof(pw));
		return cli_error(EX_USAGE, "the password must not contain control characters");
	}
	o->r.password = xstrdup(pw);
	o->fields |= STORE_RELAY_PASSWORD;
	explicit_bzero(pw, sizeof(pw));
	return 0;
}

static int
relay_add(struct cli *c, int argc, char **argv)
{
	struct relay_opts o;
	int r;

	if ((r = relay_parse_opts(argc, argv, 0, &o)) != 0)
		goto out;
	if (o.r.host == NULL) {
		r = cli_error(EX_USAGE, "--host is needed; usage: %s", add_usage);
		goto out;
	}
	if (o.password_stdin && (r = relay_read_password(&o)) != 0)
		goto out;
	if ((r = cli_open_store(c)) != 0)
		goto out;
	o.r.name = o.name;
	r = store_relay_add(c->store, &o.r);
	o.r.name = NULL;
	if (r == STORE_OK)
		printf("relay %s added\n", o.name);
	r = r == STORE_OK ? EX_DONE : cli_store_error(c, r);
out:
	relay_opts_clear(&o);
	return r;
}

static int
relay_set(struct cli *c, int argc, char **argv)
{
	struct relay_opts o;
	struct store_relay cur;
	int r;

	if ((r = relay_parse_opts(argc, argv, 1, &o)) != 0)
		goto out;
	if (o.fields == 0 && !o.password_stdin) {
		r = cli_error(EX_USAGE, "nothing to change; usage: %s", set_usage);
		goto out;
	}
	/* Say "no such relay" before reading a password. */
	if ((r = cli_open_store(c)) != 0)
		goto out;
	if ((r = store_relay_get(c->store, o.name, &cur)) != STORE_OK) {
		r = cli_store_error(c, r);
		goto out;
	}
	store_relay_clear(&cur);
	if (o.password_stdin && (r = relay_read_password(&o)) != 0)
		goto out;
	r = store_relay_set(c->store, o.name, &o.r, o.fields);
	if (r == STORE_OK)
		printf("relay %s changed\n", o.name);
	r = r == STORE_OK ? EX_DONE : cli_store_error(c, r);
out:
	relay_opts_clear(&o);
	return r;
}

static int
relay_del(struct cli *c, int argc, char **argv)
{
	char *name;
	int r;

	if (argc != 2)
		return cli_error(EX_USAGE, "usage: relay del NAME");
	if ((r = cli_open_store(c)) != 0)
		return r;
	name = xstrdup(argv[1]);
	str_lower(name);
	r = store_relay_del(c->store, name);
	if (r == STORE_OK)
		printf("relay %s deleted\n", name);
	free(name);
	return r == STORE_OK ? EX_DONE : cli_store_error(c, r);
}

static char *
relay_domains_joined(const struct store_relay *r)
{
	size_t len = 1;
	char *s;

	for (size_t i = 0; i < r->domains.n; i++)
		len += strlen(r->domains.v[i]) + 2;
	s = xcalloc(1, len);
	for (size_t i = 0; i < r->domains.n; i++) {
		if (i)
			strcat(s, ", ");
		strcat(s, r->domains.v[i]);
	}
	return s;
}

static void
relay_json(const struct store_relay *r)
{
	int first = 1;

	fputs("{", stdout);
	json_kv_str(stdout, &first, "name", r->name);
	json_kv_str(stdout, &first, "host", r->host);
	json_kv_int(stdout, &first, "port", r->port);
	json_kv_bool(stdout, &first, "port_default", !r->port_given);
	json_key(stdout, &first, "domains");
	fputs("[", stdout);
	for (size_t i = 0; i < r->domains.n; i++) {
		fputs(i ? ", " : "", stdout);
		json_str(stdout, r->domains.v[i]);
	}
	fputs("]", stdout);
	json_kv_bool(stdout, &first, "default", r->is_default);
	json_kv_bool(stdout, &first, "active", r->active);
	json_kv_str(stdout, &first, "tls", store_relay_tls_name(r->tls));
	json_kv_bool(stdout, &first, "verify", r->verify);
	json_kv_str(stdout, &first, "auth", store_relay_auth_name(r->auth));
	json_kv_str(stdout, &first, "account", r->account);
	json_kv_bool(stdout, &first, "password_set", r->password != NULL);
	json_kv_str(stdout, &first, "sender", r->sender);
	json_kv_int(stdout, &first, "timeout", r->timeout);
	json_kv_bool(stdout, &first, "chunking", r->chunking);
	json_kv_int(stdout, &first, "created_at", r->created_at);
	fputs("}", stdout);
}

static int
relay_list(struct cli *c, int argc, char **argv)
{
	struct store_relay *v;
	size_t n;
	int r;

	if (argc != 1)
		return cli_error(EX_USAGE, "usage: relay list");
	if ((r = cli_open_store(c)) != 0)
		return r;
	if ((r = store_relay_list(c->store, &v, &n)) != STORE_OK)
		return cli_store_error(c, r);
	if (c->json) {
		fputs("[", stdout);
		for (size_t i = 0; i < n; i++) {
			fputs(i ? ",\n " : "", stdout);
			relay_json(&v[i]);
		}
		fputs("]\n", stdout);
	} else {
		struct table *t = table_new(8, "NAME", "HOST", "PORT", "TLS", "AUTH", "DEFAULT",
		    "ACTIVE", "DOMAINS");

		for (size_t i = 0; i < n; i++) {
			char port[16], *d = relay_domains_joined(&v[i]);

			snprintf(port, sizeof(port), "%u", v[i].port);
			table_row(t, v[i].name, v[i].host, port, store_relay_tls_name(v[i].tls),
			    store_relay_auth_name(v[i].auth), v[i].is_default ? "yes" : "no",
			    v[i].active ? "yes" : "no", d);
			free(d);
		}
		table_print(t, stdout);
	}
	store_relay_list_free(&v, n);
	return EX_DONE;
}

static int
relay_show(struct cli *c, int argc, char **argv)
{
	struct store_relay rl;
	char when[32], *d;
	int r;

	if (argc != 2)
		return cli_error(EX_USAGE, "usage: relay show NAME");
	if ((r = cli_open_store(c)) != 0)
		return r;
	if ((r = store_relay_get(c->store, argv[1], &rl)) != STORE_OK)
		return cli_store_error(c, r);
	if (c->json) {
		relay_json(&rl);
		fputs("\n", stdout);
		store_relay_clear(&rl);
		return EX_DONE;
	}
	d = relay_domains_joined(&rl);
	printf("relay:      %s\n", rl.name);
	printf("host:       %s\n", rl.host);
	if (rl.port_given)
		printf("port:       %u\n", rl.port);
	else
		printf("port:       %u (the default for tls %s)\n", rl.port,
		    store_relay_tls_name(rl.tls));
	printf("domains:    %s\n", *d ? d : "-");
	printf("default:    %s\n", rl.is_default ? "yes" : "no");
	printf("active:     %s\n", rl.active ? "yes" : "no");
	printf("tls:        %s\n", store_relay_tls_name(rl.tls));
	/* Certificates are checked with starttls and implicit only. */
	printf("verify:     %s%s\n", rl.verify ? "yes" : "no", rl.tls == STORE_TLS_STARTTLS ||
	    rl.tls == STORE_TLS_IMPLICIT ? "" : " (only with tls starttls or implicit)");
	printf("auth:       %s\n", store_relay_auth_name(rl.auth));
	printf("account:    %s\n", rl.account ? rl.account : "-");
	printf("password:   %s\n", rl.password ? "set" : "not set");
	printf("sender:     %s\n", rl.sender ? rl.sender : "-");
	printf("timeout:    %u s\n", rl.timeout);
	printf("chunking:   %s\n", rl.chunking ? "on" : "off");
	printf("created:    %s\n", cli_time(rl.created_at, when, sizeof(when)));
	free(d);
	store_relay_clear(&rl);
	return EX_DONE;
}

/* relay test: resolve, then connect like a delivery and stop after AUTH. */
struct relay_probe {
	struct event_base *base;
	struct cli *c;
	struct store_relay rl;
	struct mta_route route;
	struct mta_host hosts[DNS_MAX_ADDRS];
	char names[DNS_MAX_ADDRS][DNS_NAME_MAX + 1];
	SSL_CTX *ctx;
	struct dns_resolver *dns;
	int ok;
};

static void
probe_step(void *arg, const char *step, int ok, const char *detail)
{
	printf("%-10s %-6s %s\n", step, ok ? "ok" : "FAILED", detail ? detail : "");
	fflush(stdout);
}

static void
probe_done(struct mta_attempt *a, void *arg)
{
	struct relay_probe *p = arg;

	p->ok = mta_probe_ok(a);
	/* The loop ends by itself once the connection has closed. */
}

static void
probe_resolved(struct dns_result *res, void *arg)
{
	struct relay_probe *p = arg;
	char addrs[512] = "", a[64];

	dns_free(&p->dns);	/* its events would keep the loop going */
	if (res->status != DNS_OK) {
		probe_step(NULL, "resolve", 0, res->detail);
		dns_result_free(&res);
		return;
	}
	for (size_t i = 0; i < res->nhosts && p->route.nhosts < DNS_MAX_ADDRS; i++)
		for (size_t k = 0; k < res->hosts[i].naddrs && p->route.nhosts < DNS_MAX_ADDRS; k++) {
			size_t n = p->route.nhosts++;

			snprintf(p->names[n], sizeof(p->names[n]), "%s", p->rl.host);
			p->hosts[n].name = p->names[n];
			dns_addr_sockaddr(&res->hosts[i].addrs[k], p->route.port, &p->hosts[n].addr);
			snprintf(addrs + strlen(addrs), sizeof(addrs) - strlen(addrs), "%s%s",
			    n ? ", " : "", dns_addr_text(&res->hosts[i].addrs[k], a, sizeof(a)));
		}
	dns_result_free(&res);
	probe_step(NULL, "resolve", 1, addrs);
	p->route.hosts = p->hosts;
	mta_start(p->base, p->ctx, "test", &p->route, NULL, NULL, 0, probe_step, probe_done, p);
}

static int
relay_test(struct cli *c, int argc, char **argv)
{
	struct relay_probe p = { .c = c };
	char err[512];
	int r;

	if (argc != 2)
		return cli_error(EX_USAGE, "usage: relay test NAME");
	if ((r = cli_open_store(c)) != 0)
		return r;
	if ((r = store_relay_get(c->store, argv[1], &p.rl)) != STORE_OK)
		return cli_store_error(c, r);
	signal(SIGPIPE, SIG_IGN);
	route_from_relay(&p.rl, &p.route);
	p.route.helo = c->cfg.general.hostname;
	p.base = event_base_new();
	if (p.base == NULL || (p.ctx = tls_client_ctx_new(err, sizeof(err))) == NULL ||
	    (p.dns = dns_new(p.base, &c->cfg.dns.servers, err, sizeof(err))) == NULL) {
		if (p.base)
			event_base_free(p.base);
		SSL_CTX_free(p.ctx);
		store_relay_clear(&p.rl);
		return cli_error(EX_FAILED, "cannot set up the test: %s", err);
	}
	printf("testing relay %s: %s port %u, tls %s, auth %s\n", p.rl.name, p.rl.host,
	    p.rl.port, store_relay_tls_name(p.rl.tls), store_relay_auth_name(p.rl.auth));
	dns_addresses(p.dns, p.rl.host, probe_resolved, &p);
	event_base_dispatch(p.base);
	dns_free(&p.dns);
	event_base_free(p.base);
	SSL_CTX_free(p.ctx);
	store_relay_clear(&p.rl);
	if (!p.ok)
		return cli_error(EX_FAILED, "relay %s did not pass the test", argv[1]);
	printf("relay %s works\n", argv[1]);
	return EX_DONE;
}

int
cmd_relay(struct cli *c, int argc, char **argv)
{
	static const struct {
		const char *verb;
		int (*fn)(struct cli *, int, char **);
	} verbs[] = {
		{ "add", relay_add }, { "set", relay_set }, { "del", relay_del },
		{ "list", relay_list }, { "show", relay_show }, { "test", relay_test },
	};

	if (argc < 1)
		return cli_error(EX_USAGE, "usage: relay add|list|show|set|del|test ...");
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		if (strcmp(argv[0], verbs[i].verb) == 0)
			return verbs[i].fn(c, argc, argv);
	return cli_error(EX_USAGE, "unknown verb relay %s; try add, list, show, set, del, test",
	    argv[0]);
}
