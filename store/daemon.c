/*
 * daemon.c - the store's life in a daemon: checked (and created) before
 * the daemon detaches, so a store that cannot be opened is reported on
 * the terminal; given to [general] user while still root; opened with
 * its writer thread once privileges are dropped; and closed after the
 * loop, once every submitted commit has been answered.
 */
#include "store/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config.h"
#include "lib/daemon.h"
#include "lib/log.h"
#include "lib/server.h"

void
store_config_of(const struct umbox_config *cfg, struct store_config *out, char **path)
{
	memset(out, 0, sizeof(*out));
	*path = NULL;
	if (cfg->store.backend == CONFIG_BACKEND_POSTGRESQL) {
		out->backend = STORE_BACKEND_POSTGRESQL;
		out->dsn = cfg->store.dsn;
		out->node_id = cfg->store.node_id;
		return;
	}
	out->backend = STORE_BACKEND_SQLITE;
	out->path = *path = config_store_path(cfg);
}

int
store_daemon_check(struct server *srv)
{
	const struct umbox_config *cfg = srv->cfg;
	char err[1024], *path;
	struct store_config sc;
	struct store *s = NULL;

	store_config_of(cfg, &sc, &path);
	if (sc.backend == STORE_BACKEND_POSTGRESQL) {
		log_err("[store] backend = postgresql: the daemons cannot serve from"
		    " PostgreSQL yet; set backend = sqlite");
		return -1;
	}
	if (store_open(&sc, STORE_CREATE, &s, err, sizeof(err)) != STORE_OK) {
		log_err("store %s: %s", path, err);
		free(path);
		return -1;
	}
	store_close(&s);
	if (daemon_give_to_user(cfg, cfg->general.data_dir) != 0 ||
	    daemon_give_to_user(cfg, path) != 0)
		log_warn("cannot give %s to user %s: %s", path, cfg->general.user, strerror(errno));
	free(path);
	return 0;
}

/*
 * Every loop gets its readers and a handle on the one writer thread.  On
 * SQLite the readers use the loop's own connection; on PostgreSQL a
 * thread of their own, and the loop has no connection at all, so that no
 * read can block it.
 */
int
store_daemon_open(struct server *srv)
{
	char err[1024], *path;
	struct store_config sc;
	int status = STORE_OK;

	store_config_of(srv->cfg, &sc, &path);

	for (unsigned i = 0; i < srv->nloops && status == STORE_OK; i++) {
		struct server_loop *l = &srv->loops[i];

		if (sc.backend == STORE_BACKEND_SQLITE &&
		    (status = store_open(&sc, STORE_CREATE, &l->store, err, sizeof(err))) != STORE_OK)
			break;
		status = store_readers_new(&sc, l->base, l->store, 1, &l->readers, err, sizeof(err));
		if (status != STORE_OK)
			break;
		status = i == 0 ?
		    store_writer_new(&sc, l->base, &l->writer, err, sizeof(err)) :
		    store_writer_attach(srv->loops[0].writer, l->base, &l->writer, err, sizeof(err));
	}
	if (status != STORE_OK) {
		log_err("store %s: %s", store_config_name(&sc), err);
		store_daemon_close(srv);
	}
	free(path);
	return status == STORE_OK ? 0 : -1;
}

/* The thread (loop 0's handle) first: the others' last answers run as they go. */
void
store_daemon_close(struct server *srv)
{
	for (unsigned i = 0; i < srv->nloops; i++)
		store_writer_free(&srv->loops[i].writer);
	for (unsigned i = 0; i < srv->nloops; i++) {
		store_readers_free(&srv->loops[i].readers);
		store_close(&srv->loops[i].store);
	}
}
