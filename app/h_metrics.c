/* h_metrics.c - status page, Prometheus metrics and the /api/metrics/... views (API.md 6.2).
 *
 * Every figure is for the whole machine: the handlers read the shared scoreboard that all
 * workers write (lib/sb.h), so whichever worker answers, the numbers are the same. /status and
 * /metrics are operator routes without authentication; nginx lets only loopback (and the
 * networks the operator adds) reach them. /api/metrics/... need a session, like the original.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentd_client.h"
#include "ops.h"
#include "../lib/arena.h"
#include "../lib/metrics.h"

static const struct metrics_counter_desc ops_counters[OPS__MAX] = {
	[OPS_SESSION_FALLBACK] =
		{"session_fallbacks",
		 "Sessions resolved from PostgreSQL because Redis was unavailable."},
	[OPS_LOGIN_OK] = {"logins", "Successful logins."},
	[OPS_LOGIN_FAILED] = {"login_failures", "Failed logins."},
};

static const struct metrics_opts ops_opts = {
	.prefix = "ideaforge",
	.app = ops_counters,
	.napp = OPS__MAX,
};

void ops_count(struct req *r, enum ops_counter c)
{
	metrics_count(r->w, (int)c, 1);
}

/* A number rounded to 2 decimals that also serialises as exactly 2 decimals. */
static json_object *dp2(double v)
{
	char s[48];
	snprintf(s, sizeof(s), "%.2f", v);
	return json_object_new_double_s(strtod(s, NULL), s);
}

#define JADD(o, k, v) json_object_object_add((o), (k), (v))

/* agentd's own status document under "agentd" ({"up": false} when it does not answer). */
static void add_agentd_status(struct req *r, json_object *o)
{
	struct buf b;
	buf_init(&b, r->a);
	json_object *a = NULL;
	if (agentd_fetch(app_cfg(r)->agentd_listen, "/status", &b) == 0)
		a = jx_parse(b.p, b.len, 16);
	if (!a || !json_object_is_type(a, json_type_object)) {
		json_object_put(a);
		a = json_object_new_object();
		json_object_object_add(a, "up", json_object_new_boolean(0));
	} else {
		json_object_object_add(a, "up", json_object_new_boolean(1));
	}
	json_object_object_add(o, "agentd", a);
}

int h_status(struct req *r)
{
	metrics_sample(r->w);
	res_header(r, "Cache-Control", "no-store");
	json_object *o = metrics_status(r, req_query(r, "full") != NULL);
	add_agentd_status(r, o);
	return res_json(r, 200, o);
}

int h_metrics(struct req *r)
{
	metrics_sample(r->w);
	struct buf b;
	buf_init(&b, r->a);
	metrics_prometheus(r, &b, &ops_opts);
	/* the AI engine's families follow, so one scrape covers both tiers of this machine */
	buf_puts(&b, "# HELP ideaforge_agentd_up 1 when ideaforge-agentd answered this scrape.\n"
		     "# TYPE ideaforge_agentd_up gauge\n");
	size_t mark = b.len;
	buf_puts(&b, "ideaforge_agentd_up 1\n");
	if (agentd_fetch(app_cfg(r)->agentd_listen, "/metrics", &b) != 0) {
		b.len = mark;
		buf_puts(&b, "ideaforge_agentd_up 0\n");
	}
	res_header(r, "Cache-Control", "no-store");
	return res_body(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
}

int h_metrics_pool(struct req *r)
{
	metrics_sample(r->w);
	struct metrics_pool p;
	metrics_pool_totals(r->w->sb, NULL, &p);
	int max = p.size + p.overflow;
	double util = max > 0 ? (double)p.in_use * 100.0 / max : 0.0;
	const char *status = "healthy", *msg = "Connection pool operating normally";
	if (util > 90) {
		status = "critical";
		msg = "Connection pool nearly exhausted";
	} else if (util > 70) {
		status = "warning";
		msg = "High connection pool usage";
	}
	json_object *o = json_object_new_object();
	JADD(o, "pool_size", json_object_new_int(p.size));
	JADD(o, "checked_in", json_object_new_int(p.idle));
	JADD(o, "checked_out", json_object_new_int(p.in_use));
	JADD(o, "overflow", json_object_new_int(p.overflow));
	JADD(o, "invalid", json_object_new_int(0));
	JADD(o, "timestamp", app_now_iso());
	JADD(o, "utilization_percent", dp2(util));
	JADD(o, "available_connections", json_object_new_int(max - p.in_use));
	JADD(o, "status", json_object_new_string(status));
	JADD(o, "message", json_object_new_string(msg));
	/* beyond the original: the figures are the machine's, summed over its workers */
	JADD(o, "scope", json_object_new_string("machine"));
	JADD(o, "workers", json_object_new_int(p.workers));
	JADD(o, "open", json_object_new_int(p.open));
	JADD(o, "waiting", json_object_new_int(p.waiting));
	JADD(o, "waits_total", json_object_new_int64((int64_t)p.waits));
	JADD(o, "timeouts_total", json_object_new_int64((int64_t)p.timeouts));
	return res_json(r, 200, o);
}

int h_metrics_db(struct req *r)
{
	int64_t t0 = now_us();
	bool found = false;
	const char *one = db_value(&r->c, &found, "SELECT 1", 0, NULL);
	double ms = (double)(now_us() - t0) / 1000.0;
	const char *ver =
		one ? db_value(&r->c, &found, "SELECT split_part(version(), ',', 1)", 0, NULL)
		    : NULL;
	json_object *o = json_object_new_object();
	if (!one || !ver) {
		/* the original answers 200 with the failure described; internals stay in the log */
		r->rc = RC_OK;
		r->detail[0] = '\0';
		JADD(o, "status", json_object_new_string("unhealthy"));
		JADD(o, "error", json_object_new_string("Database unavailable"));
		JADD(o, "timestamp", app_now_iso());
		return res_json(r, 200, o);
	}
	const char *status = "healthy", *msg = "Database responding normally";
	if (ms > 1000) {
		status = "degraded";
		msg = "Database response time is degraded";
	} else if (ms > 500) {
		status = "warning";
		msg = "Database response time is elevated";
	}
	JADD(o, "status", json_object_new_string(status));
	JADD(o, "query_time_ms", dp2(ms));
	JADD(o, "database_version", json_object_new_string(ver));
	JADD(o, "timestamp", app_now_iso());
	JADD(o, "message", json_object_new_string(msg));
	return res_json(r, 200, o);
}

/* The value of `key` in an INFO reply ("key:value\r\n" lines), copied into out; false if
 * absent. */
static bool info_get(const char *info, const char *key, char *out, size_t n)
{
	size_t kl = strlen(key);
	for (const char *p = info; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, kl) != 0 || p[kl] != ':')
			continue;
		const char *v = p + kl + 1;
		size_t len = strcspn(v, "\r\n");
		if (len >= n)
			len = n - 1;
		memcpy(out, v, len);
		out[len] = '\0';
		return true;
	}
	return false;
}

static int64_t info_int(const char *info, const char *key)
{
	char v[64];
	return info_get(info, key, v, sizeof(v)) ? strtoll(v, NULL, 10) : 0;
}

/* INFO <section> as an arena string, or NULL when Redis is unavailable. */
static char *redis_info(struct req *r, const char *section)
{
	redisReply *x = kv_cmd(r->t->kv, "INFO %s", section);
	if (!x)
		return NULL;
	char *s = NULL;
	if (x->type == REDIS_REPLY_STRING)
		s = arena_strndup(r->a, x->str, x->len);
	freeReplyObject(x);
	return s;
}

int h_metrics_cache(struct req *r)
{
	json_object *o = json_object_new_object();
	char *stats = redis_info(r, "stats");
	char *mem = stats ? redis_info(r, "memory") : NULL;
	if (!stats || !mem) {
		JADD(o, "cache_enabled", json_object_new_boolean(0));
		JADD(o, "error", json_object_new_string("Redis unavailable"));
		JADD(o, "timestamp", app_now_iso());
		return res_json(r, 200, o);
	}
	int64_t hits = info_int(stats, "keyspace_hits");
	int64_t misses = info_int(stats, "keyspace_misses");
	JADD(o, "cache_enabled", json_object_new_boolean(1));
	JADD(o, "cache_type", json_object_new_string("redis"));
	JADD(o, "timestamp", app_now_iso());
	JADD(o, "keyspace_hits", json_object_new_int64(hits));
	JADD(o, "keyspace_misses", json_object_new_int64(misses));
	JADD(o, "total_commands_processed",
	     json_object_new_int64(info_int(stats, "total_commands_processed")));
	JADD(o, "hit_rate_percent",
	     dp2(hits + misses > 0 ? (double)hits * 100.0 / (double)(hits + misses) : 0.0));
	/* memory used against the limit (the seed's 1 GB, allkeys-lru) */
	int64_t used = info_int(mem, "used_memory");
	int64_t maxm = info_int(mem, "maxmemory");
	char policy[64] = "";
	info_get(mem, "maxmemory_policy", policy, sizeof(policy));
	JADD(o, "used_memory", json_object_new_int64(used));
	JADD(o, "maxmemory", json_object_new_int64(maxm));
	JADD(o, "maxmemory_policy", json_object_new_string(policy));
	JADD(o, "memory_usage_percent", maxm > 0 ? dp2((double)used * 100.0 / (double)maxm) : NULL);
	JADD(o, "evicted_keys", json_object_new_int64(info_int(stats, "evicted_keys")));
	/* and how often this machine had to do without Redis */
	struct metrics_pool p;
	metrics_sample(r->w);
	metrics_pool_totals(r->w->sb, NULL, &p);
	JADD(o, "fallbacks_total", json_object_new_int64((int64_t)(p.kv_failures + p.kv_skipped)));
	return res_json(r, 200, o);
}

/* The agents' real figures for the caller's tenant (API.md 6.2's shape, issue 12 item 5):
 * every agent_complete event agentd stored for the tenant's jobs (latest run of each) is a
 * call, with its processing time and whether the response cache answered it. */
int h_metrics_agents(struct req *r)
{
	const char *p[] = {r->auth.tenant_id};
	const char *json = db_value(
		&r->c, NULL,
		"WITH ev AS ("
		" SELECT e.data->>'agent' AS agent,"
		" coalesce((e.data->'metadata'->>'processing_time')::numeric, 0) AS t,"
		" coalesce((e.data->'metadata'->>'cache_hit')::boolean, false) AS hit"
		" FROM agent_job_events e JOIN agent_jobs j ON j.id = e.job_id"
		" WHERE j.tenant_id = $1::uuid AND e.event = 'agent_complete'"
		" AND e.attempt = (SELECT max(x.attempt) FROM agent_job_events x"
		"  WHERE x.job_id = e.job_id)),"
		" a AS (SELECT agent, count(*) AS n, sum(t) AS t,"
		" count(*) FILTER (WHERE hit) AS hits FROM ev GROUP BY agent)"
		" SELECT json_build_object("
		" 'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'),"
		" 'agents', coalesce((SELECT json_object_agg(agent, json_build_object("
		"  'total_calls', n, 'total_time', round(t, 3), 'avg_time', round(t / n, 3),"
		"  'cache_hits', hits, 'cache_misses', n - hits)) FROM a), '{}'::json),"
		" 'summary', json_build_object("
		"  'total_calls', (SELECT count(*) FROM ev),"
		"  'total_time', (SELECT coalesce(round(sum(t), 3), 0) FROM ev),"
		"  'avg_time', (SELECT coalesce(round(avg(t), 3), 0) FROM ev),"
		"  'cache_hits', (SELECT count(*) FROM ev WHERE hit),"
		"  'cache_misses', (SELECT count(*) FROM ev WHERE NOT hit)))",
		1, p);
	if (!json)
		return r->rc;
	return res_json_text(r, 200, json, strlen(json));
}
