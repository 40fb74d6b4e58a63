/*
 * login.c - password checks off the event loop.
 */
#include "aliases/login.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aliases/resolve.h"
#include "lib/password.h"
#include "lib/sasl.h"
#include "lib/worker.h"

struct login_check {
	struct worker_job job;		/* first: the worker hands this back */
	login_check_cb *cb;		/* NULL once cancelled */
	void *arg;
	struct store_user user;
	int found;
	int ok;
	char password[SASL_FIELD_MAX + 1];
	const char *dummy_hash;
};

static void
login_check_work(struct worker_job *job)
{
	struct login_check *c = (struct login_check *)job;
	const char *hash = c->found && c->user.password ? c->user.password : c->dummy_hash;

	c->ok = password_verify(c->password, hash) && c->found && c->user.password;
	explicit_bzero(c->password, sizeof(c->password));
}

static void
login_check_done(struct worker_job *job, int cancelled)
{
	struct login_check *c = (struct login_check *)job;

	if (!cancelled && c->cb) {
		if (c->ok) {
			c->cb(c->arg, 1, &c->user);	/* the callback owns the user now */
			memset(&c->user, 0, sizeof(c->user));
		} else
			c->cb(c->arg, 0, NULL);
	}
	store_user_clear(&c->user);
	explicit_bzero(c, sizeof(*c));
	free(c);
}

struct login_check *
login_check_start(struct worker_pool *wp, struct store *s, const char *login,
    const char *password, const char *dummy_hash, login_check_cb *cb, void *arg)
{
	struct login_check *c = xcalloc(1, sizeof(*c));
	int st = alias_lookup_user(s, login, &c->user);

	if (st != STORE_OK && st != STORE_NOTFOUND) {
		free(c);
		return NULL;
	}
	c->found = st == STORE_OK;
	c->cb = cb;
	c->arg = arg;
	c->dummy_hash = dummy_hash;
	snprintf(c->password, sizeof(c->password), "%s", password);
	c->job.work = login_check_work;
	c->job.done = login_check_done;
	worker_submit(wp, &c->job);
	return c;
}

void
login_check_cancel(struct login_check *c)
{
	c->cb = NULL;
	worker_cancel(&c->job);
}
