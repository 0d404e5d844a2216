/* h_ai.c - the AI routes: agent jobs, their streams and answers, providers (API.md 1.7 to 1.9,
 * 4.5, 5.7; issue 11). See app/ai_routes.h for the design: these handlers authenticate (the
 * middleware), validate (the route table's contracts, then the members a table cannot
 * describe), check that the user has a provider (ai_choose), enqueue a row of agent_jobs and
 * answer at once. ideaforge-agentd does the work and serves the streams; nginx joins them to
 * the request through X-Accel-Redirect (its internal /_agentd/ location).
 *
 * The contract with agentd (sql/0004_agent_jobs.sql):
 *   kind 'multi_agent'      request = MultiAgentRequest + "stream": bool, user_id the owner's
 *   kind 'phase_form_help'  request = the body of API.md 1.9, with its defaults filled in
 *   kind 'agent'            request = AgentRequest (API.md 1.7), user_id the owner's
 *   /_agentd/jobs/<id>/events?format=named|data   the job's SSE (Last-Event-ID forwarded)
 *   /_agentd/jobs/<id>/wait?shape=multi_agent|agent   the finished answer as one JSON body
 *   /_agentd/jobs/<id>/wait?shape=file   a stored document as a download (export_prd)
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "../lib/arena.h"
#include "../lib/llm.h"
#include "ai.h"
#include "agents.h"
#include "ai_routes.h"
#include "products.h"

#define KEY_MAX_BYTES 4096              /* a provider key (as app/h_keys.c) */
#define URL_MAX_BYTES 2048              /* a base URL */
#define AGENT_KEY_MAX 64                /* an agent's key ("research") */
#define QUERY_MAX_BYTES (128u << 10)    /* a multi-agent query */
#define PROMPT_MAX_BYTES (16u << 10)    /* phase help: the field's prompt */
#define INPUT_MAX_BYTES (64u << 10)     /* phase help: the user's draft, the summary */
#define MESSAGES_MAX_BYTES (192u << 10) /* an AgentRequest's conversation */
#define MESSAGES_MAX 100                /* its messages */
#define SUPPORTING_MAX 8                /* supporting_agents named by a client */
#define VERIFY_TIMEOUT_MS 5000          /* the whole verification call */
#define CAP_RETRY_AFTER "10"            /* seconds, on the per-user job cap */

/* ---------------------------------------------------------------- body contracts */

static const char *const coordination_modes[] = {
	"sequential", "parallel", "collaborative", "debate", "enhanced_collaborative", NULL};
static const char *const response_lengths[] = {"short", "verbose", NULL};

/* MultiAgentRequest. user_id is accepted for compatibility and replaced by the session's. */
const struct jx_field multi_agent_fields[] = {
	{"user_id", JX_ANY, JX_NULLABLE, IGNORED_MAX_BYTES, NULL},
	{"product_id", JX_UUID, JX_NULLABLE, 0, NULL},
	{"query", JX_STR, JX_REQUIRED, QUERY_MAX_BYTES, NULL},
	{"coordination_mode", JX_ENUM, JX_NULLABLE, 0, coordination_modes},
	{"primary_agent", JX_STR, JX_NULLABLE, AGENT_KEY_MAX, NULL},
	{"supporting_agents", JX_ARR, JX_NULLABLE, 4096, NULL},
	{"context", JX_OBJ, JX_NULLABLE, META_MAX_BYTES, NULL},
	{NULL, 0, 0, 0, NULL},
};

/* The request member is checked against multi_agent_fields by the handler. */
const struct jx_field job_submit_fields[] = {
	{"request", JX_OBJ, JX_REQUIRED, 0, NULL},
	{NULL, 0, 0, 0, NULL},
};

const struct jx_field agent_request_fields[] = {
	{"user_id", JX_ANY, JX_NULLABLE, IGNORED_MAX_BYTES, NULL},
	{"product_id", JX_UUID, JX_NULLABLE, 0, NULL},
	{"agent_type", JX_STR, JX_REQUIRED, AGENT_KEY_MAX, NULL},
	{"messages", JX_ARR, JX_REQUIRED, MESSAGES_MAX_BYTES, NULL},
	{"context", JX_OBJ, JX_NULLABLE, META_MAX_BYTES, NULL},
	{NULL, 0, 0, 0, NULL},
};

const struct jx_field phase_help_fields[] = {
	{"product_id", JX_UUID, JX_REQUIRED, 0, NULL},
	{"phase_id", JX_STR, JX_REQUIRED, 128, NULL},
	{"phase_name", JX_STR, JX_REQUIRED, 256, NULL},
	{"current_field", JX_STR, JX_REQUIRED, 256, NULL},
	{"current_prompt", JX_STR, JX_REQUIRED, PROMPT_MAX_BYTES, NULL},
	{"user_input", JX_STR, JX_NULLABLE, INPUT_MAX_BYTES, NULL},
	{"response_length", JX_ENUM, JX_NULLABLE, 0, response_lengths},
	{"conversation_summary", JX_STR, JX_NULLABLE, INPUT_MAX_BYTES, NULL},
	{NULL, 0, 0, 0, NULL},
};

/* provider is checked by hand (400 "Unsupported provider", as the original). verify_ssl and
 * client_secret are accepted and ignored (TLS is always verified; ai_gateway is not
 * verifiable here). */
const struct jx_field provider_verify_fields[] = {
	{"provider", JX_STR, JX_REQUIRED, 64, NULL},
	{"api_key", JX_STR, JX_REQUIRED, KEY_MAX_BYTES, NULL},
	{"base_url", JX_STR, JX_NULLABLE, URL_MAX_BYTES, NULL},
	{"verify_ssl", JX_BOOL, JX_NULLABLE, 0, NULL},
	{"client_secret", JX_STR, JX_NULLABLE, KEY_MAX_BYTES, NULL},
	{NULL, 0, 0, 0, NULL},
};

const struct jx_field provider_configure_fields[] = {
	{"openaiKey", JX_STR, JX_NULLABLE, KEY_MAX_BYTES, NULL},
	{"claudeKey", JX_STR, JX_NULLABLE, KEY_MAX_BYTES, NULL},
	{"geminiKey", JX_STR, JX_NULLABLE, KEY_MAX_BYTES, NULL},
	{"v0Key", JX_STR, JX_NULLABLE, KEY_MAX_BYTES, NULL},
	{"lovableKey", JX_STR, JX_NULLABLE, KEY_MAX_BYTES, NULL},
	{"aiGatewayClientId", JX_STR, JX_NULLABLE, 256, NULL},
	{"aiGatewayClientSecret", JX_STR, JX_NULLABLE, KEY_MAX_BYTES, NULL},
	{"aiGatewayBaseUrl", JX_STR, JX_NULLABLE, URL_MAX_BYTES, NULL},
	{"aiGatewayDefaultModel", JX_STR, JX_NULLABLE, 256, NULL},
	{NULL, 0, 0, 0, NULL},
};

/* ---------------------------------------------------------------- start-up */

int ai_routes_init(const struct app_config *cfg)
{
	/* lib/llm.h: the program's job, once per process before threads start (reference
	 * counted by libcurl, so a second caller in the same process is harmless) */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		log_msg(LL_ERROR, NULL, "curl_global_init failed: provider verification will fail");
	/* the server-wide provider keys were read by the master (app/main.c: an unreadable key
	 * file refuses the start), before this worker was forked */
	(void)cfg;
	return 0;
}

/* ---------------------------------------------------------------- shared helpers */

/* RC_OK when the user has a provider to run AI work with, else the 400 of ai_choose ("No AI
 * provider is configured: ...") or a database error. The chosen key is not kept: agentd
 * chooses again, for the call itself. */
static int ai_ready(struct req *r)
{
	struct ai_choice choice;
	return ai_choose(&r->c, app_cfg(r), LLM__MAX, &choice);
}

/* An agent key as a client may name it: 1..64 of [A-Za-z0-9_-]. */
static bool agent_key_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > AGENT_KEY_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

/* Adds key: value of in (a new reference) to out, or JSON null when absent. */
static void copy_member(struct json_object *out, struct json_object *in, const char *key)
{
	struct json_object *v = jx_get(in, key);
	json_object_object_add(out, key, v ? json_object_get(v) : NULL);
}

static struct json_object *new_owned_object(struct req *r)
{
	struct json_object *o = json_object_new_object();
	jx_arena_own(r->a, o);
	return o;
}

/* The job request of a MultiAgentRequest in (already checked against multi_agent_fields):
 * only the members of the contract, defaults filled in, user_id the session's. Owned by the
 * arena. NULL after a 422. */
static struct json_object *multi_agent_job(struct req *r, struct json_object *in, bool stream)
{
	if (!str_has_text(jx_get_str(in, "query"))) {
		req_fail_blank(r, "query");
		return NULL;
	}
	const char *primary = jx_get_str(in, "primary_agent");
	if (primary && *primary && !agent_key_ok(primary)) {
		req_fail_field(r, "body", "primary_agent", "value_error",
			       "Agent names are 1 to 64 letters, digits, '_' or '-'");
		return NULL;
	}
	struct json_object *sup_in = jx_get(in, "supporting_agents");
	struct json_object *sup = NULL;
	if (sup_in && json_object_is_type(sup_in, json_type_array)) {
		size_t n = json_object_array_length(sup_in);
		if (n > SUPPORTING_MAX) {
			req_fail_field(r, "body", "supporting_agents", "too_long",
				       "At most 8 supporting agents");
			return NULL;
		}
		sup = json_object_new_array();
		for (size_t i = 0; i < n; i++) {
			struct json_object *e = json_object_array_get_idx(sup_in, i);
			if (!json_object_is_type(e, json_type_string) ||
			    !agent_key_ok(json_object_get_string(e))) {
				json_object_put(sup);
				req_fail_field(r, "body", "supporting_agents", "value_error",
					       "Agent names are 1 to 64 letters, digits, '_' or "
					       "'-'");
				return NULL;
			}
			json_object_array_add(sup, json_object_get(e));
		}
	}
	const char *mode = jx_get_str(in, "coordination_mode");
	struct json_object *o = new_owned_object(r);
	json_object_object_add(o, "user_id", json_object_new_string(r->auth.user_id));
	copy_member(o, in, "product_id");
	copy_member(o, in, "query");
	json_object_object_add(o, "coordination_mode",
			       json_object_new_string(mode ? mode : "collaborative"));
	json_object_object_add(o, "primary_agent",
			       primary && *primary ? json_object_new_string(primary) : NULL);
	json_object_object_add(o, "supporting_agents", sup);
	copy_member(o, in, "context");
	json_object_object_add(o, "stream", json_object_new_boolean(stream));
	return o;
}

/*
 * Inserts a pending job of the caller: kind, product_id (NULL for none; else a product the
 * caller can view, 404 "Product not found" otherwise, like a missing one), request (the JSON
 * text). The per-user cap on unfinished jobs (agent_max_concurrent_per_user) is checked and
 * the row inserted under a per-user advisory transaction lock, so concurrent requests of one
 * user cannot both pass a cap with one place left: the second counts after the first
 * committed (READ COMMITTED takes a new snapshot per statement). Over the cap: 429 with
 * Retry-After. The row's trigger wakes the agentds. RC_OK with *out filled, or an error
 * recorded in r.
 */
int ai_job_enqueue(struct req *r, const char *kind, const char *product_id,
		   struct json_object *request, struct job_row *out)
{
	const struct app_config *cfg = app_cfg(r);
	char cap[24], attempts[24];
	snprintf(cap, sizeof(cap), "%lld", (long long)cfg->agent_max_concurrent_per_user);
	snprintf(attempts, sizeof(attempts), "%lld", (long long)cfg->agent_job_max_attempts);
	int rc = db_begin(&r->c);
	if (rc != RC_OK)
		return rc;
	const char *lp[] = {r->auth.user_id};
	if (!db_exec(&r->c, "SELECT pg_advisory_xact_lock(hashtext('agent_jobs/' || $1))", 1, lp))
		goto fail;
	const char *p[] = {r->auth.user_id,       r->auth.tenant_id, product_id, kind,
			   jx_str(request, NULL), attempts,          cap};
	PGresult *res = db_exec(
		&r->c,
		"WITH open AS ("
		" SELECT count(*) AS n FROM agent_jobs"
		" WHERE user_id = $1::uuid AND tenant_id = $2::uuid"
		" AND state IN ('pending', 'processing')),"
		" prod AS ("
		" SELECT p.id FROM products p"
		" WHERE p.id = $3::uuid AND p.tenant_id = $2::uuid"
		" AND " SQL_CAN_VIEW(
			"p",
			"$1::uuid") "),"
				    " ins AS ("
				    " INSERT INTO agent_jobs (tenant_id, user_id, product_id, kind, request, max_attempts)"
				    " SELECT $2::uuid, $1::uuid, $3::uuid, $4, $5::jsonb, $6::int"
				    " WHERE (SELECT n FROM open) < $7::bigint"
				    " AND ($3::uuid IS NULL OR EXISTS (SELECT 1 FROM prod))"
				    " RETURNING id, created_at)"
				    " SELECT (SELECT n FROM open) AS n,"
				    " ($3::uuid IS NULL OR EXISTS (SELECT 1 FROM prod)) AS product_ok,"
				    " ins.id AS id, to_json(ins.created_at) #>> '{}' AS created_at"
				    " FROM (SELECT 1) one LEFT JOIN ins ON true",
		7, p);
	if (!res)
		goto fail;
	out->id = arena_strdup(r->a, db_get(res, 0, "id"));
	out->created_at = arena_strdup(r->a, db_get(res, 0, "created_at"));
	if (!out->id) {
		const char *ok = db_get(res, 0, "product_ok");
		const char *n = db_get(res, 0, "n");
		db_rollback(&r->c);
		if (!ok || strcmp(ok, "t") != 0)
			return req_fail(r, RC_NOTFOUND, "Product not found");
		res_header(r, "Retry-After", CAP_RETRY_AFTER);
		return req_fail(
			r, RC_RATELIMIT,
			"Too many AI jobs in progress: you have %s unfinished (the limit is "
			"%s per user). Wait for one to finish or cancel it, then try again.",
			n ? n : "?", cap);
	}
	rc = db_commit(&r->c);
	if (rc != RC_OK)
		return rc;
	log_msg(LL_INFO, r->rid, "agent job %s queued kind=%s", out->id, kind);
	return RC_OK;
fail:
	rc = r->rc;
	db_rollback(&r->c);
	return rc;
}

/* The answer that hands the request to agentd through nginx: 200, no body. */
static int accel(struct req *r, const char *uri, bool stream)
{
	res_header(r, "X-Accel-Redirect", uri);
	if (stream)
		res_header(r, "X-Accel-Buffering", "no");
	return res_body(r, 200, "text/plain", "", 0);
}

static int accel_events(struct req *r, const char *id, const char *format)
{
	return accel(r, arena_printf(r->a, "/_agentd/jobs/%s/events?format=%s", id, format), true);
}

static int accel_wait(struct req *r, const char *id, const char *shape)
{
	return accel(r, arena_printf(r->a, "/_agentd/jobs/%s/wait?shape=%s", id, shape), false);
}

/* Validates and enqueues the MultiAgentRequest in; *out is the job. */
static int multi_agent_enqueue(struct req *r, struct json_object *in, bool stream,
			       struct job_row *out)
{
	/* validation first (an empty query is 422 whatever the providers); a declined
	 * message ("no", "skip") is answered with the guidance without a provider, so it needs
	 * none (API.md 5.3 step 1, 8.2 item 10) */
	struct json_object *job = multi_agent_job(r, in, stream);
	if (!job)
		return r->rc;
	if (agent_nlu_gate(jx_get_str(in, "query")) != NLU_DECLINE) {
		int rc = ai_ready(r);
		if (rc != RC_OK)
			return rc;
	}
	return ai_job_enqueue(r, "multi_agent", jx_get_str(in, "product_id"), job, out);
}

int ai_job_wait(struct req *r, const char *kind, const char *product_id,
		struct json_object *request)
{
	int rc = ai_ready(r);
	if (rc != RC_OK)
		return rc;
	return ai_job_answer(r, kind, product_id, request, "kind");
}

int ai_provider_ready(struct req *r)
{
	int rc = ai_ready(r);
	if (rc == RC_OK)
		return 1;
	if (rc != RC_BADREQ)
		return -1;
	ctx_clear(&r->c); /* no provider: not an error for the caller */
	return 0;
}

int ai_job_answer(struct req *r, const char *kind, const char *product_id,
		  struct json_object *request, const char *shape)
{
	json_object_object_add(request, "user_id", json_object_new_string(r->auth.user_id));
	struct job_row j;
	int rc = ai_job_enqueue(r, kind, product_id, request, &j);
	return rc != RC_OK ? rc : accel_wait(r, j.id, shape);
}

/* ---------------------------------------------------------------- streams and process */

int h_ai_stream_multi(struct req *r)
{
	struct job_row j;
	int rc = multi_agent_enqueue(r, r->json, true, &j);
	return rc != RC_OK ? rc : accel_events(r, j.id, "named");
}

int h_ai_process_multi(struct req *r)
{
	struct job_row j;
	int rc = multi_agent_enqueue(r, r->json, false, &j);
	return rc != RC_OK ? rc : accel_wait(r, j.id, "multi_agent");
}

int h_ai_stream_phase(struct req *r)
{
	int rc = ai_ready(r);
	if (rc != RC_OK)
		return rc;
	static const char *const required[] = {"phase_id", "phase_name", "current_field",
					       "current_prompt", NULL};
	for (const char *const *f = required; *f; f++)
		if (!str_has_text(jx_get_str(r->json, *f)))
			return req_fail_blank(r, *f);
	struct json_object *o = new_owned_object(r);
	json_object_object_add(o, "user_id", json_object_new_string(r->auth.user_id));
	copy_member(o, r->json, "product_id");
	for (const char *const *f = required; *f; f++)
		copy_member(o, r->json, *f);
	copy_member(o, r->json, "user_input");
	const char *len = jx_get_str(r->json, "response_length");
	json_object_object_add(o, "response_length", json_object_new_string(len ? len : "short"));
	copy_member(o, r->json, "conversation_summary");
	struct job_row j;
	rc = ai_job_enqueue(r, "phase_form_help", jx_get_str(r->json, "product_id"), o, &j);
	return rc != RC_OK ? rc : accel_events(r, j.id, "data");
}

/* An AgentRequest's messages: 1..100 objects {role: user|assistant|system, content: string,
 * agent_role?, timestamp?}; a copy of only those members, or NULL after a 422. */
static struct json_object *agent_messages(struct req *r, struct json_object *in)
{
	size_t n = json_object_array_length(in);
	if (n == 0 || n > MESSAGES_MAX) {
		req_fail_field(r, "body", "messages", n ? "too_long" : "too_short",
			       n ? "At most 100 messages" : "At least one message is required");
		return NULL;
	}
	struct json_object *out = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		struct json_object *m = json_object_array_get_idx(in, i);
		const char *role = jx_get_str(m, "role");
		const char *content = jx_get_str(m, "content");
		const char *agent_role = jx_get_str(m, "agent_role");
		const char *ts = jx_get_str(m, "timestamp");
		if (!json_object_is_type(m, json_type_object) || !role || !content ||
		    (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0 &&
		     strcmp(role, "system") != 0) ||
		    (agent_role && strlen(agent_role) > AGENT_KEY_MAX) || (ts && strlen(ts) > 64)) {
			json_object_put(out);
			req_fail_field(r, "body", "messages", "value_error",
				       "Each message is {role: user, assistant or system, content: "
				       "string, agent_role?, timestamp?}");
			return NULL;
		}
		struct json_object *c = json_object_new_object();
		copy_member(c, m, "role");
		copy_member(c, m, "content");
		if (agent_role)
			copy_member(c, m, "agent_role");
		if (ts)
			copy_member(c, m, "timestamp");
		json_object_array_add(out, c);
	}
	return out;
}

int h_ai_process_agent(struct req *r)
{
	int rc = ai_ready(r);
	if (rc != RC_OK)
		return rc;
	struct json_object *msgs = agent_messages(r, jx_get(r->json, "messages"));
	if (!msgs)
		return r->rc;
	if (!agent_find(jx_get_str(r->json, "agent_type")))
		return req_fail(r, RC_BADREQ, "Unknown agent type");
	struct json_object *o = new_owned_object(r);
	json_object_object_add(o, "user_id", json_object_new_string(r->auth.user_id));
	copy_member(o, r->json, "product_id");
	copy_member(o, r->json, "agent_type");
	json_object_object_add(o, "messages", msgs);
	copy_member(o, r->json, "context");
	struct job_row j;
	rc = ai_job_enqueue(r, "agent", jx_get_str(r->json, "product_id"), o, &j);
	return rc != RC_OK ? rc : accel_wait(r, j.id, "agent");
}

/* ---------------------------------------------------------------- asynchronous jobs */

int h_ai_job_submit(struct req *r)
{
	struct json_object *in = jx_get(r->json, "request");
	struct json_object *errors = NULL;
	if (!jx_validate(in, multi_agent_fields, false, &errors)) {
		/* report the members where they are: ["body", "request", name] */
		size_t n = json_object_array_length(errors);
		for (size_t i = 0; i < n; i++) {
			struct json_object *e = json_object_array_get_idx(errors, i);
			struct json_object *loc = jx_get(e, "loc");
			struct json_object *nl = json_object_new_array();
			json_object_array_add(nl, json_object_new_string("body"));
			json_object_array_add(nl, json_object_new_string("request"));
			for (size_t k = 1; loc && k < json_object_array_length(loc); k++)
				json_object_array_add(
					nl, json_object_get(json_object_array_get_idx(loc, k)));
			json_object_object_add(e, "loc", nl);
		}
		return req_fail_list(r, errors);
	}
	struct job_row j;
	int rc = multi_agent_enqueue(r, in, false, &j);
	if (rc != RC_OK)
		return rc;
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "job_id", json_object_new_string(j.id));
	json_object_object_add(o, "status", json_object_new_string("pending"));
	json_object_object_add(o, "message", json_object_new_string("Job submitted successfully"));
	json_object_object_add(o, "created_at", json_object_new_string(j.created_at));
	json_object_object_add(o, "estimated_completion_seconds", json_object_new_int(300));
	return res_json(r, 200, o);
}

/* The owner predicate of every job statement below: $1 job id, $2 user, $3 tenant. */
#define JOB_OWNED \
	" FROM agent_jobs WHERE id = $1::uuid AND user_id = $2::uuid AND tenant_id = $3::uuid"

/* The job id of the path as a UUID, or NULL after a 422. */
static const char *job_id(struct req *r)
{
	return req_path_uuid(r, "id");
}

int h_ai_job_status(struct req *r)
{
	const char *id = job_id(r);
	if (!id)
		return r->rc;
	const char *p[] = {id, r->auth.user_id, r->auth.tenant_id};
	bool found;
	const char *json = db_value(
		&r->c, &found,
		"SELECT json_build_object('job_id', id,"
		" 'status', CASE state WHEN 'cancelled' THEN 'failed' ELSE state END,"
		" 'progress', CASE state WHEN 'completed' THEN 1 ELSE progress END,"
		" 'message', CASE state WHEN 'cancelled' THEN 'Job cancelled' ELSE message END,"
		" 'created_at', created_at, 'updated_at', updated_at,"
		" 'estimated_remaining_seconds', CASE"
		" WHEN state IN ('completed', 'failed', 'cancelled') THEN 0"
		" WHEN state = 'processing' AND progress > 0 THEN round((extract(epoch FROM"
		" now() - coalesce(started_at, created_at)) / progress * (1 - progress))::numeric, 1)"
		" END)" JOB_OWNED,
		3, p);
	if (!json)
		return found || r->rc != RC_OK ? (int)r->rc
					       : req_fail(r, RC_NOTFOUND, "Job not found");
	return res_json_text(r, 200, json, strlen(json));
}

int h_ai_job_result(struct req *r)
{
	const char *id = job_id(r);
	if (!id)
		return r->rc;
	const char *p[] = {id, r->auth.user_id, r->auth.tenant_id};
	PGresult *res =
		db_exec(&r->c,
			"SELECT state IN ('pending', 'processing') AS running,"
			" json_build_object('job_id', id,"
			" 'status', CASE state WHEN 'cancelled' THEN 'failed' ELSE state END,"
			" 'result', result,"
			" 'error', CASE state WHEN 'cancelled' THEN 'Job cancelled' ELSE error END,"
			" 'created_at', created_at,"
			" 'completed_at', coalesce(completed_at, updated_at)) AS body" JOB_OWNED,
			3, p);
	if (!res)
		return r->rc;
	if (PQntuples(res) == 0)
		return req_fail(r, RC_NOTFOUND, "Job not found");
	if (strcmp(db_get(res, 0, "running"), "t") == 0) {
		static const char busy[] = "{\"detail\":\"Job is still processing\"}";
		return res_json_text(r, 202, busy, sizeof(busy) - 1);
	}
	const char *body = db_get(res, 0, "body");
	return res_json_text(r, 200, body, strlen(body));
}

/* Cancelling sets the state; the row's trigger NOTIFYs agent_jobs_cancel, and the agentd
 * running it stops the job (its later writes are guarded by the state). */
int h_ai_job_cancel(struct req *r)
{
	const char *id = job_id(r);
	if (!id)
		return r->rc;
	const char *p[] = {id, r->auth.user_id, r->auth.tenant_id};
	bool found;
	db_value(&r->c, &found,
		 "UPDATE agent_jobs SET state = 'cancelled', message = 'Job cancelled',"
		 " error = 'Job cancelled', updated_at = now(), completed_at = now()"
		 " WHERE id = $1::uuid AND user_id = $2::uuid AND tenant_id = $3::uuid"
		 " AND state IN ('pending', 'processing') RETURNING id",
		 3, p);
	if (r->rc != RC_OK)
		return r->rc;
	if (!found) {
		const char *state = db_value(&r->c, &found, "SELECT state" JOB_OWNED, 3, p);
		if (r->rc != RC_OK)
			return r->rc;
		if (!found)
			return req_fail(r, RC_NOTFOUND, "Job not found");
		return req_fail(r, RC_CONFLICT, "Job already finished (%s)", state);
	}
	log_msg(LL_INFO, r->rid, "agent job %s cancelled", id);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "job_id", json_object_new_string(id));
	json_object_object_add(o, "status", json_object_new_string("cancelled"));
	return res_json(r, 200, o);
}

/* A reconnecting client (or one that lost the stream's answer): the same redirect, in the
 * format of the job's kind; nginx forwards Last-Event-ID, agentd replays from there. */
int h_ai_job_events(struct req *r)
{
	const char *id = job_id(r);
	if (!id)
		return r->rc;
	const char *p[] = {id, r->auth.user_id, r->auth.tenant_id};
	bool found;
	const char *kind = db_value(&r->c, &found, "SELECT kind" JOB_OWNED, 3, p);
	if (!kind)
		return found || r->rc != RC_OK ? (int)r->rc
					       : req_fail(r, RC_NOTFOUND, "Job not found");
	return accel_events(r, id, strcmp(kind, "phase_form_help") == 0 ? "data" : "named");
}

/* The caller's own interactions (API.md 1.7 with 8.1 item 1 fixed): the interaction
 * events stored for the caller's jobs (the latest run of each), newest first, the last 20,
 * and how many there are. Never another user's: the owner is in the SQL. */
int h_ai_interactions(struct req *r)
{
	const char *p[] = {r->auth.user_id, r->auth.tenant_id};
	bool found;
	const char *json = db_value(
		&r->c, &found,
		"WITH mine AS ("
		" SELECT e.data, e.created_at, e.job_id, e.seq FROM agent_job_events e"
		" JOIN agent_jobs j ON j.id = e.job_id"
		" WHERE j.user_id = $1::uuid AND j.tenant_id = $2::uuid AND e.event = 'interaction'"
		" AND e.attempt = (SELECT max(x.attempt) FROM agent_job_events x"
		"  WHERE x.job_id = e.job_id))"
		" SELECT json_build_object('interactions', coalesce((SELECT json_agg(i.data || "
		" jsonb_build_object('job_id', i.job_id) ORDER BY i.created_at DESC, i.seq DESC)"
		" FROM (SELECT * FROM mine ORDER BY created_at DESC, seq DESC LIMIT 20) i),"
		" '[]'::json), 'count', (SELECT count(*) FROM mine))",
		2, p);
	if (!json)
		return r->rc != RC_OK ? (int)r->rc : req_fail(r, RC_INTERNAL, "no result");
	return res_json_text(r, 200, json, strlen(json));
}

/* ---------------------------------------------------------------- providers */

static const char *provider_title(enum llm_provider p)
{
	return p == LLM_OPENAI ? "OpenAI" : p == LLM_ANTHROPIC ? "Anthropic" : "Google Gemini";
}

static const char *default_base(const struct app_config *cfg, enum llm_provider p)
{
	return p == LLM_OPENAI      ? cfg->openai_base_url
	       : p == LLM_ANTHROPIC ? cfg->anthropic_base_url
				    : cfg->gemini_base_url;
}

/* An http:// or https:// URL with a host, of printable ASCII without white space, quotes,
 * angle brackets, backslashes, a query or a fragment (the client appends paths to it). */
static bool base_url_ok(const char *s)
{
	const char *h = strncasecmp(s, "https://", 8) == 0  ? s + 8
			: strncasecmp(s, "http://", 7) == 0 ? s + 7
							    : NULL;
	if (!h || !*h || *h == '/' || strlen(s) > URL_MAX_BYTES)
		return false;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if (*c <= 0x20 || *c >= 0x7f || strchr("\"'<>\\`{}|^?#", *c))
			return false;
	return true;
}

/* What a failed verification tells the user: the provider by name, never its text or the
 * key. */
static const char *verify_message(struct req *r, enum llm_provider p, enum llm_status st)
{
	const char *t = provider_title(p);
	switch (st) {
	case LLM_E_AUTH:
		return arena_printf(r->a,
				    "%s rejected the API key. Please check the key and try "
				    "again.",
				    t);
	case LLM_E_QUOTA:
		return arena_printf(r->a,
				    "%s refused the request: rate limit or quota exceeded "
				    "for this key. Try again later.",
				    t);
	case LLM_E_UNREACHABLE:
	case LLM_E_TIMEOUT:
		return arena_printf(r->a,
				    "Unable to reach %s at the configured URL. Check the "
				    "base URL and the network.",
				    t);
	case LLM_E_SERVER:
		return arena_printf(r->a,
				    "%s is failing right now (server error). Try again "
				    "later.",
				    t);
	default:
		return arena_printf(r->a,
				    "%s did not accept the verification request. Check the "
				    "base URL.",
				    t);
	}
}

struct verify_out {
	enum llm_status status; /* outcome */
	int http_status;        /* last HTTP status, 0 when none */
	int64_t total_us;       /* duration */
};

static void verify_done(void *u, const struct llm_result *res)
{
	struct verify_out *v = u;
	v->status = res->status;
	v->http_status = res->http_status;
	v->total_us = res->total_us;
}

/* One cheap real call (list the models) on this thread, bounded by VERIFY_TIMEOUT_MS: the
 * one AI route that waits on a provider, briefly, and rate-limited (RL_AI). */
int h_ai_providers_verify(struct req *r)
{
	const char *name = jx_get_str(r->json, "provider");
	enum llm_provider p = llm_provider_parse(name);
	if (p == LLM__MAX)
		return req_fail(r, RC_BADREQ,
				"Unsupported provider. Must be one of: openai, claude (anthropic), "
				"gemini (google)");
	const char *key = key_body_secret(r);
	if (!key)
		return r->rc;
	const char *base = jx_get_str(r->json, "base_url");
	bool custom = str_has_text(base);
	if (!custom)
		base = default_base(app_cfg(r), p);
	else if (!base_url_ok(base))
		return req_fail(r, RC_BADREQ, "base_url must be an http:// or https:// URL");
	struct verify_out v = {LLM_E_PROTOCOL, 0, 0};
	struct llm_call *call = llm_verify_new(p, base, key, VERIFY_TIMEOUT_MS, verify_done, &v);
	if (!call)
		return req_fail(r, RC_BADREQ, "Cannot verify %s with this base URL",
				provider_title(p));
	llm_call_perform(call);
	llm_call_free(call); /* wipes its copy of the key */
	log_msg(LL_INFO, r->rid,
		"provider verify provider=%s custom_base_url=%s outcome=%s "
		"http=%d dur_ms=%lld",
		llm_provider_name(p), custom ? "yes" : "no", llm_status_str(v.status),
		v.http_status, (long long)(v.total_us / 1000));
	if (v.status != LLM_OK)
		return req_fail(r, RC_BADREQ, "%s", verify_message(r, p, v.status));
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "provider", json_object_new_string(name));
	json_object_object_add(o, "valid", json_object_new_boolean(true));
	json_object_object_add(o, "message",
			       json_object_new_string(arena_printf(r->a, "%s API key is valid",
								   provider_title(p))));
	return res_json(r, 200, o);
}

/* The body members of /api/providers/configure stored as user_api_keys rows. */
static const struct {
	const char *field;    /* body member */
	const char *provider; /* user_api_keys.provider */
} configure_keys[] = {
	{"openaiKey", "openai"},
	{"claudeKey", "anthropic"},
	{"geminiKey", "google"},
	{"v0Key", "v0"},
};

/* A trimmed non-blank optional string member, NULL when absent, null or blank. */
static const char *opt_text(struct req *r, const char *key)
{
	return arena_strtrim(r->a, jx_get_str(r->json, key));
}

/* Keys are stored sealed for this user only (app/h_keys.c key_store); nothing process-wide
 * changes (API.md 8.1 item 3). Lovable keys are deleted, as the original did. */
int h_ai_providers_configure(struct req *r)
{
	const size_t nk = sizeof(configure_keys) / sizeof(configure_keys[0]);
	const char *secret[sizeof(configure_keys) / sizeof(configure_keys[0])];
	for (size_t i = 0; i < nk; i++) {
		const char *raw = jx_get_str(r->json, configure_keys[i].field);
		secret[i] = NULL;
		if (!str_has_text(raw))
			continue;
		secret[i] = key_clean_secret(r->a, raw);
		if (!secret[i])
			return req_fail(r, RC_BADREQ, "%s must be printable ASCII without spaces",
					configure_keys[i].field);
	}
	const char *gw_id = opt_text(r, "aiGatewayClientId");
	const char *gw_raw = opt_text(r, "aiGatewayClientSecret");
	const char *gw_url = opt_text(r, "aiGatewayBaseUrl");
	const char *gw_model = opt_text(r, "aiGatewayDefaultModel");
	const char *gw_secret = NULL;
	struct json_object *gw_meta = NULL;
	if (gw_id || gw_raw) {
		if (!gw_id || !gw_raw)
			return req_fail(r, RC_BADREQ,
					"AI Gateway configuration requires both "
					"aiGatewayClientId and aiGatewayClientSecret");
		gw_secret = key_clean_secret(r->a, gw_raw);
		if (!gw_secret)
			return req_fail(r, RC_BADREQ,
					"aiGatewayClientSecret must be printable "
					"ASCII without spaces");
		if (gw_url && (strncasecmp(gw_url, "https://", 8) != 0 || !base_url_ok(gw_url)))
			return req_fail(r, RC_BADREQ, "aiGatewayBaseUrl must be an https:// URL");
		gw_meta = new_owned_object(r);
		json_object_object_add(gw_meta, "client_id", json_object_new_string(gw_id));
		json_object_object_add(gw_meta, "base_url",
				       gw_url ? json_object_new_string(gw_url) : NULL);
		json_object_object_add(gw_meta, "default_model",
				       gw_model ? json_object_new_string(gw_model) : NULL);
	}
	int rc = db_begin(&r->c);
	if (rc != RC_OK)
		return rc;
	for (size_t i = 0; i < nk; i++)
		if (secret[i] &&
		    !key_store(&r->c, r->auth.user_id, configure_keys[i].provider, secret[i], NULL))
			goto fail;
	if (gw_secret &&
	    !key_store(&r->c, r->auth.user_id, "ai_gateway", gw_secret, jx_str(gw_meta, NULL)))
		goto fail;
	const char *p[] = {r->auth.user_id};
	if (!db_exec(&r->c, "DELETE FROM user_api_keys WHERE user_id = $1 AND provider = 'lovable'",
		     1, p))
		goto fail;
	rc = db_commit(&r->c);
	if (rc != RC_OK)
		return rc;
	struct json_object *list = ai_configured(&r->c, app_cfg(r));
	if (!list)
		return r->rc;
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "configured_providers", list);
	return res_json(r, 200, o);
fail:
	rc = r->rc;
	db_rollback(&r->c);
	return rc;
}

/* What this user's AI work can use now (the Agno runtime of the original is our agentd,
 * always available). */
int h_ai_agno_status(struct req *r)
{
	struct json_object *list = ai_configured(&r->c, app_cfg(r));
	if (!list)
		return r->rc;
	jx_arena_own(r->a, list);
	bool any = json_object_array_length(list) > 0;
	const char *message = "AI agents are ready";
	if (!any) {
		struct ai_choice choice;
		int rc = ai_choose(&r->c, app_cfg(r), LLM__MAX, &choice);
		if (rc == RC_BADREQ) {
			message = arena_strdup(r->a, r->detail);
			ctx_clear(&r->c);
		} else if (rc != RC_OK) {
			return rc;
		}
	}
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "agno_available", json_object_new_boolean(true));
	json_object_object_add(o, "agno_enabled", json_object_new_boolean(true));
	json_object_object_add(o, "providers_configured", json_object_new_boolean(any));
	json_object_object_add(o, "configured_providers", json_object_get(list));
	json_object_object_add(o, "can_initialize", json_object_new_boolean(any));
	json_object_object_add(o, "message", json_object_new_string(message));
	return res_json(r, 200, o);
}

/* Nothing to build per process any more (agents are chosen per job): says whether this
 * user's work would find a provider. */
int h_ai_agno_initialize(struct req *r)
{
	struct ai_choice choice;
	int rc = ai_choose(&r->c, app_cfg(r), LLM__MAX, &choice);
	if (rc != RC_OK)
		return rc;
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "success", json_object_new_boolean(true));
	json_object_object_add(o, "agno_enabled", json_object_new_boolean(true));
	json_object_object_add(
		o, "message",
		json_object_new_string(arena_printf(
			r->a, "AI agents initialized with %s (%s)", provider_title(choice.provider),
			choice.user_key ? "your own key" : "the server's configuration")));
	return res_json(r, 200, o);
}
