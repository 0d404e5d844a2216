/* h_health.c - service info and health (API.md 1.1 and 6.1), honest about dependencies. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ai.h"
#include "app.h"

/* ISO-8601 UTC timestamp with microseconds, as the original's datetime.utcnow().isoformat(). */
json_object *app_now_iso(void)
{
	char buf[40];
	int64_t us = wall_us();
	time_t s = (time_t)(us / 1000000);
	struct tm tm;
	gmtime_r(&s, &tm);
	size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, sizeof(buf) - n, ".%06lld", (long long)(us % 1000000));
	return json_object_new_string(buf);
}

int h_root(struct req *r)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name",
			       json_object_new_string("IdeaForge AI - Agentic PM Platform API"));
	json_object_object_add(o, "version", json_object_new_string(PACKAGE_VERSION));
	json_object_object_add(o, "status", json_object_new_string("operational"));
	json_object *docs = json_object_new_object();
	json_object_object_add(docs, "swagger_ui", json_object_new_string("/api/docs"));
	json_object_object_add(docs, "redoc", json_object_new_string("/api/redoc"));
	json_object_object_add(docs, "openapi_json", json_object_new_string("/api/openapi.json"));
	json_object_object_add(o, "docs", docs);
	json_object *ep = json_object_new_object();
	static const char *const eps[][2] = {
		{"health", "/health"},
		{"authentication", "/api/auth"},
		{"users", "/api/users"},
		{"products", "/api/products"},
		{"conversations", "/api/conversations"},
		{"agents", "/api/agents"},
		{"multi_agent", "/api/multi-agent"},
	};
	for (size_t i = 0; i < sizeof(eps) / sizeof(eps[0]); i++)
		json_object_object_add(ep, eps[i][0], json_object_new_string(eps[i][1]));
	json_object_object_add(o, "endpoints", ep);
	return res_json(r, 200, o);
}

/* True when PostgreSQL answers SELECT 1 through this worker's pool. */
static bool db_ok(struct req *r)
{
	bool found = false;
	const char *v = db_value(&r->c, &found, "SELECT 1", 0, NULL);
	bool ok = v && found;
	/* a failed probe must not turn the health answer into an error response */
	r->rc = RC_OK;
	r->detail[0] = '\0';
	return ok;
}

static bool redis_ok(struct req *r)
{
	redisReply *rep = kv_cmd(r->t->kv, "PING");
	bool ok = rep && rep->type == REDIS_REPLY_STATUS;
	if (rep)
		freeReplyObject(rep);
	return ok;
}

int h_health(struct req *r)
{
	bool db = db_ok(r);
	bool redis = redis_ok(r);
	json_object *o = json_object_new_object();
	json_object_object_add(
		o, "status",
		json_object_new_string(!db ? "unhealthy" : (redis ? "healthy" : "degraded")));
	json_object_object_add(o, "timestamp", app_now_iso());
	json_object_object_add(o, "version", json_object_new_string(PACKAGE_VERSION));
	json_object *s = json_object_new_object();
	json_object_object_add(s, "api", json_object_new_boolean(1));
	json_object_object_add(s, "database", json_object_new_boolean(db));
	json_object_object_add(s, "redis", json_object_new_boolean(redis));
	/* a server-wide provider (a key, or a keyless local server); users may add their own */
	json_object_object_add(s, "openai",
			       json_object_new_boolean(ai_server_has(app_cfg(r), LLM_OPENAI)));
	json_object_object_add(s, "anthropic",
			       json_object_new_boolean(ai_server_has(app_cfg(r), LLM_ANTHROPIC)));
	json_object_object_add(s, "google",
			       json_object_new_boolean(ai_server_has(app_cfg(r), LLM_GEMINI)));
	json_object_object_add(o, "services", s);
	if (!db)
		res_header(r, "Retry-After", "1");
	return res_json(r, db ? 200 : 503, o);
}

int h_health_live(struct req *r)
{
	static const char body[] = "{\"status\":\"alive\"}";
	return res_json_text(r, 200, body, sizeof(body) - 1);
}

/* The schema version the database is at: the highest applied migration, 0 when none (or the
 * table is missing); -1 when the database cannot be asked. */
static int schema_version(struct req *r)
{
	bool found = false;
	const char *v =
		db_value(&r->c, &found,
			 "SELECT coalesce(max(version)::int, 0) FROM schema_migrations", 0, NULL);
	if (!v) {
		/* 42P01: no schema_migrations yet, a database never migrated */
		bool missing = strcmp(r->db_sqlstate, "42P01") == 0;
		ctx_clear(&r->c);
		return missing ? 0 : -1;
	}
	return atoi(v);
}

int h_health_ready(struct req *r)
{
	if (!db_ok(r)) {
		static const char body[] =
			"{\"status\":\"not_ready\",\"detail\":\"Database unavailable\"}";
		res_header(r, "Retry-After", "1");
		return res_json_text(r, 503, body, sizeof(body) - 1);
	}
	int have = schema_version(r);
	if (have >= 0 && have < APP_SCHEMA_VERSION) {
		char body[256];
		int n = snprintf(
			body, sizeof(body),
			"{\"status\":\"not_ready\",\"detail\":\"Database schema is at "
			"migration %04d, this version needs %04d: run ideaforgectl migrate\","
			"\"schema_version\":%d,\"schema_required\":%d}",
			have, APP_SCHEMA_VERSION, have, APP_SCHEMA_VERSION);
		res_header(r, "Retry-After", "5");
		return res_json_text(r, 503, body, (size_t)n);
	}
	static const char body[] = "{\"status\":\"ready\"}";
	return res_json_text(r, 200, body, sizeof(body) - 1);
}
