/* ctl_keys.c - `ideaforgectl keys reseal`: rotating the master key of stored provider keys.
 *
 * Every sealed value of user_api_keys is opened with the old master key (--old-key-file) and
 * sealed again with the configured one (secrets_key_file), with the same associated data
 * ("<user id>/<provider>"), in one transaction: either every key moves or none does. A value
 * that already opens with the new key is left alone, so a rerun after an interruption is safe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "aead.h"
#include "ctl.h"
#include "keys.h"

/* Re-seals one row: 1 moved, 0 already under the new key, 2 opens with neither (a value
 * copied from another row, or damaged: unusable either way, left as it is and named), -1 a
 * failure (printed). */
static int reseal_row(struct ctx *x, const unsigned char *oldk, const unsigned char *newk,
		      const char *id, const char *user, const char *provider, const char *sealed)
{
	char aad[128];
	snprintf(aad, sizeof(aad), "%s/%s", user, provider);
	size_t n = 0;
	char *plain = aead_open(newk, sealed, aad, strlen(aad), &n);
	if (plain) {
		aead_free(plain, n);
		return 0;
	}
	plain = aead_open(oldk, sealed, aad, strlen(aad), &n);
	if (!plain) {
		ctl_err("warning: the %s key of user %s opens with neither master key; left as it "
			"is (the user must enter it again)",
			provider, user);
		return 2;
	}
	char *fresh = aead_seal(newk, plain, n, aad, strlen(aad));
	aead_free(plain, n);
	if (!fresh) {
		ctl_err("sealing failed");
		return -1;
	}
	const char *p[] = {id, fresh};
	PGresult *res =
		db_exec(x,
			"UPDATE user_api_keys SET api_key_encrypted = $2, updated_at = now() "
			"WHERE id = $1",
			2, p);
	free(fresh);
	if (!res) {
		ctl_db_err(x, "update");
		return -1;
	}
	return 1;
}

int ctl_keys_reseal(struct ctl *c)
{
	unsigned char oldk[AEAD_KEY_BYTES], newk[AEAD_KEY_BYTES];
	char text[256] = "", err[512];
	struct ctx x = {0};
	PGresult *res;
	int rc = CTL_EXIT_FAIL, moved = 0, kept = 0, unusable = 0;

	if (keys_read_file("--old-key-file", c->opt[OPT_OLD_KEY_FILE], text, sizeof(text), err,
			   sizeof(err)) < 0 ||
	    aead_key_from_hex(text, oldk) != 0) {
		ctl_err("%s",
			*err ? err
			     : "--old-key-file: the master key must be 64 hexadecimal digits");
		goto out;
	}
	if (keys_load_master(c->app, newk, err, sizeof(err)) < 0) {
		ctl_err("%s", err);
		goto out;
	}
	if (memcmp(oldk, newk, sizeof(newk)) == 0) {
		ctl_err("the old and the configured master keys are the same: nothing to do");
		goto out;
	}
	if (ctl_connect(c, &x) < 0)
		goto out;
	if (db_begin(&x) != RC_OK) {
		ctl_db_err(&x, "begin");
		goto out;
	}
	res = db_exec(&x,
		      "SELECT id, user_id, provider, api_key_encrypted FROM user_api_keys "
		      "ORDER BY id FOR UPDATE",
		      0, NULL);
	if (!res) {
		ctl_db_err(&x, "read the stored keys");
		goto out;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		int r = reseal_row(&x, oldk, newk, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
				   PQgetvalue(res, i, 2), PQgetvalue(res, i, 3));
		if (r < 0)
			goto out; /* the transaction is rolled back when the connection ends */
		moved += r == 1;
		kept += r == 0;
		unusable += r == 2;
	}
	if (db_commit(&x) != RC_OK) {
		ctl_db_err(&x, "commit");
		goto out;
	}
	printf("resealed %d stored key(s) under the configured master key (%d already were, %d "
	       "unusable left as they were)\n",
	       moved, kept, unusable);
	rc = CTL_EXIT_OK;
out:
	OPENSSL_cleanse(text, sizeof(text));
	OPENSSL_cleanse(oldk, sizeof(oldk));
	OPENSSL_cleanse(newk, sizeof(newk));
	ctl_disconnect(&x);
	return rc;
}
