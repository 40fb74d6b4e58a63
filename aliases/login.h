/*
 * login.h - checking a login and password for SMTP AUTH and POP3.
 *
 * The user is looked up through the loop's store readers; the yescrypt
 * comparison, slow on purpose, runs on a worker thread.  An unknown user
 * is checked against a dummy hash so that it costs the same time.  A
 * success is remembered for an hour (keyed by an HMAC of the password and
 * the stored hash), so repeated logins by a polling client are cheap.
 */
#ifndef UMBOX_ALIASES_LOGIN_H
#define UMBOX_ALIASES_LOGIN_H

#include "store/store.h"

struct worker_pool;
struct login_check;

/*
 * The result on the loop: ok 1, and the user (ownership passes to the
 * callback, which must store_user_clear() it); 0 for a wrong login or
 * password; -1 when the store could not be read (a temporary failure).
 * user is NULL unless ok is 1.
 */
typedef void login_check_cb(void *arg, int ok, struct store_user *user);

/* Start a check; the callback never runs before this returns. */
struct login_check *login_check_start(struct worker_pool *wp, struct store_readers *rd,
    const char *login, const char *password, const char *dummy_hash,
    login_check_cb *cb, void *arg);

/* The caller went away: no callback. */
void login_check_cancel(struct login_check *c);

#endif
