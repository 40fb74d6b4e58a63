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

int
store_daemon_check(struct server *srv)
{
	const struct umbox_config *cfg = srv->cfg;
	char err[1024], *path = config_store_path(cfg);
	struct store *s = NULL;

	if (store_open(path, STORE_CREATE, &s, err, sizeof(err)) != STORE_OK) {
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

/* Every loop gets a read connection and a handle on the one writer thread. */
int
store_daemon_open(struct server *srv)
{
	char err[1024], *path = config_store_path(srv->cfg);
	int status = STORE_OK;

	for (unsigned i = 0; i < srv->nloops && status == STORE_OK; i++) {
		struct server_loop *l = &srv->loops[i];

		status = store_open(path, STORE_CREATE, &l->store, err, sizeof(err));
		if (status != STORE_OK)
			break;
		status = i == 0 ?
		    store_writer_new(path, l->base, &l->writer, err, sizeof(err)) :
		    store_writer_attach(srv->loops[0].writer, l->base, &l->writer, err, sizeof(err));
	}
	if (status != STORE_OK) {
		log_err("store %s: %s", path, err);
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
	for (unsigned i = 0; i < srv->nloops; i++)
		store_close(&srv->loops[i].store);
}
