/* keys.c - the master key and the sealed provider secrets of users (API.md 1.14, 8.1 item 4).
 *
 * Secrets are sealed with AES-256-GCM (lib/aead) under the master key of the configuration
 * (secrets_key_file: 64 hex digits; or secrets_key / IDEAFORGE_SECRETS_KEY), with the row's
 * "<user id>/<provider>" as associated data so that a sealed value copied into another user's
 * row does not open. Used by the key routes (app/h_keys.c) and by ideaforge-agentd, which
 * opens a user's key for that user's own call only: no request is needed, only a context.
 *
 * The master key is loaded once per process (keys_init); it is read-only afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "../lib/aead.h"
#include "../lib/arena.h"
#include "../lib/db.h"
#include "../lib/log.h"
#include "keys.h"

/* ---------------------------------------------------------------- master key */

static pthread_mutex_t master_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int master_state;                  /* 0 not loaded, 1 loaded, -1 missing or invalid */
static unsigned char master_key[AEAD_KEY_BYTES]; /* written once under master_mu */

/* One reader for every secret file (secrets_key_file, jwt_secret_file, the provider key
 * files): the same checks whatever the file holds. */
int keys_read_file(const char *key, const char *path, char *buf, size_t cap, char *err,
		   size_t errlen)
{
	int rc = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s '%s': %s", key, path, strerror(errno));
		goto out;
	}
	/* group-readable is the service group (root:ideaforge 0640); others must not read it */
	if (st.st_mode & 007)
		log_msg(LL_WARN, NULL, "%s %s is readable by others (mode %03o); chmod 640 it", key,
			path, (unsigned)(st.st_mode & 0777));
	if (st.st_size > (off_t)(cap - 1)) {
		snprintf(err, errlen, "%s '%s': larger than %zu bytes", key, path, cap - 1);
		goto out;
	}
	ssize_t n = read(fd, buf, cap - 1);
	if (n < 0) {
		snprintf(err, errlen, "%s '%s': %s", key, path, strerror(errno));
		goto out;
	}
	buf[n] = '\0';
	if (strlen(buf) != (size_t)n) {
		snprintf(err, errlen, "%s '%s': contains a NUL byte", key, path);
		goto out;
	}
	/* a trailing newline (echo > file) is not part of the secret */
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

int keys_load_master(const struct app_config *c, unsigned char key[AEAD_KEY_BYTES], char *err,
		     size_t errlen)
{
	char text[256] = "";
	int rc = -1;
	const char *src;
	if (c->secrets_key_file && *c->secrets_key_file) {
		src = "secrets_key_file";
		if (keys_read_file("secrets_key_file", c->secrets_key_file, text, sizeof(text), err,
				   errlen) < 0)
			goto out;
	} else if (c->secrets_key && *c->secrets_key) {
		src = "secrets_key";
		snprintf(text, sizeof(text), "%s", c->secrets_key);
	} else {
		snprintf(err, errlen,
			 "no secrets_key_file (or IDEAFORGE_SECRETS_KEY) configured: stored "
			 "provider keys need an AES-256 master key (64 hex digits)");
		goto out;
	}
	if (aead_key_from_hex(text, key) != 0) {
		snprintf(err, errlen, "%s: the master key must be 64 hexadecimal digits", src);
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(text, sizeof(text));
	return rc;
}

int keys_config_check(const struct app_config *c, char *err, size_t errlen)
{
	unsigned char key[AEAD_KEY_BYTES];
	int rc = keys_load_master(c, key, err, errlen);
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

int keys_init(const struct app_config *cfg)
{
	int st = atomic_load(&master_state);
	if (st != 0)
		return st > 0 ? 0 : -1;
	pthread_mutex_lock(&master_mu);
	st = atomic_load(&master_state);
	if (st == 0) {
		char err[512];
		if (keys_load_master(cfg, master_key, err, sizeof(err)) == 0) {
			st = 1;
		} else {
			log_msg(LL_WARN, NULL, "%s; saving provider keys answers 503", err);
			st = -1;
		}
		atomic_store(&master_state, st);
	}
	pthread_mutex_unlock(&master_mu);
	return st > 0 ? 0 : -1;
}

/* "<user id>/<provider>": the associated data that binds a sealed value to its row. */
static const char *row_aad(struct ctx *c, const char *user_id, const char *provider)
{
	return arena_printf(c->a, "%s/%s", user_id, provider);
}

const char *keys_seal(struct ctx *c, const char *user_id, const char *provider, const char *secret)
{
	if (atomic_load(&master_state) <= 0) {
		ctx_fail(c, RC_UNAVAILABLE, "secret storage is not configured (secrets_key_file)");
		return NULL;
	}
	const char *aad = row_aad(c, user_id, provider);
	char *s = aead_seal(master_key, secret, strlen(secret), aad, strlen(aad));
	if (!s) {
		ctx_fail(c, RC_INTERNAL, "aead_seal failed");
		return NULL;
	}
	const char *out = arena_strdup(c->a, s);
	free(s);
	return out;
}

static void wipe_free(void *p)
{
	aead_free(p, strlen(p));
}

const char *keys_unseal(struct ctx *c, const char *user_id, const char *provider,
			const char *sealed)
{
	if (atomic_load(&master_state) <= 0)
		return NULL;
	const char *aad = row_aad(c, user_id, provider);
	char *p = aead_open(master_key, sealed, aad, strlen(aad), NULL);
	if (!p) {
		log_msg(LL_WARN, c->rid,
			"stored %s secret of user %s does not open with the "
			"configured master key",
			provider, user_id);
		return NULL;
	}
	arena_defer(c->a, wipe_free, p);
	return p;
}

const char *keys_user_secret(struct ctx *c, const char *provider)
{
	if (!c->who)
		return NULL;
	const char *p[] = {c->who->user_id, provider};
	const char *sealed = db_value(c, NULL,
				      "SELECT api_key_encrypted FROM user_api_keys "
				      "WHERE user_id = $1 AND provider = $2 AND is_active",
				      2, p);
	if (!sealed)
		return NULL;
	return keys_unseal(c, c->who->user_id, provider, sealed);
}
