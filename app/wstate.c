/* wstate.c - IdeaForge's per-worker state (wstate.h): the JWT key, the hashing pool, the
 * fallback rate-limit table, the per-thread token cache and the session-cache heartbeat.
 */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/sess.h"
#include "ai_routes.h"
#include "keys.h"
#include "pwpool.h"
#include "wstate.h"

/* The fallback rate-limit table shared by every worker of this machine (made by the master
 * before it forks; NULL in programs that never call app_master_init). */
static struct rl_local *shared_rl;

int app_master_init(void)
{
	if (!shared_rl)
		shared_rl = rl_local_new_shared(65536);
	return shared_rl ? 0 : -1;
}

/* --- the token cache ------------------------------------------------------------------- */

static void tok_cache_free(void *p)
{
	auth_cache_free(p);
}

struct auth_cache *wstate_tok_cache(struct app_state *st)
{
	if (!st->tok_key_ok)
		return NULL;
	struct auth_cache *c = pthread_getspecific(st->tok_key);
	if (!c) {
		c = auth_cache_new(64);
		if (c && pthread_setspecific(st->tok_key, c) != 0) {
			auth_cache_free(c);
			c = NULL;
		}
	}
	return c;
}

/* --- the heartbeat --------------------------------------------------------------------- */

/* Renews the session-cache generation lease every lease/4 and is the worker's Redis prober:
 * while Redis is down, it alone retries (lib/kv.c backoff), so no request waits for a probe.
 * Every ten seconds it also hands free heap pages back to the kernel. */
static void *heartbeat_main(void *arg)
{
	struct app_state *st = arg;
	int64_t period_us = st->lease_ms * 1000 / 4;
	if (period_us < 5000)
		period_us = 5000;
	int64_t trimmed_us = now_us();
	while (!atomic_load(&st->hb_stop)) {
		int64_t now = now_us();
		if (now - trimmed_us > 10000000) {
			/* free pages of every heap (a 10 MiB upload's, say) back to the kernel */
			malloc_trim(0);
			trimmed_us = now;
		}
		bool bump = atomic_load(&st->gen_bump);
		int rc = sess_heartbeat(st->hb_kv, st->lease_ms, bump);
		if (rc >= 0 && bump) {
			atomic_store(&st->gen_bump, false);
			log_msg(LL_INFO, NULL,
				"session cache: new generation after a missed revocation");
		}
		struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(period_us * 1000)};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* sess.h rule 4: the lease must not outlive a command timeout (nor a connect timeout). */
static int64_t lease_ms(const struct srv_config *cfg)
{
	int64_t ms = cfg->redis_command_timeout_ms;
	if (cfg->redis_connect_timeout_ms < ms)
		ms = cfg->redis_connect_timeout_ms;
	return ms < 20 ? 20 : ms;
}

/* --- worker set-up and teardown -------------------------------------------------------- */

/* Frees what app_worker_init made of st (threads already stopped or never started). */
static void state_free(struct app_state *st)
{
	pwpool_free(st->pw);
	kv_free(st->hb_kv);
	if (st->rl != shared_rl)
		rl_local_free(st->rl);
	free(st);
}

int app_worker_init(struct wctx *w)
{
	const struct app_config *cfg = w->app_cfg;
	if (!cfg->jwt_secret || strlen(cfg->jwt_secret) < AUTH_KEY_MIN) {
		log_msg(LL_ERROR, NULL, "no token signing secret (jwt_secret_file)");
		return -1;
	}
	struct app_state *st = calloc(1, sizeof(*st));
	if (!st)
		return -1;
	st->key = (const unsigned char *)cfg->jwt_secret;
	st->keylen = strlen(cfg->jwt_secret);
	const struct pw_params pp = {.m_kib = (uint32_t)cfg->argon2_memory_kib,
				     .t = (uint32_t)cfg->argon2_iterations,
				     .p = (uint32_t)cfg->argon2_parallelism};
	st->pw = pwpool_new(&pp, (int)cfg->argon2_max_concurrent);
	st->rl = shared_rl ? shared_rl : rl_local_new(16384);
	keys_init(cfg);      /* logged when missing: saving keys then answers 503 */
	ai_routes_init(cfg); /* libcurl (provider verification, agentd's figures) */
	st->lease_ms = lease_ms(w->cfg);
	st->hb_kv = kv_new(w->cfg->redis_url, w->cfg->redis_connect_timeout_ms,
			   w->cfg->redis_command_timeout_ms, w->kv_shared);
	if (!st->pw || !st->rl || !st->hb_kv) {
		state_free(st);
		return -1;
	}
	kv_set_prober(st->hb_kv);
	st->tok_key_ok = pthread_key_create(&st->tok_key, tok_cache_free) == 0;
	atomic_store(&st->hb_stop, false);
	atomic_store(&st->gen_bump, false);
	if (pthread_create(&st->hb, NULL, heartbeat_main, st) == 0)
		st->hb_started = true;
	else
		log_msg(LL_WARN, NULL, "session cache heartbeat thread did not start");
	w->app_data = st;
	return 0;
}

void app_worker_fini(struct wctx *w)
{
	struct app_state *st = w->app_data;
	if (!st)
		return;
	atomic_store(&st->hb_stop, true);
	if (st->hb_started)
		pthread_join(st->hb, NULL);
	if (st->tok_key_ok)
		pthread_key_delete(st->tok_key);
	state_free(st);
	w->app_data = NULL;
}
