/* ai.h - which provider, key and model serve one user's AI work (API.md 1.7, 5.1, 8.1).
 *
 * Keys are chosen per unit of work, never process-wide: the requesting user's own stored key
 * (app/keys.c, opened for this work only), else the server-wide key of the configuration
 * (openai_api_key_file / IDEAFORGE_OPENAI_API_KEY ...), else a keyless local OpenAI-compatible
 * server when openai_base_url is not OpenAI's own. Two users' concurrent work can never use
 * each other's keys: nothing here is shared but the read-only server keys.
 */
#ifndef IF_APP_AI_H
#define IF_APP_AI_H

#include <stdbool.h>

#include "../lib/ctx.h"
#include "../lib/llm.h"
#include "config.h"

/* The stored-key provider names of user_api_keys for each enum llm_provider. */
extern const char *const ai_key_names[LLM__MAX]; /* "openai", "anthropic", "google" */

struct ai_choice {
	enum llm_provider provider; /* the protocol to speak */
	const char *base_url;       /* from the configuration (borrowed) */
	const char *api_key;        /* arena copy, wiped with the arena; "" for a keyless server */
	bool user_key;              /* the user's own key (else the server's) */
};

/* Loads the server-wide keys from their files or the environment once per process; call
 * before threads start. 0, or -1 with err naming the unreadable file. */
int ai_init(const struct app_config *cfg, char *err, size_t errlen);

/*
 * Chooses provider and key for the work of c->who. prefer (LLM__MAX for none) is tried first
 * among the user's own keys. Order: the user's own keys (prefer, then openai, anthropic,
 * google); the server's key of ai_default_provider; any other server key; a keyless local
 * OpenAI-compatible server (openai_base_url not api.openai.com). Returns RC_OK, or RC_BADREQ
 * with the detail "No AI provider is configured: ..." naming what to configure, or a database
 * error (c->rc set).
 */
int ai_choose(struct ctx *c, const struct app_config *cfg, enum llm_provider prefer,
	      struct ai_choice *out);

/* Whether the server itself can serve provider p: a server-wide key, or (openai) a keyless
 * local OpenAI-compatible server. */
bool ai_server_has(const struct app_config *cfg, enum llm_provider p);

/* The model of tier ("fast", "standard", "premium"; anything else: standard) for p. */
const char *ai_model(const struct app_config *cfg, enum llm_provider p, const char *tier);

/* The providers the user can use now, as a JSON array of API names ("openai", "claude",
 * "gemini"), the user's own first (new reference), or NULL with c->rc set. */
struct json_object *ai_configured(struct ctx *c, const struct app_config *cfg);

#endif
