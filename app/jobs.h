/* jobs.h - the SQL of the durable agent job queue (sql/0004_agent_jobs.sql), for
 * ideaforge-agentd. Every statement is parameterised; every write of a running job carries
 * the lease owner in its WHERE clause, so an agentd that lost its lease (it was too slow, or
 * another one took the job over) can never overwrite the job or store its answer twice.
 *
 * Each function runs on the context's connection (c->pool, checked out on first use; the
 * caller calls db_done) and returns results in c->a. On a database error they return NULL or
 * the code, with c->rc and c->detail set (lib/db.h).
 */
#ifndef IF_APP_JOBS_H
#define IF_APP_JOBS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "../lib/ctx.h"

/*
 * Claims a job for owner with a lease of lease_s seconds: the one of job_id when it is not
 * NULL (and claimable), else the oldest claimable one (pending, or processing with an expired
 * lease, with attempts left), skipping rows locked by another claim. One row (id, tenant_id,
 * user_id, product_id, kind, request, attempts, max_seq, max_run) or none; NULL on error.
 */
PGresult *jobs_claim(struct ctx *c, const char *owner, int64_t lease_s, const char *job_id);

/* Extends the lease of every job owner runs; the rows (id) still held. NULL on error. */
PGresult *jobs_renew(struct ctx *c, const char *owner, int64_t lease_s);

/* Fails the jobs whose lease expired with no attempt left; the rows (id). NULL on error. */
PGresult *jobs_fail_expired(struct ctx *c);

/* Stores events of run `run` (a JSON array of {"seq","event","data"}) while owner holds the
 * job. RC_OK (also when the lease was lost: nothing stored) or the error. */
int jobs_add_events(struct ctx *c, const char *job_id, const char *owner, int run,
		    const char *events_json);

/* Marks the job completed with result (JSON text) while owner holds it and it is processing;
 * *done tells whether it did. RC_OK or the error. Run it inside the caller's transaction. */
int jobs_complete(struct ctx *c, const char *job_id, const char *owner, const char *result,
		  bool *done);

/* Marks the job failed with error (client-safe text), same conditions as jobs_complete. */
int jobs_fail(struct ctx *c, const char *job_id, const char *owner, const char *error, bool *done);

/* Hands a job back to the queue (pending, no lease, the attempt given back): NOTIFY wakes the
 * other agentds. RC_OK or the error. */
int jobs_handback(struct ctx *c, const char *job_id, const char *owner);

/* The job row (state, kind, attempts, max_attempts, claimable, result, error, max_run) or no
 * row; NULL on error. */
PGresult *jobs_get(struct ctx *c, const char *job_id);

/* Stored events (seq, attempt, event, data) of run (0: the latest run) with seq > after_seq,
 * in order; NULL on error. */
PGresult *jobs_events(struct ctx *c, const char *job_id, int run, int64_t after_seq);

/* The data of the job's last stored event named event, or NULL (none, or error: c->rc). */
const char *jobs_last_event(struct ctx *c, const char *job_id, const char *event);

/*
 * Saves a multi-agent answer in the conversation history (API.md 5.5): the session is
 * session_id when it is a session of (user, tenant), else the user's latest session of the
 * product, else a new one titled title; a user row with query and an agent row with the
 * primary agent's key and interaction_metadata (JSON text); the job is marked saved. Runs in a
 * savepoint of the caller's transaction, so a failure leaves the completion intact. RC_OK or
 * the error.
 */
int jobs_save_conversation(struct ctx *c, const char *job_id, const char *tenant_id,
			   const char *user_id, const char *product_id, const char *session_id,
			   const char *title, const char *query, const char *agent,
			   const char *response, const char *metadata);

/*
 * What the coordinator knows about a job's product and conversation, as rows (kind, title,
 * body, extra, status), in this order: kind 'product' (name, description) when product_id is
 * a product of tenant_id that user_id may view; kind 'submission' (phase_name, form_data as
 * JSON text, generated_content, status) of that product by phase order; kind 'history'
 * (message_type, content, agent_name), newest first, at most 50: the product's messages in the
 * tenant, or without a product those of the user's product-less session (session_id when it
 * is one, else the latest). NULL on error.
 */
PGresult *jobs_context(struct ctx *c, const char *tenant_id, const char *user_id,
		       const char *product_id, const char *session_id);

/* The messages (message_type, agent_name, content) of the sessions named in session_ids (a
 * JSON array text) that belong to product_id in tenant_id, which user_id may view; oldest
 * first. NULL on error. */
PGresult *jobs_transcript(struct ctx *c, const char *tenant_id, const char *user_id,
			  const char *product_id, const char *session_ids);

/* The summary text and the score (scoring_data JSON text, overall_score) named by summary_id
 * and score_id (either may be NULL) of product_id in tenant_id: one row (summary, scoring,
 * overall), NULLs for what is not named or not found. NULL on error. */
PGresult *jobs_feature_inputs(struct ctx *c, const char *tenant_id, const char *product_id,
			      const char *summary_id, const char *score_id);

/*
 * Stores the answer of a feature job (API.md 1.10) and returns the route's response (JSON
 * text, c's arena): kind "summarize" (product_summaries, multi_session, session_ids from
 * request), "score" (product_idea_scores from score, a JSON object text {overall_score,
 * success_probability, dimensions, recommendations, success_factors, risk_factors}),
 * "generate_prd" (product_prd_documents {content, template}, summary_id and score_id from
 * request). Runs on the caller's transaction. NULL on error (c->rc set).
 */
const char *jobs_store_feature(struct ctx *c, const char *kind, const char *tenant_id,
			       const char *user_id, const char *product_id,
			       struct json_object *request, const char *answer, const char *score);

/* Jobs waiting in the queue (pending), -1 on error. */
int64_t jobs_pending(struct ctx *c);

#endif
