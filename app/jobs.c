/* jobs.c - SQL of the agent job queue (see jobs.h). */
#include "jobs.h"
#include "products.h" /* SQL_CAN_VIEW */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/db.h"
#include "../lib/log.h"

/* What a claim returns: the row, and where the job's stored events end, so that a new run
 * numbers its events after them and after every earlier run (see agentd.c, "runs"). */
#define CLAIM_SET                                                                                 \
	"UPDATE agent_jobs SET state = 'processing', lease_owner = $1, "                          \
	"lease_until = now() + make_interval(secs => $2::double precision), "                     \
	"attempts = attempts + 1, started_at = coalesce(started_at, now()), updated_at = now(), " \
	"progress = 0.1, message = 'Starting multi-agent processing...' "
#define CLAIM_RETURNING                                                                            \
	" RETURNING id, tenant_id, user_id, product_id, kind, request, attempts, "                 \
	"(SELECT coalesce(max(e.seq), 0) FROM agent_job_events e WHERE e.job_id = agent_jobs.id) " \
	"AS max_seq, "                                                                             \
	"(SELECT coalesce(max(e.attempt), 0) FROM agent_job_events e "                             \
	"WHERE e.job_id = agent_jobs.id) AS max_run"
#define CLAIMABLE                                                                \
	"(state = 'pending' OR (state = 'processing' AND lease_until < now())) " \
	"AND attempts < max_attempts"

PGresult *jobs_claim(struct ctx *c, const char *owner, int64_t lease_s, const char *job_id)
{
	char lease[24];
	snprintf(lease, sizeof(lease), "%lld", (long long)lease_s);
	if (job_id) {
		const char *p[] = {owner, lease, job_id};
		/* clang-format off */
		return db_exec(c,
			       CLAIM_SET "WHERE id = (SELECT id FROM agent_jobs WHERE id = $3 AND "
			       CLAIMABLE " FOR UPDATE SKIP LOCKED)" CLAIM_RETURNING,
			       3, p);
		/* clang-format on */
	}
	const char *p[] = {owner, lease};
	/* clang-format off */
	return db_exec(c,
		       CLAIM_SET "WHERE id = (SELECT id FROM agent_jobs WHERE " CLAIMABLE
		       " ORDER BY created_at FOR UPDATE SKIP LOCKED LIMIT 1)" CLAIM_RETURNING,
		       2, p);
	/* clang-format on */
}

PGresult *jobs_renew(struct ctx *c, const char *owner, int64_t lease_s)
{
	char lease[24];
	snprintf(lease, sizeof(lease), "%lld", (long long)lease_s);
	const char *p[] = {owner, lease};
	return db_exec(c,
		       "UPDATE agent_jobs SET lease_until = now() + "
		       "make_interval(secs => $2::double precision) "
		       "WHERE lease_owner = $1 AND state = 'processing' RETURNING id",
		       2, p);
}

PGresult *jobs_fail_expired(struct ctx *c)
{
	return db_exec(c,
		       "UPDATE agent_jobs SET state = 'failed', lease_owner = NULL, "
		       "lease_until = NULL, updated_at = now(), completed_at = now(), "
		       "error = 'The job was interrupted ' || attempts || ' times (its agent "
		       "service stopped); giving up', "
		       "message = 'Job failed: interrupted too many times' "
		       "WHERE state = 'processing' AND lease_until < now() "
		       "AND attempts >= max_attempts RETURNING id",
		       0, NULL);
}

int jobs_add_events(struct ctx *c, const char *job_id, const char *owner, int run,
		    const char *events_json)
{
	char r[16];
	snprintf(r, sizeof(r), "%d", run);
	const char *p[] = {job_id, owner, r, events_json};
	if (!db_exec(c,
		     "INSERT INTO agent_job_events (job_id, seq, attempt, event, data) "
		     "SELECT $1, (x->>'seq')::bigint, $3::integer, x->>'event', x->'data' "
		     "FROM jsonb_array_elements($4::jsonb) AS x "
		     "WHERE EXISTS (SELECT 1 FROM agent_jobs WHERE id = $1 AND lease_owner = $2)",
		     4, p))
		return c->rc;
	return RC_OK;
}

/* The rows a job's holder may update: its own lease, while it is processing ($1 id, $2 owner). */
#define OWNED_PROCESSING " WHERE id = $1 AND lease_owner = $2 AND state = 'processing'"

/* Runs sql, an UPDATE of the one row OWNED_PROCESSING selects, with $1 = job_id, $2 = owner
 * and, when arg is not NULL, $3 = arg. *done (when done is not NULL) tells whether the row
 * changed, i.e. whether owner still held the job. RC_OK or the error (ctx_fail done). */
static int update_owned(struct ctx *c, const char *sql, const char *job_id, const char *owner,
			const char *arg, bool *done)
{
	const char *p[] = {job_id, owner, arg};
	PGresult *res = db_exec(c, sql, arg ? 3 : 2, p);
	if (!res)
		return c->rc;
	if (done)
		*done = strcmp(PQcmdTuples(res), "1") == 0;
	return RC_OK;
}

int jobs_complete(struct ctx *c, const char *job_id, const char *owner, const char *result,
		  bool *done)
{
	return update_owned(c,
			    "UPDATE agent_jobs SET state = 'completed', result = $3::jsonb, "
			    "progress = 1, message = 'Job completed', completed_at = now(), "
			    "updated_at = now(), lease_until = NULL" OWNED_PROCESSING,
			    job_id, owner, result, done);
}

int jobs_fail(struct ctx *c, const char *job_id, const char *owner, const char *error, bool *done)
{
	return update_owned(c,
			    "UPDATE agent_jobs SET state = 'failed', error = $3, "
			    "message = 'Job failed: ' || $3, completed_at = now(), "
			    "updated_at = now(), lease_until = NULL" OWNED_PROCESSING,
			    job_id, owner, error, done);
}

int jobs_handback(struct ctx *c, const char *job_id, const char *owner)
{
	return update_owned(
		c,
		"UPDATE agent_jobs SET state = 'pending', lease_owner = NULL, "
		"lease_until = NULL, attempts = greatest(attempts - 1, 0), progress = 0, "
		"message = 'Job queued for processing', updated_at = now()" OWNED_PROCESSING,
		job_id, owner, NULL, NULL);
}

PGresult *jobs_get(struct ctx *c, const char *job_id)
{
	const char *p[] = {job_id};
	return db_exec(c,
		       "SELECT state, kind, attempts, max_attempts, result, error, "
		       "(" CLAIMABLE ") AS claimable, "
		       "(SELECT coalesce(max(e.attempt), 0) FROM agent_job_events e "
		       "WHERE e.job_id = agent_jobs.id) AS max_run "
		       "FROM agent_jobs WHERE id = $1",
		       1, p);
}

PGresult *jobs_events(struct ctx *c, const char *job_id, int run, int64_t after_seq)
{
	char r[16], s[24];
	snprintf(r, sizeof(r), "%d", run);
	snprintf(s, sizeof(s), "%lld", (long long)after_seq);
	const char *p[] = {job_id, r, s};
	return db_exec(
		c,
		"SELECT seq, attempt, event, data FROM agent_job_events "
		"WHERE job_id = $1 AND seq > $3::bigint AND attempt = CASE WHEN $2::integer > 0 "
		"THEN $2::integer ELSE (SELECT max(attempt) FROM agent_job_events "
		"WHERE job_id = $1) END ORDER BY seq",
		3, p);
}

const char *jobs_last_event(struct ctx *c, const char *job_id, const char *event)
{
	const char *p[] = {job_id, event};
	return db_value(c, NULL,
			"SELECT data FROM agent_job_events WHERE job_id = $1 AND event = $2 "
			"ORDER BY seq DESC LIMIT 1",
			2, p);
}

int jobs_save_conversation(struct ctx *c, const char *job_id, const char *tenant_id,
			   const char *user_id, const char *product_id, const char *session_id,
			   const char *title, const char *query, const char *agent,
			   const char *response, const char *metadata)
{
	if (!db_exec(c, "SAVEPOINT save_conversation", 0, NULL))
		return c->rc;
	/* One statement: find or create the session, then the two rows (the agent's a
	 * microsecond after the user's, so the transcript orders them), then mark the job. */
	const char *p[] = {product_id, user_id, tenant_id, session_id, title,
			   query,      agent,   response,  metadata,   job_id};
	PGresult *res = db_exec(
		c,
		"WITH s AS ("
		"  SELECT id FROM ("
		"    SELECT id, 0 AS pri, updated_at FROM conversation_sessions"
		"    WHERE id = $4::uuid AND user_id = $2 AND tenant_id = $3"
		"    UNION ALL"
		"    SELECT id, 1, updated_at FROM conversation_sessions"
		"    WHERE user_id = $2 AND tenant_id = $3"
		"    AND product_id IS NOT DISTINCT FROM $1::uuid"
		"  ) x ORDER BY pri, updated_at DESC LIMIT 1"
		"), n AS ("
		"  INSERT INTO conversation_sessions (user_id, product_id, tenant_id, title)"
		"  SELECT $2, $1::uuid, $3, $5 WHERE NOT EXISTS (SELECT 1 FROM s) RETURNING id"
		"), sid AS (SELECT id FROM s UNION ALL SELECT id FROM n"
		"), u AS ("
		"  INSERT INTO conversation_history (session_id, product_id, tenant_id, message_type,"
		"    content, created_at)"
		"  SELECT id, $1::uuid, $3, 'user', $6, now() FROM sid RETURNING id"
		"), a AS ("
		"  INSERT INTO conversation_history (session_id, product_id, tenant_id, message_type,"
		"    agent_name, agent_role, content, interaction_metadata, created_at)"
		"  SELECT id, $1::uuid, $3, 'agent', $7, $7, $8, $9::jsonb,"
		"    now() + interval '1 microsecond' FROM sid RETURNING id"
		"), t AS (UPDATE conversation_sessions SET updated_at = now()"
		"  WHERE id IN (SELECT id FROM s) RETURNING id"
		") UPDATE agent_jobs SET saved = true WHERE id = $10",
		10, p);
	if (!res) {
		log_msg(LL_WARN, c->rid, "conversation not saved: %s", c->detail);
		PGresult *r2 = PQexec(db_pg(c->db), "ROLLBACK TO SAVEPOINT save_conversation");
		PQclear(r2);
		return c->rc;
	}
	db_exec(c, "RELEASE SAVEPOINT save_conversation", 0, NULL);
	return RC_OK;
}

PGresult *jobs_context(struct ctx *c, const char *tenant_id, const char *user_id,
		       const char *product_id, const char *session_id)
{
	const char *p[] = {tenant_id, user_id, product_id, session_id};
	/* clang-format off */
	return db_exec(
		c,
		"WITH p AS ("
		"  SELECT p.id, p.name, p.description FROM products p"
		"  WHERE p.id = $3::uuid AND p.tenant_id = $1::uuid AND " SQL_CAN_VIEW("p", "$2::uuid")
		"), s AS ("
		"  SELECT id FROM ("
		"    SELECT id, 0 AS pri, updated_at FROM conversation_sessions"
		"    WHERE id = $4::uuid AND user_id = $2::uuid AND tenant_id = $1::uuid"
		"    AND product_id IS NULL"
		"    UNION ALL"
		"    SELECT id, 1, updated_at FROM conversation_sessions"
		"    WHERE user_id = $2::uuid AND tenant_id = $1::uuid AND product_id IS NULL"
		"  ) x WHERE $3::uuid IS NULL ORDER BY pri, updated_at DESC LIMIT 1"
		"), h AS ("
		"  SELECT h.message_type, h.content, coalesce(h.agent_name, '') AS agent_name,"
		"    h.created_at FROM conversation_history h"
		"  WHERE h.tenant_id = $1::uuid AND ("
		"    ($3::uuid IS NOT NULL AND h.product_id IN (SELECT id FROM p))"
		"    OR ($3::uuid IS NULL AND h.session_id IN (SELECT id FROM s)))"
		"  ORDER BY h.created_at DESC, h.id DESC LIMIT 50"
		") SELECT kind, title, body, extra, status FROM ("
		"  SELECT 'product' AS kind, name AS title, coalesce(description, '') AS body,"
		"    '' AS extra, '' AS status, 0 AS grp, 0::bigint AS ord, now() AS at FROM p"
		"  UNION ALL"
		"  SELECT 'submission', ph.phase_name, sb.form_data::text,"
		"    coalesce(sb.generated_content, ''), sb.status, 1, ph.phase_order, sb.updated_at"
		"  FROM phase_submissions sb JOIN product_lifecycle_phases ph ON ph.id = sb.phase_id"
		"  WHERE sb.product_id IN (SELECT id FROM p) AND sb.tenant_id = $1::uuid"
		"  UNION ALL"
		"  SELECT 'history', message_type, content, agent_name, '', 2, 0, created_at FROM h"
		") u ORDER BY grp, ord, at DESC",
		4, p);
	/* clang-format on */
}

PGresult *jobs_transcript(struct ctx *c, const char *tenant_id, const char *user_id,
			  const char *product_id, const char *session_ids)
{
	const char *p[] = {tenant_id, user_id, product_id, session_ids};
	/* clang-format off */
	return db_exec(
		c,
		"SELECT h.message_type, coalesce(h.agent_name, ''), h.content"
		" FROM conversation_history h"
		" JOIN conversation_sessions s ON s.id = h.session_id AND s.tenant_id = h.tenant_id"
		" JOIN products p ON p.id = s.product_id AND p.tenant_id = s.tenant_id"
		" WHERE s.tenant_id = $1::uuid AND p.id = $3::uuid AND " SQL_CAN_VIEW("p", "$2::uuid")
		" AND s.id::text IN (SELECT jsonb_array_elements_text($4::jsonb))"
		" ORDER BY h.created_at, h.id",
		4, p);
	/* clang-format on */
}

PGresult *jobs_feature_inputs(struct ctx *c, const char *tenant_id, const char *product_id,
			      const char *summary_id, const char *score_id)
{
	const char *p[] = {tenant_id, product_id, summary_id, score_id};
	return db_exec(c,
		       "SELECT (SELECT summary_content FROM product_summaries WHERE id = $3::uuid"
		       "  AND product_id = $2::uuid AND tenant_id = $1::uuid) AS summary,"
		       " (SELECT scoring_data::text FROM product_idea_scores WHERE id = $4::uuid"
		       "  AND product_id = $2::uuid AND tenant_id = $1::uuid) AS scoring,"
		       " (SELECT overall_score::text FROM product_idea_scores WHERE id = $4::uuid"
		       "  AND product_id = $2::uuid AND tenant_id = $1::uuid) AS overall",
		       4, p);
}

const char *jobs_store_feature(struct ctx *c, const char *kind, const char *tenant_id,
			       const char *user_id, const char *product_id,
			       struct json_object *request, const char *answer, const char *score)
{
	struct json_object *v;
	const char *sids = json_object_object_get_ex(request, "session_ids", &v)
				   ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN)
				   : "[]";
	const char *summary_id = json_object_object_get_ex(request, "summary_id", &v) && v
					 ? json_object_get_string(v)
					 : NULL;
	const char *score_id = json_object_object_get_ex(request, "score_id", &v) && v
				       ? json_object_get_string(v)
				       : NULL;
	if (strcmp(kind, "summarize") == 0) {
		const char *p[] = {product_id, tenant_id, user_id, sids, answer};
		return db_value(
			c, NULL,
			"WITH ins AS (INSERT INTO product_summaries (product_id, tenant_id,"
			" summary_type, session_ids, summary_content, summary_metadata, created_by)"
			" SELECT $1::uuid, $2::uuid, 'multi_session',"
			" ARRAY(SELECT x::uuid FROM jsonb_array_elements_text($4::jsonb) x), $5,"
			" jsonb_build_object('agent', 'summary'), $3::uuid"
			" RETURNING id, summary_content, created_at)"
			" SELECT json_build_object('summary_id', id, 'summary', summary_content,"
			" 'created_at', created_at) FROM ins",
			5, p);
	}
	if (strcmp(kind, "score") == 0) {
		const char *p[] = {product_id, tenant_id, user_id, score, summary_id};
		return db_value(
			c, NULL,
			"WITH v AS (SELECT $4::jsonb AS s), ins AS ("
			" INSERT INTO product_idea_scores (product_id, tenant_id, overall_score,"
			" success_probability, scoring_data, recommendations, success_factors,"
			" risk_factors, scoring_criteria, created_by)"
			" SELECT $1::uuid, $2::uuid, (s->>'overall_score')::numeric,"
			" (s->>'success_probability')::numeric, s->'dimensions', s->'recommendations',"
			" s->'success_factors', s->'risk_factors',"
			" jsonb_build_object('standards', jsonb_build_array('BCS', 'ICAgile', 'AIPMM',"
			" 'Pragmatic Institute'), 'summary_id', $5::uuid), $3::uuid FROM v"
			" RETURNING *)"
			" SELECT json_build_object('score_id', id, 'overall_score', overall_score,"
			" 'success_probability', success_probability, 'dimensions', scoring_data,"
			" 'recommendations', recommendations, 'success_factors', success_factors,"
			" 'risk_factors', risk_factors, 'created_at', created_at) FROM ins",
			5, p);
	}
	const char *p[] = {product_id, tenant_id, user_id, answer, summary_id, score_id};
	return db_value(
		c, NULL,
		"WITH ins AS (INSERT INTO product_prd_documents (product_id, tenant_id, prd_content,"
		" summary_id, score_id, created_by) VALUES ($1::uuid, $2::uuid,"
		" jsonb_build_object('content', $4::text, 'template', 'industry_standard'),"
		" $5::uuid, $6::uuid, $3::uuid) RETURNING id, prd_content, created_at)"
		" SELECT json_build_object('prd_id', id, 'prd_content', prd_content,"
		" 'created_at', created_at) FROM ins",
		6, p);
}

int64_t jobs_pending(struct ctx *c)
{
	const char *v = db_value(c, NULL, "SELECT count(*) FROM agent_jobs WHERE state = 'pending'",
				 0, NULL);
	return v ? strtoll(v, NULL, 10) : -1;
}
