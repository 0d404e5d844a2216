/* sb.h - the scoreboard: shared memory created by the master before forking.
 *
 * Each worker owns one slot; each of its threads owns one thread slot and is the only writer
 * of it. The master and the status/metrics handlers only read. All fields are atomics, so
 * readers see consistent single values without locks (a snapshot across fields may be a few
 * requests apart, which is fine for monitoring).
 *
 * Counters (requests by route and status class, the latency histogram, slow requests, pool
 * and Redis counters, the application's own counters) live in one flat array per worker slot,
 * indexed by the SBC_* layout below, so that summing, folding and snapshotting are plain loops.
 * When the master reaps a worker it folds the slot's counters into the master-owned "retired"
 * array before it frees the slot, so the machine's totals never go backwards (Prometheus
 * counters must be monotonic) however often workers are recycled or scaled down. The fold runs
 * under a sequence counter (a seqlock: odd while a fold or a slot reset is in progress), and
 * sb_snapshot() retries until it read a stable state, so a scrape never counts a retiring
 * worker twice or not at all.
 */
#ifndef IF_SB_H
#define IF_SB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define SB_MAX_THREADS 64

enum sb_wstate { SBW_FREE, SBW_STARTING, SBW_RUNNING, SBW_STOPPING, SBW__MAX };
enum sb_tstate { SBT_IDLE, SBT_BUSY, SBT_DONE, SBT__MAX };

extern const char *const sb_wstate_names[SBW__MAX + 1];
extern const char *const sb_tstate_names[SBT__MAX + 1];

/* --- counter layout ------------------------------------------------------------------- */

#define SB_ROUTES 256                 /* route rows; routes past SB_ROUTE_NONE share it */
#define SB_ROUTE_NONE (SB_ROUTES - 1) /* requests that matched no route (404/405/400) */
#define SB_CLASSES 5                  /* status classes 1xx..5xx */
#define SB_BUCKETS 14                 /* latency buckets: SB_BUCKETS - 1 bounds, then +Inf */
#define SB_APP_COUNTERS 16            /* counters the application names itself */

/* Upper bounds (inclusive, microseconds) of the latency buckets, ascending. */
extern const int64_t sb_bucket_le_us[SB_BUCKETS - 1];

/* Machine-wide counters before the route rows. */
enum sb_ctr {
	SBC_REQUESTS,          /* requests finished */
	SBC_SLOW,              /* requests slower than slow_request_ms */
	SBC_SLOWLOG,           /* requests still running past request_slowlog_timeout_ms */
	SBC_TERMINATED,        /* requests ended past request_terminate_timeout_ms */
	SBC_RATE_LIMITED,      /* responses 429 */
	SBC_DB_CHECKOUTS,      /* pool checkouts (sampled from the worker's pool) */
	SBC_DB_WAITS,          /* checkouts that had to wait (sampled) */
	SBC_DB_TIMEOUTS,       /* checkouts that timed out (sampled) */
	SBC_DB_CONNECT_ERRORS, /* failed connection attempts (sampled) */
	SBC_KV_FAILURES,       /* Redis commands that failed (sampled) */
	SBC_KV_SKIPPED,        /* Redis commands skipped while it was down (sampled) */
	SBC_APP,               /* first of SB_APP_COUNTERS application counters */
	SBC_ROUTES = SBC_APP + SB_APP_COUNTERS, /* first route row */
};

/* Within a route row: status class counts, histogram buckets (not cumulative), duration sum. */
#define SBR_STATUS(c) (c)
#define SBR_BUCKET(b) (SB_CLASSES + (b))
#define SBR_SUM_US (SB_CLASSES + SB_BUCKETS)
#define SBR_STRIDE (SBR_SUM_US + 1)

#define SBC_ROUTE(r) (SBC_ROUTES + (r)*SBR_STRIDE)
#define SB_NCOUNTERS (SBC_ROUTE(SB_ROUTES))

/* --- shared structures ---------------------------------------------------------------- */

struct sb_thread {
	atomic_int state;              /* enum sb_tstate */
	atomic_int route;              /* route index being served, -1 when none */
	atomic_int_fast64_t start_us;  /* monotonic start of the current request */
	atomic_uint_fast64_t requests; /* requests served by this thread */
	atomic_uint_fast64_t client;   /* hash of the client (user or address) served, 0 none */
};

/* Gauges a worker copies from its pool and Redis state (metrics_sample). */
struct sb_gauges {
	atomic_int db_size;     /* configured pool size */
	atomic_int db_overflow; /* configured overflow */
	atomic_int db_open;     /* connections open */
	atomic_int db_in_use;   /* connections checked out */
	atomic_int db_idle;     /* connections open and idle */
	atomic_int db_waiting;  /* threads waiting for a checkout */
	atomic_int kv_up;       /* 1 up, 0 down (last known), -1 not yet sampled */
};

struct sb_worker {
	atomic_int pid;                           /* worker pid, 0 when the slot is free */
	atomic_int state;                         /* enum sb_wstate */
	atomic_int_fast64_t started_us;           /* monotonic fork time */
	atomic_int_fast64_t last_active_us;       /* monotonic end of its last request (or start) */
	atomic_uint_fast64_t requests;            /* requests served by this worker */
	atomic_int generation;                    /* config generation it runs */
	atomic_int nthreads;                      /* threads it runs */
	struct sb_gauges g;                       /* pool and Redis gauges */
	struct sb_thread threads[SB_MAX_THREADS]; /* per-thread state */
	atomic_uint_fast64_t c[SB_NCOUNTERS];     /* counters, SBC_* layout */
};

/* Process manager state, written by the master only. */
struct sb_pm {
	atomic_int master_pid;             /* master pid */
	atomic_int mode;                   /* enum pm_mode */
	atomic_int workers_min;            /* configured lower bound */
	atomic_int workers_max;            /* configured upper bound */
	atomic_int target;                 /* workers the manager wants now */
	atomic_int generation;             /* current config generation */
	atomic_int threads;                /* threads per worker of the current generation */
	atomic_int throttled;              /* 1 while respawns are throttled (crash loop) */
	atomic_int busy_x100;              /* average busy threads over the last tick, x100 */
	atomic_int_fast64_t start_wall_us; /* wall clock of the master's start */
	atomic_int_fast64_t start_us;      /* monotonic time of the master's start */
	atomic_uint_fast64_t max_reached;  /* times the manager wanted more than workers_max */
	atomic_uint_fast64_t spawned;      /* workers forked */
	atomic_uint_fast64_t crashes;      /* unexpected worker exits */
	atomic_uint_fast64_t scale_ups;    /* workers added by the scaling policy */
	atomic_uint_fast64_t scale_downs;  /* workers removed by the scaling policy */
};

struct sb {
	int max_workers; /* slots */
	atomic_uint seq; /* seqlock over fold/reset of slots: odd = in progress */
	struct sb_pm pm; /* the master's state */
	atomic_uint_fast64_t retired[SB_NCOUNTERS]; /* counters of reaped workers */
	struct sb_worker workers[];                 /* slots */
};

/* A stable copy of the machine's counters (sb_snapshot). */
struct sb_totals {
	uint64_t c[SB_NCOUNTERS]; /* retired + every live slot, SBC_* layout */
};

/* --- master ----------------------------------------------------------------------------- */

/* Creates the shared mapping for max_workers slots (MAP_SHARED|MAP_ANONYMOUS), inherited
 * by forked workers. The mapping is zero-filled by the kernel and not touched here, so pages
 * of slots never used cost no memory. NULL on failure. */
struct sb *sb_create(int max_workers);
void sb_destroy(struct sb *sb); /* accepts NULL */

/* A free slot index, or -1. Master only. */
int sb_free_slot(struct sb *sb);

/* Resets slot i (counters zeroed, threads idle) for a worker about to be forked with nthreads
 * threads; the state becomes SBW_STARTING. Master only, before fork(), so the new worker can
 * never have counted anything that a late reset would erase. */
void sb_claim(struct sb *sb, int i, int nthreads, int generation);

/* Records the pid of slot i (called by the master after fork, and by the child). */
void sb_set_pid(struct sb *sb, int i, pid_t pid);

/* Folds slot i's counters into sb->retired and frees the slot. Master only, after the worker
 * has exited (nobody writes the slot any more). */
void sb_retire(struct sb *sb, int i);

/* Counts busy and total threads over starting and running workers of generation gen (any
 * generation when gen < 0). */
void sb_busy(struct sb *sb, int gen, int *busy, int *total);

/* Marks thread t of worker slot w as serving client (a nonzero hash chosen by the caller),
 * then counts the busy threads of every live worker serving that client, this one included.
 * Lock-free: two requests racing may both count each other, so a cap enforced with it errs on
 * the side of refusing. The mark is cleared when the request ends (sb_client_clear). */
int sb_client_enter(struct sb *sb, int w, int t, uint64_t client);
void sb_client_clear(struct sb *sb, int w, int t);

/* --- readers (any process) -------------------------------------------------------------- */

/* Fills t with retired + live counters, consistent with respect to folds. */
void sb_snapshot(struct sb *sb, struct sb_totals *t);

/* --- workers ---------------------------------------------------------------------------- */

/* Status class index 0..4 of an HTTP status (1xx..5xx); out-of-range statuses count as 5xx. */
int sb_status_class(int status);

/* Histogram bucket index of a duration. */
int sb_bucket(int64_t dur_us);

/* Records one finished request in worker slot w: route index (or -1 / >= SB_ROUTE_NONE for
 * SB_ROUTE_NONE), status, duration. Lock-free; any thread of the worker. */
void sb_record(struct sb_worker *w, int route, int status, int64_t dur_us);

#endif
