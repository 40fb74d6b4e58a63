/*
 * route.c - a relay's settings as the SMTP client's route.
 */
#include "aliases/route.h"

#include <string.h>

static enum mta_tls
route_tls(enum store_relay_tls t)
{
	switch (t) {
	case STORE_TLS_STARTTLS:
		return MTA_TLS_STARTTLS;
	case STORE_TLS_IMPLICIT:
		return MTA_TLS_IMPLICIT;
	case STORE_TLS_NONE:
		return MTA_TLS_NONE;
	default:
		return MTA_TLS_AUTO;
	}
}

static enum mta_auth
route_auth(enum store_relay_auth a)
{
	switch (a) {
	case STORE_AUTH_PLAIN:
		return MTA_AUTH_PLAIN;
	case STORE_AUTH_LOGIN:
		return MTA_AUTH_LOGIN;
	case STORE_AUTH_CRAM_MD5:
		return MTA_AUTH_CRAM_MD5;
	case STORE_AUTH_NONE:
		return MTA_AUTH_NONE;
	default:
		return MTA_AUTH_AUTO;
	}
}

void
route_from_relay(const struct store_relay *r, struct mta_route *route)
{
	route->port = (uint16_t)r->port;
	route->tls = route_tls(r->tls);
	route->verify = r->verify;
	route->auth = route_auth(r->auth);
	route->user = r->account;
	route->password = r->password;
	route->timeout = r->timeout;
	route->chunking = r->chunking;
}
