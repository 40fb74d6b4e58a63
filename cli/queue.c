/*
 * queue.c - umboxctl queue list | show | flush | del | hold | release
 *
 * One row per recipient waiting to go outside (or for room in a full
 * local mailbox), or failed and kept for its bounce.  ID is the row's
 * number, as queue list prints it.
 */
#include "cli/cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUEUE_ERROR_COLUMN	60	/* characters of the last error a list shows */

static int
queue_parse_id(const char *verb, int argc, char **argv, int64_t *id)
{
	uint64_t v;

	if (argc != 2)
		return cli_error(EX_USAGE, "usage: queue %s ID", verb);
	/*
	 * Not with a leading zero: a queue ID as a deposit prints it
	 * (0000000002) names a message, not this row, and may be all digits.
	 */
	if (argv[1][0] == '0' || parse_uint(argv[1], INT64_MAX, &v) != 0)
		return cli_error(EX_USAGE, "queue entry %s: give the number in queue list's ID"
		    " column (a queue ID names a message, not one of its rows)", argv[1]);
	*id = (int64_t)v;
	return 0;
}

/* Being tried right now: claimed, and the claim has not run out. */
static int
queue_delivering(const struct store_queue_entry *e, int64_t now)
{
	return e->claimed_by != NULL && e->claimed_until > now;
}

static const char *
queue_state(const struct store_queue_entry *e, int64_t now)
{
	if (e->status == STORE_QUEUE_FAILED)
		return e->held ? "failed, held" : "failed";
	if (e->held)
		return "held";
	return queue_delivering(e, now) ? "delivering" : "queued";
}

static const char *
queue_next(const struct store_queue_entry *e, int64_t now, char *buf, size_t len)
{
	if (e->status == STORE_QUEUE_FAILED)
		return "-";
	if (e->next_attempt <= now)
		return "now";
	return cli_time(e->next_attempt, buf, len);
}

static void
queue_json(struct cli *c, const struct store_queue_entry *e, int64_t now, int close)
{
	int first = 1;

	fputs("{", stdout);
	json_kv_int(stdout, &first, "id", e->id);
	json_kv_str(stdout, &first, "queue_id", e->qid);
	json_kv_str(stdout, &first, "sender", e->sender);
	json_kv_str(stdout, &first, "recipient", e->recipient);
	json_kv_bool(stdout, &first, "local", e->local_user_id != 0);
	json_kv_str(stdout, &first, "kind", store_kind_name(e->kind));
	json_kv_int(stdout, &first, "size", (long long)e->size);
	json_kv_str(stdout, &first, "status", e->status == STORE_QUEUE_FAILED ? "failed" :
	    "queued");
	json_kv_bool(stdout, &first, "held", e->held);
	json_kv_bool(stdout, &first, "delivering", queue_delivering(e, now));
	json_kv_str(stdout, &first, "claimed_by", e->claimed_by);
	json_kv_int(stdout, &first, "claimed_until", e->claimed_until);
	json_kv_int(stdout, &first, "attempts", e->attempts);
	json_kv_int(stdout, &first, "next_attempt", e->next_attempt);
	json_kv_int(stdout, &first, "last_attempt", e->last_attempt);
	json_kv_str(stdout, &first, "last_error", e->last_error);
	json_kv_int(stdout, &first, "created_at", e->created_at);
	json_kv_int(stdout, &first, "expires_at", e->created_at + (int64_t)c->cfg.queue.lifetime);
	if (close)
		fputs("}", stdout);
}

static int
queue_list(struct cli *c, int argc, char **argv)
{
	struct store_queue_entry *v;
	int64_t now = (int64_t)time(NULL);
	size_t n;
	int r;

	if (argc != 1)
		return cli_error(EX_USAGE, "usage: queue list");
	if ((r = cli_open_store(c)) != 0)
		return r;
	if ((r = store_queue_list(c->store, &v, &n)) != STORE_OK)
		return cli_store_error(c, r);
	if (c->json) {
		fputs("[", stdout);
		for (size_t i = 0; i < n; i++) {
			fputs(i ? ",\n " : "", stdout);
			queue_json(c, &v[i], now, 1);
		}
		fputs("]\n", stdout);
	} else {
		struct table *t = table_new(6, "ID", "RECIPIENT", "STATUS", "ATTEMPTS",
		    "NEXT-ATTEMPT", "LAST-ERROR");

		for (size_t i = 0; i < n; i++) {
			char id[24], attempts[16], when[32], *err = xstrdup(v[i].last_error);

			snprintf(id, sizeof(id), "%" PRId64, v[i].id);
			snprintf(attempts, sizeof(attempts), "%u", v[i].attempts);
			text_cut(err, QUEUE_ERROR_COLUMN);	/* at a character */
			table_row(t, id, v[i].recipient, queue_state(&v[i], now), attempts,
			    queue_next(&v[i], now, when, sizeof(when)), err);
			free(err);
		}
		table_print(t, stdout);
	}
	store_queue_list_free(&v, n);
	return EX_DONE;
}

/*
 * Where the row goes at its next attempt: a local mailbox, a relay, or
 * the MX hosts.  0 or an exit code; *route "local", "relay" or "mx" and
 * name the login or relay.
 */
static int
queue_route(struct cli *c, const struct store_queue_entry *e, const char **route,
    char *name, size_t len)
{
	int status;

	name[0] = '\0';
	if (e->local_user_id != 0) {
		struct store_user u;

		*route = "local";
		if ((status = store_user_get_by_id(c->store, e->local_user_id, &u)) != STORE_OK)
			return cli_store_error(c, status);
		snprintf(name, len, "%s", u.login);
		store_user_clear(&u);
		return 0;
	} else {
		struct store_relay r;

		*route = "mx";
		status = store_relay_for_domain(c->store, e->domain, &r);
		if (status == STORE_NOTFOUND)
			return 0;
		if (status != STORE_OK)
			return cli_store_error(c, status);
		*route = "relay";
		snprintf(name, len, "%s", r.name);
		store_relay_clear(&r);
		return 0;
	}
}

static int
queue_show(struct cli *c, int argc, char **argv)
{
	struct store_queue_entry e;
	int64_t id, now = (int64_t)time(NULL);
	const char *route;
	char name[128], when[32];
	int r;

	if ((r = queue_parse_id("show", argc, argv, &id)) != 0)
		return r;
	if ((r = cli_open_store(c)) != 0)
		return r;
	if ((r = store_queue_get(c->store, id, &e)) != STORE_OK)
		return cli_store_error(c, r);
	if ((r = queue_route(c, &e, &route, name, sizeof(name))) != 0) {
		store_queue_entry_clear(&e);
		return r;
	}
	if (c->json) {
		int first = 0;

		queue_json(c, &e, now, 0);
		json_kv_str(stdout, &first, "route", route);
		if (strcmp(route, "relay") == 0)
			json_kv_str(stdout, &first, "relay", name);
		else if (strcmp(route, "local") == 0)
			json_kv_str(stdout, &first, "login", name);
		fputs("}\n", stdout);
		store_queue_entry_clear(&e);
		return EX_DONE;
	}
	printf("id:            %" PRId64 "\n", e.id);
	printf("queue id:      %s\n", e.qid);
	printf("sender:        <%s>\n", e.sender);
	printf("recipient:     %s\n", e.recipient);
	if (strcmp(route, "local") == 0)
		printf("route:         mailbox %s, waiting for room\n", name);
	else if (strcmp(route, "relay") == 0)
		printf("route:         relay %s\n", name);
	else
		printf("route:         mx\n");
	if (queue_delivering(&e, now) && e.status != STORE_QUEUE_FAILED)
		printf("status:        %s (claimed by %s until %s)\n", queue_state(&e, now),
		    e.claimed_by, cli_time(e.claimed_until, when, sizeof(when)));
	else
		printf("status:        %s\n", queue_state(&e, now));
	printf("kind:          %s\n", store_kind_name(e.kind));
	printf("size:          %" PRIu64 " bytes\n", e.size);
	printf("attempts:      %u\n", e.attempts);
	printf("created:       %s\n", cli_time(e.created_at, when, sizeof(when)));
	printf("last attempt:  %s\n", cli_time(e.last_attempt, when, sizeof(when)));
	printf("next attempt:  %s\n", queue_next(&e, now, when, sizeof(when)));
	printf("last error:    %s\n", e.last_error[0] ? e.last_error : "-");
	printf("gives up:      %s\n", e.status == STORE_QUEUE_FAILED ? "-" :
	    cli_time(e.created_at + (int64_t)c->cfg.queue.lifetime, when, sizeof(when)));
	store_queue_entry_clear(&e);
	return EX_DONE;
}

static int
queue_flush(struct cli *c, int argc, char **argv)
{
	struct store_queue_entry e;
	int64_t id = 0;
	size_t n;
	int r;

	if (argc > 2)
		return cli_error(EX_USAGE, "usage: queue flush [ID]");
	if (argc == 2 && (r = queue_parse_id("flush", argc, argv, &id)) != 0)
		return r;
	if ((r = cli_open_store(c)) != 0)
		return r;
	if (id != 0) {
		if ((r = store_queue_get(c->store, id, &e)) != STORE_OK)
			return cli_store_error(c, r);
		r = e.status == STORE_QUEUE_FAILED ? 1 : e.held ? 2 : 0;
		store_queue_entry_clear(&e);
		if (r == 1)
			return cli_error(EX_REFUSED, "queue entry %" PRId64 " has failed: it is kept"
			    " for its bounce and not tried again", id);
		if (r == 2)
			return cli_error(EX_REFUSED, "queue entry %" PRId64 " is held; queue release"
			    " it first", id);
	}
	if ((r = store_queue_flush(c->store, id, (int64_t)time(NULL), &n)) != STORE_OK)
		return cli_store_error(c, r);
	if (id != 0)
		printf("queue entry %" PRId64 " is due now\n", id);
	else
		printf("%zu queue %s due now\n", n, n == 1 ? "entry is" : "entries are");
	return EX_DONE;
}

static int
queue_del(struct cli *c, int argc, char **argv)
{
	struct store_queue_entry e;
	int64_t id;
	int r, delivering;

	if ((r = queue_parse_id("del", argc, argv, &id)) != 0)
		return r;
	if ((r = cli_open_store(c)) != 0)
		return r;
	if ((r = store_queue_get(c->store, id, &e)) != STORE_OK)
		return cli_store_error(c, r);
	delivering = queue_delivering(&e, (int64_t)time(NULL));
	store_queue_entry_clear(&e);
	if ((r = store_queue_del(c->store, id)) != STORE_OK)
		return cli_store_error(c, r);
	printf("queue entry %" PRId64 " deleted\n", id);
	if (delivering)
		cli_warn("queue entry %" PRId64 " was being delivered: that attempt may still"
		    " reach the recipient", id);
	return EX_DONE;
}

/* hold and release */
static int
queue_hold(struct cli *c, int argc, char **argv)
{
	int hold = strcmp(argv[0], "hold") == 0;
	int64_t id;
	int r;

	if ((r = queue_parse_id(argv[0], argc, argv, &id)) != 0)
		return r;
	if ((r = cli_open_store(c)) != 0)
		return r;
	if ((r = store_queue_hold(c->store, id, hold)) != STORE_OK)
		return cli_store_error(c, r);
	printf("queue entry %" PRId64 " %s\n", id, hold ? "held" : "released");
	return EX_DONE;
}

int
cmd_queue(struct cli *c, int argc, char **argv)
{
	static const struct {
		const char *verb;
		int (*fn)(struct cli *, int, char **);
	} verbs[] = {
		{ "list", queue_list }, { "show", queue_show }, { "flush", queue_flush },
		{ "del", queue_del }, { "hold", queue_hold }, { "release", queue_hold },
	};

	if (argc < 1)
		return cli_error(EX_USAGE, "usage: queue list|show|flush|del|hold|release ...");
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		if (strcmp(argv[0], verbs[i].verb) == 0)
			return verbs[i].fn(c, argc, argv);
	return cli_error(EX_USAGE, "unknown verb queue %s; try list, show, flush, del, hold,"
	    " release", argv[0]);
}
