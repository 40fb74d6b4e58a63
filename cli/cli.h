/*
 * cli.h - what umboxctl's commands share.
 */
#ifndef UMBOX_CLI_H
#define UMBOX_CLI_H

#include <stdio.h>

#include "lib/config.h"
#include "store/store.h"

/* Exit codes (SPEC §9). */
#define EX_DONE		0
#define EX_FAILED	1
#define EX_USAGE	2
#define EX_REFUSED	3
#define EX_NOTFOUND	4

struct cli {
	const char *config_path;
	struct umbox_config cfg;
	struct store *store;
	int json;
};

/* Print "umboxctl: ..." to stderr and return code. */
int cli_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Exit code for a store status, with the store's message printed. */
int cli_store_error(struct cli *c, int status);
/* Open the store (creating data_dir and the database if needed). */
int cli_open_store(struct cli *c);
/* The same, saying nothing: EX_FAILED with the reason in err. */
int cli_open_store_quietly(struct cli *c, char *err, size_t errlen);
/* Read a password from stdin, strip one trailing newline. */
int cli_read_password(char *buf, size_t len);
/* Find a mailbox's user by login, login@localdomain or extension. */
int cli_find_mailbox(struct cli *c, const char *mailbox, struct store_user *u);

/*
 * After getopt_long refused an option (ch is what it returned, -1 when
 * the options were fine but the operands were not): the usage error,
 * naming the option.
 */
int cli_bad_option(int argc, char **argv, int ch, const char *usage);
/* A domain name DNS can look up: at most 253 characters (RFC 1035), not an address. */
int cli_valid_domain(const char *d);
/* Parse "on"/"off"; -1 if neither. */
int cli_parse_onoff(const char *s);
/* "2026-11-22 21:09" in local time. */
const char *cli_time(int64_t t, char *buf, size_t len);
/* "35M", "1.5K", "12" */
const char *cli_size(uint64_t v, char *buf, size_t len);

/* Aligned tables. */
struct table;
struct table *table_new(size_t ncols, ...);	/* column headers */
void table_row(struct table *t, ...);		/* ncols strings (NULL prints "-") */
/* Cut s to max characters (UTF-8), its end then "...": max >= 3. */
void text_cut(char *s, size_t max);
/* A copy (malloc'd) safe on a terminal: controls and bytes not UTF-8 as '?'. */
char *text_printable(const char *v, int lines);
/* Copy src into dst of len bytes, cut before a character that does not fit. */
void text_copy(char *dst, size_t len, const char *src);
void table_print(struct table *t, FILE *f);	/* prints and frees */

/* JSON output, written straight to stdout. */
void json_str(FILE *f, const char *s);		/* a quoted string, or null */
void json_kv_str(FILE *f, int *first, const char *k, const char *v);
void json_kv_int(FILE *f, int *first, const char *k, long long v);
void json_kv_bool(FILE *f, int *first, const char *k, int v);
void json_key(FILE *f, int *first, const char *k);

/* Commands: argv[0] is the verb. */
int cmd_domain(struct cli *c, int argc, char **argv);
int cmd_user(struct cli *c, int argc, char **argv);
int cmd_alias(struct cli *c, int argc, char **argv);
int cmd_relay(struct cli *c, int argc, char **argv);
int cmd_queue(struct cli *c, int argc, char **argv);
int cmd_mail(struct cli *c, int argc, char **argv);
int cmd_status(struct cli *c, int argc, char **argv);
int cmd_voicemail(struct cli *c, int argc, char **argv);
int cmd_fax(struct cli *c, int argc, char **argv);
int cmd_mwi(struct cli *c, int argc, char **argv);
int cmd_store(struct cli *c, int argc, char **argv);
/* MAILBOX UID (argv[1], argv[2]) for the verb argv[0] of noun ("mail", "voicemail"). */
int cli_find_entry(struct cli *c, const char *noun, int argc, char **argv,
    struct store_entry *e);
/* The start of an entry's text, enough for its header block (malloc'd). */
char *cli_entry_head(struct cli *c, const struct store_entry *e, size_t *len);
/* An entry's whole text, NUL-terminated, in *out (malloc'd); 0 or an exit code. */
int cli_entry_text(struct cli *c, const struct store_entry *e, char **out, size_t *len);
/* mail del took entry e: a voicemail's mailbox gets its message waiting told. */
void cli_mwi_after_delete(struct cli *c, const struct store_entry *e);

#endif
