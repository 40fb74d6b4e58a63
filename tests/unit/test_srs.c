/*
 * test_srs.c - unit tests for aliases/srs.c: SRS0 and SRS1 addresses made
 * for forwarded mail, and checked when bounces come back to them.
 *
 * Every local part given to srs_reverse() is a heap copy of exactly its
 * length, with no NUL after it, so AddressSanitizer reports any read past
 * the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aliases/srs.h"

#define DAY	INT64_C(86400)

/* 2020-01-01 00:01:00 UTC: day 18262, 854 modulo 1024, stamp "2W". */
#define T0	INT64_C(1577836860)

#define SECRET	"tops3cr3t"

/* A heap copy of exactly n bytes; malloc(1) when n is 0. */
static char *
dup_exact(const char *s, size_t n)
{
	char *b = malloc(n > 0 ? n : 1);

	assert_non_null(b);
	if (n > 0)
		memcpy(b, s, n);
	return b;
}

static enum srs_status
fwd(const char *secret, const char *sender, const char *alias, int64_t now,
    char out[SRS_ADDR_MAX + 1])
{
	return srs_forward(secret, strlen(secret), sender, alias, now, out,
	    SRS_ADDR_MAX + 1);
}

/* srs_reverse() on local[0..n), from an exact heap copy. */
static enum srs_status
rev_n(const char *secret, const char *local, size_t n, int64_t now,
    char out[SRS_ADDR_MAX + 1])
{
	char *copy = dup_exact(local, n);
	enum srs_status st;

	st = srs_reverse(secret, strlen(secret), copy, n, now, out,
	    SRS_ADDR_MAX + 1);
	free(copy);
	if (st != SRS_OK)
		assert_string_equal(out, "");
	return st;
}

static enum srs_status
rev(const char *secret, const char *local, int64_t now,
    char out[SRS_ADDR_MAX + 1])
{
	return rev_n(secret, local, strlen(local), now, out);
}

/* The local part of addr: everything before its last '@'. */
static size_t
local_len(const char *addr)
{
	const char *at = strrchr(addr, '@');

	assert_non_null(at);
	return (size_t)(at - addr);
}

/* srs_reverse() on the local part of a whole address. */
static enum srs_status
rev_addr(const char *secret, const char *addr, int64_t now,
    char out[SRS_ADDR_MAX + 1])
{
	return rev_n(secret, addr, local_len(addr), now, out);
}

/*
 * Known answers.  The first is postsrsd's own test vector (its
 * tests/unit/test_srs2.c: secret "tops3cr3t" at 2020-01-01 00:01 UTC), so
 * our addresses verify under libsrs2 and postsrsd and theirs under ours.
 * The others were computed independently of this code with a short
 * Python script (hmac, hashlib.sha1, base64, bytes.lower() for the ASCII
 * lowercasing) and pasted here.
 */
static void
test_known_answers(void **state)
{
	static const struct {
		const char *secret, *sender, *alias, *srs;
		int64_t now;
	} kat[] = {
		{ SECRET, "test@otherdomain.com", "example.com",
		    "SRS0=vmyz=2W=otherdomain.com=test@example.com", T0 },
		{ "second-secret",
		    "SRS0=vmyz=2W=otherdomain.com=test@example.com",
		    "forward.test",
		    "SRS1=oDpp=example.com==vmyz=2W=otherdomain.com=test"
		    "@forward.test", T0 },
		{ "third-secret",
		    "SRS1=oDpp=example.com==vmyz=2W=otherdomain.com=test"
		    "@forward.test", "third.test",
		    "SRS1=K7Fo=example.com==vmyz=2W=otherdomain.com=test"
		    "@third.test", T0 },
		{ SECRET, "John.Doe@Example.ORG", "example.com",
		    "SRS0=W02O=2W=Example.ORG=John.Doe@example.com", T0 },
		{ SECRET, "a=b=c@example.net", "example.com",
		    "SRS0=K416=2W=example.net=a=b=c@example.com", T0 },
		{ SECRET, "SRS0+xyzw=AB=example.org=bob@first.test",
		    "example.com",
		    "SRS1=9+S3=first.test=+xyzw=AB=example.org=bob@example.com",
		    T0 },
		{ SECRET, "j\xc3\xb6rg@example.de", "example.com",
		    "SRS0=a0F0=2W=example.de=j\xc3\xb6rg@example.com", T0 },
		/* Day 1023 of a cycle: stamp "77". */
		{ SECRET, "test@otherdomain.com", "example.com",
		    "SRS0=sfzN=77=otherdomain.com=test@example.com",
		    INT64_C(1769389200) },
	};
	char out[SRS_ADDR_MAX + 1];

	for (size_t i = 0; i < sizeof(kat) / sizeof(kat[0]); i++) {
		assert_int_equal(fwd(kat[i].secret, kat[i].sender, kat[i].alias,
		    kat[i].now, out), SRS_OK);
		assert_string_equal(out, kat[i].srs);
	}

	assert_int_equal(rev_addr(SECRET, kat[0].srs, T0, out), SRS_OK);
	assert_string_equal(out, "test@otherdomain.com");
	assert_int_equal(rev_addr("second-secret", kat[1].srs, T0, out),
	    SRS_OK);
	assert_string_equal(out,
	    "SRS0=vmyz=2W=otherdomain.com=test@example.com");
	assert_int_equal(rev_addr(SECRET, kat[3].srs, T0, out), SRS_OK);
	assert_string_equal(out, "John.Doe@Example.ORG");
	assert_int_equal(rev_addr(SECRET, kat[5].srs, T0, out), SRS_OK);
	assert_string_equal(out, "SRS0+xyzw=AB=example.org=bob@first.test");
	assert_int_equal(rev_addr(SECRET, kat[6].srs, T0, out), SRS_OK);
	assert_string_equal(out, "j\xc3\xb6rg@example.de");
}

/* Forward, then reverse the local part: the sender comes back. */
static void
test_round_trip(void **state)
{
	static const char *const senders[] = {
		"a@b",
		"test@otherdomain.com",
		"first.last@sub.example.org",
		"user+tag@example.com",
		"user-tag@example.com",
		"x=y@example.com",
		"=@example.com",
		"a==b=@example.com",
		"!#$%&'*+-/=?^_`{|}~.@example.com",
		"SRS0@example.com",	/* no separator: not SRS */
		"SRS2=x@example.com",
		"srs0_x@example.com",
		"MiXeD@ExAmPlE.CoM",
		"\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.test",
		"u@under_score.example",
	};
	char out[SRS_ADDR_MAX + 1], back[SRS_ADDR_MAX + 1];

	for (size_t i = 0; i < sizeof(senders) / sizeof(senders[0]); i++) {
		for (int64_t d = 0; d < 3; d++) {
			int64_t t = T0 + d * 400 * DAY + d * 7777;

			assert_int_equal(fwd(SECRET, senders[i], "fw.example",
			    t, out), SRS_OK);
			assert_true(strncmp(out, "SRS0=", 5) == 0);
			assert_true(srs_is_srs(out, local_len(out)));
			assert_string_equal(out + local_len(out),
			    "@fw.example");
			assert_int_equal(rev_addr(SECRET, out, t, back),
			    SRS_OK);
			assert_string_equal(back, senders[i]);
		}
	}
}

/*
 * An SRS0 address forwarded again becomes SRS1; its bounce goes back to
 * the SRS0 address at the first domain, which leads to the sender.  An
 * SRS1 address forwarded again keeps the first domain and the inner part.
 */
static void
test_srs1_chain(void **state)
{
	char srs0[SRS_ADDR_MAX + 1], srs1[SRS_ADDR_MAX + 1];
	char again[SRS_ADDR_MAX + 1], out[SRS_ADDR_MAX + 1];
	char want[2 * SRS_ADDR_MAX];
	const int64_t t = T0 + 3 * DAY;

	/* The first hop, as first.test with its own secret. */
	assert_int_equal(fwd("first-secret", "alice=x@example.org",
	    "first.test", T0, srs0), SRS_OK);
	assert_true(strncmp(srs0, "SRS0=", 5) == 0);

	/* The second, by us, a day later: SRS1=GGGG=first.test=<SRS0's rest>. */
	assert_int_equal(fwd(SECRET, srs0, "us.test", T0 + DAY, srs1), SRS_OK);
	snprintf(want, sizeof(want), "=first.test=%.*s@us.test",
	    (int)(local_len(srs0) - 4), srs0 + 4);
	assert_true(strncmp(srs1, "SRS1=", 5) == 0);
	assert_string_equal(srs1 + 9, want);
	/* Whatever the time: SRS1 has no timestamp of its own. */
	assert_int_equal(rev_addr(SECRET, srs1, T0 + 900 * DAY, out), SRS_OK);
	assert_string_equal(out, srs0);
	/* And the first domain takes it from there. */
	assert_int_equal(rev_addr("first-secret", out, t, again), SRS_OK);
	assert_string_equal(again, "alice=x@example.org");

	/* A third hop, by a server with another secret. */
	assert_int_equal(fwd("third-secret", srs1, "third.test", t, again),
	    SRS_OK);
	/* Same first domain and inner part, a hash of its own. */
	snprintf(want, sizeof(want), "%.*s@third.test",
	    (int)(local_len(srs1) - 9), srs1 + 9);
	assert_true(strncmp(again, "SRS1=", 5) == 0);
	assert_string_equal(again + 9, want);
	assert_int_equal(rev_addr("third-secret", again, t, out), SRS_OK);
	assert_string_equal(out, srs0);
	/* Ours does not verify under the third secret, nor its under ours. */
	assert_int_equal(rev_addr("third-secret", srs1, t, out),
	    SRS_BAD_HASH);
	assert_int_equal(rev_addr(SECRET, again, t, out), SRS_BAD_HASH);

	/* An SRS0 with '-' after its tag keeps it, inside and on the way back. */
	assert_int_equal(fwd(SECRET, "srs0-HASH=AB=example.org=bob@first.test",
	    "us.test", t, srs1), SRS_OK);
	assert_true(strncmp(srs1, "SRS1=", 5) == 0);
	assert_string_equal(srs1 + 9,
	    "=first.test=-HASH=AB=example.org=bob@us.test");
	assert_int_equal(rev_addr(SECRET, srs1, t, out), SRS_OK);
	assert_string_equal(out, "SRS0-HASH=AB=example.org=bob@first.test");
}

/* The known SRS0 address of test@otherdomain.com, its local part. */
#define KAT_SRS0	"SRS0=vmyz=2W=otherdomain.com=test"
#define KAT_SRS1	"SRS1=oDpp=example.com==vmyz=2W=otherdomain.com=test"
#define KAT_SRS1_SECRET	"second-secret"

static void
to_lower_str(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static void
to_upper_str(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'a' && *s <= 'z')
			*s = (char)(*s - 'a' + 'A');
}

/*
 * Some MTAs change the case of local parts: the tag, the hash, the
 * timestamp and what is signed are all taken without case.
 */
static void
test_case(void **state)
{
	char srs[SRS_ADDR_MAX + 1], out[SRS_ADDR_MAX + 1];
	char back[SRS_ADDR_MAX + 1];

	assert_int_equal(fwd(SECRET, "John.Doe@Example.ORG", "fw.test", T0,
	    srs), SRS_OK);
	to_lower_str(srs);
	assert_int_equal(rev_addr(SECRET, srs, T0, out), SRS_OK);
	assert_string_equal(out, "john.doe@example.org");
	to_upper_str(srs);
	assert_int_equal(rev_addr(SECRET, srs, T0, out), SRS_OK);
	assert_string_equal(out, "JOHN.DOE@EXAMPLE.ORG");

	strcpy(srs, KAT_SRS1);
	to_lower_str(srs);
	assert_int_equal(rev(KAT_SRS1_SECRET, srs, T0, out), SRS_OK);
	assert_string_equal(out, "SRS0=vmyz=2w=otherdomain.com=test@example.com");
	to_upper_str(srs);
	assert_int_equal(rev(KAT_SRS1_SECRET, srs, T0, out), SRS_OK);
	assert_string_equal(out, "SRS0=VMYZ=2W=OTHERDOMAIN.COM=TEST@EXAMPLE.COM");
	/* The lowercased SRS0 it gives still verifies at the first domain. */
	to_lower_str(out);
	assert_int_equal(rev_addr(SECRET, out, T0, back), SRS_OK);
	assert_string_equal(back, "test@otherdomain.com");

	/* A lowercased SRS0 sender forwarded again: "SRS0" on the way back. */
	assert_int_equal(fwd(SECRET, "srs0=vmyz=2w=otherdomain.com=test@example.com",
	    "fw.test", T0, srs), SRS_OK);
	assert_int_equal(rev_addr(SECRET, srs, T0, out), SRS_OK);
	assert_string_equal(out, "SRS0=vmyz=2w=otherdomain.com=test@example.com");
}

/* '=', '+' and '-' after the tag; nothing else. */
static void
test_separators(void **state)
{
	static const char seps[] = "=+-";
	char local[SRS_ADDR_MAX + 1], out[SRS_ADDR_MAX + 1];

	for (size_t i = 0; i < 3; i++) {
		strcpy(local, KAT_SRS0);
		local[4] = seps[i];
		assert_true(srs_is_srs(local, strlen(local)));
		assert_int_equal(rev(SECRET, local, T0, out), SRS_OK);
		assert_string_equal(out, "test@otherdomain.com");

		strcpy(local, KAT_SRS1);
		local[4] = seps[i];
		assert_int_equal(rev(KAT_SRS1_SECRET, local, T0, out), SRS_OK);
		assert_string_equal(out,
		    "SRS0=vmyz=2W=otherdomain.com=test@example.com");
	}
	for (const char *c = "_.*/ \t~#"; *c != '\0'; c++) {
		strcpy(local, KAT_SRS0);
		local[4] = *c;
		assert_false(srs_is_srs(local, strlen(local)));
		assert_int_equal(rev(SECRET, local, T0, out), SRS_NOT_SRS);
	}
	/* Inside, only '=' separates. */
	assert_int_equal(rev(SECRET, "SRS0=vmyz+2W=otherdomain.com=test", T0,
	    out), SRS_BAD_SYNTAX);
	assert_int_equal(rev(SECRET, "SRS0=vmyz=2W+otherdomain.com=test", T0,
	    out), SRS_BAD_SYNTAX);
	/* Ours is always '='. */
	assert_int_equal(fwd(SECRET, "SRS0+x=y@a.test", "fw.test", T0, out),
	    SRS_OK);
	assert_true(strncmp(out, "SRS1=", 5) == 0);
}

/*
 * The local part may hold '='; the domain may not, so everything after the
 * domain's '=' is the local part.
 */
static void
test_equals_in_local(void **state)
{
	char out[SRS_ADDR_MAX + 1];

	assert_int_equal(rev(SECRET, "SRS0=K416=2W=example.net=a=b=c", T0,
	    out), SRS_OK);
	assert_string_equal(out, "a=b=c@example.net");
	/* The same signature does not move to another split. */
	assert_int_equal(rev(SECRET, "SRS0=K416=2W=example.net=a=b=c=", T0,
	    out), SRS_BAD_HASH);
	assert_int_equal(fwd(SECRET, "a@exa=mple.net", "fw.test", T0, out),
	    SRS_BAD_SYNTAX);
}

/* Every change to what is signed, or to the hash, is refused. */
static void
test_bad_hash(void **state)
{
	static const struct {
		const char *secret, *local;
	} good[] = {
		{ SECRET, KAT_SRS0 },
		{ KAT_SRS1_SECRET, KAT_SRS1 },
	};
	char local[SRS_ADDR_MAX + 1], out[SRS_ADDR_MAX + 1];

	for (size_t g = 0; g < 2; g++) {
		size_t n = strlen(good[g].local);

		for (size_t i = 5; i < n; i++) {
			strcpy(local, good[g].local);
			if (local[i] == '=')
				continue;
			/* Another letter, not the same one in another case. */
			local[i] = (local[i] == 'q' || local[i] == 'Q') ?
			    'r' : 'q';
			if (i >= 10 && i < 12 && g == 0)
				local[i] = local[i] == 'A' ? 'B' : 'A';
			assert_int_equal(rev(good[g].secret, local, T0, out),
			    SRS_BAD_HASH);
		}
		/* Another secret, and a prefix of the secret. */
		assert_int_equal(rev("tops3cr3u", good[g].local, T0, out),
		    SRS_BAD_HASH);
		assert_int_equal(srs_reverse(good[g].secret,
		    strlen(good[g].secret) - 1, good[g].local, n, T0, out,
		    sizeof(out)), SRS_BAD_HASH);
	}
	/* A hash of the wrong length is malformed, not merely wrong. */
	assert_int_equal(rev(SECRET, "SRS0=vmy=2W=otherdomain.com=test", T0,
	    out), SRS_BAD_SYNTAX);
	assert_int_equal(rev(SECRET, "SRS0=vmyzz=2W=otherdomain.com=test", T0,
	    out), SRS_BAD_SYNTAX);
}

/*
 * A timestamp is good for SRS_MAX_AGE_DAYS whole days after the day it
 * names, to the second; the hash is checked first.
 */
static void
test_expired(void **state)
{
	const int64_t day = T0 / DAY * DAY;	/* 00:00 of T0's day */
	char srs[SRS_ADDR_MAX + 1], out[SRS_ADDR_MAX + 1];

	assert_int_equal(rev(SECRET, KAT_SRS0, T0 + 21 * DAY, out), SRS_OK);
	assert_int_equal(rev(SECRET, KAT_SRS0, T0 + 22 * DAY, out),
	    SRS_EXPIRED);
	assert_int_equal(rev(SECRET, KAT_SRS0, day + 22 * DAY - 1, out),
	    SRS_OK);
	assert_int_equal(rev(SECRET, KAT_SRS0, day + 22 * DAY, out),
	    SRS_EXPIRED);
	assert_int_equal(rev(SECRET, KAT_SRS0, T0 + 500 * DAY, out),
	    SRS_EXPIRED);
	/* Expired and forged: the signature is what is wrong. */
	assert_int_equal(rev(SECRET, "SRS0=vmyq=2W=otherdomain.com=test",
	    T0 + 22 * DAY, out), SRS_BAD_HASH);

	/* Made in the last second of a day. */
	assert_int_equal(fwd(SECRET, "a@b.test", "fw.test", day + DAY - 1,
	    srs), SRS_OK);
	assert_int_equal(rev_addr(SECRET, srs, day + 22 * DAY - 1, out),
	    SRS_OK);
	assert_int_equal(rev_addr(SECRET, srs, day + 22 * DAY, out),
	    SRS_EXPIRED);
	/* Made in the first second of the next day. */
	assert_int_equal(fwd(SECRET, "a@b.test", "fw.test", day + DAY, srs),
	    SRS_OK);
	assert_int_equal(rev_addr(SECRET, srs, day + 23 * DAY - 1, out),
	    SRS_OK);
	assert_int_equal(rev_addr(SECRET, srs, day + 23 * DAY, out),
	    SRS_EXPIRED);
}

/*
 * Days are counted modulo 1024: a stamp from the last day of a cycle ages
 * through the first days of the next.
 */
static void
test_wrap(void **state)
{
	/* Day 1023 of a cycle ("77"), and day 0 of the next ("AA"). */
	const int64_t last = INT64_C(1769389200);
	const int64_t first = INT64_C(1769472000);
	const char *srs = "SRS0=sfzN=77=otherdomain.com=test";
	char made[SRS_ADDR_MAX + 1], out[SRS_ADDR_MAX + 1];

	assert_int_equal(first / DAY % 1024, 0);
	assert_int_equal(rev(SECRET, srs, last, out), SRS_OK);
	assert_int_equal(rev(SECRET, srs, first, out), SRS_OK);
	assert_string_equal(out, "test@otherdomain.com");
	assert_int_equal(rev(SECRET, srs, first + 20 * DAY, out), SRS_OK);
	assert_int_equal(rev(SECRET, srs, first + 21 * DAY, out),
	    SRS_EXPIRED);
	/* Made on day 0 ("AA"), checked on day 1023 of the cycle before. */
	assert_int_equal(fwd(SECRET, "a@b.test", "fw.test", first, made),
	    SRS_OK);
	assert_non_null(strstr(made, "=AA=b.test=a@"));
	assert_int_equal(rev_addr(SECRET, made, last, out), SRS_OK);
	assert_int_equal(rev_addr(SECRET, made, first + 21 * DAY, out),
	    SRS_OK);
	assert_int_equal(rev_addr(SECRET, made, first + 22 * DAY, out),
	    SRS_EXPIRED);
	/*
	 * The scheme cannot tell a stamp from one 1024 days older: that one
	 * is good again.  Bounces do not wait that long; this only pins the
	 * arithmetic down.
	 */
	assert_int_equal(rev_addr(SECRET, made, first + 1024 * DAY, out),
	    SRS_OK);
	/* Times before 1970 count days downwards from it, and still wrap. */
	assert_int_equal(fwd(SECRET, "a@b.test", "fw.test", -1, made),
	    SRS_OK);
	assert_non_null(strstr(made, "=77=b.test=a@"));
	assert_int_equal(rev_addr(SECRET, made, 0, out), SRS_OK);
	assert_int_equal(rev_addr(SECRET, made, INT64_MIN, out),
	    SRS_EXPIRED);
	assert_int_equal(fwd(SECRET, "a@b.test", "fw.test", INT64_MAX, made),
	    SRS_OK);
	assert_int_equal(rev_addr(SECRET, made, INT64_MAX, out), SRS_OK);
}

/* A stamp up to SRS_FUTURE_DAYS ahead is taken (a clock set back). */
static void
test_future(void **state)
{
	const int64_t day = T0 / DAY * DAY;
	char out[SRS_ADDR_MAX + 1];

	assert_int_equal(rev(SECRET, KAT_SRS0, day - 1, out), SRS_OK);
	assert_int_equal(rev(SECRET, KAT_SRS0, day - DAY, out), SRS_OK);
	assert_int_equal(rev(SECRET, KAT_SRS0, day - DAY - 1, out),
	    SRS_EXPIRED);
	assert_int_equal(rev(SECRET, KAT_SRS0, day - 2 * DAY, out),
	    SRS_EXPIRED);
	assert_int_equal(rev(SECRET, KAT_SRS0, day - 100 * DAY, out),
	    SRS_EXPIRED);
}

/*
 * Every prefix of a good address, and the address with any one byte left
 * out, is refused, and never read past its end.
 */
static void
test_prefixes(void **state)
{
	static const struct {
		const char *secret, *local;
	} good[] = {
		{ SECRET, KAT_SRS0 },
		{ KAT_SRS1_SECRET, KAT_SRS1 },
		{ SECRET, "SRS0=K416=2W=example.net=a=b=c" },
	};
	char out[SRS_ADDR_MAX + 1], cut[SRS_ADDR_MAX + 1];

	for (size_t g = 0; g < sizeof(good) / sizeof(good[0]); g++) {
		size_t n = strlen(good[g].local);

		assert_int_equal(rev(good[g].secret, good[g].local, T0, out),
		    SRS_OK);
		for (size_t k = 0; k < n; k++) {
			enum srs_status st = rev_n(good[g].secret,
			    good[g].local, k, T0, out);

			assert_int_not_equal(st, SRS_OK);
			assert_int_equal(st, k < 5 ? SRS_NOT_SRS :
			    st == SRS_BAD_HASH ? SRS_BAD_HASH : SRS_BAD_SYNTAX);

			/* Without byte k. */
			memcpy(cut, good[g].local, k);
			memcpy(cut + k, good[g].local + k + 1, n - k - 1);
			assert_int_not_equal(rev_n(good[g].secret, cut, n - 1,
			    T0, out), SRS_OK);
		}
	}
}

/* Malformed addresses, and those that are not SRS at all. */
static void
test_garbage(void **state)
{
	static const char *const not_srs[] = {
		"", "S", "SRS", "SRS0", "SRS1", "SRS2=a=b=c=d", "SRSO=a=b=c=d",
		"XRS0=vmyz=2W=otherdomain.com=test", "test", "postmaster",
		" SRS0=vmyz=2W=otherdomain.com=test",
	};
	static const char *const malformed[] = {
		"SRS0=", "SRS0==", "SRS0===", "SRS0====", "SRS0=====",
		"SRS0=vmyz", "SRS0=vmyz=", "SRS0=vmyz=2W", "SRS0=vmyz=2W=",
		"SRS0=vmyz=2W=otherdomain.com", "SRS0=vmyz=2W=otherdomain.com=",
		"SRS0==2W=otherdomain.com=test",
		"SRS0=vmyz==otherdomain.com=test",
		"SRS0=vmyz=2=otherdomain.com=test",
		"SRS0=vmyz=2WW=otherdomain.com=test",
		"SRS0=vmyz=21=otherdomain.com=test",	/* '1' is not base32 */
		"SRS0=vmyz=2@=otherdomain.com=test",
		"SRS0=vmyz=2W==test",
		"SRS0=vmyz=2W=other domain.com=test",
		"SRS0=vmyz=2W=[192.0.2.1]=test",
		"SRS0=vmyz=2W=otherdomain.com=te st",
		"SRS0=vmyz=2W=otherdomain.com=te\"st",
		"SRS0=vmyz=2W=otherdomain.com=test@x",
		"SRS0=vmyz=2W=otherdomain.com=test\r\n",
		"SRS0=vmyz=2W=otherdomain.com=test\n",
		"SRS0=vmyz=2W=otherdomain.com=te\tst",
		"SRS0=vmyz=2W=otherdomain.com=te\x7fst",
		"SRS0=vmyz=2W=otherdomain.com=te\x01st",
		"SRS1=", "SRS1=oDpp", "SRS1=oDpp=", "SRS1=oDpp=example.com",
		"SRS1=oDpp=example.com=", "SRS1=oDpp=example.com==",
		"SRS1=oDpp=example.com=x", "SRS1=oDpp=example.com=xx=y",
		"SRS1==example.com==vmyz=2W=otherdomain.com=test",
		"SRS1=oDpp===vmyz=2W=otherdomain.com=test",
		"SRS1=oDp=example.com==vmyz=2W=otherdomain.com=test",
		"SRS1=oDppp=example.com==vmyz=2W=otherdomain.com=test",
		"SRS1=oDpp=exa:mple.com==vmyz=2W=otherdomain.com=test",
	};
	char out[SRS_ADDR_MAX + 1];

	for (size_t i = 0; i < sizeof(not_srs) / sizeof(not_srs[0]); i++)
		assert_int_equal(rev(SECRET, not_srs[i], T0, out),
		    SRS_NOT_SRS);
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++)
		assert_int_equal(rev(SECRET, malformed[i], T0, out),
		    SRS_BAD_SYNTAX);
	/* A NUL inside, where a C string would end. */
	assert_int_equal(rev_n(SECRET, "SRS0=vmyz=2W=otherdomain.com=te\0st",
	    strlen(KAT_SRS0) + 2, T0, out), SRS_BAD_SYNTAX);
	assert_int_equal(rev_n(SECRET, KAT_SRS0 "\0", strlen(KAT_SRS0) + 1,
	    T0, out), SRS_BAD_SYNTAX);
}

/* Senders that are never rewritten, and aliases that are not domains. */
static void
test_forward_refused(void **state)
{
	static const char *const senders[] = {
		"", "noat", "@example.com", "a@", "@", "a b@example.com",
		"a@exam ple.com", "a@b@example.com", "\"a b\"@example.com",
		"\"ab\"@example.com", "a\\b@example.com", "a\r@example.com",
		"a\n@example.com", "a@example.com\r\n", "a\t@example.com",
		"a@[192.0.2.1]", "a@[IPv6:2001:db8::1]", "a@x=y.example",
		"a(b)@example.com", "a,b@example.com", "a<b@example.com",
		"SRS0=@example.com", "SRS0+@example.com",
		"SRS1=@example.com", "SRS1=abcd@example.com",
		"SRS1=abcd=first.test@example.com",
		"SRS1=abcd=first.test=@example.com",
		"SRS1=abcd=first.test==@example.com",
		"SRS1=abcd=first.test=x=y@example.com",
		"SRS1==first.test==x@example.com",
		"SRS1=abcd==x@example.com",
		"SRS1=abcd=fi:rst==x@example.com",
	};
	static const char *const aliases[] = {
		"", "a b", "x=y", "[192.0.2.1]", "a@b", "a\r\n",
	};
	char out[SRS_ADDR_MAX + 1];

	for (size_t i = 0; i < sizeof(senders) / sizeof(senders[0]); i++) {
		memset(out, 'x', sizeof(out));
		assert_int_equal(fwd(SECRET, senders[i], "fw.test", T0, out),
		    SRS_BAD_SYNTAX);
		assert_string_equal(out, "");
	}
	for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
		assert_int_equal(fwd(SECRET, "a@b.test", aliases[i], T0, out),
		    SRS_BAD_SYNTAX);
	/* Senders SRS can carry, for comparison. */
	assert_int_equal(fwd(SECRET, "SRS1=a=first.test==x@example.com",
	    "fw.test", T0, out), SRS_OK);
	assert_int_equal(fwd(SECRET, "SRS0=x@example.com", "fw.test", T0, out),
	    SRS_OK);
	assert_int_equal(fwd(SECRET, "a%b!c@example.com", "fw.test", T0, out),
	    SRS_OK);
}

/*
 * Addresses of up to SRS_ADDR_MAX octets; a local part longer than 64 is
 * fine.  Beyond, refused whole.
 */
static void
test_too_long(void **state)
{
	char sender[2 * SRS_ADDR_MAX], out[SRS_ADDR_MAX + 1];
	char back[SRS_ADDR_MAX + 1], srs1[SRS_ADDR_MAX + 1];
	char local[SRS_ADDR_MAX + 2];
	/* SRS0=HHHH=TT=example.org=<local>@fw.example: 36 octets and local. */
	const size_t fixed = strlen("SRS0=HHHH=TT=example.org=@fw.example");
	size_t n = SRS_ADDR_MAX - fixed;

	memset(sender, 'a', n);
	strcpy(sender + n, "@example.org");
	assert_int_equal(fwd(SECRET, sender, "fw.example", T0, out), SRS_OK);
	assert_int_equal(strlen(out), SRS_ADDR_MAX);
	assert_int_equal(rev_addr(SECRET, out, T0, back), SRS_OK);
	assert_string_equal(back, sender);
	/* Forwarded again, it would be longer still. */
	assert_int_equal(fwd(SECRET, out, "fw.example", T0, srs1),
	    SRS_TOO_LONG);
	assert_string_equal(srs1, "");

	memset(sender, 'a', n + 1);
	strcpy(sender + n + 1, "@example.org");
	assert_int_equal(fwd(SECRET, sender, "fw.example", T0, out),
	    SRS_TOO_LONG);
	assert_string_equal(out, "");
	/* A sender, or an alias domain, longer than any address. */
	memset(sender, 'a', sizeof(sender) - 1);
	sender[sizeof(sender) - 1] = '\0';
	sender[10] = '@';
	assert_int_equal(fwd(SECRET, sender, "fw.example", T0, out),
	    SRS_TOO_LONG);
	assert_int_equal(fwd(SECRET, "a@b.test", sender + 11, T0, out),
	    SRS_TOO_LONG);

	/* An SRS local part of SRS_ADDR_MAX + 1 octets, however well made. */
	memcpy(local, KAT_SRS0, strlen(KAT_SRS0));
	memset(local + strlen(KAT_SRS0), 't', sizeof(local) -
	    strlen(KAT_SRS0));
	assert_int_equal(rev_n(SECRET, local, SRS_ADDR_MAX + 1, T0, out),
	    SRS_TOO_LONG);
	assert_int_equal(rev_n(SECRET, local, SRS_ADDR_MAX, T0, out),
	    SRS_BAD_HASH);
}

/* An empty secret: SRS is off. */
static void
test_no_secret(void **state)
{
	char out[SRS_ADDR_MAX + 1];

	memset(out, 'x', sizeof(out));
	assert_int_equal(srs_forward("", 0, "a@b.test", "fw.test", T0, out,
	    sizeof(out)), SRS_NO_SECRET);
	assert_string_equal(out, "");
	assert_int_equal(srs_forward(NULL, 0, "a@b.test", "fw.test", T0, out,
	    sizeof(out)), SRS_NO_SECRET);
	assert_int_equal(srs_forward(SECRET, 0, "a@b.test", "fw.test", T0,
	    out, sizeof(out)), SRS_NO_SECRET);
	assert_int_equal(srs_reverse("", 0, KAT_SRS0, strlen(KAT_SRS0), T0,
	    out, sizeof(out)), SRS_NO_SECRET);
	assert_int_equal(srs_reverse(NULL, 0, KAT_SRS1, strlen(KAT_SRS1), T0,
	    out, sizeof(out)), SRS_NO_SECRET);
	assert_string_equal(out, "");
	/* Not SRS is not SRS, with or without a secret. */
	assert_int_equal(srs_reverse("", 0, "postmaster", 10, T0, out,
	    sizeof(out)), SRS_NOT_SRS);
}

/*
 * Every buffer too small for the result gives SRS_NO_SPACE, "" in it and
 * nothing written past it; one byte more than the address fits.
 */
static void
test_small_buffer(void **state)
{
	const char *want_fwd = "SRS0=vmyz=2W=otherdomain.com=test@example.com";
	const char *want_rev = "test@otherdomain.com";
	size_t nf = strlen(want_fwd), nr = strlen(want_rev);

	for (size_t len = 0; len <= nf + 1; len++) {
		char *b = malloc(len > 0 ? len : 1);
		enum srs_status st;

		assert_non_null(b);
		memset(b, 'x', len > 0 ? len : 1);
		st = srs_forward(SECRET, strlen(SECRET), "test@otherdomain.com",
		    "example.com", T0, len > 0 ? b : NULL, len);
		if (len <= nf) {
			assert_int_equal(st, SRS_NO_SPACE);
			if (len > 0)
				assert_int_equal(b[0], '\0');
			for (size_t i = 1; i < len; i++)
				assert_int_equal(b[i], 'x');
		} else {
			assert_int_equal(st, SRS_OK);
			assert_string_equal(b, want_fwd);
		}

		memset(b, 'x', len > 0 ? len : 1);
		st = srs_reverse(SECRET, strlen(SECRET), KAT_SRS0,
		    strlen(KAT_SRS0), T0, len > 0 ? b : NULL, len);
		if (len <= nr) {
			assert_int_equal(st, SRS_NO_SPACE);
			if (len > 0)
				assert_int_equal(b[0], '\0');
		} else {
			assert_int_equal(st, SRS_OK);
			assert_string_equal(b, want_rev);
		}
		free(b);
	}
}

static void
test_is_srs(void **state)
{
	static const char *const yes[] = {
		"SRS0=", "SRS1=", "srs0+", "Srs1-", "sRs0=x", "SRS1=a=b==c",
	};
	static const char *const no[] = {
		"", "SRS0", "SRS1", "SRS2=", "SRS0_", "SRS0.", "SR0=", "RS0=x",
		"xSRS0=", "SRS00=", "\xd3RS0=",
	};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		assert_true(srs_is_srs(yes[i], strlen(yes[i])));
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		assert_false(srs_is_srs(no[i], strlen(no[i])));
	/* Only len bytes count. */
	assert_false(srs_is_srs("SRS0=", 4));
	assert_true(srs_is_srs("SRS0=", 5));
}

static void
test_status_str(void **state)
{
	const char *seen[SRS_CRYPTO + 1];

	for (int s = SRS_OK; s <= SRS_CRYPTO; s++) {
		seen[s] = srs_status_str((enum srs_status)s);
		assert_non_null(seen[s]);
		assert_string_not_equal(seen[s], "unknown status");
		for (int t = SRS_OK; t < s; t++)
			assert_string_not_equal(seen[s], seen[t]);
	}
	assert_string_equal(srs_status_str(SRS_BAD_HASH), "bad signature");
	assert_string_equal(srs_status_str((enum srs_status)99),
	    "unknown status");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_srs1_chain),
		cmocka_unit_test(test_case),
		cmocka_unit_test(test_separators),
		cmocka_unit_test(test_equals_in_local),
		cmocka_unit_test(test_bad_hash),
		cmocka_unit_test(test_expired),
		cmocka_unit_test(test_wrap),
		cmocka_unit_test(test_future),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_forward_refused),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_no_secret),
		cmocka_unit_test(test_small_buffer),
		cmocka_unit_test(test_is_srs),
		cmocka_unit_test(test_status_str),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
