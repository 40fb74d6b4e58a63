/*
 * config.h - /etc/umbox/umbox.conf, shared by both daemons and umboxctl.
 *
 * Every key of SPEC §2 has a default; config_load() starts from the
 * defaults, then applies the file.  Unknown sections, unknown keys and bad
 * values are errors naming the file, the line, the key and what is allowed.
 */
#ifndef UMBOX_CONFIG_H
#define UMBOX_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "cidr.h"
#include "endpoint.h"
#include "util.h"

#define UMBOX_DEFAULT_CONFIG "/etc/umbox/umbox.conf"

/*
 * [store] backend.  The parser accepts postgresql so that a file written
 * for a PostgreSQL site reads cleanly; the daemons and umboxctl refuse it
 * at start-up until that backend exists.
 */
enum config_backend {
	CONFIG_BACKEND_SQLITE,		/* "sqlite" (default) */
	CONFIG_BACKEND_POSTGRESQL,	/* "postgresql" */
};

enum plaintext_auth {
	PLAINTEXT_TLS_OR_LOOPBACK,	/* "tls-or-loopback" (default) */
	PLAINTEXT_ALWAYS,		/* "always" */
	PLAINTEXT_NEVER_WITHOUT_TLS,	/* "never-without-tls" */
};

struct umbox_config {
	char *path;			/* the file read, or NULL for defaults only */

	struct {
		char *hostname;		/* default: gethostname() */
		char *data_dir;		/* /var/lib/umbox */
		char *user;		/* "umbox"; "" = do not change user */
		struct cidr_list public_addresses;	/* addresses or blocks */
		char *postmaster;	/* "admin" */
		unsigned threads;	/* event loops; 0 = "auto", one per core */
	} general;

	struct {
		enum config_backend backend;	/* sqlite */
		char *dsn;		/* libpq conninfo, never a password; "" */
		char *node_id;		/* default (and ""): gethostname() */
	} store;

	struct {
		char *certificate;
		char *key;
		int min_protocol;	/* TLS1_2_VERSION or TLS1_3_VERSION */
	} tls;

	struct {
		struct config_endpoints listen;		/* 0.0.0.0:25, [::]:25 */
		struct config_endpoints submission;	/* 0.0.0.0:587 */
		struct config_endpoints smtps;		/* 0.0.0.0:465 */
		uint64_t max_message_size;		/* 36700160 */
		unsigned max_recipients;		/* 100 */
		unsigned max_connections;		/* 1000 */
		unsigned max_connections_per_ip;	/* 20 */
		struct cidr_list trusted_networks;	/* empty */
	} smtpd;

	struct {
		struct config_endpoints listen;		/* 0.0.0.0:110 */
		struct config_endpoints pop3s;		/* 0.0.0.0:995 */
		enum plaintext_auth plaintext_auth;
		unsigned max_connections;		/* 1000 */
		unsigned max_connections_per_ip;	/* 20 */
	} pop3d;

	struct {
		unsigned retry_initial;	/* seconds, 30 */
		unsigned retry_max;	/* seconds, 3600 */
		unsigned lifetime;	/* seconds, 5 days */
		unsigned claim_lease;	/* seconds, 900 */
		uint16_t smtp_port;	/* 25 */
		char *srs_secret;	/* "" */
	} queue;

	struct {
		struct config_endpoints servers;	/* empty: resolv.conf; port 53 if omitted */
		unsigned guard_interval;		/* seconds, 3600 */
	} dns;

	struct {
		char *mwi_command;	/* "" = none */
		char *speech_voice;	/* espeak-ng voice, "en" */
	} voicemail;
};

/*
 * Load defaults, then the file at path (NULL: defaults only).  A missing
 * file is an error unless missing_ok.  On error returns -1 and writes one
 * message per problem into err (one line each, "FILE:LINE: ..."), at most
 * errlen bytes.  The config is usable (defaults filled) even after errors,
 * but callers refuse to start.
 */
int config_load(struct umbox_config *cfg, const char *path, int missing_ok,
    char *err, size_t errlen);

/* Room for every error config_load lists (100 lines of a few hundred bytes). */
#define CONFIG_ERR_TEXT_MAX	(64 * 1024)

/* Same, from a string in memory; name is used in messages. For tests and fuzzing. */
int config_load_string(struct umbox_config *cfg, const char *text,
    const char *name, char *err, size_t errlen);

void config_free(struct umbox_config *cfg);

/*
 * The value syntaxes of the file, for command-line options that take the
 * same values: "36700160", "35M", "1G" (powers of 1024); "30s", "1h", "5d",
 * "10m" (a bare number is seconds).  0, or -1 for a bad value.
 */
int config_parse_size(const char *s, uint64_t *out);
int config_parse_duration(const char *s, unsigned *out);

/* Path of DATA_DIR/store.db, allocated. */
char *config_store_path(const struct umbox_config *cfg);

/*
 * Is this address (AF_INET/AF_INET6 sockaddr) inside the blocks, such as
 * [smtpd] trusted_networks?  The same as cidr_match_sockaddr().
 */
int config_cidr_match(const struct cidr_list *c, const struct sockaddr *sa);

#endif
