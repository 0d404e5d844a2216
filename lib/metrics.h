/* metrics.h - what the scoreboard says, for people and for Prometheus.
 *
 * Workers record every finished request (route, status class, latency bucket) and copy their
 * pool and Redis state into their scoreboard slot; any worker can then render the whole
 * machine in one response, because the scoreboard is shared memory: the Prometheus text
 * exposition (format 0.0.4) and an FPM-style status document. Nothing here knows the
 * application: names of the application's own counters and the metric prefix come from
 * struct metrics_opts.
 */
#ifndef IF_METRICS_H
#define IF_METRICS_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "sb.h"

struct req;
struct wctx;

/* Records the finished request r (its route, r->status) that took dur_us, in r's worker slot;
 * counts it as slow past slow_request_ms. Lock-free. */
void metrics_request(struct req *r, int64_t dur_us);

/* Copies worker w's pool figures and Redis state into its slot. Takes the pool mutex briefly;
 * called by the worker's main thread every half second and by the metrics handlers. */
void metrics_sample(struct wctx *w);

/* Adds n to application counter idx (0 .. SB_APP_COUNTERS-1; others are ignored). */
void metrics_count(struct wctx *w, int idx, uint64_t n);

/* An application counter: exposed as <prefix>_<name>_total. */
struct metrics_counter_desc {
	const char *name; /* snake_case, without prefix and _total; NULL = unused index */
	const char *help; /* one line */
};

struct metrics_opts {
	const char *prefix;                     /* metric name prefix, e.g. "ideaforge" */
	const struct metrics_counter_desc *app; /* the application counters, by index */
	int napp;                               /* entries in app (at most SB_APP_COUNTERS) */
};

/* Pool and Redis figures summed over every live worker of the machine. */
struct metrics_pool {
	int workers;        /* workers that reported (live slots) */
	int size;           /* sum of configured pool sizes */
	int overflow;       /* sum of configured overflows */
	int open;           /* connections open */
	int in_use;         /* checked out */
	int idle;           /* open and idle */
	int waiting;        /* threads waiting for a checkout */
	int kv_up;          /* workers that see Redis up */
	int kv_down;        /* workers that see Redis down */
	uint64_t checkouts; /* counters, retired workers included */
	uint64_t waits;
	uint64_t timeouts;
	uint64_t connect_errors;
	uint64_t kv_failures;
	uint64_t kv_skipped;
};

/* Fills p from the scoreboard (counters from t, which may be NULL to take a fresh snapshot). */
void metrics_pool_totals(struct sb *sb, const struct sb_totals *t, struct metrics_pool *p);

/* Resident and proportional memory (bytes) of the master and every live worker, from /proc;
 * pss is 0 when smaps_rollup cannot be read. */
void metrics_memory(struct sb *sb, uint64_t *rss, uint64_t *pss);

/* Appends the Prometheus exposition of the whole machine to out. Uses r's worker context
 * (scoreboard, route table, config) and r's arena for a snapshot. */
void metrics_prometheus(struct req *r, struct buf *out, const struct metrics_opts *o);

/* The status document; full adds every worker and thread. Owned by the caller (put it). */
struct json_object *metrics_status(struct req *r, bool full);

#endif
