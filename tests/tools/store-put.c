/*
 * store-put - put a message straight into a mailbox, for tests that need
 * mail in a mailbox without running umbox-smtpd.
 *
 *   store-put CONFIG LOGIN [email|voicemail|fax] < MESSAGE
 *
 * The message is read from stdin as it is (give it CRLF line ends) and
 * delivered to LOGIN's mailbox with the given kind (email by default), in
 * the store CONFIG (an umbox.conf) names, SQLite or PostgreSQL.  Prints
 * the new entry's UIDL.  Exit 0 when delivered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config.h"
#include "store/store.h"

int
main(int argc, char **argv)
{
	struct store_delivery_result res = { 0 };
	struct store_rcpt_local rcpt = { 0 };
	struct store_delivery d = { 0 };
	struct store_entry *v = NULL;
	struct store_user u;
	struct umbox_config cfg;
	struct store_config sc;
	struct store *s;
	char err[512], *path;
	size_t len = 0, cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	int r;

	if (argc < 3 || argc > 4 || buf == NULL) {
		fprintf(stderr, "usage: store-put CONFIG LOGIN [email|voicemail|fax] < MESSAGE\n");
		return 2;
	}
	for (;;) {
		size_t got = fread(buf + len, 1, cap - len, stdin);

		len += got;
		if (len < cap)
			break;
		cap *= 2;
		if ((buf = realloc(buf, cap)) == NULL)
			return 1;
	}
	d.kind = STORE_KIND_EMAIL;
	if (argc == 4 && strcmp(argv[3], "voicemail") == 0)
		d.kind = STORE_KIND_VOICEMAIL;
	else if (argc == 4 && strcmp(argv[3], "fax") == 0)
		d.kind = STORE_KIND_FAX;
	else if (argc == 4 && strcmp(argv[3], "email") != 0) {
		fprintf(stderr, "store-put: unknown kind %s\n", argv[3]);
		return 2;
	}
	if (config_load(&cfg, argv[1], 0, err, sizeof(err)) != 0) {
		fprintf(stderr, "store-put: %s\n", err);
		return 1;
	}
	store_config_of(&cfg, &sc, &path);
	if (store_open(&sc, 0, &s, err, sizeof(err)) != STORE_OK) {
		fprintf(stderr, "store-put: %s\n", err);
		return 1;
	}
	free(path);
	if ((r = store_user_get(s, argv[2], &u)) != STORE_OK) {
		fprintf(stderr, "store-put: user %s: %s\n", argv[2], store_status_str(r));
		return 1;
	}
	rcpt.user_id = u.id;
	d.sender = "sender@example.org";
	d.data = buf;
	d.fd = -1;
	d.len = len;
	d.local = &rcpt;
	d.nlocal = 1;
	if ((r = store_deliver(s, &d, &res)) != STORE_OK) {
		fprintf(stderr, "store-put: %s\n", store_errmsg(s));
		return 1;
	}
	store_delivery_result_clear(&res);
	/* The newest entry is the one just made. */
	if ((r = store_mailbox_list(s, u.id, &v, &n)) != STORE_OK || n == 0) {
		fprintf(stderr, "store-put: listing the mailbox: %s\n", store_errmsg(s));
		return 1;
	}
	printf("%s\n", v[n - 1].uidl);
	store_entry_list_free(&v, n);
	store_user_clear(&u);
	store_close(&s);
	config_free(&cfg);
	free(buf);
	return 0;
}
