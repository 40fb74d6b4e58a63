/*
 * test_log.c - lib/log.c: a message is one line whatever its text holds,
 * and log_escape() keeps a client's bytes printable.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"

static void
one_line_is(const char *in, const char *want)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "%s", in);
	log_one_line(buf);
	assert_string_equal(buf, want);
}

static void
test_one_line(void **state)
{
	(void)state;
	one_line_is("", "");
	one_line_is("plain text", "plain text");
	one_line_is("tabs\tinside stay", "tabs\tinside stay");
	/* libpq's way: a newline, a tab, more; a newline at the end. */
	one_line_is("begin: server closed the connection unexpectedly\n"
	    "\tThis probably means the server terminated abnormally\n"
	    "\tbefore or while processing the request.\n",
	    "begin: server closed the connection unexpectedly This probably means"
	    " the server terminated abnormally before or while processing the request.");
	one_line_is("a \r\n\r\n  b", "a b");
	one_line_is("\n\nleading", "leading");
	one_line_is("trailing  \n \n", "trailing");
	one_line_is("\r", "");
	one_line_is("x\ry", "x y");
}

/* log_msg folds the text before writing it: one line on stderr. */
static void
test_log_msg_writes_one_line(void **state)
{
	char out[4096];
	int fd[2], saved;
	ssize_t n;

	(void)state;
	assert_int_equal(pipe(fd), 0);
	saved = dup(2);
	dup2(fd[1], 2);
	log_init("test", 1);
	log_msg(LOG_ERR, "store: %s", "first\n\tsecond\n");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd[1]);
	n = read(fd[0], out, sizeof(out) - 1);
	close(fd[0]);
	assert_true(n > 0);
	out[n] = '\0';
	assert_non_null(strstr(out, " test error: store: first second\n"));
	assert_ptr_equal(strchr(out, '\n'), out + n - 1);
}

static void
test_escape(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(log_escape(buf, sizeof(buf), "a\r\nb\"\\", 6), "a\\x0d\\x0ab\\\"\\\\");
	assert_string_equal(log_escape(buf, 8, "abcdefghij", 10), "abcd...");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_line),
		cmocka_unit_test(test_log_msg_writes_one_line),
		cmocka_unit_test(test_escape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
