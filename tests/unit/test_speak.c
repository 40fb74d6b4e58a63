/*
 * test_speak.c - an email read aloud (aliases/speak.c).
 *
 * The words: whole messages in, the exact sentence out, for the MIME
 * shapes mail really comes in (quoted-printable in Latin-1, base64 UTF-8,
 * multipart/alternative, HTML only, attachments), the trimming of quoted
 * replies and signatures, the cap, missing fields and garbage.  Dates are
 * spoken in local time: TZ is set here.
 *
 * The sound: the resampler against sine waves (a tone in the telephone
 * band keeps its level, one above 4 kHz is gone), then whole WAVE files
 * from espeak-ng, read back with the project's own WAVE reader.
 */
#include "testutil.h"

#include <math.h>
#include <time.h>

#include <glib.h>

#include "aliases/speak.h"
#include "lib/media.h"
#include "lib/util.h"

#define HDR "From: \"Bob Smith\" <bob@example.org>\r\n" \
	"To: alice@example.test\r\n" \
	"Subject: Lunch tomorrow\r\n" \
	"Date: Tue, 1 Dec 2020 15:05:00 +0000\r\n"
#define SAID "Message from Bob Smith, subject Lunch tomorrow, " \
	"received Tuesday, December 1 at 3:05 PM. "

/* The words for msg; fails the test if there are none. */
static char *
words(const char *msg)
{
	char err[SPEAK_ERR_MAX] = "";
	char *out = NULL;

	if (speak_text_of_message(msg, strlen(msg), &out, err, sizeof(err)) != 0)
		fail_msg("speak_text_of_message: %s", err);
	assert_non_null(out);
	assert_true(strlen(out) < SPEAK_TEXT_MAX);
	return out;
}

static void
expect(const char *msg, const char *said)
{
	char *out = words(msg);

	if (strcmp(out, said) != 0)
		fail_msg("\n got: %s\nwant: %s", out, said);
	free(out);
}

static void
test_plain(void **state)
{
	expect(HDR "\r\nHi Alice,\r\n\r\nShall we meet   for lunch\r\nat noon tomorrow?\r\n",
	    SAID "Hi Alice, Shall we meet for lunch at noon tomorrow? End of message.");
	/* LF line ends, a paragraph without closing punctuation. */
	expect("From: Bob <bob@example.org>\nSubject: Hi\n"
	    "Date: Tue, 1 Dec 2020 00:30:00 +0000\n\nFirst line\n\nSecond line\n",
	    "Message from Bob, subject Hi, received Tuesday, December 1 at 12:30 AM. "
	    "First line. Second line. End of message.");
}

static void
test_local_time(void **state)
{
	setenv("TZ", "EST5EDT,M3.2.0,M11.1.0", 1);
	tzset();
	expect(HDR "\r\nHi.\r\n",
	    "Message from Bob Smith, subject Lunch tomorrow, "
	    "received Tuesday, December 1 at 10:05 AM. Hi. End of message.");
	setenv("TZ", "UTC", 1);
	tzset();
}

static void
test_quoted_printable_latin1(void **state)
{
	expect("From: =?ISO-8859-1?Q?Ren=E9_Dupr=E9?= <rene@example.fr>\r\n"
	    "Subject: =?ISO-8859-1?Q?R=E9union_=E0_midi?=\r\n"
	    "Date: Tue, 1 Dec 2020 15:05:00 +0000\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=ISO-8859-1\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n"
	    "Le caf=E9 est pr=EAt, on se voit =E0 midi pour la r=E9uni=\r\n"
	    "on.\r\n",
	    "Message from Ren\xc3\xa9 Dupr\xc3\xa9, subject R\xc3\xa9union \xc3\xa0 midi, "
	    "received Tuesday, December 1 at 3:05 PM. "
	    "Le caf\xc3\xa9 est pr\xc3\xaat, on se voit \xc3\xa0 midi pour la "
	    "r\xc3\xa9union. End of message.");
}

static void
test_base64_utf8(void **state)
{
	/* "Grüße aus München — bis bald!" */
	expect(HDR "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "\r\n"
	    "R3LDvMOfZSBhdXMgTcO8bmNoZW4g4oCUIGJpcyBiYWxkIQ==\r\n",
	    SAID "Gr\xc3\xbc\xc3\x9f" "e aus M\xc3\xbcnchen \xe2\x80\x94 bis bald! "
	    "End of message.");
}

static void
test_alternative(void **state)
{
	/* The HTML comes first; the plain text is still the one read. */
	expect(HDR "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/alternative; boundary=\"b1\"\r\n"
	    "\r\n"
	    "--b1\r\n"
	    "Content-Type: text/html; charset=utf-8\r\n"
	    "\r\n"
	    "<p>The <b>HTML</b> version.</p>\r\n"
	    "--b1\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "\r\n"
	    "The plain version.\r\n"
	    "--b1--\r\n",
	    SAID "The plain version. End of message.");
	/* multipart/mixed: a text attachment is not the body, the HTML is. */
	expect(HDR "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=\"m\"\r\n"
	    "\r\n"
	    "--m\r\n"
	    "Content-Type: text/plain; name=notes.txt\r\n"
	    "Content-Disposition: attachment; filename=notes.txt\r\n"
	    "\r\n"
	    "Attached notes.\r\n"
	    "--m\r\n"
	    "Content-Type: text/html\r\n"
	    "\r\n"
	    "<div>See the notes.</div>\r\n"
	    "--m--\r\n",
	    SAID "See the notes. End of message.");
}

static void
test_html_only(void **state)
{
	expect(HDR "MIME-Version: 1.0\r\n"
	    "Content-Type: text/html; charset=utf-8\r\n"
	    "\r\n"
	    "<!DOCTYPE html><html><head><title>Newsletter</title>\r\n"
	    "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-1\">\r\n"
	    "<style>p { color: red }</style>\r\n"
	    "<script>var secret = 1;</script></head>\r\n"
	    "<body><h1>Caf\xc3\xa9 news</h1>\r\n"
	    "<p>Fish&nbsp;&amp;&nbsp;chips for &euro;5 &#8212; today\r\n"
	    "only</p><p>Line one<br>line two</p>\r\n"
	    "<script type=\"text/javascript\">alert(1)</script>\r\n"
	    "<ul><li>First</li><li>Second</li></ul>\r\n"
	    "<table><tr><td>A</td><td>B</td></tr></table>\r\n"
	    "</body></html>\r\n",
	    SAID "Caf\xc3\xa9 news. Fish & chips for \xe2\x82\xac" "5 \xe2\x80\x94 today only. "
	    "Line one line two. First. Second. A B. End of message.");
	/* The space between two inline elements is a word break. */
	expect(HDR "Content-Type: text/html\r\n\r\n<p><b>Fish</b> <i>chips</i></p>\r\n",
	    SAID "Fish chips. End of message.");
	/* <pre> keeps its lines (read as sentences when separated by a blank line). */
	expect(HDR "Content-Type: text/html\r\n\r\n<pre>one\ntwo\n\nthree</pre>\r\n",
	    SAID "one two. three. End of message.");
	/* Broken HTML, and a quoted reply in a blockquote. */
	expect(HDR "Content-Type: text/html\r\n"
	    "\r\n"
	    "<div>Yes, <i>agreed<div>see you then</b>\r\n"
	    "<div class=\"gmail_quote\">On Mon, Nov 30, 2020 at 9:00 AM Alice wrote:<br>"
	    "<blockquote type=\"cite\">Are you free?</blockquote></div>\r\n",
	    SAID "Yes, agreed. see you then. End of message.");
}

static void
test_trim(void **state)
{
	expect(HDR "\r\nSounds good.\r\n\r\n"
	    "On Mon, Nov 30, 2020 at 9:00 AM Alice Example <alice@example.test> wrote:\r\n"
	    "> Are you free?\r\n> Lunch?\r\n",
	    SAID "Sounds good. End of message.");
	/* The attribution broken over two lines. */
	expect(HDR "\r\nSounds good.\r\nOn Mon, Nov 30, 2020 at 9:00 AM Alice Example <\r\n"
	    "alice@example.test> wrote:\r\n> Are you free?\r\n",
	    SAID "Sounds good. End of message.");
	/* Interleaved quotes are skipped, the answers kept; the signature goes. */
	expect(HDR "\r\n> Lunch?\r\nYes.\r\n>> Where?\r\n> At noon.\r\nThe usual place.\r\n"
	    "-- \r\nBob Smith\r\nSales, ACME\r\n",
	    SAID "Yes. The usual place. End of message.");
	expect(HDR "\r\nSee below.\r\n\r\n-----Original Message-----\r\nFrom: Alice\r\n"
	    "Sent: Monday\r\n\r\nAre you free?\r\n",
	    SAID "See below. End of message.");
	expect(HDR "\r\nSee below.\r\n\r\n________________________________\r\n"
	    "From: Alice\r\nSent: Monday\r\n\r\nAre you free?\r\n",
	    SAID "See below. End of message.");
	/* Not a separator: "--" inside a line, a rule not followed by From:. */
	expect(HDR "\r\nA -- B\r\n__________\r\nC\r\n",
	    SAID "A -- B __________ C. End of message.");
	/* Only a quote: nothing of the sender's own. */
	expect(HDR "\r\n> quoted\r\n", SAID "The message has no text. End of message.");
}

static void
test_cap(void **state)
{
	size_t n = 20000;
	char *msg = xmalloc(sizeof(HDR) + 2 + n * 6 + 1);
	char *p, *out, *body;
	size_t chars = 0;

	p = msg + sprintf(msg, "%s\r\n", HDR);
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s ", i % 2 ? "hello" : "world");
	out = words(msg);
	assert_true(strncmp(out, SAID, strlen(SAID)) == 0);
	body = out + strlen(SAID);
	p = strstr(body, " ... The message is longer; the rest is not read. End of message.");
	assert_non_null(p);
	assert_string_equal(p + 5 + strlen("The message is longer; the rest is not read. End of message."), "");
	/* Whole words only, at most SPEAK_BODY_MAX characters. */
	chars = (size_t)(p - body);
	assert_true(chars <= SPEAK_BODY_MAX);
	assert_true(chars > SPEAK_BODY_MAX - 10);
	assert_true(p[-1] == 'o' || p[-1] == 'd');
	assert_true(strncmp(p - 5, "hello", 5) == 0 || strncmp(p - 5, "world", 5) == 0);
	free(out);
	free(msg);

	/* Long fields are cut too. */
	msg = xmalloc(4 * 1024 * 3 + 1024);
	p = msg + sprintf(msg, "From: ");
	for (int i = 0; i < 1000; i++)
		p += sprintf(p, "Bob ");
	p += sprintf(p, "<bob@example.org>\r\nSubject: ");
	for (int i = 0; i < 1000; i++)
		p += sprintf(p, "\xc3\xa9t\xc3\xa9 ");
	sprintf(p, "\r\n\r\nBody.\r\n");
	out = words(msg);
	assert_true(strlen(out) < 3 * 4 * SPEAK_FIELD_MAX);
	assert_non_null(strstr(out, "Bob Bob, subject "));
	free(out);
	free(msg);
}

static void
test_missing_fields(void **state)
{
	expect("\r\nJust a body.\r\n",
	    "Message from an unknown sender, no subject. Just a body. End of message.");
	expect("From: bob@example.org\r\nSubject:   \r\n\r\nHi\r\n",
	    "Message from bob@example.org, no subject. Hi. End of message.");
	expect("From: <bob@example.org>\r\nDate: sometime next week\r\n\r\n",
	    "Message from bob@example.org, no subject, received sometime next week. "
	    "The message has no text. End of message.");
	expect("From: Undisclosed recipients:;\r\nSubject: x\r\n\r\nHi\r\n",
	    "Message from Undisclosed recipients, subject x. Hi. End of message.");
	/* Only an image: nothing to read. */
	expect("From: Bob <bob@example.org>\r\nContent-Type: image/png\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n",
	    "Message from Bob, no subject. The message has no text. End of message.");
}

/* Any bytes: an answer or an error, never a crash, never too long. */
static void
try_bytes(const char *msg, size_t len)
{
	char err[SPEAK_ERR_MAX] = "";
	char *out = NULL;

	if (speak_text_of_message(msg, len, &out, err, sizeof(err)) == 0) {
		assert_non_null(out);
		assert_true(strlen(out) < SPEAK_TEXT_MAX);
		assert_true(strncmp(out, "Message from ", 13) == 0);
		assert_true(g_utf8_validate(out, -1, NULL));
		free(out);
	} else {
		assert_null(out);
		assert_true(err[0] != '\0');
	}
}

static void
test_garbage(void **state)
{
	static const char multi[] = HDR "Content-Type: multipart/mixed; boundary=x\r\n\r\n"
	    "--x\r\nContent-Type: text/html; charset=bogus-charset\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\nPGI+aGk8L2I+\xff\xfe\r\n--x\r\n"
	    "Content-Type: multipart/alternative; boundary=y\r\n\r\n--y\r\n";
	static const char bad_fields[] =
	    "From: \xff\xfe <\x80@\x81>\r\nSubject: =?utf-8?B?////?=\r\n\r\n\xc3";
	char err[SPEAK_ERR_MAX];
	char bytes[4096], *out = NULL;
	unsigned seed = 12345;

	assert_int_equal(speak_text_of_message("", 0, &out, err, sizeof(err)), -1);
	assert_null(out);
	assert_string_equal(err, "the message is empty");
	try_bytes("\0\0\0\0", 4);
	try_bytes("\r\n", 2);
	try_bytes("\xff\xfe\xfd", 3);
	try_bytes(bad_fields, sizeof(bad_fields) - 1);
	/* Every prefix of a multipart message cut short, and the whole. */
	for (size_t i = 1; i <= sizeof(multi) - 1; i++)
		try_bytes(multi, i);
	/* Deep nesting. */
	{
		size_t n = 0;
		char *deep = xmalloc(200 * 80 + 100);

		for (int i = 0; i < 200; i++)
			n += (size_t)sprintf(deep + n, "Content-Type: multipart/mixed; boundary=b%d\r\n"
			    "\r\n--b%d\r\n", i, i);
		n += (size_t)sprintf(deep + n, "\r\ndeep\r\n");
		try_bytes(deep, n);
		free(deep);
	}
	for (int round = 0; round < 200; round++) {
		size_t len = (size_t)(rand_r(&seed) % (int)sizeof(bytes));

		for (size_t i = 0; i < len; i++)
			bytes[i] = (char)(rand_r(&seed) & 0xff);
		try_bytes(bytes, len);
	}
}

/* ---- the sound ---- */

static int16_t *
sine(double freq, unsigned rate, size_t n, double amp)
{
	int16_t *s = xmalloc(n * sizeof(*s));

	for (size_t i = 0; i < n; i++)
		s[i] = (int16_t)lrint(amp * sin(2 * M_PI * freq * (double)i / rate));
	return s;
}

/* RMS of s[from..n-from): the edges, where the filter sees zeros, left out. */
static double
rms(const int16_t *s, size_t n, size_t from)
{
	double sum = 0;

	for (size_t i = from; i < n - from; i++)
		sum += (double)s[i] * s[i];
	return sqrt(sum / (double)(n - 2 * from));
}

static void
test_resample(void **state)
{
	size_t n = 22050;
	int16_t *in, *out;
	long got;

	/* 1 kHz: the level is kept, and so is the pitch (zero crossings). */
	in = sine(1000, 22050, n, 10000);
	got = speak_resample(in, n, 22050, 8000, &out);
	assert_int_equal(got, 8000);
	{
		double r = rms(out, (size_t)got, 100) / rms(in, n, 200);
		int crossings = 0;

		assert_true(r > 0.98 && r < 1.02);
		for (long i = 101; i < got - 100; i++)
			crossings += (out[i - 1] < 0) != (out[i] < 0);
		assert_true(crossings >= 1940 && crossings <= 1960);	/* 2 a cycle, 7800 samples */
		/* Sample by sample against the ideal 1 kHz at 8 kHz (group delay 0). */
		for (long i = 100; i < got - 100; i++)
			assert_true(fabs(out[i] - 10000 * sin(2 * M_PI * 1000 * i / 8000.0)) < 150);
	}
	free(in);
	free(out);

	/* Above the new Nyquist frequency: gone, not folded back. */
	for (double f = 4600; f <= 10000; f += 900) {
		in = sine(f, 22050, n, 20000);
		got = speak_resample(in, n, 22050, 8000, &out);
		assert_int_equal(got, 8000);
		assert_true(rms(out, (size_t)got, 100) < 20000 / sqrt(2) / 300);	/* < -50 dB */
		free(in);
		free(out);
	}

	/* DC, lengths, rates it refuses. */
	in = sine(0, 22050, 1000, 0);
	for (size_t i = 0; i < 1000; i++)
		in[i] = 1234;
	got = speak_resample(in, 1000, 22050, 8000, &out);
	assert_int_equal(got, (1000 * 160 + 440) / 441);
	for (long i = 60; i < got - 60; i++)
		assert_int_equal(out[i], 1234);
	free(out);
	assert_int_equal(speak_resample(in, 0, 22050, 8000, &out), 0);
	assert_null(out);
	assert_int_equal(speak_resample(in, 1, 22050, 8000, &out), 1);
	free(out);
	assert_int_equal(speak_resample(in, 1000, 0, 8000, &out), -1);
	assert_int_equal(speak_resample(in, 1000, 22051, 8000, &out), -1);
	/* 16 kHz to 8 kHz and 8 kHz to 8 kHz work too. */
	assert_int_equal(speak_resample(in, 1000, 16000, 8000, &out), 500);
	free(out);
	got = speak_resample(in, 1000, 8000, 8000, &out);
	assert_int_equal(got, 1000);
	for (long i = 30; i < got - 30; i++)
		assert_int_equal(out[i], 1234);
	free(out);
	free(in);

	/* Full scale does not wrap around. */
	in = sine(500, 22050, n, 32767);
	got = speak_resample(in, n, 22050, 8000, &out);
	for (long i = 1; i < got; i++)
		assert_true(abs(out[i] - out[i - 1]) < 20000);
	free(in);
	free(out);
}

static void
check_wav(const unsigned char *wav, size_t len, uint64_t *millis)
{
	struct wav_info wi;
	char err[MEDIA_ERR_MAX];

	assert_true(len > SPEAK_WAV_HEADER);
	if (wav_parse(wav, len, NULL, &wi, err, sizeof(err)) != 0)
		fail_msg("wav_parse: %s", err);
	assert_int_equal(wi.format, WAV_FORMAT_PCM);
	assert_int_equal(wi.channels, 1);
	assert_int_equal(wi.rate, 8000);
	assert_int_equal(wi.bits, 16);
	assert_int_equal(wi.data_len, len - SPEAK_WAV_HEADER);
	*millis = wi.millis;
}

static void
test_wav(void **state)
{
	char err[SPEAK_ERR_MAX];
	unsigned char *wav;
	size_t len;
	uint64_t short_ms, long_ms;
	int loud = 0;

	if (speak_wav("Hello.", "en", &wav, &len, err, sizeof(err)) != 0)
		fail_msg("speak_wav: %s", err);
	check_wav(wav, len, &short_ms);
	assert_true(short_ms > 200 && short_ms < 3000);
	/* Speech, not silence. */
	for (size_t i = SPEAK_WAV_HEADER; i + 1 < len; i += 2)
		loud += abs((int16_t)(wav[i] | wav[i + 1] << 8)) > 3000;
	assert_true(loud > 100);
	free(wav);

	if (speak_wav(SAID "Hi Alice, shall we meet for lunch at noon tomorrow? "
	    "End of message.", "en", &wav, &len, err, sizeof(err)) != 0)
		fail_msg("speak_wav: %s", err);
	check_wav(wav, len, &long_ms);
	assert_true(long_ms > 3 * short_ms);
	free(wav);

	/* Another language, and a voice variant. */
	assert_int_equal(speak_wav("Guten Tag.", "de", &wav, &len, err, sizeof(err)), 0);
	free(wav);
	assert_int_equal(speak_wav("Hello.", "en+f3", &wav, &len, err, sizeof(err)), 0);
	free(wav);
	/* Nothing to say is a short silence, still a valid file. */
	assert_int_equal(speak_wav("", "en", &wav, &len, err, sizeof(err)), 0);
	assert_true(len >= SPEAK_WAV_HEADER);
	free(wav);

	assert_int_equal(speak_wav("Hello.", "no-such-voice", &wav, &len, err, sizeof(err)), -1);
	assert_null(wav);
	assert_non_null(strstr(err, "no-such-voice"));
	assert_int_equal(speak_wav("Hello.", "en; rm -rf /", &wav, &len, err, sizeof(err)), -1);
	assert_int_equal(speak_wav("Hello.", "", &wav, &len, err, sizeof(err)), -1);
	assert_int_equal(speak_wav("Hello.", NULL, &wav, &len, err, sizeof(err)), -1);

}

/* The whole way: a message to a WAVE file. */
static void
test_message_to_wav(void **state)
{
	char err[SPEAK_ERR_MAX];
	unsigned char *wav;
	size_t len;
	uint64_t ms;
	char *text = words(HDR "Content-Type: text/html\r\n\r\n<p>See you <b>soon</b>.</p>\r\n");

	assert_int_equal(speak_wav(text, "en", &wav, &len, err, sizeof(err)), 0);
	check_wav(wav, len, &ms);
	assert_true(ms > 4000);
	free(wav);
	free(text);
}

static int
group_setup(void **state)
{
	setenv("TZ", "UTC", 1);
	tzset();
	return 0;
}

static int
group_teardown(void **state)
{
	char err[SPEAK_ERR_MAX];
	unsigned char *wav;
	size_t len;

	speak_shutdown();
	/* Once shut down, synthesis says so (espeak-ng cannot start twice). */
	if (speak_wav("Hello.", "en", &wav, &len, err, sizeof(err)) != -1 ||
	    strcmp(err, "speech synthesis was shut down") != 0)
		return -1;
	speak_shutdown();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_local_time),
		cmocka_unit_test(test_quoted_printable_latin1),
		cmocka_unit_test(test_base64_utf8),
		cmocka_unit_test(test_alternative),
		cmocka_unit_test(test_html_only),
		cmocka_unit_test(test_trim),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_missing_fields),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_resample),
		cmocka_unit_test(test_wav),
		cmocka_unit_test(test_message_to_wav),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
