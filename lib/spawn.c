/*
 * spawn.c - helper programs started by posix_spawn, reaped without
 * blocking (daemons) or waited for with a deadline (umboxctl).
 */
#include "lib/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/log.h"
#include "lib/util.h"

#define SPAWN_POLL_MS	50

extern char **environ;

struct child {
	pid_t pid;
	char name[256];
	unsigned waited_ms, timeout_ms;
	int killed;
	struct event *timer;
};

/*
 * Start argv[0]: stdin from /dev/null and stdout to our stderr (what it
 * prints is a message for the log or the administrator, never part of
 * umboxctl's output), nothing else inherited, in a process group of its
 * own so that a kill reaches whatever it started.  The pid, or -1.
 */
static pid_t
start(char *const argv[])
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	pid_t pid;
	int err;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
	/* Sockets, the store and TLS keys stay with the daemon. */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setpgroup(&attr, 0);
	err = posix_spawn(&pid, argv[0], &fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	if (err != 0) {
		log_warn("%s: cannot start it: %s", argv[0], strerror(err));
		return -1;
	}
	return pid;
}

/* The helper and everything it started. */
static void
kill_group(pid_t pid)
{
	if (kill(-pid, SIGKILL) != 0)
		kill(pid, SIGKILL);
}

/* How it ended, logged when it is worth saying. */
static void
report(const char *name, int status, int killed, unsigned timeout_ms)
{
	if (killed)
		log_warn("%s: still running after %u ms: killed", name, timeout_ms);
	else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		log_warn("%s: exit status %d", name, WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		log_warn("%s: killed by signal %d", name, WTERMSIG(status));
}

static void
on_poll(evutil_socket_t fd, short what, void *arg)
{
	struct child *ch = arg;
	int status;
	pid_t w = waitpid(ch->pid, &status, WNOHANG);

	if (w == ch->pid || (w < 0 && errno == ECHILD)) {
		if (w == ch->pid)
			report(ch->name, status, ch->killed, ch->timeout_ms);
		event_free(ch->timer);
		free(ch);
		return;
	}
	ch->waited_ms += SPAWN_POLL_MS;
	if (!ch->killed && ch->waited_ms >= ch->timeout_ms) {
		kill_group(ch->pid);
		ch->killed = 1;
	}
	event_add(ch->timer, &(struct timeval){ 0, SPAWN_POLL_MS * 1000 });
}

void
spawn_async(struct event_base *base, char *const argv[], unsigned timeout_ms)
{
	struct child *ch;
	pid_t pid = start(argv);

	if (pid < 0)
		return;
	ch = xcalloc(1, sizeof(*ch));
	ch->pid = pid;
	ch->timeout_ms = timeout_ms;
	snprintf(ch->name, sizeof(ch->name), "%s", argv[0]);
	ch->timer = evtimer_new(base, on_poll, ch);
	event_add(ch->timer, &(struct timeval){ 0, SPAWN_POLL_MS * 1000 });
}

struct watches {
	struct child **v;
	size_t n, cap;
};

static int
collect(const struct event_base *base, const struct event *ev, void *arg)
{
	struct watches *w = arg;

	(void)base;
	if (event_get_callback(ev) == on_poll) {
		if (w->n == w->cap) {
			w->cap = w->cap ? 2 * w->cap : 8;
			w->v = xreallocarray(w->v, w->cap, sizeof(*w->v));
		}
		w->v[w->n++] = event_get_callback_arg(ev);
	}
	return 0;
}

void
spawn_forget(struct event_base *base)
{
	struct watches w = { 0 };

	/* Events may not be freed while the base lists them: collect first. */
	event_base_foreach_event(base, collect, &w);
	for (size_t i = 0; i < w.n; i++) {
		log_info("%s: still running as the daemon stops (pid %ld): left to finish",
		    w.v[i]->name, (long)w.v[i]->pid);
		event_free(w.v[i]->timer);
		free(w.v[i]);
	}
	free(w.v);
}

void
spawn_set_start(struct spawn_set *set, char *const argv[])
{
	pid_t pid = start(argv);

	if (pid < 0)
		return;
	set->v = xreallocarray(set->v, set->n + 1, sizeof(*set->v));
	set->v[set->n].pid = pid;
	set->v[set->n].name = xstrdup(argv[0]);
	set->n++;
}

void
spawn_set_wait(struct spawn_set *set, unsigned timeout_ms)
{
	unsigned waited = 0;
	size_t left = set->n;
	int killed = 0;

	while (left > 0) {
		for (size_t i = 0; i < set->n; i++) {
			int status;
			pid_t w;

			if (set->v[i].pid <= 0)
				continue;
			w = waitpid(set->v[i].pid, &status, WNOHANG);
			if (w == 0)
				continue;
			if (w < 0 && errno == EINTR)
				continue;
			if (w == set->v[i].pid)
				report(set->v[i].name, status, killed, timeout_ms);
			set->v[i].pid = 0;
			left--;
		}
		if (left == 0)
			break;
		if (!killed && waited >= timeout_ms) {
			for (size_t i = 0; i < set->n; i++)
				if (set->v[i].pid > 0)
					kill_group(set->v[i].pid);
			killed = 1;
		}
		usleep(10 * 1000);
		waited += 10;
	}
	for (size_t i = 0; i < set->n; i++)
		free(set->v[i].name);
	free(set->v);
	set->v = NULL;
	set->n = 0;
}
