/*
 * mta-send - drive one outbound SMTP attempt from the command line, for
 * the client's integration tests (tests/mta/).
 *
 *   mta-send --host ADDR --port N [--name NAME] [--tls auto|starttls|implicit|none]
 *            [--no-verify] [--auth auto|plain|login|cram-md5|none] [--user U --password P]
 *            [--timeout S] [--no-chunking] [--helo NAME] [--from ADDR] [--file MSG]
 *            [--probe] RCPT...
 *
 * --host may be given several times: the hosts are tried in order.  Each
 * step is printed as "step STEP ok|fail DETAIL", then one line per
 * recipient "rcpt ADDR delivered|deferred|failed REPLY"; with --probe,
 * "probe ok|fail".  Exit 0 when every recipient was delivered (or the
 * probe passed).
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "aliases/mta.h"
#include "lib/tls.h"
#include "lib/util.h"

struct file_msg {
	char *data;
	size_t len;
};

static int exit_code = 1;

static int
file_read(void *arg, uint64_t offset, void *buf, size_t len, size_t *got)
{
	struct file_msg *f = arg;

	if (offset >= f->len) {
		*got = 0;
		return 0;
	}
	if (len > f->len - offset)
		len = f->len - (size_t)offset;
	memcpy(buf, f->data + offset, len);
	*got = len;
	return 0;
}

static void
on_step(void *arg, const char *step, int ok, const char *detail)
{
	printf("step %s %s %s\n", step, ok ? "ok" : "fail", detail ? detail : "");
	fflush(stdout);
}

static const char *const status_names[] = { "pending", "delivered", "deferred", "failed" };

struct run {
	struct event_base *base;
	struct mta_rcpt *rcpts;
	size_t n;
	int probe;
};

static void
on_done(struct mta_attempt *a, void *arg)
{
	struct run *r = arg;
	int all = 1;

	if (r->probe) {
		printf("probe %s\n", mta_probe_ok(a) ? "ok" : "fail");
		all = mta_probe_ok(a);
	}
	for (size_t i = 0; i < r->n; i++) {
		printf("rcpt %s %s %s\n", r->rcpts[i].address, status_names[r->rcpts[i].status],
		    r->rcpts[i].reply);
		all = all && r->rcpts[i].status == MTA_DELIVERED;
	}
	exit_code = all ? 0 : 1;
	/* The loop ends by itself once the connection has closed and been freed. */
}

static int
parse_enum(const char *v, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(v, names[i]) == 0)
			return i;
	fprintf(stderr, "mta-send: bad value %s\n", v);
	exit(2);
}

int
main(int argc, char **argv)
{
	static const char *const tls_names[] = { "auto", "starttls", "implicit", "none" };
	static const char *const auth_names[] = { "auto", "plain", "login", "cram-md5", "none" };
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' }, { "port", required_argument, NULL, 'p' },
		{ "name", required_argument, NULL, 'n' }, { "tls", required_argument, NULL, 't' },
		{ "no-verify", no_argument, NULL, 'V' }, { "auth", required_argument, NULL, 'a' },
		{ "user", required_argument, NULL, 'u' }, { "password", required_argument, NULL, 'P' },
		{ "timeout", required_argument, NULL, 'T' }, { "no-chunking", no_argument, NULL, 'C' },
		{ "helo", required_argument, NULL, 'h' }, { "from", required_argument, NULL, 'f' },
		{ "file", required_argument, NULL, 'F' }, { "probe", no_argument, NULL, 'X' },
		{ NULL, 0, NULL, 0 },
	};
	struct mta_host hosts[8];
	struct mta_route route = { .hosts = hosts, .port = 25, .verify = 1, .timeout = 10,
	    .chunking = 1, .helo = "client.test" };
	struct mta_message msg = { .sender = "" };
	struct file_msg f = { NULL, 0 };
	const char *name = NULL, *file = NULL;
	struct run run = { 0 };
	char err[256];
	SSL_CTX *ctx;
	int c;

	memset(hosts, 0, sizeof(hosts));
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'H': {
			struct mta_host *h = &hosts[route.nhosts];
			struct sockaddr_in *in4 = (struct sockaddr_in *)&h->addr;
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&h->addr;

			if (route.nhosts == 8)
				return 2;
			if (inet_pton(AF_INET, optarg, &in4->sin_addr) == 1)
				in4->sin_family = AF_INET;
			else if (inet_pton(AF_INET6, optarg, &in6->sin6_addr) == 1)
				in6->sin6_family = AF_INET6;
			else
				return 2;
			h->name = optarg;
			route.nhosts++;
			break;
		}
		case 'p': route.port = (uint16_t)atoi(optarg); break;
		case 'n': name = optarg; break;
		case 't': route.tls = (enum mta_tls)parse_enum(optarg, tls_names, 4); break;
		case 'V': route.verify = 0; break;
		case 'a': route.auth = (enum mta_auth)parse_enum(optarg, auth_names, 5); break;
		case 'u': route.user = optarg; break;
		case 'P': route.password = optarg; break;
		case 'T': route.timeout = (unsigned)atoi(optarg); break;
		case 'C': route.chunking = 0; break;
		case 'h': route.helo = optarg; break;
		case 'f': msg.sender = optarg; break;
		case 'F': file = optarg; break;
		case 'X': run.probe = 1; break;
		default: return 2;
		}
	}
	if (name)
		for (size_t i = 0; i < route.nhosts; i++)
			hosts[i].name = name;
	signal(SIGPIPE, SIG_IGN);
	run.n = (size_t)(argc - optind);
	run.rcpts = xcalloc(run.n + 1, sizeof(*run.rcpts));
	for (size_t i = 0; i < run.n; i++)
		run.rcpts[i].address = argv[optind + (int)i];
	if (file) {
		FILE *fp = fopen(file, "rb");

		if (fp == NULL)
			return 2;
		f.data = xmalloc(64 * 1024 * 1024);
		f.len = fread(f.data, 1, 64 * 1024 * 1024, fp);
		fclose(fp);
	}
	msg.len = f.len;
	msg.read = file_read;
	msg.read_arg = &f;
	if ((ctx = tls_client_ctx_new(err, sizeof(err))) == NULL) {
		fprintf(stderr, "mta-send: %s\n", err);
		return 1;
	}
	run.base = event_base_new();
	mta_start(run.base, ctx, "T1", &route, run.probe ? NULL : &msg, run.rcpts, run.n, on_step,
	    on_done, &run);
	event_base_dispatch(run.base);
	event_base_free(run.base);
	SSL_CTX_free(ctx);
	free(run.rcpts);
	free(f.data);
	return exit_code;
}
