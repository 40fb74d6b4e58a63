/*
 * mailbox.c - the mailbox side of a POP3 session: login (password, lock,
 * snapshot), streaming RETR and TOP out of the store, and QUIT.
 */
#include "pop3d/pop3d.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "aliases/voicemail.h"
#include "lib/log.h"

static void
pop3_auth_failed_reply(struct conn *c)
{
	struct pop3_session *s = (struct pop3_session *)c;

	pop3_reply(s, "-ERR [AUTH] Authentication failed");
	if (s->auth_failures >= POP3_AUTH_FAILURES_MAX) {
		pop3_reply(s, "-ERR Too many authentication failures");
		pop3_close(s);
		return;
	}
	pop3_resume(s);
}

static void
pop3_drop_user(struct pop3_session *s)
{
	store_user_free(&s->user);
}

/* The listing, read through the loop's readers. */
struct pop3_listing {
	struct store_read read;
	struct pop3_session *s;
	int64_t user_id;
	struct store_entry *v;
	size_t n;
	int status;
	char errmsg[256];
};

static void
pop3_list_work(struct store *st, struct store_read *r)
{
	struct pop3_listing *l = COMPLETION_OWNER(r, struct pop3_listing, read);

	if ((l->status = store_mailbox_list(st, l->user_id, &l->v, &l->n)) != STORE_OK)
		snprintf(l->errmsg, sizeof(l->errmsg), "%s", store_errmsg(st));
}

/* The snapshot the whole session will see. */
static void
pop3_listed(struct store_read *r, int cancelled)
{
	struct pop3_listing *l = COMPLETION_OWNER(r, struct pop3_listing, read);
	struct pop3_session *s = l->s;
	uint64_t total = 0;

	if (cancelled) {
		store_entry_list_free(&l->v, l->n);
		free(l);
		return;
	}
	s->listing = NULL;
	if (l->status != STORE_OK) {
		log_err("%s: listing: %s", s->c.id, l->errmsg);
		pop3_reply(s, "-ERR [SYS/TEMP] Cannot read the mailbox now, try again later");
		pop3_release_lock(s);
		pop3_drop_user(s);
		goto out;
	}
	s->msgs = xcalloc(l->n, sizeof(*s->msgs));
	for (size_t i = 0; i < l->n; i++) {
		s->msgs[i].e = l->v[i];
		total += l->v[i].size;
	}
	free(l->v);	/* the entries moved into msgs */
	s->nmsgs = l->n;
	log_info("%s: login %s messages=%zu size=%" PRIu64 "%s", s->c.id, s->user->login, l->n,
	    total, s->c.tls ? " tls" : "");
	pop3_set_state(s, POP3_S_TRANSACTION);
	pop3_reply(s, "+OK Logged in: %zu message%s (%" PRIu64 " octets)", l->n,
	    l->n == 1 ? "" : "s", total);
out:
	if (!r->now)
		pop3_resume(s);
	free(l);
}

void
pop3_listing_cancel(struct pop3_session *s)
{
	if (s->listing) {
		store_read_cancel(&s->listing->read);
		s->listing = NULL;
	}
}

/*
 * A lock being given back.  Should the store refuse the release (a full
 * disk), the mailbox would stay "in use" for the rest of the lease: the
 * lock waits in the daemon's list instead, and the next login to that
 * mailbox, on any loop, gives it back before taking its own.
 */
struct pop3_stale_lock {
	struct pop3_stale_lock *next;
	struct pop3_server *d;
	int64_t user_id;
	char *owner;
	time_t failed;			/* the lease runs out by failed + POP3_LOCK_LEASE */
	struct pop3_session *closing;	/* to close once the release is done (pop3_close) */
};

/* At most this many wait; a lock past them just runs out with its lease. */
#define POP3_STALE_MAX	1024

static void
stale_free(struct pop3_stale_lock *l)
{
	free(l->owner);
	free(l);
}

static void
pop3_released(struct store_req *req, void *arg)
{
	struct pop3_stale_lock *l = arg, *o, **p;
	struct pop3_server *d = l->d;
	int kept;

	if (l->closing) {
		l->closing->releasing = NULL;
		conn_close(&l->closing->c);
		l->closing = NULL;
	}
	if (store_req_status(req) == STORE_OK) {
		stale_free(l);
		return;
	}
	l->failed = time(NULL);
	pthread_mutex_lock(&d->stale_mu);
	for (p = &d->stale; (o = *p) != NULL;) {
		if (l->failed - o->failed >= POP3_LOCK_LEASE) {	/* ran out: nothing to give back */
			*p = o->next;
			stale_free(o);
			atomic_fetch_sub(&d->nstale, 1);
		} else
			p = &o->next;
	}
	kept = atomic_load(&d->nstale) < POP3_STALE_MAX;
	/* Said while l is still ours: once listed, another loop may take and free it. */
	log_warn("mailbox lock %s not given back: %s; %s", l->owner, store_req_errmsg(req),
	    kept ? "the next login to the mailbox gives it back" :
	    "it runs out with its lease (too many wait already)");
	if (kept) {
		l->next = d->stale;
		d->stale = l;
		atomic_fetch_add(&d->nstale, 1);
	}
	pthread_mutex_unlock(&d->stale_mu);
	if (!kept)
		stale_free(l);
}

static void
pop3_release(struct server_loop *loop, struct pop3_stale_lock *l)
{
	store_writer_submit(loop->writer,
	    store_req_pop3_quit(l->user_id, l->owner, NULL, 0, NULL, 0, pop3_released, l));
}

/* Before a login takes its mailbox's lock: the releases refused earlier. */
static void
pop3_release_stale(struct pop3_session *s)
{
	struct pop3_server *d = pop3_daemon(s);
	struct pop3_stale_lock *mine = NULL, **p, *l;

	if (atomic_load(&d->nstale) == 0)
		return;
	pthread_mutex_lock(&d->stale_mu);
	for (p = &d->stale; (l = *p) != NULL;) {
		if (l->user_id == s->user->id) {
			*p = l->next;
			l->next = mine;
			mine = l;
			atomic_fetch_sub(&d->nstale, 1);
		} else
			p = &l->next;
	}
	pthread_mutex_unlock(&d->stale_mu);
	while ((l = mine) != NULL) {
		mine = l->next;
		pop3_release(s->loop, l);
	}
}

/* The lock is ours: list the mailbox. */
static void
pop3_locked(struct store_req *req, void *arg)
{
	struct pop3_session *s = arg;
	struct pop3_listing *l;
	int st = store_req_status(req);

	s->req = NULL;
	if (s->releasing)
		return;		/* closing: the release queued after this lock undoes it */
	if (st == STORE_LOCKED) {
		pop3_reply(s, "-ERR [IN-USE] Mailbox is in use by another session");
		pop3_drop_user(s);
		pop3_resume(s);
		return;
	}
	if (st != STORE_OK) {
		log_err("%s: lock: %s", s->c.id, store_req_errmsg(req));
		pop3_reply(s, "-ERR [SYS/TEMP] Cannot open the mailbox now, try again later");
		pop3_drop_user(s);
		pop3_resume(s);
		return;
	}
	s->locked = 1;
	s->lock_renewed = (int64_t)time(NULL);
	if (s->loop->stopping) {
		pop3_reply(s, "-ERR [SYS/TEMP] Server shutting down");
		pop3_close(s);
		return;
	}
	l = xcalloc(1, sizeof(*l));
	l->s = s;
	l->user_id = s->user->id;
	l->read.work = pop3_list_work;
	l->read.done = pop3_listed;
	s->listing = l;
	if (store_read_submit(s->loop->readers, &l->read))
		pop3_resume(s);		/* listed at once: the session was waiting for the lock */
}

static void
pop3_checked(void *arg, int ok, struct store_user *user)
{
	struct pop3_session *s = arg;

	s->login = NULL;
	if (ok < 0) {
		pop3_reply(s, "-ERR [SYS/TEMP] Cannot check the password now, try again later");
		pop3_resume(s);
		return;
	}
	if (!ok) {
		s->auth_failures++;
		log_info("%s: authentication failed", s->c.id);
		conn_set_timer(&s->c, ip_auth_failed(&s->server->ips, s->c.ip),
		    pop3_auth_failed_reply);
		return;
	}
	if (!user->pop3) {
		log_info("%s: %s has POP3 off", s->c.id, user->login);
		store_user_clear(user);
		pop3_reply(s, "-ERR [AUTH] POP3 access is disabled for this account");
		pop3_resume(s);
		return;
	}
	s->user = xcalloc(1, sizeof(*s->user));
	*s->user = *user;
	if (s->owner == NULL)
		s->owner = xasprintf("%s%s", pop3_daemon(s)->owner_prefix, s->c.id);
	pop3_release_stale(s);
	s->req = store_req_pop3_lock(s->user->id, s->owner, POP3_LOCK_LEASE, pop3_locked, s);
	store_writer_submit(s->loop->writer, s->req);
}

void
pop3_login(struct pop3_session *s, const char *name, const char *password)
{
	s->login = login_check_start(s->loop->workers, s->loop->readers, name, password,
	    s->server->dummy_hash, pop3_checked, s);
	conn_wait(&s->c);
	pop3_store_wait(s);	/* the check, the lock and the listing */
}

void
pop3_login_cancel(struct pop3_session *s)
{
	if (s->login) {
		login_check_cancel(s->login);
		s->login = NULL;
	}
}

/*
 * Give the lock back without committing anything (a dropped connection).
 * Also when a lock request is still in flight: the writer runs requests
 * in order, so the release comes after the lock it undoes.
 */
static struct pop3_stale_lock *
release_submit(struct pop3_session *s, int then_close)
{
	struct pop3_stale_lock *l;

	if (s->user == NULL || (!s->locked && s->req == NULL))
		return NULL;
	s->locked = 0;
	l = xcalloc(1, sizeof(*l));
	l->d = pop3_daemon(s);
	l->user_id = s->user->id;
	l->owner = xstrdup(s->owner);
	if (then_close)
		l->closing = s, s->releasing = l;
	pop3_release(s->loop, l);
	return l;
}

void
pop3_release_lock(struct pop3_session *s)
{
	(void)release_submit(s, 0);
}

/* The store took too long to give the lock back: close all the same. */
static void
pop3_release_late(struct conn *c)
{
	struct pop3_session *s = (struct pop3_session *)c;

	pop3_release_forget(s);
	conn_close(c);
}

int
pop3_release_then_close(struct pop3_session *s)
{
	if (release_submit(s, 1) == NULL)
		return 0;
	conn_wait(&s->c);
	conn_send_now(&s->c);
	conn_set_timer(&s->c, store_wait_limit(s->server->cfg) * 1000, pop3_release_late);
	return 1;
}

void
pop3_release_forget(struct pop3_session *s)
{
	if (s->releasing) {
		s->releasing->closing = NULL;
		s->releasing = NULL;
	}
}

/* An active session keeps its lease fresh; nobody waits for the renewal. */
void
pop3_renew_lock(struct pop3_session *s)
{
	int64_t now = (int64_t)time(NULL);

	if (!s->locked || now - s->lock_renewed < POP3_LOCK_LEASE / 3)
		return;
	s->lock_renewed = now;
	store_writer_submit(s->loop->writer,
	    store_req_pop3_lock(s->user->id, s->owner, POP3_LOCK_LEASE, NULL, NULL));
}

/*
 * A voicemail deleted or retrieved for the first time changes the
 * mailbox's message waiting counts: the phone system hears of it.
 */
static void
pop3_mwi(struct pop3_session *s)
{
	const struct umbox_config *cfg = s->server->cfg;
	int changed = 0;

	if (cfg->voicemail.mwi_command[0] == '\0')
		return;
	for (size_t i = 0; i < s->nmsgs; i++) {
		const struct pop3_msg *m = &s->msgs[i];

		if (m->e.kind == STORE_KIND_VOICEMAIL && (m->deleted ||
		    (m->retrieved && !(m->e.flags & STORE_FLAG_SEEN))))
			changed = 1;
	}
	if (changed)
		voicemail_mwi_changed(s->loop->readers, s->loop->base, cfg, s->user->id,
		    s->user->login);
}

static void
pop3_quit_done(struct store_req *req, void *arg)
{
	struct pop3_session *s = arg;
	size_t ndel = 0;

	s->req = NULL;
	for (size_t i = 0; i < s->nmsgs; i++)
		ndel += s->msgs[i].deleted;
	if (store_req_status(req) == STORE_OK) {
		s->locked = 0;
		log_info("%s: logout %s deleted=%zu", s->c.id, s->user->login, ndel);
		pop3_mwi(s);
		pop3_set_state(s, POP3_S_TRANSACTION);
		pop3_reply(s, "+OK Bye (%zu message%s deleted)", ndel, ndel == 1 ? "" : "s");
	} else if (store_req_status(req) == STORE_LOCKED) {
		/* Another session has the mailbox now: this one's changes are void. */
		s->locked = 0;
		log_warn("%s: QUIT %s: another session took the mailbox over; %zu deletions"
		    " not saved", s->c.id, s->user->login, ndel);
		pop3_set_state(s, POP3_S_TRANSACTION);
		pop3_reply(s, "-ERR [IN-USE] Another session took the mailbox over; nothing was"
		    " deleted");
	} else {
		log_err("%s: QUIT: %s", s->c.id, store_req_errmsg(req));
		pop3_set_state(s, POP3_S_TRANSACTION);
		pop3_reply(s, "-ERR [SYS/TEMP] Deletions could not be saved; nothing was deleted");
	}
	pop3_close(s);
}

/* UPDATE state: deletions and "seen" marks in one transaction, then +OK. */
void
pop3_quit(struct pop3_session *s)
{
	int64_t *del = xcalloc(s->nmsgs, sizeof(*del)), *seen = xcalloc(s->nmsgs, sizeof(*seen));
	size_t nd = 0, ns = 0;

	for (size_t i = 0; i < s->nmsgs; i++) {
		if (s->msgs[i].deleted)
			del[nd++] = s->msgs[i].e.uid;
		else if (s->msgs[i].retrieved && !(s->msgs[i].e.flags & STORE_FLAG_SEEN))
			seen[ns++] = s->msgs[i].e.uid;
	}
	s->req = store_req_pop3_quit(s->user->id, s->owner, del, nd, seen, ns, pop3_quit_done, s);
	free(del);
	free(seen);
	conn_wait(&s->c);
	pop3_store_wait(s);
	store_writer_submit(s->loop->writer, s->req);
}

/*
 * A slice of the message read off the loop (PostgreSQL): one request at
 * a time, into a buffer the stream keeps until the message is out.
 *
 * A RETR of a message that fits in half the buffer reads ahead: the
 * whole texts of the messages after it (not deleted, not yet retrieved,
 * in order, up to POP3_AHEAD_MAX, while they fit) come in the same
 * query, after it in the buffer.  The session keeps the buffer between
 * RETRs while it holds messages not yet sent (s->ahead), so a client
 * draining its mailbox in order costs one query per batch of messages,
 * not one per message.  A message's text never changes, so a copy read
 * ahead is as good as one read at its RETR.  A client that goes quiet
 * instead loses the buffer after POP3_AHEAD_KEEP_MS, so an idle session
 * holds no such memory; the buffer is mapped on its own, so that memory
 * goes back to the system with it.
 */
#define POP3_SLICE_REMOTE	(128 * 1024)
#define POP3_AHEAD_MAX		16
#define POP3_AHEAD_KEEP_MS	1000

struct pop3_slice {
	struct store_read read;
	struct pop3_session *s;
	struct store_entry e;		/* without its sender */
	uint64_t offset;
	size_t len, got;
	size_t start;			/* where in buf the bytes at offset begin */
	int busy;			/* a read in flight */
	int ready;			/* got bytes at offset, not yet sent */
	int status;
	/* Reading ahead: asked for (want[0] is e, whole), then got (uid, where, how long). */
	size_t nwant, nahead;
	struct store_entry want[POP3_AHEAD_MAX + 1];
	size_t lens[POP3_AHEAD_MAX + 1];
	struct { int64_t uid; size_t at, len; } ahead[POP3_AHEAD_MAX];
	char errmsg[256];
	struct event *keep;		/* drops the buffer kept as s->ahead */
	char buf[POP3_SLICE_REMOTE];
};

/* Under AddressSanitizer from the heap, where reads past its end are caught. */
#if defined(__SANITIZE_ADDRESS__)
#define SLICE_FROM_HEAP	1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLICE_FROM_HEAP	1
#endif
#endif

static struct pop3_slice *
slice_new(struct pop3_session *s, const struct pop3_msg *m)
{
#ifdef SLICE_FROM_HEAP
	struct pop3_slice *sl = xcalloc(1, sizeof(*sl));
#else
	struct pop3_slice *sl = mmap(NULL, sizeof(*sl), PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (sl == MAP_FAILED)
		fatal("out of memory for a message buffer");
#endif
	sl->s = s;
	sl->e = m->e;
	sl->e.sender = NULL;
	return sl;
}

static void
slice_free(struct pop3_slice *sl)
{
	if (sl == NULL)
		return;
	if (sl->keep)
		event_free(sl->keep);
#ifdef SLICE_FROM_HEAP
	free(sl);
#else
	munmap(sl, sizeof(*sl));
#endif
}

/* The session's read-ahead buffer goes (at the end of the session, or unused). */
void
pop3_ahead_free(struct pop3_session *s)
{
	slice_free(s->ahead);
	s->ahead = NULL;
}

static void
ahead_expired(evutil_socket_t fd, short what, void *arg)
{
	pop3_ahead_free(arg);
}

/* Keep sl for the next RETRs, for a while. */
static void
ahead_keep(struct pop3_session *s, struct pop3_slice *sl)
{
	struct timeval tv = { POP3_AHEAD_KEEP_MS / 1000, (POP3_AHEAD_KEEP_MS % 1000) * 1000 };

	if (sl->keep == NULL && (sl->keep = evtimer_new(s->loop->base, ahead_expired, s)) == NULL) {
		slice_free(sl);
		return;
	}
	evtimer_add(sl->keep, &tv);
	s->ahead = sl;
}

void
pop3_stream_free(struct pop3_session *s)
{
	struct pop3_stream *st = s->stream;

	if (st == NULL)
		return;
	store_reader_close(&st->r);
	if (st->slice && st->slice->busy)
		store_read_cancel(&st->slice->read);	/* freed when it comes back */
	else if (st->slice && st->slice->nahead > 0 && s->ahead == NULL)
		ahead_keep(s, st->slice);		/* for the next RETRs */
	else
		slice_free(st->slice);
	free(st);
	s->stream = NULL;
}

static void
slice_work(struct store *st, struct store_read *r)
{
	struct pop3_slice *sl = COMPLETION_OWNER(r, struct pop3_slice, read);

	sl->status = STORE_OK;
	if (sl->nwant > 0)
		sl->status = store_entries_read(st, sl->want, sl->nwant, sl->buf, sizeof(sl->buf),
		    sl->lens);
	if (sl->status == STORE_OK && sl->nwant > 0 && sl->lens[0] != STORE_NO_TEXT) {
		sl->got = sl->lens[0];
		return;
	}
	sl->nwant = 0;		/* this message alone, read as usual */
	sl->status = store_entry_read(st, &sl->e, sl->offset, sl->buf, sl->len, &sl->got);
	if (sl->status != STORE_OK)
		snprintf(sl->errmsg, sizeof(sl->errmsg), "%s", store_errmsg(st));
}

/* On the loop: where the messages read ahead are in the buffer. */
static void
slice_ahead_found(struct pop3_slice *sl)
{
	size_t at = sl->lens[0];

	sl->nahead = 0;
	for (size_t i = 1; i < sl->nwant; i++) {
		if (sl->lens[i] == STORE_NO_TEXT)
			continue;
		sl->ahead[sl->nahead].uid = sl->want[i].uid;
		sl->ahead[sl->nahead].at = at;
		sl->ahead[sl->nahead].len = sl->lens[i];
		sl->nahead++;
		at += sl->lens[i];
	}
	sl->nwant = 0;
}

/*
 * The messages to read ahead of m, into want[1..]: the next ones not
 * deleted or retrieved, in order, while they fit beside m.
 */
static void
slice_ahead_want(struct pop3_session *s, struct pop3_slice *sl, const struct pop3_msg *m)
{
	size_t room = sizeof(sl->buf) - (size_t)m->e.size;

	sl->nwant = 0;
	sl->nahead = 0;
	if (m->e.size > sizeof(sl->buf) / 2)
		return;
	sl->want[sl->nwant++] = sl->e;
	for (size_t i = (size_t)(m - s->msgs) + 1; i < s->nmsgs && sl->nwant <= POP3_AHEAD_MAX;
	    i++) {
		const struct pop3_msg *n = &s->msgs[i];

		if (n->deleted || n->retrieved)
			continue;
		if (n->e.size > room)
			break;
		room -= (size_t)n->e.size;
		sl->want[sl->nwant] = n->e;
		sl->want[sl->nwant++].sender = NULL;
	}
}

/*
 * The session's read-ahead buffer, if it holds m: the stream's slice,
 * with m ready to send and what came before it forgotten.  Otherwise the
 * buffer is dropped (the client went another way) and NULL returned.
 */
static struct pop3_slice *
slice_from_ahead(struct pop3_session *s, const struct pop3_msg *m)
{
	struct pop3_slice *sl = s->ahead;
	size_t j;

	if (sl == NULL)
		return NULL;
	for (j = 0; j < sl->nahead && sl->ahead[j].uid != m->e.uid; j++)
		;
	if (j == sl->nahead || sl->ahead[j].len != m->e.size) {
		pop3_ahead_free(s);
		return NULL;
	}
	s->ahead = NULL;
	evtimer_del(sl->keep);
	sl->e = m->e;
	sl->e.sender = NULL;
	sl->offset = 0;
	sl->start = sl->ahead[j].at;
	sl->got = sl->ahead[j].len;
	sl->ready = 1;
	sl->status = STORE_OK;
	sl->nahead -= j + 1;
	memmove(sl->ahead, sl->ahead + j + 1, sl->nahead * sizeof(sl->ahead[0]));
	return sl;
}

static void
slice_done(struct store_read *r, int cancelled)
{
	struct pop3_slice *sl = COMPLETION_OWNER(r, struct pop3_slice, read);

	if (cancelled) {
		slice_free(sl);
		return;
	}
	sl->busy = 0;
	sl->ready = 1;
	slice_ahead_found(sl);
	conn_cancel_timer(&sl->s->c);
	pop3_stream_pump(sl->s);
}

/* Ask for the next slice; the pump goes on when it is here. */
static void
slice_fetch(struct pop3_session *s, struct pop3_stream *st)
{
	struct pop3_slice *sl = st->slice;
	uint64_t left = st->m->e.size - st->offset;

	sl->offset = st->offset;
	sl->len = left < sizeof(sl->buf) ? (size_t)left : sizeof(sl->buf);
	sl->got = 0;
	sl->start = 0;
	sl->nwant = sl->nahead = 0;	/* the buffer is overwritten */
	if (st->offset == 0 && !st->top)
		slice_ahead_want(s, sl, st->m);
	sl->busy = 1;
	sl->read.work = slice_work;
	sl->read.done = slice_done;
	if (!store_read_submit(s->loop->readers, &sl->read))
		pop3_store_wait(s);
}

/*
 * Nothing of the message has gone out: refuse it.  One deleted since the
 * login (umboxctl mail del, which the session's list still shows) ends
 * the session, deleting nothing, so that the next login lists the truth;
 * the store's trouble is for later.
 */
static void
stream_refuse(struct pop3_session *s, unsigned long n, int status)
{
	if (status == STORE_NOTFOUND) {
		pop3_reply(s, "-ERR Message %lu was deleted by another program; log in again"
		    " (nothing was deleted by this session)", n);
		pop3_close(s);
		return;
	}
	pop3_reply(s, "-ERR [SYS/TEMP] Cannot read message %lu now", n);
	pop3_resume(s);
}

/*
 * Send a message (RETR) or its top (TOP): the reply, then the slices.  On
 * the loop's own store (SQLite) the message is opened first; from the
 * readers (PostgreSQL) the reply waits for the first slice, so a message
 * that cannot be read is still refused with nothing sent.
 */
void
pop3_stream_open(struct pop3_session *s, struct pop3_msg *m, unsigned long n, int top,
    unsigned long lines, const char *reply)
{
	struct pop3_stream *st = xcalloc(1, sizeof(*st));
	int status;

	conn_wait(&s->c);	/* pipelined commands wait until the message is out */
	if (s->loop->store == NULL) {
		if (top || (st->slice = slice_from_ahead(s, m)) == NULL)
			st->slice = slice_new(s, m);
		/* The readers' answer says whether the message is there: the reply waits. */
		snprintf(st->reply, sizeof(st->reply), "%s", reply);
	} else if ((status = store_reader_open(s->loop->store, &m->e, &st->r)) != STORE_OK) {
		if (status == STORE_NOTFOUND)
			log_info("%s: message %s was deleted since the login", s->c.id, m->e.uidl);
		else
			log_err("%s: opening message %s: %s", s->c.id, m->e.uidl,
			    store_errmsg(s->loop->store));
		free(st);
		stream_refuse(s, n, status);
		return;
	} else
		pop3_reply(s, "%s", reply);
	st->m = m;
	st->n = n;
	st->top = top;
	st->lines = lines;
	st->line_start = 1;
	st->empty_line = 1;
	st->last_lf = 1;
	s->stream = st;
	if (!top)
		m->retrieved = 1;
	pop3_stream_pump(s);
}

/*
 * The first "." in buf that starts a line after the first byte (just
 * past an LF), or NULL.  Dots are rarer than line ends, so look for them.
 */
static const char *
find_line_dot(const char *buf, size_t len)
{
	const char *p = buf + 1, *end = buf + len;

	while (p < end && (p = memchr(p, '.', (size_t)(end - p))) != NULL) {
		if (p[-1] == '\n')
			return p;
		p++;
	}
	return NULL;
}

/*
 * RETR: copy buf to out, doubling a "." that starts a line.  Lines end
 * with LF (stored text has CRLF); line_start carries across slices.  The
 * text between such dots goes in one piece.
 */
static void
stream_stuff(struct pop3_stream *st, struct evbuffer *out, const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len;

	if (st->line_start && *p == '.')
		evbuffer_add(out, ".", 1);
	while (p < end) {
		const char *dot = find_line_dot(p, (size_t)(end - p));
		const char *stop = dot ? dot : end;

		evbuffer_add(out, p, (size_t)(stop - p));
		if (dot)
			evbuffer_add(out, ".", 1);
		p = stop;
	}
	st->line_start = buf[len - 1] == '\n';
	st->last_lf = st->line_start;
}

/* Would this slice go out as it is: no line in it starts with a dot? */
static int
stream_plain(const struct pop3_stream *st, const char *buf, size_t len)
{
	return !(st->line_start && buf[0] == '.') && find_line_dot(buf, len) == NULL;
}

/*
 * RETR's next slice, read from the store straight into the output, where
 * it stays when nothing in it needs stuffing (the usual case: one copy,
 * store to socket buffer); buf is room for the other case.  Returns a
 * store status; *got is the length.
 */
static int
stream_retr_slice(struct pop3_stream *st, struct evbuffer *out, char buf[POP3_SLICE], size_t *got)
{
	uint64_t left = st->m->e.size - st->offset;
	size_t want = left < POP3_SLICE ? (size_t)left : POP3_SLICE;
	struct evbuffer_iovec v;
	int status;

	if (evbuffer_reserve_space(out, (ev_ssize_t)want, &v, 1) != 1 || v.iov_len < want) {
		/* No room to reserve: through a copy, as with dots. */
		status = store_reader_read(st->r, st->offset, buf, want, got);
		if (status == STORE_OK && *got > 0)
			stream_stuff(st, out, buf, *got);
		return status;
	}
	status = store_reader_read(st->r, st->offset, v.iov_base, want, got);
	if (status != STORE_OK || *got == 0)
		return status;
	if (stream_plain(st, v.iov_base, *got)) {
		st->line_start = ((const char *)v.iov_base)[*got - 1] == '\n';
		st->last_lf = st->line_start;
		v.iov_len = *got;
		evbuffer_commit_space(out, &v, 1);
		return STORE_OK;
	}
	/* Reserved space is not yet the buffer's: stuff from a copy of it. */
	memcpy(buf, v.iov_base, *got);
	stream_stuff(st, out, buf, *got);
	return STORE_OK;
}

/*
 * TOP: the header, the empty line, then `lines` body lines.  Returns how
 * many bytes of buf were sent; fewer than len when TOP is complete.
 */
static size_t
stream_top(struct pop3_stream *st, struct evbuffer *out, const char *buf, size_t len)
{
	size_t i;

	if (st->in_body && st->lines == 0)
		return 0;
	for (i = 0; i < len; i++) {
		char c = buf[i];

		if (st->line_start && c == '.')
			evbuffer_add(out, ".", 1);
		evbuffer_add(out, &c, 1);
		st->line_start = c == '\n';
		st->last_lf = c == '\n';
		if (c != '\n') {
			if (c != '\r')
				st->empty_line = 0;
			continue;
		}
		if (!st->in_body) {
			if (st->empty_line)
				st->in_body = 1;	/* the empty line after the header */
		} else
			st->lines--;
		st->empty_line = 1;
		if (st->in_body && st->lines == 0)
			return i + 1;
	}
	return len;
}

/*
 * The next slice: read now from the loop's own store, or the one the
 * readers brought.  A RETR slice is already in the output; a TOP slice
 * is in *bytes for stream_top().  STORE_OK with *got 0 from the readers:
 * not here yet, the pump is called again when it is.
 */
static int
stream_next(struct pop3_session *s, struct pop3_stream *st, struct evbuffer *out,
    char buf[POP3_SLICE], const char **bytes, size_t *got)
{
	struct pop3_slice *sl = st->slice;

	if (sl == NULL) {
		int status;

		*bytes = buf;
		status = st->top ? store_reader_read(st->r, st->offset, buf, POP3_SLICE, got) :
		    stream_retr_slice(st, out, buf, got);
		if (status != STORE_OK)
			log_err("%s: reading message %s: %s", s->c.id, st->m->e.uidl,
			    store_errmsg(s->loop->store));
		return status;
	}
	if (!sl->busy && !sl->ready)
		slice_fetch(s, st);
	if (sl->busy)
		return STORE_OK;
	sl->ready = 0;
	if (sl->status == STORE_OK && sl->got == 0)
		snprintf(sl->errmsg, sizeof(sl->errmsg), "it ends before its size");
	if (sl->status != STORE_OK || sl->got == 0) {
		if (sl->status == STORE_NOTFOUND && st->reply[0])
			log_info("%s: message %s was deleted since the login", s->c.id,
			    st->m->e.uidl);
		else
			log_err("%s: reading message %s: %s", s->c.id, st->m->e.uidl, sl->errmsg);
		return sl->status != STORE_OK ? sl->status : STORE_ERROR;
	}
	if (st->reply[0]) {
		pop3_reply(s, "%s", st->reply);
		st->reply[0] = '\0';
	}
	*bytes = sl->buf + sl->start;
	*got = sl->got;
	if (!st->top)
		stream_stuff(st, out, *bytes, sl->got);
	return STORE_OK;
}

/*
 * Send the next slices of the message being retrieved while the output
 * has room; the write callback calls again below the low-water mark, and
 * a slice read off the loop when it arrives.
 */
void
pop3_stream_pump(struct pop3_session *s)
{
	struct pop3_stream *st = s->stream;
	struct evbuffer *out = pop3_output(s);
	char buf[POP3_SLICE];

	while (st && conn_unsent(&s->c) < CONN_OUT_HIGH) {
		const struct store_entry *e = &st->m->e;
		size_t got = 0, used;
		int done = st->offset >= e->size;

		if (!done) {
			const char *bytes = buf;
			int status = stream_next(s, st, out, buf, &bytes, &got);

			if (status == STORE_OK && got == 0 && st->slice)
				return;		/* the readers will call again */
			if (status != STORE_OK || got == 0) {
				int unanswered = st->reply[0] != '\0';
				unsigned long n = st->n;

				pop3_stream_free(s);
				if (unanswered)
					stream_refuse(s, n, status);
				else
					pop3_close(s);	/* the reply is half sent: nothing else is honest */
				return;
			}
			if (st->top) {
				used = stream_top(st, out, bytes, got);
				done = used < got || (st->in_body && st->lines == 0);
			}
			st->offset += got;
			done = done || st->offset >= e->size;
		}
		if (done) {
			if (!st->last_lf)
				evbuffer_add(out, "\r\n", 2);
			evbuffer_add(out, ".\r\n", 3);
			pop3_stream_free(s);
			pop3_resume(s);
			return;
		}
	}
}
