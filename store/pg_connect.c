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
 */
#include "store/pg_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* libpq's message without its trailing newlines. */
static void
pg_msg(const char *msg, char *err, size_t errlen)
{
	size_t n = strlen(msg);

	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		n--;
	snprintf(err, errlen, "%.*s", (int)n, msg);
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

		if (st == PGRES_POLLING_OK)
			return c;
		if (st == PGRES_POLLING_FAILED)
			break;
		if (left <= 0) {
			snprintf(err, errlen, "no answer within %d s", (int)(timeout_ms / 1000));
			PQfinish(c);
			return NULL;
		}
		pfd.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		rc = poll(&pfd, 1, (int)left);
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
	const char *keys[PG_KEYS_MAX + 4], *vals[PG_KEYS_MAX + 4];
	const char *host = NULL, *hostaddr = NULL, *port = NULL;
	char *msg = NULL, one[512];
	int64_t timeout_ms = PG_CONNECT_TIMEOUT * (int64_t)1000;
	size_t nk = 0, nhosts;
	PGconn *c = NULL;

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
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0)
			hostaddr = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
		else if (nk < PG_KEYS_MAX) {
			if (strcmp(o->keyword, "connect_timeout") == 0 && atoi(o->val) > 0)
				timeout_ms = (atoi(o->val) < 2 ? 2 : atoi(o->val)) * (int64_t)1000;
			keys[nk] = o->keyword, vals[nk++] = o->val;
		}
	}
	/* No host: libpq's default (PGHOST, or the default socket directory). */
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
	return c;
}
