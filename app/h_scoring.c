/* h_scoring.c - product sessions, summaries, scores and the standardized PRD (API.md 1.10),
 * and the agents' usage statistics (API.md 6.3).
 *
 * The original checked the product only on generate-prd and took any tenant id on the tenant
 * scores (API.md 8.1 item 2). Here every statement carries the caller's tenant and access:
 * a product the caller cannot view, or another tenant's (product, summary, score, tenant id),
 * is 404, the same answer as a missing one; a product of the caller's tenant that is neither
 * owned nor shared is 403. generate-prd writes, so it needs ownership or an edit/admin share.
 *
 * summarize, score and generate-prd are AI work: they enqueue an agentd job (kinds
 * summarize, score, generate_prd of sql/0006) and answer with its result through
 * X-Accel-Redirect (ai_job_wait), which agentd stores together with the row it writes
 * (product_summaries, product_idea_scores, product_prd_documents): no API thread waits on a
 * provider.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../lib/arena.h"
#include "agents.h"
#include "ai_routes.h"
#include "products.h"

#define SUMMARIZE_MAX_SESSIONS 100 /* session ids in one summarize body */

/* The product of the path when the caller may view it (need_edit: edit it); else the
 * refusal is recorded and NULL returned. */
static const char *product_for(struct req *r, bool need_edit)
{
	const char *id = req_path_uuid(r, "id");
	if (!id)
		return NULL;
	int lvl = prod_level(r, id);
	if (lvl < 0)
		return NULL;
	if (lvl == PL_NONE) {
		req_fail(r, RC_NOTFOUND, "Product not found or access denied");
		return NULL;
	}
	if (lvl == PL_TENANT || (need_edit && lvl < PL_EDIT)) {
		req_fail(r, RC_FORBIDDEN,
			 need_edit ? "Edit access to the product is required"
				   : "Access denied to product");
		return NULL;
	}
	return id;
}

int h_scoring_sessions(struct req *r)
{
	const char *id = req_path_uuid(r, "id");
	if (!id)
		return r->rc;
	const char *p[] = {id, r->auth.tenant_id, r->auth.user_id};
	/* clang-format off */
	const char *json = db_value(
		&r->c, NULL,
		"SELECT json_build_object('sessions', coalesce((SELECT json_agg(json_build_object("
		" 'id', s.id, 'title', s.title, 'created_at', s.created_at,"
		" 'updated_at', s.updated_at,"
		" 'message_count', (SELECT count(*) FROM conversation_history h"
		"   WHERE h.session_id = s.id AND h.tenant_id = s.tenant_id),"
		" 'agent_roles', coalesce((SELECT json_agg(DISTINCT h.agent_role)"
		"   FROM conversation_history h WHERE h.session_id = s.id"
		"   AND h.tenant_id = s.tenant_id AND h.agent_role IS NOT NULL), '[]'::json))"
		" ORDER BY s.updated_at DESC, s.id)"
		" FROM conversation_sessions s WHERE s.product_id = p.id AND s.tenant_id = p.tenant_id),"
		" '[]'::json))"
		" FROM products p WHERE p.id = $1 AND p.tenant_id = $2 AND " SQL_CAN_VIEW("p", "$3"),
		3, p);
	/* clang-format on */
	return prod_json_or_refuse(r, json, id);
}

/* The body of summarize: a JSON array of 1..100 session UUIDs (API.md 1.10). */
int h_scoring_summarize(struct req *r)
{
	const char *id = product_for(r, false);
	if (!id)
		return r->rc;
	struct json_object *ids = r->body ? jx_parse(r->body, r->body_len, 4) : NULL;
	if (ids)
		jx_arena_own(r->a, ids);
	size_t n = ids && json_object_is_type(ids, json_type_array) ? json_object_array_length(ids)
								    : 0;
	if (n == 0 || n > SUMMARIZE_MAX_SESSIONS)
		return req_fail_field(r, "body", NULL, "value_error",
				      "The body is a JSON array of 1 to 100 session ids");
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(ids, i);
		if (!json_object_is_type(e, json_type_string) ||
		    !jx_is_uuid(json_object_get_string(e)))
			return req_fail_field(r, "body", NULL, "uuid_parsing",
					      "Input should be a valid UUID");
	}
	/* every session is one of this product's, in this tenant */
	const char *p[] = {id, r->auth.tenant_id, jx_str(ids, NULL)};
	const char *ok = db_value(
		&r->c, NULL,
		"SELECT count(DISTINCT s.id) = (SELECT count(DISTINCT x) FROM"
		" jsonb_array_elements_text($3::jsonb) x)"
		" FROM conversation_sessions s WHERE s.product_id = $1 AND s.tenant_id = $2"
		" AND s.id::text IN (SELECT jsonb_array_elements_text($3::jsonb))",
		3, p);
	if (!ok)
		return r->rc;
	if (strcmp(ok, "t") != 0)
		return req_fail(r, RC_NOTFOUND, "Session not found");
	struct json_object *o = json_object_new_object();
	jx_arena_own(r->a, o);
	json_object_object_add(o, "product_id", json_object_new_string(id));
	json_object_object_add(o, "session_ids", json_object_get(ids));
	return ai_job_wait(r, "summarize", id, o);
}

/* An optional query UUID that must name a row of table (product_summaries or
 * product_idea_scores) of this product and tenant: 404 otherwise. *out NULL when absent. */
static int product_row(struct req *r, const char *name, const char *table, const char *id,
		       const char **out)
{
	int rc = req_query_uuid(r, name, out);
	if (rc != RC_OK || !*out)
		return rc;
	const char *p[] = {*out, id, r->auth.tenant_id};
	bool found;
	db_value(&r->c, &found,
		 arena_printf(r->a,
			      "SELECT 1 FROM %s WHERE id = $1 AND product_id = $2"
			      " AND tenant_id = $3",
			      table),
		 3, p);
	if (r->rc != RC_OK)
		return r->rc;
	if (!found)
		return req_fail(r, RC_NOTFOUND,
				strcmp(name, "summary_id") == 0 ? "Summary not found"
								: "Score not found");
	return RC_OK;
}

int h_scoring_score(struct req *r)
{
	const char *id = product_for(r, false);
	if (!id)
		return r->rc;
	const char *summary = NULL;
	int rc = product_row(r, "summary_id", "product_summaries", id, &summary);
	if (rc != RC_OK)
		return rc;
	struct json_object *o = json_object_new_object();
	jx_arena_own(r->a, o);
	json_object_object_add(o, "product_id", json_object_new_string(id));
	json_object_object_add(o, "summary_id", summary ? json_object_new_string(summary) : NULL);
	return ai_job_wait(r, "score", id, o);
}

int h_scoring_generate_prd(struct req *r)
{
	const char *id = product_for(r, true);
	if (!id)
		return r->rc;
	const char *summary = NULL, *score = NULL;
	int rc = product_row(r, "summary_id", "product_summaries", id, &summary);
	if (rc == RC_OK)
		rc = product_row(r, "score_id", "product_idea_scores", id, &score);
	if (rc != RC_OK)
		return rc;
	struct json_object *o = json_object_new_object();
	jx_arena_own(r->a, o);
	json_object_object_add(o, "product_id", json_object_new_string(id));
	json_object_object_add(o, "summary_id", summary ? json_object_new_string(summary) : NULL);
	json_object_object_add(o, "score_id", score ? json_object_new_string(score) : NULL);
	return ai_job_wait(r, "generate_prd", id, o);
}

#define SCORE_JSON(EXTRA)                                                              \
	"json_build_object('id', s.id, " EXTRA "'overall_score', s.overall_score,"     \
	" 'success_probability', s.success_probability, 'dimensions', s.scoring_data," \
	" 'recommendations', s.recommendations, 'success_factors', s.success_factors," \
	" 'risk_factors', s.risk_factors, 'scoring_criteria', s.scoring_criteria,"     \
	" 'created_at', s.created_at, 'updated_at', s.updated_at)"

/* A tenant_id in the query other than the caller's is another tenant's: 404. */
static bool tenant_query_ok(struct req *r)
{
	const char *t = NULL;
	if (req_query_uuid(r, "tenant_id", &t) != RC_OK)
		return false;
	if (t && strcasecmp(t, r->auth.tenant_id) != 0) {
		req_fail(r, RC_NOTFOUND, "Product not found or access denied");
		return false;
	}
	return true;
}

int h_scoring_scores(struct req *r)
{
	const char *id = req_path_uuid(r, "id");
	if (!id || !tenant_query_ok(r))
		return r->rc;
	const char *p[] = {id, r->auth.tenant_id, r->auth.user_id};
	/* clang-format off */
	const char *json = db_value(
		&r->c, NULL,
		"SELECT json_build_object('scores', coalesce((SELECT json_agg(" SCORE_JSON("")
		" ORDER BY s.created_at DESC, s.id) FROM product_idea_scores s"
		" WHERE s.product_id = p.id AND s.tenant_id = p.tenant_id), '[]'::json))"
		" FROM products p WHERE p.id = $1 AND p.tenant_id = $2 AND " SQL_CAN_VIEW("p", "$3"),
		3, p);
	/* clang-format on */
	return prod_json_or_refuse(r, json, id);
}

/* The scores of the products of the caller's tenant the caller can view; any other tenant id
 * is 404 (the original accepted any). */
int h_scoring_tenant_scores(struct req *r)
{
	const char *tenant = req_path_uuid(r, "tenant_id");
	if (!tenant)
		return r->rc;
	if (strcasecmp(tenant, r->auth.tenant_id) != 0)
		return req_fail(r, RC_NOTFOUND, "Tenant not found");
	const char *p[] = {r->auth.tenant_id, r->auth.user_id};
	/* clang-format off */
	const char *json = db_value(
		&r->c, NULL,
		"SELECT json_build_object('scores', coalesce(json_agg(" SCORE_JSON(
			"'product_id', p.id, 'product_name', p.name, ")
		" ORDER BY s.created_at DESC, s.id), '[]'::json), 'tenant_id', $1::uuid)"
		" FROM product_idea_scores s JOIN products p ON p.id = s.product_id"
		" AND p.tenant_id = s.tenant_id"
		" WHERE s.tenant_id = $1 AND " SQL_CAN_VIEW("p", "$2"),
		2, p);
	/* clang-format on */
	if (!json)
		return r->rc;
	return res_json_text(r, 200, json, strlen(json));
}

/*
 * GET /api/agents/usage-stats (API.md 6.3) for the caller's tenant, from the jobs themselves:
 * every agent_complete event of the tenant's jobs (the latest run of each) is one use of its
 * agent, with the processing time, tokens and cache hit agentd measured. Every roster agent
 * is listed (unused ones with 0), by usage. usage_by_phase counts the multi-agent jobs by the
 * phase of their request; usage_trend the uses per day over the last 30 days.
 */
int h_agents_usage_stats(struct req *r)
{
	struct json_object *roster = json_object_new_array();
	jx_arena_own(r->a, roster);
	for (size_t i = 0; i < agent_roster_n; i++) {
		struct json_object *e = json_object_new_object();
		json_object_object_add(e, "k", json_object_new_string(agent_roster[i].key));
		json_object_object_add(e, "n", json_object_new_string(agent_roster[i].name));
		json_object_array_add(roster, e);
	}
	const char *p[] = {r->auth.tenant_id, jx_str(roster, NULL)};
	const char *json = db_value(
		&r->c, NULL,
		"WITH ev AS ("
		" SELECT e.data, e.created_at, j.request FROM agent_job_events e"
		" JOIN agent_jobs j ON j.id = e.job_id"
		" WHERE j.tenant_id = $1::uuid AND e.event = 'agent_complete'"
		" AND e.attempt = (SELECT max(x.attempt) FROM agent_job_events x"
		"  WHERE x.job_id = e.job_id)),"
		" u AS ("
		" SELECT data->>'agent' AS agent, count(*) AS n, max(created_at) AS last_used,"
		" sum(coalesce((data->'metadata'->>'processing_time')::numeric, 0)) AS t,"
		" sum(coalesce((data->'metadata'->'tokens'->>'total')::bigint, 0)) AS tok,"
		" count(*) FILTER (WHERE (data->'metadata'->>'cache_hit')::boolean) AS hits"
		" FROM ev GROUP BY 1),"
		" tot AS (SELECT coalesce(sum(n), 0) AS n FROM u),"
		" a AS ("
		" SELECT r.k, r.n AS name, coalesce(u.n, 0) AS n, u.last_used, coalesce(u.t, 0) AS t,"
		" coalesce(u.tok, 0) AS tok, coalesce(u.hits, 0) AS hits"
		" FROM jsonb_to_recordset($2::jsonb) AS r(k text, n text) LEFT JOIN u ON u.agent = r.k)"
		" SELECT json_build_object("
		" 'total_agents', (SELECT count(*) FROM a),"
		" 'total_usage', (SELECT n FROM tot),"
		" 'agents', (SELECT coalesce(json_agg(json_build_object("
		"  'agent_name', a.name, 'agent_role', a.k, 'usage_count', a.n,"
		"  'usage_percentage', CASE WHEN (SELECT n FROM tot) > 0"
		"   THEN round(a.n * 100.0 / (SELECT n FROM tot), 2) ELSE 0 END,"
		"  'total_interactions', a.n, 'last_used', a.last_used,"
		"  'avg_processing_time', CASE WHEN a.n > 0 THEN round(a.t / a.n, 3) ELSE 0 END,"
		"  'total_processing_time', round(a.t, 3),"
		"  'cache_hit_rate', CASE WHEN a.n > 0 THEN round(a.hits * 100.0 / a.n, 2) ELSE 0 END,"
		"  'total_tokens', a.tok) ORDER BY a.n DESC, a.k), '[]'::json) FROM a),"
		" 'usage_by_phase', (SELECT coalesce(json_object_agg(ph, n), '{}'::json) FROM ("
		"  SELECT coalesce(j.request->'context'->>'phase_name', j.request->>'phase_name') AS ph,"
		"  count(*) AS n FROM agent_jobs j WHERE j.tenant_id = $1::uuid"
		"  AND coalesce(j.request->'context'->>'phase_name', j.request->>'phase_name')"
		"  IS NOT NULL GROUP BY 1) b),"
		" 'usage_trend', (SELECT coalesce(json_agg(json_build_object('date', d, 'count', n)"
		"  ORDER BY d), '[]'::json) FROM (SELECT created_at::date AS d, count(*) AS n FROM ev"
		"  WHERE created_at > now() - interval '30 days' GROUP BY 1) t))",
		2, p);
	if (!json)
		return r->rc;
	return res_json_text(r, 200, json, strlen(json));
}
