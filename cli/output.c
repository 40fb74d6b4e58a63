/*
 * output.c - aligned tables and JSON for umboxctl.
 */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>

struct table {
	size_t ncols, nrows;
	char **cells;		/* (nrows + 1) * ncols, row 0 the headers */
};

/*
 * The length of the UTF-8 character at p: by its first byte, but never
 * past a byte that does not continue it (the string's NUL included).
 */
static size_t
char_len(const char *p)
{
	unsigned char c = (unsigned char)*p;
	size_t n = c < 0xc0 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;

	for (size_t i = 1; i < n; i++)
		if (((unsigned char)p[i] & 0xc0) != 0x80)
			return i;
	return n;
}

/*
 * Text as a terminal may show it: what outsiders wrote (a Subject, a
 * server's reply) can hold escape sequences once its encoded words are
 * decoded, so controls (C0, DEL, C1) and bytes that are not UTF-8 become
 * '?'; with lines, TAB and LF are kept.
 */
char *
text_printable(const char *v, int lines)
{
	const char *end = v + strlen(v);
	char *out = xmalloc((size_t)(end - v) + 1), *o = out;

	while (v < end) {
		unsigned char c = (unsigned char)*v;
		gunichar u;

		if (c < 0x80) {
			*o++ = (c < 0x20 && !(lines && (c == '\t' || c == '\n'))) || c == 0x7f ?
			    '?' : (char)c;
			v++;
			continue;
		}
		u = g_utf8_get_char_validated(v, end - v);
		if (u == (gunichar)-1 || u == (gunichar)-2 || u < 0xa0) {
			*o++ = '?';
			v += u == (gunichar)-1 || u == (gunichar)-2 ? 1 : char_len(v);
			continue;
		}
		for (size_t n = char_len(v); n > 0; n--)
			*o++ = *v++;
	}
	*o = '\0';
	return out;
}

void
text_cut(char *s, size_t max)
{
	char *keep = NULL;
	size_t n = 0;

	for (char *p = s; *p; p += char_len(p))
		if (++n == max - 2)
			keep = p;
	if (n > max)
		strcpy(keep, "...");
}

void
text_copy(char *dst, size_t len, const char *src)
{
	size_t o = 0;

	if (len == 0)
		return;
	for (size_t n; *src && o + (n = char_len(src)) < len; src += n, o += n)
		memcpy(dst + o, src, n);
	dst[o] = '\0';
}

struct table *
table_new(size_t ncols, ...)
{
	struct table *t = xcalloc(1, sizeof(*t));
	va_list ap;

	t->ncols = ncols;
	t->cells = xcalloc(ncols, sizeof(char *));
	va_start(ap, ncols);
	for (size_t i = 0; i < ncols; i++)
		t->cells[i] = xstrdup(va_arg(ap, const char *));
	va_end(ap);
	return t;
}

void
table_row(struct table *t, ...)
{
	va_list ap;
	size_t base;

	t->nrows++;
	t->cells = xreallocarray(t->cells, (t->nrows + 1) * t->ncols, sizeof(char *));
	base = t->nrows * t->ncols;
	va_start(ap, t);
	for (size_t i = 0; i < t->ncols; i++) {
		const char *v = va_arg(ap, const char *);
		t->cells[base + i] = text_printable(v && *v ? v : "-", 0);
	}
	va_end(ap);
}

/*
 * Columns on a terminal of a cell (valid UTF-8, as text_printable makes it):
 * East Asian wide characters take two, combining marks none (GLib's
 * Unicode tables, whatever the locale).
 */
static size_t
text_width(const char *s)
{
	size_t w = 0;

	for (; *s; s = g_utf8_next_char(s)) {
		gunichar u = g_utf8_get_char(s);

		w += g_unichar_iszerowidth(u) ? 0 : g_unichar_iswide(u) ? 2 : 1;
	}
	return w;
}

/* Columns padded to their widest cell, two spaces apart; no trailing blanks. */
void
table_print(struct table *t, FILE *f)
{
	size_t *w = xcalloc(t->ncols, sizeof(*w));

	for (size_t r = 0; r <= t->nrows; r++)
		for (size_t i = 0; i < t->ncols; i++) {
			size_t n = text_width(t->cells[r * t->ncols + i]);
			if (n > w[i])
				w[i] = n;
		}
	for (size_t r = 0; r <= t->nrows; r++) {
		for (size_t i = 0; i < t->ncols; i++) {
			const char *v = t->cells[r * t->ncols + i];
			if (i + 1 < t->ncols)
				fprintf(f, "%s%*s  ", v, (int)(w[i] - text_width(v)), "");
			else
				fprintf(f, "%s\n", v);
		}
	}
	for (size_t i = 0; i < (t->nrows + 1) * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(w);
	free(t);
}

/*
 * JSON text is UTF-8: what is stored need not be (a Subject sent as raw
 * Latin-1, a name given in another encoding), so a byte that does not
 * start a valid UTF-8 character is written as U+FFFD.
 */
void
json_str(FILE *f, const char *s)
{
	const char *end;

	if (s == NULL) {
		fputs("null", f);
		return;
	}
	end = s + strlen(s);
	fputc('"', f);
	while (s < end) {
		unsigned char c = (unsigned char)*s;

		if (c >= 0x80) {
			gunichar u = g_utf8_get_char_validated(s, end - s);

			if (u == (gunichar)-1 || u == (gunichar)-2) {
				fputs("\\ufffd", f);
				s++;
			} else {
				const char *next = g_utf8_next_char(s);

				fwrite(s, 1, (size_t)(next - s), f);
				s = next;
			}
			continue;
		}
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
		s++;
	}
	fputc('"', f);
}

void
json_key(FILE *f, int *first, const char *k)
{
	if (!*first)
		fputs(", ", f);
	*first = 0;
	json_str(f, k);
	fputs(": ", f);
}

void
json_kv_str(FILE *f, int *first, const char *k, const char *v)
{
	json_key(f, first, k);
	json_str(f, v);
}

void
json_kv_int(FILE *f, int *first, const char *k, long long v)
{
	json_key(f, first, k);
	fprintf(f, "%lld", v);
}

void
json_kv_bool(FILE *f, int *first, const char *k, int v)
{
	json_key(f, first, k);
	fputs(v ? "true" : "false", f);
}

const char *
cli_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0) {
		snprintf(buf, len, "never");
		return buf;
	}
	localtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M", &tm);
	return buf;
}

const char *
cli_size(uint64_t v, char *buf, size_t len)
{
	static const char units[] = "KMG";	/* what a size given to umboxctl takes */

	if (v < 1024) {
		snprintf(buf, len, "%llu", (unsigned long long)v);
		return buf;
	}
	/* The smallest unit that keeps the figure under 1024 once rounded. */
	for (int i = 0; i < 3; i++) {
		uint64_t u = 1ULL << (10 * (i + 1));

		if (v % u == 0 && (v / u < 1024 || i == 2)) {
			snprintf(buf, len, "%llu%c", (unsigned long long)(v / u), units[i]);
			break;
		}
		if ((double)v / (double)u < 1023.95 || i == 2) {
			snprintf(buf, len, "%.1f%c", (double)v / (double)u, units[i]);
			break;
		}
	}
	return buf;
}
