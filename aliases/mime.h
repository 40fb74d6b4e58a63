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

#endif
