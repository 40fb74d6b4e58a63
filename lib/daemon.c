/*
 * daemon.c - option parsing, config loading and privilege drop for the daemons.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"

static const char *daemon_name = "umbox";

static void
daemon_usage(const char *name, FILE *f)
{
	fprintf(f, "usage: %s [-c FILE] [-f] [-n]\n"
	    "  -c FILE  configuration file (default " UMBOX_DEFAULT_CONFIG ")\n"
	    "  -f       stay in the foreground and log to stderr\n"
	    "  -n       check the configuration and exit\n"
	    "  -V       print the version\n", name);
}

void
daemon_start(int argc, char **argv, const char *name, struct daemon_opts *o,
    struct umbox_config *cfg)
{
	static char err[CONFIG_ERR_TEXT_MAX];
	int ch;

	memset(o, 0, sizeof(*o));
	while ((ch = getopt(argc, argv, "c:fnhV")) != -1) {
		switch (ch) {
		case 'c':
			o->config_path = optarg;
			break;
		case 'f':
			o->foreground = 1;
			break;
		case 'n':
			o->check_only = 1;
			break;
		case 'h':
			daemon_usage(name, stdout);
			exit(0);
		case 'V':
			printf("%s %s\n", name, UMBOX_VERSION);
			exit(0);
		default:
			daemon_usage(name, stderr);
			exit(2);
		}
	}
	if (optind != argc) {
		daemon_usage(name, stderr);
		exit(2);
	}
	/* stderr until daemon_detach: startup errors reach the terminal. */
	log_init(name, 1);
	daemon_name = name;
	if (config_load(cfg, o->config_path ? o->config_path : UMBOX_DEFAULT_CONFIG,
	    o->config_path == NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		fprintf(stderr, "%s: configuration errors; not starting\n", name);
		exit(1);
	}
	if (o->check_only) {
		/* What the start would trip over, beyond the file itself. */
		if (geteuid() == 0 && cfg->general.user[0] != '\0' &&
		    getpwnam(cfg->general.user) == NULL) {
			fprintf(stderr, "%s: [general] user %s does not exist; create it or set"
			    " [general] user\n", cfg->path ? cfg->path : "(defaults)",
			    cfg->general.user);
			fprintf(stderr, "%s: configuration errors; not starting\n", name);
			exit(1);
		}
		if (cfg->voicemail.mwi_command[0] != '\0') {
			const char *cmd = cfg->voicemail.mwi_command, *why = NULL;
			struct stat st;

			if (access(cmd, X_OK) != 0)
				why = strerror(errno);
			else if (stat(cmd, &st) != 0)
				why = strerror(errno);
			else if (!S_ISREG(st.st_mode))
				why = "not a file";
			if (why)
				fprintf(stderr, "%s: warning: [voicemail] mwi_command %s: %s;"
				    " message-waiting lamps will not be told\n", name, cmd, why);
		}
		/* The TLS files are the server's to check: daemon_check_done(). */
	}
}

void
daemon_check_done(const struct umbox_config *cfg, const char *tls_err, int tls_needed)
{
	if (tls_err && tls_needed) {
		fprintf(stderr, "%s: %s (needed for implicit TLS)\n", daemon_name, tls_err);
		fprintf(stderr, "%s: configuration errors; not starting\n", daemon_name);
		exit(1);
	}
	if (tls_err)
		fprintf(stderr, "%s: warning: %s: STARTTLS/STLS would be off until a certificate"
		    " loads\n", daemon_name, tls_err);
	printf("%s: configuration %s is valid\n", daemon_name, cfg->path ? cfg->path :
	    "(defaults)");
	exit(0);
}

void
daemon_detach(const struct daemon_opts *o, struct event_base *base)
{
	pid_t pid;
	int fd;

	if (o->foreground)
		return;
	if ((pid = fork()) < 0) {
		log_err("fork: %s", strerror(errno));
		exit(1);
	}
	if (pid > 0)
		_exit(0);
	log_init(daemon_name, 0);
	setsid();
	if (chdir("/") != 0)
		log_warn("chdir /: %s", strerror(errno));
	if ((fd = open("/dev/null", O_RDWR)) >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	if (event_reinit(base) != 0) {
		log_err("cannot re-initialise the event loop after fork");
		exit(1);
	}
}

int
daemon_give_to_user(const struct umbox_config *cfg, const char *path)
{
	struct passwd *pw;
	struct stat st;

	if (geteuid() != 0 || cfg->general.user[0] == '\0' ||
	    (pw = getpwnam(cfg->general.user)) == NULL || pw->pw_uid == 0)
		return 0;
	if (stat(path, &st) != 0 || st.st_uid != 0)
		return 0;
	return chown(path, pw->pw_uid, pw->pw_gid);
}

unsigned long
daemon_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 1024;
	return (unsigned long)rl.rlim_cur;
}

void
daemon_drop_privileges(const struct umbox_config *cfg)
{
	struct rlimit rl;
	struct passwd *pw;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);	/* a full disk is an error to report, not a death */

	if (geteuid() != 0 || cfg->general.user[0] == '\0')
		return;
	if ((pw = getpwnam(cfg->general.user)) == NULL) {
		log_err("user %s does not exist; create it or set [general] user",
		    cfg->general.user);
		exit(1);
	}
	if (setgroups(0, NULL) != 0 || initgroups(pw->pw_name, pw->pw_gid) != 0 ||
	    setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
		log_err("cannot switch to user %s: %s", cfg->general.user, strerror(errno));
		exit(1);
	}
	if (setuid(0) == 0) {
		log_err("privileges could be regained after switching to %s", cfg->general.user);
		exit(1);
	}
}
