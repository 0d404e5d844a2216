/* metrics.c - Prometheus text exposition and the status document, from the scoreboard. */
#include "metrics.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "db.h"
#include "http.h"
#include "kv.h"
#include "log.h"
#include "srv.h"

static const char *const class_names[SB_CLASSES] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

void metrics_request(struct req *r, int64_t dur_us)
{
	struct wctx *w = r->w;
	struct sb_worker *sw = &w->sb->workers[w->slot];
	int route = r->route ? (int)(r->route - w->app->routes) : -1;
	sb_record(sw, route, r->status, dur_us);
	if (w->cfg->slow_request_ms > 0 && dur_us / 1000 >= w->cfg->slow_request_ms)
		atomic_fetch_add_explicit(&sw->c[SBC_SLOW], 1, memory_order_relaxed);
}

void metrics_sample(struct wctx *w)
{
	struct sb_worker *sw = &w->sb->workers[w->slot];
	if (w->db) {
		struct db_stats s;
		db_pool_stats(w->db, &s);
		atomic_store(&sw->g.db_size, s.size);
		atomic_store(&sw->g.db_overflow, s.overflow);
		atomic_store(&sw->g.db_open, s.open);
		atomic_store(&sw->g.db_in_use, s.in_use);
		atomic_store(&sw->g.db_idle, s.idle);
		atomic_store(&sw->g.db_waiting, s.waiting);
		atomic_store(&sw->c[SBC_DB_CHECKOUTS], s.checkouts);
		atomic_store(&sw->c[SBC_DB_WAITS], s.waits);
		atomic_store(&sw->c[SBC_DB_TIMEOUTS], s.timeouts);
		atomic_store(&sw->c[SBC_DB_CONNECT_ERRORS], s.connect_errors);
	}
	if (w->kv_shared) {
		atomic_store(&sw->g.kv_up, atomic_load(&w->kv_shared->up) ? 1 : 0);
		atomic_store(&sw->c[SBC_KV_FAILURES], atomic_load(&w->kv_shared->failures));
		atomic_store(&sw->c[SBC_KV_SKIPPED], atomic_load(&w->kv_shared->skipped));
	}
}

void metrics_count(struct wctx *w, int idx, uint64_t n)
{
	if (idx < 0 || idx >= SB_APP_COUNTERS)
		return;
	atomic_fetch_add_explicit(&w->sb->workers[w->slot].c[SBC_APP + idx], n,
				  memory_order_relaxed);
}

static bool slot_live(const struct sb_worker *w)
{
	return atomic_load(&w->state) != SBW_FREE;
}

void metrics_pool_totals(struct sb *sb, const struct sb_totals *t, struct metrics_pool *p)
{
	memset(p, 0, sizeof(*p));
	for (int i = 0; i < sb->max_workers; i++) {
		struct sb_worker *w = &sb->workers[i];
		if (!slot_live(w))
			continue;
		p->workers++;
		p->size += atomic_load(&w->g.db_size);
		p->overflow += atomic_load(&w->g.db_overflow);
		p->open += atomic_load(&w->g.db_open);
		p->in_use += atomic_load(&w->g.db_in_use);
		p->idle += atomic_load(&w->g.db_idle);
		p->waiting += atomic_load(&w->g.db_waiting);
		int up = atomic_load(&w->g.kv_up);
		if (up == 1)
			p->kv_up++;
		else if (up == 0)
			p->kv_down++;
	}
	struct sb_totals *own = NULL;
	if (!t) {
		own = malloc(sizeof(*own));
		if (!own)
			return;
		sb_snapshot(sb, own);
		t = own;
	}
	p->checkouts = t->c[SBC_DB_CHECKOUTS];
	p->waits = t->c[SBC_DB_WAITS];
	p->timeouts = t->c[SBC_DB_TIMEOUTS];
	p->connect_errors = t->c[SBC_DB_CONNECT_ERRORS];
	p->kv_failures = t->c[SBC_KV_FAILURES];
	p->kv_skipped = t->c[SBC_KV_SKIPPED];
	free(own);
}

/* Reads a small /proc file into buf; bytes read or -1. */
static ssize_t read_small(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t got = 0, k;
	while ((size_t)got < n - 1 && (k = read(fd, buf + got, n - 1 - (size_t)got)) > 0)
		got += k;
	close(fd);
	buf[got < 0 ? 0 : got] = '\0';
	return got;
}

static void proc_mem(int pid, uint64_t *rss, uint64_t *pss)
{
	char path[64], buf[2048];
	snprintf(path, sizeof(path), "/proc/%d/statm", pid);
	if (read_small(path, buf, sizeof(buf)) > 0) {
		unsigned long size = 0, res = 0;
		if (sscanf(buf, "%lu %lu", &size, &res) == 2)
			*rss += (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
	}
	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
	if (read_small(path, buf, sizeof(buf)) > 0) {
		const char *p = strstr(buf, "\nPss:");
		unsigned long kb = 0;
		if (p && sscanf(p + 5, "%lu", &kb) == 1)
			*pss += (uint64_t)kb * 1024;
	}
}

void metrics_memory(struct sb *sb, uint64_t *rss, uint64_t *pss)
{
	*rss = 0;
	*pss = 0;
	int master = atomic_load(&sb->pm.master_pid);
	if (master > 0)
		proc_mem(master, rss, pss);
	for (int i = 0; i < sb->max_workers; i++) {
		struct sb_worker *w = &sb->workers[i];
		int pid = atomic_load(&w->pid);
		if (slot_live(w) && pid > 0)
			proc_mem(pid, rss, pss);
	}
}

/* --- Prometheus ---------------------------------------------------------------------------- */

/* A label value: backslash, double quote and newline escaped (exposition format 0.0.4). */
static void label(struct buf *b, const char *s)
{
	buf_putc(b, '"');
	for (; s && *s; s++) {
		if (*s == '\\' || *s == '"')
			buf_putc(b, '\\');
		if (*s == '\n') {
			buf_puts(b, "\\n");
			continue;
		}
		buf_putc(b, *s);
	}
	buf_putc(b, '"');
}

static void head(struct buf *b, const char *pfx, const char *name, const char *type,
		 const char *help)
{
	buf_printf(b, "# HELP %s_%s %s\n# TYPE %s_%s %s\n", pfx, name, help, pfx, name, type);
}

static void one(struct buf *b, const char *pfx, const char *name, const char *type,
		const char *help, double v)
{
	head(b, pfx, name, type, help);
	buf_printf(b, "%s_%s %.17g\n", pfx, name, v);
}

static void route_labels(struct buf *b, const struct srv_app *app, int r)
{
	if (r < SB_ROUTE_NONE && (size_t)r < app->nroutes) {
		buf_puts(b, "method=");
		label(b, http_method_names[app->routes[r].method]);
		buf_puts(b, ",route=");
		label(b, app->routes[r].pattern);
	} else {
		buf_puts(b, "method=\"\",route=\"(unmatched)\"");
	}
}

static bool route_used(const struct sb_totals *t, int r)
{
	const uint64_t *row = &t->c[SBC_ROUTE(r)];
	for (int k = 0; k < SB_CLASSES; k++)
		if (row[SBR_STATUS(k)])
			return true;
	return false;
}

/* Workers by state and the threads of workers not stopping, busy or idle: the figures the
 * Prometheus text and the status document share. */
struct census {
	int by_state[SBW__MAX]; /* live workers by enum sb_wstate */
	int busy;               /* busy request threads of starting and running workers */
	int idle;               /* their other request threads */
	int idle_workers;       /* starting and running workers without a busy thread */
};

/* Busy request threads of worker w (its ops thread, after them, is not counted). */
static int worker_busy_threads(struct sb_worker *w)
{
	int n = atomic_load(&w->nthreads), busy = 0;
	for (int j = 0; j < n && j < SB_MAX_THREADS; j++)
		if (atomic_load(&w->threads[j].state) == SBT_BUSY)
			busy++;
	return busy;
}

/* The live state of slot w (SBW_FREE for a free slot or a state out of range). */
static int worker_state(struct sb_worker *w)
{
	int st = atomic_load(&w->state);
	return st <= SBW_FREE || st >= SBW__MAX ? SBW_FREE : st;
}

static void census(struct sb *sb, struct census *c)
{
	memset(c, 0, sizeof(*c));
	for (int i = 0; i < sb->max_workers; i++) {
		struct sb_worker *w = &sb->workers[i];
		int st = worker_state(w);
		if (st == SBW_FREE)
			continue;
		c->by_state[st]++;
		if (st == SBW_STOPPING)
			continue;
		int n = atomic_load(&w->nthreads);
		int busy = worker_busy_threads(w);
		c->busy += busy;
		c->idle += (n < SB_MAX_THREADS ? n : SB_MAX_THREADS) - busy;
		if (!busy)
			c->idle_workers++;
	}
}

/* Responses by status class over every route row. */
static void responses_by_class(const struct sb_totals *t, uint64_t by_class[SB_CLASSES])
{
	for (int k = 0; k < SB_CLASSES; k++)
		by_class[k] = 0;
	for (int rt = 0; rt < SB_ROUTES; rt++)
		for (int k = 0; k < SB_CLASSES; k++)
			by_class[k] += t->c[SBC_ROUTE(rt) + SBR_STATUS(k)];
}

/* Requests by route and status class, only rows that saw traffic (the 2xx row always). */
static void prom_requests(struct buf *b, const char *p, const struct srv_app *app,
			  const struct sb_totals *t)
{
	head(b, p, "http_requests_total", "counter",
	     "Requests finished, by route (method and pattern) and status class.");
	for (int rt = 0; rt < SB_ROUTES; rt++) {
		if (!route_used(t, rt))
			continue;
		const uint64_t *row = &t->c[SBC_ROUTE(rt)];
		for (int k = 0; k < SB_CLASSES; k++) {
			if (!row[SBR_STATUS(k)] && k != 1)
				continue;
			buf_printf(b, "%s_http_requests_total{", p);
			route_labels(b, app, rt);
			buf_printf(b, ",code=\"%s\"} %llu\n", class_names[k],
				   (unsigned long long)row[SBR_STATUS(k)]);
		}
	}
}

/* The latency histogram of each route with traffic: cumulative buckets, sum and count. */
static void prom_durations(struct buf *b, const char *p, const struct srv_app *app,
			   const struct sb_totals *t)
{
	head(b, p, "http_request_duration_seconds", "histogram",
	     "Time from accepting a request to finishing its response, by route.");
	for (int rt = 0; rt < SB_ROUTES; rt++) {
		if (!route_used(t, rt))
			continue;
		const uint64_t *row = &t->c[SBC_ROUTE(rt)];
		uint64_t cum = 0;
		for (int k = 0; k < SB_BUCKETS; k++) {
			cum += row[SBR_BUCKET(k)];
			buf_printf(b, "%s_http_request_duration_seconds_bucket{", p);
			route_labels(b, app, rt);
			if (k < SB_BUCKETS - 1)
				buf_printf(b, ",le=\"%g\"} %llu\n",
					   (double)sb_bucket_le_us[k] / 1e6,
					   (unsigned long long)cum);
			else
				buf_printf(b, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
		}
		buf_printf(b, "%s_http_request_duration_seconds_sum{", p);
		route_labels(b, app, rt);
		buf_printf(b, "} %.6f\n", (double)row[SBR_SUM_US] / 1e6);
		buf_printf(b, "%s_http_request_duration_seconds_count{", p);
		route_labels(b, app, rt);
		buf_printf(b, "} %llu\n", (unsigned long long)cum);
	}
}

/* Responses by class over all routes, slow requests, 429s. */
static void prom_responses(struct buf *b, const char *p, const struct sb_totals *t)
{
	uint64_t by_class[SB_CLASSES];
	responses_by_class(t, by_class);
	head(b, p, "http_responses_total", "counter", "Responses by status class, all routes.");
	for (int k = 0; k < SB_CLASSES; k++)
		buf_printf(b, "%s_http_responses_total{code=\"%s\"} %llu\n", p, class_names[k],
			   (unsigned long long)by_class[k]);
	one(b, p, "slow_requests_total", "counter",
	    "Requests slower than slow_request_ms (each also logged).", (double)t->c[SBC_SLOW]);
	one(b, p, "slowlog_requests_total", "counter",
	    "Requests named while still running past request_slowlog_timeout_ms.",
	    (double)t->c[SBC_SLOWLOG]);
	one(b, p, "terminated_requests_total", "counter",
	    "Requests ended past request_terminate_timeout_ms.", (double)t->c[SBC_TERMINATED]);
	one(b, p, "rate_limit_rejections_total", "counter", "Requests refused with 429.",
	    (double)t->c[SBC_RATE_LIMITED]);
}

/* Workers by state, the process manager's figures, threads. */
static void prom_workers(struct buf *b, const char *p, struct sb *sb)
{
	struct census c;
	census(sb, &c);
	head(b, p, "workers", "gauge", "Worker processes by state.");
	for (int s = SBW_STARTING; s < SBW__MAX; s++)
		buf_printf(b, "%s_workers{state=\"%s\"} %d\n", p, sb_wstate_names[s],
			   c.by_state[s]);
	const struct sb_pm *pm = &sb->pm;
	one(b, p, "workers_min", "gauge", "Fewest workers the process manager keeps.",
	    atomic_load(&pm->workers_min));
	one(b, p, "workers_max", "gauge", "Most workers the process manager runs.",
	    atomic_load(&pm->workers_max));
	one(b, p, "workers_target", "gauge", "Workers the process manager wants now.",
	    atomic_load(&pm->target));
	one(b, p, "workers_max_reached_total", "counter",
	    "Times the load asked for more than workers_max.",
	    (double)atomic_load(&pm->max_reached));
	one(b, p, "worker_spawns_total", "counter", "Workers forked.",
	    (double)atomic_load(&pm->spawned));
	one(b, p, "worker_crashes_total", "counter", "Workers that exited unexpectedly.",
	    (double)atomic_load(&pm->crashes));
	one(b, p, "worker_scale_ups_total", "counter", "Workers added by the scaling policy.",
	    (double)atomic_load(&pm->scale_ups));
	one(b, p, "worker_scale_downs_total", "counter", "Workers removed by the scaling policy.",
	    (double)atomic_load(&pm->scale_downs));
	one(b, p, "worker_respawn_throttled", "gauge",
	    "1 while respawns are throttled because workers crash in a loop.",
	    atomic_load(&pm->throttled));
	head(b, p, "threads", "gauge", "Accept threads of running workers by state.");
	buf_printf(b, "%s_threads{state=\"busy\"} %d\n%s_threads{state=\"idle\"} %d\n", p, c.busy,
		   p, c.idle);
	one(b, p, "threads_busy_average", "gauge",
	    "Busy threads averaged over the process manager's last 1-second tick.",
	    atomic_load(&pm->busy_x100) / 100.0);
}

/* The database pools and Redis, summed over the workers. */
static void prom_pool(struct buf *b, const char *p, const struct metrics_pool *mp)
{
	head(b, p, "db_pool_connections", "gauge", "Database connections of all worker pools.");
	buf_printf(b, "%s_db_pool_connections{state=\"in_use\"} %d\n", p, mp->in_use);
	buf_printf(b, "%s_db_pool_connections{state=\"idle\"} %d\n", p, mp->idle);
	one(b, p, "db_pool_size", "gauge", "Sum of the configured pool sizes.", mp->size);
	one(b, p, "db_pool_max_connections", "gauge",
	    "Sum of pool size plus overflow: the most connections this machine opens.",
	    mp->size + mp->overflow);
	one(b, p, "db_pool_waiting", "gauge", "Threads waiting for a connection now.", mp->waiting);
	one(b, p, "db_pool_checkouts_total", "counter", "Connections handed out.",
	    (double)mp->checkouts);
	one(b, p, "db_pool_waits_total", "counter", "Checkouts that had to wait.",
	    (double)mp->waits);
	one(b, p, "db_pool_timeouts_total", "counter", "Checkouts that timed out (answered 503).",
	    (double)mp->timeouts);
	one(b, p, "db_connect_errors_total", "counter", "Failed connection attempts.",
	    (double)mp->connect_errors);
	one(b, p, "redis_up", "gauge",
	    "1 when every running worker that has used Redis sees it up, else 0.",
	    mp->kv_down == 0 ? 1 : 0);
	head(b, p, "redis_workers", "gauge", "Workers by the Redis state they see.");
	buf_printf(b, "%s_redis_workers{state=\"up\"} %d\n", p, mp->kv_up);
	buf_printf(b, "%s_redis_workers{state=\"down\"} %d\n", p, mp->kv_down);
	one(b, p, "redis_failures_total", "counter", "Redis commands that failed or timed out.",
	    (double)mp->kv_failures);
	one(b, p, "redis_fallbacks_total", "counter",
	    "Redis commands not answered (failed, or skipped while Redis was down): callers fell "
	    "back.",
	    (double)(mp->kv_failures + mp->kv_skipped));
}

/* The application's own counters, by the names it gave. */
static void prom_app(struct buf *b, const char *p, const struct metrics_opts *o,
		     const struct sb_totals *t)
{
	for (int k = 0; o && k < o->napp && k < SB_APP_COUNTERS; k++) {
		if (!o->app[k].name)
			continue;
		char name[128];
		snprintf(name, sizeof(name), "%s_total", o->app[k].name);
		one(b, p, name, "counter", o->app[k].help ? o->app[k].help : o->app[k].name,
		    (double)t->c[SBC_APP + k]);
	}
}

/* Memory, start time and version of the server. */
static void prom_process(struct buf *b, const char *p, struct sb *sb, const struct srv_app *app)
{
	uint64_t rss, pss;
	metrics_memory(sb, &rss, &pss);
	one(b, p, "resident_memory_bytes", "gauge",
	    "Resident memory of the master and all workers (shared pages counted per process).",
	    (double)rss);
	one(b, p, "proportional_memory_bytes", "gauge",
	    "Proportional set size (PSS) of the master and all workers: shared pages split.",
	    (double)pss);
	one(b, p, "start_time_seconds", "gauge", "Start of the master, unix time.",
	    (double)(atomic_load(&sb->pm.start_wall_us) / 1000000));
	head(b, p, "build_info", "gauge", "Version of the running server.");
	buf_printf(b, "%s_build_info{version=", p);
	label(b, app->version);
	buf_puts(b, "} 1\n");
}

void metrics_prometheus(struct req *r, struct buf *b, const struct metrics_opts *o)
{
	struct sb *sb = r->w->sb;
	const struct srv_app *app = r->w->app;
	const char *p = o && o->prefix ? o->prefix : "app";
	struct sb_totals *t = arena_alloc(r->a, sizeof(*t));
	sb_snapshot(sb, t);
	struct metrics_pool mp;
	metrics_pool_totals(sb, t, &mp);

	prom_requests(b, p, app, t);
	prom_durations(b, p, app, t);
	prom_responses(b, p, t);
	prom_workers(b, p, sb);
	prom_pool(b, p, &mp);
	prom_app(b, p, o, t);
	prom_process(b, p, sb, app);
}

/* --- status -------------------------------------------------------------------------------- */

#define JADD(o, k, v) json_object_object_add((o), (k), (v))

static json_object *jint(int64_t v)
{
	return json_object_new_int64(v);
}

static json_object *route_name(const struct srv_app *app, int r)
{
	if (r < 0 || (size_t)r >= app->nroutes)
		return NULL;
	char s[512];
	snprintf(s, sizeof(s), "%s %s", http_method_names[app->routes[r].method],
		 app->routes[r].pattern);
	return json_object_new_string(s);
}

/* One thread of the full status view. */
static json_object *thread_json(const struct srv_app *app, struct sb_thread *th, int j, int64_t now)
{
	int ts = atomic_load(&th->state);
	json_object *to = json_object_new_object();
	JADD(to, "index", jint(j));
	JADD(to, "state",
	     json_object_new_string(ts >= 0 && ts < SBT__MAX ? sb_tstate_names[ts] : "?"));
	int rt = atomic_load(&th->route);
	JADD(to, "route", ts == SBT_BUSY ? route_name(app, rt) : NULL);
	int64_t st_us = atomic_load(&th->start_us);
	JADD(to, "duration_ms",
	     ts == SBT_BUSY && st_us ? json_object_new_double((now - st_us) / 1000.0) : NULL);
	JADD(to, "requests", jint((int64_t)atomic_load(&th->requests)));
	return to;
}

/* The header of the status document: pool, version, the master, request counters. */
static void status_head(json_object *o, struct sb *sb, const struct srv_app *app,
			const struct sb_totals *t, int64_t now)
{
	const struct sb_pm *pm = &sb->pm;
	JADD(o, "pool", json_object_new_string(app->name));
	JADD(o, "version", json_object_new_string(app->version));
	int mode = atomic_load(&pm->mode);
	JADD(o, "process_manager",
	     json_object_new_string(mode >= 0 && mode < PM__MAX ? pm_mode_names[mode] : "?"));
	JADD(o, "master_pid", jint(atomic_load(&pm->master_pid)));
	JADD(o, "start_time", jint(atomic_load(&pm->start_wall_us) / 1000000));
	JADD(o, "start_since", jint((now - atomic_load(&pm->start_us)) / 1000000));
	JADD(o, "generation", jint(atomic_load(&pm->generation)));
	JADD(o, "accepted_requests", jint((int64_t)t->c[SBC_REQUESTS]));
	JADD(o, "slow_requests", jint((int64_t)t->c[SBC_SLOW]));
	JADD(o, "slowlog_requests", jint((int64_t)t->c[SBC_SLOWLOG]));
	JADD(o, "terminated_requests", jint((int64_t)t->c[SBC_TERMINATED]));
	JADD(o, "rate_limited", jint((int64_t)t->c[SBC_RATE_LIMITED]));
	uint64_t by_class[SB_CLASSES];
	responses_by_class(t, by_class);
	json_object *resp = json_object_new_object();
	for (int k = 0; k < SB_CLASSES; k++)
		JADD(resp, class_names[k], jint((int64_t)by_class[k]));
	JADD(o, "responses", resp);
}

/* One worker of the full view: its figures, its threads and (with an ops socket) the ops
 * thread after them. */
static json_object *process_json(struct req *r, int i, int64_t now)
{
	const struct srv_app *app = r->w->app;
	struct sb_worker *w = &r->w->sb->workers[i];
	int n = atomic_load(&w->nthreads), wbusy = worker_busy_threads(w);
	json_object *threads = json_object_new_array();
	for (int j = 0; j < n && j < SB_MAX_THREADS; j++)
		json_object_array_add(threads, thread_json(app, &w->threads[j], j, now));
	json_object *po = json_object_new_object();
	JADD(po, "slot", jint(i));
	JADD(po, "pid", jint(atomic_load(&w->pid)));
	JADD(po, "state", json_object_new_string(sb_wstate_names[worker_state(w)]));
	JADD(po, "generation", jint(atomic_load(&w->generation)));
	JADD(po, "uptime_s", json_object_new_double((now - atomic_load(&w->started_us)) / 1e6));
	JADD(po, "idle_s",
	     json_object_new_double(wbusy ? 0.0 : (now - atomic_load(&w->last_active_us)) / 1e6));
	JADD(po, "requests", jint((int64_t)atomic_load(&w->requests)));
	JADD(po, "busy_threads", jint(wbusy));
	JADD(po, "db_in_use", jint(atomic_load(&w->g.db_in_use)));
	JADD(po, "db_open", jint(atomic_load(&w->g.db_open)));
	JADD(po, "threads", threads);
	/* the ops socket's thread (health, status, metrics), after the request threads */
	const char *ops_listen = r->w->cfg->ops_listen;
	if (ops_listen && *ops_listen && n < SB_MAX_THREADS)
		JADD(po, "ops_thread", thread_json(app, &w->threads[n], n, now));
	return po;
}

static json_object *processes_json(struct req *r, int64_t now)
{
	struct sb *sb = r->w->sb;
	json_object *procs = json_object_new_array();
	for (int i = 0; i < sb->max_workers; i++)
		if (worker_state(&sb->workers[i]) != SBW_FREE)
			json_object_array_add(procs, process_json(r, i, now));
	return procs;
}

static json_object *workers_json(const struct sb_pm *pm, const struct census *c)
{
	json_object *wo = json_object_new_object();
	JADD(wo, "current", jint(c->by_state[SBW_STARTING] + c->by_state[SBW_RUNNING]));
	JADD(wo, "starting", jint(c->by_state[SBW_STARTING]));
	JADD(wo, "running", jint(c->by_state[SBW_RUNNING]));
	JADD(wo, "stopping", jint(c->by_state[SBW_STOPPING]));
	JADD(wo, "idle", jint(c->idle_workers));
	JADD(wo, "target", jint(atomic_load(&pm->target)));
	JADD(wo, "min", jint(atomic_load(&pm->workers_min)));
	JADD(wo, "max", jint(atomic_load(&pm->workers_max)));
	JADD(wo, "max_reached", jint((int64_t)atomic_load(&pm->max_reached)));
	JADD(wo, "spawned", jint((int64_t)atomic_load(&pm->spawned)));
	JADD(wo, "crashes", jint((int64_t)atomic_load(&pm->crashes)));
	JADD(wo, "respawn_throttled", json_object_new_boolean(atomic_load(&pm->throttled)));
	JADD(wo, "scale_ups", jint((int64_t)atomic_load(&pm->scale_ups)));
	JADD(wo, "scale_downs", jint((int64_t)atomic_load(&pm->scale_downs)));
	return wo;
}

static json_object *threads_json(const struct sb_pm *pm, const struct census *c)
{
	json_object *th = json_object_new_object();
	JADD(th, "per_worker", jint(atomic_load(&pm->threads)));
	JADD(th, "total", jint(c->busy + c->idle));
	JADD(th, "busy", jint(c->busy));
	JADD(th, "idle", jint(c->idle));
	JADD(th, "busy_average", json_object_new_double(atomic_load(&pm->busy_x100) / 100.0));
	return th;
}

static json_object *db_pool_json(const struct metrics_pool *mp)
{
	json_object *db = json_object_new_object();
	JADD(db, "size", jint(mp->size));
	JADD(db, "overflow", jint(mp->overflow));
	JADD(db, "max", jint(mp->size + mp->overflow));
	JADD(db, "open", jint(mp->open));
	JADD(db, "in_use", jint(mp->in_use));
	JADD(db, "idle", jint(mp->idle));
	JADD(db, "waiting", jint(mp->waiting));
	JADD(db, "checkouts", jint((int64_t)mp->checkouts));
	JADD(db, "waits", jint((int64_t)mp->waits));
	JADD(db, "timeouts", jint((int64_t)mp->timeouts));
	JADD(db, "connect_errors", jint((int64_t)mp->connect_errors));
	return db;
}

static json_object *redis_json(const struct metrics_pool *mp)
{
	json_object *kv = json_object_new_object();
	JADD(kv, "up", json_object_new_boolean(mp->kv_down == 0));
	JADD(kv, "workers_up", jint(mp->kv_up));
	JADD(kv, "workers_down", jint(mp->kv_down));
	JADD(kv, "failures", jint((int64_t)mp->kv_failures));
	JADD(kv, "fallbacks", jint((int64_t)(mp->kv_failures + mp->kv_skipped)));
	return kv;
}

static json_object *memory_json(struct sb *sb)
{
	uint64_t rss, pss;
	metrics_memory(sb, &rss, &pss);
	json_object *mem = json_object_new_object();
	JADD(mem, "rss_bytes", jint((int64_t)rss));
	JADD(mem, "pss_bytes", jint((int64_t)pss));
	return mem;
}

json_object *metrics_status(struct req *r, bool full)
{
	struct sb *sb = r->w->sb;
	struct sb_totals *t = arena_alloc(r->a, sizeof(*t));
	sb_snapshot(sb, t);
	int64_t now = now_us();
	struct census c;
	census(sb, &c);
	struct metrics_pool mp;
	metrics_pool_totals(sb, t, &mp);

	json_object *o = json_object_new_object();
	status_head(o, sb, r->w->app, t, now);
	JADD(o, "workers", workers_json(&sb->pm, &c));
	JADD(o, "threads", threads_json(&sb->pm, &c));
	JADD(o, "db_pool", db_pool_json(&mp));
	JADD(o, "redis", redis_json(&mp));
	JADD(o, "memory", memory_json(sb));
	if (full)
		JADD(o, "processes", processes_json(r, now));
	return o;
}
