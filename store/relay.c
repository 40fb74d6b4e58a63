/*
 * relay.c - the public relay API: dispatch to the backend, the rules a
 * relay must follow whatever the backend, names of TLS modes and
 * mechanisms, and the free functions.
 */
#include "store/backend.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const tls_names[] = {
	[STORE_TLS_AUTO] = "auto",
	[STORE_TLS_STARTTLS] = "starttls",
	[STORE_TLS_IMPLICIT] = "implicit",
	[STORE_TLS_NONE] = "none",
};

static const char *const auth_names[] = {
	[STORE_AUTH_AUTO] = "auto",
	[STORE_AUTH_PLAIN] = "plain",
	[STORE_AUTH_LOGIN] = "login",
	[STORE_AUTH_CRAM_MD5] = "cram-md5",
	[STORE_AUTH_NONE] = "none",
};

const char *
store_relay_tls_name(enum store_relay_tls tls)
{
	return (unsigned)tls < ARRAY_SIZE(tls_names) ? tls_names[tls] : "?";
}

const char *
store_relay_auth_name(enum store_relay_auth auth)
{
	return (unsigned)auth < ARRAY_SIZE(auth_names) ? auth_names[auth] : "?";
}

int
store_relay_tls_parse(const char *name, enum store_relay_tls *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(tls_names); i++)
		if (strcasecmp(name, tls_names[i]) == 0) {
			*out = (enum store_relay_tls)i;
			return 0;
		}
	return -1;
}

int
store_relay_auth_parse(const char *name, enum store_relay_auth *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(auth_names); i++)
		if (strcasecmp(name, auth_names[i]) == 0) {
			*out = (enum store_relay_auth)i;
			return 0;
		}
	return -1;
}

unsigned
store_relay_default_port(enum store_relay_tls tls)
{
	return tls == STORE_TLS_IMPLICIT ? STORE_RELAY_PORT_IMPLICIT : STORE_RELAY_PORT_SMTP;
}

void
store_relay_init(struct store_relay *r)
{
	memset(r, 0, sizeof(*r));
	r->active = 1;
	r->tls = STORE_TLS_AUTO;
	r->verify = 1;
	r->auth = STORE_AUTH_AUTO;
	r->timeout = STORE_RELAY_TIMEOUT_DEFAULT;
	r->chunking = 1;
}

int
store_relay_valid_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > STORE_RELAY_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9');

		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
			return 0;
	}
	return 1;
}

/* Printable ASCII or UTF-8, no space unless allowed, 1..max bytes. */
static int
relay_text_ok(const char *v, size_t max, int spaces)
{
	size_t n = strlen(v);

	if (n == 0 || n > max)
		return 0;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p < 0x20 || *p == 0x7f || (*p == ' ' && !spaces))
			return 0;
	return 1;
}

/*
 * The rules every relay follows: the values are sane one by one (no
 * control characters anywhere, since they go into SMTP commands and
 * logs), and together: credentials come in pairs, and a mechanism named
 * explicitly has an account to use.
 */
int
store_relay_check(struct store *s, const struct store_relay *r)
{
	if (r->name == NULL || !store_relay_valid_name(r->name))
		return store_fail(s, STORE_INVALID, "relay name %s: use up to %d of a-z 0-9 . _ -,"
		    " starting with a letter or digit", r->name ? r->name : "(none)",
		    STORE_RELAY_NAME_MAX);
	if (r->host == NULL || !relay_text_ok(r->host, 255, 0))
		return store_fail(s, STORE_INVALID, "relay %s: a host name or address is needed",
		    r->name);
	if (r->port > 65535)
		return store_fail(s, STORE_INVALID, "relay %s: port %u is out of range", r->name,
		    r->port);
	if ((unsigned)r->tls >= ARRAY_SIZE(tls_names) || (unsigned)r->auth >= ARRAY_SIZE(auth_names))
		return store_fail(s, STORE_INVALID, "relay %s: unknown TLS mode or mechanism", r->name);
	if (r->timeout < 1 || r->timeout > STORE_RELAY_TIMEOUT_MAX)
		return store_fail(s, STORE_INVALID, "relay %s: the timeout must be 1 to %d seconds",
		    r->name, STORE_RELAY_TIMEOUT_MAX);
	if (r->domains.n > STORE_RELAY_DOMAINS_MAX)
		return store_fail(s, STORE_INVALID, "relay %s: more than %d domains", r->name,
		    STORE_RELAY_DOMAINS_MAX);
	for (size_t i = 0; i < r->domains.n; i++)
		if (!relay_text_ok(r->domains.v[i], 255, 0) || strchr(r->domains.v[i], '@'))
			return store_fail(s, STORE_INVALID, "relay %s: bad domain %s", r->name,
			    r->domains.v[i]);
	if (r->account && !relay_text_ok(r->account, STORE_RELAY_ACCOUNT_MAX, 1))
		return store_fail(s, STORE_INVALID, "relay %s: the account must be 1 to %d bytes"
		    " without control characters", r->name, STORE_RELAY_ACCOUNT_MAX);
	if (r->password && !relay_text_ok(r->password, STORE_RELAY_PASSWORD_MAX, 1))
		return store_fail(s, STORE_INVALID, "relay %s: the password must be 1 to %d bytes"
		    " without control characters", r->name, STORE_RELAY_PASSWORD_MAX);
	if ((r->account == NULL) != (r->password == NULL))
		return store_fail(s, STORE_INVALID, "relay %s: an account needs a password and a"
		    " password an account", r->name);
	if (r->account == NULL && (r->auth == STORE_AUTH_PLAIN || r->auth == STORE_AUTH_LOGIN ||
	    r->auth == STORE_AUTH_CRAM_MD5))
		return store_fail(s, STORE_INVALID, "relay %s: auth %s needs an account and a"
		    " password", r->name, store_relay_auth_name(r->auth));
	if (r->sender && !relay_text_ok(r->sender, 256, 0))
		return store_fail(s, STORE_INVALID, "relay %s: bad sender %s", r->name, r->sender);
	return STORE_OK;
}

static void
relay_replace(char **field, const char *v)
{
	if (*field)
		explicit_bzero(*field, strlen(*field));
	free(*field);
	*field = v ? xstrdup(v) : NULL;
}

void
store_relay_merge(struct store_relay *cur, const struct store_relay *r, unsigned fields)
{
	if (fields & STORE_RELAY_HOST)
		relay_replace(&cur->host, r->host);
	if (fields & STORE_RELAY_PORT) {
		cur->port_given = r->port != 0;
		cur->port = r->port;
	}
	if (fields & STORE_RELAY_DOMAINS) {
		strlist_clear(&cur->domains);
		for (size_t i = 0; i < r->domains.n; i++)
			strlist_add(&cur->domains, r->domains.v[i]);
	}
	if (fields & STORE_RELAY_DEFAULT)
		cur->is_default = r->is_default;
	if (fields & STORE_RELAY_ACTIVE)
		cur->active = r->active;
	if (fields & STORE_RELAY_TLS)
		cur->tls = r->tls;
	if (fields & STORE_RELAY_VERIFY)
		cur->verify = r->verify;
	if (fields & STORE_RELAY_AUTH)
		cur->auth = r->auth;
	if (fields & STORE_RELAY_ACCOUNT)
		relay_replace(&cur->account, r->account);
	if (fields & STORE_RELAY_PASSWORD)
		relay_replace(&cur->password, r->password);
	if (fields & STORE_RELAY_SENDER)
		relay_replace(&cur->sender, r->sender);
	if (fields & STORE_RELAY_TIMEOUT)
		cur->timeout = r->timeout;
	if (fields & STORE_RELAY_CHUNKING)
		cur->chunking = r->chunking;
	/* What is written: a port that follows the TLS mode is kept as 0. */
	if (!cur->port_given)
		cur->port = 0;
}

int
store_relay_add(struct store *s, const struct store_relay *r)
{
	return s->be->relay_add(s, r);
}

int
store_relay_set(struct store *s, const char *name, const struct store_relay *r,
    unsigned fields)
{
	return s->be->relay_set(s, name, r, fields);
}

int
store_relay_del(struct store *s, const char *name)
{
	return s->be->relay_del(s, name);
}

int
store_relay_get(struct store *s, const char *name, struct store_relay *out)
{
	memset(out, 0, sizeof(*out));
	return s->be->relay_get(s, name, out);
}

int
store_relay_list(struct store *s, struct store_relay **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	return s->be->relay_list(s, out, n);
}

int
store_relay_for_domain(struct store *s, const char *domain, struct store_relay *out)
{
	char *lower = xstrdup(domain);
	int status;

	memset(out, 0, sizeof(*out));
	str_lower(lower);
	status = s->be->relay_route(s, lower, out);
	free(lower);
	return status;
}

void
store_relay_clear(struct store_relay *r)
{
	free(r->name);
	free(r->host);
	strlist_clear(&r->domains);
	free(r->account);
	if (r->password) {
		explicit_bzero(r->password, strlen(r->password));
		free(r->password);
	}
	free(r->sender);
	memset(r, 0, sizeof(*r));
}

void
store_relay_list_free(struct store_relay **v, size_t n)
{
	for (size_t i = 0; *v && i < n; i++)
		store_relay_clear(&(*v)[i]);
	xfree(v);
}
