/*
 * spawn.h - run a helper program from a daemon without waiting for it:
 * posix_spawn (no shell, stdin /dev/null, stdout and stderr to our
 * stderr, nothing else inherited, a process group of its own), then the loop
 * reaps it; one still running after its timeout is killed.  A failure
 * to start, a non-zero exit, a signal or the kill is logged, never more.
 */
#ifndef UMBOX_SPAWN_H
#define UMBOX_SPAWN_H

#include <sys/types.h>

struct event_base;

/* argv[0] is the program's absolute path; argv ends with NULL. */
void spawn_async(struct event_base *base, char *const argv[], unsigned timeout_ms);

/*
 * The loop on base stops for good: children still running are left to
 * finish on their own (init reaps them), and nothing watches them.
 */
void spawn_forget(struct event_base *base);

/*
 * The same, waited for (umboxctl): helpers started into a set, then all
 * waited for together, at most timeout_ms in all; those still running
 * then are killed with what they started.  The set starts zeroed and is
 * empty again after the wait.
 */
struct spawn_set {
	struct { pid_t pid; char *name; } *v;
	size_t n;
};
void spawn_set_start(struct spawn_set *set, char *const argv[]);
void spawn_set_wait(struct spawn_set *set, unsigned timeout_ms);

#endif
