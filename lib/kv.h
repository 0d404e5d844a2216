/* kv.h - per-thread Redis handle (hiredis) with timeouts and backoff.
 *
 * hiredis contexts are not thread-safe, so every accept thread has its own. The up/down state
 * is shared by all threads of a worker (struct kv_shared): once one thread sees Redis fail,
 * the others skip it until the backoff expires, then one probe decides. A dead or hung Redis
 * therefore costs at most one command timeout per backoff period, not one per request.
 */
#ifndef IF_KV_H
#define IF_KV_H

#include <hiredis/hiredis.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kv;

struct kv_shared {
	atomic_int_fast64_t down_until_us; /* monotonic time before which Redis is skipped */
	atomic_int_fast64_t backoff_us;    /* current backoff, doubles to a cap */
	atomic_int probing;                /* one thread probes when the backoff expires */
	atomic_uint_fast64_t failures;     /* commands that failed (timeout, connection) */
	atomic_uint_fast64_t skipped;      /* commands not tried because Redis was down */
	atomic_bool up;                    /* last known state */
	atomic_bool has_prober;            /* a dedicated handle probes; requests never wait */
};

void kv_shared_init(struct kv_shared *s);

/* New handle for url ("redis://host:port/db", "unix:/path"); connects lazily. Owned. NULL
 * when url is malformed or on out of memory.
 *
 * An empty (or NULL) url means "no Redis": the handle never connects, every command returns
 * NULL at once, as while Redis is down (callers fall back the same way), and shared->up is
 * false from the start, without a "redis unavailable" line. */
struct kv *kv_new(const char *url, int64_t connect_timeout_ms, int64_t command_timeout_ms,
		  struct kv_shared *shared);
void kv_free(struct kv *k); /* accepts NULL */

/* Runs a command (hiredis format). NULL when Redis is unavailable (down, backing off, timed
 * out); the caller must then fall back. A Redis error reply is returned, not NULL. The caller
 * frees the reply with freeReplyObject. */
redisReply *kv_cmd(struct kv *k, const char *fmt, ...);
redisReply *kv_cmdargv(struct kv *k, int argc, const char **argv, const size_t *lens);

/* Like kv_cmd, but tries Redis even while the worker backs off: for the rare writes whose loss
 * would be unsafe (session revocations), so that a Redis that came back is used at once. Costs
 * at most one command timeout when Redis is still hung. */
redisReply *kv_cmd_force(struct kv *k, const char *fmt, ...);

struct kv_script;

/* One command as an argument vector, for kv_pipeline and kv_run. */
#define KV_ARGV_MAX 14
struct kv_argv {
	int argc;                       /* arguments used */
	const char *argv[KV_ARGV_MAX];  /* borrowed */
	size_t lens[KV_ARGV_MAX];       /* byte lengths */
	const struct kv_script *script; /* EVALSHA of this script: NOSCRIPT is retried as EVAL */
};

/* Starts a with "EVALSHA <sha of s>" (s initialised with kv_script_init). */
void kv_argv_script(struct kv_argv *a, const struct kv_script *s);

/* Appends one argument (borrowed, n bytes); ignored past KV_ARGV_MAX. */
void kv_argv_add(struct kv_argv *a, const char *arg, size_t n);

/* Runs one command (like kv_cmdargv, or kv_cmd_force when force), retrying a script's NOSCRIPT
 * once with EVAL. NULL when Redis is unavailable. */
redisReply *kv_run(struct kv *k, const struct kv_argv *a, bool force);

/* Sends n commands in one write and reads their n replies: one round trip. Returns 0 with
 * out[0..n-1] set (error replies included; the caller frees each with freeReplyObject; a
 * script's NOSCRIPT has been retried with EVAL, and out[i] is NULL if that retry found Redis
 * gone), or -1 when Redis is unavailable (down, backing off, timed out, a reply missing); then
 * every out[i] is NULL. */
int kv_pipeline(struct kv *k, int n, const struct kv_argv *cmds, redisReply **out);

/* Makes k the worker's prober: while Redis is down, only k (used by a background thread every
 * few tens of ms) tries it, ignoring the backoff; ordinary handles fail at once until the
 * prober has seen Redis answer, so no request ever pays a probe's timeout. */
void kv_set_prober(struct kv *k);

/* Lua scripts run as EVALSHA (Redis keeps compiled scripts by SHA-1, so the body is neither
 * sent nor hashed again on every call); a Redis that restarted answers NOSCRIPT, and the caller
 * then sends the same command once with EVAL, which also reloads the script. */
struct kv_script {
	const char *body; /* the Lua source */
	char sha[41];     /* its SHA-1 in hex, set by kv_script_init */
};

/* Computes s->sha from s->body. Idempotent; 0, or -1 when hashing is unavailable. */
int kv_script_init(struct kv_script *s);

/* True when x is Redis's NOSCRIPT error. */
bool kv_is_noscript(const redisReply *x);

/* Last known state as seen by this worker. */
bool kv_up(const struct kv *k);

/* False for a handle made without a URL (no Redis) or NULL: callers skip what only matters
 * with Redis (a warning that a write did not reach it). */
bool kv_configured(const struct kv *k);

/* Validates a Redis URL: redis://[[user]:password@]host[:port][/db], unix:/path or
 * unix://[[user]:password@]/path (userinfo percent-encoded). 0 or -1. */
int kv_url_check(const char *url);

/* Why url is not usable as redis_url (a sentence for the configuration error), or NULL when it
 * is: rediss:// gets its own explanation (no TLS in this hiredis). */
const char *kv_url_problem(const char *url);

#endif
