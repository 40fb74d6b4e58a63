/*
 * pg_connect.c - reaching the server without a wait that nothing bounds.
 *
 * The conninfo's host names are looked up with c-ares through the
 * [dns] servers and handed to libpq as hostaddr (the name stays as host,
 * for TLS and the passfile), so libpq never asks the system resolver.
 * Each address (each socket directory, each literal address) is then
 * tried in turn with PQconnectStartParams and PQconnectPoll, polling
 * the socket for the state libpq asks for, for at most connect_timeout
 * seconds (PG_CONNECT_TIMEOUT when the conninfo sets none): a server
 * that accepts and never answers, or one frozen, costs a bounded wait
 * and the next address is tried.  target_session_attrs still applies to
 * each attempt, so with several hosts the first that qualifies wins.
 *
 * libpq would also take a host from the connection service file
 * (service=NAME in the dsn, or PGSERVICE) or from PGHOST, PGHOSTADDR and
 * PGPORT, and look its name up itself.  So the host, hostaddr, port and
 * connect_timeout the dsn leaves unset are first taken here from those,
 * in libpq's order (the dsn, then the service file, then the
 * environment), and looked up like the dsn's own.
 */
#include "store/pg_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ini.h>

#include "lib/coro.h"
#include "lib/resolve.h"
#include "lib/util.h"

#define PG_CONNECT_TIMEOUT	10	/* seconds, per address */
#define PG_KEYS_MAX		64

/* One place to try: a host (name or socket directory), its address, its port. */
struct pg_target {
	const char *host, *hostaddr, *port;
};

/* The n-th comma-separated item of list (NULL list: ""), copied to buf. */
static const char *
pg_item(const char *list, size_t n, char *buf, size_t len)
{
	const char *p = list ? list : "";
	size_t k;

	for (; n > 0 && (p = strchr(p, ',')) != NULL; n--)
		p++;
	if (p == NULL)
		p = "";
	k = strcspn(p, ",");
	snprintf(buf, len, "%.*s", (int)k, p);
	return buf;
}

static size_t
pg_items(const char *list)
{
	size_t n = 1;

	if (list == NULL || *list == '\0')
		return 0;
	for (const char *p = list; (p = strchr(p, ',')) != NULL; p++)
		n++;
	return n;
}

/*
 * libpq's message as one line: a line that goes on (indented) joins the
 * one before with a space, a new one follows "; "; no trailing blanks.
 */
void
pg_msg(const char *msg, char *err, size_t errlen)
{
	size_t o = 0;

	if (errlen == 0)
		return;
	for (const char *p = msg; *p && o + 1 < errlen; p++) {
		if (*p == '\n' || *p == '\r') {
			const char *q = p;

			while (*q == '\n' || *q == '\r' || *q == ' ' || *q == '\t')
				q++;
			if (*q == '\0')
				break;
			if (q[-1] == ' ' || q[-1] == '\t')
				err[o++] = ' ';
			else if (o + 2 < errlen) {
				err[o++] = ';';
				err[o++] = ' ';
			}
			p = q - 1;
			continue;
		}
		err[o++] = *p == '\t' ? ' ' : *p;
	}
	while (o > 0 && err[o - 1] == ' ')
		o--;
	err[o] = '\0';
}

#ifndef PG_SYSCONFDIR
#define PG_SYSCONFDIR	"/etc/postgresql-common"	/* Debian's libpq */
#endif

/* The options libpq may take from elsewhere than the dsn. */
enum { PG_HOST, PG_HOSTADDR, PG_PORT, PG_TIMEOUT, PG__WHERE };
static const char *const pg_where_keys[PG__WHERE] = {
	"host", "hostaddr", "port", "connect_timeout"
};
static const char *const pg_where_env[PG__WHERE] = {
	"PGHOST", "PGHOSTADDR", "PGPORT", "PGCONNECT_TIMEOUT"
};

struct pg_service {
	const char *name;
	int found;			/* the file has [name] */
	char *val[PG__WHERE];
};

static int
pg_service_line(void *arg, const char *section, const char *key, const char *value)
{
	struct pg_service *sv = arg;

	if (strcmp(section, sv->name) != 0)
		return 1;
	sv->found = 1;
	for (int i = 0; i < PG__WHERE; i++)
		if (key && strcmp(key, pg_where_keys[i]) == 0 && sv->val[i] == NULL)
			sv->val[i] = xstrdup(value);
	return 1;
}

/* Read [name] of one service file, if the file is there; 1 if it has it. */
static int
pg_service_file(struct pg_service *sv, const char *path)
{
	return ini_parse(path, pg_service_line, sv) >= 0 && sv->found;
}

/*
 * What libpq would take for host, hostaddr, port and connect_timeout
 * when the dsn does not set them: the service's first (PGSERVICEFILE or
 * ~/.pg_service.conf, then pg_service.conf in PGSYSCONFDIR or libpq's
 * own directory), then the environment.  An unknown service is left to
 * libpq to report.
 */
static void
pg_where_defaults(const char *service, char *val[PG__WHERE])
{
	struct pg_service sv = { .name = service ? service : getenv("PGSERVICE") };
	const char *env;
	char path[4096];

	if (sv.name && *sv.name) {
		struct passwd pw, *pwp = NULL;
		char pwbuf[1024];

		if ((env = getenv("PGSERVICEFILE")) != NULL)
			snprintf(path, sizeof(path), "%s", env);
		else if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &pwp) == 0 && pwp)
			snprintf(path, sizeof(path), "%s/.pg_service.conf", pw.pw_dir);
		else
			path[0] = '\0';
		if (!path[0] || !pg_service_file(&sv, path)) {
			env = getenv("PGSYSCONFDIR");
			snprintf(path, sizeof(path), "%s/pg_service.conf", env ? env : PG_SYSCONFDIR);
			pg_service_file(&sv, path);
		}
	}
	for (int i = 0; i < PG__WHERE; i++) {
		if (val[i] != NULL) {
			free(sv.val[i]);
			continue;
		}
		val[i] = sv.val[i];
		if (val[i] == NULL && (env = getenv(pg_where_env[i])) != NULL && *env)
			val[i] = xstrdup(env);
	}
}

/* One attempt at one target, for at most timeout_ms. */
static PGconn *
pg_connect_one(const char **keys, const char **vals, size_t nk, const struct pg_target *t,
    int64_t timeout_ms, char *err, size_t errlen)
{
	int64_t deadline = monotonic_ms() + timeout_ms;
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	PGconn *c;

	if (t->host)
		keys[nk] = "host", vals[nk++] = t->host;
	if (t->hostaddr)
		keys[nk] = "hostaddr", vals[nk++] = t->hostaddr;
	if (t->port)
		keys[nk] = "port", vals[nk++] = t->port;
	keys[nk] = vals[nk] = NULL;
	c = PQconnectStartParams(keys, vals, 0);
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	while (PQstatus(c) != CONNECTION_BAD) {
		struct pollfd pfd = { .fd = PQsocket(c) };
		int64_t left = deadline - monotonic_ms();
		int rc;

		if (st == PGRES_POLLING_OK) {
			/* Commands are sent without blocking and waited for in coro_poll. */
			if (PQsetnonblocking(c, 1) == 0)
				return c;
			break;
		}
		if (st == PGRES_POLLING_FAILED)
			break;
		if (left <= 0) {
			snprintf(err, errlen, "no answer within %d s", (int)(timeout_ms / 1000));
			PQfinish(c);
			return NULL;
		}
		pfd.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		rc = coro_poll(&pfd, 1, (int)left);
		if (rc < 0 && errno != EINTR)
			break;
		if (rc > 0)
			st = PQconnectPoll(c);
	}
	pg_msg(*PQerrorMessage(c) ? PQerrorMessage(c) : "connection failed", err, errlen);
	PQfinish(c);
	return NULL;
}

/* Append "; what" to err (the failures of every target, in order). */
static void
pg_note(char *err, size_t errlen, const struct pg_target *t, const char *what)
{
	const char *h = t->host ? t->host : "the default host";
	int addr = t->hostaddr && strcmp(h, t->hostaddr) != 0;
	size_t n = strlen(err);

	if (n + 3 < errlen)
		snprintf(err + n, errlen - n, "%s%s%s%s%s: %s", n ? "; " : "", h,
		    addr ? " (" : "", addr ? t->hostaddr : "", addr ? ")" : "", what);
}

PGconn *
pg_connect(const char *dsn, const struct config_endpoints *dns, char *err, size_t errlen)
{
	PQconninfoOption *opts;
	/* The dsn's own, connect_timeout, host, hostaddr, port, the NULL. */
	const char *keys[PG_KEYS_MAX + 5], *vals[PG_KEYS_MAX + 5], *service = NULL;
	char *where[PG__WHERE] = { NULL }, *msg = NULL, one[512];
	const char *host, *hostaddr, *port;
	int64_t timeout_ms = PG_CONNECT_TIMEOUT * (int64_t)1000;
	size_t nk = 0, nhosts;
	PGconn *c = NULL;
	int w;

	err[0] = '\0';
	if ((opts = PQconninfoParse(dsn ? dsn : "", &msg)) == NULL) {
		pg_msg(msg ? msg : "out of memory", one, sizeof(one));
		snprintf(err, errlen, "the dsn: %s", one);
		PQfreemem(msg);
		return NULL;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		for (w = 0; w < PG__WHERE && strcmp(o->keyword, pg_where_keys[w]) != 0; w++)
			;
		if (w < PG__WHERE)
			where[w] = xstrdup(o->val);
		else if (nk < PG_KEYS_MAX) {
			if (strcmp(o->keyword, "service") == 0)
				service = o->val;
			keys[nk] = o->keyword, vals[nk++] = o->val;
		}
	}
	pg_where_defaults(service, where);
	host = where[PG_HOST], hostaddr = where[PG_HOSTADDR], port = where[PG_PORT];
	if (where[PG_TIMEOUT] && atoi(where[PG_TIMEOUT]) > 0) {
		timeout_ms = (atoi(where[PG_TIMEOUT]) < 2 ? 2 : atoi(where[PG_TIMEOUT])) *
		    (int64_t)1000;
		keys[nk] = "connect_timeout", vals[nk++] = where[PG_TIMEOUT];
	}
	/* No host anywhere: libpq's default socket directory. */
	nhosts = pg_items(host) ? pg_items(host) : 1;
	for (size_t i = 0; i < nhosts && c == NULL; i++) {
		char h[256], a[256], pt[32], **addrs = NULL;
		struct pg_target t;
		int n = 1;

		t.host = pg_item(host, i, h, sizeof(h));
		t.port = pg_items(port) > 1 ? pg_item(port, i, pt, sizeof(pt)) : port;
		t.hostaddr = hostaddr ? pg_item(hostaddr, i, a, sizeof(a)) : NULL;
		if (t.hostaddr && *t.hostaddr == '\0')
			t.hostaddr = NULL;
		if (t.hostaddr == NULL && h[0] != '\0' && h[0] != '/' && h[0] != '@') {
			unsigned char bin[16];

			if (inet_pton(AF_INET, h, bin) == 1 || inet_pton(AF_INET6, h, bin) == 1)
				t.hostaddr = h;
			else if ((n = resolve_host(dns, h, (unsigned)timeout_ms, &addrs, one,
			    sizeof(one))) < 0) {
				pg_note(err, errlen, &t, one);
				continue;
			}
		}
		if (h[0] == '\0')
			t.host = NULL;
		for (int k = 0; k < n && c == NULL; k++) {
			if (addrs)
				t.hostaddr = addrs[k];
			c = pg_connect_one(keys, vals, nk, &t, timeout_ms, one, sizeof(one));
			if (c == NULL)
				pg_note(err, errlen, &t, one);
		}
		resolve_free(addrs, addrs ? n : 0);
	}
	PQconninfoFree(opts);
	for (w = 0; w < PG__WHERE; w++)
		free(where[w]);
	return c;
}
