/*
 * config.c - load /etc/umbox/umbox.conf: the public entry points.
 *
 * A load starts from the defaults (every key's default, in file syntax,
 * through the key's own parser), reads the file (config_ini.c), applies
 * each key with its parser (config_keys.c), then runs the checks that
 * involve more than one key or the system.  Every problem is collected
 * and handed back at once, one "FILE:LINE: ..." a line.
 */
#include "config_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cidr.h"
#include "endpoint.h"
#include "value.h"

/*
 * Fill cfg with the defaults.  cfg need not be initialised; a cfg that
 * holds a loaded configuration must be config_free()d first.
 */
static void
config_defaults(struct umbox_config *cfg)
{
	char why[CONFIG_WHY_MAX];
	size_t i, j;

	memset(cfg, 0, sizeof(*cfg));
	for (i = 0; i < CONFIG_SECTIONS; i++) {
		for (j = 0; j < config_sections[i].nkeys; j++) {
			const struct key_def *k = &config_sections[i].keys[j];

			if (k->def == NULL)
				continue;
			if (k->parse(k, (char *)cfg + k->offset, k->def, why,
			    sizeof(why)) != 0)
				fatal("default of [%s] %s is invalid: %s",
				    config_sections[i].name, k->name, why);
		}
	}
	cfg->general.hostname = config_default_hostname();
	cfg->store.node_id = config_default_hostname();
}

static void
ctx_init(struct load_ctx *ctx, struct umbox_config *cfg, const char *name)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->cfg = cfg;
	ctx->name = name;
}

/*
 * Every address and port is listened on once, by one key of one daemon:
 * the second key naming it would fail at start with "Address already in
 * use" and nothing in the file to say why.  Compared as written (a name
 * and its address are not matched).
 */
static void
config_check_listeners(struct load_ctx *ctx)
{
	struct umbox_config *cfg = ctx->cfg;
	static const struct {
		const char *section, *key;
	} keys[] = {
		{ "smtpd", "listen" }, { "smtpd", "submission" }, { "smtpd", "smtps" },
		{ "pop3d", "listen" }, { "pop3d", "pop3s" },
	};
	const struct config_endpoints *lists[] = {
		&cfg->smtpd.listen, &cfg->smtpd.submission, &cfg->smtpd.smtps,
		&cfg->pop3d.listen, &cfg->pop3d.pop3s,
	};
	char text[ENDPOINT_TEXT_MAX];

	for (size_t a = 0; a < ARRAY_SIZE(keys); a++)
		for (size_t i = 0; i < lists[a]->n; i++) {
			const struct config_endpoint *e = &lists[a]->v[i];

			for (size_t b = 0; b <= a; b++)
				for (size_t j = 0; j < (b == a ? i : lists[b]->n); j++) {
					const struct config_endpoint *f = &lists[b]->v[j];
					size_t sec;

					if (e->port != f->port || strcmp(e->host, f->host) != 0)
						continue;
					sec = config_section_index(keys[a].section);
					config_error(ctx, ctx->set_line[sec][config_key_index(sec,
					    keys[a].key)], "[%s] %s: %s is listened on by [%s] %s"
					    " already; each address and port may be named once",
					    keys[a].section, keys[a].key, endpoint_format(e, text,
					    sizeof(text)), keys[b].section, keys[b].key);
					goto next;
				}
next:
			;
		}
}

/*
 * Checks that involve more than one key or the environment, done after
 * the whole file: retry_max below retry_initial, and a system host name
 * that cannot serve as the default hostname, or as the default node_id
 * of a PostgreSQL node.
 */
static void
config_check(struct load_ctx *ctx)
{
	struct umbox_config *cfg = ctx->cfg;
	size_t g = config_section_index("general");
	size_t st = config_section_index("store");
	size_t q = config_section_index("queue");
	int line;

	if (cfg->queue.retry_max < cfg->queue.retry_initial) {
		line = ctx->set_line[q][config_key_index(q, "retry_max")];
		if (line != 0)
			config_error(ctx, line, "[queue] retry_max: %us is less than "
			    "retry_initial (%us); allowed: retry_initial..30d",
			    cfg->queue.retry_max, cfg->queue.retry_initial);
		else
			config_error(ctx, ctx->set_line[q][config_key_index(q,
			    "retry_initial")], "[queue] retry_initial: %us is more than"
			    " retry_max (%us, its default); lower it or set retry_max",
			    cfg->queue.retry_initial, cfg->queue.retry_max);
	}
	config_check_listeners(ctx);
	if (ctx->set_line[g][config_key_index(g, "hostname")] == 0 &&
	    !value_is_domain(cfg->general.hostname))
		config_error(ctx, 0, "[general] hostname: the system host "
		    "name \"%s\" is not a valid domain name; set hostname",
		    cfg->general.hostname);
	/* An explicit node_id was checked by its parser. */
	if (cfg->store.backend == CONFIG_BACKEND_POSTGRESQL &&
	    !value_is_node_id(cfg->store.node_id)) {
		line = ctx->set_line[st][config_key_index(st, "node_id")];
		if (line == 0)
			line = ctx->set_line[st][config_key_index(st, "backend")];
		config_error(ctx, line, "[store] node_id: the system host "
		    "name \"%s\" is not a valid node name; set node_id",
		    cfg->store.node_id);
	}
}

/* Run the cross-key checks, hand the errors out, release ctx. */
static int
config_finish(struct load_ctx *ctx, char *err, size_t errlen)
{
	int rc;

	config_check(ctx);
	config_errors_out(ctx, err, errlen);
	rc = ctx->nerrors ? -1 : 0;
	strlist_clear(&ctx->errors);
	return rc;
}

/*
 * Read the whole file at path into a new buffer.  Returns 0, or an errno
 * value (EFBIG past CONFIG_FILE_MAX).
 */
static int
read_file(const char *path, char **out, size_t *outlen)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	ssize_t r;
	int fd, e;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
		return errno;
	for (;;) {
		if (len == cap) {
			if (cap > CONFIG_FILE_MAX) {
				e = EFBIG;
				goto fail;
			}
			cap = cap ? cap * 2 : 4096;
			if (cap > CONFIG_FILE_MAX + 1)
				cap = CONFIG_FILE_MAX + 1;
			buf = xreallocarray(buf, cap, 1);
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			e = errno;
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	*out = buf;
	*outlen = len;
	return 0;
fail:
	close(fd);
	free(buf);
	return e;
}

int
config_load(struct umbox_config *cfg, const char *path, int missing_ok,
    char *err, size_t errlen)
{
	struct load_ctx ctx;
	char *text = NULL;
	size_t len = 0;
	int e;

	config_defaults(cfg);
	ctx_init(&ctx, cfg, path ? path : "(defaults)");
	if (path == NULL)
		return config_finish(&ctx, err, errlen);
	if ((e = read_file(path, &text, &len)) != 0) {
		if (e == ENOENT && missing_ok)
			return config_finish(&ctx, err, errlen);
		if (e == EFBIG)
			config_error(&ctx, 0, "cannot read: the file is larger "
			    "than %d bytes", CONFIG_FILE_MAX);
		else
			config_error(&ctx, 0, "cannot read: %s", strerror(e));
		return config_finish(&ctx, err, errlen);
	}
	cfg->path = xstrdup(path);
	config_parse_text(&ctx, text, len);
	free(text);
	return config_finish(&ctx, err, errlen);
}

int
config_load_string(struct umbox_config *cfg, const char *text,
    const char *name, char *err, size_t errlen)
{
	struct load_ctx ctx;

	if (name == NULL)
		name = "(string)";
	config_defaults(cfg);
	cfg->path = xstrdup(name);
	ctx_init(&ctx, cfg, cfg->path);
	config_parse_text(&ctx, text, strlen(text));
	return config_finish(&ctx, err, errlen);
}

void
config_free(struct umbox_config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->general.hostname);
	free(cfg->general.data_dir);
	free(cfg->general.user);
	cidr_list_clear(&cfg->general.public_addresses);
	free(cfg->general.postmaster);
	free(cfg->store.dsn);
	free(cfg->store.node_id);
	free(cfg->tls.certificate);
	free(cfg->tls.key);
	endpoint_list_clear(&cfg->smtpd.listen);
	endpoint_list_clear(&cfg->smtpd.submission);
	endpoint_list_clear(&cfg->smtpd.smtps);
	cidr_list_clear(&cfg->smtpd.trusted_networks);
	endpoint_list_clear(&cfg->pop3d.listen);
	endpoint_list_clear(&cfg->pop3d.pop3s);
	free(cfg->queue.srs_secret);
	endpoint_list_clear(&cfg->dns.servers);
	free(cfg->voicemail.mwi_command);
	free(cfg->voicemail.speech_voice);
	memset(cfg, 0, sizeof(*cfg));
}

/* DATA_DIR/store.db, without doubling a trailing slash. */
char *
config_store_path(const struct umbox_config *cfg)
{
	const char *d = cfg->general.data_dir;
	size_t n = strlen(d);

	return xasprintf("%s%sstore.db", d, n > 0 && d[n - 1] == '/' ? "" : "/");
}

int
config_parse_size(const char *s, uint64_t *out)
{
	return value_parse_size(s, out) == NULL ? 0 : -1;
}

int
config_parse_duration(const char *s, unsigned *out)
{
	return value_parse_duration(s, out) == NULL ? 0 : -1;
}

int
config_cidr_match(const struct cidr_list *c, const struct sockaddr *sa)
{
	return cidr_match_sockaddr(c, sa);
}
