/* ai_routes.h - the AI routes of the API (app/h_ai.c; API.md 1.7 to 1.9, 4.5).
 *
 * No API thread waits on a provider or holds a stream (issue 11): these routes authenticate,
 * validate, rate-limit and enqueue a row of agent_jobs (sql/0004_agent_jobs.sql), which
 * ideaforge-agentd claims and runs. Stream and synchronous routes answer at once with an
 * X-Accel-Redirect to nginx's internal /_agentd/ location, which proxies to agentd: nginx then
 * joins the authenticated request to the job's stream (or its final answer). The one
 * exception is POST /api/providers/verify, which makes one cheap provider call with a 5 s
 * timeout on its thread.
 *
 * Every read and write of a job carries its owner and tenant in the SQL: another user's job
 * is 404 "Job not found". The job routes need PostgreSQL only (they work with Redis down).
 */
#ifndef IF_APP_AI_ROUTES_H
#define IF_APP_AI_ROUTES_H

#include "app.h"

/* Body contracts of the route table. */
extern const struct jx_field multi_agent_fields[];   /* MultiAgentRequest (API.md 1.7) */
extern const struct jx_field job_submit_fields[];    /* {request: MultiAgentRequest} */
extern const struct jx_field agent_request_fields[]; /* AgentRequest (API.md 1.7) */
extern const struct jx_field phase_help_fields[];    /* phase form help (API.md 1.9) */
extern const struct jx_field provider_verify_fields[];
extern const struct jx_field provider_configure_fields[];

/* A created job. */
struct job_row {
	const char *id;         /* UUID text (arena) */
	const char *created_at; /* ISO-8601 with offset (arena) */
};

/* Inserts a pending agent job of the caller (kind, product_id or NULL, request JSON) under the
 * per-user cap: RC_OK with *out, 404 for a product the caller cannot view, 429 over the cap
 * (app/h_ai.c; also used by the design routes, app/h_design.c). */
int ai_job_enqueue(struct req *r, const char *kind, const char *product_id,
		   struct json_object *request, struct job_row *out);

/* Per worker, before its threads start: libcurl's global state (lib/llm.h leaves it to the
 * program) and the server-wide provider keys (ai_init). 0; a server key file that cannot be
 * read is logged and leaves that provider unconfigured. */
int ai_routes_init(const struct app_config *cfg);

/* Streams: 200, empty body, X-Accel-Redirect to the job's events (API.md 1.8, 1.9, 5.7). */
int h_agents_list(struct req *r);         /* GET /api/agents */
int h_agents_capabilities(struct req *r); /* GET /api/agents/capabilities */
int h_agents_by_phase(struct req *r);     /* GET /api/agents/by-phase?phase_name= */
int h_ai_stream_multi(struct req *r);     /* POST /api/streaming/multi-agent/stream */
int h_ai_stream_phase(struct req *r);     /* POST /api/phase-form-help/stream */
int h_ai_job_events(struct req *r);       /* GET /api/streaming/jobs/{id}/events (reconnect) */

/* Synchronous forms: 200, empty body, X-Accel-Redirect to the job's final answer. */
int h_ai_process_multi(struct req *r); /* POST /api/multi-agent/process */
int h_ai_process_agent(struct req *r); /* POST /api/agents/process */

/* Asynchronous jobs (API.md 4.5, owner-only). */
int h_ai_job_submit(struct req *r);   /* POST /api/multi-agent/submit */
int h_ai_job_status(struct req *r);   /* GET /api/multi-agent/jobs/{id}/status */
int h_ai_job_result(struct req *r);   /* GET /api/multi-agent/jobs/{id}/result */
int h_ai_job_cancel(struct req *r);   /* DELETE /api/multi-agent/jobs/{id} */
int h_ai_interactions(struct req *r); /* GET /api/multi-agent/interactions (the caller's) */

/*
 * For the AI features of other resources (app/h_scoring.c): checks the caller has a provider,
 * enqueues a job of kind (sql/0006) with request (an object owned by the caller's arena;
 * user_id is set to the session's) on product_id (which the caller can view, else 404), and
 * answers with the X-Accel-Redirect to its finished result, which agentd returns as stored
 * (the route's response body). RC_OK, or the error recorded in r.
 */
int ai_job_wait(struct req *r, const char *kind, const char *product_id,
		struct json_object *request);

/* Whether the caller has a provider for AI work, by the rule of ai_job_wait (ai_choose: the
 * user's own keys, the server's, a keyless local server): 1 yes, 0 no (nothing is recorded in
 * r: the caller goes on without AI), -1 a database error recorded in r. */
int ai_provider_ready(struct req *r);

/* ai_job_wait once the provider was checked (ai_provider_ready): enqueues the job and answers
 * with the X-Accel-Redirect to agentd's wait in shape: "kind" (the stored result as the JSON
 * body) or "file" (a stored {filename, content_type, document} as a download with
 * Content-Disposition and Cache-Control: no-store, set by agentd). RC_OK, or the error
 * recorded in r. */
int ai_job_answer(struct req *r, const char *kind, const char *product_id,
		  struct json_object *request, const char *shape);

/* Product scoring, summaries, standardized PRD (API.md 1.10; app/h_scoring.c). Every route
 * checks the product's tenant and the caller's access in its SQL: another tenant's product,
 * summary, score or tenant id is 404. */
int h_scoring_sessions(struct req *r);      /* GET /api/products/{id}/sessions */
int h_scoring_summarize(struct req *r);     /* POST /api/products/{id}/summarize */
int h_scoring_score(struct req *r);         /* POST /api/products/{id}/score */
int h_scoring_generate_prd(struct req *r);  /* POST /api/products/{id}/generate-prd */
int h_scoring_scores(struct req *r);        /* GET /api/products/{id}/scores */
int h_scoring_tenant_scores(struct req *r); /* GET /api/products/tenant/{tenant_id}/scores */
int h_agents_usage_stats(struct req *r);    /* GET /api/agents/usage-stats (API.md 6.3) */

/* Providers, per user (API.md 1.7, 8.1 item 3). */
int h_ai_providers_verify(struct req *r);    /* POST /api/providers/verify */
int h_ai_providers_configure(struct req *r); /* POST /api/providers/configure */
int h_ai_agno_status(struct req *r);         /* GET /api/agno/status */
int h_ai_agno_initialize(struct req *r);     /* POST /api/agno/initialize */

#endif
