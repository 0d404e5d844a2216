/* h_keys.c - the caller's provider API keys and integration credentials (API.md 1.14).
 *
 * Secrets are sealed with AES-256-GCM (lib/aead) under the master key of the configuration
 * (secrets_key_file: 64 hex digits; or secrets_key / IDEAFORGE_SECRETS_KEY), with the row's
 * "<user id>/<provider>" as associated data so that a sealed value copied into another user's
 * row does not open. They are never returned in plaintext (API.md 8.1 item 4): lists show a
 * masked form ("sk-…abcd"), and the original's decrypt route answers 410 Gone.
 *
 * Sealing and opening live in app/keys.c (shared with ideaforge-agentd). Without a master key,
 * listing still works, saving answers 503.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "../lib/aead.h"
#include "../lib/arena.h"
#include "products.h"

#define KEY_MAX_BYTES 4096
#define URL_MAX_BYTES 2048

/* The six AI/design providers of /api/api-keys, in the order they are listed. */
static const char *const key_providers[] = {"openai",  "anthropic",  "google", "v0",
					    "lovable", "ai_gateway", NULL};

const struct jx_field key_save_fields[] = {
	{"provider", JX_STR, JX_REQUIRED, 64, NULL}, /* checked by hand: 400 as the original */
	{"api_key", JX_STR, JX_REQUIRED, KEY_MAX_BYTES, NULL},
	{NULL, 0, 0, 0, NULL},
};

const struct jx_field integration_fields[] = {
	{"provider", JX_STR, JX_REQUIRED, 64, NULL},
	{"config", JX_OBJ, JX_REQUIRED, META_MAX_BYTES, NULL},
	{NULL, 0, 0, 0, NULL},
};

/* "sk-…abcd": the first 3 and last 4 characters of a long key; short keys show less. */
static const char *mask(struct arena *a, const char *key)
{
	size_t n = strlen(key);
	if (n >= 12)
		return arena_printf(a, "%.3s\u2026%s", key, key + n - 4);
	if (n >= 6)
		return arena_printf(a, "\u2026%s", key + n - 2);
	return "\u2026";
}

const char *key_body_secret(struct req *r)
{
	const char *raw = jx_get_str(r->json, "api_key");
	if (!str_has_text(raw)) {
		req_fail(r, RC_BADREQ, "API key cannot be empty");
		return NULL;
	}
	const char *key = key_clean_secret(r->a, raw);
	if (!key)
		req_fail(r, RC_BADREQ, "API key must be printable ASCII without spaces");
	return key;
}

const char *key_clean_secret(struct arena *a, const char *s)
{
	char *t = arena_strtrim(a, s);
	for (const char *q = t; q && *q; q++)
		if ((unsigned char)*q < 0x21 || (unsigned char)*q > 0x7e)
			return NULL;
	return t;
}


const char *key_store(struct ctx *c, const char *user_id, const char *provider, const char *secret,
		      const char *meta_json)
{
	const char *sealed = keys_seal(c, user_id, provider, secret);
	if (!sealed)
		return NULL;
	const char *p[] = {user_id, provider, sealed, meta_json ? meta_json : "{}"};
	const char *json = db_value(
		c, NULL,
		"INSERT INTO user_api_keys (user_id, provider, api_key_encrypted, is_active, "
		"metadata) VALUES ($1, $2, $3, true, $4::jsonb) ON CONFLICT (user_id, provider) "
		"DO UPDATE SET api_key_encrypted = EXCLUDED.api_key_encrypted, is_active = true, "
		"metadata = EXCLUDED.metadata RETURNING json_build_object('provider', provider, "
		"'is_configured', true, 'created_at', created_at, 'updated_at', updated_at)",
		4, p);
	if (!json && c->rc == RC_OK)
		ctx_fail(c, RC_INTERNAL, "key upsert returned nothing");
	return json;
}

/* ---------------------------------------------------------------- /api/api-keys */

int h_keys_list(struct req *r)
{
	const char *p[] = {r->auth.user_id};
	PGresult *res = db_exec(&r->c,
				"SELECT provider, api_key_encrypted, to_json(created_at) #>> '{}', "
				"to_json(updated_at) #>> '{}' FROM user_api_keys "
				"WHERE user_id = $1 AND is_active",
				1, p);
	if (!res)
		return r->rc;
	struct json_object *keys = json_object_new_array();
	for (const char *const *prov = key_providers; *prov; prov++) {
		struct json_object *o = json_object_new_object();
		int row = -1;
		for (int i = 0; i < PQntuples(res); i++)
			if (strcmp(PQgetvalue(res, i, 0), *prov) == 0)
				row = i;
		json_object_object_add(o, "provider", json_object_new_string(*prov));
		json_object_object_add(o, "is_configured", json_object_new_boolean(row >= 0));
		const char *plain = row >= 0 ? keys_unseal(&r->c, r->auth.user_id, *prov,
							   PQgetvalue(res, row, 1))
					     : NULL;
		json_object_object_add(o, "masked_key",
				       plain ? json_object_new_string(mask(r->a, plain)) : NULL);
		json_object_object_add(o, "created_at",
				       row >= 0 ? json_object_new_string(PQgetvalue(res, row, 2))
						: NULL);
		json_object_object_add(o, "updated_at",
				       row >= 0 ? json_object_new_string(PQgetvalue(res, row, 3))
						: NULL);
		json_object_array_add(keys, o);
	}
	struct json_object *out = json_object_new_object();
	json_object_object_add(out, "keys", keys);
	return res_json(r, 200, out);
}

int h_keys_save(struct req *r)
{
	const char *provider = jx_get_str(r->json, "provider");
	if (!jx_one_of(provider, key_providers))
		return req_fail(r, RC_BADREQ,
				"Invalid provider. Must be one of: openai, anthropic, google, v0, "
				"lovable");
	if (strcmp(provider, "ai_gateway") == 0)
		return req_fail(r, RC_BADREQ,
				"AI Gateway credentials must be configured through "
				"/api/providers/configure");
	const char *key = key_body_secret(r);
	if (!key)
		return r->rc;
	const char *json = key_store(&r->c, r->auth.user_id, provider, key, NULL);
	if (!json)
		return r->rc;
	struct json_object *o = jx_parse(json, strlen(json), 4);
	if (!o)
		return req_fail(r, RC_INTERNAL, "key upsert: unparsable JSON");
	json_object_object_add(o, "masked_key", json_object_new_string(mask(r->a, key)));
	return res_json(r, 200, o);
}

/* Deleting removes the row and its ciphertext (the original only flagged it inactive). */
int h_keys_delete(struct req *r)
{
	const char *provider = req_param(r, "provider");
	if (!jx_one_of(provider, key_providers))
		return req_fail(r, RC_BADREQ, "Invalid provider");
	const char *p[] = {r->auth.user_id, provider};
	bool found;
	db_value(&r->c, &found,
		 "DELETE FROM user_api_keys WHERE user_id = $1 AND provider = $2 RETURNING id", 2,
		 p);
	if (r->rc != RC_OK)
		return r->rc;
	if (!found)
		return req_fail(r, RC_NOTFOUND, "API key not found");
	static const char ok[] = "{\"message\":\"API key deleted successfully\"}";
	return res_json_text(r, 200, ok, sizeof(ok) - 1);
}

int h_keys_decrypt(struct req *r)
{
	return req_fail(r, RC_GONE,
			"Stored API keys are never returned in plaintext. Use GET /api/api-keys "
			"for the masked value, or save the key again to replace it.");
}

/* ---------------------------------------------------------------- integrations */

/* An https:// URL with a host and no white space, quotes or angle brackets. */
static bool is_http_url_strict(const char *s)
{
	return strncasecmp(s, "https://", 8) == 0 && s[8] && s[8] != '/' &&
	       !strpbrk(s, " \t\r\n<>\"'`\\");
}

/* Non-blank string member of config, trimmed (arena), or NULL. */
static const char *config_str(struct req *r, struct json_object *config, const char *key,
			      size_t max)
{
	const char *s = jx_get_str(config, key);
	return s && strlen(s) <= max ? arena_strtrim(r->a, s) : NULL;
}

int h_integrations_configure(struct req *r)
{
	const char *provider = jx_get_str(r->json, "provider");
	struct json_object *config = jx_get(r->json, "config");
	const char *secret = NULL, *message = NULL;
	struct json_object *meta = json_object_new_object();
	jx_arena_own(r->a, meta);
	if (strcmp(provider, "github") == 0) {
		const char *pat = config_str(r, config, "pat", KEY_MAX_BYTES);
		if (!pat)
			return req_fail(r, RC_BADREQ, "GitHub configuration requires a pat");
		secret = key_clean_secret(r->a, pat);
		if (!secret)
			return req_fail(r, RC_BADREQ,
					"The GitHub token must be printable ASCII without spaces");
		json_object_object_add(meta, "type", json_object_new_string("pat"));
		message = "GitHub integration configured successfully";
	} else if (strcmp(provider, "atlassian") == 0) {
		const char *url = config_str(r, config, "url", URL_MAX_BYTES);
		const char *email = config_str(r, config, "email", 254);
		const char *token = config_str(r, config, "api_token", KEY_MAX_BYTES);
		if (!url || !email || !token)
			return req_fail(r, RC_BADREQ,
					"Atlassian configuration requires url, "
					"email and api_token");
		if (!is_http_url_strict(url) &&
		    !(app_cfg(r)->ext_allow_http && strncasecmp(url, "http://", 7) == 0 &&
		      is_http_url_strict(arena_printf(r->a, "https://%s", url + 7))))
			return req_fail(r, RC_BADREQ, "The Atlassian url must be an https:// URL");
		const char *at = strchr(email, '@');
		if (!at || at == email || !at[1] || strpbrk(email, " \t\r\n"))
			return req_fail(r, RC_BADREQ, "The Atlassian email is not a valid address");
		secret = key_clean_secret(r->a, token);
		if (!secret)
			return req_fail(r, RC_BADREQ,
					"The Atlassian api_token must be printable ASCII without "
					"spaces");
		json_object_object_add(meta, "type", json_object_new_string("sso"));
		json_object_object_add(meta, "url", json_object_new_string(url));
		json_object_object_add(meta, "email", json_object_new_string(email));
		message = "Atlassian integration configured successfully";
	} else {
		return req_fail(r, RC_BADREQ,
				"Unknown integration provider. Must be one of: github, atlassian");
	}
	if (!key_store(&r->c, r->auth.user_id, provider, secret, jx_str(meta, NULL)))
		return r->rc;
	struct json_object *out = json_object_new_object();
	json_object_object_add(out, "provider", json_object_new_string(provider));
	json_object_object_add(out, "configured", json_object_new_boolean(true));
	json_object_object_add(out, "message", json_object_new_string(message));
	return res_json(r, 200, out);
}

int h_integrations_status(struct req *r)
{
	const char *p[] = {r->auth.user_id};
	const char *json = db_value(
		&r->c, NULL,
		"SELECT json_build_object('integrations', json_build_object("
		"'github', json_build_object('configured', g.id IS NOT NULL, "
		"'metadata', coalesce(g.metadata, '{}')), "
		"'atlassian', json_build_object('configured', a.id IS NOT NULL, "
		"'metadata', coalesce(a.metadata, '{}')))) "
		"FROM (SELECT 1) x "
		"LEFT JOIN user_api_keys g ON g.user_id = $1 AND g.provider = 'github' AND "
		"g.is_active "
		"LEFT JOIN user_api_keys a ON a.user_id = $1 AND a.provider = 'atlassian' "
		"AND a.is_active",
		1, p);
	if (!json)
		return r->rc;
	return res_json_text(r, 200, json, strlen(json));
}
