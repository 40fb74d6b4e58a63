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

struct bufferevent;
struct event_base;

/*
 * A server-side TLS bufferevent: over an existing bufferevent (STARTTLS,
 * STLS) when under is set, else on the socket fd (implicit TLS).  Closes
 * what it wraps when freed.  NULL on failure.
 */
struct bufferevent *tls_bev_accept(struct event_base *base, SSL_CTX *ctx,
    struct bufferevent *under, int fd);

/*
 * The client context for outbound SMTP: the system's trusted CAs, TLS 1.2
 * at least, OpenSSL's default suites.  NULL with a message on failure.
 */
SSL_CTX *tls_client_ctx_new(char *err, size_t errlen);

/*
 * A client-side TLS bufferevent over under (STARTTLS) or on the connected
 * socket fd (implicit TLS), sending host as SNI.  With verify, the chain
 * and the name must check out or the handshake fails; without, the
 * result is only recorded (tls_verify_result).  NULL on failure.
 */
struct bufferevent *tls_bev_connect(struct event_base *base, SSL_CTX *ctx,
    struct bufferevent *under, int fd, const char *host, int verify);

/*
 * The peer certificate's subject and the verification result in words
 * ("ok", "self-signed certificate", "hostname mismatch") into buf.
 */
const char *tls_peer_describe(SSL *ssl, char *buf, size_t len);

/* Bytes queued but not yet handed to the kernel, the TLS layer's included. */
size_t tls_bev_unsent(struct bufferevent *bev);

/*
 * SIGHUP: load the certificate and key again into *ctx (or for the first
 * time, if they could not be loaded at startup); keep the old ones and
 * log why if the new ones do not load.
 */
void tls_sighup(SSL_CTX **ctx, const struct umbox_config *cfg);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384" for Received: headers and logs. */
const char *tls_describe(SSL *ssl, char *buf, size_t len);

#endif
