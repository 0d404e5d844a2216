/* sess.h - a Redis cache of session validity in front of a durable session store.
 *
 * The durable store (PostgreSQL for IdeaForge) is the authority: it says whether session `sid`
 * of principal `pid` is live. This module only caches the positive answer, so that a request
 * costs one Redis round trip instead of a query, and it is built so that the cache can lose
 * keys (eviction, restart) or miss writes (an outage) without ever turning a revoked session
 * back into a valid one. The rules:
 *
 *  1. Only positive entries exist: `sess:<sid>` = "<gen>:<rev>". There are no tombstones whose
 *     eviction could resurrect anything; a missing entry always means "ask the store".
 *  2. Per-principal revocation marker `urev:<pid>`: a random value replaced on every revocation
 *     of any session of that principal (logout, logout-all, password change, deactivation). An
 *     entry is valid only while its <rev> equals the current marker, so one write revokes every
 *     session of a principal at once. A missing marker (evicted or expired) is a miss, and is
 *     recreated (sess_prepare) with a fresh random value, which matches no existing entry:
 *     eviction can only cause misses.
 *  3. Refill is compare-and-set: the check returns the marker and generation it saw *before*
 *     the caller asked the store; the refill writes the entry only if both are unchanged. A
 *     revocation that commits in the store after the caller's read bumps the marker, so the
 *     refill of the stale answer is refused (and an entry written just before is dead).
 *  4. Global generation `sess:gen`, a lease: a random value with a TTL of lease_ms, renewed by
 *     every check (a PEXPIRE, which cannot revive an expired key) and by each worker's
 *     heartbeat (sess_heartbeat, every lease_ms / 4). Entries
 *     carry the generation they were written under. If Redis stops answering for lease_ms
 *     (hung, paused, partitioned from every worker), nothing renews the lease, so the next
 *     command after the outage finds it expired and starts a new generation: every entry
 *     written before the outage is dead. A revocation can only fail to reach Redis because
 *     Redis did not answer it within the command timeout; with lease_ms <= that timeout the
 *     lease has expired by the time Redis answers anyone again, so a session revoked in the
 *     store during an outage stays revoked after it. (A timed-out command is usually executed
 *     late as well; a revoker that failed also asks its worker's heartbeat to start a new
 *     generation once Redis answers, for restarts that reload a persisted data set.)
 *  5. Revocations are written to the store first, then to Redis, bypassing the worker's
 *     backoff (kv_cmd_force), so a worker that still backs off cannot skip one.
 *  6. Principal data (`pdata:<pid>` = "<gen>:<rev>:<bytes>", e.g. a user's profile as JSON)
 *     may ride along: the check returns it when its stamp is current, refills are
 *     compare-and-set like entries, and a new marker (sess_revoke, also used when the data
 *     changes) makes it stale with every session of the principal.
 *
 * Values are 64-bit random numbers in hex, from a per-thread generator seeded by getrandom(2).
 */
#ifndef IF_SESS_H
#define IF_SESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv.h"

#define SESS_ID_MAX 64 /* longest sid or pid accepted (UUIDs are 36) */

/* What a check saw, needed by the refill's compare-and-set. */
struct sess_stamp {
	char gen[24]; /* generation */
	char rev[24]; /* principal's revocation marker */
};

/* A ready-to-send check: two plain commands to pipeline (a[0] MGET of the entry, marker,
 * generation and data; a[1] PEXPIRE renewing the lease if it exists). argv points into the
 * struct: keep it alive until sent. */
struct sess_cmd {
	struct kv_argv a[2];          /* the commands */
	char k_sess[SESS_ID_MAX + 8]; /* sess:<sid> */
	char k_rev[SESS_ID_MAX + 8];  /* urev:<pid> */
	char k_data[SESS_ID_MAX + 8]; /* pdata:<pid> */
	char lease[24];               /* lease_ms */
};

/* Results of sess_check_parse(). */
enum sess_hit {
	SESS_HIT = 1,  /* a live entry: the session is valid */
	SESS_MISS = 0, /* no live entry: ask the store, then sess_refill() */
	SESS_BAD = -1, /* not the script's reply (error reply): treat as unavailable */
};

/* Fills cmd with the check of session sid of principal pid (both printable, shorter than
 * SESS_ID_MAX; else the commands check nothing and always miss). Plain commands, no script:
 * the hot path costs Redis a few microseconds. */
void sess_check_cmd(struct sess_cmd *cmd, const char *sid, const char *pid, int64_t lease_ms);

/* Reads the reply to cmd->a[0]. On SESS_HIT and SESS_MISS *st holds the marker and generation
 * the check saw (both empty when one was missing: call sess_prepare before asking the store),
 * and *data / *datalen the principal's current data (borrowed from x), or NULL / 0. */
int sess_check_parse(const redisReply *x, struct sess_stamp *st, const char **data,
		     size_t *datalen);

/* On a miss whose stamp is incomplete: creates the missing marker (kept ttl_s) and generation
 * (lease_ms) and reads them into *st, before the caller asks the store. 0, or -1 when Redis is
 * unavailable (st is then cleared and refills are skipped). */
int sess_prepare(struct kv *kv, const char *pid, struct sess_stamp *st, int64_t lease_ms,
		 int64_t ttl_s);

/* After the store said "live" (sid not NULL) and/or gave the principal's data (data not NULL):
 * caches them for ttl_s seconds (>= 1) unless the marker or the generation changed since st
 * was read. Returns 1 written, 0 refused, -1 Redis unavailable. */
int sess_refill(struct kv *kv, const char *sid, const char *pid, const struct sess_stamp *st,
		int64_t ttl_s, const char *data, size_t datalen);

/* After the store revoked sessions of pid, or changed its data: new marker (kept ttl_s), which
 * kills every cached session and the data of pid, and deletes the entries of sid (when not
 * NULL) and of the data. Forced past the worker's backoff. Returns 0, or -1 when Redis did
 * not take it (the caller then asks for a new generation: sess_heartbeat(..., true)). */
int sess_revoke(struct kv *kv, const char *pid, const char *sid, int64_t ttl_s);

/* Renews the generation lease, or starts a new generation when it expired or when bump is
 * true. Returns 1 new generation, 0 renewed, -1 Redis unavailable. */
int sess_heartbeat(struct kv *kv, int64_t lease_ms, bool bump);

/* A fresh random value as 16 hex digits into out (>= 17 bytes). Thread-safe. */
void sess_random_hex(char *out);

#endif
