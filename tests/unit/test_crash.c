/*
 * test_crash.c - nothing acknowledged is lost and nothing half-written is
 * seen, whenever the process dies.
 *
 * A child process commits deliveries through the group-commit writer,
 * many in flight, and reports each acknowledged sequence number on a
 * pipe.  The parent kills it with SIGKILL at a random moment, reopens the
 * store and checks: every acknowledged message is there exactly once and
 * whole, and every message that is there is whole.
 */
#include "testutil.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include <event2/event.h>

#include "store/store.h"

#define INFLIGHT	32
#define ROUNDS		10

struct child {
	struct event_base *base;
	struct store_writer *w;
	int64_t user_id;
	uint32_t next_seq;
	int ackfd;
};

/* Message n: a header naming n, then a body whose bytes and length derive from n. */
static char *
make_message(uint32_t n, size_t *len)
{
	size_t body = 100 + (n * 7919u) % 60000;
	char *m = malloc(body + 64);
	int h = snprintf(m, 64, "X-Seq: %u\r\n\r\n", n);

	for (size_t i = 0; i < body; i++)
		m[h + i] = (char)('A' + (n + i) % 23);
	*len = (size_t)h + body;
	return m;
}

static void child_submit(struct child *c);

static void
on_ack(struct store_req *req, void *arg);

struct pending {
	struct child *c;
	uint32_t seq;
};

static void
child_submit(struct child *c)
{
	struct store_rcpt_local loc = { .user_id = c->user_id };
	struct pending *p = malloc(sizeof(*p));
	size_t len;
	char *m;

	p->c = c;
	p->seq = c->next_seq++;
	m = make_message(p->seq, &len);
	struct store_delivery d = { .sender = "crash@test", .data = m, .fd = -1, .len = len,
	    .local = &loc, .nlocal = 1 };
	store_writer_submit(c->w, store_req_deliver(&d, on_ack, p));
	free(m);
}

static void
on_ack(struct store_req *req, void *arg)
{
	struct pending *p = arg;
	struct child *c = p->c;

	if (store_req_status(req) != STORE_OK)
		_exit(3);
	/* Acknowledged: only now may anyone be told. */
	if (write(c->ackfd, &p->seq, sizeof(p->seq)) != sizeof(p->seq))
		_exit(4);
	free(p);
	child_submit(c);
}

static void __attribute__((noreturn))
child_main(const char *path, int64_t user_id, uint32_t first_seq, int ackfd)
{
	struct child c = { .user_id = user_id, .next_seq = first_seq, .ackfd = ackfd };
	char err[256];

	c.base = event_base_new();
	if (store_writer_new(STORE_SQLITE(path), c.base, &c.w, err, sizeof(err)) != STORE_OK)
		_exit(2);
	for (int i = 0; i < INFLIGHT; i++)
		child_submit(&c);
	event_base_dispatch(c.base);
	_exit(5);
}

static void
test_sigkill_durability(void **state)
{
	char *dir = tu_tempdir(), *path = tu_path(dir, "store.db"), err[256];
	struct store_user u = { .login = "alice", .pop3 = 1 };
	struct store *s;
	unsigned char *acked = calloc(1 << 20, 1), *seen = calloc(1 << 20, 1);
	uint32_t next = 0, total_acked = 0;
	int64_t uid;

	(void)state;
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	assert_int_equal(store_open(STORE_SQLITE(path), STORE_CREATE, &s, err, sizeof(err)), STORE_OK);
	assert_int_equal(store_user_add(s, &u), STORE_OK);
	assert_int_equal(store_user_get(s, "alice", &u), STORE_OK);
	uid = u.id;
	store_user_clear(&u);
	store_close(&s);

	for (int round = 0; round < ROUNDS; round++) {
		int pfd[2], status;
		pid_t pid;
		uint32_t seq, max_seen = 0;

		assert_int_equal(pipe(pfd), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(pfd[0]);
			child_main(path, uid, next, pfd[1]);
		}
		close(pfd[1]);
		usleep((useconds_t)(20000 + rand() % 200000));
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status));	/* it was still running: no early exit */
		while (read(pfd[0], &seq, sizeof(seq)) == sizeof(seq)) {
			assert_true(seq < (1u << 20));
			acked[seq] = 1;
			total_acked++;
		}
		close(pfd[0]);

		/* Reopen (recovery) and check every entry. */
		assert_int_equal(store_open(STORE_SQLITE(path), 0, &s, err, sizeof(err)), STORE_OK);
		struct store_entry *v;
		size_t n;
		assert_int_equal(store_mailbox_list(s, uid, &v, &n), STORE_OK);
		memset(seen, 0, 1 << 20);
		for (size_t i = 0; i < n; i++) {
			char *text = malloc(v[i].size + 1), *want;
			size_t got, wlen;
			unsigned k;

			assert_int_equal(store_entry_read(s, &v[i], 0, text, v[i].size, &got),
			    STORE_OK);
			assert_int_equal(got, v[i].size);
			text[got] = '\0';
			assert_int_equal(sscanf(text, "X-Seq: %u", &k), 1);
			want = make_message(k, &wlen);
			assert_int_equal(wlen, got);		/* whole, */
			assert_memory_equal(text, want, wlen);	/* and right */
			assert_int_equal(seen[k], 0);		/* and once */
			seen[k] = 1;
			if (k > max_seen)
				max_seen = k;
			free(want);
			free(text);
		}
		store_entry_list_free(&v, n);
		store_close(&s);
		for (uint32_t k = 0; k < (1u << 20); k++)
			if (acked[k])
				assert_int_equal(seen[k], 1);	/* nothing acknowledged is lost */
		/* The next child numbers past everything committed so far. */
		if (max_seen + 1 > next)
			next = max_seen + 1;
	}
	assert_true(total_acked > 0);
	free(acked);
	free(seen);
	free(path);
	tu_rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sigkill_durability),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
