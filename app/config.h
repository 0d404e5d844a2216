/* config.h - IdeaForge's configuration: the server's section (lib/srv.h) plus ours. */
#ifndef IF_APP_CONFIG_H
#define IF_APP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/srv.h"

enum cookie_secure { COOKIE_SECURE_AUTO, COOKIE_SECURE_ON, COOKIE_SECURE_OFF, COOKIE_SECURE__MAX };

struct app_config {
	char *jwt_secret_file;            /* file holding the HS256 secret (>= 32 bytes) */
	char *jwt_secret;                 /* secret from env IDEAFORGE_JWT_SECRET (secret) */
	int64_t session_ttl_s;            /* token and session lifetime */
	int64_t session_cache_ttl_s;      /* lifetime of a cached positive session check in Redis */
	int cookie_secure;                /* enum cookie_secure */
	int64_t argon2_memory_kib;        /* argon2id m */
	int64_t argon2_iterations;        /* argon2id t */
	int64_t argon2_parallelism;       /* argon2id p */
	int64_t argon2_max_concurrent;    /* concurrent hashes per worker */
	int64_t password_min_length;      /* register and password change */
	bool register_enabled;            /* POST /api/auth/register */
	bool trust_proxy;                 /* take the client address from X-Forwarded-For */
	int64_t rl_login_fail_max;        /* failed logins per email+address in the window */
	int64_t rl_login_fail_ip_max;     /* failed logins per address in the window */
	int64_t rl_login_fail_window_s;   /* failed-login window */
	int64_t rl_ai_per_min;            /* AI route requests per user per minute */
	int64_t rl_default_per_min;       /* other requests per user (or address) per minute */
	int64_t max_inflight_per_user;    /* requests of one user served at once, machine-wide */
	int64_t max_inflight_per_address; /* anonymous requests of one address served at once */
	char *secrets_key_file;           /* AES-256-GCM master key for stored provider keys */
	char *secrets_key;                /* the same from env IDEAFORGE_SECRETS_KEY (secret) */
	char *sql_dir;                    /* migrations directory (ideaforgectl) */

	/* AI providers (lib/llm.h) and ideaforge-agentd */
	int ai_default_provider;   /* enum llm_provider used when a user has no key */
	char *openai_base_url;     /* OpenAI-compatible base URL, ending in /v1 */
	char *openai_api_key_file; /* server-wide key, from a file */
	char *openai_api_key;      /* ... or from env IDEAFORGE_OPENAI_API_KEY (secret) */
	char *openai_model_fast;   /* model of each tier */
	char *openai_model_standard;
	char *openai_model_premium;
	char *anthropic_base_url; /* Anthropic Messages base URL */
	char *anthropic_api_key_file;
	char *anthropic_api_key; /* (secret) */
	char *anthropic_model_fast;
	char *anthropic_model_standard;
	char *anthropic_model_premium;
	char *gemini_base_url; /* Google Gemini API base URL */
	char *gemini_api_key_file;
	char *gemini_api_key; /* (secret) */
	char *gemini_model_fast;
	char *gemini_model_standard;
	char *gemini_model_premium;
	char *agentd_listen;          /* agentd's HTTP socket (unix:/path), proxied by nginx */
	int64_t agent_max_concurrent; /* jobs one agentd runs at once (more wait, queued) */
	int64_t agent_max_concurrent_per_user; /* unfinished jobs of one user (429 above) */
	int64_t agent_job_lease_s;             /* a job's lease; renewed while it runs */
	int64_t agent_job_max_attempts;        /* runs of a job before it fails */
	int64_t agent_connect_timeout_ms;      /* provider connect timeout */
	int64_t agent_first_token_timeout_ms;  /* provider: no first token within this */
	int64_t agent_idle_timeout_ms;         /* provider: a stream silent this long fails */
	int64_t agent_total_timeout_ms;        /* provider: one call's whole duration */
	int64_t agent_max_retries; /* retries of a provider call before its first token */
	int64_t agent_heartbeat_s; /* SSE comment heartbeat period */

	/* EXT-CONFIG-BEGIN: single sign-on and outside services (issue 16; app/h_oidc.c,
	 * app/h_integrations.c, app/h_design.c) */
	char *oidc_issuer;                   /* OpenID provider's issuer URL; "" = SSO off */
	char *oidc_client_id;                /* our client id at the provider */
	char *oidc_client_secret_file;       /* file holding the client secret */
	char *oidc_client_secret;            /* ... or env IDEAFORGE_OIDC_CLIENT_SECRET (secret) */
	char *oidc_redirect_uri;             /* our callback URL, as registered at the provider */
	char *oidc_post_logout_redirect_uri; /* where the provider sends the browser after logout */
	char *oidc_tenant;                   /* slug of the tenant new SSO users join */
	char *oidc_scopes;                   /* scopes asked for (openid is required) */
	int64_t oidc_jwks_ttl_s;             /* discovery and JWKS cache lifetime per process */
	int64_t oidc_leeway_s;               /* clock skew allowed on exp, iat, nbf */
	int64_t oidc_login_ttl_s;      /* an authorization request's lifetime (state, nonce) */
	int64_t ext_timeout_ms;        /* whole duration of one call to an outside service */
	char *github_api_url;          /* GitHub REST API base URL */
	char *v0_api_url;              /* V0 Platform API base URL */
	char *atlassian_allowed_hosts; /* host suffixes an Atlassian site URL may have */
	bool ext_allow_http;           /* accept http:// outside service URLs (tests only) */
	int64_t ext_upload_max_bytes;  /* a document fetched from GitHub or Confluence */
	int64_t design_follow_s;       /* how long a V0 generation is followed */
	int64_t design_poll_s;         /* period of agentd's checks of a V0 generation */
	/* EXT-CONFIG-END */
	int64_t agent_cache_ttl_s; /* response cache entry lifetime in Redis; 0: no cache */
	int64_t agent_context_budget_tokens; /* context given to the agents, in tokens (chars/4) */
};

/* The user personas (NULL-terminated). */
extern const char *const user_personas[];

/* Loads defaults, the config file (--config FILE, else $IDEAFORGE_CONFIG, else the installed
 * path, optional), the environment and the flags in argv[1..] ("--key=value", "--key value",
 * "--config FILE"). Arguments that are not options are an error. Returns 0, or -1 with err
 * naming the source, key and value. On success *srv and *app are owned by the caller and
 * released with app_config_free. Also validates the application's cross-field rules. */
int app_config_load(int argc, char **argv, struct srv_config **srv, void **app, char *err,
		    size_t errlen);
void app_config_free(struct srv_config *srv, void *app);

/* Prints every key with its help and current value (secrets masked) to stdout. */
void app_config_dump(const struct srv_config *srv, const struct app_config *app);

#endif
