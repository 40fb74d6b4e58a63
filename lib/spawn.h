/*
 * spawn.h - run a helper program from a daemon without waiting for it:
 * posix_spawn (no shell, only descriptors 0-2 inherited), then the loop
 * reaps it; one still running after its timeout is killed.  A failure
 * to start, a non-zero exit, a signal or the kill is logged, never more.
 */
#ifndef UMBOX_SPAWN_H
#define UMBOX_SPAWN_H

struct event_base;

/* argv[0] is the program's absolute path; argv ends with NULL. */
void spawn_async(struct event_base *base, char *const argv[], unsigned timeout_ms);

/*
 * The loop on base stops for good: children still running are left to
 * finish on their own (init reaps them), and nothing watches them.
 */
void spawn_forget(struct event_base *base);

/* The same, waiting for it (umboxctl): at most timeout_ms, then kill. */
void spawn_wait(char *const argv[], unsigned timeout_ms);

#endif
