/* keys.h - the master key and users' sealed provider secrets (app/keys.c). */
#ifndef IF_APP_KEYS_H
#define IF_APP_KEYS_H

#include <stddef.h>

#include "../lib/ctx.h"
#include "config.h"

/*
 * Loads the master key for stored provider keys (secrets_key_file, or secrets_key /
 * IDEAFORGE_SECRETS_KEY: 64 hex digits) once per process. Returns 0, or -1 when no valid key
 * is configured (logged; saving keys then answers 503, listing still works).
 */
int keys_init(const struct app_config *cfg);

/*
 * For the configuration's validation at start-up: 0 when the master key is configured and
 * well-formed, else -1 with err naming the key and the problem (missing included), so that a
 * deployment can refuse to start without one.
 */
int keys_config_check(const struct app_config *c, char *err, size_t errlen);

/* Reads a secret file (path, configured as key) into buf (cap bytes, NUL-terminated, trailing
 * newline dropped); warns when others may read it. 0, or -1 with err naming key and path. */
int keys_read_file(const char *key, const char *path, char *buf, size_t cap, char *err,
		   size_t errlen);

/* Loads the configured master key (secrets_key_file or secrets_key) into key (32 bytes). 0,
 * or -1 with err naming the key (or saying none is configured). For tools that work with two
 * keys at once (ideaforgectl keys reseal); the servers use keys_init. */
int keys_load_master(const struct app_config *c, unsigned char key[32], char *err, size_t errlen);

/* Seals secret for the row (user_id, provider): an arena string, or NULL with c->rc set
 * (RC_UNAVAILABLE without a master key). */
const char *keys_seal(struct ctx *c, const char *user_id, const char *provider, const char *secret);

/* Opens a sealed value of the row (user_id, provider): arena plaintext wiped when the arena is
 * reset, or NULL (no master key, another row's value, tampered; logged, c->rc unchanged). */
const char *keys_unseal(struct ctx *c, const char *user_id, const char *provider,
			const char *sealed);

/*
 * The stored secret of the context's principal (c->who) for provider ("openai", "github",
 * ...), decrypted for this unit of work only. Returns an arena string (wiped when the arena is
 * reset), or NULL when there is no principal, none is stored, the master key is missing or the
 * value does not open (c->rc stays RC_OK in those cases), or after a database error (c->rc set).
 */
const char *keys_user_secret(struct ctx *c, const char *provider);

#endif
