/*
 * test_bounce.c - unit tests for how a failed row's error is split for
 * its bounce (aliases/bounce.c): the answering host for Remote-MTA, the
 * rest for Diagnostic-Code.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "aliases/bounce.h"

static void
split(const char *error, const char *remote, const char *diag)
{
	char r[64];
	const char *d;

	memset(r, 'x', sizeof(r));
	bounce_split_error(error, r, sizeof(r), &d);
	assert_string_equal(r, remote);
	assert_string_equal(d, diag);
}

static void
test_server_reply(void **state)
{
	split("host mx.far.test[127.0.0.1] said: 550 5.1.1 no such user",
	    "mx.far.test", "550 5.1.1 no such user");
	split("host mx6.far.test[2001:db8::1] said: 451 4.3.0 later",
	    "mx6.far.test", "451 4.3.0 later");
}

static void
test_plain_words(void **state)
{
	split("nowhere.test: no such domain (NXDOMAIN)", "",
	    "nowhere.test: no such domain (NXDOMAIN)");
	split("mailbox full", "", "mailbox full");
	split("", "", "");
	/* "host " without " said: " is plain words */
	split("host unreachable", "", "host unreachable");
	/* ... and so is "host" with no name before " said: " (found by fuzz_voicemail) */
	split("host said: 5.", "", "host said: 5.");
	split("host  said: 550 no", "", "host  said: 550 no");
}

static void
test_remote_too_long_for_the_buffer(void **state)
{
	char r[8];
	const char *d;

	bounce_split_error("host a-very-long-name.example said: 550 no", r,
	    sizeof(r), &d);
	assert_string_equal(r, "");
	assert_string_equal(d, "550 no");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server_reply),
		cmocka_unit_test(test_plain_words),
		cmocka_unit_test(test_remote_too_long_for_the_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
