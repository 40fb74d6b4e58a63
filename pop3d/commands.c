/*
 * commands.c - the POP3 command table and one function per command.
 */
#include "pop3d/pop3d.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "lib/log.h"
#include "lib/sasl.h"

#define ST(x)	(1u << (x))
#define S_AUTH	ST(POP3_S_AUTHORIZATION)
#define S_TRANS	ST(POP3_S_TRANSACTION)

#define SASL_PLAIN	1
#define SASL_LOGIN	2

struct pop3_cmd_def {
	enum pop3_verb verb;
	unsigned states;
	size_t min_args, max_args;
	void (*fn)(struct pop3_session *s, const struct pop3_command *c);
};

/* "n" naming a message of the snapshot that is not deleted; NULL after replying -ERR. */
static struct pop3_msg *
pop3_msg_arg(struct pop3_session *s, const struct pop3_arg *a, unsigned long *num)
{
	unsigned long n;

	if (pop3_parse_number(a->p, a->len, 1, ULONG_MAX, &n) != 0) {
		pop3_reply(s, "-ERR Invalid message number");
		return NULL;
	}
	if (n > s->nmsgs) {
		pop3_reply(s, "-ERR No such message");
		return NULL;
	}
	if (s->msgs[n - 1].deleted) {
		pop3_reply(s, "-ERR Message %lu already deleted", n);
		return NULL;
	}
	*num = n;
	return &s->msgs[n - 1];
}

static void
cmd_capa(struct pop3_session *s, const struct pop3_command *c)
{
	struct evbuffer *out = pop3_output(s);

	pop3_reply(s, "+OK Capability list follows");
	evbuffer_add_printf(out, "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n"
	    "EXPIRE NEVER\r\nIMPLEMENTATION umbox\r\n");
	if (s->state == POP3_S_AUTHORIZATION) {
		if (pop3_plaintext_ok(s))
			evbuffer_add_printf(out, "USER\r\nSASL PLAIN LOGIN\r\n");
		if (!s->c.tls && server_has_tls(s->server))
			evbuffer_add_printf(out, "STLS\r\n");
	}
	evbuffer_add_printf(out, ".\r\n");
}

static void
cmd_stls(struct pop3_session *s, const struct pop3_command *c)
{
	if (s->c.tls) {
		pop3_reply(s, "-ERR TLS already active");
		return;
	}
	if (!server_has_tls(s->server)) {
		pop3_reply(s, "-ERR TLS not available");
		return;
	}
	pop3_reply(s, "+OK Begin TLS negotiation");
	pop3_start_tls(s);
}

static int
pop3_plaintext_refused(struct pop3_session *s)
{
	if (pop3_plaintext_ok(s))
		return 0;
	pop3_reply(s, "-ERR Plaintext authentication disallowed without TLS; use STLS");
	return 1;
}

static void
cmd_user(struct pop3_session *s, const struct pop3_command *c)
{
	if (pop3_plaintext_refused(s))
		return;
	if (c->args[0].len > SASL_FIELD_MAX) {
		pop3_reply(s, "-ERR User name too long");
		return;
	}
	free(s->user_name);
	s->user_name = xstrndup(c->args[0].p, c->args[0].len);
	pop3_reply(s, "+OK Send your password");
}

static void
cmd_pass(struct pop3_session *s, const struct pop3_command *c)
{
	char pw[SASL_FIELD_MAX + 1];

	if (pop3_plaintext_refused(s))
		return;
	if (s->user_name == NULL) {
		pop3_reply(s, "-ERR Send USER first");
		return;
	}
	if (c->rest.len == 0) {
		pop3_reply(s, "-ERR Syntax: PASS password");
		return;
	}
	/* Longer than any password can be (the line limit keeps it shorter). */
	if (c->rest.len > SASL_FIELD_MAX)
		pw[0] = '\0';
	else {
		memcpy(pw, c->rest.p, c->rest.len);
		pw[c->rest.len] = '\0';
	}
	pop3_login(s, s->user_name, pw);
	explicit_bzero(pw, sizeof(pw));
	free(s->user_name);
	s->user_name = NULL;
}

static void
cmd_apop(struct pop3_session *s, const struct pop3_command *c)
{
	pop3_reply(s, "-ERR APOP is not supported; use USER/PASS or AUTH over TLS");
}

static void
sasl_plain(struct pop3_session *s, const char *b64, size_t len)
{
	struct sasl_plain p;

	pop3_set_state(s, POP3_S_AUTHORIZATION);
	/* RFC 3206: [AUTH] is for credentials; a malformed response is not one. */
	if (sasl_plain_decode(b64, len, &p) != 0) {
		explicit_bzero(&p, sizeof(p));
		pop3_reply(s, "-ERR Invalid PLAIN response");
		return;
	}
	if (p.authzid[0] && strcasecmp(p.authzid, p.authcid) != 0) {
		explicit_bzero(&p, sizeof(p));
		pop3_reply(s, "-ERR [AUTH] Logging in as another user (an authorization identity"
		    " other than the login) is not allowed");
		return;
	}
	pop3_login(s, p.authcid, p.password);
	explicit_bzero(&p, sizeof(p));
}

static void
cmd_auth(struct pop3_session *s, const struct pop3_command *c)
{
	const struct pop3_arg *mech = &c->args[0], *ir = c->nargs > 1 ? &c->args[1] : NULL;

	if (c->nargs == 0) {
		/* Outlook's probe: the mechanisms this connection may use. */
		pop3_reply(s, "+OK");
		if (pop3_plaintext_ok(s))
			evbuffer_add_printf(pop3_output(s), "PLAIN\r\nLOGIN\r\n");
		evbuffer_add_printf(pop3_output(s), ".\r\n");
		return;
	}
	if (pop3_plaintext_refused(s))
		return;
	if (mech->len == 5 && strncasecmp(mech->p, "PLAIN", 5) == 0) {
		if (ir) {
			sasl_plain(s, ir->p, ir->len);
			return;
		}
		s->sasl_mech = SASL_PLAIN;
		pop3_set_state(s, POP3_S_SASL);
		evbuffer_add_printf(pop3_output(s), "+ \r\n");
	} else if (mech->len == 5 && strncasecmp(mech->p, "LOGIN", 5) == 0) {
		s->sasl_mech = SASL_LOGIN;
		pop3_set_state(s, POP3_S_SASL);
		free(s->user_name);
		s->user_name = NULL;
		if (ir) {
			pop3_sasl_line(s, ir->p, ir->len);
			return;
		}
		evbuffer_add_printf(pop3_output(s), "+ VXNlcm5hbWU6\r\n");
	} else
		pop3_reply(s, "-ERR Unsupported authentication mechanism");
}

/* A SASL continuation line (RFC 5034). */
void
pop3_sasl_line(struct pop3_session *s, const char *line, size_t len)
{
	char field[SASL_FIELD_MAX + 1];

	snprintf(s->last_cmd, sizeof(s->last_cmd), "AUTH");
	/* Spaces at the end are nothing, as on a command line (base64 has none). */
	while (len > 0 && line[len - 1] == ' ')
		len--;
	if (len == 1 && line[0] == '*') {
		pop3_set_state(s, POP3_S_AUTHORIZATION);
		free(s->user_name);
		s->user_name = NULL;
		pop3_reply(s, "-ERR Authentication cancelled");
		return;
	}
	if (s->sasl_mech == SASL_PLAIN) {
		sasl_plain(s, line, len);
		return;
	}
	if (sasl_login_decode(line, len, field, sizeof(field)) != 0) {
		pop3_set_state(s, POP3_S_AUTHORIZATION);
		free(s->user_name);
		s->user_name = NULL;
		pop3_reply(s, "-ERR Invalid LOGIN response");
		return;
	}
	if (s->user_name == NULL) {
		s->user_name = xstrdup(field);
		evbuffer_add_printf(pop3_output(s), "+ UGFzc3dvcmQ6\r\n");
		return;
	}
	pop3_set_state(s, POP3_S_AUTHORIZATION);
	pop3_login(s, s->user_name, field);
	explicit_bzero(field, sizeof(field));
	free(s->user_name);
	s->user_name = NULL;
}

static void
cmd_stat(struct pop3_session *s, const struct pop3_command *c)
{
	uint64_t total = 0;
	size_t n = 0;

	for (size_t i = 0; i < s->nmsgs; i++)
		if (!s->msgs[i].deleted) {
			n++;
			total += s->msgs[i].e.size;
		}
	pop3_reply(s, "+OK %zu %" PRIu64, n, total);
}

/* LIST and UIDL: one message, or all that are not deleted. */
static void
cmd_list_uidl(struct pop3_session *s, const struct pop3_command *c)
{
	int uidl = c->verb == POP3_CMD_UIDL;
	struct evbuffer *out = pop3_output(s);
	struct pop3_msg *m;
	unsigned long n;

	if (c->nargs == 1) {
		if ((m = pop3_msg_arg(s, &c->args[0], &n)) == NULL)
			return;
		if (uidl)
			pop3_reply(s, "+OK %lu %s", n, m->e.uidl);
		else
			pop3_reply(s, "+OK %lu %" PRIu64, n, m->e.size);
		return;
	}
	pop3_reply(s, "+OK");
	for (size_t i = 0; i < s->nmsgs; i++) {
		if (s->msgs[i].deleted)
			continue;
		if (uidl)
			evbuffer_add_printf(out, "%zu %s\r\n", i + 1, s->msgs[i].e.uidl);
		else
			evbuffer_add_printf(out, "%zu %" PRIu64 "\r\n", i + 1, s->msgs[i].e.size);
	}
	evbuffer_add(out, ".\r\n", 3);
}

static void
cmd_retr(struct pop3_session *s, const struct pop3_command *c)
{
	struct pop3_msg *m;
	unsigned long n;

	char reply[48];

	if ((m = pop3_msg_arg(s, &c->args[0], &n)) == NULL)
		return;
	snprintf(reply, sizeof(reply), "+OK %" PRIu64 " octets", m->e.size);
	pop3_stream_open(s, m, n, 0, 0, reply);
}

static void
cmd_top(struct pop3_session *s, const struct pop3_command *c)
{
	struct pop3_msg *m;
	unsigned long n, lines;

	if ((m = pop3_msg_arg(s, &c->args[0], &n)) == NULL)
		return;
	if (pop3_parse_number(c->args[1].p, c->args[1].len, 0, ULONG_MAX, &lines) != 0) {
		pop3_reply(s, "-ERR Invalid line count");
		return;
	}
	pop3_stream_open(s, m, n, 1, lines, "+OK Top of message follows");
}

static void
cmd_dele(struct pop3_session *s, const struct pop3_command *c)
{
	struct pop3_msg *m;
	unsigned long n;

	if ((m = pop3_msg_arg(s, &c->args[0], &n)) == NULL)
		return;
	m->deleted = 1;
	pop3_reply(s, "+OK Message %lu deleted", n);
}

static void
cmd_rset(struct pop3_session *s, const struct pop3_command *c)
{
	for (size_t i = 0; i < s->nmsgs; i++)
		s->msgs[i].deleted = 0;
	pop3_reply(s, "+OK");
}

static void
cmd_noop(struct pop3_session *s, const struct pop3_command *c)
{
	pop3_reply(s, "+OK");
}

static void
cmd_quit(struct pop3_session *s, const struct pop3_command *c)
{
	if (s->state == POP3_S_TRANSACTION) {
		pop3_quit(s);
		return;
	}
	pop3_reply(s, "+OK Bye");
	pop3_close(s);
}

static const struct pop3_cmd_def pop3_cmds[] = {
	{ POP3_CMD_CAPA, S_AUTH | S_TRANS, 0, 0, cmd_capa },
	{ POP3_CMD_STLS, S_AUTH, 0, 0, cmd_stls },
	{ POP3_CMD_USER, S_AUTH, 1, 1, cmd_user },
	{ POP3_CMD_PASS, S_AUTH, 0, 2, cmd_pass },
	{ POP3_CMD_APOP, S_AUTH, 0, 2, cmd_apop },
	{ POP3_CMD_AUTH, S_AUTH, 0, 2, cmd_auth },
	{ POP3_CMD_STAT, S_TRANS, 0, 0, cmd_stat },
	{ POP3_CMD_LIST, S_TRANS, 0, 1, cmd_list_uidl },
	{ POP3_CMD_UIDL, S_TRANS, 0, 1, cmd_list_uidl },
	{ POP3_CMD_RETR, S_TRANS, 1, 1, cmd_retr },
	{ POP3_CMD_TOP, S_TRANS, 2, 2, cmd_top },
	{ POP3_CMD_DELE, S_TRANS, 1, 1, cmd_dele },
	{ POP3_CMD_RSET, S_TRANS, 0, 0, cmd_rset },
	{ POP3_CMD_NOOP, S_TRANS, 0, 0, cmd_noop },
	{ POP3_CMD_QUIT, S_AUTH | S_TRANS, 0, 0, cmd_quit },
};

void
pop3_command(struct pop3_session *s, const char *line, size_t len)
{
	const struct pop3_cmd_def *d = NULL;
	struct pop3_command c;

	s->last_cmd[0] = '\0';
	switch (pop3_parse_command(line, len, &c)) {
	case POP3_PARSE_OK:
		break;
	case POP3_PARSE_TOO_LONG:
		pop3_reply(s, "-ERR Line too long");
		return;
	case POP3_PARSE_TOO_MANY_ARGS:
		pop3_reply(s, "-ERR Too many arguments");
		return;
	default:
		pop3_reply(s, "-ERR Invalid command");
		return;
	}
	snprintf(s->last_cmd, sizeof(s->last_cmd), "%s", pop3_verb_name(c.verb));
	for (size_t i = 0; i < sizeof(pop3_cmds) / sizeof(pop3_cmds[0]); i++)
		if (pop3_cmds[i].verb == c.verb)
			d = &pop3_cmds[i];
	if (d == NULL) {
		pop3_reply(s, "-ERR Unknown command");
		return;
	}
	if (!(d->states & ST(s->state))) {
		pop3_reply(s, "-ERR Command not valid in this state");
		return;
	}
	if (c.nargs < d->min_args || c.nargs > d->max_args) {
		pop3_reply(s, "-ERR Wrong number of arguments");
		return;
	}
	if (s->state == POP3_S_TRANSACTION)
		pop3_renew_lock(s);
	d->fn(s, &c);
}
