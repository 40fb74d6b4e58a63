/*
 * speak.h - read an email aloud for the phone (SPEC §8).
 *
 * Two steps, so that a telephony program can use either:
 *
 *   speak_text_of_message()  a message's bytes -> the words to say:
 *                            "Message from NAME, subject SUBJECT,
 *                            received DATE. BODY End of message."
 *   speak_wav()              words -> a telephone-ready WAVE file
 *                            (8 kHz, mono, 16-bit PCM) with libespeak-ng.
 *
 * MIME (parts, transfer encodings, charsets, RFC 2047 words) is GMime's
 * work and HTML is reduced to text by libxml2's HTML parser.
 *
 * speak_wav() blocks for as long as synthesis takes (a second or two for
 * a long message): call it from a command or a worker thread, never from
 * a daemon's event loop.  espeak-ng is not thread-safe, so calls are
 * serialised inside.
 */
#ifndef UMBOX_SPEAK_H
#define UMBOX_SPEAK_H

#include <stddef.h>
#include <stdint.h>

#define SPEAK_BODY_MAX		3000	/* body characters read, about three minutes */
#define SPEAK_FIELD_MAX		200	/* name, subject, date: each at most this */
/* The longest text speak_text_of_message() makes, in bytes with its NUL. */
#define SPEAK_TEXT_MAX		(4 * SPEAK_BODY_MAX + 4 * 3 * SPEAK_FIELD_MAX + 256)
#define SPEAK_RATE		8000	/* the WAVE file's sample rate */
#define SPEAK_MAX_SECONDS	900	/* synthesis stops after this much speech */
#define SPEAK_WAV_HEADER	44
#define SPEAK_ERR_MAX		256	/* a good size for err */

/*
 * The words to say for the message msg[0..len) (a whole RFC 5322 message,
 * header and body, CRLF or LF line ends).  Pure apart from the local
 * time zone, which the date is spoken in.
 *
 *   NAME     the From display name, else its address, else "an unknown
 *            sender";
 *   SUBJECT  the decoded Subject ("no subject" when missing or empty);
 *   DATE     "Tuesday, December 1 at 3:05 PM" in local time, or the Date
 *            field as written when it does not parse; the "received"
 *            clause is left out when there is no Date;
 *   BODY     the first text/plain part that is not an attachment, else
 *            the first text/html part reduced to text, converted from its
 *            charset to UTF-8; lines quoted with '>' are skipped, and
 *            reading stops at an "On ... wrote:" line, an "-----Original
 *            Message-----" line or the signature separator "-- ";
 *            whitespace is collapsed, and the body is cut at a word
 *            boundary after SPEAK_BODY_MAX characters.
 *
 * Returns 0 with *out a malloc'd UTF-8 string shorter than SPEAK_TEXT_MAX
 * bytes, or -1 with a sentence in err.
 */
int speak_text_of_message(const char *msg, size_t len, char **out, char *err, size_t errlen);

/*
 * Synthesise text (UTF-8) with the espeak-ng voice named voice ("en",
 * "de", "en-us", "en+f3": a language or voice name as espeak-ng knows it)
 * and return a whole WAVE file, 8 kHz mono 16-bit PCM, in *wav (malloc'd)
 * and *wavlen.  Speech past SPEAK_MAX_SECONDS is cut off.  Returns 0, or
 * -1 with a sentence in err: an unknown voice, espeak-ng's data missing.
 */
int speak_wav(const char *text, const char *voice, unsigned char **wav, size_t *wavlen,
    char *err, size_t errlen);

/*
 * Resample 16-bit mono samples in[0..n) from rate_in to rate_out (a
 * windowed-sinc low-pass at 85% of the lower Nyquist frequency, applied
 * as a polyphase filter, so nothing above the new Nyquist frequency
 * folds back into the band).  The rates' ratio must reduce to a
 * denominator and numerator of at most SPEAK_RESAMPLE_PHASES each.
 * Returns the number of samples written to *out (malloc'd, NULL when 0),
 * or -1 for rates it cannot convert.
 */
#define SPEAK_RESAMPLE_PHASES	4096
long speak_resample(const int16_t *in, size_t n, unsigned rate_in, unsigned rate_out,
    int16_t **out);

/*
 * Release espeak-ng, at exit (for leak checkers).  speak_wav() fails
 * afterwards: espeak-ng 1.51 hangs in its next espeak_ng_Terminate() once
 * it has been started a second time, so it is started once per process.
 */
void speak_shutdown(void);

#endif
