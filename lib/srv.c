/* srv.c - the server's settings: keys, defaults and cross-field validation. */
#include "srv.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "kv.h"
#include "log.h"
#include "sb.h"

const char *const pm_mode_names[PM__MAX + 1] = {
	[PM_STATIC] = "static",
	[PM_DYNAMIC] = "dynamic",
	[PM_ONDEMAND] = "ondemand",
	[PM__MAX] = NULL,
};

#define K(name, type, field, def, min, max, enums, help)                                      \
	{                                                                                     \
		name, type, offsetof(struct srv_config, field), def, min, max, enums, 0, help \
	}

/* A string key with flags (CFG_URL: its password is masked when printed). */
#define KF(name, type, field, def, flags, help)                                              \
	{                                                                                    \
		name, type, offsetof(struct srv_config, field), def, 0, 0, NULL, flags, help \
	}

const struct cfg_key srv_config_keys[] = {
	K("listen", CFG_STR, listen, "", 0, 0, NULL,
	  "unix:/path or host:port to bind; empty = systemd socket (LISTEN_FDS) or fd 0"),
	K("ops_listen", CFG_STR, ops_listen, "", 0, 0, NULL,
	  "second socket, for health, status and metrics only (unix:/path or host:port), served "
	  "by one dedicated thread per worker so they answer while every request thread is "
	  "busy; empty = none"),
	K("listen_backlog", CFG_INT, listen_backlog, "1024", 1, 65535, NULL,
	  "listen(2) backlog when the server binds the socket itself"),
	{"socket_mode", CFG_INT, offsetof(struct srv_config, socket_mode), "0660", 0, 0777, NULL,
	 CFG_OCTAL, "permissions (octal) of a unix socket bound by the server"},
	K("pm", CFG_ENUM, pm, "static", 0, 0, pm_mode_names,
	  "process manager: static (fixed workers), dynamic or ondemand"),
	K("workers", CFG_INT, workers, "2", 1, 256, NULL,
	  "static: worker processes; dynamic: workers started first"),
	K("workers_min", CFG_INT, workers_min, "1", 0, 256, NULL,
	  "dynamic/ondemand: fewest workers kept (ondemand may use 0)"),
	K("workers_max", CFG_INT, workers_max, "8", 1, 256, NULL,
	  "most workers ever running (fixes the scoreboard size; restart to change)"),
	K("threads", CFG_INT, threads, "8", 1, 64, NULL, "accept threads per worker"),
	K("pm_scale_up_busy_pct", CFG_INT, pm_scale_up_busy_pct, "70", 1, 100, NULL,
	  "dynamic/ondemand: add workers when busy threads exceed this % of all threads"),
	K("pm_scale_up_step", CFG_INT, pm_scale_up_step, "4", 1, 256, NULL,
	  "dynamic/ondemand: most workers added per 1-second tick"),
	K("pm_min_spare_threads", CFG_INT, pm_min_spare_threads, "0", 0, 16384, NULL,
	  "dynamic/ondemand: also add workers while fewer threads than this are idle"),
	K("pm_max_spare_threads", CFG_INT, pm_max_spare_threads, "0", 0, 16384, NULL,
	  "dynamic: remove workers only while more threads than this are idle; 0 = threads"),
	K("pm_scale_down_window_s", CFG_INT, pm_scale_down_window_s, "300", 0, 3600, NULL,
	  "dynamic: load must stay below the threshold this long before workers are removed"),
	K("pm_scale_down_step", CFG_INT, pm_scale_down_step, "2", 1, 256, NULL,
	  "dynamic: most workers removed per pm_scale_down_period_s"),
	K("pm_scale_down_period_s", CFG_INT, pm_scale_down_period_s, "60", 1, 3600, NULL,
	  "dynamic: period of pm_scale_down_step"),
	K("pm_idle_timeout_s", CFG_INT, pm_idle_timeout_s, "10", 1, 86400, NULL,
	  "ondemand: stop a worker that served nothing for this long"),
	K("max_requests", CFG_INT, max_requests, "0", 0, INT64_MAX, NULL,
	  "requests a worker serves before it is recycled; 0 = never"),
	K("graceful_timeout_s", CFG_INT, graceful_timeout_s, "30", 1, 3600, NULL,
	  "seconds in-flight requests get to finish on stop or reload"),
	K("max_body_bytes", CFG_INT, max_body_bytes, "10485760", 1024, 1073741824, NULL,
	  "largest request body accepted (413 above)"),
	K("max_json_depth", CFG_INT, max_json_depth, "32", 2, 1000, NULL,
	  "deepest JSON nesting accepted (400 above)"),
	K("max_json_nodes", CFG_INT, max_json_nodes, "20000", 16, 10000000, NULL,
	  "most JSON values (objects, arrays, members, elements) in a body (413 above)"),
	K("max_headers", CFG_INT, max_headers, "100", 1, 10000, NULL,
	  "most request headers accepted (400 above)"),
	K("log_level", CFG_ENUM, log_level, "info", 0, 0, log_level_names,
	  "debug, info, warn or error"),
	K("slow_request_ms", CFG_INT, slow_request_ms, "1000", 0, 3600000, NULL,
	  "log a slow-request line past this duration; 0 = off"),
	K("request_slowlog_timeout_ms", CFG_INT, request_slowlog_timeout_ms, "5000", 0, 86400000,
	  NULL, "log a request still running past this (route, request id), once; 0 = off"),
	K("request_terminate_timeout_ms", CFG_INT, request_terminate_timeout_ms, "60000", 0,
	  86400000, NULL,
	  "a request running past this is logged and ended: its worker stops accepting, lets "
	  "its other requests finish and exits (the master replaces it); 0 = off"),
	K("access_log", CFG_BOOL, access_log, "true", 0, 0, NULL,
	  "one access line per request (whatever log_level is)"),
	K("log_rate_limit_per_s", CFG_INT, log_rate_limit_per_s, "200", 0, 1000000, NULL,
	  "message lines per second per process before lines are dropped (and counted); 0 = no "
	  "limit"),
	KF("database_url", CFG_STR, database_url, "", CFG_URL,
	   "libpq connection string or URI; empty = no database (queries answer 503)"),
	K("db_pool_size", CFG_INT, db_pool_size, "8", 1, 1000, NULL,
	  "database connections kept per worker (a worker never uses more than its threads)"),
	K("db_max_overflow", CFG_INT, db_max_overflow, "0", 0, 1000, NULL,
	  "extra connections per worker under load, closed when returned"),
	K("db_pool_timeout_s", CFG_INT, db_pool_timeout_s, "30", 1, 3600, NULL,
	  "seconds to wait for a free connection before answering 503"),
	K("db_pool_recycle_s", CFG_INT, db_pool_recycle_s, "3600", 0, 604800, NULL,
	  "reconnect connections older than this; 0 = never"),
	K("db_pool_pre_ping", CFG_BOOL, db_pool_pre_ping, "true", 0, 0, NULL,
	  "check a connection that sat idle before handing it out"),
	K("db_statement_timeout_ms", CFG_INT, db_statement_timeout_ms, "5000", 0, 86400000, NULL,
	  "server-side statement_timeout of request statements (503 past it); 0 = none"),
	K("db_lock_timeout_ms", CFG_INT, db_lock_timeout_ms, "1000", 0, 86400000, NULL,
	  "server-side lock_timeout: a statement waiting this long for a lock fails (503); 0 = none"),
	KF("redis_url", CFG_STR, redis_url, "", CFG_URL,
	   "redis://[[user]:password@]host:port/db or unix:/path (password masked when printed); "
	   "empty = no Redis, as if it were down"),
	K("redis_connect_timeout_ms", CFG_INT, redis_connect_timeout_ms, "200", 1, 60000, NULL,
	  "Redis connect timeout"),
	K("redis_command_timeout_ms", CFG_INT, redis_command_timeout_ms, "100", 1, 60000, NULL,
	  "Redis command timeout; Redis is skipped for a backoff period after a failure"),
	{0},
};

int srv_config_validate(const struct srv_config *c, char *err, size_t errlen)
{
	if (c->pm == PM_DYNAMIC && c->workers_min < 1) {
		snprintf(
			err, errlen,
			"invalid value '%lld' for key 'workers_min' (pm = dynamic keeps at least 1 "
			"worker; use pm = ondemand to scale to 0)",
			(long long)c->workers_min);
		return -1;
	}
	if (c->pm == PM_DYNAMIC && c->workers < c->workers_min) {
		snprintf(
			err, errlen,
			"invalid value '%lld' for key 'workers' (the workers started by pm = dynamic "
			"must be at least workers_min = %lld)",
			(long long)c->workers, (long long)c->workers_min);
		return -1;
	}
	if (c->workers > c->workers_max) {
		snprintf(
			err, errlen,
			"invalid value '%lld' for key 'workers' (must not exceed workers_max = %lld)",
			(long long)c->workers, (long long)c->workers_max);
		return -1;
	}
	if (c->workers_min > c->workers_max) {
		snprintf(
			err, errlen,
			"invalid value '%lld' for key 'workers_min' (must not exceed workers_max = "
			"%lld)",
			(long long)c->workers_min, (long long)c->workers_max);
		return -1;
	}
	if (c->threads > SB_MAX_THREADS) {
		snprintf(err, errlen, "invalid value '%lld' for key 'threads' (at most %d)",
			 (long long)c->threads, SB_MAX_THREADS);
		return -1;
	}
	if (c->pm_max_spare_threads && c->pm_max_spare_threads < c->pm_min_spare_threads) {
		snprintf(
			err, errlen,
			"invalid value '%lld' for key 'pm_max_spare_threads' (must be 0 or at least "
			"pm_min_spare_threads = %lld)",
			(long long)c->pm_max_spare_threads, (long long)c->pm_min_spare_threads);
		return -1;
	}
	const char *why = c->redis_url && *c->redis_url ? kv_url_problem(c->redis_url) : NULL;
	if (why) {
		char masked[512];
		snprintf(err, errlen, "invalid value '%s' for key 'redis_url' (%s)",
			 cfg_mask(c->redis_url, masked, sizeof(masked)), why);
		return -1;
	}
	const char *keys[] = {"listen", "ops_listen"};
	const char *vals[] = {c->listen, c->ops_listen};
	for (int i = 0; i < 2; i++) {
		const char *l = vals[i] ? vals[i] : "";
		if (*l && strncmp(l, "unix:", 5) != 0 && !strrchr(l, ':')) {
			snprintf(
				err, errlen,
				"invalid value '%s' for key '%s' (expected unix:/path or host:port)",
				l, keys[i]);
			return -1;
		}
	}
	return 0;
}
