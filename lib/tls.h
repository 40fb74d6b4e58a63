/*
 * tls.h - the server TLS context both daemons use.
 *
 * One SSL_CTX from [tls] certificate, key and min_protocol.  SIGHUP makes
 * a new one (tls_reload); sessions already running keep a reference to
 * the context they started with, new sessions get the new one.
 */
#ifndef UMBOX_TLS_H
#define UMBOX_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

struct umbox_config;

/* A new server context, or NULL with a message naming the file that failed. */
SSL_CTX *tls_server_ctx_new(const struct umbox_config *cfg, char *err, size_t errlen);

/*
 * Replace *ctx with a fresh context from the same config; on failure keep
 * the old one and return -1 with the message.
 */
int tls_reload(SSL_CTX **ctx, const struct umbox_config *cfg, char *err, size_t errlen);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384" for Received: headers and logs. */
const char *tls_describe(SSL *ssl, char *buf, size_t len);

#endif
