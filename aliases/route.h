/*
 * route.h - how a relay from the store becomes the SMTP client's route.
 */
#ifndef UMBOX_ALIASES_ROUTE_H
#define UMBOX_ALIASES_ROUTE_H

#include "aliases/mta.h"
#include "store/store.h"

/*
 * The connection policy of relay r into route (port, TLS mode and
 * verification, AUTH, account, timeout, chunking); the hosts and our
 * HELO name are the caller's to fill in.  route points into r.
 */
void route_from_relay(const struct store_relay *r, struct mta_route *route);

#endif
