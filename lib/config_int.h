/*
 * config_int.h - what the files of the configuration loader share, and
 * nothing outside lib/config*.c may use:
 *
 *   config.c       the public entry points: load, defaults, cross-key
 *                  checks, free
 *   config_keys.c  the table of sections and keys, and one parser per
 *                  kind of key that turns file text into a field
 *   config_ini.c   the line reader and handler given to libinih, and the
 *                  "FILE:LINE: ..." error list
 */
#ifndef UMBOX_CONFIG_INT_H
#define UMBOX_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "util.h"

/*
 * Longest line accepted, not counting the line end.  inih's buffer is
 * INI_MAX_LINE (200 in Debian) bytes; a key line longer than that reaches
 * inih as its key alone, and the reader keeps the value for the handler
 * (a libpq connection string with several hosts and its TLS options
 * easily passes 200).
 */
#define CONFIG_LINE_MAX		4096
#define CONFIG_FILE_MAX		(1024 * 1024)	/* a config file is small */
#define CONFIG_SECTIONS		8		/* entries of config_sections[] */
#define CONFIG_KEYS_MAX		8		/* most keys in one section */
#define CONFIG_ERRORS_MAX	100		/* kept; the rest are counted */
#define CONFIG_WHY_MAX		512

struct key_def;

/*
 * A key parser: parse value into *field (whose type the parser knows),
 * or leave *field alone and describe the problem in why, quoting the
 * offending text.  Returns 0 or -1.
 */
typedef int (*key_parser)(const struct key_def *k, void *field,
    const char *value, char *why, size_t whylen);

struct key_def {
	const char *name;
	key_parser parse;
	size_t offset;		/* of the field in struct umbox_config */
	const char *def;	/* default in file syntax; NULL: computed */
	uint64_t min, max;	/* for numbers, sizes and durations */
	const char *allowed;	/* for messages and the man page */
};

struct section_def {
	const char *name;
	const struct key_def *keys;
	size_t nkeys;
};

/* Every section and its keys, in the order of SPEC §2 (config_keys.c). */
extern const struct section_def config_sections[CONFIG_SECTIONS];

enum section_state {
	SECTION_NONE,		/* no header seen yet */
	SECTION_KNOWN,
	SECTION_BAD,		/* unknown or malformed; already reported */
};

/* One load: where the reader is, what was set where, what went wrong. */
struct load_ctx {
	struct umbox_config *cfg;
	const char *name;		/* file name for messages */
	const char *text;
	size_t len, pos;
	int lineno;
	enum section_state state;
	size_t section;			/* index into config_sections[] */
	int set_line[CONFIG_SECTIONS][CONFIG_KEYS_MAX];	/* 0: not set */
	struct strlist errors;
	size_t nerrors;			/* including the ones not kept */
	char *long_value;		/* the value of a line too long for inih */
};

/* config_keys.c */

/* Indexes into config_sections[] and its keys; fatal if absent. */
size_t config_section_index(const char *name);
size_t config_key_index(size_t section, const char *name);

/* gethostname(), lowercased; "localhost" if the system has none. */
char *config_default_hostname(void);

/* config_ini.c */

/* Record one problem for line (0: the file as a whole). */
void config_error(struct load_ctx *ctx, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copy the collected errors into err, one a line; see config_load(). */
void config_errors_out(const struct load_ctx *ctx, char *err, size_t errlen);

/* Parse text[0..len) into ctx->cfg, which holds the defaults. */
void config_parse_text(struct load_ctx *ctx, const char *text, size_t len);

#endif
