/* ai_stub.c - THROWAWAY minimal app/ai.h so that ideaforge-agentd links before app/ai.c lands
 * (the lead deletes this file at merge). Same contract as ai.h, simplest possible body. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/arena.h"
#include "ai.h"
#include "keys.h"

const char *const ai_key_names[LLM__MAX] = {
	[LLM_OPENAI] = "openai", [LLM_ANTHROPIC] = "anthropic", [LLM_GEMINI] = "google"};

static char *server_key[LLM__MAX]; /* read once by ai_init; read-only afterwards */

static char *read_first_line(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char line[1024] = "";
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	return strdup(line);
}

int ai_init(const struct app_config *cfg, char *err, size_t errlen)
{
	const char *files[LLM__MAX] = {cfg->openai_api_key_file, cfg->anthropic_api_key_file,
				       cfg->gemini_api_key_file};
	const char *vals[LLM__MAX] = {cfg->openai_api_key, cfg->anthropic_api_key,
				      cfg->gemini_api_key};
	for (int p = 0; p < LLM__MAX; p++) {
		if (files[p] && *files[p]) {
			server_key[p] = read_first_line(files[p]);
			if (!server_key[p]) {
				snprintf(err, errlen, "%s_api_key_file '%s': %s",
					 llm_provider_name(p), files[p], strerror(errno));
				return -1;
			}
		} else if (vals[p] && *vals[p]) {
			server_key[p] = strdup(vals[p]);
		}
	}
	return 0;
}

static void wipe(void *p)
{
	explicit_bzero(p, strlen(p));
}

static const char *base_of(const struct app_config *cfg, enum llm_provider p)
{
	return p == LLM_OPENAI ? cfg->openai_base_url
	       : p == LLM_ANTHROPIC ? cfg->anthropic_base_url : cfg->gemini_base_url;
}

static int pick(struct ctx *c, const struct app_config *cfg, enum llm_provider p, const char *key,
		bool user, struct ai_choice *out)
{
	char *k = arena_strdup(c->a, key);
	arena_defer(c->a, wipe, k);
	out->provider = p;
	out->base_url = base_of(cfg, p);
	out->api_key = k;
	out->user_key = user;
	return RC_OK;
}

int ai_choose(struct ctx *c, const struct app_config *cfg, enum llm_provider prefer,
	      struct ai_choice *out)
{
	enum llm_provider order[LLM__MAX + 1];
	int n = 0;
	if (prefer < LLM__MAX)
		order[n++] = prefer;
	for (int p = 0; p < LLM__MAX; p++)
		if ((enum llm_provider)p != prefer)
			order[n++] = p;
	for (int i = 0; i < n; i++) {
		const char *k = keys_user_secret(c, ai_key_names[order[i]]);
		if (c->rc != RC_OK)
			return c->rc;
		if (k && *k)
			return pick(c, cfg, order[i], k, true, out);
	}
	enum llm_provider def = cfg->ai_default_provider;
	if (server_key[def])
		return pick(c, cfg, def, server_key[def], false, out);
	for (int p = 0; p < LLM__MAX; p++)
		if (server_key[p])
			return pick(c, cfg, p, server_key[p], false, out);
	if (cfg->openai_base_url && *cfg->openai_base_url &&
	    !strstr(cfg->openai_base_url, "api.openai.com"))
		return pick(c, cfg, LLM_OPENAI, "", false, out);
	return ctx_fail(c, RC_BADREQ,
			"No AI provider is configured: add a provider key in Settings -> Providers, "
			"or set openai_api_key_file (or anthropic_/gemini_) in the server "
			"configuration");
}

const char *ai_model(const struct app_config *cfg, enum llm_provider p, const char *tier)
{
	int t = tier && strcmp(tier, "fast") == 0 ? 0 : tier && strcmp(tier, "premium") == 0 ? 2 : 1;
	const char *m[LLM__MAX][3] = {
		{cfg->openai_model_fast, cfg->openai_model_standard, cfg->openai_model_premium},
		{cfg->anthropic_model_fast, cfg->anthropic_model_standard,
		 cfg->anthropic_model_premium},
		{cfg->gemini_model_fast, cfg->gemini_model_standard, cfg->gemini_model_premium}};
	return p < LLM__MAX ? m[p][t] : cfg->openai_model_standard;
}

struct json_object *ai_configured(struct ctx *c, const struct app_config *cfg)
{
	static const char *const api_names[LLM__MAX] = {"openai", "claude", "gemini"};
	struct json_object *a = json_object_new_array();
	bool have[LLM__MAX] = {false};
	for (int p = 0; p < LLM__MAX; p++) {
		const char *k = keys_user_secret(c, ai_key_names[p]);
		if (c->rc != RC_OK) {
			json_object_put(a);
			return NULL;
		}
		if (k && *k && !have[p]) {
			have[p] = true;
			json_object_array_add(a, json_object_new_string(api_names[p]));
		}
	}
	(void)cfg;
	for (int p = 0; p < LLM__MAX; p++)
		if (server_key[p] && !have[p]) {
			have[p] = true;
			json_object_array_add(a, json_object_new_string(api_names[p]));
		}
	return a;
}
