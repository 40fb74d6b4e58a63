/*
 * fuzz_pop3_session - whole POP3 sessions: bytes from the fuzzer go to a
 * real session over a socketpair, through login (a real password check),
 * the mailbox lock, LIST/UIDL/RETR/TOP/DELE and the QUIT commit, against a
 * store on tmpfs holding a few messages.  Every input starts from the same
 * mailbox: QUIT's deletions are put back afterwards.
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
#include "pop3d/pop3d.h"

static struct pop3_server pop3d;
#define SRV (pop3d.srv)
static const struct server_def def = { .name = "fuzz", .id_prefix = "P" };
static struct umbox_config cfg;
static struct server_loop loop;
static int64_t alice;

static void
fuzz_fill(void)
{
	static const char *const msgs[] = {
		"Subject: one\r\n\r\nbody\r\n.dotted line\r\n",
		"Subject: two\r\nX: y\r\n\r\nline 1\r\nline 2\r\nline 3\r\n",
		"no header and no final newline",
	};
	struct store_entry *v;
	size_t n;

	if (store_mailbox_list(loop.store, alice, &v, &n) == STORE_OK) {
		store_entry_list_free(&v, n);
		if (n == 3)
			return;
	}
	for (size_t i = 0; i < 3; i++) {
		struct store_rcpt_local r = { .user_id = alice, .prefix = "Return-Path: <a@b>\r\n" };
		struct store_delivery d = { .sender = "a@b", .data = msgs[i], .fd = -1,
		    .len = strlen(msgs[i]), .local = &r, .nlocal = 1 };
		struct store_delivery_result res;

		store_deliver(loop.store, &d, &res);
	}
}

static void
fuzz_setup(void)
{
	char conf[512], err[2048], *path;
	const char *dir;
	struct store_domain d = { .name = "example.test" };
	struct store_user u = { .login = "alice", .extension = "100", .pop3 = 1 }, got;
	char hash[PASSWORD_HASH_MAX];

	dir = fuzz_tmpdir("pop3");
	if (snprintf(conf, sizeof(conf), "[general]\nhostname = mail.example.test\n"
	    "data_dir = %s\nuser =\n[pop3d]\nplaintext_auth = always\n", dir) >= (int)sizeof(conf))
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
	snprintf(pop3d.owner_prefix, sizeof(pop3d.owner_prefix), "fuzz:1:");
	path = config_store_path(&cfg);
	if (store_open(STORE_SQLITE(path), STORE_CREATE, &loop.store, err, sizeof(err)) != STORE_OK ||
	    store_writer_new(STORE_SQLITE(path), SRV.base, &loop.writer, err, sizeof(err)) != STORE_OK ||
	    store_readers_new(STORE_SQLITE(path), SRV.base, loop.store, &loop.readers, err,
	    sizeof(err)) != STORE_OK)
		abort();
	free(path);
	/* The cheapest yescrypt cost keeps logins fast enough to fuzz. */
	{
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
	store_user_get(loop.store, "alice", &got);
	alice = got.id;
	store_user_clear(&got);
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
	if (size > 16384)
		return 0;
	fuzz_fill();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) != 0)
		return 0;
	peer.sin_addr.s_addr = htonl(0x7f000001);
	pop3_session_open(&loop, POP3_PORT_PLAIN, fds[0], (struct sockaddr *)&peer,
	    fuzz_ip(&peer));
	fuzz_drive(&loop, fds[1], data, size, 3000);
	/* The lock release is queued; the writer runs it before the next login's lock. */
	return 0;
}
