/*
 * tls.c - OpenSSL 3 server contexts.
 */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "log.h"
#include "value.h"

static void
tls_error(char *err, size_t errlen, const char *what, const char *file)
{
	unsigned long e = ERR_peek_last_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s%s%s: %s", what, *file ? " " : "", file,
	    e ? buf : "unknown error");
	ERR_clear_error();
}

/*
 * The TLS 1.2 suites, in the server's order of preference.  Every one is
 * ECDHE, so a stolen key never decrypts recorded sessions: no static RSA
 * key exchange, and no DHE either (every client that has DHE has ECDHE,
 * and DHE would need parameters of our own).  Authenticated encryption
 * first: AES-GCM (AES-128 first: as strong as needed and faster), then
 * ChaCha20-Poly1305.
 *
 * Last, two CBC suites with SHA-2 MACs, for old Outlook: Windows 7 and
 * 8.1's SChannel offer no ECDHE-RSA AEAD suite, so with an RSA certificate
 * (snakeoil, and most certificates appliances get) they could connect
 * with these or not at all.  They are still forward secret, OpenSSL's CBC
 * decryption is constant time, and server preference means a client gets
 * them only when it offers nothing above them.  CBC with SHA-1 MACs is
 * gone: nothing that speaks TLS 1.2 needs it.
 *
 * TLS 1.3 suites stay as OpenSSL offers them (all AEAD, all forward
 * secret).  The negotiated version and suite of every session are logged
 * (tls_describe), so whether the CBC suites are still used can be read
 * from the logs.
 */
#define TLS12_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" \
	"ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA384"

/* Key exchange groups for ECDHE and TLS 1.3, preferred first. */
#define TLS_GROUPS	"X25519:P-256:P-384"

/*
 * A key protected by a passphrase: OpenSSL would ask for it on the
 * terminal, stopping the daemon (at start, or on SIGHUP on a loop
 * thread).  Nobody is there to answer: refuse, and say so.
 */
static int
tls_no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	*(int *)arg = 1;
	return -1;
}

/*
 * The file cannot be opened (missing, or not readable by the user the
 * daemon runs as) or is no file: the system's reason, which OpenSSL's
 * "system lib" does not give.
 */
static int
tls_file_unreadable(const char *file, const char *what, char *err, size_t errlen)
{
	/* Not blocking: a FIFO named by mistake would hang the start (and -n). */
	int fd = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	struct stat st;

	if (fd < 0) {
		snprintf(err, errlen, "cannot load the %s %s: %s", what, file, strerror(errno));
		return 1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(err, errlen, "cannot load the %s %s: not a regular file", what, file);
		return 1;
	}
	close(fd);
	return 0;
}

SSL_CTX *
tls_server_ctx_new(const struct umbox_config *cfg, char *err, size_t errlen)
{
	int asked = 0;

	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		tls_error(err, errlen, "cannot create a TLS context", "");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, cfg->tls.min_protocol) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1) {
		tls_error(err, errlen, "cannot set the TLS policy", "");
		SSL_CTX_free(ctx);
		return NULL;
	}
	/*
	 * No renegotiation, no compression, server cipher preference (but a
	 * client that puts ChaCha20 first, a phone without AES instructions,
	 * gets it); session tickets stay on (the default) so Outlook's
	 * reconnects are cheap.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_default_passwd_cb(ctx, tls_no_passphrase);
	SSL_CTX_set_default_passwd_cb_userdata(ctx, &asked);
	if (tls_file_unreadable(cfg->tls.certificate, "certificate", err, errlen) ||
	    tls_file_unreadable(cfg->tls.key, "key", err, errlen)) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls.certificate) != 1) {
		tls_error(err, errlen, "cannot load the certificate", cfg->tls.certificate);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls.key, SSL_FILETYPE_PEM) != 1) {
		tls_error(err, errlen, "cannot load the key", cfg->tls.key);
		if (asked)
			snprintf(err, errlen, "cannot load the key %s: it is protected by a"
			    " passphrase, which a daemon cannot ask for (write it without"
			    " one: openssl pkey -in KEY -out NEW)", cfg->tls.key);
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* The callback's argument is this frame's: nothing may call it later. */
	SSL_CTX_set_default_passwd_cb(ctx, NULL);
	SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_error(err, errlen, "the key does not match the certificate", cfg->tls.key);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int
tls_reload(SSL_CTX **ctx, const struct umbox_config *cfg, char *err, size_t errlen)
{
	SSL_CTX *fresh = tls_server_ctx_new(cfg, err, errlen);

	if (fresh == NULL)
		return -1;
	SSL_CTX_free(*ctx);	/* running sessions hold their own references */
	*ctx = fresh;
	return 0;
}

void
tls_sighup(SSL_CTX **ctx, const struct umbox_config *cfg)
{
	char err[512];

	if (*ctx == NULL) {
		if ((*ctx = tls_server_ctx_new(cfg, err, sizeof(err))) == NULL)
			log_warn("SIGHUP: TLS still unavailable: %s", err);
		else
			log_info("SIGHUP: TLS certificate loaded");
		return;
	}
	if (tls_reload(ctx, cfg, err, sizeof(err)) != 0)
		log_warn("SIGHUP: keeping the old TLS certificate: %s", err);
	else
		log_info("SIGHUP: TLS certificate reloaded");
}

const char *
tls_describe(SSL *ssl, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
	return buf;
}

struct bufferevent *
tls_bev_accept(struct event_base *base, SSL_CTX *ctx, struct bufferevent *under, int fd)
{
	SSL *ssl = SSL_new(ctx);
	struct bufferevent *bev;

	if (ssl == NULL)
		return NULL;
	if (under)
		bev = bufferevent_openssl_filter_new(base, under, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	else
		bev = bufferevent_openssl_socket_new(base, fd, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

size_t
tls_bev_unsent(struct bufferevent *bev)
{
	struct bufferevent *under;
	size_t n;

	if (bev == NULL)
		return 0;
	n = evbuffer_get_length(bufferevent_get_output(bev));
	if ((under = bufferevent_get_underlying(bev)) != NULL)
		n += evbuffer_get_length(bufferevent_get_output(under));
	return n;
}

SSL_CTX *
tls_client_ctx_new(char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		tls_error(err, errlen, "cannot create a TLS client context", "");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_default_verify_paths(ctx) != 1) {
		tls_error(err, errlen, "cannot set up the TLS client context", "");
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return ctx;
}

struct bufferevent *
tls_bev_connect(struct event_base *base, SSL_CTX *ctx, struct bufferevent *under, int fd,
    const char *host, int verify)
{
	SSL *ssl = SSL_new(ctx);
	struct bufferevent *bev;

	if (ssl == NULL)
		return NULL;
	/*
	 * What the certificate must name: a host name (also sent as SNI), or
	 * an address literal, which must be in its IP subjectAltNames (RFC
	 * 6125) and is never sent as SNI (RFC 6066 §3).
	 */
	if (host && host[0]) {
		unsigned char bin[16];

		if (value_ip_literal(host, bin)) {
			if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) != 1) {
				SSL_free(ssl);
				return NULL;
			}
		} else {
			SSL_set_tlsext_host_name(ssl, host);
			SSL_set1_host(ssl, host);
		}
	}
	SSL_set_verify(ssl, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	if (under)
		bev = bufferevent_openssl_filter_new(base, under, ssl,
		    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	else
		bev = bufferevent_openssl_socket_new(base, fd, ssl,
		    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

const char *
tls_peer_describe(SSL *ssl, char *buf, size_t len)
{
	X509 *cert = SSL_get1_peer_certificate(ssl);
	char subject[256] = "no certificate";
	long v = SSL_get_verify_result(ssl);

	if (cert) {
		X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
		X509_free(cert);
	}
	snprintf(buf, len, "%s; verification: %s", subject,
	    v == X509_V_OK ? "ok" : X509_verify_cert_error_string(v));
	return buf;
}
