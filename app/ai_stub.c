/* ai_stub.c - THROWAWAY stand-in for app/ai.c (being written in /work/main), so that the AI
 * routes (app/h_ai.c) link and can be tested before it lands. Delete at merge, with its line
 * in Makefile.am. It follows the contracts of app/ai.h, simply: the user's own keys first,
 * then the server's keys, then a keyless local OpenAI-compatible server. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "../lib/arena.h"
#include "ai.h"
#include "keys.h"

const char *const ai_key_names[LLM__MAX] = {
	[LLM_OPENAI] = "openai", [LLM_ANTHROPIC] = "anthropic", [LLM_GEMINI] = "google"};

static const char *const api_names[LLM__MAX] = {
	[LLM_OPENAI] = "openai", [LLM_ANTHROPIC] = "claude", [LLM_GEMINI] = "gemini"};

static char *server_key[LLM__MAX]; /* written once by ai_init, before threads */

static int load_key(const char *val, const char *file, char **out, char *err, size_t errlen)
{
	if (val && *val) {
		*out = strdup(val);
		return 0;
	}
	if (!file || !*file)
		return 0;
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "key file '%s': %s", file, strerror(errno));
		return -1;
	}
	char buf[4097];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "key file '%s': cannot read", file);
		return -1;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	if (n > 0)
		*out = strdup(buf);
	return 0;
}

int ai_init(const struct app_config *cfg, char *err, size_t errlen)
{
	int rc = 0;
	rc |= load_key(cfg->openai_api_key, cfg->openai_api_key_file, &server_key[LLM_OPENAI], err,
		       errlen);
	rc |= load_key(cfg->anthropic_api_key, cfg->anthropic_api_key_file,
		       &server_key[LLM_ANTHROPIC], err, errlen);
	rc |= load_key(cfg->gemini_api_key, cfg->gemini_api_key_file, &server_key[LLM_GEMINI], err,
		       errlen);
	return rc ? -1 : 0;
}

static const char *base_of(const struct app_config *cfg, enum llm_provider p)
{
	return p == LLM_OPENAI    ? cfg->openai_base_url :
	       p == LLM_ANTHROPIC ? cfg->anthropic_base_url :
				    cfg->gemini_base_url;
}

static bool local_openai(const struct app_config *cfg)
{
	return cfg->openai_base_url && *cfg->openai_base_url &&
	       !strstr(cfg->openai_base_url, "api.openai.com");
}

int ai_choose(struct ctx *c, const struct app_config *cfg, enum llm_provider prefer,
	      struct ai_choice *out)
{
	enum llm_provider order[LLM__MAX + 1];
	int n = 0;
	if (prefer < LLM__MAX)
		order[n++] = prefer;
	for (int p = 0; p < LLM__MAX; p++)
		if (p != (int)prefer)
			order[n++] = (enum llm_provider)p;
	for (int i = 0; i < n; i++) {
		const char *k = keys_user_secret(c, ai_key_names[order[i]]);
		if (c->rc != RC_OK)
			return c->rc;
		if (k) {
			*out = (struct ai_choice){order[i], base_of(cfg, order[i]), k, true};
			return RC_OK;
		}
	}
	enum llm_provider d = (enum llm_provider)cfg->ai_default_provider;
	if (d < LLM__MAX && server_key[d]) {
		*out = (struct ai_choice){d, base_of(cfg, d), arena_strdup(c->a, server_key[d]),
					  false};
		return RC_OK;
	}
	for (int p = 0; p < LLM__MAX; p++)
		if (server_key[p]) {
			*out = (struct ai_choice){(enum llm_provider)p, base_of(cfg, p),
						  arena_strdup(c->a, server_key[p]), false};
			return RC_OK;
		}
	if (local_openai(cfg)) {
		*out = (struct ai_choice){LLM_OPENAI, cfg->openai_base_url, "", false};
		return RC_OK;
	}
	return ctx_fail(c, RC_BADREQ,
			"No AI provider is configured: save an OpenAI, Anthropic or Gemini API key "
			"in Settings > Providers, or configure a server key (openai_api_key_file, "
			"anthropic_api_key_file, gemini_api_key_file) or a local OpenAI-compatible "
			"server (openai_base_url)");
}

const char *ai_model(const struct app_config *cfg, enum llm_provider p, const char *tier)
{
	int t = tier && strcmp(tier, "fast") == 0    ? 0 :
		tier && strcmp(tier, "premium") == 0 ? 2 :
						       1;
	switch (p) {
	case LLM_ANTHROPIC:
		return t == 0 ? cfg->anthropic_model_fast :
		       t == 2 ? cfg->anthropic_model_premium :
				cfg->anthropic_model_standard;
	case LLM_GEMINI:
		return t == 0 ? cfg->gemini_model_fast :
		       t == 2 ? cfg->gemini_model_premium :
				cfg->gemini_model_standard;
	default:
		return t == 0 ? cfg->openai_model_fast :
		       t == 2 ? cfg->openai_model_premium :
				cfg->openai_model_standard;
	}
}

struct json_object *ai_configured(struct ctx *c, const struct app_config *cfg)
{
	bool have[LLM__MAX] = {false};
	struct json_object *a = json_object_new_array();
	for (int p = 0; p < LLM__MAX; p++) {
		const char *k = keys_user_secret(c, ai_key_names[p]);
		if (c->rc != RC_OK) {
			json_object_put(a);
			return NULL;
		}
		if (k) {
			have[p] = true;
			json_object_array_add(a, json_object_new_string(api_names[p]));
		}
	}
	for (int p = 0; p < LLM__MAX; p++)
		if (!have[p] && (server_key[p] || (p == LLM_OPENAI && local_openai(cfg)))) {
			have[p] = true;
			json_object_array_add(a, json_object_new_string(api_names[p]));
		}
	return a;
}
