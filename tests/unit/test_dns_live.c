/*
 * test_dns_live.c - aliases/dns.c against a real DNS server on loopback.
 *
 * The server is tests/dns/dnsserver.py (Debian's python3-dnslib), started
 * here as a child on a free UDP+TCP port and stopped at the end; it also
 * exits by itself when this program's end of its standard input closes.
 * Set UMBOX_DNS_PORT to use one already running instead, and
 * UMBOX_DNS_SERVER to name another copy of the script.
 *
 * Each test has its own event base and resolver with short c-ares
 * timeouts (300 ms, one try), so a lost answer costs a fraction of a
 * second and every test is bounded by a guard timer.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include <event2/event.h>

#include "aliases/dns.h"
#include "lib/endpoint.h"

#define TIMEOUT_MS	300
#define GUARD_SECONDS	10

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static pid_t server_pid = -1;
static int server_stdin = -1;
static uint16_t server_port;
static char nonce[48];		/* keeps counting names apart between runs */

/* The server script: $UMBOX_DNS_SERVER, or tests/dns/ from here or the binary. */
static char *
find_script(void)
{
	const char *rel[] = { "", "/../..", "/../../.." };
	char exe[PATH_MAX], *dir, *p;
	ssize_t n;
	size_t i;

	if (getenv("UMBOX_DNS_SERVER") != NULL)
		return strdup(getenv("UMBOX_DNS_SERVER"));
	if (access("tests/dns/dnsserver.py", R_OK) == 0)
		return strdup("tests/dns/dnsserver.py");
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	dir = dirname(exe);
	for (i = 0; i < ARRAY_SIZE(rel); i++) {
		if (asprintf(&p, "%s%s/tests/dns/dnsserver.py", dir, rel[i]) < 0)
			abort();
		if (access(p, R_OK) == 0)
			return p;
		free(p);
	}
	return NULL;
}

static int
server_start(void **state)
{
	int in[2], out[2];
	char line[64], *script;
	size_t len = 0;
	unsigned port;

	snprintf(nonce, sizeof(nonce), "n%ldx%ld", (long)getpid(),
	    (long)time(NULL));
	if (getenv("UMBOX_DNS_PORT") != NULL) {
		server_port = (uint16_t)atoi(getenv("UMBOX_DNS_PORT"));
		return server_port ? 0 : -1;
	}
	script = find_script();
	if (script == NULL) {
		fprintf(stderr, "test_dns_live: tests/dns/dnsserver.py not found\n");
		return -1;
	}
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
		abort();
	server_pid = fork();
	if (server_pid < 0)
		abort();
	if (server_pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execl("/usr/bin/python3", "python3", script, (char *)NULL);
		_exit(127);
	}
	free(script);
	close(in[0]);
	close(out[1]);
	server_stdin = in[1];

	/* "PORT <n>\n", within 10 s. */
	while (len < sizeof(line) - 1 && memchr(line, '\n', len) == NULL) {
		struct pollfd pfd = { .fd = out[0], .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, 10000) <= 0)
			break;
		n = read(out[0], line + len, sizeof(line) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	line[len] = '\0';
	close(out[0]);
	if (sscanf(line, "PORT %u", &port) != 1 || port == 0 || port > 65535) {
		fprintf(stderr, "test_dns_live: the DNS server did not start "
		    "(python3-dnslib missing? see scripts/install-deps)\n");
		return -1;
	}
	server_port = (uint16_t)port;
	return 0;
}

static int
server_stop(void **state)
{
	if (server_stdin >= 0)
		close(server_stdin);
	if (server_pid > 0) {
		kill(server_pid, SIGTERM);
		waitpid(server_pid, NULL, 0);
	}
	return 0;
}

/* ------------------------------------------------------------------ */

struct fx {
	struct event_base *base;
	struct dns_resolver *r;
};

static struct dns_resolver *
resolver_on(struct event_base *base, uint16_t port, const struct dns_options *o)
{
	struct config_endpoint ep;
	struct config_endpoints servers = { &ep, 1 };
	struct dns_options def = { .timeout_ms = TIMEOUT_MS, .tries = 1 };
	struct dns_resolver *r;
	char err[256];

	memset(&ep, 0, sizeof(ep));
	strcpy(ep.host, "127.0.0.1");
	ep.port = port;
	r = dns_new_opts(base, &servers, o ? o : &def, err, sizeof(err));
	if (r == NULL) {
		print_error("dns_new: %s\n", err);
		fail();
	}
	return r;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->base = event_base_new();
	assert_non_null(f->base);
	f->r = resolver_on(f->base, server_port, NULL);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	dns_free(&f->r);
	event_base_free(f->base);
	free(f);
	return 0;
}

struct got {
	int calls;
	struct dns_result *res;
};

static void
got_cb(struct dns_result *res, void *arg)
{
	struct got *g = arg;

	g->calls++;
	dns_result_free(&g->res);
	g->res = res;
}

static void
guard_cb(evutil_socket_t fd, short what, void *arg)
{
	*(int *)arg = 1;
}

/* Run the loop until *count reaches want; fail after GUARD_SECONDS. */
static void
run_until(struct event_base *base, const int *count, int want)
{
	struct timeval tv = { GUARD_SECONDS, 0 };
	int expired = 0;
	struct event *guard = evtimer_new(base, guard_cb, &expired);

	evtimer_add(guard, &tv);
	while (*count < want && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(guard);
	if (*count < want) {
		print_error("no answer within %d s\n", GUARD_SECONDS);
		fail();
	}
}

static struct dns_result *
mx(struct fx *f, const char *domain)
{
	struct got g = { 0, NULL };

	dns_mx_hosts(f->r, domain, got_cb, &g);
	assert_int_equal(g.calls, 0);	/* never from inside the request */
	run_until(f->base, &g.calls, 1);
	assert_int_equal(g.calls, 1);
	return g.res;
}

static struct dns_result *
addrs(struct fx *f, const char *host)
{
	struct got g = { 0, NULL };

	dns_addresses(f->r, host, got_cb, &g);
	assert_int_equal(g.calls, 0);
	run_until(f->base, &g.calls, 1);
	return g.res;
}

static int
has_addr(const struct dns_host *h, const char *text)
{
	char buf[INET6_ADDRSTRLEN];
	size_t i;

	for (i = 0; i < h->naddrs; i++)
		if (strcmp(dns_addr_text(&h->addrs[i], buf, sizeof(buf)), text) == 0)
			return 1;
	return 0;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ */

static void
test_mx_by_preference(void **state)
{
	struct dns_result *res = mx(*state, "MX.test.");

	assert_int_equal(res->status, DNS_OK);
	assert_int_equal(res->reason, DNS_R_NONE);
	assert_string_equal(res->name, "mx.test");
	assert_string_equal(res->detail, "");
	assert_false(res->implicit_mx);
	assert_int_equal(res->nhosts, 2);
	assert_string_equal(res->hosts[0].name, "mx1.mx.test");
	assert_int_equal(res->hosts[0].preference, 10);
	assert_int_equal(res->hosts[0].status, DNS_OK);
	assert_int_equal(res->hosts[0].naddrs, 2);
	assert_true(has_addr(&res->hosts[0], "192.0.2.1"));
	assert_true(has_addr(&res->hosts[0], "2001:db8::1"));
	assert_string_equal(res->hosts[1].name, "mx2.mx.test");
	assert_int_equal(res->hosts[1].preference, 20);
	assert_int_equal(res->hosts[1].naddrs, 1);
	assert_true(has_addr(&res->hosts[1], "192.0.2.2"));
	/* The smallest TTL of the MX records (200) and addresses (300). */
	assert_int_equal(res->ttl, 200);
	dns_result_free(&res);
}

static void
test_equal_preferences_shuffled(void **state)
{
	struct fx *f = *state;
	struct dns_result *res;
	int seen_ab = 0, seen_ba = 0, i;
	unsigned long lookups;

	for (i = 0; i < 60 && !(seen_ab && seen_ba); i++) {
		res = mx(f, "twin.test");
		assert_int_equal(res->status, DNS_OK);
		assert_int_equal(res->nhosts, 3);
		assert_int_equal(res->hosts[0].preference, 10);
		assert_int_equal(res->hosts[1].preference, 10);
		assert_string_equal(res->hosts[2].name, "c.twin.test");
		if (strcmp(res->hosts[0].name, "a.twin.test") == 0) {
			assert_string_equal(res->hosts[1].name, "b.twin.test");
			seen_ab = 1;
		} else {
			assert_string_equal(res->hosts[0].name, "b.twin.test");
			assert_string_equal(res->hosts[1].name, "a.twin.test");
			seen_ba = 1;
		}
		if (i == 0)
			lookups = dns_lookups(f->r);
		dns_result_free(&res);
	}
	assert_true(seen_ab && seen_ba);
	/* One MX lookup and two (AAAA, A) per host; then the cache. */
	assert_int_equal(lookups, 7);
	assert_int_equal(dns_lookups(f->r), 7);
}

static void
test_null_mx(void **state)
{
	struct dns_result *res = mx(*state, "nullmx.test");

	assert_int_equal(res->status, DNS_PERMANENT);
	assert_int_equal(res->reason, DNS_R_NULL_MX);
	assert_string_equal(res->detail,
	    "nullmx.test has a null MX: it accepts no mail");
	assert_int_equal(res->nhosts, 0);
	dns_result_free(&res);
}

static void
test_nxdomain(void **state)
{
	struct dns_result *res = mx(*state, "nx.test");

	assert_int_equal(res->status, DNS_PERMANENT);
	assert_int_equal(res->reason, DNS_R_NXDOMAIN);
	assert_string_equal(res->detail, "nx.test: no such domain (NXDOMAIN)");
	dns_result_free(&res);
}

static void
test_servfail(void **state)
{
	struct dns_result *res = mx(*state, "servfail.test");

	assert_int_equal(res->status, DNS_TEMPORARY);
	assert_int_equal(res->reason, DNS_R_SERVFAIL);
	assert_string_equal(res->detail,
	    "servfail.test: MX lookup failed: server failure (SERVFAIL)");
	dns_result_free(&res);
}

static void
test_refused(void **state)
{
	struct dns_result *res = mx(*state, "refused.test");

	assert_int_equal(res->status, DNS_TEMPORARY);
	assert_int_equal(res->reason, DNS_R_REFUSED);
	dns_result_free(&res);
}

static void
test_timeout(void **state)
{
	double t0 = now_s();
	struct dns_result *res = mx(*state, "slow.test");

	assert_int_equal(res->status, DNS_TEMPORARY);
	assert_int_equal(res->reason, DNS_R_TIMEOUT);
	assert_string_equal(res->detail, "slow.test: MX lookup timed out");
	assert_true(now_s() - t0 < 3.0);
	dns_result_free(&res);
}

static void
test_no_mx_falls_back_to_a(void **state)
{
	struct dns_result *res = mx(*state, "amx.test");

	assert_int_equal(res->status, DNS_OK);
	assert_true(res->implicit_mx);
	assert_int_equal(res->nhosts, 1);
	assert_string_equal(res->hosts[0].name, "amx.test");
	assert_int_equal(res->hosts[0].preference, 0);
	assert_int_equal(res->hosts[0].naddrs, 2);
	assert_true(has_addr(&res->hosts[0], "192.0.2.10"));
	assert_true(has_addr(&res->hosts[0], "2001:db8::10"));
	assert_int_not_equal(res->hosts[0].addrs[0].family,
	    res->hosts[0].addrs[1].family);
	dns_result_free(&res);
}

static void
test_no_mx_no_address(void **state)
{
	struct dns_result *res = mx(*state, "nomx.test");

	assert_int_equal(res->status, DNS_PERMANENT);
	assert_int_equal(res->reason, DNS_R_NO_ADDRESS);
	assert_true(res->implicit_mx);
	assert_string_equal(res->detail,
	    "nomx.test has no MX and no address record");
	dns_result_free(&res);
}

static void
test_mx_host_without_address(void **state)
{
	struct dns_result *res = mx(*state, "nohost.test");

	assert_int_equal(res->status, DNS_OK);
	assert_int_equal(res->nhosts, 3);
	assert_string_equal(res->hosts[0].name, "gone.nohost.test");
	assert_int_equal(res->hosts[0].naddrs, 0);
	assert_int_equal(res->hosts[0].status, DNS_PERMANENT);
	assert_int_equal(res->hosts[0].reason, DNS_R_NXDOMAIN);
	assert_string_equal(res->hosts[1].name, "mx.nohost.test");
	assert_true(has_addr(&res->hosts[1], "192.0.2.20"));
	assert_string_equal(res->hosts[2].name, "noaddr.nohost.test");
	assert_int_equal(res->hosts[2].naddrs, 0);
	assert_int_equal(res->hosts[2].status, DNS_PERMANENT);
	assert_int_equal(res->hosts[2].reason, DNS_R_NO_ADDRESS);
	/* A host without address keeps the answer short-lived. */
	assert_int_equal(res->ttl, 60);
	dns_result_free(&res);
}

static void
test_no_mx_host_has_an_address(void **state)
{
	struct dns_result *res = mx(*state, "allgone.test");

	assert_int_equal(res->status, DNS_PERMANENT);
	assert_int_equal(res->reason, DNS_R_NO_ADDRESS);
	assert_string_equal(res->detail,
	    "no MX host of allgone.test has an address");
	assert_int_equal(res->nhosts, 1);
	assert_string_equal(res->hosts[0].name, "gone.allgone.test");
	dns_result_free(&res);
}

static void
test_mx_host_times_out(void **state)
{
	struct fx *f = *state;
	struct dns_result *res = mx(f, "slowhost.test");
	unsigned long n = dns_lookups(f->r);

	assert_int_equal(res->status, DNS_TEMPORARY);
	assert_int_equal(res->reason, DNS_R_TIMEOUT);
	assert_string_equal(res->detail, "slowhost.test: address lookup of "
	    "MX host mx.slowhost.test timed out");
	assert_int_equal(res->nhosts, 1);
	dns_result_free(&res);
	/* Never cached: the next request asks again. */
	res = mx(f, "slowhost.test");
	assert_int_equal(res->status, DNS_TEMPORARY);
	assert_true(dns_lookups(f->r) > n);
	dns_result_free(&res);
}

static void
test_big_answer_over_tcp(void **state)
{
	struct dns_result *res = mx(*state, "big.test");
	size_t i;

	assert_int_equal(res->status, DNS_OK);
	assert_int_equal(res->nhosts, 40);
	/* mx39 has preference 61, the best; then up by one. */
	for (i = 0; i < res->nhosts; i++) {
		char want[32];

		snprintf(want, sizeof(want), "mx%02zu.big.test", 39 - i);
		assert_string_equal(res->hosts[i].name, want);
		assert_int_equal(res->hosts[i].preference, 61 + i);
		assert_int_equal(res->hosts[i].naddrs, 1);
	}
	dns_result_free(&res);
}

static void
test_odd_host_names_dropped(void **state)
{
	struct dns_result *res = mx(*state, "odd.test");

	assert_int_equal(res->status, DNS_OK);
	assert_int_equal(res->nhosts, 1);
	assert_string_equal(res->hosts[0].name, "mx.odd.test");
	dns_result_free(&res);
}

static void
test_ipv6_only_host(void **state)
{
	struct dns_result *res = mx(*state, "v6only.test");

	assert_int_equal(res->status, DNS_OK);
	assert_int_equal(res->hosts[0].naddrs, 1);
	assert_int_equal(res->hosts[0].addrs[0].family, AF_INET6);
	assert_true(has_addr(&res->hosts[0], "2001:db8::24"));
	dns_result_free(&res);
}

/* Twenty requests for one domain at once: one lookup, twenty answers. */
static void
test_burst_joins_one_lookup(void **state)
{
	struct fx *f = *state;
	struct got g[20];
	int done = 0, i;

	memset(g, 0, sizeof(g));
	for (i = 0; i < 20; i++)
		dns_mx_hosts(f->r, "cached.test", got_cb, &g[i]);
	assert_int_equal(dns_lookups(f->r), 1);
	while (done < 20) {
		run_until(f->base, &g[done].calls, 1);
		for (done = 0; done < 20 && g[done].calls; done++)
			;
	}
	for (i = 0; i < 20; i++) {
		assert_int_equal(g[i].calls, 1);
		assert_int_equal(g[i].res->status, DNS_OK);
		assert_true(has_addr(&g[i].res->hosts[0], "192.0.2.23"));
		dns_result_free(&g[i].res);
	}
	/* The MX and its host's AAAA and A. */
	assert_int_equal(dns_lookups(f->r), 3);
}

static void
test_ttl_expires(void **state)
{
	struct fx *f = *state;
	struct dns_result *res;
	char name[128], host[160];

	snprintf(name, sizeof(name), "%s.counter.test", nonce);
	res = mx(f, name);
	assert_int_equal(res->status, DNS_OK);
	snprintf(host, sizeof(host), "mx1.%s", name);
	assert_string_equal(res->hosts[0].name, host);
	assert_int_equal(res->ttl, 1);
	dns_result_free(&res);

	res = mx(f, name);		/* cached */
	assert_string_equal(res->hosts[0].name, host);
	dns_result_free(&res);

	usleep(1200 * 1000);
	res = mx(f, name);		/* expired: asked again */
	snprintf(host, sizeof(host), "mx2.%s", name);
	assert_string_equal(res->hosts[0].name, host);
	dns_result_free(&res);
}

static void
test_negative_answer_cached_briefly(void **state)
{
	struct fx *f = *state;
	struct dns_options o = { .timeout_ms = TIMEOUT_MS, .tries = 1,
	    .ttl_negative = 1 };
	struct dns_result *res;
	char name[128];

	dns_free(&f->r);
	f->r = resolver_on(f->base, server_port, &o);
	snprintf(name, sizeof(name), "%s.flip.test", nonce);
	res = mx(f, name);
	assert_int_equal(res->status, DNS_PERMANENT);
	assert_int_equal(res->reason, DNS_R_NXDOMAIN);
	dns_result_free(&res);
	/* The server would answer now; the cache still says NXDOMAIN. */
	res = mx(f, name);
	assert_int_equal(res->reason, DNS_R_NXDOMAIN);
	dns_result_free(&res);
	usleep(1200 * 1000);
	res = mx(f, name);
	assert_int_equal(res->status, DNS_OK);
	dns_result_free(&res);
}

/* At most cache_size names are kept; the oldest goes first. */
static void
test_cache_bounded(void **state)
{
	struct fx *f = *state;
	struct dns_options o = { .timeout_ms = TIMEOUT_MS, .tries = 1,
	    .cache_size = 2 };
	const char *names[] = { "mx.test", "amx.test", "cached.test" };
	struct dns_result *res;
	unsigned long n;
	size_t i;

	dns_free(&f->r);
	f->r = resolver_on(f->base, server_port, &o);
	for (i = 0; i < 3; i++) {
		res = mx(f, names[i]);
		assert_int_equal(res->status, DNS_OK);
		dns_result_free(&res);
	}
	n = dns_lookups(f->r);
	res = mx(f, "cached.test");		/* the newest: kept */
	dns_result_free(&res);
	res = mx(f, "amx.test");
	dns_result_free(&res);
	assert_int_equal(dns_lookups(f->r), n);
	res = mx(f, "mx.test");			/* the oldest: evicted */
	assert_int_equal(res->status, DNS_OK);
	dns_result_free(&res);
	assert_true(dns_lookups(f->r) > n);
}

static void
test_temporary_never_cached(void **state)
{
	struct fx *f = *state;
	struct dns_result *res;
	char name[128];

	snprintf(name, sizeof(name), "%s.flaky.test", nonce);
	res = mx(f, name);
	assert_int_equal(res->status, DNS_TEMPORARY);
	assert_int_equal(res->reason, DNS_R_SERVFAIL);
	dns_result_free(&res);
	res = mx(f, name);
	assert_int_equal(res->status, DNS_OK);
	dns_result_free(&res);
}

static void
test_addresses(void **state)
{
	struct fx *f = *state;
	struct dns_result *res;
	unsigned long n;

	res = addrs(f, "relay.test");
	assert_int_equal(res->status, DNS_OK);
	assert_false(res->implicit_mx);
	assert_int_equal(res->nhosts, 1);
	assert_string_equal(res->hosts[0].name, "relay.test");
	assert_int_equal(res->hosts[0].naddrs, 3);
	assert_true(has_addr(&res->hosts[0], "192.0.2.40"));
	assert_true(has_addr(&res->hosts[0], "2001:db8::40"));
	assert_true(has_addr(&res->hosts[0], "2001:db8::41"));
	/* Families alternate: the odd one out sits in the middle. */
	assert_int_equal(res->hosts[0].addrs[0].family,
	    res->hosts[0].addrs[2].family);
	assert_int_not_equal(res->hosts[0].addrs[0].family,
	    res->hosts[0].addrs[1].family);
	assert_int_equal(res->hosts[0].addrs[0].family, AF_INET6);
	dns_result_free(&res);

	n = dns_lookups(f->r);
	res = addrs(f, "192.0.2.9");
	assert_int_equal(res->status, DNS_OK);
	assert_true(has_addr(&res->hosts[0], "192.0.2.9"));
	dns_result_free(&res);
	res = addrs(f, "[2001:db8::5]");
	assert_int_equal(res->status, DNS_OK);
	assert_true(has_addr(&res->hosts[0], "2001:db8::5"));
	dns_result_free(&res);
	assert_int_equal(dns_lookups(f->r), n);

	res = addrs(f, "nx.test");
	assert_int_equal(res->status, DNS_PERMANENT);
	assert_int_equal(res->reason, DNS_R_NXDOMAIN);
	assert_string_equal(res->detail, "nx.test: no such domain (NXDOMAIN)");
	dns_result_free(&res);

	res = addrs(f, "nomx.test");
	assert_int_equal(res->status, DNS_PERMANENT);
	assert_int_equal(res->reason, DNS_R_NO_ADDRESS);
	assert_string_equal(res->detail, "nomx.test has no address record");
	dns_result_free(&res);

	res = addrs(f, "mx.slowhost.test");
	assert_int_equal(res->status, DNS_TEMPORARY);
	assert_string_equal(res->detail,
	    "mx.slowhost.test: address lookup timed out");
	dns_result_free(&res);
}

static void
test_literals_and_bad_names(void **state)
{
	struct fx *f = *state;
	struct dns_result *res;

	res = mx(f, "[192.0.2.7]");
	assert_int_equal(res->status, DNS_OK);
	assert_true(res->implicit_mx);
	assert_string_equal(res->hosts[0].name, "192.0.2.7");
	assert_true(has_addr(&res->hosts[0], "192.0.2.7"));
	dns_result_free(&res);

	res = mx(f, "[IPv6:2001:db8::7]");
	assert_int_equal(res->status, DNS_OK);
	assert_true(has_addr(&res->hosts[0], "2001:db8::7"));
	dns_result_free(&res);

	res = mx(f, "exa mple.test");
	assert_int_equal(res->status, DNS_PERMANENT);
	assert_int_equal(res->reason, DNS_R_BAD_NAME);
	assert_string_equal(res->detail,
	    "\"exa mple.test\" is not a valid domain name");
	dns_result_free(&res);

	res = mx(f, "bad\r\nname.test");
	assert_int_equal(res->reason, DNS_R_BAD_NAME);
	assert_null(strpbrk(res->detail, "\r\n"));
	dns_result_free(&res);

	assert_int_equal(dns_lookups(f->r), 0);
}

static void
never_cb(struct dns_result *res, void *arg)
{
	fail_msg("a cancelled request's callback ran");
}

static void
test_cancel(void **state)
{
	struct fx *f = *state;
	struct got g = { 0, NULL };
	struct dns_query *q;
	struct timeval tv = { 0, 600 * 1000 };
	int expired = 0;
	struct event *wait;

	/* Alone in flight: the lookup goes on, the callback never runs. */
	q = dns_mx_hosts(f->r, "slow.test", never_cb, NULL);
	dns_cancel(q);
	/* Answered but not yet delivered. */
	q = dns_mx_hosts(f->r, "[192.0.2.8]", never_cb, NULL);
	dns_cancel(q);
	/* Joined with another requester, who still gets the answer. */
	q = dns_mx_hosts(f->r, "mx.test", never_cb, NULL);
	dns_mx_hosts(f->r, "mx.test", got_cb, &g);
	dns_cancel(q);
	run_until(f->base, &g.calls, 1);
	assert_int_equal(g.res->status, DNS_OK);
	dns_result_free(&g.res);

	/* The abandoned slow lookup times out with no one to tell. */
	wait = evtimer_new(f->base, guard_cb, &expired);
	evtimer_add(wait, &tv);
	while (!expired)
		event_base_loop(f->base, EVLOOP_ONCE);
	event_free(wait);
	g.calls = 0;
	dns_mx_hosts(f->r, "slow.test", got_cb, &g);
	run_until(f->base, &g.calls, 1);
	assert_int_equal(g.res->reason, DNS_R_TIMEOUT);
	dns_result_free(&g.res);
}

struct chain {
	struct fx *f;
	int calls;
	enum dns_status status;
	int again;
};

static void
chain_cb(struct dns_result *res, void *arg)
{
	struct chain *c = arg;

	c->calls++;
	c->status = res->status;
	dns_result_free(&res);
	if (c->again) {
		c->again = 0;
		/* A request from a callback inside dns_free(): cancelled too. */
		dns_mx_hosts(c->f->r, "mx.test", chain_cb, c);
	}
}

static void
test_free_with_requests_outstanding(void **state)
{
	struct fx *f = *state;
	struct chain c = { f, 0, DNS_OK, 1 };
	struct chain d = { f, 0, DNS_OK, 0 };

	dns_mx_hosts(f->r, "slow.test", chain_cb, &c);
	dns_mx_hosts(f->r, "[192.0.2.8]", chain_cb, &d);
	event_base_loop(f->base, EVLOOP_NONBLOCK);	/* d answered */
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.status, DNS_OK);
	dns_free(&f->r);
	assert_null(f->r);
	assert_int_equal(c.calls, 2);
	assert_int_equal(c.status, DNS_CANCELLED);
	/* Nothing runs after dns_free. */
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	assert_int_equal(c.calls, 2);
}

static void
free_cb(struct dns_result *res, void *arg)
{
	struct fx *f = arg;

	dns_result_free(&res);
	dns_free(&f->r);
}

static void
test_free_from_callback(void **state)
{
	struct fx *f = *state;
	struct got g = { 0, NULL };

	dns_mx_hosts(f->r, "slow.test", got_cb, &g);
	dns_mx_hosts(f->r, "mx.test", free_cb, f);
	while (f->r != NULL)
		event_base_loop(f->base, EVLOOP_ONCE);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.res->status, DNS_CANCELLED);
	dns_result_free(&g.res);
}

static void
test_unreachable_server(void **state)
{
	struct fx *f = *state;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	struct dns_result *res;
	int fd;

	/* A port nobody listens on: ICMP port unreachable, or silence. */
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	dns_free(&f->r);
	f->r = resolver_on(f->base, ntohs(sin.sin_port), NULL);
	res = mx(f, "mx.test");
	assert_int_equal(res->status, DNS_TEMPORARY);
	assert_true(res->reason == DNS_R_NETWORK || res->reason == DNS_R_TIMEOUT);
	dns_result_free(&res);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
		T(test_mx_by_preference),
		T(test_equal_preferences_shuffled),
		T(test_null_mx),
		T(test_nxdomain),
		T(test_servfail),
		T(test_refused),
		T(test_timeout),
		T(test_no_mx_falls_back_to_a),
		T(test_no_mx_no_address),
		T(test_mx_host_without_address),
		T(test_no_mx_host_has_an_address),
		T(test_mx_host_times_out),
		T(test_big_answer_over_tcp),
		T(test_odd_host_names_dropped),
		T(test_ipv6_only_host),
		T(test_burst_joins_one_lookup),
		T(test_ttl_expires),
		T(test_negative_answer_cached_briefly),
		T(test_cache_bounded),
		T(test_temporary_never_cached),
		T(test_addresses),
		T(test_literals_and_bad_names),
		T(test_cancel),
		T(test_free_with_requests_outstanding),
		T(test_free_from_callback),
		T(test_unreachable_server),
#undef T
	};

	return cmocka_run_group_tests(tests, server_start, server_stop);
}
