/*
 * fuzz_smtp_session - whole SMTP sessions: bytes from the fuzzer go to a
 * real session over a socketpair, through the real command table, AUTH,
 * DATA/BDAT and the store (on tmpfs, so commits are cheap).
 *
 * The first byte picks the listener kind; the rest is the client's side
 * of the conversation, then EOF.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <crypt.h>
#include <event2/thread.h>

#include "fuzz/fuzz_session.h"
#include "lib/password.h"
#include "smtpd/smtpd.h"

static struct smtp_server smtpd;
#define SRV (smtpd.srv)
static const struct server_def def = { .name = "fuzz", .id_prefix = "" };
static struct umbox_config cfg;
static struct server_loop loop;
static struct alias_resolver resolver;

static void
fuzz_setup(void)
{
	char conf[512], err[2048], *path;
	const char *dir;
	struct store_domain d = { .name = "example.test" };
	struct store_user u = { .login = "alice", .extension = "100", .pop3 = 1 };
	const char *members[] = { "alice", "far@remote.test" };
	char hash[PASSWORD_HASH_MAX];

	dir = fuzz_tmpdir("smtp");
	if (snprintf(conf, sizeof(conf), "[general]\nhostname = mail.example.test\n"
	    "data_dir = %s\nuser =\npostmaster = alice\n[smtpd]\nmax_message_size = 64K\n"
	    "max_recipients = 5\ntrusted_networks = 10.0.0.0/8\n", dir) >= (int)sizeof(conf))
		abort();
	if (config_load_string(&cfg, conf, "fuzz.conf", err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	signal(SIGPIPE, SIG_IGN);
	evthread_use_pthreads();
	SRV.cfg = &cfg;
	SRV.def = &def;
	SRV.base = event_base_new();
	SRV.max_conns = 100;
	SRV.loops = &loop;
	SRV.nloops = 1;
	ip_table_init(&SRV.ips);
	loop.srv = &SRV;
	loop.base = SRV.base;
	path = config_store_path(&cfg);
	if (store_open(STORE_SQLITE(path), STORE_CREATE, &loop.store, err, sizeof(err)) != STORE_OK ||
	    store_writer_new(STORE_SQLITE(path), SRV.base, &loop.writer, err, sizeof(err)) != STORE_OK ||
	    store_readers_new(STORE_SQLITE(path), SRV.base, loop.store, &loop.readers, err,
	    sizeof(err)) != STORE_OK)
		abort();
	free(path);
	{
		/* The cheapest yescrypt cost keeps AUTH fast enough to fuzz. */
		char salt[CRYPT_GENSALT_OUTPUT_SIZE];
		struct crypt_data cd = { 0 };

		if (crypt_gensalt_rn("$y$", 1, NULL, 0, salt, sizeof(salt)) == NULL ||
		    crypt_r("secret", salt, &cd) == NULL)
			abort();
		if (snprintf(hash, sizeof(hash), "%s", cd.output) >= (int)sizeof(hash))
			abort();
	}
	u.password = hash;
	store_domain_add(loop.store, &d);
	store_user_add(loop.store, &u);
	store_alias_add(loop.store, "sales", members, 2);
	resolver.store = loop.store;
	resolver.postmaster = "alice";
	smtpd.resolvers = &resolver;
	loop.workers = worker_pool_new(SRV.base, 1);
	loop.deferq = conn_deferq_new(SRV.base);
	snprintf(SRV.dummy_hash, sizeof(SRV.dummy_hash), "%s", hash);
}

/* The per-address entry, counted as the server's accept would. */
static struct ip_entry *
fuzz_ip(const struct sockaddr_in *peer)
{
	struct ip_entry *ip = ip_table_get(&SRV.ips, (const struct sockaddr *)peer, 1);

	ip->conns++;
	return ip;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct sockaddr_in peer = { .sin_family = AF_INET };
	int fds[2];

	if (!ready) {
		fuzz_setup();
		ready = 1;
	}
	if (size < 1 || size > 32768)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) != 0)
		return 0;
	/* Trusted peers skip the greeting pause; loopback may AUTH without TLS. */
	peer.sin_addr.s_addr = htonl(data[0] & 1 ? 0x0a000001 : 0x7f000001);
	smtp_session_open(&loop, (data[0] >> 1) % 2 ? SMTP_PORT_SUBMISSION : SMTP_PORT_MX, fds[0],
	    (struct sockaddr *)&peer, fuzz_ip(&peer));

	fuzz_drive(&loop, fds[1], data + 1, size - 1, 2000);
	return 0;
}
