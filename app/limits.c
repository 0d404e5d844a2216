/* limits.c - 429 answers and the failed-login budgets (limits.h).
 *
 * Each budget is a bucket of lib/rl.h in Redis (one round trip for both), with the worker's
 * local table (app/wstate.h) standing in while Redis is unavailable.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../lib/arena.h"
#include "limits.h"
#include "session.h"
#include "wstate.h"

int limits_too_many(struct req *r, const struct rl_result *res)
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

/* --- the failed-login budgets ---------------------------------------------------------- */

/* The two buckets: k[0] (email, address), k[1] (address alone), and their limits. */
static void fail_buckets(struct req *r, const char *email, const char *k[2], struct rl_limit l[2])
{
	const struct app_config *cfg = app_cfg(r);
	const char *addr = session_client_addr(r);
	k[0] = arena_printf(r->a, "rl:lf:%s:%s", addr, email);
	k[1] = arena_printf(r->a, "rl:lfi:%s", addr);
	l[0].limit = cfg->rl_login_fail_max;
	l[0].period_ms = cfg->rl_login_fail_window_s * 1000;
	l[1].limit = cfg->rl_login_fail_ip_max;
	l[1].period_ms = cfg->rl_login_fail_window_s * 1000;
}

/* Appends to cmds the in-flight counter commands of bucket key k: INCRBY by pend (+1 or -1)
 * and a short expiry. Returns the number of commands added (2). */
static int pending_cmds(struct req *r, const char *k, int pend, struct kv_argv *cmds)
{
	const char *pk = arena_printf(r->a, "%s:pending", k);
	struct kv_argv a = {0};
	kv_argv_add(&a, "INCRBY", 6);
	kv_argv_add(&a, pk, strlen(pk));
	kv_argv_add(&a, pend > 0 ? "1" : "-1", pend > 0 ? 1 : 2);
	cmds[0] = a;
	struct kv_argv e = {0};
	kv_argv_add(&e, "PEXPIRE", 7);
	kv_argv_add(&e, pk, strlen(pk));
	kv_argv_add(&e, "60000", 5);
	cmds[1] = e;
	return 2;
}

/* Both failure buckets with cost, in one round trip, plus (pend != 0) the count of attempts
 * in flight on each: res gets the more restrictive result, *pending (may be NULL) the
 * in-flight attempts of the bucket that refused, as counted after this call. */
static void login_buckets(struct req *r, const char *email, const int cost[2], int pend,
			  struct rl_result b[2], struct rl_result *res, long long *pending)
{
	const char *k[2];
	struct rl_limit l[2];
	fail_buckets(r, email, k, l);
	struct rl_cmd c[2];
	struct kv_argv cmds[6];
	redisReply *out[6] = {NULL};
	int n = 0;
	/* in-flight counters, before the takes: an attempt refused while another one held the
	 * unit then always counts that one (its settle decrements after it gives the unit
	 * back). A short expiry: a worker that dies mid-attempt leaves a count that fades. */
	for (int i = 0; pend && i < 2; i++)
		n += pending_cmds(r, k[i], pend, &cmds[n]);
	int first = n; /* replies of the two checks */
	for (int i = 0; i < 2; i++) {
		rl_cmd(&c[i], k[i], &l[i], cost[i]);
		cmds[n++] = c[i].a;
	}
	bool ok = kv_pipeline(r->t->kv, n, cmds, out) == 0;
	int64_t now_ms = now_us() / 1000;
	for (int i = 0; i < 2; i++)
		if (!ok || rl_parse(out[first + i], &l[i], &b[i]) < 0)
			rl_local_check(wstate_get(r)->rl, k[i], &l[i], cost[i], now_ms, &b[i]);
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

bool limits_login_attempt(struct req *r, const char *email, struct rl_result *res)
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

void limits_login_settle(struct req *r, const char *email, bool ok)
{
	static const int give_back[2] = {-1, -1}, keep[2] = {0, 0};
	struct rl_result b[2], res;
	login_buckets(r, email, ok ? give_back : keep, -1, b, &res, NULL);
}

bool limits_login_peek_address(struct req *r, struct rl_result *res)
{
	const char *k[2];
	struct rl_limit l[2];
	fail_buckets(r, "", k, l);
	rl_check(r->t->kv, wstate_get(r)->rl, k[1], &l[1], 0, res);
	return res->allowed;
}
