/*
 * store-ingest - durable commits per second of 4 KiB messages.
 *
 * Two ways of committing, at 1, 16 and 128 concurrent submitters:
 *   group:   the daemons' path - submitters keep one request each in flight
 *            to the group-commit writer on a libevent loop;
 *   single:  one transaction (and one fsync) per message - each submitter a
 *            thread with its own connection calling store_deliver().
 * Every counted message is durable (synchronous=FULL) when counted.
 *
 *   store-ingest [-d DIR] [-s SECONDS] [-c 1,16,128] [-z SIZE]
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "store/store.h"

#define USERS	100

struct bench {
	char path[512];
	int64_t users[USERS];
	char *body;
	size_t size;
	double seconds;
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A fresh store with USERS users, so runs do not inherit each other's size. */
static void
bench_fresh_store(struct bench *b, const char *dir, const char *tag)
{
	struct store *s;
	char err[256];

	snprintf(b->path, sizeof(b->path), "%s/ingest-%s.db", dir, tag);
	unlink(b->path);
	char wal[600], shm[600];
	snprintf(wal, sizeof(wal), "%s-wal", b->path);
	snprintf(shm, sizeof(shm), "%s-shm", b->path);
	unlink(wal);
	unlink(shm);
	if (store_open(STORE_SQLITE(b->path), STORE_CREATE, &s, err, sizeof(err)) != STORE_OK) {
		fprintf(stderr, "store-ingest: %s\n", err);
		exit(1);
	}
	for (int i = 0; i < USERS; i++) {
		char login[16];
		struct store_user u = { .login = login, .pop3 = 1 }, got;

		snprintf(login, sizeof(login), "u%d", i);
		if (store_user_add(s, &u) != STORE_OK ||
		    store_user_get(s, login, &got) != STORE_OK) {
			fprintf(stderr, "store-ingest: %s\n", store_errmsg(s));
			exit(1);
		}
		b->users[i] = got.id;
		store_user_clear(&got);
	}
	store_close(&s);
}

static void
bench_remove_store(struct bench *b)
{
	char p[600];

	unlink(b->path);
	snprintf(p, sizeof(p), "%s-wal", b->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", b->path);
	unlink(p);
}

/* ---- group commit ---- */

struct group {
	struct bench *b;
	struct event_base *base;
	struct store_writer *w;
	unsigned long done, next;
	double deadline;
	int inflight;
	int failed;
};

static void group_submit(struct group *g);

static void
group_done(struct store_req *req, void *arg)
{
	struct group *g = arg;

	if (store_req_status(req) != STORE_OK) {
		fprintf(stderr, "store-ingest: %s\n", store_req_errmsg(req));
		g->failed = 1;
	}
	g->done++;
	g->inflight--;
	if (now() < g->deadline && !g->failed)
		group_submit(g);
	else if (g->inflight == 0)
		event_base_loopbreak(g->base);
}

static void
group_submit(struct group *g)
{
	struct store_rcpt_local r = { .user_id = g->b->users[g->next++ % USERS],
	    .prefix = "Return-Path: <bench@example.test>\r\nDelivered-To: u@example.test\r\n" };
	struct store_delivery d = { .sender = "bench@example.test", .data = g->b->body,
	    .fd = -1, .len = g->b->size, .local = &r, .nlocal = 1 };

	g->inflight++;
	store_writer_submit(g->w, store_req_deliver(&d, group_done, g));
}

static double
run_group(struct bench *b, int submitters)
{
	struct group g = { .b = b };
	char err[256];
	double t0, t1;

	g.base = event_base_new();
	if (store_writer_new(STORE_SQLITE(b->path), g.base, &g.w, err, sizeof(err)) != STORE_OK) {
		fprintf(stderr, "store-ingest: %s\n", err);
		exit(1);
	}
	t0 = now();
	g.deadline = t0 + b->seconds;
	for (int i = 0; i < submitters; i++)
		group_submit(&g);
	event_base_dispatch(g.base);
	t1 = now();
	store_writer_free(&g.w);
	event_base_free(g.base);
	if (g.failed)
		exit(1);
	return (double)g.done / (t1 - t0);
}

/* ---- one transaction per message ---- */

struct single {
	struct bench *b;
	int index;
	double deadline;
	unsigned long done;
};

static void *
single_thread(void *arg)
{
	struct single *t = arg;
	struct store *s;
	char err[256];
	unsigned long k = (unsigned long)t->index;

	if (store_open(STORE_SQLITE(t->b->path), 0, &s, err, sizeof(err)) != STORE_OK) {
		fprintf(stderr, "store-ingest: %s\n", err);
		exit(1);
	}
	while (now() < t->deadline) {
		struct store_rcpt_local r = { .user_id = t->b->users[k++ % USERS],
		    .prefix = "Return-Path: <bench@example.test>\r\nDelivered-To: u@example.test\r\n" };
		struct store_delivery d = { .sender = "bench@example.test", .data = t->b->body,
		    .fd = -1, .len = t->b->size, .local = &r, .nlocal = 1 };
		struct store_delivery_result res;

		if (store_deliver(s, &d, &res) != STORE_OK) {
			fprintf(stderr, "store-ingest: %s\n", store_errmsg(s));
			exit(1);
		}
		t->done++;
	}
	store_close(&s);
	return NULL;
}

static double
run_single(struct bench *b, int submitters)
{
	struct single *t = calloc((size_t)submitters, sizeof(*t));
	pthread_t *th = calloc((size_t)submitters, sizeof(*th));
	unsigned long done = 0;
	double t0 = now(), t1;

	for (int i = 0; i < submitters; i++) {
		t[i].b = b;
		t[i].index = i;
		t[i].deadline = t0 + b->seconds;
		pthread_create(&th[i], NULL, single_thread, &t[i]);
	}
	for (int i = 0; i < submitters; i++) {
		pthread_join(th[i], NULL);
		done += t[i].done;
	}
	t1 = now();
	free(t);
	free(th);
	return (double)done / (t1 - t0);
}

int
main(int argc, char **argv)
{
	struct bench b = { .size = 4096, .seconds = 3 };
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
	char *levels = strdup("1,16,128"), *tok, *save = NULL;
	int ch;

	while ((ch = getopt(argc, argv, "d:s:c:z:")) != -1) {
		switch (ch) {
		case 'd': dir = optarg; break;
		case 's': b.seconds = atof(optarg); break;
		case 'c': free(levels); levels = strdup(optarg); break;
		case 'z': b.size = (size_t)atol(optarg); break;
		default:
			fprintf(stderr, "usage: store-ingest [-d DIR] [-s SECONDS] [-c 1,16,128]"
			    " [-z SIZE]\n");
			return 2;
		}
	}
	b.body = malloc(b.size);
	for (size_t i = 0; i < b.size; i++)
		b.body[i] = (i % 78 == 77) ? '\n' : (char)('a' + i % 26);

	printf("store-ingest: %zu-byte messages, %.0f s per run, store in %s\n",
	    b.size, b.seconds, dir);
	printf("%-11s  %16s  %16s  %7s\n", "submitters", "group msg/s", "single msg/s", "ratio");
	for (tok = strtok_r(levels, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int n = atoi(tok);
		double g, s;

		if (n < 1)
			continue;
		bench_fresh_store(&b, dir, "single");
		s = run_single(&b, n);
		bench_remove_store(&b);
		bench_fresh_store(&b, dir, "group");
		g = run_group(&b, n);
		bench_remove_store(&b);
		printf("%-11d  %16.0f  %16.0f  %6.1fx\n", n, g, s, g / s);
		fflush(stdout);
	}
	free(levels);
	free(b.body);
	return 0;
}
