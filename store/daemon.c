/*
 * daemon.c - the store's life in a daemon: checked (and created) before
 * the daemon detaches, so a store that cannot be opened is reported on
 * the terminal; given to [general] user while still root; opened with
 * its writer thread once privileges are dropped; and closed after the
 * loop, once every submitted commit has been answered.
 */
#include "store/backend.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/config.h"
#include "lib/daemon.h"
#include "lib/log.h"
#include "lib/server.h"

void
store_config_of(const struct umbox_config *cfg, struct store_config *out, char **path)
{
	memset(out, 0, sizeof(*out));
	*path = NULL;
	if (cfg->store.backend == CONFIG_BACKEND_POSTGRESQL) {
		out->backend = STORE_BACKEND_POSTGRESQL;
		out->dsn = cfg->store.dsn;
		out->node_id = cfg->store.node_id;
		out->dns_servers = &cfg->dns.servers;
		return;
	}
	out->backend = STORE_BACKEND_SQLITE;
	out->path = *path = config_store_path(cfg);
}

unsigned
store_wait_limit(const struct umbox_config *cfg)
{
	return cfg->store.backend == CONFIG_BACKEND_POSTGRESQL ? STORE_WAIT_REMOTE :
	    STORE_WAIT_LOCAL;
}

const char *
store_owner_name(const struct umbox_config *cfg)
{
	return cfg->store.backend == CONFIG_BACKEND_POSTGRESQL ? cfg->store.node_id :
	    cfg->general.hostname;
}

/*
 * On PostgreSQL each daemon of a node holds a name of its own in the
 * nodes table, "NODE_ID/smtpd", so that a POP3 lock is freed when its own
 * pop3d dies, whatever the node's smtpd does.  The instance is the
 * process: "HOST MACHINE-ID BOOT-ID PID/START".  A daemon restarted on
 * the same machine takes its name back at once from a process that is
 * gone; one whose holder lives (a second daemon started with the same
 * node_id), or another machine's while that one beats, is refused.
 */
static void
daemon_store_config(const struct server *srv, struct store_config *sc, char **path,
    char **node)
{
	const char *prog = strchr(srv->def->name, '-');

	store_config_of(srv->cfg, sc, path);
	*node = NULL;
	if (sc->backend == STORE_BACKEND_POSTGRESQL)
		sc->node_id = *node = xasprintf("%s/%s", sc->node_id, prog ? prog + 1 :
		    srv->def->name);
}

/* The first line of a small file, without spaces ("-": none). */
static void
read_word(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");

	buf[0] = '\0';
	if (f) {
		if (fgets(buf, (int)len, f) == NULL)
			buf[0] = '\0';
		fclose(f);
	}
	buf[strcspn(buf, " \t\n")] = '\0';
	if (buf[0] == '\0')
		snprintf(buf, len, "-");
}

/* A process's start time since boot, in clock ticks (proc(5)); 0: no such process. */
static unsigned long long
process_start(long pid)
{
	char path[64], line[1024], *p;
	unsigned long long start = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	/* Field 22; the command in field 2 may hold spaces and parentheses. */
	if (fgets(line, sizeof(line), f) && (p = strrchr(line, ')')) != NULL &&
	    sscanf(p + 1, " %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s"
	    " %*s %*s %*s %llu", &start) != 1)
		start = 0;
	fclose(f);
	return start;
}

static void
daemon_instance(char *buf, size_t len)
{
	char host[256] = "", id[64], boot[64];

	if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "unknown");
	host[strcspn(host, " ")] = '\0';
	read_word("/etc/machine-id", id, sizeof(id));
	read_word("/proc/sys/kernel/random/boot_id", boot, sizeof(boot));
	snprintf(buf, len, "%s %s %s %ld/%llu", host, id, boot, (long)getpid(),
	    process_start((long)getpid()));
}

/*
 * Where holder is: -1 another machine (or another boot of this one), or
 * not known; 0 a process of this machine that lives (*pid); 1 one that is
 * gone (its pid is free, or another process's now).  An instance of the
 * older form, "HOST MACHINE-ID", is gone when it names this machine.
 */
static int
holder_here(const char *mine, const char *holder, long *pid)
{
	char mhost[256], mid[64], mboot[64], hhost[256], hid[64], hboot[64];
	unsigned long long start;
	int n = sscanf(holder, "%255s %63s %63s %ld/%llu", hhost, hid, hboot, pid, &start);

	if (sscanf(mine, "%255s %63s %63s", mhost, mid, mboot) != 3 || n < 1)
		return -1;
	if (n < 3)
		return strcmp(hhost, mhost) == 0 && (n == 1 || strcmp(hid, mid) == 0) ? 1 : -1;
	if (n != 5 || strcmp(hid, mid) != 0 || strcmp(hboot, mboot) != 0 ||
	    strcmp(mboot, "-") == 0)
		return -1;
	return *pid <= 0 || process_start(*pid) != start ? 1 : 0;
}

/*
 * Claim the node's name for instance (replace: an instance of ours it may
 * take over, the process that started us); one whose holder on this
 * machine is gone is taken back.  A status; err says why not.
 */
static int
daemon_claim(struct store *s, const char *node, const char *instance, const char *replace,
    char *err, size_t errlen)
{
	char holder[320];
	long pid = 0;
	int status = store_node_claim(s, instance, replace, holder, sizeof(holder)), here = -1;

	if (status == STORE_EXISTS && holder[0] && (here = holder_here(instance, holder, &pid)) == 1)
		status = store_node_claim(s, instance, holder, NULL, 0);
	if (status == STORE_EXISTS && here == 0)
		snprintf(err, errlen, "node_id %s is in use by process %ld on this machine: stop it"
		    " first, or give each node its own [store] node_id", node, pid);
	else if (status != STORE_OK)
		snprintf(err, errlen, "%s", store_errmsg(s));
	return status;
}

/* The instance that claimed the name before the fork that detached us. */
static char claimed_instance[320];

/*
 * The heartbeat: a claim of the name again, through loop 0's readers;
 * and every minute or so, the sweep of messages whose last reference went
 * more than STORE_SWEEP_AFTER seconds ago.
 */
#define STORE_SWEEP_BEATS	12

struct store_heartbeat {
	struct event *timer;
	struct store_readers *readers;
	struct store_read read;
	int busy;
	unsigned beats;
	unsigned long fails;		/* beats failed in a row */
	int status;
	char node[320];			/* NODE_ID/program */
	char instance[320];
	char replace[320];		/* the first beat: the instance before the fork */
	char errmsg[512];
};

static void
beat_work(struct store *s, struct store_read *r)
{
	struct store_heartbeat *hb = COMPLETION_OWNER(r, struct store_heartbeat, read);
	size_t n;

	hb->status = daemon_claim(s, hb->node, hb->instance, hb->replace[0] ? hb->replace : NULL,
	    hb->errmsg, sizeof(hb->errmsg));
	if (hb->status == STORE_OK)
		hb->replace[0] = '\0';
	if (hb->beats++ % STORE_SWEEP_BEATS != 0)
		return;
	if (store_sweep(s, (int64_t)time(NULL) - STORE_SWEEP_AFTER, &n) != STORE_OK)
		log_warn("store: sweeping unreferenced messages: %s", store_errmsg(s));
	else if (n > 0)
		log_info("store: %zu unreferenced message%s removed", n, n == 1 ? "" : "s");
}

static void
beat_done(struct store_read *r, int cancelled)
{
	struct store_heartbeat *hb = COMPLETION_OWNER(r, struct store_heartbeat, read);

	hb->busy = 0;
	if (cancelled)
		return;
	/* Said once per outage, and when it ends. */
	if (hb->status != STORE_OK && hb->fails++ == 0)
		log_err("store: node heartbeat: %s; trying again every %d s (other nodes"
		    " take this node for gone after %d s)", hb->errmsg, STORE_NODE_BEAT / 2,
		    STORE_NODE_STALE);
	else if (hb->status == STORE_OK && hb->fails > 0) {
		log_info("store: node heartbeat again, after %lu failed beats", hb->fails);
		hb->fails = 0;
	}
}

static void
beat_timer(evutil_socket_t fd, short what, void *arg)
{
	struct store_heartbeat *hb = arg;

	if (hb->busy)
		return;		/* the server is slow: the last beat is still on its way */
	hb->busy = 1;
	hb->read.work = beat_work;
	hb->read.done = beat_done;
	store_read_submit(hb->readers, &hb->read);
}

/*
 * On SQLite one daemon of each kind per store: a second umbox-pop3d would
 * take the first one's mailbox locks for its own earlier process's, a
 * second umbox-smtpd its queue claims.  An flock on a file beside the
 * store says so; it goes with the process (the descriptor is never
 * closed, nor inherited by what the daemon runs).
 */
static int store_lock_fd = -1;

char *
store_daemon_lock_file(const char *path, const char *prog)
{
	return xasprintf("%s-%s.lock", path, prog);
}

void
store_daemon_lock_pid(int fd, char *pid, size_t len)
{
	ssize_t n = len > 1 ? pread(fd, pid, len - 1, 0) : -1;

	if (len > 0)
		pid[n > 0 ? (size_t)n : 0] = '\0';
	if (n > 0)
		pid[strcspn(pid, "\n")] = '\0';
}

static int
daemon_lock_store(const struct server *srv, const char *path)
{
	char *file = store_daemon_lock_file(path, srv->def->name), pid[32];
	int fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);

	if (fd < 0) {
		log_err("cannot open %s: %s", file, strerror(errno));
		free(file);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		store_daemon_lock_pid(fd, pid, sizeof(pid));
		log_err("another %s (%s%s) serves the store %s already; stop it first, or give"
		    " this one its own data_dir", srv->def->name, pid[0] ? "pid " : "its lock: ",
		    pid[0] ? pid : file, path);
		close(fd);
		free(file);
		return -1;
	}
	free(file);
	store_lock_fd = fd;
	return 0;
}

/* After the fork that detaches: the pid in the lock file is the daemon's. */
static void
daemon_lock_store_pid(void)
{
	char pid[32];
	int len;

	if (store_lock_fd < 0)
		return;
	len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(store_lock_fd, 0) != 0 || pwrite(store_lock_fd, pid, (size_t)len, 0) != len)
		log_warn("cannot write the pid into the store's lock file: %s", strerror(errno));
}

int
store_daemon_check(struct server *srv)
{
	const struct umbox_config *cfg = srv->cfg;
	char err[1024], instance[320], *path, *node;
	struct store_config sc;
	struct store *s = NULL;

	daemon_store_config(srv, &sc, &path, &node);
	/*
	 * The data directory holds the spool files (on every backend) and the
	 * SQLite store: made as umboxctl makes it, or the start fails here
	 * rather than every large message and every delivery later.
	 */
	if (mkdir_p(cfg->general.data_dir, 0750) != 0 || access(cfg->general.data_dir,
	    W_OK | X_OK) != 0) {
		log_err("data_dir %s: %s", cfg->general.data_dir, strerror(errno));
		free(path);
		free(node);
		return -1;
	}
	if (path && daemon_lock_store(srv, path) != 0) {
		free(path);
		free(node);
		return -1;
	}
	if (store_open(&sc, STORE_CREATE, &s, err, sizeof(err)) != STORE_OK) {
		log_err("store %s: %s", store_config_name(&sc), err);
		free(path);
		free(node);
		return -1;
	}
	daemon_instance(instance, sizeof(instance));
	if (node && daemon_claim(s, node, instance, NULL, err, sizeof(err)) != STORE_OK) {
		log_err("store %s: %s", store_config_name(&sc), err);
		store_close(&s);
		free(node);
		return -1;
	}
	snprintf(claimed_instance, sizeof(claimed_instance), "%s", instance);
	store_close(&s);
	free(node);
	/* The data directory holds the spool files, and the SQLite store. */
	if (daemon_give_to_user(cfg, cfg->general.data_dir) != 0 ||
	    (path && daemon_give_to_user(cfg, path) != 0))
		log_warn("cannot give %s to user %s: %s", path ? path : cfg->general.data_dir,
		    cfg->general.user, strerror(errno));
	/* The directory's change counter, should a daemon run as root have made it. */
	if (path) {
		char *counter = xasprintf("%s" STORE_DIRECTORY_COUNTER, path);

		(void)daemon_give_to_user(cfg, counter);
		free(counter);
	}
	free(path);
	return 0;
}

/*
 * Every loop gets its readers and a handle on the one writer thread.  On
 * SQLite the readers use the loop's own connection; on PostgreSQL one of
 * their own, driven by the loop in a coroutine, so that no read can
 * block it.
 */
int
store_daemon_open(struct server *srv)
{
	char err[1024], *path, *node;
	struct store_config sc;
	int status = STORE_OK;

	daemon_lock_store_pid();
	daemon_store_config(srv, &sc, &path, &node);

	for (unsigned i = 0; i < srv->nloops && status == STORE_OK; i++) {
		struct server_loop *l = &srv->loops[i];

		if (sc.backend == STORE_BACKEND_SQLITE &&
		    (status = store_open(&sc, STORE_CREATE, &l->store, err, sizeof(err))) != STORE_OK)
			break;
		status = store_readers_new(&sc, l->base, l->store, &l->readers, err, sizeof(err));
		if (status != STORE_OK)
			break;
		status = i == 0 ?
		    store_writer_new(&sc, l->base, &l->writer, err, sizeof(err)) :
		    store_writer_attach(srv->loops[0].writer, &sc, l->base, &l->writer, err,
			sizeof(err));
	}
	if (status == STORE_OK && (node || srv->def->resolves)) {
		srv->directory = store_directory_new(&sc, srv->loops[0].base,
		    srv->loops[0].readers);
		for (unsigned i = 0; i < srv->nloops; i++)
			srv->loops[i].directory = store_dirview_new(srv->directory,
			    srv->loops[i].base);
	}
	if (status == STORE_OK && node) {
		struct store_heartbeat *hb = xcalloc(1, sizeof(*hb));

		daemon_instance(hb->instance, sizeof(hb->instance));
		snprintf(hb->node, sizeof(hb->node), "%s", node);
		/* After the fork that detached us: the name goes to this process at once. */
		snprintf(hb->replace, sizeof(hb->replace), "%s", claimed_instance);
		hb->readers = srv->loops[0].readers;
		hb->timer = event_new(srv->loops[0].base, -1, EV_PERSIST, beat_timer, hb);
		event_add(hb->timer, &(struct timeval){ STORE_NODE_BEAT / 2, 0 });
		event_active(hb->timer, EV_TIMEOUT, 0);
		srv->heartbeat = hb;
	}
	if (status != STORE_OK) {
		log_err("store %s: %s", store_config_name(&sc), err);
		store_daemon_close(srv);
	}
	free(path);
	free(node);
	return status == STORE_OK ? 0 : -1;
}

int
store_daemon_startup(struct server *srv, const char *what, int (*fn)(struct store *s, void *arg),
    void *arg)
{
	char err[1024], *path, *node;
	struct store_config sc;
	struct store *s = srv->loops[0].store;
	int status;

	if (s)
		return fn(s, arg);
	daemon_store_config(srv, &sc, &path, &node);
	status = store_open(&sc, 0, &s, err, sizeof(err));
	if (status != STORE_OK)	/* not fatal: what fn does can wait for a lease */
		log_warn("cannot %s: store %s: %s", what, store_config_name(&sc), err);
	else
		status = fn(s, arg);
	store_close(&s);
	free(path);
	free(node);
	return status;
}

/*
 * What still waits on a server that does not answer when the daemon
 * stops: not freed (the wait in progress refers to it), but kept
 * reachable from here until the process exits.
 */
static void **left_behind;
static size_t nleft_behind;

static void
leave_behind(void *p)
{
	left_behind = xreallocarray(left_behind, nleft_behind + 1, sizeof(*left_behind));
	left_behind[nleft_behind++] = p;
}

/*
 * The thread (loop 0's handle) first: the others' last answers run as
 * they go.  The sessions are gone, each answered or closed: nothing that
 * still waits on the server has been acknowledged, so past
 * STORE_WAIT_REMOTE seconds it is left to the server rather than holding
 * the daemon up for as long as the server may take.
 */
void
store_daemon_close(struct server *srv)
{
	struct store_heartbeat *hb = srv->heartbeat;
	int64_t deadline = monotonic_ms() + STORE_WAIT_REMOTE * 1000;
	unsigned writes = 0, reads = 0, n;

	if (hb) {
		event_free(hb->timer);
		srv->heartbeat = NULL;
	}
	store_directory_stop(srv->directory);
	for (unsigned i = 0; i < srv->nloops; i++) {
		struct server_loop *l = &srv->loops[i];

		if ((n = store_writer_finish(l->writer, deadline)) == 0)
			store_writer_free(&l->writer);
		else
			leave_behind(l->writer), l->writer = NULL, writes += n;
	}
	for (unsigned i = 0; i < srv->nloops; i++) {
		struct server_loop *l = &srv->loops[i];

		if ((n = store_readers_finish(l->readers, deadline)) == 0)
			store_readers_free(&l->readers);
		else
			leave_behind(l->readers), l->readers = NULL, reads += n;
		store_close(&l->store);
		store_dirview_free(&l->directory);
	}
	if (writes || reads) {
		log_warn("store: %u commit%s and %u read%s still wait on the server %d s after"
		    " the last session; left to the server (none was acknowledged)",
		    writes, writes == 1 ? "" : "s", reads, reads == 1 ? "" : "s",
		    STORE_WAIT_REMOTE);
		/* A read in flight may be the directory's refresh or the heartbeat's. */
		if (reads) {
			leave_behind(srv->directory);
			leave_behind(hb);
			srv->directory = NULL;
			return;
		}
	}
	store_directory_free(&srv->directory);	/* its last refresh came back with the readers */
	free(hb);	/* its last beat came back with the readers */
}
