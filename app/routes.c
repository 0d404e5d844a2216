/* routes.c - the whole IdeaForge API in one table (ARCHITECTURE.md section 2).
 *
 * Each entry: method, path pattern, handler, flags (ROUTE_AUTH: a session is required; the
 * auth-coverage test walks this table; ROUTE_IDEMPOTENT: a create route that answers a retry
 * carrying the same Idempotency-Key with its first result, app/idem.c), rate-limit class and
 * body contract. */
#include "app.h"
#include "auth.h"      /* authentication, sessions, users (app/h_auth.c, app/h_users.c) */
#include "products.h"  /* product domain (app/h_products.c, h_lifecycle.c, ...) */
#include "ops.h"       /* status, metrics (app/h_metrics.c) */
#include "ai_routes.h" /* agent jobs, streams, providers (app/h_ai.c) */
#include "pcache.h"    /* ROUTE_KEEPS_PRODUCTS (app/pcache.c) */
#include "ext.h" /* SSO, GitHub/Atlassian, design (app/h_oidc.c, h_integrations.c, h_design.c) */

/* Body caps (the last column) are sized to each route's contract: a few KiB where the body
 * is a login or a setting, the largest field plus its JSON framing elsewhere. A body above its
 * route's cap is refused with 413 before a byte of it is read. */
#define KiB(n) ((int64_t)(n) << 10)
#define MiB(n) ((int64_t)(n) << 20)

const struct route app_routes[] = {
	/* service info and health (API.md 1.1, 6.1) */
	{HM_GET, "/", h_root, ROUTE_INTERNAL, RL_NONE, NULL, 0},
	{HM_GET, "/api/", h_root, 0, RL_DEFAULT, NULL, 0},
	{HM_GET, "/health", h_health, ROUTE_INTERNAL, RL_NONE, NULL, 0},
	{HM_GET, "/health/live", h_health_live, ROUTE_INTERNAL, RL_NONE, NULL, 0},
	{HM_GET, "/health/ready", h_health_ready, ROUTE_INTERNAL, RL_NONE, NULL, 0},

	/* lifecycle reference data (API.md 1.5) */
	{HM_GET, "/api/db/phases", h_phases_list, 0, RL_DEFAULT, NULL, 0},

	/* ---- authentication, sessions, users (API.md 1.2, 1.3) ---- */
	/* AUTH-ROUTES-BEGIN */
	{HM_POST, "/api/auth/login", h_auth_login, ROUTE_JSON, RL_LOGIN, auth_login_fields, KiB(4)},
	{HM_POST, "/api/auth/logout", h_auth_logout, 0, RL_DEFAULT, NULL, 0},
	{HM_POST, "/api/auth/logout-all", h_auth_logout_all, ROUTE_AUTH, RL_DEFAULT, NULL, 0},
	{HM_POST, "/api/auth/refresh", h_auth_refresh, ROUTE_AUTH, RL_DEFAULT, NULL, 0},
	{HM_PUT, "/api/auth/password", h_auth_password, ROUTE_AUTH | ROUTE_JSON | ROUTE_STRICT,
	 RL_DEFAULT, auth_password_fields, KiB(4)},
	{HM_POST, "/api/auth/register", h_auth_register, ROUTE_RAW, RL_LOGIN, NULL, KiB(8)},
	{HM_GET, "/api/auth/register", h_auth_register_get, 0, RL_DEFAULT, NULL, 0},
	{HM_GET, "/api/auth/me", h_auth_me, ROUTE_AUTH, RL_DEFAULT, NULL, 0},
	{HM_GET, "/api/auth/users", h_auth_users, ROUTE_AUTH, RL_DEFAULT, NULL, 0},
	{HM_GET, "/api/users/profile", h_users_profile_get, ROUTE_AUTH, RL_DEFAULT, NULL, 0},
	{HM_PUT, "/api/users/profile", h_users_profile_put, ROUTE_AUTH | ROUTE_JSON | ROUTE_STRICT,
	 RL_DEFAULT, users_profile_fields, KiB(16)},
	{HM_GET, "/api/users/preferences", h_users_preferences_get, ROUTE_AUTH, RL_DEFAULT, NULL,
	 0},
	{HM_PUT, "/api/users/preferences", h_users_preferences_put,
	 ROUTE_AUTH | ROUTE_JSON | ROUTE_STRICT, RL_DEFAULT, users_preferences_fields, KiB(80)},
	/* AUTH-ROUTES-END */

	/* ---- products, sharing, lifecycle, knowledge, conversations, reports, keys ---- */
	/* PRODUCT-ROUTES-BEGIN */
	/* products, portfolio, sharing (API.md 1.4) */
	{HM_GET, "/api/products", h_products_list, ROUTE_AUTH, RL_DEFAULT, NULL, 0},
	{HM_POST, "/api/products", h_products_create, ROUTE_AUTH | ROUTE_JSON | ROUTE_IDEMPOTENT,
	 RL_DEFAULT, product_create_fields, KiB(256)},
	{HM_GET, "/api/products/portfolio", h_products_portfolio, ROUTE_AUTH, RL_DEFAULT, NULL, 0},
	{HM_GET, "/api/products/{id}", h_products_get, ROUTE_AUTH | ROUTE_PRODUCT, RL_DEFAULT, NULL,
	 0},
	{HM_PUT, "/api/products/{id}", h_products_update, ROUTE_AUTH | ROUTE_PRODUCT | ROUTE_JSON,
	 RL_DEFAULT, product_update_fields, KiB(256)},
	{HM_DELETE, "/api/products/{id}", h_products_delete, ROUTE_AUTH | ROUTE_PRODUCT, RL_DEFAULT,
	 NULL, 0},
	{HM_POST, "/api/products/{id}/share", h_products_share,
	 ROUTE_AUTH | ROUTE_PRODUCT | ROUTE_JSON | ROUTE_IDEMPOTENT, RL_DEFAULT,
	 product_share_fields, KiB(4)},
	{HM_GET, "/api/products/{id}/shares", h_products_shares, ROUTE_AUTH | ROUTE_PRODUCT,
	 RL_DEFAULT, NULL, 0},
	{HM_DELETE, "/api/products/{id}/shares/{share_id}", h_products_unshare,
	 ROUTE_AUTH | ROUTE_PRODUCT, RL_DEFAULT, NULL, 0},
	/* progress report, PRD review and export (API.md 1.11) */
	{HM_POST, "/api/products/{id}/generate-progress-report", h_reports_generate,
	 ROUTE_AUTH | ROUTE_PRODUCT | ROUTE_JSON | ROUTE_OPTBODY, RL_DEFAULT, NULL, KiB(16)},
	{HM_GET, "/api/products/{id}/progress-report", h_reports_get, ROUTE_AUTH | ROUTE_PRODUCT,
	 RL_DEFAULT, NULL, 0},
	{HM_POST, "/api/products/{id}/review-prd", h_reports_review,

	 ROUTE_AUTH | ROUTE_PRODUCT | ROUTE_JSON | ROUTE_OPTBODY, RL_DEFAULT, review_fields,
	 MiB(3)},
	{HM_POST, "/api/products/{id}/export-prd", h_reports_export,

	 ROUTE_AUTH | ROUTE_PRODUCT | ROUTE_JSON | ROUTE_OPTBODY, RL_DEFAULT, export_fields,
	 MiB(3)},
	/* lifecycle "DB" API (API.md 1.5; /api/db/phases is above) */
	{HM_GET, "/api/db/products", h_db_products_list, ROUTE_AUTH, RL_DEFAULT, NULL, 0},
	{HM_POST, "/api/db/products", h_db_products_create,
	 ROUTE_AUTH | ROUTE_PRODUCT | ROUTE_JSON | ROUTE_IDEMPOTENT, RL_DEFAULT, db_product_fields,
	 KiB(256)},
	{HM_GET, "/api/db/phase-submissions", h_submissions_list, ROUTE_AUTH | ROUTE_PRODUCT,
	 RL_DEFAULT, NULL, 0},
	{HM_GET, "/api/db/phase-submissions/{product_id}/{phase_id}", h_submissions_get,
	 ROUTE_AUTH | ROUTE_PRODUCT, RL_DEFAULT, NULL, 0},
	{HM_POST, "/api/db/phase-submissions", h_submissions_upsert,
	 ROUTE_AUTH | ROUTE_PRODUCT | ROUTE_JSON | ROUTE_KEEPS_PRODUCTS, RL_DEFAULT,
	 submission_upsert_fields, MiB(3)},
	{HM_PUT, "/api/db/phase-submissions/{id}", h_submissions_update,
	 ROUTE_AUTH | ROUTE_PRODUCT | ROUTE_JSON | ROUTE_KEEPS_PRODUCTS, RL_DEFAULT,
	 submission_update_fields, MiB(3)},
	{HM_GET, "/api/db/conversation-history", h_messages_list, ROUTE_AUTH | ROUTE_PRODUCT,
	 RL_DEFAULT, NULL, 0},
	{HM_POST, "/api/db/conversation-history", h_messages_append,
	 ROUTE_AUTH | ROUTE_PRODUCT | ROUTE_JSON | ROUTE_IDEMPOTENT | ROUTE_KEEPS_PRODUCTS,
	 RL_DEFAULT, message_fields, MiB(3)},
	{HM_GET, "/api/db/knowledge-articles", h_articles_list, ROUTE_AUTH | ROUTE_PRODUCT,
	 RL_DEFAULT, NULL, 0},
	{HM_POST, "/api/db/knowledge-articles", h_articles_create,
	 ROUTE_AUTH | ROUTE_PRODUCT | ROUTE_JSON | ROUTE_IDEMPOTENT | ROUTE_KEEPS_PRODUCTS,
	 RL_DEFAULT, article_fields, MiB(3)},
	{HM_DELETE, "/api/db/knowledge-articles/{id}", h_articles_delete,
	 ROUTE_AUTH | ROUTE_PRODUCT | ROUTE_KEEPS_PRODUCTS, RL_DEFAULT, NULL, 0},
	/* conversations (API.md 1.6) and document upload (API.md 1.12) */
	{HM_GET, "/api/conversations/history", h_conversations_history, ROUTE_AUTH | ROUTE_PRODUCT,
	 RL_DEFAULT, NULL, 0},
	{HM_POST, "/api/documents/upload", h_documents_upload,
	 ROUTE_AUTH | ROUTE_PRODUCT | ROUTE_RAW | ROUTE_IDEMPOTENT | ROUTE_KEEPS_PRODUCTS,
	 RL_DEFAULT, NULL, MiB(6)},
	/* provider keys and integrations (API.md 1.14) */
	{HM_GET, "/api/api-keys", h_keys_list, ROUTE_AUTH, RL_DEFAULT, NULL, 0},
	{HM_POST, "/api/api-keys", h_keys_save, ROUTE_AUTH | ROUTE_JSON, RL_DEFAULT,
	 key_save_fields, KiB(16)},
	{HM_DELETE, "/api/api-keys/{provider}", h_keys_delete, ROUTE_AUTH, RL_DEFAULT, NULL, 0},
	{HM_GET, "/api/api-keys/decrypt/{provider}", h_keys_decrypt, ROUTE_AUTH, RL_DEFAULT, NULL,
	 0},
	{HM_POST, "/api/integrations/configure", h_integrations_configure, ROUTE_AUTH | ROUTE_JSON,
	 RL_DEFAULT, integration_fields, KiB(80)},
	{HM_GET, "/api/integrations/status", h_integrations_status, ROUTE_AUTH, RL_DEFAULT, NULL,
	 0},
	/* PRODUCT-ROUTES-END */

	/* ---- AI: agent jobs, their streams and answers, providers (API.md 1.7-1.9, 4.5) ---- */
	/* AI-ROUTES-BEGIN */
	/* the roster (API.md 1.1, 5.4): app/agents.c's table */
	{HM_GET, "/api/agents", h_agents_list, ROUTE_AUTH, RL_DEFAULT, NULL, 0},
	{HM_GET, "/api/agents/capabilities", h_agents_capabilities, ROUTE_AUTH, RL_DEFAULT, NULL,
	 0},
	{HM_GET, "/api/agents/by-phase", h_agents_by_phase, ROUTE_AUTH, RL_DEFAULT, NULL, 0},
	{HM_GET, "/api/agents/usage-stats", h_agents_usage_stats, ROUTE_AUTH, RL_DEFAULT, NULL, 0},
	/* product scoring, summaries, standardized PRD (API.md 1.10): app/h_scoring.c; the AI
	 * ones are agentd jobs answered through X-Accel-Redirect */
	{HM_GET, "/api/products/{id}/sessions", h_scoring_sessions, ROUTE_AUTH, RL_DEFAULT, NULL,
	 0},
	{HM_POST, "/api/products/{id}/summarize", h_scoring_summarize,
	 ROUTE_AUTH | ROUTE_RAW | ROUTE_STREAM, RL_AI, NULL, KiB(8)},
	{HM_POST, "/api/products/{id}/score", h_scoring_score, ROUTE_AUTH | ROUTE_STREAM, RL_AI,
	 NULL, 0},
	{HM_POST, "/api/products/{id}/generate-prd", h_scoring_generate_prd,
	 ROUTE_AUTH | ROUTE_STREAM, RL_AI, NULL, 0},
	{HM_GET, "/api/products/{id}/scores", h_scoring_scores, ROUTE_AUTH, RL_DEFAULT, NULL, 0},
	{HM_GET, "/api/products/tenant/{tenant_id}/scores", h_scoring_tenant_scores, ROUTE_AUTH,
	 RL_DEFAULT, NULL, 0},
	/* Work goes to ideaforge-agentd through agent_jobs; stream and process routes answer
	 * X-Accel-Redirect to nginx's internal /_agentd/ location (app/ai_routes.h). Bodies:
	 * a 128 KiB query or 192 KiB of messages plus a 64 KiB context. */
	{HM_POST, "/api/streaming/multi-agent/stream", h_ai_stream_multi,

	 ROUTE_AUTH | ROUTE_PRODUCT | ROUTE_JSON | ROUTE_STREAM, RL_AI, multi_agent_fields,
	 KiB(256)},
	{HM_GET, "/api/streaming/jobs/{id}/events", h_ai_job_events, ROUTE_AUTH | ROUTE_STREAM,
	 RL_DEFAULT, NULL, 0},
	{HM_POST, "/api/phase-form-help/stream", h_ai_stream_phase,

	 ROUTE_AUTH | ROUTE_PRODUCT | ROUTE_JSON | ROUTE_STREAM, RL_AI, phase_help_fields,
	 KiB(256)},
	{HM_POST, "/api/multi-agent/process", h_ai_process_multi,

	 ROUTE_AUTH | ROUTE_PRODUCT | ROUTE_JSON | ROUTE_STREAM, RL_AI, multi_agent_fields,
	 KiB(256)},
	{HM_POST, "/api/agents/process", h_ai_process_agent,
	 ROUTE_AUTH | ROUTE_PRODUCT | ROUTE_JSON | ROUTE_STREAM, RL_AI, agent_request_fields,
	 KiB(288)},
	{HM_POST, "/api/multi-agent/submit", h_ai_job_submit,
	 ROUTE_AUTH | ROUTE_PRODUCT | ROUTE_JSON, RL_AI, job_submit_fields, KiB(260)},
	{HM_GET, "/api/multi-agent/jobs/{id}/status", h_ai_job_status, ROUTE_AUTH, RL_DEFAULT, NULL,
	 0},
	{HM_GET, "/api/multi-agent/jobs/{id}/result", h_ai_job_result, ROUTE_AUTH, RL_DEFAULT, NULL,
	 0},
	{HM_DELETE, "/api/multi-agent/jobs/{id}", h_ai_job_cancel, ROUTE_AUTH, RL_DEFAULT, NULL, 0},
	{HM_GET, "/api/multi-agent/interactions", h_ai_interactions, ROUTE_AUTH, RL_DEFAULT, NULL,
	 0},
	{HM_POST, "/api/providers/verify", h_ai_providers_verify, ROUTE_AUTH | ROUTE_JSON, RL_AI,
	 provider_verify_fields, KiB(16)},
	{HM_POST, "/api/providers/configure", h_ai_providers_configure, ROUTE_AUTH | ROUTE_JSON,
	 RL_DEFAULT, provider_configure_fields, KiB(32)},
	{HM_GET, "/api/agno/status", h_ai_agno_status, ROUTE_AUTH, RL_DEFAULT, NULL, 0},
	{HM_POST, "/api/agno/initialize", h_ai_agno_initialize, ROUTE_AUTH, RL_DEFAULT, NULL, 0},
	/* AI-ROUTES-END */

	/* ---- outside services: single sign-on, GitHub, Atlassian, V0 (issue 16) ---- */
	/* EXT-ROUTES-BEGIN */
	/* OpenID Connect (API.md 1.2): the browser steps (authorize, callback) need no session;
	 * all answer 404 "Not Found" while oidc_issuer is unset. The /api/auth/mckinsey/... paths
	 * and /auth/mckinsey/callback are the original frontend's paths. */
	{HM_GET, "/api/auth/oidc/authorize", h_oidc_authorize, 0, RL_LOGIN, NULL, 0},
	{HM_GET, "/api/auth/oidc/callback", h_oidc_callback, 0, RL_LOGIN, NULL, 0},
	{HM_POST, "/api/auth/oidc/logout", h_oidc_logout, ROUTE_AUTH, RL_DEFAULT, NULL, 0},
	{HM_POST, "/api/auth/oidc/refresh", h_oidc_refresh, ROUTE_AUTH, RL_DEFAULT, NULL, 0},
	{HM_GET, "/api/auth/mckinsey/authorize", h_oidc_authorize, 0, RL_LOGIN, NULL, 0},
	{HM_GET, "/api/auth/mckinsey/callback", h_oidc_callback, 0, RL_LOGIN, NULL, 0},
	{HM_GET, "/auth/mckinsey/callback", h_oidc_callback, 0, RL_LOGIN, NULL, 0},
	{HM_POST, "/api/auth/mckinsey/logout", h_oidc_logout, ROUTE_AUTH, RL_DEFAULT, NULL, 0},
	{HM_POST, "/api/auth/mckinsey/refresh", h_oidc_refresh, ROUTE_AUTH, RL_DEFAULT, NULL, 0},
	/* GitHub, Confluence, Jira (API.md 1.11, 1.12, 1.14): 400 naming what to configure when
	 * the caller has no credentials */
	{HM_POST, "/api/integrations/verify", h_ext_verify, ROUTE_AUTH | ROUTE_JSON, RL_DEFAULT,
	 ext_verify_fields, KiB(80)},
	{HM_POST, "/api/documents/upload-from-github", h_ext_upload_github, ROUTE_AUTH | ROUTE_JSON,
	 RL_DEFAULT, ext_github_fields, KiB(8)},
	{HM_POST, "/api/documents/upload-from-confluence", h_ext_upload_confluence,
	 ROUTE_AUTH | ROUTE_JSON, RL_DEFAULT, ext_confluence_fields, KiB(8)},
	{HM_POST, "/api/products/{id}/publish-to-confluence", h_ext_publish_confluence,
	 ROUTE_AUTH | ROUTE_JSON, RL_DEFAULT, ext_publish_fields, MiB(3)},
	{HM_POST, "/api/workflows/{workflow_type}", h_ext_workflow, ROUTE_AUTH | ROUTE_JSON,
	 RL_DEFAULT, ext_workflow_fields, KiB(4)},
	/* design (API.md 1.13): view rights to read, edit rights to create or delete mockups */
	{HM_POST, "/api/design/generate-prompt", h_design_prompt, ROUTE_AUTH | ROUTE_JSON, RL_AI,
	 design_prompt_fields, KiB(80)},
	{HM_POST, "/api/design/generate-prompt/stream", h_design_prompt_stream,
	 ROUTE_AUTH | ROUTE_JSON | ROUTE_STREAM, RL_AI, design_prompt_fields, KiB(80)},
	{HM_POST, "/api/design/create-project", h_design_project, ROUTE_AUTH | ROUTE_JSON,
	 RL_DEFAULT, design_project_fields, KiB(160)},
	{HM_POST, "/api/design/submit-chat", h_design_chat, ROUTE_AUTH | ROUTE_JSON, RL_DEFAULT,
	 design_chat_fields, KiB(160)},
	{HM_POST, "/api/design/generate-mockup", h_design_mockup, ROUTE_AUTH | ROUTE_JSON,
	 RL_DEFAULT, design_mockup_fields, KiB(160)},
	{HM_POST, "/api/design/generate-thumbnails", h_design_thumbnails, ROUTE_AUTH | ROUTE_JSON,
	 RL_DEFAULT, design_thumbnail_fields, KiB(80)},
	{HM_GET, "/api/design/mockups/{product_id}", h_design_mockups, ROUTE_AUTH, RL_DEFAULT, NULL,
	 0},
	{HM_GET, "/api/design/prototypes/{product_id}", h_design_prototypes, ROUTE_AUTH, RL_DEFAULT,
	 NULL, 0},
	{HM_GET, "/api/design/mockups/{product_id}/status", h_design_status, ROUTE_AUTH, RL_DEFAULT,
	 NULL, 0},
	{HM_GET, "/api/design/check-status/{product_id}", h_design_check, ROUTE_AUTH, RL_DEFAULT,
	 NULL, 0},
	{HM_DELETE, "/api/design/mockups/{mockup_id}", h_design_delete, ROUTE_AUTH, RL_DEFAULT,
	 NULL, 0},
	/* EXT-ROUTES-END */

	/* ---- operations: status, metrics (API.md 6.2) ---- */
	/* OPS-ROUTES-BEGIN */
	{HM_GET, "/status", h_status, ROUTE_INTERNAL, RL_NONE, NULL, 0},
	{HM_GET, "/metrics", h_metrics, ROUTE_INTERNAL, RL_NONE, NULL, 0},
	{HM_GET, "/api/metrics/connection-pool", h_metrics_pool, ROUTE_AUTH, RL_DEFAULT, NULL, 0},
	{HM_GET, "/api/metrics/database-health", h_metrics_db, ROUTE_AUTH, RL_DEFAULT, NULL, 0},
	{HM_GET, "/api/metrics/cache-stats", h_metrics_cache, ROUTE_AUTH, RL_DEFAULT, NULL, 0},
	{HM_GET, "/api/metrics/agent-metrics", h_metrics_agents, ROUTE_AUTH, RL_DEFAULT, NULL, 0},
	/* OPS-ROUTES-END */
};

const size_t app_nroutes = sizeof(app_routes) / sizeof(app_routes[0]);
