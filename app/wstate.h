/* wstate.h - IdeaForge's per-worker state (app/wstate.c): what the middleware, the sessions,
 * the login limits and the hashing pool share inside one worker process, made by the
 * srv_app hooks app_master_init / app_worker_init and torn down by app_worker_fini.
 */
#ifndef IF_APP_WSTATE_H
#define IF_APP_WSTATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/auth.h"
#include "../lib/rl.h"
#include "app.h"

struct pwpool;

/* Per-worker state (r->w->app_data). Made once per worker; the request threads read it and
 * touch only its atomics. */
struct app_state {
	struct pwpool *pw;        /* the password-hashing threads (app/pwpool.h) */
	struct rl_local *rl;      /* rate limits while Redis is unavailable */
	const unsigned char *key; /* JWT secret (borrowed from the config) */
	size_t keylen;            /* its length */
	int64_t lease_ms;         /* session-cache generation lease (sess.h rule 4) */
	struct kv *hb_kv;         /* the heartbeat's own Redis handle (the worker's prober) */
	pthread_t hb;             /* heartbeat thread */
	bool hb_started;          /* hb was created */
	atomic_bool hb_stop;      /* asks the heartbeat to leave */
	atomic_bool gen_bump;     /* a revocation missed Redis: start a new generation */
	pthread_key_t tok_key;    /* each thread's struct auth_cache of verified tokens */
	bool tok_key_ok;          /* tok_key was created */
};

/* The state of r's worker (borrowed; valid for the worker's lifetime). */
static inline struct app_state *wstate_get(struct req *r)
{
	return r->w->app_data;
}

/* This thread's memo of verified tokens (lib/auth.h), created on first use and freed when the
 * thread ends. NULL when out of memory (tokens are then verified every time). */
struct auth_cache *wstate_tok_cache(struct app_state *st);

/* srv_app hooks (app/main.c). In the master, before any worker is forked: the state every
 * worker shares (the fallback rate-limit table in shared memory). 0, or -1 when it cannot be
 * made. */
int app_master_init(void);

/* In each worker: the JWT key, the hashing threads, the fallback rate-limit table (the
 * master's when it made one), the heartbeat thread; sets w->app_data. 0, or -1 (logged when
 * the signing secret is missing) with nothing left allocated. */
int app_worker_init(struct wctx *w);

/* Stops the heartbeat and the hashing threads (queued jobs finish first) and frees
 * w->app_data. Accepts a worker whose init failed. */
void app_worker_fini(struct wctx *w);

#endif
