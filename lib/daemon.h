/*
 * daemon.h - what umbox-smtpd and umbox-pop3d do alike at startup.
 */
#ifndef UMBOX_DAEMON_H
#define UMBOX_DAEMON_H

#include "config.h"

struct daemon_opts {
	const char *config_path;	/* -c, or NULL for the default */
	int foreground;			/* -f */
	int check_only;			/* -n */
};

/*
 * Parse -c FILE, -f, -n, -h, -V.  Exits on -h, -V and usage errors.
 * Then loads the config (the default file may be missing; a named one may
 * not), printing every error; exits 1 on errors.  With -n it returns for
 * daemon_check_done().
 */
void daemon_start(int argc, char **argv, const char *name, struct daemon_opts *o,
    struct umbox_config *cfg);

/*
 * The end of -n, once the server has tried its certificate and key:
 * tls_err is why they did not load (NULL: they did); tls_needed, a
 * listener of implicit TLS needs them, which makes it an error (exit 1),
 * else a warning.  Says the configuration is valid and exits 0.
 */
void daemon_check_done(const struct umbox_config *cfg, const char *tls_err, int tls_needed);

/*
 * After binding and loading keys: raise the fd limit, ignore SIGPIPE and
 * SIGXFSZ, and when running as root with [general] user set, switch to it
 * (supplementary groups too).  Exits on failure.
 */
void daemon_drop_privileges(const struct umbox_config *cfg);

/*
 * Without -f: go to the background (fork, new session, stdio on
 * /dev/null) once the listeners are bound, so that bind errors still
 * reach the terminal.  Must run before any thread is started; the event
 * base is re-initialised in the child.
 */
struct event_base;
void daemon_detach(const struct daemon_opts *o, struct event_base *base);

/*
 * Running as root with [general] user set (and existing): give path to
 * that user if root owns it, so that files root created (data_dir,
 * store.db) stay writable after privileges are dropped.  Returns 0, or -1
 * with errno when chown failed.
 */
int daemon_give_to_user(const struct umbox_config *cfg, const char *path);

/* The soft file descriptor limit after raising it. */
unsigned long daemon_fd_limit(void);

#endif
