/* srv.h - the FastCGI application server: master, workers, threads, and the contexts that
 * handlers see. An application (app/main.c) fills struct srv_app and calls srv_main()
 * (lib/srv_main.h).
 *
 * Processes: one master (never handles requests) forks workers that all accept on one
 * listening socket; each worker runs `threads` threads in an accept loop; each worker owns a
 * database pool shared by its threads; each thread owns a Redis handle.
 */
#ifndef IF_SRV_H
#define IF_SRV_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cfg.h"
#include "route.h"

struct db_pool;
struct kv;
struct kv_shared;
struct sb;
struct arena;

enum pm_mode { PM_STATIC, PM_DYNAMIC, PM_ONDEMAND, PM__MAX };
extern const char *const pm_mode_names[PM__MAX + 1];

/* Settings of the server itself (lib). The application adds its own section. */
struct srv_config {
	char *listen;           /* "unix:/path", "host:port" or "" = inherit */
	char *ops_listen;       /* socket for internal routes (health, status,
				 * metrics), one thread per worker; "" = none */
	int64_t listen_backlog; /* listen(2) backlog when we bind */
	int64_t socket_mode;    /* permissions of a unix socket we bind (octal) */
	int pm;                 /* enum pm_mode */
	int64_t workers;        /* static: worker processes */
	int64_t workers_min;    /* dynamic: lower bound */
	int64_t workers_max;    /* dynamic: upper bound, scoreboard size */
	int64_t threads;        /* accept threads per worker */
	/* dynamic/ondemand scaling policy (lib/pm.c; the seed's HPA shape on one machine) */
	int64_t pm_scale_up_busy_pct;   /* scale up when busy threads exceed this % of all */
	int64_t pm_scale_up_step;       /* most workers added per 1-second tick */
	int64_t pm_min_spare_threads;   /* also scale up when fewer threads than this are idle */
	int64_t pm_max_spare_threads;   /* scale down only while more are idle, 0 = threads */
	int64_t pm_scale_down_window_s; /* stabilisation window before scaling down */
	int64_t pm_scale_down_step;     /* most workers removed per pm_scale_down_period_s */
	int64_t pm_scale_down_period_s; /* period of pm_scale_down_step */
	int64_t pm_idle_timeout_s;      /* ondemand: stop a worker idle this long */
	int64_t max_requests;           /* requests before a worker recycles, 0 = never */
	int64_t graceful_timeout_s;     /* bound on finishing in-flight requests at stop */
	int64_t max_body_bytes;         /* body cap -> 413 */
	int64_t max_json_depth;         /* JSON nesting cap -> 400 */
	int64_t max_json_nodes;         /* JSON values cap -> 413, counted before parsing */
	int64_t max_headers;            /* request header count cap -> 431 as 400 */
	int log_level;                  /* enum log_level */
	int64_t slow_request_ms;        /* a slow-request line past this, 0 = off */
	int64_t request_slowlog_timeout_ms;   /* log a request still running past this, 0 = off */
	int64_t request_terminate_timeout_ms; /* end a request running past this, 0 = off */
	bool access_log;                      /* one line per request */
	int64_t log_rate_limit_per_s;         /* message lines a second per process, 0 = no limit */
	char *database_url;                   /* libpq conninfo or URI */
	int64_t db_pool_size;                 /* connections kept per worker */
	int64_t db_max_overflow;              /* extra connections per worker under load */
	int64_t db_pool_timeout_s;            /* checkout wait before 503 */
	int64_t db_pool_recycle_s;            /* connection age before reconnect */
	bool db_pool_pre_ping;                /* ping a connection idle for a while before use */
	int64_t db_statement_timeout_ms;      /* server-side statement_timeout */
	int64_t db_lock_timeout_ms;           /* server-side lock_timeout */
	char *redis_url;                  /* redis://host:port/db or unix:/path; "" = no Redis */
	int64_t redis_connect_timeout_ms; /* connect timeout */
	int64_t redis_command_timeout_ms; /* per-command timeout */
};

extern const struct cfg_key srv_config_keys[];

/* Cross-field validation of a loaded srv_config; -1 with err naming key and value. */
int srv_config_validate(const struct srv_config *c, char *err, size_t errlen);

/* Worker context: one per worker process, shared by its threads (read-only after init,
 * except through the pool's own locking). */
struct wctx {
	const struct srv_config *cfg;  /* config snapshot of this worker's generation */
	const void *app_cfg;           /* the application's section */
	const struct srv_app *app;     /* the application */
	struct db_pool *db;            /* this worker's pool */
	struct kv_shared *kv_shared;   /* Redis up/down state shared by this worker's threads */
	struct sb *sb;                 /* the machine's scoreboard (shared memory) */
	int slot;                      /* this worker's scoreboard slot */
	pid_t pid;                     /* getpid() */
	atomic_uint_fast64_t requests; /* requests served by this worker */
	void *app_data;                /* the application's per-worker state */
};

/* Thread context: one per accept thread. */
struct tctx {
	struct wctx *w;         /* owning worker */
	bool ops;               /* accepts on the ops socket: internal routes only */
	struct kv *kv;          /* this thread's Redis handle */
	struct arena *arena;    /* reset after every request */
	int idx;                /* thread index within the worker */
	char rid[40];           /* request id being served (for the watchdog's lines) */
	atomic_bool slowlogged; /* the current request was named in the slow log */
};

struct srv_app {
	const char *name;           /* program name for logs */
	const char *version;        /* version string */
	const struct route *routes; /* the API */
	size_t nroutes;             /* entries in routes */
	/* Loads the whole configuration (server + application sections) from argv, file and env.
	 * Called in the master at start and on SIGHUP. Returns 0, or -1 with err set. */
	int (*config_load)(int argc, char **argv, struct srv_config **srv, void **app_cfg,
			   char *err, size_t errlen);
	void (*config_free)(struct srv_config *srv, void *app_cfg);
	/* Per worker, after the pool exists and before threads start. 0 or -1 (worker exits). */
	int (*worker_init)(struct wctx *w);
	void (*worker_fini)(struct wctx *w);
	/* Middleware between matching and the handler (rate limit, authentication); returns an
	 * enum rc. A non-OK return ends the request with the error already described; RC_OK
	 * with a response already set (res_json etc.) ends it with that response. */
	int (*before)(struct req *r);
	/* Called after the handler (its transactions are over) and before the response is sent:
	 * e.g. to publish that a write committed, so the client's next request sees it. May be
	 * NULL. */
	void (*committed)(struct req *r);
	/* Called after the response is written (metrics, audit). May be NULL. */
	void (*after)(struct req *r);
};


#endif
