/*
 * pop3-client - drain POP3 mailboxes as fast as one command at a time
 * allows, through one or several servers (nodes) at once.
 *
 *   pop3-client HOST PORT[,PORT...] USERS PARALLEL
 *
 * Mailboxes u0..u(USERS-1)@peer.test, password "pw", are shared among
 * PARALLEL processes (process k takes k, k+PARALLEL, ...), which start
 * together.  Mailbox u is drained through the (u mod nports)-th port:
 * greeting, USER, PASS, STAT, UIDL, RETR 1..n, DELE 1..n, QUIT, each
 * command sent when the previous answer is in: the steps of the peers
 * lab's C client, so that a run through one port measures the same load,
 * while several ports put one node of a site behind each.
 *
 * Prints "secs=S msgs=M bytes=B client_cpu_s=C": from the first start to
 * the last finish, messages retrieved, their bytes (lines with CRLF, no
 * status line nor final dot), and the processes' CPU time.  Exits 1 if a
 * server answers -ERR or a process fails.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PORTS_MAX	16

struct conn {
	int fd;
	size_t have, pos;
	char buf[65536];
};

struct tally {
	double start, end;
	long msgs, bytes;
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "pop3-client[%d]: ", (int)getpid());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* The next line without its CRLF, NUL-terminated in the buffer. */
static char *
conn_line(struct conn *c, size_t *len)
{
	for (;;) {
		char *p = c->buf + c->pos, *eol = memmem(p, c->have - c->pos, "\r\n", 2);
		ssize_t n;

		if (eol) {
			*eol = '\0';
			*len = (size_t)(eol - p);
			c->pos = (size_t)(eol - c->buf) + 2;
			return p;
		}
		memmove(c->buf, p, c->have - c->pos);
		c->have -= c->pos;
		c->pos = 0;
		if (c->have == sizeof(c->buf))
			fail("a line longer than %zu bytes", sizeof(c->buf));
		n = read(c->fd, c->buf + c->have, sizeof(c->buf) - c->have);
		if (n <= 0)
			fail("read: %s", n < 0 ? strerror(errno) : "connection closed");
		c->have += (size_t)n;
	}
}

/* Send a command and return its +OK line (the text after "+OK"). */
static char *
conn_cmd(struct conn *c, const char *fmt, ...)
{
	char line[256], *reply;
	size_t len;
	va_list ap;
	int n;

	if (fmt) {
		va_start(ap, fmt);
		n = vsnprintf(line, sizeof(line), fmt, ap);
		va_end(ap);
		if (write(c->fd, line, (size_t)n) != n)
			fail("write: %s", strerror(errno));
	}
	reply = conn_line(c, &len);
	if (strncmp(reply, "+OK", 3) != 0)
		fail("the server answered: %s", reply);
	return reply + 3;
}

/* A multi-line answer up to its dot line: the bytes of its lines with CRLF. */
static long
conn_multi(struct conn *c)
{
	long bytes = 0;

	for (;;) {
		size_t len;
		char *line = conn_line(c, &len);

		if (len == 1 && line[0] == '.')
			return bytes;
		bytes += (long)len + 2;
	}
}

static void
drain(const struct sockaddr_in *to, int user, struct tally *t, struct conn *c)
{
	int one = 1, n;

	if ((c->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		fail("socket: %s", strerror(errno));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (const struct sockaddr *)to, sizeof(*to)) != 0)
		fail("connect to port %d: %s", ntohs(to->sin_port), strerror(errno));
	c->have = c->pos = 0;
	conn_cmd(c, NULL);
	conn_cmd(c, "USER u%d@peer.test\r\n", user);
	conn_cmd(c, "PASS pw\r\n");
	n = atoi(conn_cmd(c, "STAT\r\n"));
	conn_cmd(c, "UIDL\r\n");
	conn_multi(c);
	for (int i = 1; i <= n; i++) {
		conn_cmd(c, "RETR %d\r\n", i);
		t->bytes += conn_multi(c);
	}
	for (int i = 1; i <= n; i++)
		conn_cmd(c, "DELE %d\r\n", i);
	conn_cmd(c, "QUIT\r\n");
	close(c->fd);
	t->msgs += n;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in to[PORTS_MAX];
	struct tally all = { 1e300, 0, 0, 0 }, one;
	struct rusage ru;
	int nports = 0, users, parallel, go[2], back[2], status, bad = 0, got = 0;
	char *list, *port;

	if (argc != 5) {
		fprintf(stderr, "usage: pop3-client HOST PORT[,PORT...] USERS PARALLEL\n");
		return 2;
	}
	for (list = argv[2]; (port = strsep(&list, ",")) != NULL; nports++) {
		if (nports == PORTS_MAX)
			fail("at most %d ports", PORTS_MAX);
		memset(&to[nports], 0, sizeof(to[nports]));
		to[nports].sin_family = AF_INET;
		to[nports].sin_port = htons((uint16_t)atoi(port));
		if (inet_pton(AF_INET, argv[1], &to[nports].sin_addr) != 1)
			fail("%s: not an IPv4 address", argv[1]);
	}
	users = atoi(argv[3]);
	parallel = atoi(argv[4]);
	if (users < 1 || parallel < 1)
		fail("USERS and PARALLEL must be at least 1");
	if (pipe(go) != 0 || pipe(back) != 0)
		fail("pipe: %s", strerror(errno));
	for (int k = 0; k < parallel; k++) {
		pid_t pid = fork();

		if (pid < 0)
			fail("fork: %s", strerror(errno));
		if (pid == 0) {
			static struct conn c;
			struct tally t = { 0, 0, 0, 0 };
			char start;

			close(go[1]);
			close(back[0]);
			if (read(go[0], &start, 1) < 0)	/* EOF: the parent says go */
				fail("read: %s", strerror(errno));
			t.start = now();
			for (int u = k; u < users; u += parallel)
				drain(&to[u % nports], u, &t, &c);
			t.end = now();
			if (write(back[1], &t, sizeof(t)) != (ssize_t)sizeof(t))
				fail("write: %s", strerror(errno));
			_exit(0);
		}
	}
	close(go[0]);
	close(back[1]);
	usleep(200000);		/* every process waiting on the pipe */
	close(go[1]);
	while (read(back[0], &one, sizeof(one)) == (ssize_t)sizeof(one)) {
		got++;
		if (one.start < all.start)
			all.start = one.start;
		if (one.end > all.end)
			all.end = one.end;
		all.msgs += one.msgs;
		all.bytes += one.bytes;
	}
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			bad = 1;
	if (bad || got != parallel) {
		fprintf(stderr, "pop3-client: %d of %d processes failed\n", parallel - got, parallel);
		return 1;
	}
	getrusage(RUSAGE_CHILDREN, &ru);
	printf("secs=%.3f msgs=%ld bytes=%ld client_cpu_s=%.2f\n", all.end - all.start, all.msgs,
	    all.bytes, (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
	return 0;
}
