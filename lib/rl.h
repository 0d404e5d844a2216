/* rl.h - rate limiting with the generic cell rate algorithm (GCRA), the leaky bucket of
 * nginx's limit_req expressed as one timestamp per key.
 *
 * A limit is "limit requests per period": requests drain the bucket at one per
 * period/limit, and up to `limit` may arrive at once (the burst). Each key keeps one number, its
 * theoretical arrival time (TAT): the moment the bucket would be empty again. A request of cost
 * c is allowed when TAT + c * interval - period <= now, and then moves TAT forward.
 *
 * The shared state lives in Redis, updated by one Lua script per check (EVAL: atomic, one round
 * trip, Redis's own clock so that every worker and host agrees). rl_cmd() builds that command so
 * the caller can pipeline it with others (kv_pipeline), rl_parse() reads the reply. When Redis
 * is unavailable the caller falls back to a per-worker table (struct rl_local) with the same
 * arithmetic: a limit then holds per worker instead of per deployment, never unlimited.
 *
 * A negative cost gives back what a positive one took (never below an empty bucket): the login
 * path takes an attempt before verifying a password, so that concurrent guesses cannot all pass
 * one check, and gives it back when the password was right.
 *
 * Cost 0 is a peek: it says whether one more request would pass, without counting it (the
 * login path checks the failure budget before verifying a password and only spends it on a
 * failure).
 */
#ifndef IF_RL_H
#define IF_RL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv.h"

struct rl_limit {
	int64_t limit;     /* requests allowed per period (and the burst), >= 1 */
	int64_t period_ms; /* the period, >= 1 */
};

struct rl_result {
	bool allowed;          /* this request passes */
	int64_t limit;         /* the limit that applied (RateLimit-Limit) */
	int64_t remaining;     /* requests still allowed right now (RateLimit-Remaining) */
	int64_t reset_s;       /* seconds until the bucket is empty again (RateLimit-Reset) */
	int64_t retry_after_s; /* when refused: seconds until one request passes (Retry-After) */
	bool local;            /* decided by the per-worker fallback table */
};

/* A ready-to-send EVAL: argv points into the struct itself, so keep it alive until sent. */
struct rl_cmd {
	struct kv_argv a; /* the command for kv_pipeline / kv_cmdargv */
	char num[3][24];  /* limit, period_ms, cost as text */
};

/* Fills cmd with the check of key (borrowed; must outlive cmd) under lim with cost (0 = peek,
 * 1 = take). */
void rl_cmd(struct rl_cmd *cmd, const char *key, const struct rl_limit *lim, int cost);

/* Reads the reply of an rl_cmd into res. Returns 0, or -1 when the reply is not the script's
 * (an error reply, e.g. Redis out of memory): the caller then uses the local table. */
int rl_parse(const redisReply *x, const struct rl_limit *lim, struct rl_result *res);

/* The per-worker fallback table: a fixed number of keys (hashed with a per-table random seed),
 * the least recently due evicted when full. Thread-safe (one mutex). */
struct rl_local;

/* New table of about `keys` entries (at least 64). NULL on out of memory. Owned. */
struct rl_local *rl_local_new(size_t keys);
/* The same table in shared memory (MAP_SHARED, a robust process-shared lock): created before
 * fork(), every child process shares one set of counts, so a limit holds per machine rather
 * than per worker while Redis is unavailable. NULL when mmap fails. */
struct rl_local *rl_local_new_shared(size_t keys);
void rl_local_free(struct rl_local *t); /* accepts NULL; unmaps a shared table */

/* The same check as the script, on the table, at now_ms (a monotonic clock in ms). */
void rl_local_check(struct rl_local *t, const char *key, const struct rl_limit *lim, int cost,
		    int64_t now_ms, struct rl_result *res);

/* One check, Redis first (one EVAL), the table when Redis is unavailable or refuses. */
void rl_check(struct kv *kv, struct rl_local *t, const char *key, const struct rl_limit *lim,
	      int cost, struct rl_result *res);

#endif
