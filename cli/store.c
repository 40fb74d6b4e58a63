/*
 * store.c - umboxctl store: copy a site's SQLite store into PostgreSQL,
 * and check the store a site runs on.
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/*
 * Whether a daemon serves the SQLite store at path: each holds an flock
 * on its file beside the store while it runs.  Who, with its pid.
 */
static int
sqlite_served(const char *path, char *who, size_t len)
{
	static const char *const progs[] = { "umbox-smtpd", "umbox-pop3d" };

	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		char *file = store_daemon_lock_file(path, progs[i]), pid[32];
		int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), held = 0;

		free(file);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
			held = 1;
			store_daemon_lock_pid(fd, pid, sizeof(pid));
			snprintf(who, len, "%s%s%s%s", progs[i], pid[0] ? " (pid " : "", pid,
			    pid[0] ? ")" : "");
		}
		close(fd);
		if (held)
			return 1;
	}
	return 0;
}

/* "1 relay", "2 relays" into buf. */
static const char *
counted(uint64_t n, const char *one, const char *many, char buf[48])
{
	snprintf(buf, 48, "%" PRIu64 " %s", n, n == 1 ? one : many);
	return buf;
}

static int
store_copy_cmd(struct cli *c, int argc, char **argv)
{
	char who[80], w[7][48];
	struct store_copy_counts n;
	char *path;
	int r;

	if (argc != 3 || strcmp(argv[1], "--to") != 0)
		return cli_error(EX_USAGE, "usage: store copy --to postgresql");
	if (strcmp(argv[2], "postgresql") != 0)
		return cli_error(EX_USAGE, "store copy: %s is not a backend to copy to"
		    " (postgresql)", argv[2]);
	if (c->cfg.store.backend != CONFIG_BACKEND_POSTGRESQL)
		return cli_error(EX_FAILED, "store copy: set [store] backend = postgresql and"
		    " dsn in %s first; the copy reads %s/store.db into that database",
		    c->cfg.path ? c->cfg.path : "umbox.conf", c->cfg.general.data_dir);
	path = config_store_path(&c->cfg);
	if (sqlite_served(path, who, sizeof(who))) {
		r = cli_error(EX_REFUSED, "store copy: %s serves %s: stop the daemons first (mail"
		    " they take meanwhile would not be copied)", who, path);
		free(path);
		return r;
	}
	if ((r = cli_open_store(c)) != 0) {
		free(path);
		return r;
	}
	r = store_copy_from_sqlite(c->store, path, &n);
	if (r == STORE_EXISTS) {
		free(path);
		return cli_error(EX_REFUSED, "%s", store_errmsg(c->store));
	}
	if (r != STORE_OK) {
		free(path);
		return cli_store_error(c, r);
	}
	if (c->json) {
		int first = 1;

		fputs("{", stdout);
		json_kv_str(stdout, &first, "from", path);
		json_kv_int(stdout, &first, "domains", (long long)n.domains);
		json_kv_int(stdout, &first, "users", (long long)n.users);
		json_kv_int(stdout, &first, "aliases", (long long)n.aliases);
		json_kv_int(stdout, &first, "relays", (long long)n.relays);
		json_kv_int(stdout, &first, "messages", (long long)n.messages);
		json_kv_int(stdout, &first, "mailbox_entries", (long long)n.entries);
		json_kv_int(stdout, &first, "queued", (long long)n.queued);
		fputs("}\n", stdout);
	} else
		printf("copied %s to postgresql: %s, %s, %s, %s, %s in %s, %s\n", path,
		    counted(n.domains, "domain", "domains", w[0]),
		    counted(n.users, "user", "users", w[1]),
		    counted(n.aliases, "alias", "aliases", w[2]),
		    counted(n.relays, "relay", "relays", w[3]),
		    counted(n.messages, "message", "messages", w[4]),
		    counted(n.entries, "mailbox entry", "mailbox entries", w[5]),
		    counted(n.queued, "queue entry", "queue entries", w[6]));
	free(path);
	return EX_DONE;
}

struct check_out {
	struct cli *c;
	int first;
	int failed;
};

static void
store_check_line(void *arg, const char *item, enum store_check_level level, const char *text)
{
	static const char *const word[] = { "ok", "warning", "FAILED" };
	struct check_out *o = arg;

	if (level == STORE_CHECK_FAILED)
		o->failed = 1;
	if (o->c->json) {
		int f = 1;

		fputs(o->first ? "{" : ", {", stdout);
		json_kv_str(stdout, &f, "item", item);
		json_kv_str(stdout, &f, "result", level == STORE_CHECK_FAILED ? "failed" :
		    word[level]);
		json_kv_str(stdout, &f, "detail", text);
		fputs("}", stdout);
	} else
		printf("%-12s %-8s %s\n", item, word[level], text);
	o->first = 0;
}

static int
store_check_cmd(struct cli *c, int argc, char **argv)
{
	struct check_out o = { c, 1, 0 };
	char err[512];
	int r;

	if (argc != 1)
		return cli_error(EX_USAGE, "usage: store check");
	if (c->json)
		fputs("[", stdout);
	/* A store that cannot be reached is the first thing the check finds. */
	if (cli_open_store_quietly(c, err, sizeof(err)) != 0) {
		store_check_line(&o, "store", STORE_CHECK_FAILED, err);
		if (c->json)
			fputs("]\n", stdout);
		return cli_error(EX_FAILED, "the store check found problems");
	}
	r = store_check(c->store, store_check_line, &o);
	if (c->json)
		fputs("]\n", stdout);
	if (r != STORE_OK)
		return cli_store_error(c, r);
	return o.failed ? cli_error(EX_FAILED, "the store check found problems") : EX_DONE;
}

int
cmd_store(struct cli *c, int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "copy") == 0)
		return store_copy_cmd(c, argc, argv);
	if (argc >= 1 && strcmp(argv[0], "check") == 0)
		return store_check_cmd(c, argc, argv);
	return cli_error(EX_USAGE, "usage: store copy --to postgresql | store check");
}
