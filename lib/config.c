/*
 * config.c - load /etc/umbox/umbox.conf with libinih.
 *
 * The whole file is read into memory and handed to ini_parse_stream()
 * through our own line reader, config_reader().  The reader does the
 * line-level work that inih cannot report precisely:
 *
 *   - it counts lines, because Debian's inih is built without
 *     INI_HANDLER_LINENO and the handler would not know where it is;
 *   - it refuses lines longer than inih's buffer, which inih would
 *     otherwise split into two "lines" or silently cut;
 *   - it refuses control characters (NUL, CR inside a line, ...);
 *   - it strips indentation, so inih never takes an indented line for a
 *     continuation of the previous value (INI_ALLOW_MULTILINE);
 *   - it recognises "[section]" headers itself and reports malformed
 *     lines, so every error is reported once, with its line number,
 *     instead of inih's "first bad line" only.
 *
 * Whatever the reader refuses reaches inih as a blank line.  inih then
 * splits "key = value", strips the inline comment and calls
 * config_handler(), which looks the key up in the tables below and parses
 * the value with the key's parser.  Every error is collected; the caller
 * gets all of them, one a line.
 *
 * Defaults are written in config-file syntax in the same tables and go
 * through the same parsers, so a default can never be something the file
 * could not say.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <openssl/tls1.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * Longest line accepted, not counting the line end.  inih's buffer is
 * INI_MAX_LINE (200 in Debian) bytes and must hold the line, "\n" and NUL;
 * the reader also checks the size inih actually passes.
 */
#define CONFIG_LINE_MAX		198
#define CONFIG_FILE_MAX		(1024 * 1024)	/* a config file is small */
#define CONFIG_KEYS_MAX		8		/* most keys in one section */
#define CONFIG_ERRORS_MAX	100		/* kept; the rest are counted */
#define CONFIG_WHY_MAX		512

#define SIZE_MAX_MESSAGE	(512ULL * 1024 * 1024)
#define DAY			(24U * 3600U)

struct key_def;

/*
 * A value parser: parse value into *field (whose type the parser knows),
 * or leave *field alone and describe the problem in why, quoting the
 * offending text.  Returns 0 or -1.
 */
typedef int (*value_parser)(const struct key_def *k, void *field,
    const char *value, char *why, size_t whylen);

struct key_def {
	const char *name;
	value_parser parse;
	size_t offset;		/* of the field in struct umbox_config */
	const char *def;	/* default in file syntax; NULL: computed */
	uint64_t min, max;	/* for numbers, sizes and durations */
	const char *allowed;	/* for messages and the man page */
};

struct section_def {
	const char *name;
	const struct key_def *keys;
	size_t nkeys;
};

enum section_state {
	SECTION_NONE,		/* no header seen yet */
	SECTION_KNOWN,
	SECTION_BAD,		/* unknown or malformed; already reported */
};

struct load_ctx {
	struct umbox_config *cfg;
	const char *name;		/* file name for messages */
	const char *text;
	size_t len, pos;
	int lineno;
	enum section_state state;
	size_t section;			/* index into sections[] when KNOWN */
	int set_line[8][CONFIG_KEYS_MAX];	/* where each key was set */
	struct strlist errors;
	size_t nerrors;			/* including the ones not kept */
};

static int parse_string(const struct key_def *, void *, const char *, char *, size_t);
static int parse_path(const struct key_def *, void *, const char *, char *, size_t);
static int parse_command(const struct key_def *, void *, const char *, char *, size_t);
static int parse_hostname(const struct key_def *, void *, const char *, char *, size_t);
static int parse_user(const struct key_def *, void *, const char *, char *, size_t);
static int parse_login(const struct key_def *, void *, const char *, char *, size_t);
static int parse_addresses(const struct key_def *, void *, const char *, char *, size_t);
static int parse_tls_protocol(const struct key_def *, void *, const char *, char *, size_t);
static int parse_endpoints(const struct key_def *, void *, const char *, char *, size_t);
static int parse_dns_servers(const struct key_def *, void *, const char *, char *, size_t);
static int parse_size_key(const struct key_def *, void *, const char *, char *, size_t);
static int parse_count(const struct key_def *, void *, const char *, char *, size_t);
static int parse_duration_key(const struct key_def *, void *, const char *, char *, size_t);
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
	{ "public_addresses", parse_addresses, F(general.public_addresses), "",
	    0, 0, "comma-separated literal IPv4/IPv6 addresses, or empty" },
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
	{ "max_message_size", parse_size_key, F(smtpd.max_message_size),
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
	{ "retry_initial", parse_duration_key, F(queue.retry_initial), "30s",
	    1, DAY, "1s..1d, a number with s, m, h or d" },
	{ "retry_max", parse_duration_key, F(queue.retry_max), "1h",
	    1, 30 * DAY, "retry_initial..30d, a number with s, m, h or d" },
	{ "lifetime", parse_duration_key, F(queue.lifetime), "5d",
	    1, 365 * DAY, "1s..365d, a number with s, m, h or d" },
	{ "smtp_port", parse_port, F(queue.smtp_port), "25", 1, 65535,
	    "1..65535" },
	{ "srs_secret", parse_string, F(queue.srs_secret), "", 0, 0,
	    "any text" },
};

static const struct key_def dns_keys[] = {
	{ "servers", parse_dns_servers, F(dns.servers), "", 0, 0,
	    "empty (use /etc/resolv.conf) or comma-separated IP, IP:port or "
	    "[IPv6]:port, port 1..65535 (default 53)" },
	{ "guard_interval", parse_duration_key, F(dns.guard_interval), "1h",
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
static const struct section_def sections[] = {
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

_Static_assert(ARRAY_SIZE(sections) ==
    sizeof(((struct load_ctx *)0)->set_line) /
    sizeof(((struct load_ctx *)0)->set_line[0]), "set_line rows");

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
is_alnum(int c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/*
 * Is s a syntactically valid domain name: LDH labels of 1..63 octets,
 * no label starting or ending with '-', at most 253 octets, no trailing
 * dot, and a last label that is not all digits (so "192.0.2.1" is not
 * mistaken for a name, RFC 3696 §2).
 */
static int
valid_domain(const char *s)
{
	size_t len = strlen(s), label = 0;
	int all_digits = 1;
	const char *p;

	if (len == 0 || len > 253)
		return 0;
	for (p = s;; p++) {
		if (*p == '.' || *p == '\0') {
			if (label == 0 || label > 63 || p[-1] == '-')
				return 0;
			if (*p == '\0')
				break;
			label = 0;
			all_digits = 1;
			continue;
		}
		if (!is_alnum((unsigned char)*p) && *p != '-')
			return 0;
		if (*p == '-' && label == 0)
			return 0;
		if (!is_digit((unsigned char)*p))
			all_digits = 0;
		label++;
	}
	return !all_digits;
}

/* gethostname(), lowercased; "localhost" if the system has none. */
static char *
default_hostname(void)
{
	char buf[256];

	if (gethostname(buf, sizeof(buf)) != 0 || buf[0] == '\0')
		return xstrdup("localhost");
	buf[sizeof(buf) - 1] = '\0';
	str_lower(buf);
	return xstrdup(buf);
}

/*
 * A node name for [store] node_id: 1..64 letters, digits, '.', '_', '-'.
 * It names this node in the shared database (locks, queue claims), so it
 * is kept to what every host name and every log line can carry.
 */
static int
valid_node_id(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 64)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!is_alnum(c) && c != '.' && c != '_' && c != '-')
			return 0;
	}
	return 1;
}

/* Which family is this literal address, 0 if none; fills buf (16 bytes). */
static int
ip_literal(const char *s, unsigned char *buf)
{
	if (inet_pton(AF_INET, s, buf) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, s, buf) == 1)
		return AF_INET6;
	return 0;
}

/*
 * Call fn on each item of a comma-separated list, trimmed of blanks.  An
 * empty value is an empty list (fn is never called); an empty item ("a,,b",
 * a trailing comma) is an error.  Stops at the first error.
 */
static int
list_foreach(const char *value,
    int (*fn)(const char *item, void *arg, char *why, size_t whylen),
    void *arg, char *why, size_t whylen)
{
	char item[CONFIG_LINE_MAX + 1];
	const char *p = value, *end;
	size_t n;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		return 0;
	for (;;) {
		end = strchr(p, ',');
		n = end ? (size_t)(end - p) : strlen(p);
		while (n > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			n--;
		}
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == 0) {
			snprintf(why, whylen, "\"%s\" has an empty entry", value);
			return -1;
		}
		if (n >= sizeof(item)) {
			snprintf(why, whylen, "\"%.40s...\" is too long", p);
			return -1;
		}
		memcpy(item, p, n);
		item[n] = '\0';
		if (fn(item, arg, why, whylen) != 0)
			return -1;
		if (end == NULL)
			return 0;
		p = end + 1;
	}
}

/* ------------------------------------------------------------------ */
/* Numbers, sizes, durations                                            */

/*
 * Split s into a run of decimal digits and what follows.  Returns NULL and
 * fills *v, or a reason ("is not a number", "is too large") for why.
 * *rest points at the first byte after the digits.
 */
static const char *
parse_digits(const char *s, uint64_t *v, const char **rest)
{
	uint64_t n = 0;
	const char *p;

	for (p = s; is_digit((unsigned char)*p); p++) {
		if (__builtin_mul_overflow(n, 10, &n) ||
		    __builtin_add_overflow(n, (uint64_t)(*p - '0'), &n))
			return "is too large";
	}
	if (p == s)
		return "is not a number";
	*v = n;
	*rest = p;
	return NULL;
}

/*
 * A size: decimal bytes with an optional K, M or G suffix (either case,
 * powers of 1024).  Signs, fractions, blanks and other suffixes are refused.
 * Returns NULL or the reason.
 */
static const char *
size_parse(const char *s, uint64_t *out)
{
	const char *why, *rest;
	uint64_t v, mult = 1;

	if ((why = parse_digits(s, &v, &rest)) != NULL)
		return *s == '\0' ? "is empty" : why;
	switch (*rest) {
	case '\0':
		break;
	case 'K': case 'k':
		mult = 1024;
		break;
	case 'M': case 'm':
		mult = 1024 * 1024;
		break;
	case 'G': case 'g':
		mult = 1024 * 1024 * 1024;
		break;
	default:
		return "has an unknown unit (use K, M or G)";
	}
	if (*rest != '\0' && rest[1] != '\0')
		return "has an unknown unit (use K, M or G)";
	if (__builtin_mul_overflow(v, mult, &v))
		return "is too large";
	*out = v;
	return NULL;
}

/*
 * A duration: a number with s, m, h or d.  A bare number is taken as
 * seconds: it is what every administrator means by "timeout = 30", and
 * refusing it would only annoy.  Returns NULL or the reason.
 */
static const char *
duration_parse(const char *s, unsigned *out)
{
	const char *why, *rest;
	uint64_t v, mult = 1;

	if ((why = parse_digits(s, &v, &rest)) != NULL)
		return *s == '\0' ? "is empty" : why;
	switch (*rest) {
	case '\0': case 's': case 'S':
		break;
	case 'm': case 'M':
		mult = 60;
		break;
	case 'h': case 'H':
		mult = 3600;
		break;
	case 'd': case 'D':
		mult = DAY;
		break;
	default:
		return "has an unknown unit (use s, m, h or d)";
	}
	if (*rest != '\0' && rest[1] != '\0')
		return "has an unknown unit (use s, m, h or d)";
	if (__builtin_mul_overflow(v, mult, &v) || v > UINT_MAX)
		return "is too large";
	*out = (unsigned)v;
	return NULL;
}

int
config_parse_size(const char *s, uint64_t *out)
{
	return size_parse(s, out) == NULL ? 0 : -1;
}

int
config_parse_duration(const char *s, unsigned *out)
{
	return duration_parse(s, out) == NULL ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* Value parsers, one per kind of key                                   */

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
 * argument splitting; an absolute path keeps PATH out of it.
 */
static int
parse_command(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	if (value[0] != '\0' && value[0] != '/') {
		snprintf(why, whylen, "\"%s\" is not an absolute path", value);
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
	if (!valid_domain(value)) {
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
	size_t i, n = strlen(value);

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)value[i];

		if (!is_alnum(c) && c != '.' && c != '_' && c != '-')
			break;
	}
	if (i < n || n > 32 || value[0] == '-') {
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
	size_t i, n = strlen(value);

	if (n == 0) {
		snprintf(why, whylen, "is empty");
		return -1;
	}
	for (i = 0; i < n; i++) {
		char c = value[i];

		if (!(c >= 'a' && c <= 'z') && !is_digit(c) && c != '.' &&
		    c != '_' && c != '-')
			break;
	}
	if (i < n || n > 64) {
		snprintf(why, whylen, "\"%s\" is not a valid login", value);
		return -1;
	}
	set_string(field, value);
	return 0;
}

/* One item of public_addresses: a literal address, stored canonical. */
static int
address_item(const char *item, void *arg, char *why, size_t whylen)
{
	unsigned char a[16];
	char canon[INET6_ADDRSTRLEN];
	int family;

	if ((family = ip_literal(item, a)) == 0) {
		snprintf(why, whylen, "\"%s\" is not an IP address", item);
		return -1;
	}
	if (inet_ntop(family, a, canon, sizeof(canon)) == NULL)
		fatal("inet_ntop failed on a parsed address");
	strlist_add(arg, canon);
	return 0;
}

static int
parse_addresses(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	struct strlist l = { NULL, 0 }, *dst = field;

	if (list_foreach(value, address_item, &l, why, whylen) != 0) {
		strlist_clear(&l);
		return -1;
	}
	strlist_clear(dst);
	*dst = l;
	return 0;
}

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

	if (strcmp(value, "tls-or-loopback") == 0)
		*p = PLAINTEXT_TLS_OR_LOOPBACK;
	else if (strcmp(value, "always") == 0)
		*p = PLAINTEXT_ALWAYS;
	else if (strcmp(value, "never-without-tls") == 0)
		*p = PLAINTEXT_NEVER_WITHOUT_TLS;
	else {
		snprintf(why, whylen, "\"%s\" is not a known policy", value);
		return -1;
	}
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
		while (w > s && (is_alnum((unsigned char)w[-1]) || w[-1] == '_')) {
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
		*(char **)field = default_hostname();
		return 0;
	}
	if (!valid_node_id(value)) {
		snprintf(why, whylen, "\"%s\" is not a valid node name", value);
		return -1;
	}
	set_string(field, value);
	return 0;
}

/*
 * speech_voice: an espeak-ng voice name ("en", "en-us", "en+f3").  Only
 * name characters are allowed, so it can never be read as a path.
 */
static int
parse_voice(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	size_t i, n = strlen(value);

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)value[i];

		if (!is_alnum(c) && c != '-' && c != '_' && c != '+')
			break;
	}
	if (n == 0 || n > 40 || i < n) {
		snprintf(why, whylen, "\"%s\" is not a voice name", value);
		return -1;
	}
	set_string(field, value);
	return 0;
}

/* Counts: unsigned, within [min, max]. */
static int
parse_count(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	const char *reason, *rest;
	uint64_t v;

	if ((reason = parse_digits(value, &v, &rest)) == NULL && *rest != '\0')
		reason = "is not a number";
	if (reason == NULL && (v < k->min || v > k->max))
		reason = "is out of range";
	if (reason != NULL) {
		snprintf(why, whylen, "\"%s\" %s", value, reason);
		return -1;
	}
	*(unsigned *)field = (unsigned)v;
	return 0;
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
parse_size_key(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	const char *reason;
	uint64_t v;

	if ((reason = size_parse(value, &v)) == NULL &&
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
parse_duration_key(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	const char *reason;
	unsigned v;

	if ((reason = duration_parse(value, &v)) == NULL &&
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
/* Endpoints                                                            */

struct endpoint_list_arg {
	struct config_endpoints list;
	int dns;	/* dns.servers: literal IPs only, port optional (53) */
};

/*
 * One "host:port" or "[v6]:port" item.  For dns.servers the port may be
 * left out, and then a bare IPv6 address needs no brackets either.  The
 * host is stored without brackets; a name is lowercased.
 */
static int
endpoint_item(const char *item, void *argp, char *why, size_t whylen)
{
	struct endpoint_list_arg *arg = argp;
	struct config_endpoint ep;
	unsigned char a[16];
	const char *host = item, *port = NULL, *close, *colon;
	size_t hostlen;
	int bracketed = 0;
	uint64_t v;

	memset(&ep, 0, sizeof(ep));
	if (item[0] == '[') {
		if ((close = strchr(item, ']')) == NULL) {
			snprintf(why, whylen, "\"%s\" lacks the closing ']'", item);
			return -1;
		}
		host = item + 1;
		hostlen = (size_t)(close - host);
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0') {
			snprintf(why, whylen, "\"%s\" has text after ']'", item);
			return -1;
		}
		bracketed = 1;
	} else if ((colon = strrchr(item, ':')) != NULL &&
	    colon != strchr(item, ':')) {
		/* Two colons or more: an IPv6 address without brackets. */
		if (!arg->dns || inet_pton(AF_INET6, item, a) != 1) {
			snprintf(why, whylen, "\"%s\": write an IPv6 address in "
			    "brackets, as [2001:db8::1]:25", item);
			return -1;
		}
		hostlen = strlen(item);
	} else if (colon != NULL) {
		hostlen = (size_t)(colon - item);
		port = colon + 1;
	} else
		hostlen = strlen(item);

	if (hostlen == 0) {
		snprintf(why, whylen, "\"%s\" has no host", item);
		return -1;
	}
	if (hostlen >= sizeof(ep.host)) {
		snprintf(why, whylen, "\"%.40s...\" has a host name that is "
		    "too long", item);
		return -1;
	}
	memcpy(ep.host, host, hostlen);
	ep.host[hostlen] = '\0';

	if (bracketed) {
		if (inet_pton(AF_INET6, ep.host, a) != 1) {
			snprintf(why, whylen, "\"%s\" is not an IPv6 address "
			    "in brackets", item);
			return -1;
		}
	} else if (arg->dns) {
		if (ip_literal(ep.host, a) == 0) {
			snprintf(why, whylen, "\"%s\" is not an IP address",
			    ep.host);
			return -1;
		}
	} else if (inet_pton(AF_INET, ep.host, a) != 1) {
		if (!valid_domain(ep.host)) {
			snprintf(why, whylen, "\"%s\" is neither an IPv4 "
			    "address nor a host name", ep.host);
			return -1;
		}
		str_lower(ep.host);
	}

	if (port == NULL) {
		if (!arg->dns) {
			snprintf(why, whylen, "\"%s\" has no port", item);
			return -1;
		}
		ep.port = 53;
	} else if (*port == '\0') {
		snprintf(why, whylen, "\"%s\" has no port", item);
		return -1;
	} else if (parse_uint(port, 65535, &v) != 0 || v == 0) {
		snprintf(why, whylen, "\"%s\" has port \"%s\", not 1..65535",
		    item, port);
		return -1;
	} else
		ep.port = (uint16_t)v;

	arg->list.v = xreallocarray(arg->list.v, arg->list.n + 1,
	    sizeof(*arg->list.v));
	arg->list.v[arg->list.n++] = ep;
	return 0;
}

/* Parse an endpoint list into a new array and swap it in on success. */
static int
endpoints_set(void *field, const char *value, int dns, char *why,
    size_t whylen)
{
	struct endpoint_list_arg arg;
	struct config_endpoints *dst = field;

	memset(&arg, 0, sizeof(arg));
	arg.dns = dns;
	if (list_foreach(value, endpoint_item, &arg, why, whylen) != 0) {
		free(arg.list.v);
		return -1;
	}
	free(dst->v);
	*dst = arg.list;
	return 0;
}

static int
parse_endpoints(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	return endpoints_set(field, value, 0, why, whylen);
}

static int
parse_dns_servers(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	return endpoints_set(field, value, 1, why, whylen);
}

/* ------------------------------------------------------------------ */
/* CIDRs                                                                */

/* Clear the bits of addr beyond prefix. */
static void
cidr_mask(unsigned char *addr, size_t len, unsigned prefix)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (prefix >= 8) {
			prefix -= 8;
			continue;
		}
		addr[i] &= (unsigned char)(0xff00 >> prefix);
		prefix = 0;
	}
}

/* Do the first prefix bits of a and b agree? */
static int
prefix_equal(const unsigned char *a, const unsigned char *b, unsigned prefix)
{
	unsigned bytes = prefix / 8, bits = prefix % 8;
	unsigned char mask;

	if (memcmp(a, b, bytes) != 0)
		return 0;
	if (bits == 0)
		return 1;
	mask = (unsigned char)(0xff00 >> bits);
	return (a[bytes] & mask) == (b[bytes] & mask);
}

static const unsigned char v4mapped_prefix[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

/*
 * One CIDR item.  A bare address is a host (/32, /128); host bits are
 * cleared, so "10.1.2.3/8" is 10.0.0.0/8.  An IPv4-mapped IPv6 block
 * (::ffff:a.b.c.d/96 or longer) is stored as the IPv4 block it means, since
 * config_cidr_match() compares mapped peers as IPv4.
 */
static int
cidr_item(const char *item, void *argp, char *why, size_t whylen)
{
	struct config_cidrs *list = argp;
	struct config_cidr c;
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(item, '/');
	size_t alen = slash ? (size_t)(slash - item) : strlen(item);
	unsigned maxp;
	uint64_t v;

	memset(&c, 0, sizeof(c));
	if (alen >= sizeof(addr)) {
		snprintf(why, whylen, "\"%s\" is not an IP address", item);
		return -1;
	}
	memcpy(addr, item, alen);
	addr[alen] = '\0';
	if ((c.family = ip_literal(addr, c.addr)) == 0) {
		snprintf(why, whylen, "\"%s\" is not an IP address or CIDR", item);
		return -1;
	}
	maxp = c.family == AF_INET ? 32 : 128;
	c.prefix = maxp;
	if (slash != NULL) {
		if (parse_uint(slash + 1, maxp, &v) != 0) {
			snprintf(why, whylen, "\"%s\" has a prefix length "
			    "outside 0..%u", item, maxp);
			return -1;
		}
		c.prefix = (unsigned)v;
	}
	if (c.family == AF_INET6 && c.prefix >= 96 &&
	    memcmp(c.addr, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
		memmove(c.addr, c.addr + 12, 4);
		memset(c.addr + 4, 0, 12);
		c.family = AF_INET;
		c.prefix -= 96;
	}
	cidr_mask(c.addr, sizeof(c.addr), c.prefix);

	list->v = xreallocarray(list->v, list->n + 1, sizeof(*list->v));
	list->v[list->n++] = c;
	return 0;
}

static int
parse_cidrs(const struct key_def *k, void *field, const char *value,
    char *why, size_t whylen)
{
	struct config_cidrs l = { NULL, 0 }, *dst = field;

	if (list_foreach(value, cidr_item, &l, why, whylen) != 0) {
		free(l.v);
		return -1;
	}
	free(dst->v);
	*dst = l;
	return 0;
}

/*
 * Is sa inside one of the blocks?  An IPv4-mapped IPv6 peer (what a
 * dual-stack [::] listener reports for IPv4 clients) is compared as IPv4.
 */
int
config_cidr_match(const struct config_cidrs *c, const struct sockaddr *sa)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	unsigned char a[16];
	int family;
	size_t i;

	if (c == NULL || sa == NULL)
		return 0;
	switch (sa->sa_family) {
	case AF_INET:
		memcpy(&sin, sa, sizeof(sin));
		memcpy(a, &sin.sin_addr, 4);
		family = AF_INET;
		break;
	case AF_INET6:
		memcpy(&sin6, sa, sizeof(sin6));
		if (memcmp(&sin6.sin6_addr, v4mapped_prefix,
		    sizeof(v4mapped_prefix)) == 0) {
			memcpy(a, (unsigned char *)&sin6.sin6_addr + 12, 4);
			family = AF_INET;
		} else {
			memcpy(a, &sin6.sin6_addr, 16);
			family = AF_INET6;
		}
		break;
	default:
		return 0;
	}
	for (i = 0; i < c->n; i++)
		if (c->v[i].family == family &&
		    prefix_equal(a, c->v[i].addr, c->v[i].prefix))
			return 1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Errors                                                               */

/*
 * Record one problem as "NAME:LINE: message" (line 0: "NAME: message").
 * Only the first CONFIG_ERRORS_MAX are kept, so a binary file fed by
 * mistake cannot make us build megabytes of messages.
 */
static void __attribute__((format(printf, 3, 4)))
config_error(struct load_ctx *ctx, int line, const char *fmt, ...)
{
	va_list ap;
	char *msg, *full;
	int n;

	ctx->nerrors++;
	if (ctx->errors.n >= CONFIG_ERRORS_MAX)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		fatal("cannot format a config error");
	msg = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(msg, (size_t)n + 1, fmt, ap);
	va_end(ap);
	if (line > 0)
		full = xasprintf("%s:%d: %s", ctx->name, line, msg);
	else
		full = xasprintf("%s: %s", ctx->name, msg);
	strlist_add(&ctx->errors, full);
	free(full);
	free(msg);
}

/*
 * Copy the collected errors into err, one a line, without a final
 * newline.  When they do not all fit, as many whole lines as fit are kept
 * and a last line says how many were left out.
 */
static void
config_errors_out(const struct load_ctx *ctx, char *err, size_t errlen)
{
	const struct strlist *e = &ctx->errors;
	size_t i, k, used, left, *prefix;
	char note[64];
	int nlen = 0, fits = 0;

	if (err == NULL || errlen == 0)
		return;
	err[0] = '\0';
	if (ctx->nerrors == 0)
		return;
	/* prefix[k]: bytes taken by the first k lines joined with '\n'. */
	prefix = xcalloc(e->n + 1, sizeof(*prefix));
	for (i = 0; i < e->n; i++)
		prefix[i + 1] = prefix[i] + (i ? 1 : 0) + strlen(e->v[i]);
	/* Keep the most lines k that fit with the note about the rest. */
	for (k = e->n;; k--) {
		left = ctx->nerrors - k;
		nlen = 0;
		note[0] = '\0';
		if (left > 0)
			nlen = snprintf(note, sizeof(note),
			    "%s(%zu more error%s not shown)", k ? "\n" : "",
			    left, left == 1 ? "" : "s");
		fits = prefix[k] + (size_t)nlen < errlen;
		if (fits || k == 0)
			break;
	}
	if (!fits) {
		/* Not even the note fits: cut the first line instead. */
		snprintf(err, errlen, "%s", e->v[0]);
		free(prefix);
		return;
	}
	used = 0;
	for (i = 0; i < k; i++) {
		if (i)
			err[used++] = '\n';
		memcpy(err + used, e->v[i], strlen(e->v[i]));
		used += strlen(e->v[i]);
	}
	memcpy(err + used, note, (size_t)nlen);
	err[used + (size_t)nlen] = '\0';
	free(prefix);
}

/* "general, tls, ..." or the keys of one section, for messages. */
static char *
names_joined(const struct section_def *s)
{
	size_t i, n = s ? s->nkeys : ARRAY_SIZE(sections), len = 1;
	char *out;

	for (i = 0; i < n; i++)
		len += strlen(s ? s->keys[i].name : sections[i].name) + 2;
	out = xmalloc(len);
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		if (i)
			strcat(out, ", ");
		strcat(out, s ? s->keys[i].name : sections[i].name);
	}
	return out;
}

/* ------------------------------------------------------------------ */
/* Reading lines for inih                                               */

/*
 * Position of the first '=' or ':' in line[0..n), as inih will find it:
 * an inline comment (';' after a blank) ends the search.  -1 if none.
 */
static ssize_t
find_separator(const char *line, size_t n, const char *chars)
{
	size_t i;
	int was_blank = 0;

	for (i = 0; i < n; i++) {
		if (strchr(chars, line[i]) != NULL)
			return (ssize_t)i;
		if (was_blank && line[i] == ';')
			return -1;
		was_blank = line[i] == ' ' || line[i] == '\t';
	}
	return -1;
}

/*
 * A "[section]" line (line[0] == '[', trimmed, n > 0): check its form,
 * look the name up (case-insensitively) and make it the current section.
 * A bad header makes the section BAD, so the keys under it are skipped
 * rather than reported once each.
 */
static void
config_section_line(struct load_ctx *ctx, const char *line, size_t n)
{
	ssize_t close = find_separator(line + 1, n - 1, "]");
	const char *name, *after;
	size_t namelen, i;
	char *known;

	ctx->state = SECTION_BAD;
	if (close < 0) {
		config_error(ctx, ctx->lineno, "missing ']' in section header");
		return;
	}
	name = line + 1;
	namelen = (size_t)close;
	after = name + namelen + 1;
	while (after < line + n && (*after == ' ' || *after == '\t'))
		after++;
	if (after < line + n && *after != ';' && *after != '#') {
		config_error(ctx, ctx->lineno, "unexpected text after "
		    "section header [%.*s]", (int)namelen, name);
		return;
	}
	while (namelen > 0 && (*name == ' ' || *name == '\t')) {
		name++;
		namelen--;
	}
	while (namelen > 0 && (name[namelen - 1] == ' ' ||
	    name[namelen - 1] == '\t'))
		namelen--;
	for (i = 0; i < ARRAY_SIZE(sections); i++) {
		if (strlen(sections[i].name) == namelen &&
		    strncasecmp(sections[i].name, name, namelen) == 0) {
			ctx->state = SECTION_KNOWN;
			ctx->section = i;
			return;
		}
	}
	known = names_joined(NULL);
	config_error(ctx, ctx->lineno, "[%.*s]: unknown section; known "
	    "sections: %s", (int)namelen, name, known);
	free(known);
}

/*
 * The ini_reader: hand inih the next line of ctx->text, fgets-style, in
 * str (num bytes).  Lines are counted here, so ctx->lineno is the line of
 * the key when inih calls the handler (it does so before reading on).
 * Everything refused, every comment and every section header reaches inih
 * as a blank line; key lines reach it trimmed, so never as continuations.
 */
static char *
config_reader(char *str, int num, void *stream)
{
	struct load_ctx *ctx = stream;
	const char *line, *eol;
	size_t n, i, limit;
	ssize_t sep;

	if (ctx->pos >= ctx->len)
		return NULL;
	if (num < 3)
		fatal("inih passed a line buffer of %d bytes", num);
	line = ctx->text + ctx->pos;
	eol = memchr(line, '\n', ctx->len - ctx->pos);
	n = eol ? (size_t)(eol - line) : ctx->len - ctx->pos;
	ctx->pos += n + (eol != NULL);
	ctx->lineno++;
	str[0] = '\n';
	str[1] = '\0';

	if (n > 0 && line[n - 1] == '\r')
		n--;
	if (ctx->lineno == 1 && n >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
		line += 3;
		n -= 3;
	}
	limit = CONFIG_LINE_MAX;
	if ((size_t)num - 2 < limit)
		limit = (size_t)num - 2;
	if (n > limit) {
		config_error(ctx, ctx->lineno, "line is longer than %zu "
		    "characters", limit);
		return str;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)line[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			config_error(ctx, ctx->lineno, "control character "
			    "0x%02x in line", c);
			return str;
		}
	}
	while (n > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		n--;
	}
	while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
		n--;
	if (n == 0 || *line == ';' || *line == '#')
		return str;
	if (*line == '[') {
		config_section_line(ctx, line, n);
		return str;
	}
	if ((sep = find_separator(line, n, "=:")) < 0) {
		config_error(ctx, ctx->lineno, "expected \"key = value\" or "
		    "\"[section]\"");
		return str;
	}
	if (sep == 0) {
		config_error(ctx, ctx->lineno, "missing key name before '%c'",
		    line[0]);
		return str;
	}
	memcpy(str, line, n);
	str[n] = '\n';
	str[n + 1] = '\0';
	return str;
}

/*
 * The ini_handler: one "key = value" on line ctx->lineno.  The section
 * comes from the reader's own tracking, not from inih (which also cuts
 * long names).  Always returns 1: every error is reported here.
 */
static int
config_handler(void *user, const char *section, const char *name,
    const char *value)
{
	struct load_ctx *ctx = user;
	const struct section_def *s;
	const struct key_def *k = NULL;
	char why[CONFIG_WHY_MAX], *known;
	size_t i;
	int *set;

	if (ctx->state == SECTION_BAD)
		return 1;
	if (ctx->state == SECTION_NONE) {
		known = names_joined(NULL);
		config_error(ctx, ctx->lineno, "%s: key before any [section]; "
		    "known sections: %s", name, known);
		free(known);
		return 1;
	}
	s = &sections[ctx->section];
	for (i = 0; i < s->nkeys; i++) {
		if (strcasecmp(s->keys[i].name, name) == 0) {
			k = &s->keys[i];
			break;
		}
	}
	if (k == NULL) {
		known = names_joined(s);
		config_error(ctx, ctx->lineno, "[%s] %s: unknown key; known "
		    "keys: %s", s->name, name, known);
		free(known);
		return 1;
	}
	set = &ctx->set_line[ctx->section][i];
	if (*set != 0) {
		config_error(ctx, ctx->lineno, "[%s] %s: already set on line "
		    "%d; give each key once", s->name, k->name, *set);
		return 1;
	}
	*set = ctx->lineno;
	why[0] = '\0';
	if (k->parse(k, (char *)ctx->cfg + k->offset, value, why,
	    sizeof(why)) != 0)
		config_error(ctx, ctx->lineno, "[%s] %s: %s; allowed: %s",
		    s->name, k->name, why, k->allowed);
	return 1;
}

/* ------------------------------------------------------------------ */
/* Loading                                                              */

/*
 * Fill cfg with the defaults.  cfg need not be initialised; a cfg that
 * holds a loaded configuration must be config_free()d first.
 */
static void
config_defaults(struct umbox_config *cfg)
{
	char why[CONFIG_WHY_MAX];
	size_t i, j;

	memset(cfg, 0, sizeof(*cfg));
	for (i = 0; i < ARRAY_SIZE(sections); i++) {
		for (j = 0; j < sections[i].nkeys; j++) {
			const struct key_def *k = &sections[i].keys[j];

			if (k->def == NULL)
				continue;
			if (k->parse(k, (char *)cfg + k->offset, k->def, why,
			    sizeof(why)) != 0)
				fatal("default of [%s] %s is invalid: %s",
				    sections[i].name, k->name, why);
		}
	}
	cfg->general.hostname = default_hostname();
	cfg->store.node_id = default_hostname();
}

static void
ctx_init(struct load_ctx *ctx, struct umbox_config *cfg, const char *name)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->cfg = cfg;
	ctx->name = name;
}

/* Index of the key name in section s, for set_line[]; fatal if absent. */
static size_t
key_index(size_t s, const char *name)
{
	size_t i;

	for (i = 0; i < sections[s].nkeys; i++)
		if (strcmp(sections[s].keys[i].name, name) == 0)
			return i;
	fatal("config: no key %s in [%s]", name, sections[s].name);
}

static size_t
section_index(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(sections); i++)
		if (strcmp(sections[i].name, name) == 0)
			return i;
	fatal("config: no section [%s]", name);
}

/*
 * Checks that involve more than one key or the environment, done after
 * the whole file: retry_max below retry_initial, and a system host name
 * that cannot serve as the default hostname, or as the default node_id
 * of a PostgreSQL node.
 */
static void
config_check(struct load_ctx *ctx)
{
	struct umbox_config *cfg = ctx->cfg;
	size_t q = section_index("queue"), g = section_index("general");
	size_t st = section_index("store");
	int line;

	if (cfg->queue.retry_max < cfg->queue.retry_initial) {
		line = ctx->set_line[q][key_index(q, "retry_max")];
		if (line == 0)
			line = ctx->set_line[q][key_index(q, "retry_initial")];
		config_error(ctx, line, "[queue] retry_max: %us is less than "
		    "retry_initial (%us); allowed: retry_initial..30d",
		    cfg->queue.retry_max, cfg->queue.retry_initial);
	}
	if (ctx->set_line[g][key_index(g, "hostname")] == 0 &&
	    !valid_domain(cfg->general.hostname))
		config_error(ctx, 0, "[general] hostname: the system host "
		    "name \"%s\" is not a valid domain name; set hostname",
		    cfg->general.hostname);
	/* An explicit node_id was checked by its parser. */
	if (cfg->store.backend == CONFIG_BACKEND_POSTGRESQL &&
	    !valid_node_id(cfg->store.node_id)) {
		line = ctx->set_line[st][key_index(st, "node_id")];
		if (line == 0)
			line = ctx->set_line[st][key_index(st, "backend")];
		config_error(ctx, line, "[store] node_id: the system host "
		    "name \"%s\" is not a valid node name; set node_id",
		    cfg->store.node_id);
	}
}

/* Run the cross-key checks, hand the errors out, release ctx. */
static int
config_finish(struct load_ctx *ctx, char *err, size_t errlen)
{
	int rc;

	config_check(ctx);
	config_errors_out(ctx, err, errlen);
	rc = ctx->nerrors ? -1 : 0;
	strlist_clear(&ctx->errors);
	return rc;
}

/* Parse text[0..len) into ctx->cfg (which holds the defaults). */
static void
config_parse(struct load_ctx *ctx, const char *text, size_t len)
{
	int rc;

	ctx->text = text;
	ctx->len = len;
	ctx->pos = 0;
	rc = ini_parse_stream(config_reader, ctx, config_handler, ctx);
	if (rc == -2)
		fatal("out of memory in ini_parse_stream");
	/* The reader should have caught everything inih could object to. */
	if (rc != 0 && ctx->nerrors == 0)
		config_error(ctx, rc > 0 ? rc : 0, "syntax error");
}

/*
 * Read the whole file at path into a new buffer.  Returns 0, or an errno
 * value (EFBIG past CONFIG_FILE_MAX).
 */
static int
read_file(const char *path, char **out, size_t *outlen)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	ssize_t r;
	int fd, e;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
		return errno;
	for (;;) {
		if (len == cap) {
			if (cap > CONFIG_FILE_MAX) {
				e = EFBIG;
				goto fail;
			}
			cap = cap ? cap * 2 : 4096;
			if (cap > CONFIG_FILE_MAX + 1)
				cap = CONFIG_FILE_MAX + 1;
			buf = xreallocarray(buf, cap, 1);
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			e = errno;
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	*out = buf;
	*outlen = len;
	return 0;
fail:
	close(fd);
	free(buf);
	return e;
}

int
config_load(struct umbox_config *cfg, const char *path, int missing_ok,
    char *err, size_t errlen)
{
	struct load_ctx ctx;
	char *text = NULL;
	size_t len = 0;
	int e;

	config_defaults(cfg);
	ctx_init(&ctx, cfg, path ? path : "(defaults)");
	if (path == NULL)
		return config_finish(&ctx, err, errlen);
	if ((e = read_file(path, &text, &len)) != 0) {
		if (e == ENOENT && missing_ok)
			return config_finish(&ctx, err, errlen);
		if (e == EFBIG)
			config_error(&ctx, 0, "cannot read: the file is larger "
			    "than %d bytes", CONFIG_FILE_MAX);
		else
			config_error(&ctx, 0, "cannot read: %s", strerror(e));
		return config_finish(&ctx, err, errlen);
	}
	cfg->path = xstrdup(path);
	config_parse(&ctx, text, len);
	free(text);
	return config_finish(&ctx, err, errlen);
}

int
config_load_string(struct umbox_config *cfg, const char *text,
    const char *name, char *err, size_t errlen)
{
	struct load_ctx ctx;

	if (name == NULL)
		name = "(string)";
	config_defaults(cfg);
	cfg->path = xstrdup(name);
	ctx_init(&ctx, cfg, cfg->path);
	config_parse(&ctx, text, strlen(text));
	return config_finish(&ctx, err, errlen);
}

void
config_free(struct umbox_config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->general.hostname);
	free(cfg->general.data_dir);
	free(cfg->general.user);
	strlist_clear(&cfg->general.public_addresses);
	free(cfg->general.postmaster);
	free(cfg->store.dsn);
	free(cfg->store.node_id);
	free(cfg->tls.certificate);
	free(cfg->tls.key);
	free(cfg->smtpd.listen.v);
	free(cfg->smtpd.submission.v);
	free(cfg->smtpd.smtps.v);
	free(cfg->smtpd.trusted_networks.v);
	free(cfg->pop3d.listen.v);
	free(cfg->pop3d.pop3s.v);
	free(cfg->queue.srs_secret);
	free(cfg->dns.servers.v);
	free(cfg->voicemail.mwi_command);
	free(cfg->voicemail.speech_voice);
	memset(cfg, 0, sizeof(*cfg));
}

/* DATA_DIR/store.db, without doubling a trailing slash. */
char *
config_store_path(const struct umbox_config *cfg)
{
	const char *d = cfg->general.data_dir;
	size_t n = strlen(d);

	return xasprintf("%s%sstore.db", d, n > 0 && d[n - 1] == '/' ? "" : "/");
}
