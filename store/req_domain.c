/*
 * req_domain.c - writer request: record a domain's MX guard verdict
 * (umbox-smtpd's periodic re-check, SPEC §7).
 */
#include "store/request.h"

#include <stdlib.h>

struct req_domain {
	struct store_req base;		/* first */
	char *name;
	char *guard;
	char *detail;
	int64_t checked_at;
};

static int
req_domain_apply(struct store *s, struct store_req *base)
{
	struct req_domain *r = (struct req_domain *)base;

	return s->be->domain_set_guard(s, r->name, r->guard, r->detail, r->checked_at);
}

static void
req_domain_free(struct store_req *base)
{
	struct req_domain *r = (struct req_domain *)base;

	free(r->name);
	free(r->guard);
	free(r->detail);
	free(r);
}

static const struct store_req_ops req_domain_ops = {
	.name = "domain guard",
	.apply = req_domain_apply,
	.free = req_domain_free,
};

struct store_req *
store_req_domain_guard(const char *name, const char *guard, const char *detail,
    int64_t checked_at, store_req_cb *cb, void *arg)
{
	struct req_domain *r = xcalloc(1, sizeof(*r));

	store_req_init(&r->base, &req_domain_ops, cb, arg);
	r->name = xstrdup(name);
	r->guard = xstrdup(guard);
	r->detail = xstrdup(detail ? detail : "");
	r->checked_at = checked_at;
	return &r->base;
}
