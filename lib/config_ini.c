/*
 * config_ini.c - read umbox.conf line by line for libinih, and collect
 * every problem as "FILE:LINE: message".
 *
 * The whole file is in memory and reaches ini_parse_stream() through our
 * own line reader, config_reader().  The reader does the line-level work
 * that inih cannot report precisely:
 *
 *   - it counts lines, because Debian's inih is built without
 *     INI_HANDLER_LINENO and the handler would not know where it is;
 *   - it passes a key line longer than inih's buffer (which inih would
 *     split into two "lines" or cut) as its key alone, and keeps the
 *     value, trimmed and without its inline comment as inih would have
 *     it, for the handler (ctx->long_value); it refuses a line longer
 *     than CONFIG_LINE_MAX;
 *   - it refuses control characters (NUL, CR inside a line, ...);
 *   - it strips indentation, so inih never takes an indented line for a
 *     continuation of the previous value (INI_ALLOW_MULTILINE);
 *   - it recognises "[section]" headers itself and reports malformed
 *     lines, so every error is reported once, with its line number,
 *     instead of inih's "first bad line" only.
 *
 * Whatever the reader refuses reaches inih as a blank line.  inih then
 * splits "key = value", strips the inline comment and calls
 * config_handler(), which looks the key up in config_sections[] and
 * parses the value with the key's parser.  Every error is collected; the
 * caller gets all of them, one a line.
 */
#include "config_int.h"

#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

/* ------------------------------------------------------------------ */
/* Errors                                                               */

/*
 * Record one problem as "NAME:LINE: message" (line 0: "NAME: message").
 * Only the first CONFIG_ERRORS_MAX are kept, so a binary file fed by
 * mistake cannot make us build megabytes of messages.
 */
void
config_error(struct load_ctx *ctx, int line, const char *fmt, ...)
{
	va_list ap;
	char *msg, *full;
	int n;

	ctx->nerrors++;
	if (ctx->errors.n >= CONFIG_ERRORS_MAX)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		fatal("cannot format a config error");
	msg = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(msg, (size_t)n + 1, fmt, ap);
	va_end(ap);
	if (line > 0)
		full = xasprintf("%s:%d: %s", ctx->name, line, msg);
	else
		full = xasprintf("%s: %s", ctx->name, msg);
	strlist_add(&ctx->errors, full);
	free(full);
	free(msg);
}

/*
 * Copy the collected errors into err, one a line, without a final
 * newline.  When they do not all fit, as many whole lines as fit are kept
 * and a last line says how many were left out.
 */
void
config_errors_out(const struct load_ctx *ctx, char *err, size_t errlen)
{
	const struct strlist *e = &ctx->errors;
	size_t i, k, used, left, *prefix;
	char note[64];
	int nlen = 0, fits = 0;

	if (err == NULL || errlen == 0)
		return;
	err[0] = '\0';
	if (ctx->nerrors == 0)
		return;
	/* prefix[k]: bytes taken by the first k lines joined with '\n'. */
	prefix = xcalloc(e->n + 1, sizeof(*prefix));
	for (i = 0; i < e->n; i++)
		prefix[i + 1] = prefix[i] + (i ? 1 : 0) + strlen(e->v[i]);
	/* Keep the most lines k that fit with the note about the rest. */
	for (k = e->n;; k--) {
		left = ctx->nerrors - k;
		nlen = 0;
		note[0] = '\0';
		if (left > 0)
			nlen = snprintf(note, sizeof(note),
			    "%s(%zu more error%s not shown)", k ? "\n" : "",
			    left, left == 1 ? "" : "s");
		fits = prefix[k] + (size_t)nlen < errlen;
		if (fits || k == 0)
			break;
	}
	if (!fits) {
		/* Not even the note fits: cut the first line instead. */
		snprintf(err, errlen, "%s", e->v[0]);
		free(prefix);
		return;
	}
	used = 0;
	for (i = 0; i < k; i++) {
		if (i)
			err[used++] = '\n';
		memcpy(err + used, e->v[i], strlen(e->v[i]));
		used += strlen(e->v[i]);
	}
	memcpy(err + used, note, (size_t)nlen);
	err[used + (size_t)nlen] = '\0';
	free(prefix);
}

/* "general, tls, ..." or the keys of one section, for messages. */
static char *
names_joined(const struct section_def *s)
{
	size_t i, n = s ? s->nkeys : CONFIG_SECTIONS, len = 1;
	char *out;

	for (i = 0; i < n; i++)
		len += strlen(s ? s->keys[i].name : config_sections[i].name) + 2;
	out = xmalloc(len);
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		if (i)
			strcat(out, ", ");
		strcat(out, s ? s->keys[i].name : config_sections[i].name);
	}
	return out;
}

/* ------------------------------------------------------------------ */
/* Reading lines for inih                                               */

/*
 * Position of the first '=' or ':' in line[0..n), as inih will find it:
 * an inline comment (';' after a blank) ends the search.  -1 if none.
 */
static ssize_t
find_separator(const char *line, size_t n, const char *chars)
{
	size_t i;
	int was_blank = 0;

	for (i = 0; i < n; i++) {
		if (strchr(chars, line[i]) != NULL)
			return (ssize_t)i;
		if (was_blank && line[i] == ';')
			return -1;
		was_blank = line[i] == ' ' || line[i] == '\t';
	}
	return -1;
}

/*
 * "[section] key: " for a line that reads "key = ..." under a known
 * section, for the errors found before the line is parsed (its length,
 * a control character); else "".
 */
static const char *
line_key(const struct load_ctx *ctx, const char *line, size_t n, char *buf, size_t len)
{
	size_t i = 0, k;

	buf[0] = '\0';
	if (ctx->state != SECTION_KNOWN)
		return buf;
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	for (k = i; k < n && k - i < 64 && (line[k] == '_' ||
	    (line[k] >= 'a' && line[k] <= 'z') || (line[k] >= 'A' && line[k] <= 'Z')); k++)
		;
	if (k == i)
		return buf;
	snprintf(buf, len, "[%s] %.*s: ", config_sections[ctx->section].name, (int)(k - i),
	    line + i);
	while (k < n && (line[k] == ' ' || line[k] == '\t'))
		k++;
	if (k >= n || (line[k] != '=' && line[k] != ':'))
		buf[0] = '\0';
	return buf;
}

/*
 * A "[section]" line (line[0] == '[', trimmed, n > 0): check its form,
 * look the name up (case-insensitively) and make it the current section.
 * A bad header makes the section BAD, so the keys under it are skipped
 * rather than reported once each.
 */
static void
config_section_line(struct load_ctx *ctx, const char *line, size_t n)
{
	ssize_t close = find_separator(line + 1, n - 1, "]");
	const char *name, *after;
	size_t namelen, i;
	char *known;

	ctx->state = SECTION_BAD;
	if (close < 0) {
		config_error(ctx, ctx->lineno, "missing ']' in section header");
		return;
	}
	name = line + 1;
	namelen = (size_t)close;
	after = name + namelen + 1;
	while (after < line + n && (*after == ' ' || *after == '\t'))
		after++;
	if (after < line + n && *after != ';' && *after != '#') {
		config_error(ctx, ctx->lineno, "unexpected text after "
		    "section header [%.*s]", (int)namelen, name);
		return;
	}
	while (namelen > 0 && (*name == ' ' || *name == '\t')) {
		name++;
		namelen--;
	}
	while (namelen > 0 && (name[namelen - 1] == ' ' ||
	    name[namelen - 1] == '\t'))
		namelen--;
	for (i = 0; i < CONFIG_SECTIONS; i++) {
		if (strlen(config_sections[i].name) == namelen &&
		    strncasecmp(config_sections[i].name, name, namelen) == 0) {
			ctx->state = SECTION_KNOWN;
			ctx->section = i;
			return;
		}
	}
	known = names_joined(NULL);
	config_error(ctx, ctx->lineno, "[%.*s]: unknown section; known "
	    "sections: %s", (int)namelen, name, known);
	free(known);
}

/*
 * What inih makes of the text after a key's separator: leading blanks
 * skipped, cut at an inline comment (';' after a blank), trailing blanks
 * dropped.
 */
static char *
long_value(const char *v, size_t n)
{
	size_t i;
	int was_blank = 0;

	while (n > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	for (i = 0; i < n; i++) {
		if (was_blank && v[i] == ';')
			break;
		was_blank = v[i] == ' ' || v[i] == '\t';
	}
	while (i > 0 && (v[i - 1] == ' ' || v[i - 1] == '\t'))
		i--;
	return xstrndup(v, i);
}

/*
 * The ini_reader: hand inih the next line of ctx->text, fgets-style, in
 * str (num bytes).  Lines are counted here, so ctx->lineno is the line of
 * the key when inih calls the handler (it does so before reading on).
 * Everything refused, every comment and every section header reaches inih
 * as a blank line; key lines reach it trimmed, so never as continuations.
 */
static char *
config_reader(char *str, int num, void *stream)
{
	struct load_ctx *ctx = stream;
	const char *line, *eol;
	size_t n, i, limit;
	ssize_t sep;
	char key[128];

	if (ctx->pos >= ctx->len)
		return NULL;
	if (num < 3)
		fatal("inih passed a line buffer of %d bytes", num);
	line = ctx->text + ctx->pos;
	eol = memchr(line, '\n', ctx->len - ctx->pos);
	n = eol ? (size_t)(eol - line) : ctx->len - ctx->pos;
	ctx->pos += n + (eol != NULL);
	ctx->lineno++;
	str[0] = '\n';
	str[1] = '\0';

	if (n > 0 && line[n - 1] == '\r')
		n--;
	if (ctx->lineno == 1 && n >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
		line += 3;
		n -= 3;
	}
	free(ctx->long_value);	/* one line's, should inih not have called the handler */
	ctx->long_value = NULL;
	if (n > CONFIG_LINE_MAX) {
		config_error(ctx, ctx->lineno, "%sline is longer than %d characters",
		    line_key(ctx, line, n, key, sizeof(key)), CONFIG_LINE_MAX);
		return str;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)line[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			config_error(ctx, ctx->lineno, "%scontrol character 0x%02x in line",
			    line_key(ctx, line, n, key, sizeof(key)), c);
			return str;
		}
		/* C1 controls in UTF-8 (U+0080..U+009F): as invisible, and as able
		 * to act on a terminal that prints an error holding them. */
		if (c == 0xc2 && i + 1 < n && (unsigned char)line[i + 1] >= 0x80 &&
		    (unsigned char)line[i + 1] <= 0x9f) {
			config_error(ctx, ctx->lineno, "%scontrol character U+%04X in line",
			    line_key(ctx, line, n, key, sizeof(key)),
			    (unsigned)(unsigned char)line[i + 1]);
			return str;
		}
	}
	while (n > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		n--;
	}
	while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
		n--;
	if (n == 0 || *line == ';' || *line == '#')
		return str;
	if (*line == '[') {
		config_section_line(ctx, line, n);
		return str;
	}
	if ((sep = find_separator(line, n, "=:")) < 0) {
		config_error(ctx, ctx->lineno, "expected \"key = value\" or "
		    "\"[section]\"");
		return str;
	}
	if (sep == 0) {
		config_error(ctx, ctx->lineno, "missing key name before '%c'",
		    line[0]);
		return str;
	}
	limit = (size_t)num - 2;	/* inih's buffer, less "\n" and NUL */
	if (n > limit) {
		if ((size_t)sep + 1 > limit) {
			config_error(ctx, ctx->lineno, "key name longer than %zu "
			    "characters", limit - 1);
			return str;
		}
		ctx->long_value = long_value(line + sep + 1, n - (size_t)sep - 1);
		n = (size_t)sep + 1;
	}
	memcpy(str, line, n);
	str[n] = '\n';
	str[n + 1] = '\0';
	return str;
}

/*
 * The ini_handler: one "key = value" on line ctx->lineno.  The section
 * comes from the reader's own tracking, not from inih (which also cuts
 * long names).  Always returns 1: every error is reported here.
 */
static int
config_handler(void *user, const char *section, const char *name,
    const char *value)
{
	struct load_ctx *ctx = user;
	const struct section_def *s;
	const struct key_def *k = NULL;
	char why[CONFIG_WHY_MAX], *known;
	size_t i;
	int *set;

	if (ctx->long_value)
		value = ctx->long_value;	/* freed by the reader's next call */

	if (ctx->state == SECTION_BAD)
		return 1;
	if (ctx->state == SECTION_NONE) {
		known = names_joined(NULL);
		config_error(ctx, ctx->lineno, "%s: key before any [section]; "
		    "known sections: %s", name, known);
		free(known);
		return 1;
	}
	s = &config_sections[ctx->section];
	for (i = 0; i < s->nkeys; i++) {
		if (strcasecmp(s->keys[i].name, name) == 0) {
			k = &s->keys[i];
			break;
		}
	}
	if (k == NULL) {
		known = names_joined(s);
		config_error(ctx, ctx->lineno, "[%s] %s: unknown key; known "
		    "keys: %s", s->name, name, known);
		free(known);
		return 1;
	}
	set = &ctx->set_line[ctx->section][i];
	if (*set != 0) {
		config_error(ctx, ctx->lineno, "[%s] %s: already set on line "
		    "%d; give each key once", s->name, k->name, *set);
		return 1;
	}
	*set = ctx->lineno;
	why[0] = '\0';
	if (k->parse(k, (char *)ctx->cfg + k->offset, value, why,
	    sizeof(why)) != 0)
		config_error(ctx, ctx->lineno, "[%s] %s: %s; allowed: %s",
		    s->name, k->name, why, k->allowed);
	return 1;
}

/* Parse text[0..len) into ctx->cfg (which holds the defaults). */
void
config_parse_text(struct load_ctx *ctx, const char *text, size_t len)
{
	int rc;

	ctx->text = text;
	ctx->len = len;
	ctx->pos = 0;
	rc = ini_parse_stream(config_reader, ctx, config_handler, ctx);
	free(ctx->long_value);
	ctx->long_value = NULL;
	if (rc == -2)
		fatal("out of memory in ini_parse_stream");
	/* The reader should have caught everything inih could object to. */
	if (rc != 0 && ctx->nerrors == 0)
		config_error(ctx, rc > 0 ? rc : 0, "syntax error");
}
