/* ai.c - the provider, key and model of one user's AI work (app/ai.h). */
#include "ai.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "../lib/arena.h"
#include "../lib/db.h"
#include "keys.h"

const char *const ai_key_names[LLM__MAX] = {
	[LLM_OPENAI] = "openai",
	[LLM_ANTHROPIC] = "anthropic",
	[LLM_GEMINI] = "google",
};

/* The names the API uses for providers (API.md 1.7: configured_providers). */
static const char *const api_names[LLM__MAX] = {
	[LLM_OPENAI] = "openai",
	[LLM_ANTHROPIC] = "claude",
	[LLM_GEMINI] = "gemini",
};

/* Server-wide keys, loaded once (ai_init) before any thread starts; read-only after. */
static char server_key[LLM__MAX][512];

static const char *base_url(const struct app_config *cfg, enum llm_provider p)
{
	switch (p) {
	case LLM_ANTHROPIC: return cfg->anthropic_base_url;
	case LLM_GEMINI: return cfg->gemini_base_url;
	default: return cfg->openai_base_url;
	}
}

/* A keyless OpenAI-compatible server is one that is not OpenAI's own API (Ollama, llama.cpp,
 * vLLM on a private address need no key). */
static bool keyless_local(const struct app_config *cfg)
{
	const char *u = cfg->openai_base_url ? cfg->openai_base_url : "";
	return *u && !strstr(u, "api.openai.com");
}

int ai_init(const struct app_config *cfg, char *err, size_t errlen)
{
	const char *files[LLM__MAX] = {cfg->openai_api_key_file, cfg->anthropic_api_key_file,
				       cfg->gemini_api_key_file};
	const char *vals[LLM__MAX] = {cfg->openai_api_key, cfg->anthropic_api_key,
				      cfg->gemini_api_key};
	static const char *const file_keys[LLM__MAX] = {
		"openai_api_key_file", "anthropic_api_key_file", "gemini_api_key_file"};
	for (int p = 0; p < LLM__MAX; p++) {
		OPENSSL_cleanse(server_key[p], sizeof(server_key[p]));
		if (files[p] && *files[p]) {
			if (keys_read_file(file_keys[p], files[p], server_key[p],
					   sizeof(server_key[p]), err, errlen) < 0)
				return -1;
		} else if (vals[p] && *vals[p]) {
			snprintf(server_key[p], sizeof(server_key[p]), "%s", vals[p]);
		}
	}
	return 0;
}

static void wipe(void *p)
{
	OPENSSL_cleanse(p, strlen(p));
}

/* A copy of a key in the arena, wiped when the arena is reset. */
static const char *arena_secret(struct ctx *c, const char *key)
{
	char *k = arena_strdup(c->a, key);
	arena_defer(c->a, wipe, k);
	return k;
}

static void choose(struct ai_choice *out, const struct app_config *cfg, enum llm_provider p,
		   const char *key, bool user_key)
{
	out->provider = p;
	out->base_url = base_url(cfg, p);
	out->api_key = key;
	out->user_key = user_key;
}

/* The user's stored AI keys (provider, sealed value): one query. NULL with c->rc set. */
static PGresult *user_keys(struct ctx *c)
{
	const char *p[] = {c->who->user_id};
	return db_exec(c,
		       "SELECT provider, api_key_encrypted FROM user_api_keys WHERE user_id = $1 "
		       "AND is_active AND provider IN ('openai', 'anthropic', 'google')",
		       1, p);
}

int ai_choose(struct ctx *c, const struct app_config *cfg, enum llm_provider prefer,
	      struct ai_choice *out)
{
	memset(out, 0, sizeof(*out));
	/* the user's own keys: prefer first, then the table's order */
	enum llm_provider order[LLM__MAX + 1];
	int n = 0;
	if (prefer < LLM__MAX)
		order[n++] = prefer;
	for (int p = 0; p < LLM__MAX; p++)
		if (p != (int)prefer)
			order[n++] = (enum llm_provider)p;
	PGresult *res = c->who ? user_keys(c) : NULL;
	if (c->who && !res)
		return c->rc;
	for (int i = 0; res && i < n; i++)
		for (int row = 0; row < PQntuples(res); row++) {
			const char *name = PQgetvalue(res, row, 0);
			if (strcmp(name, ai_key_names[order[i]]) != 0)
				continue;
			const char *k =
				keys_unseal(c, c->who->user_id, name, PQgetvalue(res, row, 1));
			if (k && *k) {
				choose(out, cfg, order[i], k, true);
				return RC_OK;
			}
		}
	/* the server's: the default provider, then any other */
	enum llm_provider def = (enum llm_provider)cfg->ai_default_provider;
	if (def < LLM__MAX && server_key[def][0]) {
		choose(out, cfg, def, arena_secret(c, server_key[def]), false);
		return RC_OK;
	}
	for (int p = 0; p < LLM__MAX; p++)
		if (server_key[p][0]) {
			choose(out, cfg, (enum llm_provider)p, arena_secret(c, server_key[p]),
			       false);
			return RC_OK;
		}
	if (keyless_local(cfg)) {
		choose(out, cfg, LLM_OPENAI, "", false);
		return RC_OK;
	}
	return ctx_fail(c, RC_BADREQ,
			"No AI provider is configured: add your API key in Settings -> Providers "
			"(POST /api/providers/configure), or have the administrator set "
			"openai_api_key_file, anthropic_api_key_file or gemini_api_key_file (or "
			"openai_base_url for a local OpenAI-compatible server)");
}

bool ai_server_has(const struct app_config *cfg, enum llm_provider p)
{
	if (p >= LLM__MAX)
		return false;
	return server_key[p][0] || (p == LLM_OPENAI && keyless_local(cfg));
}

const char *ai_model(const struct app_config *cfg, enum llm_provider p, const char *tier)
{
	const char *const models[LLM__MAX][3] = {
		[LLM_OPENAI] = {cfg->openai_model_fast, cfg->openai_model_standard,
				cfg->openai_model_premium},
		[LLM_ANTHROPIC] = {cfg->anthropic_model_fast, cfg->anthropic_model_standard,
				   cfg->anthropic_model_premium},
		[LLM_GEMINI] = {cfg->gemini_model_fast, cfg->gemini_model_standard,
				cfg->gemini_model_premium},
	};
	int t = 1;
	if (tier && strcmp(tier, "fast") == 0)
		t = 0;
	else if (tier && strcmp(tier, "premium") == 0)
		t = 2;
	if (p >= LLM__MAX)
		p = LLM_OPENAI;
	return models[p][t];
}

struct json_object *ai_configured(struct ctx *c, const struct app_config *cfg)
{
	struct json_object *arr = json_object_new_array();
	bool have[LLM__MAX] = {false};
	if (c->who) {
		PGresult *res = user_keys(c);
		if (!res) {
			json_object_put(arr);
			return NULL;
		}
		for (int i = 0; i < PQntuples(res); i++)
			for (int k = 0; k < LLM__MAX; k++)
				if (strcmp(PQgetvalue(res, i, 0), ai_key_names[k]) == 0)
					have[k] = true;
	}
	for (int k = 0; k < LLM__MAX; k++)
		if (have[k])
			json_object_array_add(arr, json_object_new_string(api_names[k]));
	for (int k = 0; k < LLM__MAX; k++)
		if (!have[k] && ai_server_has(cfg, (enum llm_provider)k))
			json_object_array_add(arr, json_object_new_string(api_names[k]));
	return arr;
}
