/*
 * status.c - umboxctl status: what this umbox holds and each domain's guard verdict.
 */
#include "cli/cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "aliases/guard.h"

int
cmd_status(struct cli *c, int argc, char **argv)
{
	struct store_stats st;
	struct store_domain *d;
	size_t n;
	const char *where;
	int r, version;

	if (argc != 0)
		return cli_error(EX_USAGE, "usage: status");
	if ((r = cli_open_store(c)) != 0)
		return r;
	if ((r = store_stats(c->store, &st)) != STORE_OK ||
	    (r = store_domain_list(c->store, &d, &n)) != STORE_OK)
		return cli_store_error(c, r);
	version = store_schema_version(c->store);
	where = store_where(c->store);

	if (c->json) {
		int first = 1;

		fputs("{", stdout);
		json_kv_str(stdout, &first, "version", UMBOX_VERSION);
		json_kv_str(stdout, &first, "config", c->cfg.path);
		json_kv_str(stdout, &first, "hostname", c->cfg.general.hostname);
		json_kv_str(stdout, &first, "store", where);
		json_kv_int(stdout, &first, "schema_version", version);
		json_kv_int(stdout, &first, "domains", (long long)st.domains);
		json_kv_int(stdout, &first, "users", (long long)st.users);
		json_kv_int(stdout, &first, "aliases", (long long)st.aliases);
		json_kv_int(stdout, &first, "relays", (long long)st.relays);
		json_kv_int(stdout, &first, "messages", (long long)st.messages);
		json_kv_int(stdout, &first, "message_bytes", (long long)st.message_bytes);
		json_kv_int(stdout, &first, "mailbox_entries", (long long)st.entries);
		json_kv_int(stdout, &first, "queued", (long long)st.queued);
		json_kv_int(stdout, &first, "queue_failed", (long long)st.queue_failed);
		json_kv_bool(stdout, &first, "srs", c->cfg.queue.srs_secret[0] != '\0');
		json_key(stdout, &first, "domain_guard");
		fputs("[", stdout);
		for (size_t i = 0; i < n; i++) {
			int f = 1;

			fputs(i ? ", {" : "{", stdout);
			json_kv_str(stdout, &f, "name", d[i].name);
			json_kv_str(stdout, &f, "guard", d[i].guard);
			json_kv_str(stdout, &f, "guard_detail", d[i].guard_detail);
			json_kv_bool(stdout, &f, "forced", d[i].forced);
			json_kv_int(stdout, &f, "checked_at", d[i].checked_at);
			json_kv_bool(stdout, &f, "foreign", strcmp(d[i].guard, "foreign") == 0);
			fputs("}", stdout);
		}
		fputs("]}\n", stdout);
	} else {
		printf("umbox %s\n", UMBOX_VERSION);
		printf("config:     %s\n", c->cfg.path ? c->cfg.path : "(defaults)");
		printf("hostname:   %s\n", c->cfg.general.hostname);
		printf("store:      %s (schema %d)\n", where, version);
		printf("domains:    %" PRIu64 "\n", st.domains);
		printf("users:      %" PRIu64 "\n", st.users);
		printf("aliases:    %" PRIu64 "\n", st.aliases);
		printf("relays:     %" PRIu64 "\n", st.relays);
		printf("messages:   %" PRIu64 " (%" PRIu64 " bytes, %" PRIu64 " mailbox entries)\n",
		    st.messages, st.message_bytes, st.entries);
		printf("queue:      %" PRIu64 " recipients waiting, %" PRIu64 " failed\n",
		    st.queued, st.queue_failed);
		printf("SRS:        %s\n", c->cfg.queue.srs_secret[0] ? "on" : "off");
		for (size_t i = 0; i < n; i++) {
			char when[32];

			printf("domain %s: MX guard %s%s, checked %s%s%s\n", d[i].name,
			    d[i].guard, d[i].forced ? " (forced)" : "",
			    cli_time(d[i].checked_at, when, sizeof(when)),
			    d[i].guard_detail[0] ? ": " : "", d[i].guard_detail);
		}
		if (c->cfg.queue.srs_secret[0] == '\0')
			printf("\nWARNING: SRS is off: [queue] srs_secret is empty, so mail that\n"
			    "  aliases forward from outside senders to outside addresses keeps\n"
			    "  its sender, fails SPF at the receiver, and bounces to SRS\n"
			    "  addresses are refused.  Set a long random secret, for example\n"
			    "  the output of \"openssl rand -hex 32\", as srs_secret in the\n"
			    "  [queue] section of %s, then restart umbox-smtpd.\n",
			    c->cfg.path ? c->cfg.path : "/etc/umbox/umbox.conf");
		for (size_t i = 0; i < n; i++)
			if (strcmp(d[i].guard, "foreign") == 0 && guard_nowhere(d[i].guard_detail))
				printf("\nWARNING: %s's DNS sends its mail nowhere (%s).\n"
				    "  Outside senders never bring mail for %s here; mail for it\n"
				    "  from this server's own users and aliases is still kept here.\n"
				    "  Point its MX at this server, or remove it:"
				    " umboxctl domain del %s\n",
				    d[i].name, d[i].guard_detail, d[i].name, d[i].name);
			else if (strcmp(d[i].guard, "foreign") == 0)
				printf("\nWARNING: %s's mail goes to another server (%s).\n"
				    "  This server still accepts mail for %s and keeps it here, and\n"
				    "  alias members at %s are delivered to mailboxes here, so they\n"
				    "  never reach %s's real mail server.  Unless that is what you\n"
				    "  want, remove it: umboxctl domain del %s\n",
				    d[i].name, d[i].guard_detail, d[i].name, d[i].name,
				    d[i].name, d[i].name);
	}
	store_domain_list_free(&d, n);
	return EX_DONE;
}
