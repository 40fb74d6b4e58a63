/*
 * test_util.c - lib/util.c: the 8-bit scan that decides BODY=8BITMIME.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "lib/util.h"

/* One octet above 127 at every position of every length up to 40, at any alignment. */
static void
test_has_8bit(void **state)
{
	unsigned char buf[48];

	(void)state;
	assert_int_equal(mem_has_8bit("", 0), 0);
	for (size_t start = 0; start < 8; start++)
		for (size_t len = 0; len <= 40; len++) {
			memset(buf, 0x7f, sizeof(buf));
			assert_int_equal(mem_has_8bit(buf + start, len), 0);
			for (size_t i = 0; i < len; i++) {
				memset(buf, 'a', sizeof(buf));
				buf[start + i] = 0x80;
				assert_int_equal(mem_has_8bit(buf + start, len), 1);
				buf[start + i] = 0xff;
				assert_int_equal(mem_has_8bit(buf + start, len), 1);
			}
			/* Just past the end does not count. */
			memset(buf, 'a', sizeof(buf));
			buf[start + len] = 0xc3;
			assert_int_equal(mem_has_8bit(buf + start, len), 0);
		}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_has_8bit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
