/* mw.c - the middleware in fixed order (ARCHITECTURE.md section 2): rate limit, the in-flight
 * cap, authenticate. The body is parsed and validated by the server after this returns RC_OK.
 *
 * Cost of an authenticated request on the hot path: one HMAC (the token), one Redis round trip
 * (the rate-limit script and the session check pipelined), no SQL. With Redis unavailable:
 * the rate limit comes from this worker's table and the session from one PostgreSQL query;
 * lib/kv.c skips a dead or hung Redis at once (the heartbeat thread, app/wstate.c, is the
 * worker's only prober), so an outage adds no timeout to requests.
 *
 * The pieces live next door: sessions and tokens in app/session.c, the login budgets and the
 * 429 answer in app/limits.c, the per-worker state in app/wstate.c.
 */
#include <string.h>

#include "../lib/arena.h"
#include "../lib/sb.h"
#include "limits.h"
#include "pcache.h"
#include "ops.h"
#include "session.h"
#include "wstate.h"

/* What the middleware works out about one request, in the order it does. */
struct gate {
	bool need_auth;         /* the route is ROUTE_AUTH */
	bool limited;           /* the route counts against a per-minute limit */
	const char *tok;        /* the request's token, or NULL (arena) */
	int verdict;            /* enum auth_verify of tok (AUTH_INVALID without one) */
	struct auth_claims c;   /* its claims when verdict is AUTH_OK */
	bool user;              /* verified, with canonical UUIDs in sub, tid and jti */
	struct rl_limit lim;    /* the route's limit */
	const char *rkey;       /* its bucket (arena) */
	struct rl_cmd rcmd;     /* the rate-limit command */
	struct sess_cmd scmd;   /* the session-cache check */
	struct kv_argv cmds[4]; /* the round trip: [rate limit] [session: MGET, PEXPIRE] [pv] */
	redisReply *out[4];     /* its replies (freed with the arena) */
	struct kv_argv vcmd;    /* the tenant's product version (product read routes) */
	char vkey[48];          /* its key */
	int iver;               /* index of its reply, or -1 */
	int n;                  /* commands in cmds */
	int irl;                /* index of the rate-limit reply, or -1 */
	int isess;              /* index of the session reply, or -1 */
	bool kv_ok;             /* Redis answered the round trip */
};

static int unauth(struct req *r, const char *msg)
{
	res_header(r, "WWW-Authenticate", "Bearer");
	return req_fail(r, RC_UNAUTH, "%s", msg);
}

static void free_reply(void *p)
{
	freeReplyObject(p);
}

/* The token and its claims, when the route needs them. */
static void read_token(struct req *r, struct gate *g)
{
	struct app_state *st = wstate_get(r);
	g->verdict = AUTH_INVALID;
	memset(&g->c, 0, sizeof(g->c));
	if (g->need_auth) {
		g->tok = session_token(r);
		if (g->tok)
			g->verdict = auth_verify_cached(wstate_tok_cache(st), g->tok, st->key,
							st->keylen, wall_us() / 1000000, &g->c);
	}
	g->user = g->verdict == AUTH_OK && jx_is_uuid(g->c.sub) && jx_is_uuid(g->c.tid) &&
		  jx_is_uuid(g->c.jti);
}

/* One Redis round trip: the rate-limit script (limited routes) and the session check (a
 * verified token). */
static void round_trip(struct req *r, struct gate *g)
{
	const struct app_config *cfg = app_cfg(r);
	g->irl = g->isess = g->iver = -1;
	if (g->limited) {
		bool ai = r->route->rl_class == RL_AI;
		g->lim =
			(struct rl_limit){ai ? cfg->rl_ai_per_min : cfg->rl_default_per_min, 60000};
		g->rkey = g->user ? arena_printf(r->a, "rl:%s:u:%s", ai ? "ai" : "d", g->c.sub)
				  : arena_printf(r->a, "rl:%s:ip:%s", ai ? "ai" : "d",
						 session_client_addr(r));
		rl_cmd(&g->rcmd, g->rkey, &g->lim, 1);
		g->irl = g->n;
		g->cmds[g->n++] = g->rcmd.a;
	}
	if (g->user) {
		sess_check_cmd(&g->scmd, g->c.jti, g->c.sub, wstate_get(r)->lease_ms);
		g->isess = g->n;
		g->cmds[g->n++] = g->scmd.a[0];
		g->cmds[g->n++] = g->scmd.a[1];
		if (pcache_route(r)) {
			pcache_cmd(&g->vcmd, g->vkey, sizeof(g->vkey), g->c.tid);
			g->iver = g->n;
			g->cmds[g->n++] = g->vcmd;
		}
	}
	g->kv_ok = g->n > 0 && kv_pipeline(r->t->kv, g->n, g->cmds, g->out) == 0;
	for (int i = 0; i < g->n; i++)
		arena_defer(r->a, free_reply, g->out[i]);
}

/* The route's per-minute limit, from Redis or the worker's table: false with the 429 set when
 * spent. */
static bool rate_allows(struct req *r, struct gate *g)
{
	struct rl_result res;
	if (!g->kv_ok || rl_parse(g->out[g->irl], &g->lim, &res) < 0)
		rl_local_check(wstate_get(r)->rl, g->rkey, &g->lim, 1, now_us() / 1000, &res);
	if (res.allowed)
		return true;
	limits_too_many(r, &res);
	return false;
}

/* The per-client cap on requests served at once (machine-wide, from the scoreboard): false
 * with a 429 set when this request would exceed it. user: the token's subject, or NULL for an
 * anonymous request (counted per address). */
static bool inflight_enter(struct req *r, const char *user)
{
	const struct app_config *cfg = app_cfg(r);
	const char *who = user ? arena_printf(r->a, "u:%s", user)
			       : arena_printf(r->a, "a:%s", session_client_addr(r));
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

/* The session of a verified token: from the Redis check of the round trip, else (a miss, or
 * Redis unavailable) from PostgreSQL, refilling the cache. RC_OK with *x filled, or the 401. */
static int session_live(struct req *r, const struct gate *g, struct session_info *x)
{
	struct app_state *st = wstate_get(r);
	const struct app_config *cfg = app_cfg(r);
	const char *data = NULL;
	size_t dlen = 0;
	int hit = g->kv_ok ? sess_check_parse(g->out[g->isess], &x->stamp, &data, &dlen) : SESS_BAD;
	x->stamp_ok = hit != SESS_BAD;
	if (hit == SESS_HIT) {
		if (data) {
			x->me_json = arena_strndup(r->a, data, dlen);
			x->me_len = dlen;
		}
		return RC_OK;
	}
	if (hit == SESS_BAD)
		ops_count(r, OPS_SESSION_FALLBACK);
	/* a miss with the marker or generation missing: create them before asking PostgreSQL,
	 * so that the refill afterwards is a valid compare-and-set */
	if (hit == SESS_MISS &&
	    sess_prepare(r->t->kv, g->c.sub, &x->stamp, st->lease_ms, cfg->session_cache_ttl_s) < 0)
		x->stamp_ok = false;
	const char *me = NULL;
	switch (session_check_db(r, &g->c, &me)) {
	case SESSION_LIVE: break;
	case SESSION_INACTIVE: return unauth(r, "User not found or inactive");
	case SESSION_ERROR: return r->rc;
	default: return unauth(r, "Invalid or expired token");
	}
	x->me_json = me;
	x->me_len = me ? strlen(me) : 0;
	/* the session and the /me document, both as PostgreSQL just said */
	int64_t ttl_s = cfg->session_cache_ttl_s;
	int64_t left_s = g->c.exp_s - wall_us() / 1000000;
	if (left_s < ttl_s)
		ttl_s = left_s;
	if (x->stamp_ok && ttl_s > 0)
		sess_refill(r->t->kv, g->c.jti, g->c.sub, &x->stamp, ttl_s, me, x->me_len);
	return RC_OK;
}

/* The principal of a verified token with a live session: RC_OK with r->auth set, or the 401. */
static int authenticate(struct req *r, const struct gate *g)
{
	if (!g->tok)
		return unauth(r, "Not authenticated");
	if (g->verdict == AUTH_EXPIRED)
		return unauth(r, "Token expired");
	if (!g->user)
		return unauth(r, "Invalid or expired token");
	struct session_info *x = arena_calloc(r->a, sizeof(*x));
	int rc = session_live(r, g, x);
	if (rc != RC_OK)
		return rc;
	r->auth.ext = x;
	if (g->kv_ok && g->iver >= 0)
		pcache_ver_parse(r, g->out[g->iver], g->c.tid, &x->pver);
	/* canonical UUIDs (checked above): 36 characters and the NUL */
	memcpy(r->auth.user_id, g->c.sub, 37);
	memcpy(r->auth.tenant_id, g->c.tid, 37);
	memcpy(r->auth.sid, g->c.jti, 37);
	r->auth.exp_s = g->c.exp_s;
	r->authed = true;
	r->who = &r->auth;
	return RC_OK;
}

/* A 429 set here is an answer: RC_OK with r->status set tells the server the request is
 * answered (lib/srv.h, before). */
int app_before(struct req *r)
{
	const struct route *rt = r->route;
	if (rt->rl_class == RL_LOGIN) {
		/* an address out of failed logins is refused before its body is read */
		struct rl_result res;
		if (!limits_login_peek_address(r, &res))
			limits_too_many(r, &res);
		return RC_OK;
	}
	struct gate g = {
		.need_auth = (rt->flags & ROUTE_AUTH) != 0,
		.limited = !(rt->flags & ROUTE_INTERNAL) &&
			   (rt->rl_class == RL_DEFAULT || rt->rl_class == RL_AI),
	};
	if (!g.need_auth && !g.limited)
		return RC_OK;
	read_token(r, &g);
	round_trip(r, &g);
	if (g.limited && !rate_allows(r, &g))
		return RC_OK;
	if (g.limited && !inflight_enter(r, g.user ? g.c.sub : NULL))
		return RC_OK;
	if (!g.need_auth)
		return RC_OK;
	return authenticate(r, &g);
}
