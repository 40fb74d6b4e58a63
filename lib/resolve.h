/*
 * resolve.h - c-ares for code written to wait: the library set up once
 * per process, the [dns] servers in the form c-ares takes them, and a
 * host's addresses looked up, waiting no longer than the caller allows:
 * on a worker's thread, or in a coroutine on a loop (coro.h), never on a
 * loop's own stack.
 */
#ifndef UMBOX_LIB_RESOLVE_H
#define UMBOX_LIB_RESOLVE_H

#include <stddef.h>

#include <ares.h>

struct config_endpoints;

/* ares_library_init() once per process: 0, or -1 with a message in err. */
int resolve_init(char *err, size_t errlen);

/* Point ch at servers (port 53 where none is given): 0, or -1 with a message. */
int resolve_servers(ares_channel ch, const struct config_endpoints *servers, char *err,
    size_t errlen);

/*
 * The addresses of name as text ("192.0.2.1", "2001:db8::1"), looked up
 * through servers (NULL or empty: /etc/hosts and resolv.conf), waiting at
 * most timeout_ms.  Returns the number found (at least 1) with *out a new
 * array of new strings (free with resolve_free), or -1 with a message.
 */
int resolve_host(const struct config_endpoints *servers, const char *name,
    unsigned timeout_ms, char ***out, char *err, size_t errlen);
void resolve_free(char **v, int n);

#endif
