/* config.c - IdeaForge's keys and the loader used by ideaforge-api and ideaforgectl. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/cfg.h"

/* install paths come from the build (Makefile.am) */
#ifndef IF_SYSCONFDIR
#define IF_SYSCONFDIR "/etc"
#endif
#ifndef IF_PKGDATADIR
#define IF_PKGDATADIR "/usr/share/ideaforge"
#endif

/* The personas of user_profiles (API.md 2.1; the column's CHECK says the same), shared by the
 * profile route and ideaforgectl, the two programs that link this file. */
const char *const user_personas[] = {"product_manager", "leadership", "tech_lead", NULL};

/* Every key is also IDEAFORGE_<KEY> in the environment. */
#define ENV_PREFIX "IDEAFORGE_"

/* IdeaForge's defaults for keys of the kit (lib/srv.c has none of ours). */
static const char *const srv_defaults[] = {"database_url=dbname=ideaforge",
					   "redis_url=redis://127.0.0.1:6379/0", NULL};

static const char *const ai_provider_names[] = {"openai", "anthropic", "gemini", NULL};

static const char *const cookie_secure_names[COOKIE_SECURE__MAX + 1] = {
	[COOKIE_SECURE_AUTO] = "auto",
	[COOKIE_SECURE_ON] = "on",
	[COOKIE_SECURE_OFF] = "off",
	[COOKIE_SECURE__MAX] = NULL,
};

#define K(name, type, field, def, min, max, enums, flags, help)                                   \
	{                                                                                         \
		name, type, offsetof(struct app_config, field), def, min, max, enums, flags, help \
	}

static const struct cfg_key app_keys[] = {
	/* clang-format off */
	K("jwt_secret_file", CFG_STR, jwt_secret_file, "", 0, 0, NULL, 0,
	  "file with the token signing secret (at least 32 bytes); or env IDEAFORGE_JWT_SECRET"),
	K("jwt_secret", CFG_STR, jwt_secret, "", 0, 0, NULL, CFG_SECRET,
	  "token signing secret itself (prefer jwt_secret_file)"),
	K("session_ttl_s", CFG_INT, session_ttl_s, "604800", 60, 31536000, NULL, 0,
	  "session and token lifetime in seconds (7 days)"),
	K("session_cache_ttl_s", CFG_INT, session_cache_ttl_s, "600", 1, 86400, NULL, 0,
	  "how long Redis may vouch for a session before PostgreSQL is asked again"),
	K("cookie_secure", CFG_ENUM, cookie_secure, "auto", 0, 0, cookie_secure_names, 0,
	  "Secure flag of the session cookie: auto (when served over https), on, off"),
	K("argon2_memory_kib", CFG_INT, argon2_memory_kib, "19456", 1024, 4194304, NULL, 0,
	  "argon2id memory cost in KiB (RFC 9106; OWASP: 19 MiB)"),
	K("argon2_iterations", CFG_INT, argon2_iterations, "2", 1, 100, NULL, 0,
	  "argon2id time cost"),
	K("argon2_parallelism", CFG_INT, argon2_parallelism, "1", 1, 64, NULL, 0,
	  "argon2id lanes"),
	K("argon2_max_concurrent", CFG_INT, argon2_max_concurrent, "2", 1, 64, NULL, 0,
	  "password hashes computed at once per worker (bounds memory in a login storm)"),
	K("password_min_length", CFG_INT, password_min_length, "8", 1, 1024, NULL, 0,
	  "shortest password accepted on register and change"),
	K("register_enabled", CFG_BOOL, register_enabled, "false", 0, 0, NULL, 0,
	  "allow self-registration (POST /api/auth/register) into the default tenant"),
	K("trust_proxy", CFG_BOOL, trust_proxy, "false", 0, 0, NULL, 0,
	  "take the client address from X-Forwarded-For (only behind a trusted proxy)"),
	K("rl_login_fail_max", CFG_INT, rl_login_fail_max, "5", 1, 1000000, NULL, 0,
	  "failed logins allowed per email and address in the window"),
	K("rl_login_fail_ip_max", CFG_INT, rl_login_fail_ip_max, "50", 1, 1000000, NULL, 0,
	  "failed logins allowed per address in the window"),
	K("rl_login_fail_window_s", CFG_INT, rl_login_fail_window_s, "900", 1, 86400, NULL, 0,
	  "failed-login window in seconds (15 minutes)"),
	K("rl_ai_per_min", CFG_INT, rl_ai_per_min, "10", 1, 1000000, NULL, 0,
	  "AI requests per user per minute"),
	K("rl_default_per_min", CFG_INT, rl_default_per_min, "1200", 1, 10000000, NULL, 0,
	  "other API requests per user (or address) per minute"),
	K("max_inflight_per_user", CFG_INT, max_inflight_per_user, "8", 1, 4096, NULL, 0,
	  "requests of one user served at the same time on this machine (429 above)"),
	K("max_inflight_per_address", CFG_INT, max_inflight_per_address, "32", 1, 65536, NULL, 0,
	  "anonymous requests of one client address served at the same time (429 above)"),
	K("secrets_key_file", CFG_STR, secrets_key_file, "", 0, 0, NULL, 0,
	  "file with the AES-256-GCM master key (64 hex chars) for stored provider keys"),
	K("secrets_key", CFG_STR, secrets_key, "", 0, 0, NULL, CFG_SECRET,
	  "the master key itself (prefer secrets_key_file); env IDEAFORGE_SECRETS_KEY"),
	K("ai_default_provider", CFG_ENUM, ai_default_provider, "openai", 0, 0, ai_provider_names, 0,
	  "provider used for users without a key of their own: openai, anthropic or gemini"),
	K("openai_base_url", CFG_STR, openai_base_url, "https://api.openai.com/v1", 0, 0, NULL, 0,
	  "OpenAI-compatible API (OpenAI, a gateway, Ollama, llama.cpp, vLLM), ending in /v1"),
	K("openai_api_key_file", CFG_STR, openai_api_key_file, "", 0, 0, NULL, 0,
	  "file with the server-wide OpenAI key; or env IDEAFORGE_OPENAI_API_KEY"),
	K("openai_api_key", CFG_STR, openai_api_key, "", 0, 0, NULL, CFG_SECRET,
	  "server-wide OpenAI key (prefer openai_api_key_file)"),
	K("openai_model_fast", CFG_STR, openai_model_fast, "gpt-4o-mini", 0, 0, NULL, 0,
	  "OpenAI model of the fast tier"),
	K("openai_model_standard", CFG_STR, openai_model_standard, "gpt-4o", 0, 0, NULL, 0,
	  "OpenAI model of the standard tier"),
	K("openai_model_premium", CFG_STR, openai_model_premium, "gpt-4.1", 0, 0, NULL, 0,
	  "OpenAI model of the premium tier"),
	K("anthropic_base_url", CFG_STR, anthropic_base_url, "https://api.anthropic.com", 0, 0, NULL,
	  0, "Anthropic Messages API"),
	K("anthropic_api_key_file", CFG_STR, anthropic_api_key_file, "", 0, 0, NULL, 0,
	  "file with the server-wide Anthropic key; or env IDEAFORGE_ANTHROPIC_API_KEY"),
	K("anthropic_api_key", CFG_STR, anthropic_api_key, "", 0, 0, NULL, CFG_SECRET,
	  "server-wide Anthropic key (prefer anthropic_api_key_file)"),
	K("anthropic_model_fast", CFG_STR, anthropic_model_fast, "claude-3-5-haiku-latest", 0, 0, NULL,
	  0, "Anthropic model of the fast tier"),
	K("anthropic_model_standard", CFG_STR, anthropic_model_standard, "claude-sonnet-4-0", 0, 0,
	  NULL, 0, "Anthropic model of the standard tier"),
	K("anthropic_model_premium", CFG_STR, anthropic_model_premium, "claude-opus-4-0", 0, 0, NULL,
	  0, "Anthropic model of the premium tier"),
	K("gemini_base_url", CFG_STR, gemini_base_url, "https://generativelanguage.googleapis.com", 0,
	  0, NULL, 0, "Google Gemini API"),
	K("gemini_api_key_file", CFG_STR, gemini_api_key_file, "", 0, 0, NULL, 0,
	  "file with the server-wide Gemini key; or env IDEAFORGE_GEMINI_API_KEY"),
	K("gemini_api_key", CFG_STR, gemini_api_key, "", 0, 0, NULL, CFG_SECRET,
	  "server-wide Gemini key (prefer gemini_api_key_file)"),
	K("gemini_model_fast", CFG_STR, gemini_model_fast, "gemini-2.0-flash", 0, 0, NULL, 0,
	  "Gemini model of the fast tier"),
	K("gemini_model_standard", CFG_STR, gemini_model_standard, "gemini-2.5-flash", 0, 0, NULL, 0,
	  "Gemini model of the standard tier"),
	K("gemini_model_premium", CFG_STR, gemini_model_premium, "gemini-2.5-pro", 0, 0, NULL, 0,
	  "Gemini model of the premium tier"),
	K("agentd_listen", CFG_STR, agentd_listen, "unix:/run/ideaforge/agentd.sock", 0, 0, NULL, 0,
	  "ideaforge-agentd's HTTP socket (unix:/path or host:port), proxied by nginx"),
	K("agent_max_concurrent", CFG_INT, agent_max_concurrent, "256", 1, 100000, NULL, 0,
	  "agent jobs one ideaforge-agentd runs at once; more wait in the queue"),
	K("agent_max_concurrent_per_user", CFG_INT, agent_max_concurrent_per_user, "4", 1, 10000,
	  NULL, 0, "unfinished agent jobs of one user (429 above)"),
	K("agent_job_lease_s", CFG_INT, agent_job_lease_s, "30", 2, 3600, NULL, 0,
	  "lease of a running job, renewed while it runs; another agentd takes it over after"),
	K("agent_job_max_attempts", CFG_INT, agent_job_max_attempts, "3", 1, 100, NULL, 0,
	  "runs of a job (after agentd crashes) before it fails"),
	K("agent_connect_timeout_ms", CFG_INT, agent_connect_timeout_ms, "10000", 100, 600000, NULL,
	  0, "provider connect timeout"),
	K("agent_first_token_timeout_ms", CFG_INT, agent_first_token_timeout_ms, "60000", 100,
	  3600000, NULL, 0, "a provider call without a first token within this fails"),
	K("agent_idle_timeout_ms", CFG_INT, agent_idle_timeout_ms, "60000", 100, 3600000, NULL, 0,
	  "a provider stream silent this long fails"),
	K("agent_total_timeout_ms", CFG_INT, agent_total_timeout_ms, "300000", 1000, 86400000, NULL,
	  0, "longest provider call"),
	K("agent_max_retries", CFG_INT, agent_max_retries, "2", 0, 10, NULL, 0,
	  "retries of a provider call (429, 5xx, unreachable) before its first token"),
	K("agent_heartbeat_s", CFG_INT, agent_heartbeat_s, "15", 1, 300, NULL, 0,
	  "period of the comment heartbeat on open event streams"),
	/* EXT-CONFIG-BEGIN */
	K("oidc_issuer", CFG_STR, oidc_issuer, "", 0, 0, NULL, 0,
	  "OpenID Connect provider (issuer URL); empty: single sign-on is off (its routes 404)"),
	K("oidc_client_id", CFG_STR, oidc_client_id, "", 0, 0, NULL, 0,
	  "client id registered at the OpenID provider"),
	K("oidc_client_secret_file", CFG_STR, oidc_client_secret_file, "", 0, 0, NULL, 0,
	  "file with the client secret; or env IDEAFORGE_OIDC_CLIENT_SECRET; none: public client"),
	K("oidc_client_secret", CFG_STR, oidc_client_secret, "", 0, 0, NULL, CFG_SECRET,
	  "the client secret itself (prefer oidc_client_secret_file)"),
	K("oidc_redirect_uri", CFG_STR, oidc_redirect_uri, "", 0, 0, NULL, 0,
	  "our callback URL as registered, e.g. https://host/auth/mckinsey/callback"),
	K("oidc_post_logout_redirect_uri", CFG_STR, oidc_post_logout_redirect_uri, "", 0, 0, NULL, 0,
	  "where the provider returns the browser after a single sign-on logout (optional)"),
	K("oidc_tenant", CFG_STR, oidc_tenant, "default", 0, 0, NULL, 0,
	  "slug of the tenant that users signing in for the first time join"),
	K("oidc_scopes", CFG_STR, oidc_scopes, "openid profile email", 0, 0, NULL, 0,
	  "scopes of the authorization request (must include openid)"),
	K("oidc_jwks_ttl_s", CFG_INT, oidc_jwks_ttl_s, "3600", 10, 86400, NULL, 0,
	  "how long a process keeps the provider's discovery document and keys"),
	K("oidc_leeway_s", CFG_INT, oidc_leeway_s, "60", 0, 600, NULL, 0,
	  "clock skew allowed when checking an ID token's exp, iat and nbf"),
	K("oidc_login_ttl_s", CFG_INT, oidc_login_ttl_s, "600", 30, 3600, NULL, 0,
	  "how long a sign-in started at the provider may take (state and nonce lifetime)"),
	K("ext_timeout_ms", CFG_INT, ext_timeout_ms, "15000", 100, 600000, NULL, 0,
	  "longest call to an outside service (OpenID provider, GitHub, Atlassian, V0)"),
	K("github_api_url", CFG_STR, github_api_url, "https://api.github.com", 0, 0, NULL, 0,
	  "GitHub REST API (GitHub Enterprise: https://HOST/api/v3)"),
	K("v0_api_url", CFG_STR, v0_api_url, "https://api.v0.dev", 0, 0, NULL, 0,
	  "V0 Platform API"),
	K("atlassian_allowed_hosts", CFG_STR, atlassian_allowed_hosts, ".atlassian.net", 0, 0, NULL,
	  0, "comma-separated host suffixes a user's Atlassian site URL may have"),
	K("ext_allow_http", CFG_BOOL, ext_allow_http, "false", 0, 0, NULL, 0,
	  "accept http:// URLs for the provider and the sites (loopback fakes in tests only)"),
	K("ext_upload_max_bytes", CFG_INT, ext_upload_max_bytes, "1048576", 1024, 5242880, NULL, 0,
	  "largest document imported from GitHub or Confluence"),
	K("design_follow_s", CFG_INT, design_follow_s, "900", 60, 86400, NULL, 0,
	  "how long a V0 generation is followed before it is marked timeout"),
	K("design_poll_s", CFG_INT, design_poll_s, "10", 1, 3600, NULL, 0,
	  "period of ideaforge-agentd's checks of a V0 generation in progress"),
	/* EXT-CONFIG-END */
	K("agent_cache_ttl_s", CFG_INT, agent_cache_ttl_s, "3600", 0, 604800, NULL, 0,
	  "lifetime of a cached agent answer in Redis (0: no response cache)"),
	K("agent_context_budget_tokens", CFG_INT, agent_context_budget_tokens, "8000", 500,
	  1000000, NULL, 0,
	  "context given to the agents besides the message (history, submissions, knowledge), "
	  "in tokens counted as characters / 4"),
	K("sql_dir", CFG_STR, sql_dir, IF_PKGDATADIR "/sql", 0, 0, NULL, 0,
	  "directory of the numbered migrations (ideaforgectl migrate)"),
	{0},
};
/* clang-format on */

void app_config_free(struct srv_config *srv, void *app)
{
	if (!srv)
		return;
	struct cfg_section secs[2] = {{srv_config_keys, srv, ENV_PREFIX, srv_defaults},
				      {app_keys, app, ENV_PREFIX, NULL}};
	cfg_free(secs, app ? 2 : 1);
	free(srv);
	free(app);
}

int app_config_load(int argc, char **argv, struct srv_config **srvp, void **appp, char *err,
		    size_t errlen)
{
	struct srv_config *srv = calloc(1, sizeof(*srv));
	struct app_config *app = calloc(1, sizeof(*app));
	char **flags = calloc((size_t)argc + 1, sizeof(char *));
	size_t nflags = 0;
	const char *path = NULL;
	bool required = false;
	int rc = -1;
	*srvp = NULL;
	*appp = NULL;
	if (!srv || !app || !flags) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	struct cfg_section secs[2] = {{srv_config_keys, srv, ENV_PREFIX, srv_defaults},
				      {app_keys, app, ENV_PREFIX, NULL}};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "--config needs a file");
				goto out;
			}
			path = argv[++i];
			required = true;
		} else if (strncmp(a, "--config=", 9) == 0) {
			path = a + 9;
			required = true;
		} else if (strncmp(a, "--", 2) == 0) {
			const char *eq = strchr(a + 2, '=');
			if (eq) {
				flags[nflags] = strdup(a + 2);
			} else {
				if (!cfg_known(secs, 2, a + 2)) {
					snprintf(err, errlen, "command line: unknown option '%s'",
						 a);
					goto out;
				}
				if (i + 1 >= argc) {
					snprintf(err, errlen,
						 "command line: option '%s' needs a value", a);
					goto out;
				}
				size_t n = strlen(a + 2) + strlen(argv[i + 1]) + 2;
				flags[nflags] = malloc(n);
				if (flags[nflags])
					snprintf(flags[nflags], n, "%s=%s", a + 2, argv[i + 1]);
				i++;
			}
			if (!flags[nflags]) {
				snprintf(err, errlen, "out of memory");
				goto out;
			}
			nflags++;
		} else {
			snprintf(err, errlen, "command line: unexpected argument '%s'", a);
			goto out;
		}
	}
	if (!path) {
		path = getenv("IDEAFORGE_CONFIG");
		required = path != NULL;
		if (!path)
			path = IF_SYSCONFDIR "/ideaforge/ideaforge.conf";
	}
	if (cfg_load(secs, 2, path, required, flags, nflags, err, errlen) < 0)
		goto out;
	if (!srv->database_url || !*srv->database_url) {
		snprintf(err, errlen, "invalid value '' for key 'database_url' (required)");
		goto out;
	}
	if (app->argon2_memory_kib < 8 * app->argon2_parallelism) {
		snprintf(err, errlen,
			 "invalid value '%lld' for key 'argon2_memory_kib' (at least 8 x "
			 "argon2_parallelism)",
			 (long long)app->argon2_memory_kib);
		goto out;
	}
	if (app->oidc_issuer && *app->oidc_issuer) {
		/* EXT-CONFIG-BEGIN: single sign-on needs its client registration */
		const char *missing = !*app->oidc_client_id      ? "oidc_client_id"
				      : !*app->oidc_redirect_uri ? "oidc_redirect_uri"
				      : !*app->oidc_tenant       ? "oidc_tenant"
								 : NULL;
		if (missing) {
			snprintf(err, errlen,
				 "invalid value '' for key '%s' (required when oidc_issuer is set)",
				 missing);
			goto out;
		}
		if (!strstr(app->oidc_scopes, "openid")) {
			snprintf(err, errlen,
				 "invalid value '%s' for key 'oidc_scopes' (must include openid)",
				 app->oidc_scopes);
			goto out;
		}
		if (strncmp(app->oidc_issuer, "https://", 8) != 0 &&
		    !(app->ext_allow_http && strncmp(app->oidc_issuer, "http://", 7) == 0)) {
			snprintf(err, errlen,
				 "invalid value '%s' for key 'oidc_issuer' (an https:// URL)",
				 app->oidc_issuer);
			goto out;
		}
		/* EXT-CONFIG-END */
	}
	*srvp = srv;
	*appp = app;
	srv = NULL;
	app = NULL;
	rc = 0;
out:
	for (size_t i = 0; i < nflags; i++)
		free(flags[i]);
	free(flags);
	if (srv) {
		struct cfg_section s2[2] = {{srv_config_keys, srv, ENV_PREFIX, srv_defaults},
					    {app_keys, app, ENV_PREFIX, NULL}};
		cfg_free(s2, app ? 2 : 1);
		free(srv);
		free(app);
	}
	return rc;
}

void app_config_dump(const struct srv_config *srv, const struct app_config *app)
{
	struct cfg_section secs[2] = {{srv_config_keys, (void *)srv, ENV_PREFIX, srv_defaults},
				      {app_keys, (void *)app, ENV_PREFIX, NULL}};
	fflush(stdout);
	cfg_dump(secs, 2, STDOUT_FILENO);
}
