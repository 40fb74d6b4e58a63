/*
 * directory.c - a daemon's copy of the directory in memory.
 *
 * Resolving a recipient reads domains, users and aliases, several
 * lookups for each RCPT; on PostgreSQL each would be a round trip to the
 * server, on SQLite a read transaction that starts with an empty page
 * cache, since the writer commits all the time.  Instead a daemon keeps
 * a snapshot of the directory (every domain, every user without its
 * password hash, every alias), read whole in one read view, and reads it
 * again when the database's directory version moves (triggers count
 * every change: PostgreSQL schema step 7, SQLite step 5).
 *
 * How a daemon hears of a change:
 * - PostgreSQL: loop 0 holds a connection that listens on channel
 *   umbox_directory.  A notification makes the snapshot unusable at once
 *   (loops go to the database meanwhile) and starts a reload; the
 *   snapshot is usable again once a reload that began after the last
 *   notification is published.  Without that connection (not yet made,
 *   or lost) the snapshot is not used.
 * - SQLite: a counter shared by the machine's processes, moved after
 *   each commit that changed the directory (sqlite_changes.c).  The
 *   snapshot is stamped with the counter as read before the reload
 *   began, and each lookup compares the two: a moved counter sends the
 *   lookup to the database, and on loop 0 reloads first (a read on the
 *   loop's own connection, like every read on SQLite).  Without the
 *   counter the snapshot is not used.
 * Every STORE_DIRECTORY_POLL_MS loop 0 also compares versions (a
 * notification lost with a connection; a change made by a process that
 * did not move the counter) and, on PostgreSQL, makes the connection
 * again if it is gone; these run on loop 0's readers.
 *
 * The same connection listens on STORE_QUEUE_CHANNEL for the queue
 * runner (store_directory_hear_queue), which then polls the queue less.
 *
 * A snapshot never changes once published; each loop holds a reference
 * to one through its view and takes the newest when the published
 * generation moved, so the only lock is taken then.  The view answers
 * store_domain_get, store_user_get* and store_alias_get as a struct
 * store of its own; callers treat its "not found" as "not found yet" and
 * ask the database before refusing anything (smtpd).
 */
#include "store/backend.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "lib/endpoint.h"
#include "lib/log.h"

#define STORE_DIRECTORY_POLL_MS	1000

struct snapshot {
	atomic_uint refs;
	int64_t version;
	struct store_domain *domains;	/* by name */
	size_t ndomains;
	struct store_user *users;	/* by id */
	size_t nusers;
	size_t *by_login, *by_ext;	/* indexes into users */
	size_t next;			/* users with an extension */
	struct store_alias *aliases;	/* by name */
	size_t naliases;
};

#define STORE_DIRECTORY_CHANNEL	"umbox_directory"

struct store_directory {
	pthread_mutex_t lock;
	struct snapshot *current;	/* the newest; the directory holds a reference */
	atomic_uint gen;		/* moves with each publication */
	atomic_int usable;		/* current is as new as the database */
	/* the refresher, on loop 0 */
	struct store_config cfg;	/* owns its strings */
	struct config_endpoints dns;	/* cfg.dns_servers */
	struct event_base *base;
	struct store_readers *readers;
	struct event *timer;
	struct store *listener;		/* LISTENing, watched by listen_ev */
	struct event *listen_ev;
	unsigned long notified;		/* directory notifications heard */
	void (*queue_changed)(void *);	/* queue notifications go there */
	void *queue_arg;
	unsigned long asked;		/* ... when the refresh in flight began */
	int want_listener;		/* ... and had none: the refresh makes one */
	unsigned long listen_fails;	/* tries in a row that made none */
	unsigned long read_fails;	/* refreshes in a row that failed */
	struct store_read read;
	int busy;
	int64_t version;		/* of current; -1: none yet */
	/* SQLite: the change counter; current is as new as the database while it reads stamp */
	const _Atomic uint64_t *changes;
	_Atomic uint64_t stamp;
	uint64_t fresh_stamp;		/* the counter before the refresh read anything */
	int changes_warned;
	/* the refresh's results, read on loop 0 after it */
	struct snapshot *fresh;
	struct store *new_listener;
	int status;
	char errmsg[256];
};

struct store_dirview {
	struct store_directory *dir;
	struct snapshot *snap;
	unsigned gen;
	int refresher;			/* loop 0's: may reload on the spot */
	struct store store;		/* the loop's own: errmsg is per thread */
};

/* ---- a snapshot ---- */

static void
snapshot_unref(struct snapshot *sn)
{
	if (sn == NULL || atomic_fetch_sub_explicit(&sn->refs, 1, memory_order_acq_rel) != 1)
		return;
	store_domain_list_free(&sn->domains, sn->ndomains);
	store_user_list_free(&sn->users, sn->nusers);
	store_alias_list_free(&sn->aliases, sn->naliases);
	free(sn->by_login);
	free(sn->by_ext);
	free(sn);
}

static int
cmp_domain(const void *a, const void *b)
{
	return strcmp(((const struct store_domain *)a)->name, ((const struct store_domain *)b)->name);
}

static int
cmp_user_id(const void *a, const void *b)
{
	int64_t x = ((const struct store_user *)a)->id, y = ((const struct store_user *)b)->id;

	return x < y ? -1 : x > y;
}

static int
cmp_alias(const void *a, const void *b)
{
	return strcmp(((const struct store_alias *)a)->name, ((const struct store_alias *)b)->name);
}

static int
cmp_by_login(const void *a, const void *b, void *arg)
{
	const struct store_user *u = arg;

	return strcmp(u[*(const size_t *)a].login, u[*(const size_t *)b].login);
}

static int
cmp_by_ext(const void *a, const void *b, void *arg)
{
	const struct store_user *u = arg;

	return strcmp(u[*(const size_t *)a].extension, u[*(const size_t *)b].extension);
}

/* The directory as the database has it now, in one read view; v is its version. */
static int
snapshot_load(struct store *db, struct snapshot **out, int64_t *v)
{
	struct snapshot *sn = xcalloc(1, sizeof(*sn));
	int status;

	store_read_begin(db);
	if ((status = db->be->directory_version(db, v)) == STORE_OK &&
	    (status = store_domain_list(db, &sn->domains, &sn->ndomains)) == STORE_OK &&
	    (status = store_user_list(db, &sn->users, &sn->nusers)) == STORE_OK)
		status = store_alias_list(db, &sn->aliases, &sn->naliases);
	store_read_end(db);
	atomic_init(&sn->refs, 1);
	if (status != STORE_OK) {
		snapshot_unref(sn);
		return status;
	}
	sn->version = *v;
	for (size_t i = 0; i < sn->nusers; i++) {
		free(sn->users[i].password);	/* not needed to resolve, not kept */
		sn->users[i].password = NULL;
	}
	/* An empty list may be NULL, which qsort and bsearch must not see. */
	if (sn->ndomains > 1)
		qsort(sn->domains, sn->ndomains, sizeof(*sn->domains), cmp_domain);
	if (sn->nusers > 1)
		qsort(sn->users, sn->nusers, sizeof(*sn->users), cmp_user_id);
	if (sn->naliases > 1)
		qsort(sn->aliases, sn->naliases, sizeof(*sn->aliases), cmp_alias);
	sn->by_login = xcalloc(sn->nusers + 1, sizeof(*sn->by_login));
	sn->by_ext = xcalloc(sn->nusers + 1, sizeof(*sn->by_ext));
	for (size_t i = 0; i < sn->nusers; i++) {
		sn->by_login[i] = i;
		if (sn->users[i].extension)
			sn->by_ext[sn->next++] = i;
	}
	qsort_r(sn->by_login, sn->nusers, sizeof(*sn->by_login), cmp_by_login, sn->users);
	qsort_r(sn->by_ext, sn->next, sizeof(*sn->by_ext), cmp_by_ext, sn->users);
	*out = sn;
	return STORE_OK;
}

/* ---- the view, as a store ---- */

static struct snapshot *
view_snapshot(struct store *s)
{
	return ((struct store_dirview *)s->impl)->snap;
}

/* key lowercased (ASCII) into buf, or NULL when it does not fit */
static const char *
lower_key(const char *key, char *buf, size_t len)
{
	if (strlen(key) >= len)
		return NULL;
	memcpy(buf, key, strlen(key) + 1);
	str_lower(buf);
	return buf;
}

static char *
dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static int
view_domain_get(struct store *s, const char *name, struct store_domain *out)
{
	struct snapshot *sn = view_snapshot(s);
	struct store_domain key = { 0 }, *d;
	char buf[256];

	if (sn->ndomains == 0 ||
	    (key.name = (char *)lower_key(name, buf, sizeof(buf))) == NULL ||
	    (d = bsearch(&key, sn->domains, sn->ndomains, sizeof(*d), cmp_domain)) == NULL)
		return STORE_NOTFOUND;
	*out = *d;
	out->name = xstrdup(d->name);
	out->guard = dup_or_null(d->guard);
	out->guard_detail = dup_or_null(d->guard_detail);
	return STORE_OK;
}

static void
user_copy(const struct store_user *u, struct store_user *out)
{
	*out = *u;
	out->login = xstrdup(u->login);
	out->extension = dup_or_null(u->extension);
	out->name = dup_or_null(u->name);
	out->email = dup_or_null(u->email);
	out->password = NULL;
}

static int
view_user_get(struct store *s, int by, const char *key, int64_t id, struct store_user *out)
{
	struct snapshot *sn = view_snapshot(s);
	const struct store_user *found = NULL;
	char buf[256];
	size_t lo = 0, hi;

	if (sn->nusers == 0)
		return STORE_NOTFOUND;
	if (by == STORE_USER_BY_ID) {
		struct store_user k = { .id = id };

		found = bsearch(&k, sn->users, sn->nusers, sizeof(k), cmp_user_id);
	} else if (by == STORE_USER_BY_LOGIN || by == STORE_USER_BY_EXTENSION) {
		const size_t *ix = by == STORE_USER_BY_LOGIN ? sn->by_login : sn->by_ext;

		if (by == STORE_USER_BY_LOGIN && (key = lower_key(key, buf, sizeof(buf))) == NULL)
			return STORE_NOTFOUND;
		hi = by == STORE_USER_BY_LOGIN ? sn->nusers : sn->next;
		while (lo < hi && found == NULL) {
			size_t mid = lo + (hi - lo) / 2;
			const struct store_user *u = &sn->users[ix[mid]];
			int c = strcmp(key, by == STORE_USER_BY_LOGIN ? u->login : u->extension);

			if (c == 0)
				found = u;
			else if (c < 0)
				hi = mid;
			else
				lo = mid + 1;
		}
	}
	if (found == NULL)
		return STORE_NOTFOUND;
	user_copy(found, out);
	return STORE_OK;
}

static int
view_alias_get(struct store *s, const char *name, struct store_alias *out)
{
	struct snapshot *sn = view_snapshot(s);
	struct store_alias key = { 0 }, *a;
	char buf[256];

	if (sn->naliases == 0 ||
	    (key.name = (char *)lower_key(name, buf, sizeof(buf))) == NULL ||
	    (a = bsearch(&key, sn->aliases, sn->naliases, sizeof(*a), cmp_alias)) == NULL)
		return STORE_NOTFOUND;
	out->id = a->id;
	out->name = xstrdup(a->name);
	for (size_t i = 0; i < a->members.n; i++)
		strlist_add(&out->members, a->members.v[i]);
	return STORE_OK;
}

static void
view_read_nothing(struct store *s)
{
	(void)s;
}

/* Only what resolving a recipient reads; nothing else may be asked of a view. */
static const struct store_backend view_backend = {
	.name = "directory snapshot",
	.read_begin = view_read_nothing,
	.read_end = view_read_nothing,
	.domain_get = view_domain_get,
	.user_get = view_user_get,
	.alias_get = view_alias_get,
};

struct store_dirview *
store_dirview_new(struct store_directory *dir, struct event_base *base)
{
	struct store_dirview *v = xcalloc(1, sizeof(*v));

	v->dir = dir;
	v->gen = (unsigned)-1;
	v->refresher = base == dir->base;
	v->store.be = &view_backend;
	v->store.impl = v;
	return v;
}

void
store_dirview_free(struct store_dirview **vp)
{
	if (*vp == NULL)
		return;
	snapshot_unref((*vp)->snap);
	free(*vp);
	*vp = NULL;
}

/*
 * The newest snapshot, if it is as new as the database.  The stamp is
 * read before the generation: refresh_done publishes a snapshot before
 * the stamp that vouches for it.
 */
static int
view_take(struct store_dirview *v)
{
	struct store_directory *dir = v->dir;
	uint64_t stamp = atomic_load_explicit(&dir->stamp, memory_order_acquire);
	struct snapshot *sn;

	if (atomic_load_explicit(&dir->gen, memory_order_acquire) != v->gen) {
		pthread_mutex_lock(&dir->lock);
		if ((sn = dir->current) != NULL)
			atomic_fetch_add_explicit(&sn->refs, 1, memory_order_relaxed);
		v->gen = atomic_load_explicit(&dir->gen, memory_order_relaxed);
		pthread_mutex_unlock(&dir->lock);
		snapshot_unref(v->snap);
		v->snap = sn;
	}
	return v->snap != NULL && (dir->changes == NULL ||
	    atomic_load_explicit(dir->changes, memory_order_acquire) == stamp);
}

static void refresh_start(struct store_directory *dir);

struct store *
store_dirview_get(struct store_dirview *v)
{
	if (v == NULL || !atomic_load_explicit(&v->dir->usable, memory_order_acquire))
		return NULL;
	if (view_take(v))
		return &v->store;
	if (!v->refresher || v->dir->changes == NULL)
		return NULL;
	refresh_start(v->dir);	/* SQLite: done by the time it returns */
	return view_take(v) ? &v->store : NULL;
}

/* ---- the refresher ---- */

/* On loop 0's reader: the listening connection first, so no change falls between. */
static void
refresh_work(struct store *db, struct store_read *r)
{
	struct store_directory *dir = COMPLETION_OWNER(r, struct store_directory, read);
	char err[1024];
	int64_t v;

	dir->fresh = NULL;
	dir->new_listener = NULL;
	if (dir->want_listener) {
		struct store *l = NULL;

		/* Said once per outage, not at every try; polling covers meanwhile. */
		if (store_open(&dir->cfg, STORE_READONLY, &l, err, sizeof(err)) != STORE_OK) {
			if (dir->listen_fails++ == 0)
				log_warn("store: a connection to hear of directory changes: %s;"
				    " trying again every second, and looking for changes"
				    " meanwhile", err);
		} else if (store_listen(l, STORE_DIRECTORY_CHANNEL) != STORE_OK ||
		    store_listen(l, STORE_QUEUE_CHANNEL) != STORE_OK) {
			if (dir->listen_fails++ == 0)
				log_warn("store: listening for directory changes: %s;"
				    " trying again every second", store_errmsg(l));
		} else {
			if (dir->listen_fails > 0)
				log_info("store: hearing of directory changes again, after %lu"
				    " failed tries", dir->listen_fails);
			dir->listen_fails = 0;
			dir->new_listener = l, l = NULL;
		}
		store_close(&l);
	}
	if (dir->cfg.backend == STORE_BACKEND_SQLITE && dir->changes == NULL) {
		if (db->be->directory_changes)
			dir->changes = db->be->directory_changes(db);
		if (dir->changes == NULL && !dir->changes_warned) {
			dir->changes_warned = 1;
			log_warn("store: cannot share the directory's change counter with"
			    " other processes (%s" STORE_DIRECTORY_COUNTER "); every"
			    " recipient is looked up in the store", dir->cfg.path);
		}
	}
	if (dir->changes)
		dir->fresh_stamp = atomic_load_explicit(dir->changes, memory_order_acquire);
	if ((dir->status = db->be->directory_version(db, &v)) == STORE_OK &&
	    (v != dir->version || dir->new_listener))
		dir->status = snapshot_load(db, &dir->fresh, &v);
	if (dir->status != STORE_OK)
		snprintf(dir->errmsg, sizeof(dir->errmsg), "%s", store_errmsg(db));
}

static void
listener_lost(struct store_directory *dir)
{
	atomic_store_explicit(&dir->usable, 0, memory_order_release);
	if (dir->listen_ev)
		event_free(dir->listen_ev);
	dir->listen_ev = NULL;
	store_close(&dir->listener);
}

/* On loop 0: a change was made (or the connection went): the snapshot waits for a reload. */
static void
listener_readable(evutil_socket_t fd, short what, void *arg)
{
	struct store_directory *dir = arg;
	int queue, n = store_notified(dir->listener, STORE_QUEUE_CHANNEL, &queue);

	(void)fd;
	(void)what;
	if (queue > 0 && dir->queue_changed)
		dir->queue_changed(dir->queue_arg);
	if (n == 0 || n == queue)
		return;
	atomic_store_explicit(&dir->usable, 0, memory_order_release);
	if (n < 0) {
		log_warn("store: the connection hearing of directory changes was lost");
		listener_lost(dir);
	} else
		dir->notified += (unsigned long)(n - queue);
	refresh_start(dir);
}

static void
refresh_done(struct store_read *r, int cancelled)
{
	struct store_directory *dir = COMPLETION_OWNER(r, struct store_directory, read);
	struct snapshot *old = NULL;

	dir->busy = 0;
	if (cancelled) {
		snapshot_unref(dir->fresh);
		store_close(&dir->new_listener);
		dir->fresh = NULL;
		return;
	}
	if (dir->new_listener && dir->readers == NULL)
		store_close(&dir->new_listener);	/* stopped meanwhile */
	if (dir->new_listener) {
		dir->listener = dir->new_listener;
		dir->new_listener = NULL;
		dir->listen_ev = event_new(dir->base, store_listen_fd(dir->listener),
		    EV_READ | EV_PERSIST, listener_readable, dir);
		event_add(dir->listen_ev, NULL);
		if (dir->queue_changed)
			dir->queue_changed(dir->queue_arg);	/* what was missed meanwhile */
	}
	if (dir->status != STORE_OK && dir->read_fails++ == 0)
		log_warn("store: reading the directory: %s; trying again every second,"
		    " with the last one read meanwhile", dir->errmsg);
	else if (dir->status == STORE_OK && dir->read_fails > 0) {
		log_info("store: the directory is read again, after %lu failed tries",
		    dir->read_fails);
		dir->read_fails = 0;
	}
	if (dir->fresh) {
		pthread_mutex_lock(&dir->lock);
		old = dir->current;
		dir->current = dir->fresh;
		dir->version = dir->fresh->version;
		atomic_fetch_add_explicit(&dir->gen, 1, memory_order_release);
		pthread_mutex_unlock(&dir->lock);
		dir->fresh = NULL;
		snapshot_unref(old);
	}
	if (dir->status == STORE_OK && dir->changes)
		atomic_store_explicit(&dir->stamp, dir->fresh_stamp, memory_order_release);
	if (dir->notified != dir->asked)
		refresh_start(dir);	/* a change came meanwhile: it may not be in this one */
	else if (dir->status == STORE_OK && (dir->listener || dir->changes) && dir->current)
		atomic_store_explicit(&dir->usable, 1, memory_order_release);
}

static void
refresh_start(struct store_directory *dir)
{
	if (dir->busy || dir->readers == NULL)
		return;
	dir->busy = 1;
	dir->asked = dir->notified;
	/* the reader never looks at listener */
	dir->want_listener = dir->listener == NULL && dir->cfg.backend == STORE_BACKEND_POSTGRESQL;
	dir->read.work = refresh_work;
	dir->read.done = refresh_done;
	store_read_submit(dir->readers, &dir->read);
}

static void
refresh_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	refresh_start(arg);
}

struct store_directory *
store_directory_new(const struct store_config *cfg, struct event_base *base,
    struct store_readers *readers)
{
	struct store_directory *dir = xcalloc(1, sizeof(*dir));

	pthread_mutex_init(&dir->lock, NULL);
	dir->version = -1;
	dir->cfg = *cfg;
	dir->cfg.path = cfg->path ? xstrdup(cfg->path) : NULL;
	dir->cfg.dsn = cfg->dsn ? xstrdup(cfg->dsn) : NULL;
	dir->cfg.node_id = cfg->node_id ? xstrdup(cfg->node_id) : NULL;
	endpoint_list_copy(&dir->dns, cfg->dns_servers);
	dir->cfg.dns_servers = &dir->dns;
	dir->base = base;
	dir->readers = readers;
	dir->timer = event_new(base, -1, EV_PERSIST, refresh_timer, dir);
	event_add(dir->timer, &(struct timeval){ 0, STORE_DIRECTORY_POLL_MS * 1000 });
	refresh_start(dir);	/* the first load at once */
	return dir;
}

/* After the readers are gone (the last refresh came back through them). */
void
store_directory_free(struct store_directory **dp)
{
	struct store_directory *dir = *dp;

	if (dir == NULL)
		return;
	snapshot_unref(dir->current);
	snapshot_unref(dir->fresh);
	store_close(&dir->new_listener);
	listener_lost(dir);
	pthread_mutex_destroy(&dir->lock);
	free((char *)dir->cfg.path);
	free((char *)dir->cfg.dsn);
	free((char *)dir->cfg.node_id);
	endpoint_list_clear(&dir->dns);
	free(dir);
	*dp = NULL;
}

void
store_directory_hear_queue(struct store_directory *dir, void (*queue_changed)(void *), void *arg)
{
	if (dir == NULL)
		return;
	dir->queue_changed = queue_changed;
	dir->queue_arg = arg;
}

int
store_directory_hearing(const struct store_directory *dir)
{
	return dir != NULL && dir->listener != NULL;
}

void
store_directory_stop(struct store_directory *dir)
{
	if (dir == NULL)
		return;
	if (dir->timer)
		event_free(dir->timer);
	dir->timer = NULL;
	dir->readers = NULL;	/* going: a refresh still in flight starts no other */
	listener_lost(dir);
}
