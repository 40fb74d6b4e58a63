/*
 * dsn-sample - write a sample delivery status notification to stdout,
 * for the format test (tests/mta/test_dsn_format.py) and for looking at.
 *
 *   dsn-sample [delayed]
 *
 * Two recipients of one message: one refused by the remote server with
 * 550 5.1.1, one given up on at the end of the queue lifetime after
 * 4xx replies.  With "delayed", both are still being retried instead.
 * The original message had an 8-bit Subject.  Exit 0 when the report
 * was built.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aliases/dsn.h"

static const char original[] =
    "Received: from client.example.org (client.example.org [192.0.2.7])\r\n"
    "\tby mail.example.com with ESMTPS id 4F2A9C1B\r\n"
    "From: Alice <alice@example.com>\r\n"
    "To: bob@example.net, sales@example.com\r\n"
    "Subject: Quarterly report \xe2\x80\x94 draft\r\n"
    "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    "Message-ID: <draft-7@example.com>\r\n"
    "\r\n"
    "The body is not part of the report.\r\n";

int
main(int argc, char **argv)
{
	int delayed = argc > 1 && strcmp(argv[1], "delayed") == 0;
	struct dsn_rcpt rcpts[2] = {
		{
			.final_recipient = "bob@example.net",
			.action = delayed ? DSN_DELAYED : DSN_FAILED,
			.remote_mta = "mx1.example.net",
			.smtp_reply = delayed ?
			    "450 4.2.1 mailbox busy, try later" :
			    "550 5.1.1 <bob@example.net>: no such user",
			.last_attempt = 1700000400,
			.retry_until = 1700432000,
		},
		{
			.final_recipient = "carol@example.org",
			.original_recipient = "sales@example.com",
			.action = delayed ? DSN_DELAYED : DSN_FAILED,
			.remote_mta = "mx.example.org",
			.smtp_reply = "451 4.3.0 temporary failure, please try again later",
			.expired = !delayed,
			.last_attempt = 1700431000,
			.retry_until = 1700432000,
		},
	};
	struct dsn_report r = {
		.hostname = "mail.example.com",
		.recipient = "alice@example.com",
		.qid = "4F2A9C1B",
		.arrival = 1700000000,
		.now = 1700432000,
		.lifetime = 5 * 86400,
		.headers = original,
		.headers_len = sizeof(original) - 1,
		.rcpts = rcpts,
		.nrcpts = 2,
	};
	char err[256], *out;
	size_t len;

	if (dsn_build(&r, &out, &len, err, sizeof(err)) != 0) {
		fprintf(stderr, "dsn-sample: %s\n", err);
		return 1;
	}
	fwrite(out, 1, len, stdout);
	free(out);
	dsn_shutdown();
	return fflush(stdout) == 0 ? 0 : 1;
}
