/*
 * data.h - the DATA and BDAT content stream, a pure state machine.
 *
 * Input arrives in arbitrary slices (a byte at a time or megabytes); the
 * parser emits the message bytes to a sink and says when DATA has ended.
 * Rules (SPEC §4, and the smuggling advisories CVE-2023-51764/5/6):
 *   - DATA ends only at CRLF "." CRLF, where the first CRLF may be the
 *     CRLF that ended the DATA command itself (an empty message).  A bare
 *     CR or bare LF never ends data and never starts a line for
 *     dot-unstuffing purposes.
 *   - Dot-unstuffing: a line (after a CRLF) starting with "." loses it.
 *   - Stored line ends are CRLF: a bare LF or a bare CR in the content is
 *     written as CRLF (flag SMTP_DATA_F_BARE_EOL).  Because this happens
 *     after end-of-data detection, it cannot create an end of data.
 *   - NUL octets are counted (flag SMTP_DATA_F_NUL); the session refuses
 *     such a message at the end.
 *   - Size: emitted bytes are counted; past max_size nothing more is
 *     emitted and SMTP_DATA_F_TOO_BIG is set (sticky); reading continues
 *     to the end so the client can be answered once.
 *   - Hops: "Received:" fields in the header section are counted.
 * In BDAT mode there is no dot-unstuffing and no end detection: the
 * caller feeds exactly the chunk's bytes.
 */
#ifndef UMBOX_SMTPD_DATA_H
#define UMBOX_SMTPD_DATA_H

#include <stddef.h>
#include <stdint.h>

#define SMTP_DATA_F_BARE_EOL	0x01
#define SMTP_DATA_F_NUL		0x02
#define SMTP_DATA_F_TOO_BIG	0x04

typedef void smtp_data_sink(void *ctx, const char *buf, size_t len);

struct smtp_data {
	int bdat;		/* BDAT mode */
	int state;		/* internal */
	int header_state;	/* internal: where we are in the header section */
	size_t hdr_match;	/* internal: bytes of "Received:" matched at line start */
	int in_header;		/* still in the header section */
	uint64_t size;		/* bytes emitted (counted even past max_size) */
	uint64_t max_size;
	unsigned received;	/* Received: fields seen in the header section */
	unsigned flags;
	int done;		/* DATA: the terminating CRLF.CRLF was consumed */
	smtp_data_sink *sink;
	void *ctx;
};

void smtp_data_init(struct smtp_data *d, int bdat, uint64_t max_size,
    smtp_data_sink *sink, void *ctx);

/*
 * Consume up to len bytes.  Returns how many were consumed: all of them,
 * or fewer when the end of DATA was reached (then d->done is set and the
 * rest of the input belongs to the next command).
 */
size_t smtp_data_feed(struct smtp_data *d, const char *in, size_t len);

/* BDAT LAST: flush anything held back (a pending CR) at the end of the last chunk. */
void smtp_data_finish(struct smtp_data *d);

#endif
