/*
 * mime.h - what the messages umbox writes itself share: GMime 3 started
 * once per process, a Message-ID, and a GMime object written out as the
 * store wants it (CRLF line ends only).  Bounces (dsn.c) and voicemail
 * and fax deposits (voicemail.c) are built with it.
 */
#ifndef UMBOX_ALIASES_MIME_H
#define UMBOX_ALIASES_MIME_H

#include <stddef.h>
#include <stdint.h>

#include <gmime/gmime.h>

/* Start GMime (once per process, any thread). */
void mime_init(void);
/* Stop it again (tests and tools; nothing may use GMime afterwards). */
void mime_shutdown(void);

/* "<TAG.NOW.RANDOM@HOST>", g_free() it; tag: letters and digits. */
char *mime_message_id(const char *tag, int64_t now, const char *host);

/*
 * Write obj with CRLF line ends into *out (malloc'd, NUL after *outlen
 * bytes).  0, or -1 with a message in err (never a bare CR or LF).
 */
int mime_write(GMimeObject *obj, char **out, size_t *outlen, char *err, size_t errlen);

/*
 * RFC 6152 §3 (RFC 1652's conversion): the message in in_fd (from its
 * start, CRLF line ends) written to out_fd for a server without
 * 8BITMIME.  Every body part with octets above 127 in an identity
 * encoding (7bit, 8bit, binary, or none given) is re-encoded as
 * quoted-printable or base64, whichever GMime finds shorter; a part with
 * no Content-Type is labelled with its charset (utf-8 when it is valid
 * UTF-8, else unknown-8bit) and the message gains MIME-Version when it
 * had none.  Signed and encrypted parts and the header fields are left as
 * they are.  *outlen: the octets written; *eightbit: whether any octet
 * above 127 remains.  0; 1 when no part needs re-encoding (nothing is
 * written: the message goes as it is); -1 with a message in err.  Any
 * thread.
 */
int mime_to_7bit(int in_fd, int out_fd, uint64_t *outlen, int *eightbit, char *err,
    size_t errlen);

#endif
