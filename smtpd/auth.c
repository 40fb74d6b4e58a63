/*
 * auth.c - SMTP AUTH PLAIN and LOGIN (RFC 4954).
 *
 * Passwords are checked off the loop (aliases/login.c).  A failure is answered only after a delay that grows with the client
 * address's recent failures; the third failure in a session ends it.
 */
#include "smtpd/smtpd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/log.h"
#include "aliases/login.h"

#define AUTH_PLAIN	1
#define AUTH_LOGIN	2

static void
auth_failed_reply(struct conn *c)
{
	struct smtp_session *s = (struct smtp_session *)c;

	smtp_reply(s, "535 5.7.8 Error: authentication failed");
	if (s->auth_failures >= SMTP_AUTH_FAILURES_MAX) {
		smtp_reply(s, "421 4.7.0 %s Error: too many authentication failures",
		    s->server->cfg->general.hostname);
		conn_close(&s->c);
		return;
	}
	smtp_resume(s);
}

/* Answered after the address's delay, which this failure doubles. */
static void
auth_failed(struct smtp_session *s)
{
	s->auth_failures++;
	conn_set_timer(&s->c, ip_auth_failed(&s->server->ips, s->c.ip),
	    auth_failed_reply);
}

static void
auth_checked(void *arg, int ok, struct store_user *user)
{
	struct smtp_session *s = arg;

	s->login = NULL;
	if (ok < 0) {
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
		smtp_resume(s);
		return;
	}
	if (ok) {
		log_info("%s: authenticated as %s", s->c.id, user->login);
		s->user = xcalloc(1, sizeof(*s->user));
		*s->user = *user;
		smtp_reply(s, "235 2.7.0 Authentication successful");
		smtp_resume(s);
		return;
	}
	log_info("%s: authentication failed", s->c.id);
	auth_failed(s);
}

/* The exchange ends without a verdict: what follows is a command again. */
static void
auth_end(struct smtp_session *s, const char *reply)
{
	free(s->auth_login);
	s->auth_login = NULL;
	smtp_set_state(s, SMTP_S_READY);
	smtp_reply(s, "%s", reply);
}

/* Check login/password off the loop; the session waits. */
static void
auth_check(struct smtp_session *s, const char *login, const char *password)
{
	smtp_set_state(s, SMTP_S_READY);
	s->login = login_check_start(s->loop->workers, s->loop->readers, login, password,
	    s->server->dummy_hash, auth_checked, s);
	conn_wait(&s->c);
}

static void
auth_plain(struct smtp_session *s, const char *b64, size_t len)
{
	struct sasl_plain p;

	if (sasl_plain_decode(b64, len, &p) != 0) {
		auth_end(s, "501 5.5.2 Error: invalid PLAIN response");
		return;
	}
	/* Acting for someone else (a different authzid) is not offered. */
	if (p.authzid[0] && strcasecmp(p.authzid, p.authcid) != 0) {
		explicit_bzero(&p, sizeof(p));
		log_info("%s: authentication failed (authorization identity refused)", s->c.id);
		smtp_set_state(s, SMTP_S_READY);
		conn_wait(&s->c);
		auth_failed(s);
		return;
	}
	auth_check(s, p.authcid, p.password);
	explicit_bzero(&p, sizeof(p));
}

void
smtp_auth_start(struct smtp_session *s, const char *arg, size_t len)
{
	const char *sp = memchr(arg, ' ', len);
	size_t mlen = sp ? (size_t)(sp - arg) : len;
	const char *ir = sp ? sp + 1 : NULL;
	size_t irlen = sp ? len - mlen - 1 : 0;

	if (mlen == 5 && strncasecmp(arg, "PLAIN", 5) == 0) {
		if (ir) {
			auth_plain(s, ir, irlen);
			return;
		}
		s->auth_mech = AUTH_PLAIN;
		smtp_set_state(s, SMTP_S_AUTH);
		smtp_reply(s, "334 ");
	} else if (mlen == 5 && strncasecmp(arg, "LOGIN", 5) == 0) {
		s->auth_mech = AUTH_LOGIN;
		smtp_set_state(s, SMTP_S_AUTH);
		if (ir) {
			smtp_auth_line(s, ir, irlen);
			return;
		}
		smtp_reply(s, "334 VXNlcm5hbWU6");	/* "Username:" */
	} else if (mlen == 0) {
		smtp_reply(s, "501 5.5.4 Syntax: AUTH mechanism");
	} else
		smtp_reply(s, "504 5.5.4 Unrecognized authentication type");
}

/*
 * A SASL response line while in SMTP_S_AUTH; NULL: one over the line
 * limit, which fails the AUTH command (RFC 4954 §4).
 */
void
smtp_auth_line(struct smtp_session *s, const char *line, size_t len)
{
	char field[SASL_FIELD_MAX + 1];

	snprintf(s->last_cmd, sizeof(s->last_cmd), "AUTH");
	if (line == NULL) {
		auth_end(s, "500 5.5.2 Error: line too long");
		return;
	}
	if (len == 1 && line[0] == '*') {
		auth_end(s, "501 5.0.0 Authentication aborted");
		return;
	}
	if (s->auth_mech == AUTH_PLAIN) {
		auth_plain(s, line, len);
		return;
	}
	if (sasl_login_decode(line, len, field, sizeof(field)) != 0) {
		auth_end(s, "501 5.5.2 Error: invalid LOGIN response");
		return;
	}
	if (s->auth_login == NULL) {
		s->auth_login = xstrdup(field);
		smtp_reply(s, "334 UGFzc3dvcmQ6");	/* "Password:" */
		return;
	}
	auth_check(s, s->auth_login, field);
	explicit_bzero(field, sizeof(field));
	free(s->auth_login);
	s->auth_login = NULL;
}

void
smtp_auth_cancel(struct smtp_session *s)
{
	if (s->login) {
		login_check_cancel(s->login);
		s->login = NULL;
	}
	free(s->auth_login);
	s->auth_login = NULL;
}
