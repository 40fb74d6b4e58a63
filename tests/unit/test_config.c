/*
 * test_config.c - the configuration loader: defaults, every key, every
 * kind of error, the value parsers and CIDR matching.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <openssl/tls1.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/config.h"

#define ERRLEN	8192

static char err[ERRLEN];

/* Load text under the name "t.conf"; returns config_load_string's result. */
static int
load(struct umbox_config *cfg, const char *text)
{
	return config_load_string(cfg, text, "t.conf", err, sizeof(err));
}

/* Assert that err holds needle, printing err when it does not. */
static void
assert_err_has(const char *needle)
{
	if (strstr(err, needle) == NULL) {
		print_error("expected \"%s\" in errors:\n%s\n", needle, err);
		fail();
	}
}

/* Number of lines in err. */
static size_t
err_lines(void)
{
	size_t n = err[0] ? 1 : 0;

	for (const char *p = err; *p; p++)
		if (*p == '\n')
			n++;
	return n;
}

/* Write data to a new temporary file; returns its malloc'd path. */
static char *
temp_file(const void *data, size_t len)
{
	char *path = strdup("/tmp/test_config.XXXXXX");
	int fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

static struct sockaddr_storage
sa4(const char *s)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	sin->sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, s, &sin->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage
sa6(const char *s)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	sin6->sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, s, &sin6->sin6_addr), 1);
	return ss;
}

/* Does the trusted_networks value v contain the address s? */
static int
trusted(const char *v, const char *s)
{
	struct umbox_config cfg;
	struct sockaddr_storage ss;
	char *text;
	int r;

	text = xasprintf("[smtpd]\ntrusted_networks = %s\n", v);
	assert_int_equal(load(&cfg, text), 0);
	free(text);
	ss = strchr(s, ':') ? sa6(s) : sa4(s);
	r = config_cidr_match(&cfg.smtpd.trusted_networks,
	    (struct sockaddr *)&ss);
	config_free(&cfg);
	return r;
}

/* ------------------------------------------------------------------ */

static void
check_defaults(const struct umbox_config *cfg)
{
	char host[256];

	assert_int_equal(gethostname(host, sizeof(host)), 0);
	str_lower(host);
	assert_string_equal(cfg->general.hostname, host);
	assert_string_equal(cfg->general.data_dir, "/var/lib/umbox");
	assert_string_equal(cfg->general.user, "umbox");
	assert_int_equal(cfg->general.public_addresses.n, 0);
	assert_string_equal(cfg->general.postmaster, "admin");
	assert_int_equal(cfg->general.threads, 0);

	assert_int_equal(cfg->store.backend, CONFIG_BACKEND_SQLITE);
	assert_string_equal(cfg->store.dsn, "");
	assert_string_equal(cfg->store.node_id, host);

	assert_string_equal(cfg->tls.certificate,
	    "/etc/ssl/certs/ssl-cert-snakeoil.pem");
	assert_string_equal(cfg->tls.key,
	    "/etc/ssl/private/ssl-cert-snakeoil.key");
	assert_int_equal(cfg->tls.min_protocol, TLS1_2_VERSION);

	assert_int_equal(cfg->smtpd.listen.n, 2);
	assert_string_equal(cfg->smtpd.listen.v[0].host, "0.0.0.0");
	assert_int_equal(cfg->smtpd.listen.v[0].port, 25);
	assert_string_equal(cfg->smtpd.listen.v[1].host, "::");
	assert_int_equal(cfg->smtpd.listen.v[1].port, 25);
	assert_int_equal(cfg->smtpd.submission.n, 1);
	assert_string_equal(cfg->smtpd.submission.v[0].host, "0.0.0.0");
	assert_int_equal(cfg->smtpd.submission.v[0].port, 587);
	assert_int_equal(cfg->smtpd.smtps.n, 1);
	assert_int_equal(cfg->smtpd.smtps.v[0].port, 465);
	assert_int_equal(cfg->smtpd.max_message_size, 36700160);
	assert_int_equal(cfg->smtpd.max_recipients, 100);
	assert_int_equal(cfg->smtpd.max_connections, 1000);
	assert_int_equal(cfg->smtpd.max_connections_per_ip, 20);
	assert_int_equal(cfg->smtpd.trusted_networks.n, 0);

	assert_int_equal(cfg->pop3d.listen.n, 1);
	assert_string_equal(cfg->pop3d.listen.v[0].host, "0.0.0.0");
	assert_int_equal(cfg->pop3d.listen.v[0].port, 110);
	assert_int_equal(cfg->pop3d.pop3s.n, 1);
	assert_int_equal(cfg->pop3d.pop3s.v[0].port, 995);
	assert_int_equal(cfg->pop3d.plaintext_auth, PLAINTEXT_TLS_OR_LOOPBACK);
	assert_int_equal(cfg->pop3d.max_connections, 1000);
	assert_int_equal(cfg->pop3d.max_connections_per_ip, 20);

	assert_int_equal(cfg->queue.retry_initial, 30);
	assert_int_equal(cfg->queue.retry_max, 3600);
	assert_int_equal(cfg->queue.lifetime, 5 * 86400);
	assert_int_equal(cfg->queue.smtp_port, 25);
	assert_string_equal(cfg->queue.srs_secret, "");

	assert_int_equal(cfg->dns.servers.n, 0);
	assert_int_equal(cfg->dns.guard_interval, 3600);

	assert_string_equal(cfg->voicemail.mwi_command, "");
	assert_string_equal(cfg->voicemail.speech_voice, "en");
}

static void
test_defaults(void **state)
{
	struct umbox_config cfg;

	assert_int_equal(config_load(&cfg, NULL, 0, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_null(cfg.path);
	check_defaults(&cfg);
	config_free(&cfg);
}

static void
test_empty_and_comments_only(void **state)
{
	struct umbox_config cfg;

	assert_int_equal(load(&cfg, ""), 0);
	check_defaults(&cfg);
	config_free(&cfg);
	assert_int_equal(load(&cfg, "; nothing\n# at all\n\n[general]\n"
	    "   \n[smtpd] ; empty section\n"), 0);
	check_defaults(&cfg);
	config_free(&cfg);
}

static const char full_text[] =
    "; every key, none at its default\n"
    "[general]\n"
    "hostname = Mail.Example.COM\n"
    "data_dir = /srv/umbox\n"
    "user =\n"
    "public_addresses = 192.0.2.10, 2001:DB8:0::1\n"
    "postmaster = ops.team\n"
    "threads = 4\n"
    "\n"
    "[store]\n"
    "backend = postgresql\n"
    "dsn = host=db.example.com dbname=umbox user=umbox\n"
    "node_id = Node-1.example\n"
    "\n"
    "[tls]\n"
    "certificate = /etc/umbox/cert.pem\n"
    "key = /etc/umbox/key.pem\n"
    "min_protocol = TLSv1.3\n"
    "\n"
    "[smtpd]\n"
    "listen = 192.0.2.10:25, [2001:db8::1]:25\n"
    "submission = 127.0.0.1:2587\n"
    "smtps =\n"
    "max_message_size = 50M\n"
    "max_recipients = 500\n"
    "max_connections = 20000\n"
    "max_connections_per_ip = 50\n"
    "trusted_networks = 192.168.10.0/24, 10.1.2.3, fd00::/8\n"
    "\n"
    "[pop3d]\n"
    "listen = [::1]:110\n"
    "pop3s = pbx.example.com:995\n"
    "plaintext_auth = never-without-tls\n"
    "max_connections = 300\n"
    "max_connections_per_ip = 7\n"
    "\n"
    "[queue]\n"
    "retry_initial = 1m\n"
    "retry_max = 2h\n"
    "lifetime = 3d\n"
    "smtp_port = 2525\n"
    "srs_secret = s3cr3t;not a comment\n"
    "\n"
    "[dns]\n"
    "servers = 127.0.0.1:5353, [::1]:53, 192.0.2.53\n"
    "guard_interval = 30m\n"
    "\n"
    "[voicemail]\n"
    "mwi_command = /usr/local/bin/mwi-notify\n"
    "speech_voice = en-us+f3\n";

static void
check_full(const struct umbox_config *cfg)
{
	assert_string_equal(cfg->general.hostname, "mail.example.com");
	assert_string_equal(cfg->general.data_dir, "/srv/umbox");
	assert_string_equal(cfg->general.user, "");
	assert_int_equal(cfg->general.public_addresses.n, 2);
	assert_int_equal(cfg->general.public_addresses.v[0].family, AF_INET);
	assert_int_equal(cfg->general.public_addresses.v[0].prefix, 32);
	assert_int_equal(cfg->general.public_addresses.v[1].family, AF_INET6);
	assert_int_equal(cfg->general.public_addresses.v[1].prefix, 128);
	assert_string_equal(cfg->general.postmaster, "ops.team");
	assert_int_equal(cfg->general.threads, 4);

	assert_int_equal(cfg->store.backend, CONFIG_BACKEND_POSTGRESQL);
	assert_string_equal(cfg->store.dsn,
	    "host=db.example.com dbname=umbox user=umbox");
	assert_string_equal(cfg->store.node_id, "Node-1.example");

	assert_string_equal(cfg->tls.certificate, "/etc/umbox/cert.pem");
	assert_string_equal(cfg->tls.key, "/etc/umbox/key.pem");
	assert_int_equal(cfg->tls.min_protocol, TLS1_3_VERSION);

	assert_int_equal(cfg->smtpd.listen.n, 2);
	assert_string_equal(cfg->smtpd.listen.v[0].host, "192.0.2.10");
	assert_string_equal(cfg->smtpd.listen.v[1].host, "2001:db8::1");
	assert_int_equal(cfg->smtpd.listen.v[1].port, 25);
	assert_int_equal(cfg->smtpd.submission.n, 1);
	assert_string_equal(cfg->smtpd.submission.v[0].host, "127.0.0.1");
	assert_int_equal(cfg->smtpd.submission.v[0].port, 2587);
	assert_int_equal(cfg->smtpd.smtps.n, 0);
	assert_null(cfg->smtpd.smtps.v);
	assert_int_equal(cfg->smtpd.max_message_size, 50 * 1024 * 1024);
	assert_int_equal(cfg->smtpd.max_recipients, 500);
	assert_int_equal(cfg->smtpd.max_connections, 20000);
	assert_int_equal(cfg->smtpd.max_connections_per_ip, 50);
	assert_int_equal(cfg->smtpd.trusted_networks.n, 3);
	assert_int_equal(cfg->smtpd.trusted_networks.v[1].prefix, 32);
	assert_int_equal(cfg->smtpd.trusted_networks.v[2].family, AF_INET6);

	assert_int_equal(cfg->pop3d.listen.n, 1);
	assert_string_equal(cfg->pop3d.listen.v[0].host, "::1");
	assert_int_equal(cfg->pop3d.listen.v[0].port, 110);
	assert_string_equal(cfg->pop3d.pop3s.v[0].host, "pbx.example.com");
	assert_int_equal(cfg->pop3d.plaintext_auth,
	    PLAINTEXT_NEVER_WITHOUT_TLS);
	assert_int_equal(cfg->pop3d.max_connections, 300);
	assert_int_equal(cfg->pop3d.max_connections_per_ip, 7);

	assert_int_equal(cfg->queue.retry_initial, 60);
	assert_int_equal(cfg->queue.retry_max, 7200);
	assert_int_equal(cfg->queue.lifetime, 3 * 86400);
	assert_int_equal(cfg->queue.smtp_port, 2525);
	assert_string_equal(cfg->queue.srs_secret, "s3cr3t;not a comment");

	assert_int_equal(cfg->dns.servers.n, 3);
	assert_string_equal(cfg->dns.servers.v[0].host, "127.0.0.1");
	assert_int_equal(cfg->dns.servers.v[0].port, 5353);
	assert_string_equal(cfg->dns.servers.v[1].host, "::1");
	assert_int_equal(cfg->dns.servers.v[1].port, 53);
	assert_int_equal(cfg->dns.servers.v[2].port, 53);
	assert_int_equal(cfg->dns.guard_interval, 1800);

	assert_string_equal(cfg->voicemail.mwi_command,
	    "/usr/local/bin/mwi-notify");
	assert_string_equal(cfg->voicemail.speech_voice, "en-us+f3");
}

static void
test_full_file(void **state)
{
	struct umbox_config cfg;

	assert_int_equal(load(&cfg, full_text), 0);
	assert_string_equal(err, "");
	assert_string_equal(cfg.path, "t.conf");
	check_full(&cfg);
	config_free(&cfg);
}

static void
test_full_file_from_disk(void **state)
{
	struct umbox_config cfg;
	char *path = temp_file(full_text, strlen(full_text));

	assert_int_equal(config_load(&cfg, path, 0, err, sizeof(err)), 0);
	assert_string_equal(cfg.path, path);
	check_full(&cfg);
	config_free(&cfg);
	unlink(path);
	free(path);
}

/* ------------------------------------------------------------------ */

static void
test_unknown_section(void **state)
{
	struct umbox_config cfg;

	assert_int_equal(load(&cfg, "[general]\npostmaster = bob\n[smptd]\n"
	    "max_recipients = 5\nlisten = x\n"), -1);
	assert_string_equal(err, "t.conf:3: [smptd]: unknown section; known "
	    "sections: general, store, tls, smtpd, pop3d, queue, dns, "
	    "voicemail");
	/* Keys under it are skipped, the rest applies. */
	assert_string_equal(cfg.general.postmaster, "bob");
	assert_int_equal(cfg.smtpd.max_recipients, 100);
	config_free(&cfg);
}

static void
test_unknown_key(void **state)
{
	struct umbox_config cfg;

	assert_int_equal(load(&cfg, "[smtpd]\nmax_recipient = 5\n"), -1);
	assert_string_equal(err, "t.conf:2: [smtpd] max_recipient: unknown "
	    "key; known keys: listen, submission, smtps, max_message_size, "
	    "max_recipients, max_connections, max_connections_per_ip, "
	    "trusted_networks");
	config_free(&cfg);
}

static void
test_key_before_section(void **state)
{
	struct umbox_config cfg;

	assert_int_equal(load(&cfg, "\nhostname = a.example\n[general]\n"), -1);
	assert_err_has("t.conf:2: hostname: key before any [section]; "
	    "known sections: general,");
	assert_int_equal(err_lines(), 1);
	config_free(&cfg);
}

static void
test_bad_number_message(void **state)
{
	struct umbox_config cfg;

	assert_int_equal(load(&cfg, "[smtpd]\n\nmax_recipients = abc\n"), -1);
	assert_string_equal(err, "t.conf:3: [smtpd] max_recipients: \"abc\" "
	    "is not a number; allowed: 1..100000");
	/* The bad value leaves the default in place. */
	assert_int_equal(cfg.smtpd.max_recipients, 100);
	config_free(&cfg);
}

struct bad_case {
	const char *text;	/* one section header and one key on line 2 */
	const char *expect;	/* substring of the message */
};

/* A bad value for every key, and several for the tricky kinds. */
static const struct bad_case bad_cases[] = {
	{ "[general]\nhostname = mail_server.example", "[general] hostname: \"mail_server.example\" is not a valid domain name" },
	{ "[general]\nhostname = mail.example.com.", "[general] hostname:" },
	{ "[general]\nhostname = -mail.example", "[general] hostname:" },
	{ "[general]\nhostname = 192.0.2.1", "[general] hostname:" },
	{ "[general]\nhostname =", "[general] hostname:" },
	{ "[general]\ndata_dir = var/data", "[general] data_dir: \"var/data\" is not an absolute path; allowed: an absolute path" },
	{ "[general]\ndata_dir =", "[general] data_dir:" },
	{ "[general]\nuser = root:root", "[general] user: \"root:root\" is not a valid user name" },
	{ "[general]\nuser = -x", "[general] user:" },
	{ "[general]\npublic_addresses = 192.0.2.1, mail.example.com", "[general] public_addresses: \"mail.example.com\"" },
	{ "[general]\npublic_addresses = 192.0.2.1,", "[general] public_addresses:" },
	{ "[general]\npostmaster =", "[general] postmaster: is empty; allowed: a login" },
	{ "[general]\npostmaster = Admin", "[general] postmaster: \"Admin\" is not a valid login" },
	{ "[general]\npostmaster = admin@example.com", "[general] postmaster:" },
	{ "[general]\nthreads = 0", "[general] threads: \"0\" is out of range; allowed: auto (one per core) or 1..256" },
	{ "[general]\nthreads = 257", "[general] threads: \"257\" is out of range" },
	{ "[general]\nthreads = automatic", "[general] threads: \"automatic\" is not a number" },
	{ "[general]\nthreads =", "[general] threads:" },
	{ "[store]\nbackend = mysql", "[store] backend: \"mysql\" is not a known backend; allowed: sqlite, postgresql" },
	{ "[store]\nbackend =", "[store] backend:" },
	{ "[store]\ndsn = host=db password=hunter2", "[store] dsn: holds a password" },
	{ "[store]\nnode_id = node 1", "[store] node_id: \"node 1\" is not a valid node name; allowed: empty (the system host name)" },
	{ "[store]\nnode_id = a/b", "[store] node_id:" },
	{ "[tls]\ncertificate = cert.pem", "[tls] certificate: \"cert.pem\" is not an absolute path" },
	{ "[tls]\nkey = ", "[tls] key:" },
	{ "[tls]\nmin_protocol = TLSv1.1", "[tls] min_protocol: \"TLSv1.1\" is not a TLS version; allowed: TLSv1.2, TLSv1.3" },
	{ "[smtpd]\nlisten = 0.0.0.0:0", "[smtpd] listen: \"0.0.0.0:0\" has port \"0\", not 1..65535" },
	{ "[smtpd]\nlisten = 0.0.0.0:65536", "[smtpd] listen: \"0.0.0.0:65536\" has port \"65536\"" },
	{ "[smtpd]\nlisten = 0.0.0.0", "[smtpd] listen: \"0.0.0.0\" has no port" },
	{ "[smtpd]\nlisten = 0.0.0.0:", "[smtpd] listen: \"0.0.0.0:\" has no port" },
	{ "[smtpd]\nlisten = :25", "[smtpd] listen: \":25\" has no host" },
	{ "[smtpd]\nlisten = ::1:25", "[smtpd] listen: \"::1:25\": write an IPv6 address in brackets" },
	{ "[smtpd]\nlisten = [::1:25", "[smtpd] listen: \"[::1:25\" lacks the closing ']'" },
	{ "[smtpd]\nlisten = [::1]25", "[smtpd] listen: \"[::1]25\" has text after ']'" },
	{ "[smtpd]\nlisten = [127.0.0.1]:25", "[smtpd] listen: \"[127.0.0.1]:25\" is not an IPv6 address" },
	{ "[smtpd]\nlisten = bad_host:25", "[smtpd] listen: \"bad_host\" is neither an IPv4 address nor a host name" },
	{ "[smtpd]\nlisten = 1.2.3.4:25,,5.6.7.8:25", "[smtpd] listen: \"1.2.3.4:25,,5.6.7.8:25\" has an empty entry" },
	{ "[smtpd]\nsubmission = 0.0.0.0:x", "[smtpd] submission: \"0.0.0.0:x\" has port \"x\"" },
	{ "[smtpd]\nsmtps = 0.0.0.0:-465", "[smtpd] smtps:" },
	{ "[smtpd]\nmax_message_size = 12X", "[smtpd] max_message_size: \"12X\" has an unknown unit" },
	{ "[smtpd]\nmax_message_size = -1", "[smtpd] max_message_size: \"-1\" is not a number" },
	{ "[smtpd]\nmax_message_size = 0", "[smtpd] max_message_size: \"0\" is out of range; allowed: 1..536870912" },
	{ "[smtpd]\nmax_message_size = 1G", "[smtpd] max_message_size: \"1G\" is out of range" },
	{ "[smtpd]\nmax_message_size = 99999999999999999999", "[smtpd] max_message_size: \"99999999999999999999\" is too large" },
	{ "[smtpd]\nmax_message_size = 1.5M", "[smtpd] max_message_size:" },
	{ "[smtpd]\nmax_message_size =", "[smtpd] max_message_size: \"\" is empty" },
	{ "[smtpd]\nmax_recipients = 0", "[smtpd] max_recipients: \"0\" is out of range; allowed: 1..100000" },
	{ "[smtpd]\nmax_recipients = 100001", "[smtpd] max_recipients: \"100001\" is out of range" },
	{ "[smtpd]\nmax_recipients = +5", "[smtpd] max_recipients: \"+5\" is not a number" },
	{ "[smtpd]\nmax_recipients = 5 users", "[smtpd] max_recipients: \"5 users\" is not a number" },
	{ "[smtpd]\nmax_connections = 1000001", "[smtpd] max_connections: \"1000001\" is out of range; allowed: 1..1000000" },
	{ "[smtpd]\nmax_connections_per_ip = 0", "[smtpd] max_connections_per_ip: \"0\" is out of range; allowed: 1..1000000" },
	{ "[smtpd]\ntrusted_networks = 10.0.0.0/33", "[smtpd] trusted_networks: \"10.0.0.0/33\" has a prefix length outside 0..32" },
	{ "[smtpd]\ntrusted_networks = 2001:db8::/129", "[smtpd] trusted_networks: \"2001:db8::/129\" has a prefix length outside 0..128" },
	{ "[smtpd]\ntrusted_networks = 10.0.0.0/", "[smtpd] trusted_networks:" },
	{ "[smtpd]\ntrusted_networks = 10.0.0/8", "[smtpd] trusted_networks: \"10.0.0/8\" is not an IP address or CIDR" },
	{ "[smtpd]\ntrusted_networks = office", "[smtpd] trusted_networks:" },
	{ "[pop3d]\nplaintext_auth = yes", "[pop3d] plaintext_auth: \"yes\" is not a known policy; allowed: tls-or-loopback, always, never-without-tls" },
	{ "[pop3d]\nlisten = 0.0.0.0:110/tcp", "[pop3d] listen:" },
	{ "[pop3d]\npop3s = [::]:0", "[pop3d] pop3s:" },
	{ "[pop3d]\nmax_connections = 0", "[pop3d] max_connections: \"0\" is out of range; allowed: 1..1000000" },
	{ "[pop3d]\nmax_connections = 1000001", "[pop3d] max_connections: \"1000001\" is out of range; allowed: 1..1000000" },
	{ "[pop3d]\nmax_connections = lots", "[pop3d] max_connections: \"lots\" is not a number; allowed: 1..1000000" },
	{ "[pop3d]\nmax_connections_per_ip = 0", "[pop3d] max_connections_per_ip: \"0\" is out of range; allowed: 1..1000000" },
	{ "[pop3d]\nmax_connections_per_ip = -3", "[pop3d] max_connections_per_ip: \"-3\" is not a number" },
	{ "[queue]\nretry_initial = 0s", "[queue] retry_initial: \"0s\" is out of range; allowed: 1s..1d" },
	{ "[queue]\nretry_initial = 2d", "[queue] retry_initial: \"2d\" is out of range" },
	{ "[queue]\nretry_max = 1w", "[queue] retry_max: \"1w\" has an unknown unit (use s, m, h or d)" },
	{ "[queue]\nlifetime = 5 days", "[queue] lifetime: \"5 days\" has an unknown unit" },
	{ "[queue]\nlifetime = 400d", "[queue] lifetime: \"400d\" is out of range; allowed: 1s..365d" },
	{ "[queue]\nsmtp_port = 0", "[queue] smtp_port: \"0\" is out of range; allowed: 1..65535" },
	{ "[queue]\nsmtp_port = 65536", "[queue] smtp_port: \"65536\" is out of range" },
	{ "[dns]\nservers = ns1.example.com", "[dns] servers: \"ns1.example.com\" is not an IP address" },
	{ "[dns]\nservers = 127.0.0.1:0", "[dns] servers: \"127.0.0.1:0\" has port \"0\"" },
	{ "[dns]\nguard_interval = soon", "[dns] guard_interval: \"soon\" is not a number" },
	{ "[voicemail]\nmwi_command = mwi-notify", "[voicemail] mwi_command: \"mwi-notify\" is not an absolute path" },
	{ "[voicemail]\nmwi_command = /bin/echo hi", "[voicemail] mwi_command: \"/bin/echo hi\" has arguments; give the program alone (it is run with the login and the two counts, without a shell)" },
	{ "[voicemail]\nspeech_voice =", "[voicemail] speech_voice: \"\" is not a voice name; allowed: an espeak-ng voice name" },
	{ "[voicemail]\nspeech_voice = ../../etc/passwd", "[voicemail] speech_voice:" },
};

static void
test_bad_values(void **state)
{
	struct umbox_config cfg, def;
	char want[512];
	size_t i;

	assert_int_equal(config_load(&def, NULL, 0, err, sizeof(err)), 0);
	for (i = 0; i < ARRAY_SIZE(bad_cases); i++) {
		assert_int_equal(load(&cfg, bad_cases[i].text), -1);
		snprintf(want, sizeof(want), "t.conf:2: %s", bad_cases[i].expect);
		assert_err_has(want);
		assert_err_has("; allowed: ");
		assert_int_equal(err_lines(), 1);
		/* Nothing changed: scalars keep their defaults. */
		assert_int_equal(cfg.smtpd.max_message_size,
		    def.smtpd.max_message_size);
		assert_int_equal(cfg.smtpd.listen.n, 2);
		assert_string_equal(cfg.general.data_dir, def.general.data_dir);
		assert_int_equal(cfg.queue.retry_initial, 30);
		config_free(&cfg);
	}
	config_free(&def);
}

static void
test_syntax_errors(void **state)
{
	struct umbox_config cfg;

	assert_int_equal(load(&cfg, "[general\nuser = x\n"), -1);
	assert_string_equal(err, "t.conf:1: missing ']' in section header");
	config_free(&cfg);

	assert_int_equal(load(&cfg, "[general] x\n"), -1);
	assert_string_equal(err, "t.conf:1: unexpected text after section "
	    "header [general]");
	config_free(&cfg);

	assert_int_equal(load(&cfg, "[general]\nhostname mail.example.com\n"),
	    -1);
	assert_string_equal(err, "t.conf:2: expected \"key = value\" or "
	    "\"[section]\"");
	config_free(&cfg);

	assert_int_equal(load(&cfg, "[general]\n = x\n"), -1);
	assert_string_equal(err, "t.conf:2: missing key name before '='");
	config_free(&cfg);

	/* The '=' after an inline comment does not count. */
	assert_int_equal(load(&cfg, "[general]\nuser ; = x\n"), -1);
	assert_err_has("t.conf:2: expected");
	config_free(&cfg);

	assert_int_equal(load(&cfg, "[general]\nuser = a\x01" "b\n"), -1);
	assert_string_equal(err, "t.conf:2: [general] user: control character 0x01 in line");
	config_free(&cfg);

	assert_int_equal(load(&cfg, "[general]\nuser = a\rb\n"), -1);
	assert_string_equal(err, "t.conf:2: [general] user: control character 0x0d in line");
	config_free(&cfg);

	/* C1 controls (in UTF-8) too; other non-ASCII text is not one. */
	assert_int_equal(load(&cfg, "[general]\nhostname = mail\xc2\x85.example.test\n"), -1);
	assert_string_equal(err, "t.conf:2: [general] hostname: control character U+0085 in line");
	config_free(&cfg);
	assert_int_equal(load(&cfg, "[general]\nhostname = caf\xc3\xa9.test\n"), -1);
	assert_err_has("[general] hostname");
	assert_null(strstr(err, "control character"));
	config_free(&cfg);

	/* Not a key line, or no known section: the line alone. */
	assert_int_equal(load(&cfg, "[general]\nuser a\x01" "b\n"), -1);
	assert_string_equal(err, "t.conf:2: control character 0x01 in line");
	config_free(&cfg);
	assert_int_equal(load(&cfg, "[nosuch]\nuser = a\x01" "b\n"), -1);
	assert_err_has("t.conf:2: control character 0x01 in line");
	config_free(&cfg);
}

static void
test_duplicate_key(void **state)
{
	struct umbox_config cfg;

	assert_int_equal(load(&cfg, "[smtpd]\nmax_recipients = 5\n[general]\n"
	    "[smtpd]\nmax_recipients = 7\n"), -1);
	assert_string_equal(err, "t.conf:5: [smtpd] max_recipients: already "
	    "set on line 2; give each key once");
	assert_int_equal(cfg.smtpd.max_recipients, 5);
	config_free(&cfg);
}

static void
test_lenient_syntax(void **state)
{
	struct umbox_config cfg;

	/* BOM, CRLF, indentation, case, ':' separator, inline comments. */
	assert_int_equal(load(&cfg, "\xef\xbb\xbf[SMTPD]\r\n"
	    "    Max_Recipients = 42   ; a comment\r\n"
	    "\tmax_connections: 77\n"
	    "[ general ]\n"
	    "postmaster = pm ; comment\n"
	    "[queue]\n"
	    "srs_secret = a;b\n"), 0);
	assert_string_equal(err, "");
	assert_int_equal(cfg.smtpd.max_recipients, 42);
	assert_int_equal(cfg.smtpd.max_connections, 77);
	assert_string_equal(cfg.general.postmaster, "pm");
	assert_string_equal(cfg.queue.srs_secret, "a;b");
	config_free(&cfg);
	/* '#' is a comment only at the start of a line. */
	assert_int_equal(load(&cfg, "[general]\ndata_dir = /var/lib/x # no\n"),
	    0);
	assert_string_equal(cfg.general.data_dir, "/var/lib/x # no");
	config_free(&cfg);
	/* No trailing newline at the end of the file. */
	assert_int_equal(load(&cfg, "[smtpd]\nmax_recipients = 9"), 0);
	assert_int_equal(cfg.smtpd.max_recipients, 9);
	config_free(&cfg);
}

static void
test_file_unreadable(void **state)
{
	struct umbox_config cfg;
	char want[512];

	assert_int_equal(config_load(&cfg, "/nonexistent/umbox.conf", 0, err,
	    sizeof(err)), -1);
	snprintf(want, sizeof(want), "/nonexistent/umbox.conf: cannot read: %s",
	    strerror(ENOENT));
	assert_string_equal(err, want);
	check_defaults(&cfg);
	config_free(&cfg);

	assert_int_equal(config_load(&cfg, "/tmp", 1, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "/tmp: cannot read: %s", strerror(EISDIR));
	assert_string_equal(err, want);
	config_free(&cfg);
}

static void
test_missing_ok(void **state)
{
	struct umbox_config cfg;

	err[0] = 'x';
	assert_int_equal(config_load(&cfg, "/nonexistent/umbox.conf", 1, err,
	    sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_null(cfg.path);
	check_defaults(&cfg);
	config_free(&cfg);
}

static void
test_nul_in_file(void **state)
{
	static const char data[] = "[general]\nuser = a\0b\npostmaster = c\n";
	struct umbox_config cfg;
	char *path = temp_file(data, sizeof(data) - 1);
	char want[512];

	assert_int_equal(config_load(&cfg, path, 0, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:2: [general] user: control character 0x00 in line",
	    path);
	assert_string_equal(err, want);
	assert_string_equal(cfg.general.postmaster, "c");
	config_free(&cfg);
	unlink(path);
	free(path);
}

/* ------------------------------------------------------------------ */

static void
test_sizes(void **state)
{
	uint64_t v;

	assert_int_equal(config_parse_size("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(config_parse_size("1K", &v), 0);
	assert_int_equal(v, 1024);
	assert_int_equal(config_parse_size("1k", &v), 0);
	assert_int_equal(v, 1024);
	assert_int_equal(config_parse_size("35M", &v), 0);
	assert_int_equal(v, 36700160);
	assert_int_equal(config_parse_size("1G", &v), 0);
	assert_int_equal(v, 1073741824);
	assert_int_equal(config_parse_size("36700160", &v), 0);
	assert_int_equal(v, 36700160);
	assert_int_equal(config_parse_size("18446744073709551615", &v), 0);
	assert_true(v == UINT64_MAX);

	v = 7;
	assert_int_equal(config_parse_size("99999999999999999999", &v), -1);
	assert_int_equal(config_parse_size("18446744073709551616", &v), -1);
	assert_int_equal(config_parse_size("17179869184G", &v), -1);
	assert_int_equal(config_parse_size("12X", &v), -1);
	assert_int_equal(config_parse_size("-1", &v), -1);
	assert_int_equal(config_parse_size("", &v), -1);
	assert_int_equal(config_parse_size("1.5M", &v), -1);
	assert_int_equal(config_parse_size("1KB", &v), -1);
	assert_int_equal(config_parse_size(" 1K", &v), -1);
	assert_int_equal(config_parse_size("1 K", &v), -1);
	assert_int_equal(config_parse_size("K", &v), -1);
	assert_int_equal(v, 7);
}

static void
test_durations(void **state)
{
	unsigned v;

	assert_int_equal(config_parse_duration("30s", &v), 0);
	assert_int_equal(v, 30);
	assert_int_equal(config_parse_duration("10m", &v), 0);
	assert_int_equal(v, 600);
	assert_int_equal(config_parse_duration("1h", &v), 0);
	assert_int_equal(v, 3600);
	assert_int_equal(config_parse_duration("5d", &v), 0);
	assert_int_equal(v, 432000);
	assert_int_equal(config_parse_duration("45", &v), 0);	/* seconds */
	assert_int_equal(v, 45);
	assert_int_equal(config_parse_duration("0s", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(config_parse_duration("4294967295", &v), 0);
	assert_int_equal(v, UINT_MAX);

	v = 7;
	assert_int_equal(config_parse_duration("4294967296", &v), -1);
	assert_int_equal(config_parse_duration("49711d", &v), -1);
	assert_int_equal(config_parse_duration("", &v), -1);
	assert_int_equal(config_parse_duration("s", &v), -1);
	assert_int_equal(config_parse_duration("1w", &v), -1);
	assert_int_equal(config_parse_duration("1.5h", &v), -1);
	assert_int_equal(config_parse_duration("-1s", &v), -1);
	assert_int_equal(config_parse_duration("1hs", &v), -1);
	assert_int_equal(config_parse_duration("1 h", &v), -1);
	assert_int_equal(v, 7);
}

static void
test_endpoints(void **state)
{
	struct umbox_config cfg;

	assert_int_equal(load(&cfg, "[smtpd]\n"
	    "listen = 127.0.0.1:2525 ,[::1]:2526,Localhost:1, [fe80::1]:65535\n"
	    "submission =\n"
	    "smtps =   \n"), 0);
	assert_int_equal(cfg.smtpd.listen.n, 4);
	assert_string_equal(cfg.smtpd.listen.v[0].host, "127.0.0.1");
	assert_int_equal(cfg.smtpd.listen.v[0].port, 2525);
	assert_string_equal(cfg.smtpd.listen.v[1].host, "::1");
	assert_int_equal(cfg.smtpd.listen.v[1].port, 2526);
	assert_string_equal(cfg.smtpd.listen.v[2].host, "localhost");
	assert_int_equal(cfg.smtpd.listen.v[2].port, 1);
	assert_int_equal(cfg.smtpd.listen.v[3].port, 65535);
	assert_int_equal(cfg.smtpd.submission.n, 0);
	assert_int_equal(cfg.smtpd.smtps.n, 0);
	config_free(&cfg);

	/* dns.servers: port optional, literal addresses only. */
	assert_int_equal(load(&cfg, "[dns]\n"
	    "servers = 127.0.0.1, ::1, [2001:db8::53], 127.0.0.2:5353\n"), 0);
	assert_int_equal(cfg.dns.servers.n, 4);
	assert_int_equal(cfg.dns.servers.v[0].port, 53);
	assert_string_equal(cfg.dns.servers.v[1].host, "::1");
	assert_int_equal(cfg.dns.servers.v[1].port, 53);
	assert_string_equal(cfg.dns.servers.v[2].host, "2001:db8::53");
	assert_int_equal(cfg.dns.servers.v[2].port, 53);
	assert_int_equal(cfg.dns.servers.v[3].port, 5353);
	config_free(&cfg);

	assert_int_equal(load(&cfg, "[dns]\nservers = [::1:53\n"), -1);
	config_free(&cfg);
	assert_int_equal(load(&cfg, "[dns]\nservers = localhost:53\n"), -1);
	assert_err_has("\"localhost\" is not an IP address");
	config_free(&cfg);
}

static void
test_cidrs(void **state)
{
	static const unsigned char net10[16] = { 10 };
	static const unsigned char v4[16] = { 192, 0, 2, 0 };
	struct umbox_config cfg;
	const struct cidr *c;

	assert_int_equal(load(&cfg, "[smtpd]\ntrusted_networks = "
	    "10.1.2.3/8, 192.0.2.7, 2001:db8:ffff::1/32, ::1, "
	    "::ffff:192.0.2.77/120, 0.0.0.0/0\n"), 0);
	assert_int_equal(cfg.smtpd.trusted_networks.n, 6);
	c = cfg.smtpd.trusted_networks.v;
	/* Host bits are cleared. */
	assert_int_equal(c[0].family, AF_INET);
	assert_int_equal(c[0].prefix, 8);
	assert_memory_equal(c[0].addr, net10, 16);
	assert_int_equal(c[1].prefix, 32);
	assert_int_equal(c[2].family, AF_INET6);
	assert_int_equal(c[2].prefix, 32);
	assert_int_equal(c[2].addr[3], 0xb8);
	assert_int_equal(c[2].addr[4], 0);
	assert_int_equal(c[2].addr[15], 0);
	assert_int_equal(c[3].prefix, 128);
	/* A mapped block becomes the IPv4 block it means. */
	assert_int_equal(c[4].family, AF_INET);
	assert_int_equal(c[4].prefix, 24);
	assert_memory_equal(c[4].addr, v4, 16);
	assert_int_equal(c[5].prefix, 0);
	config_free(&cfg);
}

static void
test_cidr_match(void **state)
{
	struct umbox_config cfg;
	struct sockaddr_un sun;

	/* IPv4 */
	assert_true(trusted("192.168.1.0/24", "192.168.1.200"));
	assert_false(trusted("192.168.1.0/24", "192.168.2.1"));
	assert_true(trusted("10.0.0.0/23", "10.0.1.255"));
	assert_false(trusted("10.0.0.0/23", "10.0.2.0"));
	assert_true(trusted("192.0.2.5/31", "192.0.2.4"));
	assert_false(trusted("192.0.2.5/31", "192.0.2.6"));
	assert_true(trusted("192.0.2.5/32", "192.0.2.5"));
	assert_false(trusted("192.0.2.5/32", "192.0.2.4"));
	assert_true(trusted("192.0.2.5", "192.0.2.5"));
	assert_true(trusted("10.9.9.9/8", "10.200.0.1"));	/* host bits */
	assert_true(trusted("0.0.0.0/0", "203.0.113.9"));
	assert_false(trusted("0.0.0.0/0", "2001:db8::1"));
	assert_false(trusted("", "127.0.0.1"));
	/* IPv6 */
	assert_true(trusted("2001:db8::/32", "2001:db8:1234::1"));
	assert_false(trusted("2001:db8::/32", "2001:db9::1"));
	assert_true(trusted("2001:db8::/33", "2001:db8:7fff::1"));
	assert_false(trusted("2001:db8::/33", "2001:db8:8000::1"));
	assert_true(trusted("::1", "::1"));
	assert_false(trusted("::1/128", "::2"));
	assert_true(trusted("::/0", "fe80::1"));
	assert_false(trusted("::/0", "192.0.2.1"));
	/* A mapped IPv4 peer matches IPv4 blocks, and mapped blocks too. */
	assert_true(trusted("192.168.1.0/24", "::ffff:192.168.1.9"));
	assert_false(trusted("192.168.1.0/24", "::ffff:192.168.2.9"));
	assert_true(trusted("0.0.0.0/0", "::ffff:8.8.8.8"));
	assert_true(trusted("::ffff:10.0.0.0/104", "10.3.4.5"));
	assert_true(trusted("::ffff:10.0.0.0/104", "::ffff:10.3.4.5"));
	assert_false(trusted("::ffff:10.0.0.0/104", "11.0.0.1"));
	assert_true(trusted("10.0.0.0/8, 2001:db8::/32", "2001:db8::5"));

	/* Other families and NULL never match. */
	assert_int_equal(load(&cfg, "[smtpd]\ntrusted_networks = ::/0, "
	    "0.0.0.0/0\n"), 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	assert_false(config_cidr_match(&cfg.smtpd.trusted_networks,
	    (struct sockaddr *)&sun));
	assert_false(config_cidr_match(&cfg.smtpd.trusted_networks, NULL));
	assert_false(config_cidr_match(NULL, (struct sockaddr *)&sun));
	config_free(&cfg);
}

static void
test_public_addresses(void **state)
{
	struct umbox_config cfg;
	unsigned char a[16];

	assert_int_equal(load(&cfg, "[general]\npublic_addresses = "
	    "203.0.113.1 ,2001:0DB8:0000::0001,::ffff:1.2.3.4, 198.51.100.0/28\n"), 0);
	assert_int_equal(cfg.general.public_addresses.n, 4);
	inet_pton(AF_INET, "203.0.113.1", a);
	assert_true(cidr_match_addr(&cfg.general.public_addresses, AF_INET, a));
	inet_pton(AF_INET, "203.0.113.2", a);
	assert_false(cidr_match_addr(&cfg.general.public_addresses, AF_INET, a));
	inet_pton(AF_INET6, "2001:db8::1", a);
	assert_true(cidr_match_addr(&cfg.general.public_addresses, AF_INET6, a));
	/* a mapped address is the IPv4 address it carries */
	inet_pton(AF_INET, "1.2.3.4", a);
	assert_true(cidr_match_addr(&cfg.general.public_addresses, AF_INET, a));
	inet_pton(AF_INET, "198.51.100.15", a);
	assert_true(cidr_match_addr(&cfg.general.public_addresses, AF_INET, a));
	inet_pton(AF_INET, "198.51.100.16", a);
	assert_false(cidr_match_addr(&cfg.general.public_addresses, AF_INET, a));
	config_free(&cfg);
}

static void
test_retry_order(void **state)
{
	struct umbox_config cfg;

	assert_int_equal(load(&cfg, "[queue]\nretry_initial = 10m\n"
	    "retry_max = 5m\n"), -1);
	assert_string_equal(err, "t.conf:3: [queue] retry_max: 300s is less "
	    "than retry_initial (600s); allowed: retry_initial..30d");
	config_free(&cfg);

	assert_int_equal(load(&cfg, "[queue]\nretry_initial = 2h\n"), -1);
	/* retry_max is not in the file: the key that is gets the blame. */
	assert_string_equal(err, "t.conf:2: [queue] retry_initial: 7200s is more than"
	    " retry_max (3600s, its default); lower it or set retry_max");
	config_free(&cfg);

	assert_int_equal(load(&cfg, "[queue]\nretry_initial = 1h\n"
	    "retry_max = 1h\n"), 0);
	config_free(&cfg);
}

/* Every address and port is listened on by one key only. */
static void
test_listeners_once(void **state)
{
	struct umbox_config cfg;

	assert_int_equal(load(&cfg, "[smtpd]\nlisten = 127.0.0.1:25, 127.0.0.1:25\n"), -1);
	assert_err_has("t.conf:2: [smtpd] listen: 127.0.0.1:25 is listened on by [smtpd]"
	    " listen already");
	config_free(&cfg);

	assert_int_equal(load(&cfg, "[smtpd]\nsubmission = [::1]:2587\n"
	    "[pop3d]\npop3s = [::1]:2587\n"), -1);
	assert_err_has("t.conf:4: [pop3d] pop3s: [::1]:2587 is listened on by [smtpd]"
	    " submission already");
	config_free(&cfg);

	/* The same port on other addresses, and the defaults, are fine. */
	assert_int_equal(load(&cfg, "[smtpd]\nlisten = 127.0.0.1:25, 127.0.0.2:25\n"), 0);
	config_free(&cfg);
	assert_int_equal(load(&cfg, ""), 0);
	config_free(&cfg);
}

/* ------------------------------------------------------------------ */

static void
test_overlong_line(void **state)
{
	struct umbox_config cfg;
	char text[8192], secret[700], dsn[400];
	size_t n;

	/* 198 characters fit exactly in inih's own buffer. */
	n = 198 - strlen("srs_secret = ");
	memset(secret, 'a', n);
	secret[n] = '\0';
	snprintf(text, sizeof(text), "[queue]\nsrs_secret = %s\n"
	    "smtp_port = 26\n", secret);
	assert_int_equal(load(&cfg, text), 0);
	assert_string_equal(cfg.queue.srs_secret, secret);
	config_free(&cfg);

	/*
	 * A longer line is read whole, not split: what looks like a key
	 * inside its value stays in the value.  Its inline comment goes, as
	 * on a short line; a ';' without a blank before it stays.
	 */
	n = 600;
	memset(secret, 'a', n);
	memcpy(secret + 300, "smtp_port=999;x", 15);
	secret[n] = '\0';
	snprintf(text, sizeof(text), "[queue]\nsrs_secret =   %s   ; a comment\n"
	    "smtp_port = 26\n", secret);
	assert_int_equal(load(&cfg, text), 0);
	assert_string_equal(cfg.queue.srs_secret, secret);
	assert_int_equal(cfg.queue.smtp_port, 26);
	config_free(&cfg);

	/* A connection string with several hosts and its TLS options. */
	snprintf(dsn, sizeof(dsn), "host=db1.example.com,db2.example.com,db3.example.com"
	    " port=5432,5432,5432 dbname=umbox user=umbox target_session_attrs=read-write"
	    " sslmode=verify-full sslrootcert=/etc/umbox/postgresql-ca.pem"
	    " passfile=/etc/umbox/pgpass connect_timeout=5");
	assert_true(strlen("dsn = ") + strlen(dsn) > 198);
	snprintf(text, sizeof(text), "[store]\nbackend = postgresql\ndsn = %s\n", dsn);
	assert_int_equal(load(&cfg, text), 0);
	assert_string_equal(cfg.store.dsn, dsn);
	config_free(&cfg);

	/* Past CONFIG_LINE_MAX: one error, and the line count stays right. */
	memset(text, 0, sizeof(text));
	strcpy(text, "[smtpd]\nlisten = ");
	memset(text + strlen(text), 'x', 6000);
	strcat(text, "\nmax_recipients = 0\n");
	assert_int_equal(load(&cfg, text), -1);
	assert_int_equal(err_lines(), 2);
	assert_err_has("t.conf:2: [smtpd] listen: line is longer than 4096 characters\n"
	    "t.conf:3: [smtpd] max_recipients:");
	config_free(&cfg);

	/* A key name that inih's buffer cannot hold is refused, the next line read. */
	memset(text, 0, sizeof(text));
	strcpy(text, "[queue]\n");
	memset(text + strlen(text), 'k', 300);
	strcat(text, " = v\nsmtp_port = 27\n");
	assert_int_equal(load(&cfg, text), -1);
	assert_string_equal(err, "t.conf:2: key name longer than 197 characters");
	assert_int_equal(cfg.queue.smtp_port, 27);
	config_free(&cfg);

	/* A long line's value is only its own: the next key has its own. */
	memset(text, 0, sizeof(text));
	memset(secret, 'b', 300);
	secret[300] = '\0';
	snprintf(text, sizeof(text), "[queue]\nsrs_secret = %s\nsmtp_port =\n", secret);
	assert_int_equal(load(&cfg, text), -1);
	assert_string_equal(cfg.queue.srs_secret, secret);
	assert_err_has("t.conf:3: [queue] smtp_port:");
	config_free(&cfg);
}

static void
test_multiple_errors(void **state)
{
	struct umbox_config cfg;

	assert_int_equal(load(&cfg,
	    "user = x\n"
	    "[general]\n"
	    "hostname = bad_name\n"
	    "postmaster = good\n"
	    "[smtpd]\n"
	    "max_recipients = many\n"
	    "colour = blue\n"
	    "[bogus]\n"
	    "[queue]\n"
	    "lifetime = forever\n"), -1);
	assert_int_equal(err_lines(), 6);
	assert_err_has("t.conf:1: user: key before any [section]");
	assert_err_has("\nt.conf:3: [general] hostname:");
	assert_err_has("\nt.conf:6: [smtpd] max_recipients:");
	assert_err_has("\nt.conf:7: [smtpd] colour: unknown key");
	assert_err_has("\nt.conf:8: [bogus]: unknown section");
	assert_err_has("\nt.conf:10: [queue] lifetime: \"forever\" is not a "
	    "number");
	/* The good key in between applied; the message has no final newline. */
	assert_string_equal(cfg.general.postmaster, "good");
	assert_true(err[strlen(err) - 1] != '\n');
	config_free(&cfg);
}

static void
test_error_buffer_limits(void **state)
{
	struct umbox_config cfg;
	char small[80], *text, *p;
	size_t i;

	/* Whole lines that fit, then a count of the rest. */
	assert_int_equal(config_load_string(&cfg, "[smtpd]\nmax_recipients = 0"
	    "\nmax_connections = 0\nmax_connections_per_ip = 0\n", "t.conf",
	    small, sizeof(small)), -1);
	assert_string_equal(small, "(3 more errors not shown)");
	config_free(&cfg);

	/* Hundreds of errors: at most 100 kept, the rest counted. */
	text = xmalloc(500 * 4 + 16);
	p = text;
	p += sprintf(p, "[general]\n");
	for (i = 0; i < 500; i++)
		p += sprintf(p, "x\n\n");
	assert_int_equal(load(&cfg, text), -1);
	assert_int_equal(err_lines(), 101);
	assert_err_has("t.conf:2: expected");
	assert_err_has("\n(400 more errors not shown)");
	config_free(&cfg);
	free(text);

	/* A tiny buffer still gets a terminated, truncated first line. */
	assert_int_equal(config_load_string(&cfg, "[x]\n", "t.conf", small, 10),
	    -1);
	assert_int_equal(strlen(small), 9);
	config_free(&cfg);

	/* No buffer at all is allowed. */
	assert_int_equal(config_load_string(&cfg, "[x]\n", "t.conf", NULL, 0),
	    -1);
	config_free(&cfg);
}

static void
test_load_string_name(void **state)
{
	struct umbox_config cfg;

	assert_int_equal(config_load_string(&cfg, "[nope]\n", "mem.conf", err,
	    sizeof(err)), -1);
	assert_err_has("mem.conf:1: [nope]: unknown section");
	assert_string_equal(cfg.path, "mem.conf");
	config_free(&cfg);

	assert_int_equal(config_load_string(&cfg, "[nope]\n", NULL, err,
	    sizeof(err)), -1);
	assert_err_has("(string):1: [nope]");
	config_free(&cfg);
}

static void
test_free_and_reuse(void **state)
{
	struct umbox_config cfg, zero;

	memset(&zero, 0, sizeof(zero));
	assert_int_equal(load(&cfg, full_text), 0);
	config_free(&cfg);
	assert_memory_equal(&cfg, &zero, sizeof(cfg));
	config_free(&cfg);	/* twice is harmless */
	config_free(NULL);

	assert_int_equal(load(&cfg, full_text), 0);
	check_full(&cfg);
	config_free(&cfg);
	assert_int_equal(config_load(&cfg, NULL, 0, err, sizeof(err)), 0);
	check_defaults(&cfg);
	config_free(&cfg);
	assert_memory_equal(&cfg, &zero, sizeof(cfg));
}

static void
test_store_path(void **state)
{
	struct umbox_config cfg;
	char *p;

	assert_int_equal(config_load(&cfg, NULL, 0, err, sizeof(err)), 0);
	p = config_store_path(&cfg);
	assert_string_equal(p, "/var/lib/umbox/store.db");
	free(p);
	config_free(&cfg);

	assert_int_equal(load(&cfg, "[general]\ndata_dir = /srv/mail/\n"), 0);
	p = config_store_path(&cfg);
	assert_string_equal(p, "/srv/mail/store.db");
	free(p);
	config_free(&cfg);

	assert_int_equal(load(&cfg, "[general]\ndata_dir = /\n"), 0);
	p = config_store_path(&cfg);
	assert_string_equal(p, "/store.db");
	free(p);
	config_free(&cfg);
}

static void
test_enums(void **state)
{
	struct umbox_config cfg;

	assert_int_equal(load(&cfg, "[pop3d]\nplaintext_auth = always\n"
	    "[tls]\nmin_protocol = TLSv1.2\n"), 0);
	assert_int_equal(cfg.pop3d.plaintext_auth, PLAINTEXT_ALWAYS);
	assert_int_equal(cfg.tls.min_protocol, TLS1_2_VERSION);
	config_free(&cfg);
	assert_int_equal(load(&cfg, "[pop3d]\nplaintext_auth = "
	    "tls-or-loopback\n[tls]\nmin_protocol = tlsv1.3\n"), 0);
	assert_int_equal(cfg.pop3d.plaintext_auth, PLAINTEXT_TLS_OR_LOOPBACK);
	assert_int_equal(cfg.tls.min_protocol, TLS1_3_VERSION);
	config_free(&cfg);
	/* Like every other word a value may be, in any case. */
	assert_int_equal(load(&cfg, "[pop3d]\nplaintext_auth = ALWAYS\n"
	    "[store]\nbackend = SQLite\n"), 0);
	assert_int_equal(cfg.pop3d.plaintext_auth, PLAINTEXT_ALWAYS);
	config_free(&cfg);
}

static void
test_pop3d_connections(void **state)
{
	struct umbox_config cfg;

	assert_int_equal(load(&cfg, "[pop3d]\nmax_connections = 1\n"
	    "max_connections_per_ip = 1000000\n"), 0);
	assert_int_equal(cfg.pop3d.max_connections, 1);
	assert_int_equal(cfg.pop3d.max_connections_per_ip, 1000000);
	/* The [smtpd] keys of the same names are separate. */
	assert_int_equal(cfg.smtpd.max_connections, 1000);
	assert_int_equal(cfg.smtpd.max_connections_per_ip, 20);
	config_free(&cfg);

	assert_int_equal(load(&cfg, "[pop3d]\nplaintext_auth = always\n\n"
	    "max_connections_per_ip = 0\n"), -1);
	assert_string_equal(err, "t.conf:4: [pop3d] max_connections_per_ip: "
	    "\"0\" is out of range; allowed: 1..1000000");
	assert_int_equal(cfg.pop3d.max_connections_per_ip, 20);
	config_free(&cfg);
}

static void
test_threads(void **state)
{
	struct umbox_config cfg;

	assert_int_equal(load(&cfg, "[general]\nthreads = AUTO\n"), 0);
	assert_int_equal(cfg.general.threads, 0);
	config_free(&cfg);
	assert_int_equal(load(&cfg, "[general]\nthreads = 1\n"), 0);
	assert_int_equal(cfg.general.threads, 1);
	config_free(&cfg);
	assert_int_equal(load(&cfg, "[general]\nthreads = 256\n"), 0);
	assert_int_equal(cfg.general.threads, 256);
	config_free(&cfg);
	assert_int_equal(load(&cfg, "[general]\n\nthreads = 300\n"), -1);
	assert_string_equal(err, "t.conf:3: [general] threads: \"300\" is out "
	    "of range; allowed: auto (one per core) or 1..256");
	assert_int_equal(cfg.general.threads, 0);
	config_free(&cfg);
}

static void
test_store_section(void **state)
{
	static const char *const with_password[] = {
		"password=s3cret",
		"host=db PassWord = s3cret",
		"host=db sslpassword=s3cret",
		"postgresql://umbox:s3cret@db/mail",
		"postgres://umbox:s3cret@[::1]:5432",
		"postgresql://db/mail?user=umbox&password=s3cret",
	};
	static const char *const without_password[] = {
		"host=db dbname=umbox passfile=/etc/umbox/pgpass",
		"postgresql://umbox@db:5432/mail",
		"postgresql://db/mail?sslmode=require",
		"service=umbox",
	};
	struct umbox_config cfg;
	char host[256], *text;
	size_t i;

	assert_int_equal(gethostname(host, sizeof(host)), 0);
	str_lower(host);
	assert_int_equal(load(&cfg, "[store]\nbackend = PostgreSQL\n"
	    "dsn =\nnode_id =\n"), 0);
	assert_int_equal(cfg.store.backend, CONFIG_BACKEND_POSTGRESQL);
	assert_string_equal(cfg.store.dsn, "");
	assert_string_equal(cfg.store.node_id, host);
	config_free(&cfg);

	assert_int_equal(load(&cfg, "[store]\nbackend = sqlite\n"
	    "node_id = pbx-2\n"), 0);
	assert_int_equal(cfg.store.backend, CONFIG_BACKEND_SQLITE);
	assert_string_equal(cfg.store.node_id, "pbx-2");
	config_free(&cfg);

	/* A password is refused, and never repeated in the message. */
	for (i = 0; i < ARRAY_SIZE(with_password); i++) {
		text = xasprintf("[store]\ndsn = %s\n", with_password[i]);
		assert_int_equal(load(&cfg, text), -1);
		assert_err_has("t.conf:2: [store] dsn: holds a password");
		if (strstr(err, "s3cret") != NULL) {
			print_error("password in message: %s\n", err);
			fail();
		}
		assert_string_equal(cfg.store.dsn, "");
		config_free(&cfg);
		free(text);
	}
	for (i = 0; i < ARRAY_SIZE(without_password); i++) {
		text = xasprintf("[store]\ndsn = %s\n", without_password[i]);
		assert_int_equal(load(&cfg, text), 0);
		assert_string_equal(cfg.store.dsn, without_password[i]);
		config_free(&cfg);
		free(text);
	}
}

static void
test_speech_voice(void **state)
{
	struct umbox_config cfg;

	assert_int_equal(load(&cfg, "[voicemail]\nspeech_voice = de\n"), 0);
	assert_string_equal(cfg.voicemail.speech_voice, "de");
	config_free(&cfg);
	assert_int_equal(load(&cfg, "[voicemail]\nspeech_voice = en/us\n"), -1);
	assert_string_equal(err, "t.conf:2: [voicemail] speech_voice: "
	    "\"en/us\" is not a voice name; allowed: an espeak-ng voice name "
	    "of letters, digits, '-', '_', '+' (1..40 characters)");
	assert_string_equal(cfg.voicemail.speech_voice, "en");
	config_free(&cfg);
}

/* Read a file of the source tree into a string; NULL if absent. */
static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (f == NULL)
		return NULL;
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	buf = xmalloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* The shipped configs load cleanly; the production one is the defaults. */
static void
test_sample_configs(void **state)
{
	struct umbox_config cfg;
	char *text, *at, *p;

	if ((text = slurp("etc/umbox.conf")) == NULL)
		skip();
	assert_int_equal(config_load_string(&cfg, text, "etc/umbox.conf", err,
	    sizeof(err)), 0);
	check_defaults(&cfg);
	config_free(&cfg);
	free(text);

	if ((text = slurp("etc/umbox.dev.conf")) == NULL)
		skip();
	/* What the dev-run script does: @TOP@ becomes the source tree. */
	while ((at = strstr(text, "@TOP@")) != NULL) {
		memcpy(at, "/top", 4);
		memmove(at + 4, at + 5, strlen(at + 5) + 1);
	}
	assert_int_equal(config_load_string(&cfg, text, "etc/umbox.dev.conf",
	    err, sizeof(err)), 0);
	assert_string_equal(cfg.general.hostname, "mail.example.test");
	assert_string_equal(cfg.general.user, "");
	assert_string_equal(cfg.general.postmaster, "demo");
	assert_string_equal(cfg.tls.certificate, "/top/var/tls/cert.pem");
	assert_string_equal(cfg.tls.key, "/top/var/tls/key.pem");
	assert_int_equal(cfg.smtpd.listen.n, 1);
	assert_string_equal(cfg.smtpd.listen.v[0].host, "127.0.0.1");
	assert_int_equal(cfg.smtpd.listen.v[0].port, 2525);
	assert_int_equal(cfg.smtpd.submission.v[0].port, 2587);
	assert_int_equal(cfg.smtpd.smtps.v[0].port, 2465);
	assert_int_equal(cfg.pop3d.listen.v[0].port, 2110);
	assert_int_equal(cfg.pop3d.pop3s.v[0].port, 2995);
	assert_int_equal(cfg.dns.servers.n, 0);
	p = config_store_path(&cfg);
	assert_string_equal(p, "/top/var/data/store.db");
	free(p);
	config_free(&cfg);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_empty_and_comments_only),
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_full_file_from_disk),
		cmocka_unit_test(test_unknown_section),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_key_before_section),
		cmocka_unit_test(test_bad_number_message),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_duplicate_key),
		cmocka_unit_test(test_lenient_syntax),
		cmocka_unit_test(test_file_unreadable),
		cmocka_unit_test(test_missing_ok),
		cmocka_unit_test(test_nul_in_file),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_endpoints),
		cmocka_unit_test(test_cidrs),
		cmocka_unit_test(test_cidr_match),
		cmocka_unit_test(test_public_addresses),
		cmocka_unit_test(test_retry_order),
		cmocka_unit_test(test_listeners_once),
		cmocka_unit_test(test_overlong_line),
		cmocka_unit_test(test_multiple_errors),
		cmocka_unit_test(test_error_buffer_limits),
		cmocka_unit_test(test_load_string_name),
		cmocka_unit_test(test_free_and_reuse),
		cmocka_unit_test(test_store_path),
		cmocka_unit_test(test_enums),
		cmocka_unit_test(test_pop3d_connections),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_store_section),
		cmocka_unit_test(test_speech_voice),
		cmocka_unit_test(test_sample_configs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
