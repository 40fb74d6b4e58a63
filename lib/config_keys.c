/*
 * config_keys.c - the sections and keys of umbox.conf (SPEC §2), and one
 * parser per kind of key.
 *
 * Each key names its parser, the offset of its field in struct
 * umbox_config, its default written in file syntax, its limits and the
 * words that tell the administrator what is allowed.  Defaults go through
 * the same parsers as the file (config_defaults() in config.c), so a
 * default can never be something the file could not say.
 *
 * The parsers here are thin: they check the value with lib/value.c,
 * lib/endpoint.c or lib/cidr.c, word the problem for the message
 * "[section] key: <why>; allowed: <allowed>", and store the result.  A
 * value that is refused leaves the field as it was.
 */
#include "config_int.h"

#include <arpa/inet.h>
#include <openssl/tls1.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cidr.h"
#include "endpoint.h"
#include "value.h"

#define SIZE_MAX_MESSAGE	(512ULL * 1024 * 1024)
#define DAY			(24U * 3600U)

static int parse_string(const struct key_def *, void *, const char *, char *, size_t);
static int parse_path(const struct key_def *, void *, const char *, char *, size_t);
static int parse_command(const struct key_def *, void *, const char *, char *, size_t);
static int parse_hostname(const struct key_def *, void *, const char *, char *, size_t);
static int parse_user(const struct key_def *, void *, const char *, char *, size_t);
static int parse_login(const struct key_def *, void *, const char *, char *, size_t);
static int parse_tls_protocol(const struct key_def *, void *, const char *, char *, size_t);
static int parse_endpoints(const struct key_def *, void *, const char *, char *, size_t);
static int parse_dns_servers(const struct key_def *, void *, const char *, char *, size_t);
static int parse_size(const struct key_def *, void *, const char *, char *, size_t);
static int parse_count(const struct key_def *, void *, const char *, char *, size_t);
static int parse_duration(const struct key_def *, void *, const char *, char *, size_t);
static int parse_port(const struct key_def *, void *, const char *, char *, size_t);
static int parse_cidrs(const struct key_def *, void *, const char *, char *, size_t);
static int parse_plaintext_auth(const struct key_def *, void *, const char *, char *, size_t);
static int parse_threads(const struct key_def *, void *, const char *, char *, size_t);
static int parse_backend(const struct key_def *, void *, const char *, char *, size_t);
static int parse_dsn(const struct key_def *, void *, const char *, char *, size_t);
static int parse_node_id(const struct key_def *, void *, const char *, char *, size_t);
static int parse_voice(const struct key_def *, void *, const char *, char *, size_t);

#define F(member)	offsetof(struct umbox_config, member)

#define ALLOWED_ENDPOINTS \
	"comma-separated host:port or [IPv6]:port, port 1..65535; empty disables"
#define ALLOWED_PATH	"an absolute path"

static const struct key_def general_keys[] = {
	{ "hostname", parse_hostname, F(general.hostname), NULL, 0, 0,
	    "a domain name (letters, digits, '-', labels of 1..63 joined by '.', "
	    "at most 253 characters)" },
	{ "data_dir", parse_path, F(general.data_dir), "/var/lib/umbox", 0, 0,
	    ALLOWED_PATH },
	{ "user", parse_user, F(general.user), "umbox", 0, 0,
	    "empty (do not change user) or a user name of letters, digits, "
	    "'.', '_', '-' (at most 32)" },
	{ "public_addresses", parse_cidrs, F(general.public_addresses), "",
	    0, 0, "comma-separated IPv4/IPv6 addresses or CIDR blocks, or empty" },
	{ "postmaster", parse_login, F(general.postmaster), "admin", 0, 0,
	    "a login of a-z, 0-9, '.', '_', '-' (1..64 characters)" },
	{ "threads", parse_threads, F(general.threads), "auto", 1, 256,
	    "auto (one per core) or 1..256" },
};

static const struct key_def store_keys[] = {
	/* postgresql is read here; the programs refuse it at start-up. */
	{ "backend", parse_backend, F(store.backend), "sqlite", 0, 0,
	    "sqlite, postgresql" },
	{ "dsn", parse_dsn, F(store.dsn), "", 0, 0,
	    "empty or a libpq connection string without a password "
	    "(use libpq's password file)" },
	{ "node_id", parse_node_id, F(store.node_id), NULL, 0, 0,
	    "empty (the system host name) or 1..64 letters, digits, '.', "
	    "'_', '-'" },
};

static const struct key_def tls_keys[] = {
	{ "certificate", parse_path, F(tls.certificate),
	    "/etc/ssl/certs/ssl-cert-snakeoil.pem", 0, 0, ALLOWED_PATH },
	{ "key", parse_path, F(tls.key),
	    "/etc/ssl/private/ssl-cert-snakeoil.key", 0, 0, ALLOWED_PATH },
	{ "min_protocol", parse_tls_protocol, F(tls.min_protocol), "TLSv1.2",
	    0, 0, "TLSv1.2, TLSv1.3" },
};

static const struct key_def smtpd_keys[] = {
	{ "listen", parse_endpoints, F(smtpd.listen), "0.0.0.0:25, [::]:25",
	    0, 0, ALLOWED_ENDPOINTS },
	{ "submission", parse_endpoints, F(smtpd.submission), "0.0.0.0:587",
	    0, 0, ALLOWED_ENDPOINTS },
	{ "smtps", parse_endpoints, F(smtpd.smtps), "0.0.0.0:465",
	    0, 0, ALLOWED_ENDPOINTS },
	{ "max_message_size", parse_size, F(smtpd.max_message_size),
	    "36700160", 1, SIZE_MAX_MESSAGE,
	    "1..536870912 bytes (512M), with an optional K, M or G suffix" },
	{ "max_recipients", parse_count, F(smtpd.max_recipients), "100",
	    1, 100000, "1..100000" },
	{ "max_connections", parse_count, F(smtpd.max_connections), "1000",
	    1, 1000000, "1..1000000" },
	{ "max_connections_per_ip", parse_count,
	    F(smtpd.max_connections_per_ip), "20", 1, 1000000, "1..1000000" },
	{ "trusted_networks", parse_cidrs, F(smtpd.trusted_networks), "", 0, 0,
	    "comma-separated CIDRs such as 192.0.2.0/24 or 2001:db8::/32 "
	    "(a bare address is /32 or /128), or empty" },
};

static const struct key_def pop3d_keys[] = {
	{ "listen", parse_endpoints, F(pop3d.listen), "0.0.0.0:110", 0, 0,
	    ALLOWED_ENDPOINTS },
	{ "pop3s", parse_endpoints, F(pop3d.pop3s), "0.0.0.0:995", 0, 0,
	    ALLOWED_ENDPOINTS },
	{ "plaintext_auth", parse_plaintext_auth, F(pop3d.plaintext_auth),
	    "tls-or-loopback", 0, 0,
	    "tls-or-loopback, always, never-without-tls" },
	{ "max_connections", parse_count, F(pop3d.max_connections), "1000",
	    1, 1000000, "1..1000000" },
	{ "max_connections_per_ip", parse_count,
	    F(pop3d.max_connections_per_ip), "20", 1, 1000000, "1..1000000" },
};

static const struct key_def queue_keys[] = {
	{ "retry_initial", parse_duration, F(queue.retry_initial), "30s",
	    1, DAY, "1s..1d, a number with s, m, h or d" },
	{ "retry_max", parse_duration, F(queue.retry_max), "1h",
	    1, 30 * DAY, "retry_initial..30d, a number with s, m, h or d" },
	{ "lifetime", parse_duration, F(queue.lifetime), "5d",
	    1, 365 * DAY, "1s..365d, a number with s, m, h or d" },
	{ "claim_lease", parse_duration, F(queue.claim_lease), "15m",
	    10, DAY, "10s..1d, a number with s, m, h or d" },
	{ "smtp_port", parse_port, F(queue.smtp_port), "25", 1, 65535,
	    "1..65535" },
	{ "srs_secret", parse_string, F(queue.srs_secret), "", 0, 0,
	    "any text" },
};

static const struct key_def dns_keys[] = {
	{ "servers", parse_dns_servers, F(dns.servers), "", 0, 0,
	    "empty (use /etc/resolv.conf) or comma-separated IP, IP:port or "
	    "[IPv6]:port, port 1..65535 (default 53)" },
	{ "guard_interval", parse_duration, F(dns.guard_interval), "1h",
	    1, 30 * DAY, "1s..30d, a number with s, m, h or d" },
};

static const struct key_def voicemail_keys[] = {
	{ "mwi_command", parse_command, F(voicemail.mwi_command), "", 0, 0,
	    "empty or the absolute path of a program (run without a shell)" },
	{ "speech_voice", parse_voice, F(voicemail.speech_voice), "en", 0, 0,
	    "an espeak-ng voice name of letters, digits, '-', '_', '+' "
	    "(1..40 characters)" },
};

#undef F

_Static_assert(ARRAY_SIZE(general_keys) <= CONFIG_KEYS_MAX, "keys");
_Static_assert(ARRAY_SIZE(store_keys) <= CONFIG_KEYS_MAX, "keys");
_Static_assert(ARRAY_SIZE(tls_keys) <= CONFIG_KEYS_MAX, "keys");
_Static_assert(ARRAY_SIZE(smtpd_keys) <= CONFIG_KEYS_MAX, "keys");
_Static_assert(ARRAY_SIZE(pop3d_keys) <= CONFIG_KEYS_MAX, "keys");
_Static_assert(ARRAY_SIZE(queue_keys) <= CONFIG_KEYS_MAX, "keys");
_Static_assert(ARRAY_SIZE(dns_keys) <= CONFIG_KEYS_MAX, "keys");
_Static_assert(ARRAY_SIZE(voicemail_keys) <= CONFIG_KEYS_MAX, "keys");

#define SECTION(n, k)	{ n, k, ARRAY_SIZE(k) }
const struct section_def config_sections[] = {
	SECTION("general", general_keys),
	SECTION("store", store_keys),
	SECTION("tls", tls_keys),
	SECTION("smtpd", smtpd_keys),
	SECTION("pop3d", pop3d_keys),
	SECTION("queue", queue_keys),
	SECTION("dns", dns_keys),
	SECTION("voicemail", voicemail_keys),
};
#undef SECTION

_Static_assert(ARRAY_SIZE(config_sections) == CONFIG_SECTIONS, "sections");

size_t
config_section_index(const char *name)
{
	size_t i;

	for (i = 0; i < CONFIG_SECTIONS; i++)
		if (strcmp(config_sections[i].name, name) == 0)
			return i;
	fatal("config: no section [%s]", name);
}

size_t
config_key_index(size_t section, const char *name)
{
	const struct section_def *s = &config_sections[section];
	size_t i;

	for (i = 0; i < s->nkeys; i++)
		if (strcmp(s->keys[i].name, name) == 0)
			return i;
	fatal("config: no key %s in [%s]", name, s->name);
}

char *
config_default_hostname(void)
{
	char buf[256];

	if (gethostname(buf, sizeof(buf)) != 0 || buf[0] == '\0')
		return xstrdup("localhost");
	buf[sizeof(buf) - 1] = '\0';
	str_lower(buf);
	return xstrdup(buf);
}

/* ------------------------------------------------------------------ */
/* Strings, paths and names                                             */

/* Replace the string at field with a copy of s. */
static void
set_string(void *field, const char *s)
{
	char **p = field;

	free(*p);
	*p = xstrdup(s);
}

static int
parse_string(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	set_string(field, value);
	return 0;
}

static int
parse_path(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	if (value[0] != '/') {
		snprintf(why, whylen, "\"%s\" is not an absolute path", value);
		return -1;
	}
	set_string(field, value);
	return 0;
}

/*
 * mwi_command: one program, run with execve and no shell, so there is no
 * argument splitting; an absolute path keeps PATH out of it.  A blank in
 * it is taken for arguments unless a file has that whole name.
 */
static int
parse_command(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	if (value[0] != '\0' && value[0] != '/') {
		snprintf(why, whylen, "\"%s\" is not an absolute path", value);
		return -1;
	}
	if (strpbrk(value, " \t") != NULL && access(value, F_OK) != 0) {
		snprintf(why, whylen, "\"%s\" has arguments; give the program alone"
		    " (it is run with the login and the two counts, without a shell)", value);
		return -1;
	}
	set_string(field, value);
	return 0;
}

/* hostname: a domain name, kept lowercased (it is compared everywhere). */
static int
parse_hostname(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	if (!value_is_domain(value)) {
		snprintf(why, whylen, "\"%s\" is not a valid domain name", value);
		return -1;
	}
	set_string(field, value);
	str_lower(*(char **)field);
	return 0;
}

/* user: empty, or a name getpwnam() could know; looked up when dropping. */
static int
parse_user(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	if (!value_is_user(value)) {
		snprintf(why, whylen, "\"%s\" is not a valid user name", value);
		return -1;
	}
	set_string(field, value);
	return 0;
}

static int
parse_login(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	if (value[0] == '\0') {
		snprintf(why, whylen, "is empty");
		return -1;
	}
	if (!value_is_login(value)) {
		snprintf(why, whylen, "\"%s\" is not a valid login", value);
		return -1;
	}
	set_string(field, value);
	return 0;
}

/* A byte of a libpq keyword: letters, digits, '_'. */
static int
is_word(int c)
{
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/*
 * Does a libpq connection string carry a secret?  Every "word =" in it is
 * looked at, which covers the keyword form ("host=db password=x"), URI
 * query parameters ("?password=x") and sslpassword; a URI may also hold a
 * password in its user part ("postgresql://u:x@db/mail").
 */
static int
dsn_has_password(const char *s)
{
	const char *p, *w, *auth, *end, *at;
	size_t n;

	for (p = strchr(s, '='); p != NULL; p = strchr(p + 1, '=')) {
		w = p;
		while (w > s && (w[-1] == ' ' || w[-1] == '\t'))
			w--;
		n = 0;
		while (w > s && is_word((unsigned char)w[-1])) {
			w--;
			n++;
		}
		if (n >= 8 && strncasecmp(w + n - 8, "password", 8) == 0)
			return 1;
	}
	if (strncasecmp(s, "postgresql://", 13) == 0)
		auth = s + 13;
	else if (strncasecmp(s, "postgres://", 11) == 0)
		auth = s + 11;
	else
		return 0;
	end = auth + strcspn(auth, "/?");
	at = NULL;
	for (p = auth; p < end; p++)
		if (*p == '@')
			at = p;
	return at != NULL && memchr(auth, ':', (size_t)(at - auth)) != NULL;
}

/*
 * dsn: handed to libpq as it is.  The configuration file is readable by
 * every local user, so a password here is refused, and the message does
 * not repeat the value.
 */
static int
parse_dsn(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	if (dsn_has_password(value)) {
		snprintf(why, whylen, "holds a password, which belongs in "
		    "libpq's password file (~/.pgpass or passfile=)");
		return -1;
	}
	set_string(field, value);
	return 0;
}

/* node_id: empty means the system host name, as the default does. */
static int
parse_node_id(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	if (value[0] == '\0') {
		free(*(char **)field);
		*(char **)field = config_default_hostname();
		return 0;
	}
	if (!value_is_node_id(value)) {
		snprintf(why, whylen, "\"%s\" is not a valid node name", value);
		return -1;
	}
	set_string(field, value);
	return 0;
}

/* speech_voice: an espeak-ng voice name ("en", "en-us", "en+f3"). */
static int
parse_voice(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	if (!value_is_voice(value)) {
		snprintf(why, whylen, "\"%s\" is not a voice name", value);
		return -1;
	}
	set_string(field, value);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Choices                                                              */

static int
parse_tls_protocol(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	int *p = field;

	if (strcasecmp(value, "TLSv1.2") == 0)
		*p = TLS1_2_VERSION;
	else if (strcasecmp(value, "TLSv1.3") == 0)
		*p = TLS1_3_VERSION;
	else {
		snprintf(why, whylen, "\"%s\" is not a TLS version", value);
		return -1;
	}
	return 0;
}

static int
parse_plaintext_auth(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	enum plaintext_auth *p = field;

	if (strcasecmp(value, "tls-or-loopback") == 0)
		*p = PLAINTEXT_TLS_OR_LOOPBACK;
	else if (strcasecmp(value, "always") == 0)
		*p = PLAINTEXT_ALWAYS;
	else if (strcasecmp(value, "never-without-tls") == 0)
		*p = PLAINTEXT_NEVER_WITHOUT_TLS;
	else {
		snprintf(why, whylen, "\"%s\" is not a known policy", value);
		return -1;
	}
	return 0;
}

/* backend: sqlite or postgresql. */
static int
parse_backend(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	enum config_backend *p = field;

	if (strcasecmp(value, "sqlite") == 0)
		*p = CONFIG_BACKEND_SQLITE;
	else if (strcasecmp(value, "postgresql") == 0)
		*p = CONFIG_BACKEND_POSTGRESQL;
	else {
		snprintf(why, whylen, "\"%s\" is not a known backend", value);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Numbers                                                              */

/* Counts: unsigned, within the key's [min, max]. */
static int
parse_count(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	const char *reason;
	uint64_t v;

	if ((reason = value_parse_count(value, k->min, k->max, &v)) != NULL) {
		snprintf(why, whylen, "\"%s\" %s", value, reason);
		return -1;
	}
	*(unsigned *)field = (unsigned)v;
	return 0;
}

/*
 * threads: "auto" (stored as 0: one event loop per core, decided by the
 * daemon) or a count within [min, max].
 */
static int
parse_threads(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	if (strcasecmp(value, "auto") == 0) {
		*(unsigned *)field = 0;
		return 0;
	}
	return parse_count(k, field, value, why, whylen);
}

static int
parse_port(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	unsigned v;

	if (parse_count(k, &v, value, why, whylen) != 0)
		return -1;
	*(uint16_t *)field = (uint16_t)v;
	return 0;
}

static int
parse_size(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	const char *reason;
	uint64_t v;

	if ((reason = value_parse_size(value, &v)) == NULL &&
	    (v < k->min || v > k->max))
		reason = "is out of range";
	if (reason != NULL) {
		snprintf(why, whylen, "\"%s\" %s", value, reason);
		return -1;
	}
	*(uint64_t *)field = v;
	return 0;
}

static int
parse_duration(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	const char *reason;
	unsigned v;

	if ((reason = value_parse_duration(value, &v)) == NULL &&
	    (v < k->min || v > k->max))
		reason = "is out of range";
	if (reason != NULL) {
		snprintf(why, whylen, "\"%s\" %s", value, reason);
		return -1;
	}
	*(unsigned *)field = v;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Lists                                                                */

/* Listeners: host:port with the port required, names allowed. */
static int
parse_endpoints(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	return endpoint_list_parse(value, 0, 0, field, why, whylen);
}

/* dns.servers: literal addresses only, port 53 when left out. */
static int
parse_dns_servers(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	return endpoint_list_parse(value, 53, ENDPOINT_IP_ONLY, field, why,
	    whylen);
}

static int
parse_cidrs(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	return cidr_list_parse(value, field, why, whylen);
}
