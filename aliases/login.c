/*
 * login.c - password checks off the event loop.
 */
#include "aliases/login.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "aliases/resolve.h"
#include "lib/log.h"
#include "lib/password.h"
#include "lib/sasl.h"
#include "lib/worker.h"

struct login_check {
	struct worker_job job;		/* first: the worker hands this back */
	struct store_read read;		/* the lookup, before the job */
	struct worker_pool *wp;
	login_check_cb *cb;		/* NULL once cancelled */
	void *arg;
	struct store_user user;
	int looking_up;
	int found;
	int failed;			/* the store could not say */
	int ok;
	int cached;			/* a recent identical success: no yescrypt */
	unsigned char mac[32];		/* HMAC of the password and the stored hash */
	char *login;
	char password[SASL_FIELD_MAX + 1];
	const char *dummy_hash;
};

/*
 * Recent successes, so that a mail client polling every few minutes does
 * not pay a yescrypt check each time (Dovecot's auth cache does the same).
 * One slot per user: the time it expires and an HMAC, under a key made at
 * startup, of the password and the stored hash, so a password change
 * invalidates it.  Failures are never cached.  Every event loop uses
 * it, under its lock; the key is made once.
 */
#define LOGIN_CACHE_SLOTS	4096
#define LOGIN_CACHE_TTL		3600

static struct {
	int64_t user_id;
	time_t expires;
	unsigned char mac[32];
} login_cache[LOGIN_CACHE_SLOTS];
static pthread_mutex_t login_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t login_cache_once = PTHREAD_ONCE_INIT;
static unsigned char login_cache_key[32];

static void
login_cache_init(void)
{
	if (RAND_bytes(login_cache_key, sizeof(login_cache_key)) != 1)
		abort();
}

static void
login_cache_mac(const char *password, const char *hash, unsigned char out[32])
{
	unsigned char buf[2 * (SASL_FIELD_MAX + 1) + 256];
	size_t pl = strlen(password), hl = strlen(hash);
	unsigned int len = 32;

	pthread_once(&login_cache_once, login_cache_init);
	if (pl + hl + 1 > sizeof(buf))
		hl = sizeof(buf) - pl - 1;
	memcpy(buf, password, pl);
	buf[pl] = '\0';
	memcpy(buf + pl + 1, hash, hl);
	HMAC(EVP_sha256(), login_cache_key, sizeof(login_cache_key), buf, pl + 1 + hl, out, &len);
	explicit_bzero(buf, sizeof(buf));
}

static void
login_check_free(struct login_check *c)
{
	free(c->login);
	store_user_clear(&c->user);
	explicit_bzero(c, sizeof(*c));
	free(c);
}

static void
login_check_work(struct worker_job *job)
{
	struct login_check *c = (struct login_check *)job;
	const char *hash = c->found && c->user.password ? c->user.password : c->dummy_hash;

	if (c->failed)
		c->ok = -1;
	else if (c->cached)
		c->ok = 1;
	else
		c->ok = password_verify(c->password, hash) && c->found && c->user.password;
	explicit_bzero(c->password, sizeof(c->password));
}

static void
login_check_done(struct worker_job *job, int cancelled)
{
	struct login_check *c = (struct login_check *)job;

	if (c->ok > 0 && !c->cached) {
		unsigned slot = (unsigned)((uint64_t)c->user.id % LOGIN_CACHE_SLOTS);

		pthread_mutex_lock(&login_cache_lock);
		login_cache[slot].user_id = c->user.id;
		login_cache[slot].expires = time(NULL) + LOGIN_CACHE_TTL;
		memcpy(login_cache[slot].mac, c->mac, sizeof(c->mac));
		pthread_mutex_unlock(&login_cache_lock);
	}
	if (!cancelled && c->cb) {
		if (c->ok > 0) {
			c->cb(c->arg, 1, &c->user);	/* the callback owns the user now */
			memset(&c->user, 0, sizeof(c->user));
		} else
			c->cb(c->arg, c->ok, NULL);
	}
	login_check_free(c);
}

/* With the store: who is it?  Then the password, on a worker. */
static void
login_lookup_work(struct store *st, struct store_read *r)
{
	struct login_check *c = COMPLETION_OWNER(r, struct login_check, read);
	int status = alias_lookup_user(st, c->login, &c->user);

	c->found = status == STORE_OK;
	c->failed = status != STORE_OK && status != STORE_NOTFOUND;
	if (c->failed)
		log_err("login %s: %s", c->login, store_errmsg(st));
}

static void
login_looked_up(struct store_read *r, int cancelled)
{
	struct login_check *c = COMPLETION_OWNER(r, struct login_check, read);

	if (cancelled) {
		login_check_free(c);
		return;
	}
	if (c->found && c->user.password) {
		unsigned slot = (unsigned)((uint64_t)c->user.id % LOGIN_CACHE_SLOTS);

		login_cache_mac(c->password, c->user.password, c->mac);
		pthread_mutex_lock(&login_cache_lock);
		c->cached = login_cache[slot].user_id == c->user.id &&
		    login_cache[slot].expires > time(NULL) &&
		    CRYPTO_memcmp(login_cache[slot].mac, c->mac, sizeof(c->mac)) == 0;
		pthread_mutex_unlock(&login_cache_lock);
	}
	/* Even a failed lookup goes through the pool: the answer never comes inline. */
	c->looking_up = 0;
	c->job.work = login_check_work;
	c->job.done = login_check_done;
	worker_submit(c->wp, &c->job);
}

struct login_check *
login_check_start(struct worker_pool *wp, struct store_readers *rd, const char *login,
    const char *password, const char *dummy_hash, login_check_cb *cb, void *arg)
{
	struct login_check *c = xcalloc(1, sizeof(*c));

	c->wp = wp;
	c->cb = cb;
	c->arg = arg;
	c->dummy_hash = dummy_hash;
	c->login = xstrdup(login);
	snprintf(c->password, sizeof(c->password), "%s", password);
	c->read.work = login_lookup_work;
	c->read.done = login_looked_up;
	c->looking_up = 1;
	store_read_submit(rd, &c->read);
	return c;
}

void
login_check_cancel(struct login_check *c)
{
	c->cb = NULL;
	if (c->looking_up)
		store_read_cancel(&c->read);
	else
		worker_cancel(&c->job);
}
