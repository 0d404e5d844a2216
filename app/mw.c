/* mw.c - middleware in fixed order (ARCHITECTURE.md section 2): rate limit, authenticate.
 * The body is parsed and validated by the server after this returns RC_OK.
 *
 * Also the per-worker state these need (JWT key, hashing slots, the fallback rate-limit table,
 * the session-cache heartbeat thread) and the session helpers shared with app/h_auth.c.
 *
 * Cost of an authenticated request on the hot path: one HMAC (the token), one Redis round trip
 * (the rate-limit script and the session check pipelined), no SQL. With Redis unavailable:
 * the rate limit comes from this worker's table and the session from one PostgreSQL query;
 * lib/kv.c skips a dead or hung Redis at once (the heartbeat thread is the worker's only
 * prober), so an outage adds no timeout to requests.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../lib/arena.h"
#include "../lib/auth.h"
#include "../lib/sb.h"
#include "../lib/sess.h"
#include "ai_routes.h"
#include "app.h"
#include "auth.h"
#include "keys.h"
#include "ops.h"

/* Per-worker state (r->w->app_data). */
struct app_state {
	pthread_mutex_t pw_mu;          /* guards pw_head, pw_tail, pw_stop */
	pthread_cond_t pw_work;         /* a job was queued, or stop */
	pthread_cond_t pw_done;         /* a job finished */
	struct auth_pw_job *pw_head;    /* queued password jobs, oldest first */
	struct auth_pw_job *pw_tail;    /* last queued */
	bool pw_stop;                   /* the hashing threads leave */
	bool pw_warm;                   /* trim threshold raised while hashing goes on */
	pthread_t *pw_threads;          /* argon2_max_concurrent hashing threads */
	int pw_nthreads;                /* started */
	struct pw_params pw_params;     /* argon2id parameters of new hashes */
	atomic_int_fast64_t pw_last_us; /* monotonic end of the last password job */
	struct rl_local *rl;            /* rate limits while Redis is unavailable */
	const unsigned char *key;       /* JWT secret (borrowed from the config) */
	size_t keylen;                  /* its length */
	int64_t lease_ms;               /* session-cache generation lease (sess.h rule 4) */
	struct kv *hb_kv;               /* the heartbeat's own Redis handle (the worker's prober) */
	pthread_t hb;                   /* heartbeat thread */
	bool hb_started;                /* hb was created */
	atomic_bool hb_stop;            /* asks the heartbeat to leave */
	atomic_bool gen_bump;           /* a revocation missed Redis: start a new generation */
	pthread_key_t tok_key;          /* each thread's struct auth_cache of verified tokens */
	bool tok_key_ok;                /* tok_key was created */
};

/* The fallback rate-limit table shared by every worker of this machine (made by the master
 * before it forks; NULL in programs that never call app_master_init). */
static struct rl_local *shared_rl;

int app_master_init(void)
{
	if (!shared_rl)
		shared_rl = rl_local_new_shared(65536);
	return shared_rl ? 0 : -1;
}

static void tok_cache_free(void *p)
{
	auth_cache_free(p);
}

/* This thread's memo of verified tokens (lib/auth.h), created on first use; NULL when out of
 * memory (tokens are then verified every time). */
static struct auth_cache *tok_cache(struct app_state *st)
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

static struct app_state *state(struct req *r)
{
	return r->w->app_data;
}

/* --- configuration --------------------------------------------------------------------- */

int auth_config_check(struct app_config *app, char *err, size_t errlen)
{
	int rc = -1;
	int fd = -1;
	char *buf = NULL;
	if ((!app->jwt_secret || !*app->jwt_secret) && app->jwt_secret_file &&
	    *app->jwt_secret_file) {
		fd = open(app->jwt_secret_file, O_RDONLY | O_CLOEXEC);
		struct stat sb;
		if (fd < 0 || fstat(fd, &sb) < 0) {
			snprintf(err, errlen, "jwt_secret_file '%s': %s", app->jwt_secret_file,
				 strerror(errno));
			goto out;
		}
		if (sb.st_size > 4096) {
			snprintf(err, errlen, "jwt_secret_file '%s': larger than 4096 bytes",
				 app->jwt_secret_file);
			goto out;
		}
		buf = calloc(1, (size_t)sb.st_size + 1);
		ssize_t n = buf ? read(fd, buf, (size_t)sb.st_size) : -1;
		if (n < 0) {
			snprintf(err, errlen, "jwt_secret_file '%s': cannot read",
				 app->jwt_secret_file);
			goto out;
		}
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
			n--;
		buf[n] = '\0';
		if (strlen(buf) != (size_t)n) {
			snprintf(err, errlen, "jwt_secret_file '%s': contains a NUL byte",
				 app->jwt_secret_file);
			goto out;
		}
		free(app->jwt_secret);
		app->jwt_secret = buf;
		buf = NULL;
	}
	if (!app->jwt_secret || strlen(app->jwt_secret) < AUTH_KEY_MIN) {
		snprintf(err, errlen,
			 "no token signing secret of at least %d bytes: set jwt_secret_file (e.g. "
			 "head -c 48 /dev/urandom | base64 > FILE) or env IDEAFORGE_JWT_SECRET",
			 AUTH_KEY_MIN);
		goto out;
	}
	if (strlen(app->jwt_secret) > 1024) {
		snprintf(err, errlen, "token signing secret: longer than 1024 bytes");
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

/* --- password hashing threads ------------------------------------------------------------
 *
 * argon2id needs argon2_memory_kib of memory per hash. Run on the request threads, every hash
 * would get fresh memory from the kernel (glibc maps a block that large and unmaps it on free),
 * and the page faults of those 19 MiB cost about half as much CPU again as the hash itself. So
 * each worker runs argon2_max_concurrent hashing threads that take password jobs from a queue:
 * the bound on concurrent hashes (memory stays at that many blocks during a login storm; a
 * request waits for a thread rather than failing), and, with glibc told to serve such blocks
 * from the threads' own heaps (app_worker_init) and not to trim them while hashing goes on,
 * memory that stays mapped while they work. A second after the last hash the threads give it
 * back, so an idle worker is as small as before. */

static void pw_exec(const struct pw_params *pp, struct auth_pw_job *j)
{
	j->fresh[0] = '\0';
	if (!j->verify) {
		j->result = PW_OK;
		if (pw_hash(pp, j->new_pw, j->fresh, sizeof(j->fresh)) < 0)
			j->fresh[0] = '\0';
		return;
	}
	if (!j->hash) {
		pw_dummy_verify(pp);
		j->result = PW_MISMATCH;
		return;
	}
	j->result = pw_verify(j->hash, j->pw);
	if (j->result != PW_OK)
		return;
	const char *again = j->new_pw;
	if (!again && j->rehash && pw_needs_rehash(j->hash, pp))
		again = j->pw;
	if (again && pw_hash(pp, again, j->fresh, sizeof(j->fresh)) < 0)
		j->fresh[0] = '\0';
}

/* glibc gives a thread heap's free top back to the kernel on free() only beyond the trim
 * threshold: high while hashing goes on (the argon2 block stays mapped from one hash to the
 * next), the default again once hashing has been idle for a second. */
#define PW_TRIM_WARM (64 * 1024 * 1024)
#define PW_TRIM_COLD (128 * 1024)
#define PW_IDLE_US 1000000

static void *pw_thread_main(void *arg)
{
	struct app_state *st = arg;
	bool dirty = false; /* this thread's heap may hold a retained argon2 block */
	pthread_mutex_lock(&st->pw_mu);
	for (;;) {
		while (!st->pw_head && !st->pw_stop) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&st->pw_work, &st->pw_mu, &ts);
			if (st->pw_head || now_us() - atomic_load(&st->pw_last_us) < PW_IDLE_US)
				continue;
			if (st->pw_warm) {
				mallopt(M_TRIM_THRESHOLD, PW_TRIM_COLD);
				st->pw_warm = false;
			}
			if (dirty) {
				/* a free() in this thread's heap trims it, now that the threshold
				 * is low again: the idle worker returns to its usual size */
				pthread_mutex_unlock(&st->pw_mu);
				void *volatile p = malloc(2 * PW_TRIM_COLD);
				free(p);
				pthread_mutex_lock(&st->pw_mu);
				dirty = false;
			}
		}
		if (!st->pw_head)
			break; /* stopping, queue drained */
		struct auth_pw_job *j = st->pw_head;
		st->pw_head = j->next;
		if (!st->pw_head)
			st->pw_tail = NULL;
		if (!st->pw_warm) {
			mallopt(M_TRIM_THRESHOLD, PW_TRIM_WARM);
			st->pw_warm = true;
		}
		pthread_mutex_unlock(&st->pw_mu);
		pw_exec(&st->pw_params, j);
		atomic_store(&st->pw_last_us, now_us());
		dirty = true;
		pthread_mutex_lock(&st->pw_mu);
		j->done = true;
		pthread_cond_broadcast(&st->pw_done);
	}
	pthread_mutex_unlock(&st->pw_mu);
	return NULL;
}

void auth_pw_run(struct req *r, struct auth_pw_job *job)
{
	struct app_state *st = state(r);
	job->next = NULL;
	job->done = false;
	if (st->pw_nthreads == 0) {
		pw_exec(&st->pw_params, job);
		return;
	}
	pthread_mutex_lock(&st->pw_mu);
	if (st->pw_tail)
		st->pw_tail->next = job;
	else
		st->pw_head = job;
	st->pw_tail = job;
	pthread_cond_signal(&st->pw_work);
	while (!job->done)
		pthread_cond_wait(&st->pw_done, &st->pw_mu);
	pthread_mutex_unlock(&st->pw_mu);
}

/* --- worker state and the heartbeat -------------------------------------------------- */

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

int app_worker_init(struct wctx *w)
{
	const struct app_config *cfg = w->app_cfg;
	struct app_state *st = calloc(1, sizeof(*st));
	if (!st)
		return -1;
	if (!cfg->jwt_secret || strlen(cfg->jwt_secret) < AUTH_KEY_MIN) {
		log_msg(LL_ERROR, NULL, "no token signing secret (jwt_secret_file)");
		free(st);
		return -1;
	}
	st->key = (const unsigned char *)cfg->jwt_secret;
	st->keylen = strlen(cfg->jwt_secret);
	st->pw_params = (struct pw_params){.m_kib = (uint32_t)cfg->argon2_memory_kib,
					   .t = (uint32_t)cfg->argon2_iterations,
					   .p = (uint32_t)cfg->argon2_parallelism};
	/* blocks up to 32 MiB (argon2id at the default 19 MiB) come from the heap of the thread
	 * that asks rather than from mmap(2): see the hashing threads */
	mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, PW_TRIM_COLD);
	pthread_mutex_init(&st->pw_mu, NULL);
	pthread_cond_init(&st->pw_work, NULL);
	pthread_cond_init(&st->pw_done, NULL);
	st->rl = shared_rl ? shared_rl : rl_local_new(16384);
	keys_init(cfg); /* logged when missing: saving keys then answers 503 */
	ai_routes_init(cfg); /* libcurl, the server-wide provider keys */
	/* sess.h rule 4: the lease must not outlive a command timeout (nor a connect timeout) */
	st->lease_ms = w->cfg->redis_command_timeout_ms;
	if (w->cfg->redis_connect_timeout_ms < st->lease_ms)
		st->lease_ms = w->cfg->redis_connect_timeout_ms;
	if (st->lease_ms < 20)
		st->lease_ms = 20;
	st->hb_kv = kv_new(w->cfg->redis_url, w->cfg->redis_connect_timeout_ms,
			   w->cfg->redis_command_timeout_ms, w->kv_shared);
	st->pw_threads = calloc((size_t)cfg->argon2_max_concurrent, sizeof(pthread_t));
	if (!st->rl || !st->hb_kv || !st->pw_threads) {
		if (st->rl != shared_rl)
			rl_local_free(st->rl);
		kv_free(st->hb_kv);
		free(st->pw_threads);
		free(st);
		return -1;
	}
	for (int i = 0; i < (int)cfg->argon2_max_concurrent; i++) {
		if (pthread_create(&st->pw_threads[i], NULL, pw_thread_main, st) != 0) {
			log_msg(LL_WARN, NULL, "password hashing thread %d did not start", i);
			break;
		}
		st->pw_nthreads++;
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
	pthread_mutex_lock(&st->pw_mu);
	st->pw_stop = true;
	pthread_cond_broadcast(&st->pw_work);
	pthread_mutex_unlock(&st->pw_mu);
	for (int i = 0; i < st->pw_nthreads; i++)
		pthread_join(st->pw_threads[i], NULL);
	free(st->pw_threads);
	kv_free(st->hb_kv);
	if (st->rl != shared_rl)
		rl_local_free(st->rl);
	if (st->tok_key_ok)
		pthread_key_delete(st->tok_key);
	free(st);
	w->app_data = NULL;
}

/* --- small helpers ------------------------------------------------------------------- */

const char *auth_client_addr(struct req *r)
{
	if (app_cfg(r)->trust_proxy) {
		const char *xff = req_env(r, "HTTP_X_FORWARDED_FOR");
		if (xff && *xff) {
			const char *last = strrchr(xff, ',');
			last = last ? last + 1 : xff;
			while (*last == ' ')
				last++;
			size_t n = strcspn(last, " ");
			if (n > 0 && n < 64)
				return arena_strndup(r->a, last, n);
		}
	}
	return r->remote_addr && *r->remote_addr ? r->remote_addr : "-";
}

const char *auth_token(struct req *r)
{
	const char *h = req_env(r, "HTTP_AUTHORIZATION");
	if (h) {
		while (*h == ' ')
			h++;
		if (strncasecmp(h, "Bearer ", 7) == 0) {
			h += 7;
			while (*h == ' ')
				h++;
			size_t n = strcspn(h, " ");
			if (n > 0)
				return arena_strndup(r->a, h, n);
		}
	}
	const char *c = req_cookie(r, "session_token");
	return c && *c ? c : NULL;
}

static bool cookie_secure(struct req *r)
{
	int m = app_cfg(r)->cookie_secure;
	return m == COOKIE_SECURE_ON || (m == COOKIE_SECURE_AUTO && r->https);
}

void auth_set_cookie(struct req *r, const char *token)
{
	res_header(r, "Set-Cookie",
		   arena_printf(r->a,
				"session_token=%s; Max-Age=%lld; Path=/; HttpOnly; SameSite=Lax%s",
				token, (long long)app_cfg(r)->session_ttl_s,
				cookie_secure(r) ? "; Secure" : ""));
}

void auth_clear_cookie(struct req *r)
{
	res_header(r, "Set-Cookie",
		   arena_printf(r->a,
				"session_token=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; "
				"Path=/; HttpOnly; SameSite=Lax%s",
				cookie_secure(r) ? "; Secure" : ""));
}

/* A random (version 4) UUID: the session id, also the token's jti. */
static void uuid_v4(char out[37])
{
	unsigned char b[16];
	if (getrandom(b, sizeof(b), 0) != sizeof(b)) {
		/* not expected with flags 0; the id must be unique, not secret (the token is
		 * signed) */
		char h[2][17];
		sess_random_hex(h[0]);
		sess_random_hex(h[1]);
		for (int i = 0; i < 16; i++)
			b[i] = (unsigned char)((h[i / 8][(i % 8) * 2] & 0x0f) << 4 |
					       (h[i / 8][(i % 8) * 2 + 1] & 0x0f));
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

/* The address as inet text when it parses as IPv4 or IPv6, else NULL (unix sockets). */
static const char *inet_or_null(const char *a)
{
	unsigned char buf[sizeof(struct in6_addr)];
	if (a && (inet_pton(AF_INET, a, buf) == 1 || inet_pton(AF_INET6, a, buf) == 1))
		return a;
	return NULL;
}

int auth_session_create(struct req *r, const char *user_id, const char *tenant_id, bool login,
			const char **token, const char **expires_at)
{
	struct app_state *st = state(r);
	const struct app_config *cfg = app_cfg(r);
	char jti[37];
	uuid_v4(jti);
	int64_t now_s = wall_us() / 1000000;
	struct auth_claims c;
	memset(&c, 0, sizeof(c));
	snprintf(c.sub, sizeof(c.sub), "%s", user_id);
	snprintf(c.tid, sizeof(c.tid), "%s", tenant_id);
	snprintf(c.jti, sizeof(c.jti), "%s", jti);
	c.iat_s = now_s;
	c.exp_s = now_s + cfg->session_ttl_s;
	char *tok = auth_issue(&c, st->key, st->keylen);
	if (!tok)
		return req_fail(r, RC_INTERNAL, "token signing failed");
	*token = arena_strdup(r->a, tok);
	free(tok);

	const char *ua = req_env(r, "HTTP_USER_AGENT");
	char exp[24];
	snprintf(exp, sizeof(exp), "%lld", (long long)c.exp_s);
	const char *p[] = {jti,
			   user_id,
			   tenant_id,
			   exp,
			   ua,
			   inet_or_null(auth_client_addr(r)),
			   login ? "t" : "f"};
	bool found = false;
	*expires_at =
		db_value(&r->c, &found,
			 "WITH s AS (INSERT INTO user_sessions"
			 " (id, user_id, tenant_id, expires_at, user_agent, ip, last_seen_at)"
			 " VALUES ($1, $2, $3, to_timestamp($4::bigint), left($5, 512), $6::inet,"
			 " now()) RETURNING expires_at),"
			 " u AS (UPDATE user_profiles SET last_login_at = now()"
			 " WHERE id = $2 AND $7::boolean)"
			 " SELECT to_json(expires_at) #>> '{}' FROM s",
			 7, p);
	if (!*expires_at && r->rc != RC_OK)
		return r->rc;
	if (!*expires_at)
		return req_fail(r, RC_INTERNAL, "session insert: no row");
	return RC_OK;
}

void auth_revoke_cached(struct req *r, const char *user_id, const char *sid)
{
	struct app_state *st = state(r);
	if (sess_revoke(r->t->kv, user_id, sid, app_cfg(r)->session_cache_ttl_s) < 0) {
		atomic_store(&st->gen_bump, true);
		log_msg(LL_WARN, r->rid,
			"session revocation did not reach redis; the cache generation is replaced");
	}
}

/* --- rate limiting ------------------------------------------------------------------- */

int auth_too_many(struct req *r, const struct rl_result *res)
{
	static const char msg[] = "Too many requests. Please wait a moment and try again.";
	char v[32];
	snprintf(v, sizeof(v), "%lld", (long long)res->retry_after_s);
	res_header(r, "Retry-After", v);
	snprintf(v, sizeof(v), "%lld", (long long)res->limit);
	res_header(r, "RateLimit-Limit", v);
	res_header(r, "RateLimit-Remaining", "0");
	snprintf(v, sizeof(v), "%lld", (long long)res->reset_s);
	res_header(r, "RateLimit-Reset", v);
	const char *body = arena_printf(
		r->a,
		"{\"detail\":\"%s\",\"error\":{\"code\":\"RATE_LIMIT_EXCEEDED\",\"message\":\"%s\","
		"\"details\":{\"retry_after\":%lld}}}",
		msg, msg, (long long)res->retry_after_s);
	return res_json_text(r, 429, body, strlen(body));
}

static void fail_keys(struct req *r, const char *email, const char **k1, const char **k2)
{
	const char *addr = auth_client_addr(r);
	*k1 = arena_printf(r->a, "rl:lf:%s:%s", addr, email);
	*k2 = arena_printf(r->a, "rl:lfi:%s", addr);
}

static void fail_limits(struct req *r, struct rl_limit *l1, struct rl_limit *l2)
{
	const struct app_config *cfg = app_cfg(r);
	l1->limit = cfg->rl_login_fail_max;
	l1->period_ms = cfg->rl_login_fail_window_s * 1000;
	l2->limit = cfg->rl_login_fail_ip_max;
	l2->period_ms = cfg->rl_login_fail_window_s * 1000;
}

/* Both failure buckets with cost, in one round trip, plus (pend != 0) the count of attempts
 * in flight on each: res gets the more restrictive result, *pending (may be NULL) the
 * in-flight attempts of the bucket that refused, as counted after this call. */
static void login_buckets(struct req *r, const char *email, const int cost[2], int pend,
			  struct rl_result b[2], struct rl_result *res, long long *pending)
{
	const char *k[2];
	struct rl_limit l[2];
	fail_keys(r, email, &k[0], &k[1]);
	fail_limits(r, &l[0], &l[1]);
	struct rl_cmd c[2];
	struct kv_argv cmds[6];
	redisReply *out[6] = {NULL};
	const char *pk[2];
	int n = 0;
	if (pend) {
		/* in-flight counters, before the takes: an attempt refused while another one
		 * held the unit then always counts that one (its settle decrements after it gives
		 * the unit back). A short expiry: a worker that dies mid-attempt leaves a count
		 * that fades. */
		for (int i = 0; i < 2; i++) {
			pk[i] = arena_printf(r->a, "%s:pending", k[i]);
			struct kv_argv a = {0};
			kv_argv_add(&a, "INCRBY", 6);
			kv_argv_add(&a, pk[i], strlen(pk[i]));
			kv_argv_add(&a, pend > 0 ? "1" : "-1", pend > 0 ? 1 : 2);
			cmds[n++] = a;
			struct kv_argv e = {0};
			kv_argv_add(&e, "PEXPIRE", 7);
			kv_argv_add(&e, pk[i], strlen(pk[i]));
			kv_argv_add(&e, "60000", 5);
			cmds[n++] = e;
		}
	}
	int first = n; /* replies of the two checks */
	for (int i = 0; i < 2; i++) {
		rl_cmd(&c[i], k[i], &l[i], cost[i]);
		cmds[n++] = c[i].a;
	}
	bool ok = kv_pipeline(r->t->kv, n, cmds, out) == 0;
	int64_t now_ms = now_us() / 1000;
	for (int i = 0; i < 2; i++)
		if (!ok || rl_parse(out[first + i], &l[i], &b[i]) < 0)
			rl_local_check(state(r)->rl, k[i], &l[i], cost[i], now_ms, &b[i]);
	int refused = !b[0].allowed ? 0 : !b[1].allowed ? 1 : -1;
	if (pending) {
		*pending = 0;
		redisReply *x = ok && pend && refused >= 0 ? out[2 * refused] : NULL;
		if (x && x->type == REDIS_REPLY_INTEGER)
			*pending = x->integer;
	}
	for (int i = 0; ok && i < n; i++)
		if (out[i])
			freeReplyObject(out[i]);
	if (refused >= 0)
		*res = b[refused];
	else
		*res = b[0].remaining <= b[1].remaining ? b[0] : b[1];
}

/* How long a login waits for attempts in flight on its bucket to settle, and how often it
 * looks again. */
#define ATTEMPT_WAIT_MS 10000
#define ATTEMPT_POLL_MS 20

bool auth_login_attempt(struct req *r, const char *email, struct rl_result *res)
{
	static const int take[2] = {1, 1};
	int64_t deadline = now_us() / 1000 + ATTEMPT_WAIT_MS;
	for (;;) {
		long long pending = 0;
		struct rl_result b[2];
		login_buckets(r, email, take, 1, b, res, &pending);
		if (res->allowed)
			return true;
		/* refused: a refusing bucket took nothing; give back what the other took, and
		 * the in-flight marks */
		int back[2] = {b[0].allowed ? -1 : 0, b[1].allowed ? -1 : 0};
		struct rl_result ignored[2], sum;
		login_buckets(r, email, back, -1, ignored, &sum, NULL);
		/* Refused while other attempts are still verifying (pending counts ours too):
		 * those that succeed give their unit back, so wait for them rather than answer 429
		 * to a burst of right passwords. Refused by recorded failures alone: 429 now. */
		if (pending <= 1 || now_us() / 1000 >= deadline)
			return false;
		struct timespec ts = {0, ATTEMPT_POLL_MS * 1000000L};
		nanosleep(&ts, NULL);
	}
}

void auth_login_settle(struct req *r, const char *email, bool ok)
{
	static const int give_back[2] = {-1, -1}, keep[2] = {0, 0};
	struct rl_result b[2], res;
	login_buckets(r, email, ok ? give_back : keep, -1, b, &res, NULL);
}

bool auth_login_peek_address(struct req *r, struct rl_result *res)
{
	const char *k1, *k2;
	struct rl_limit l1, l2;
	fail_keys(r, "", &k1, &k2);
	fail_limits(r, &l1, &l2);
	rl_check(r->t->kv, state(r)->rl, k2, &l2, 0, res);
	return res->allowed;
}

/* --- the middleware ------------------------------------------------------------------ */

static int unauth(struct req *r, const char *msg)
{
	res_header(r, "WWW-Authenticate", "Bearer");
	return req_fail(r, RC_UNAUTH, "%s", msg);
}

static void free_reply(void *p)
{
	freeReplyObject(p);
}

/* The durable check: the session row, its user and tenant. RC_OK when live; then *me is the
 * user's /me document (arena). */
static int session_from_db(struct req *r, const struct auth_claims *c, const char **me)
{
	const char *p[] = {c->jti, c->sub, c->tid};
	PGresult *res =
		db_exec(&r->c,
			"SELECT CASE WHEN NOT u.is_active THEN 'inactive'"
			" WHEN s.revoked_at IS NOT NULL OR s.expires_at <= now() THEN 'revoked'"
			" ELSE 'live' END AS state, " AUTH_ME_JSON " AS me"
			" FROM user_sessions s JOIN user_profiles u"
			" ON u.id = s.user_id AND u.tenant_id = s.tenant_id"
			" LEFT JOIN tenants t ON t.id = u.tenant_id"
			" WHERE s.id = $1 AND s.user_id = $2 AND s.tenant_id = $3",
			3, p);
	if (!res)
		return r->rc;
	if (PQntuples(res) != 1)
		return unauth(r, "Invalid or expired token");
	const char *v = db_get(res, 0, "state");
	if (strcmp(v, "inactive") == 0)
		return unauth(r, "User not found or inactive");
	if (strcmp(v, "live") != 0)
		return unauth(r, "Invalid or expired token");
	*me = db_get(res, 0, "me");
	return RC_OK;
}

void auth_cache_me(struct req *r, const char *json, size_t len)
{
	struct auth_ctx *x = r->auth.ext;
	if (!x || !x->stamp_ok)
		return;
	int64_t ttl_s = app_cfg(r)->session_cache_ttl_s;
	int64_t left_s = r->auth.exp_s - wall_us() / 1000000;
	sess_refill(r->t->kv, NULL, r->auth.user_id, &x->stamp, left_s < ttl_s ? left_s : ttl_s,
		    json, len);
}

/* The per-client cap on requests served at once (machine-wide, from the scoreboard): false
 * with a 429 set when this request would exceed it. user: the token's subject, or NULL for an
 * anonymous request (counted per address). */
static bool inflight_enter(struct req *r, const char *user)
{
	const struct app_config *cfg = app_cfg(r);
	const char *who = user ? arena_printf(r->a, "u:%s", user) :
				 arena_printf(r->a, "a:%s", auth_client_addr(r));
	/* FNV-1a; 0 means "no client" in the scoreboard */
	uint64_t h = 0xcbf29ce484222325ULL;
	for (const unsigned char *p = (const unsigned char *)who; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	h |= 1;
	int64_t cap = user ? cfg->max_inflight_per_user : cfg->max_inflight_per_address;
	int n = sb_client_enter(r->w->sb, r->w->slot, r->t->idx, h);
	if (n <= cap)
		return true;
	sb_client_clear(r->w->sb, r->w->slot, r->t->idx);
	static const char body[] =
		"{\"detail\":\"Too many concurrent requests from this client; retry shortly\","
		"\"error\":{\"code\":\"TOO_MANY_CONCURRENT_REQUESTS\"}}";
	res_header(r, "Retry-After", "1");
	res_json_text(r, 429, body, sizeof(body) - 1);
	return false;
}

int app_before(struct req *r)
{
	const struct route *rt = r->route;
	struct app_state *st = state(r);
	const struct app_config *cfg = app_cfg(r);
	bool need_auth = (rt->flags & ROUTE_AUTH) != 0;
	bool limited = !(rt->flags & ROUTE_INTERNAL) &&
		       (rt->rl_class == RL_DEFAULT || rt->rl_class == RL_AI);
	if (rt->rl_class == RL_LOGIN) {
		/* an address out of failed logins is refused before its body is read */
		struct rl_result res;
		if (!auth_login_peek_address(r, &res))
			auth_too_many(r, &res);
		return RC_OK;
	}
	if (!need_auth && !limited)
		return RC_OK;

	const char *tok = NULL;
	struct auth_claims c;
	int v = AUTH_INVALID;
	memset(&c, 0, sizeof(c));
	if (need_auth) {
		tok = auth_token(r);
		if (tok)
			v = auth_verify_cached(tok_cache(st), tok, st->key, st->keylen,
					       wall_us() / 1000000, &c);
	}
	bool user = v == AUTH_OK && jx_is_uuid(c.sub) && jx_is_uuid(c.tid) && jx_is_uuid(c.jti);

	/* one round trip: [rate-limit script] [session check: MGET, PEXPIRE] */
	struct rl_limit lim = {0, 60000};
	const char *rkey = NULL;
	struct rl_cmd rcmd;
	struct sess_cmd scmd;
	struct kv_argv cmds[3];
	redisReply *out[3] = {NULL, NULL, NULL};
	int n = 0, irl = -1, isess = -1;
	if (limited) {
		bool ai = rt->rl_class == RL_AI;
		lim.limit = ai ? cfg->rl_ai_per_min : cfg->rl_default_per_min;
		rkey = user ? arena_printf(r->a, "rl:%s:u:%s", ai ? "ai" : "d", c.sub) :
			      arena_printf(r->a, "rl:%s:ip:%s", ai ? "ai" : "d",
					   auth_client_addr(r));
		rl_cmd(&rcmd, rkey, &lim, 1);
		irl = n;
		cmds[n++] = rcmd.a;
	}
	int64_t ttl_s = cfg->session_cache_ttl_s;
	int64_t left_s = c.exp_s - wall_us() / 1000000;
	if (left_s < ttl_s)
		ttl_s = left_s;
	if (user) {
		sess_check_cmd(&scmd, c.jti, c.sub, st->lease_ms);
		isess = n;
		cmds[n++] = scmd.a[0];
		cmds[n++] = scmd.a[1];
	}
	bool kv_ok = n > 0 && kv_pipeline(r->t->kv, n, cmds, out) == 0;
	for (int i = 0; i < n; i++)
		arena_defer(r->a, free_reply, out[i]);

	if (limited) {
		struct rl_result res;
		if (!kv_ok || rl_parse(out[irl], &lim, &res) < 0)
			rl_local_check(st->rl, rkey, &lim, 1, now_us() / 1000, &res);
		if (!res.allowed) {
			/* the 429 response is set: RC_OK with r->status set tells the server
			 * the request is answered (lib/srv.h, before) */
			auth_too_many(r, &res);
			return RC_OK;
		}
	}
	if (limited && !inflight_enter(r, user ? c.sub : NULL))
		return RC_OK; /* answered: 429 */
	if (!need_auth)
		return RC_OK;
	if (!tok)
		return unauth(r, "Not authenticated");
	if (v == AUTH_EXPIRED)
		return unauth(r, "Token expired");
	if (!user)
		return unauth(r, "Invalid or expired token");

	struct auth_ctx *x = arena_calloc(r->a, sizeof(*x));
	const char *data = NULL;
	size_t dlen = 0;
	int hit = kv_ok ? sess_check_parse(out[isess], &x->stamp, &data, &dlen) : SESS_BAD;
	x->stamp_ok = hit != SESS_BAD;
	if (hit == SESS_HIT && data) {
		x->me_json = arena_strndup(r->a, data, dlen);
		x->me_len = dlen;
	}
	if (hit != SESS_HIT) {
		if (hit == SESS_BAD)
			ops_count(r, OPS_SESSION_FALLBACK);
		/* a miss with the marker or generation missing: create them before asking
		 * PostgreSQL, so that the refill afterwards is a valid compare-and-set */
		if (hit == SESS_MISS && sess_prepare(r->t->kv, c.sub, &x->stamp, st->lease_ms,
						     cfg->session_cache_ttl_s) < 0)
			x->stamp_ok = false;
		const char *me = NULL;
		int rc = session_from_db(r, &c, &me);
		if (rc != RC_OK)
			return rc;
		x->me_json = me;
		x->me_len = me ? strlen(me) : 0;
		/* the session and the /me document, both as PostgreSQL just said */
		if (x->stamp_ok && ttl_s > 0)
			sess_refill(r->t->kv, c.jti, c.sub, &x->stamp, ttl_s, me, x->me_len);
	}
	r->auth.ext = x;
	/* canonical UUIDs (checked above): 36 characters and the NUL */
	memcpy(r->auth.user_id, c.sub, 37);
	memcpy(r->auth.tenant_id, c.tid, 37);
	memcpy(r->auth.sid, c.jti, 37);
	r->auth.exp_s = c.exp_s;
	r->authed = true;
	r->who = &r->auth;
	return RC_OK;
}
