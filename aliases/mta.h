/*
 * mta.h - the outbound SMTP client: one delivery attempt of one message
 * to the recipients of one destination.
 *
 * The caller has chosen the route (a relay, or the MX hosts DNS gave) and
 * hands over the hosts to try in order, the connection's policy (TLS,
 * authentication, timeout, chunking) and the message.  The attempt
 * connects to each host in turn until one greets it, speaks ESMTP (EHLO,
 * HELO when EHLO is refused; STARTTLS; AUTH; MAIL, RCPT, DATA or BDAT)
 * and reports per recipient, as SPEC §6 says: all 2xx -> delivered; a 5xx
 * at MAIL or HELO, or at RCPT and later -> failed; anything else (4xx,
 * timeouts, lost connections, TLS or AUTH trouble) -> deferred.
 *
 * Every reply goes through the one validating reply parser (reply.h).
 * Nothing here blocks: connecting, TLS and the message's bytes all move
 * on the event loop, the message read a slice at a time with
 * back-pressure.
 */
#ifndef UMBOX_ALIASES_MTA_H
#define UMBOX_ALIASES_MTA_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "aliases/reply.h"

struct event_base;

enum mta_tls {
	MTA_TLS_AUTO,		/* STARTTLS when offered, else plain */
	MTA_TLS_STARTTLS,	/* STARTTLS required */
	MTA_TLS_IMPLICIT,	/* TLS from the first byte (465) */
	MTA_TLS_NONE,
};

enum mta_auth {
	MTA_AUTH_AUTO,		/* the most secure offered; never a password in clear */
	MTA_AUTH_PLAIN,
	MTA_AUTH_LOGIN,
	MTA_AUTH_CRAM_MD5,
	MTA_AUTH_NONE,
};

/* One address to try, and the name it was reached by (SNI, verification). */
struct mta_host {
	const char *name;
	struct sockaddr_storage addr;	/* the port is set by the attempt */
};

struct mta_route {
	const struct mta_host *hosts;	/* in the order to try */
	size_t nhosts;
	uint16_t port;
	enum mta_tls tls;
	int verify;			/* check the certificate (starttls, implicit) */
	enum mta_auth auth;
	const char *user;		/* NULL: no AUTH */
	const char *password;
	unsigned timeout;		/* seconds, for connecting and for each reply */
	int chunking;			/* BDAT when the server offers it */
	const char *helo;		/* our name */
};

enum mta_rcpt_status {
	MTA_PENDING,
	MTA_DELIVERED,
	MTA_DEFERRED,
	MTA_FAILED,
};

struct mta_rcpt {
	const char *address;
	enum mta_rcpt_status status;	/* set by the attempt */
	char reply[SMTP_REPLY_RENDER_MAX];	/* what the server said, or why not */
	const struct mta_host *host;	/* the route's host whose reply that is; NULL: none */
};

/*
 * The message: its envelope sender ("" for the null path), whether it is
 * 8-bit, and its bytes,
 * read in slices at increasing offsets: read() fills buf with up to len
 * bytes from offset and sets *got (0 only at the end); non-zero return on
 * a read error (the recipients are then deferred).
 */
struct mta_message {
	const char *sender;
	uint64_t len;
	int eightbit;		/* an octet above 127: BODY=8BITMIME where offered */
	/*
	 * The requester can make a 7-bit form: an 8-bit message meeting a
	 * server without 8BITMIME ends the attempt before MAIL (every
	 * recipient deferred) and mta_wants_7bit() says so.  0: it goes as
	 * it is.
	 */
	int convertible;
	int (*read)(void *arg, uint64_t offset, void *buf, size_t len, size_t *got);
	void *read_arg;
};

/*
 * Steps as they happen, for `umboxctl relay test` (and debug logs):
 * step is "connect", "greeting", "EHLO", "STARTTLS", "TLS", "AUTH", ...;
 * ok says whether it passed; detail is the server's reply or what went
 * wrong, already escaped for printing.
 */
typedef void mta_step_cb(void *arg, const char *step, int ok, const char *detail);

struct mta_attempt;
typedef void mta_done_cb(struct mta_attempt *a, void *arg);

/*
 * Start an attempt.  rcpts (nrcpts of them, their statuses PENDING) and
 * everything the route and message point to must stay valid until done
 * runs; done runs exactly once, on the loop, after every recipient's
 * status is set, unless mta_cancel() came first.  With msg NULL the
 * attempt is a probe: it stops after AUTH (or EHLO) with QUIT, and done
 * reports through mta_probe_ok().  ctx is the client TLS context.
 */
struct mta_attempt *mta_start(struct event_base *base, SSL_CTX *ctx, const char *id,
    const struct mta_route *route, const struct mta_message *msg,
    struct mta_rcpt *rcpts, size_t nrcpts, mta_step_cb *step, mta_done_cb *done, void *arg);

/* The requester goes away: no callback any more; the connection closes. */
void mta_cancel(struct mta_attempt *a);
/*
 * At shutdown, after every attempt is cancelled: free the connections
 * still open or closing at once (one event loop per process).
 */
void mta_shutdown(void);

/* For a probe's done: did every step pass? */
int mta_probe_ok(const struct mta_attempt *a);
/* For done: did it stop for a 7-bit form of the message (convertible)? */
int mta_wants_7bit(const struct mta_attempt *a);

#endif
