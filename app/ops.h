/* ops.h - handlers and helpers of this area, declared for app/routes.c: the status page, the
 * Prometheus metrics and the authenticated /api/metrics/... views (API.md 6.2), all built from
 * the machine's scoreboard (lib/sb.h, lib/metrics.h). */
#ifndef IF_APP_OPS_H
#define IF_APP_OPS_H

#include "app.h"

/* IdeaForge's own counters in the scoreboard, exposed as ideaforge_<name>_total. Any handler
 * or middleware counts with ops_count(r, OPS_...); the count is lock-free. */
enum ops_counter {
	OPS_SESSION_FALLBACK, /* a session resolved from PostgreSQL because Redis was unavailable */
	OPS_LOGIN_OK,         /* successful logins */
	OPS_LOGIN_FAILED,     /* failed logins (wrong email or password, inactive user) */
	OPS__MAX
};

/* Adds one to counter c of this request's worker. */
void ops_count(struct req *r, enum ops_counter c);

int h_status(struct req *r);         /* GET /status[?full] (internal, loopback only) */
int h_metrics(struct req *r);        /* GET /metrics (internal, loopback only) */
int h_metrics_pool(struct req *r);   /* GET /api/metrics/connection-pool */
int h_metrics_db(struct req *r);     /* GET /api/metrics/database-health */
int h_metrics_cache(struct req *r);  /* GET /api/metrics/cache-stats */
int h_metrics_agents(struct req *r); /* GET /api/metrics/agent-metrics */

#endif
