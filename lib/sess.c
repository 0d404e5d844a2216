/* sess.c - session validity cache in Redis: checks, compare-and-set refills, revocations and
 * the generation lease (rules in sess.h). */
#include "sess.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"

/* Before asking the store about a principal whose marker or generation is missing (evicted,
 * expired, first use): creates them so that the refill afterwards has a stamp to compare.
 * KEYS: urev:<pid>, sess:gen. ARGV: fresh marker, fresh generation, lease_ms, marker ttl_s.
 * Returns {gen, rev}. */
static const char prepare_lua[] =
	"local g = redis.call('GET', KEYS[2])\n"
	"if not g then g = ARGV[2]; redis.call('SET', KEYS[2], g, 'PX', ARGV[3]) end\n"
	"local u = redis.call('GET', KEYS[1])\n"
	"if not u then u = ARGV[1]; redis.call('SET', KEYS[1], u, 'EX', ARGV[4]) end\n"
	"return {g, u}\n";

/* KEYS: sess:<sid> (or a placeholder), urev:<pid>, sess:gen, pdata:<pid>. ARGV: gen, rev,
 * ttl_s, write the session entry (0/1), write the data (0/1), data. */
static const char refill_lua[] =
	"if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end\n"
	"if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end\n"
	"local stamp = ARGV[1] .. ':' .. ARGV[2]\n"
	"if ARGV[4] == '1' then redis.call('SET', KEYS[1], stamp, 'EX', ARGV[3]) end\n"
	"if ARGV[5] == '1' then\n"
	"  redis.call('SET', KEYS[4], stamp .. ':' .. ARGV[6], 'EX', ARGV[3])\n"
	"end\n"
	"if redis.call('TTL', KEYS[2]) < tonumber(ARGV[3]) then\n"
	"  redis.call('EXPIRE', KEYS[2], ARGV[3])\n"
	"end\n"
	"return 1\n";

/* KEYS: urev:<pid>, sess:<sid> (or a placeholder), pdata:<pid>. ARGV: fresh marker, ttl_s. */
static const char revoke_lua[] = "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])\n"
				 "redis.call('DEL', KEYS[2], KEYS[3])\n"
				 "return 1\n";

/* KEYS: sess:gen. ARGV: fresh generation, lease_ms, bump (0/1). */
static const char heartbeat_lua[] = "if ARGV[3] == '1' or not redis.call('GET', KEYS[1]) then\n"
				    "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
				    "  return 1\n"
				    "end\n"
				    "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
				    "return 0\n";

#define GEN_KEY "sess:gen"

static struct kv_script prepare_script = {.body = prepare_lua};
static struct kv_script refill_script = {.body = refill_lua};
static struct kv_script revoke_script = {.body = revoke_lua};
static struct kv_script heartbeat_script = {.body = heartbeat_lua};
static pthread_once_t scripts_once = PTHREAD_ONCE_INIT;

static void scripts_init(void)
{
	if (kv_script_init(&prepare_script) < 0 || kv_script_init(&refill_script) < 0 ||
	    kv_script_init(&revoke_script) < 0 || kv_script_init(&heartbeat_script) < 0)
		log_msg(LL_ERROR, NULL, "session cache: cannot hash its scripts");
}

void sess_random_hex(char *out)
{
	/* splitmix64 per thread, seeded once from the kernel; 64 bits per value is plenty for
	 * markers that must only differ from each other */
	static _Thread_local uint64_t state;
	static _Thread_local int seeded;
	if (!seeded) {
		if (getrandom(&state, sizeof(state), 0) != sizeof(state))
			state = (uint64_t)now_us() ^ ((uint64_t)(uintptr_t)&state << 17);
		seeded = 1;
	}
	uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	z ^= z >> 31;
	snprintf(out, 17, "%016llx", (unsigned long long)z);
}

static bool id_ok(const char *s)
{
	if (!s || !*s)
		return false;
	size_t n = 0;
	for (; s[n]; n++)
		if ((unsigned char)s[n] <= ' ' || (unsigned char)s[n] >= 0x7f || n >= SESS_ID_MAX)
			return false;
	return true;
}

void sess_check_cmd(struct sess_cmd *cmd, const char *sid, const char *pid, int64_t lease_ms)
{
	memset(cmd->a, 0, sizeof(cmd->a));
	bool ok = id_ok(sid) && id_ok(pid);
	/* an unusable id checks keys that never hold anything: always a miss */
	snprintf(cmd->k_sess, sizeof(cmd->k_sess), "sess:%s", ok ? sid : "-");
	snprintf(cmd->k_rev, sizeof(cmd->k_rev), "urev:%s", ok ? pid : "-");
	snprintf(cmd->k_data, sizeof(cmd->k_data), "pdata:%s", ok ? pid : "-");
	snprintf(cmd->lease, sizeof(cmd->lease), "%lld", (long long)lease_ms);
	struct kv_argv *a = &cmd->a[0];
	kv_argv_add(a, "MGET", 4);
	kv_argv_add(a, cmd->k_sess, strlen(cmd->k_sess));
	kv_argv_add(a, cmd->k_rev, strlen(cmd->k_rev));
	kv_argv_add(a, GEN_KEY, strlen(GEN_KEY));
	kv_argv_add(a, cmd->k_data, strlen(cmd->k_data));
	/* renews the lease if (and only if) it still exists: never revives an expired one */
	a = &cmd->a[1];
	kv_argv_add(a, "PEXPIRE", 7);
	kv_argv_add(a, GEN_KEY, strlen(GEN_KEY));
	kv_argv_add(a, cmd->lease, strlen(cmd->lease));
}

/* Copies a bulk-string element into dst (cap bytes); false when not a short string. */
static bool copy_str(const redisReply *e, char *dst, size_t cap)
{
	if (e->type != REDIS_REPLY_STRING || e->len == 0 || e->len >= cap)
		return false;
	memcpy(dst, e->str, e->len);
	dst[e->len] = '\0';
	return true;
}

int sess_check_parse(const redisReply *x, struct sess_stamp *st, const char **data, size_t *datalen)
{
	memset(st, 0, sizeof(*st));
	*data = NULL;
	*datalen = 0;
	if (!x || x->type != REDIS_REPLY_ARRAY || x->elements != 4)
		return SESS_BAD;
	const redisReply *e = x->element[0], *u = x->element[1], *g = x->element[2];
	const redisReply *d = x->element[3];
	if (!copy_str(g, st->gen, sizeof(st->gen)) || !copy_str(u, st->rev, sizeof(st->rev))) {
		st->gen[0] = st->rev[0] = '\0';
		return SESS_MISS; /* sess_prepare() before asking the store */
	}
	char stamp[sizeof(st->gen) + sizeof(st->rev) + 1];
	size_t n = (size_t)snprintf(stamp, sizeof(stamp), "%s:%s", st->gen, st->rev);
	if (d->type == REDIS_REPLY_STRING && d->len > n && memcmp(d->str, stamp, n) == 0 &&
	    d->str[n] == ':') {
		*data = d->str + n + 1;
		*datalen = d->len - n - 1;
	}
	bool hit = e->type == REDIS_REPLY_STRING && e->len == n && memcmp(e->str, stamp, n) == 0;
	return hit ? SESS_HIT : SESS_MISS;
}

int sess_prepare(struct kv *kv, const char *pid, struct sess_stamp *st, int64_t lease_ms,
		 int64_t ttl_s)
{
	if (st->gen[0] && st->rev[0])
		return 0;
	if (!id_ok(pid))
		return -1;
	pthread_once(&scripts_once, scripts_init);
	char k_rev[SESS_ID_MAX + 8], fresh_rev[24], fresh_gen[24], lease[24], ttl[24];
	snprintf(k_rev, sizeof(k_rev), "urev:%s", pid);
	sess_random_hex(fresh_rev);
	sess_random_hex(fresh_gen);
	snprintf(lease, sizeof(lease), "%lld", (long long)lease_ms);
	snprintf(ttl, sizeof(ttl), "%lld", (long long)(ttl_s > 0 ? ttl_s : 1));
	struct kv_argv a;
	kv_argv_script(&a, &prepare_script);
	kv_argv_add(&a, "2", 1);
	kv_argv_add(&a, k_rev, strlen(k_rev));
	kv_argv_add(&a, GEN_KEY, strlen(GEN_KEY));
	kv_argv_add(&a, fresh_rev, strlen(fresh_rev));
	kv_argv_add(&a, fresh_gen, strlen(fresh_gen));
	kv_argv_add(&a, lease, strlen(lease));
	kv_argv_add(&a, ttl, strlen(ttl));
	redisReply *x = kv_run(kv, &a, false);
	int rc = -1;
	if (x && x->type == REDIS_REPLY_ARRAY && x->elements == 2 &&
	    copy_str(x->element[0], st->gen, sizeof(st->gen)) &&
	    copy_str(x->element[1], st->rev, sizeof(st->rev)))
		rc = 0;
	else
		st->gen[0] = st->rev[0] = '\0';
	if (x)
		freeReplyObject(x);
	return rc;
}

int sess_refill(struct kv *kv, const char *sid, const char *pid, const struct sess_stamp *st,
		int64_t ttl_s, const char *data, size_t datalen)
{
	bool with_sid = id_ok(sid);
	if (!id_ok(pid) || !st->gen[0] || !st->rev[0] || (!with_sid && !data))
		return 0;
	pthread_once(&scripts_once, scripts_init);
	char k_sess[SESS_ID_MAX + 8], k_rev[SESS_ID_MAX + 8], k_data[SESS_ID_MAX + 8], ttl[24];
	snprintf(k_sess, sizeof(k_sess), "sess:%s", with_sid ? sid : "-");
	snprintf(k_rev, sizeof(k_rev), "urev:%s", pid);
	snprintf(k_data, sizeof(k_data), "pdata:%s", pid);
	snprintf(ttl, sizeof(ttl), "%lld", (long long)(ttl_s > 0 ? ttl_s : 1));
	struct kv_argv a;
	kv_argv_script(&a, &refill_script);
	kv_argv_add(&a, "4", 1);
	kv_argv_add(&a, k_sess, strlen(k_sess));
	kv_argv_add(&a, k_rev, strlen(k_rev));
	kv_argv_add(&a, GEN_KEY, strlen(GEN_KEY));
	kv_argv_add(&a, k_data, strlen(k_data));
	kv_argv_add(&a, st->gen, strlen(st->gen));
	kv_argv_add(&a, st->rev, strlen(st->rev));
	kv_argv_add(&a, ttl, strlen(ttl));
	kv_argv_add(&a, with_sid ? "1" : "0", 1);
	kv_argv_add(&a, data ? "1" : "0", 1);
	kv_argv_add(&a, data ? data : "", data ? datalen : 0);
	redisReply *x = kv_run(kv, &a, false);
	if (!x)
		return -1;
	int rc = x->type == REDIS_REPLY_INTEGER && x->integer == 1 ? 1 : 0;
	if (x->type == REDIS_REPLY_ERROR)
		log_msg(LL_WARN, NULL, "session cache refill refused: %s", x->str);
	freeReplyObject(x);
	return rc;
}

int sess_revoke(struct kv *kv, const char *pid, const char *sid, int64_t ttl_s)
{
	if (!id_ok(pid))
		return 0;
	pthread_once(&scripts_once, scripts_init);
	char fresh[24], k_rev[SESS_ID_MAX + 8], k_sess[SESS_ID_MAX + 8], k_data[SESS_ID_MAX + 8];
	char ttl[24];
	sess_random_hex(fresh);
	snprintf(k_rev, sizeof(k_rev), "urev:%s", pid);
	snprintf(k_sess, sizeof(k_sess), "sess:%s", id_ok(sid) ? sid : "-");
	snprintf(k_data, sizeof(k_data), "pdata:%s", pid);
	snprintf(ttl, sizeof(ttl), "%lld", (long long)(ttl_s > 0 ? ttl_s : 1));
	struct kv_argv a;
	kv_argv_script(&a, &revoke_script);
	kv_argv_add(&a, "3", 1);
	kv_argv_add(&a, k_rev, strlen(k_rev));
	kv_argv_add(&a, k_sess, strlen(k_sess));
	kv_argv_add(&a, k_data, strlen(k_data));
	kv_argv_add(&a, fresh, strlen(fresh));
	kv_argv_add(&a, ttl, strlen(ttl));
	redisReply *x = kv_run(kv, &a, true);
	if (!x)
		return -1;
	int rc = x->type == REDIS_REPLY_INTEGER ? 0 : -1;
	if (rc < 0)
		log_msg(LL_WARN, NULL, "session revocation refused by redis: %s",
			x->type == REDIS_REPLY_ERROR ? x->str : "unexpected reply");
	freeReplyObject(x);
	return rc;
}

int sess_heartbeat(struct kv *kv, int64_t lease_ms, bool bump)
{
	pthread_once(&scripts_once, scripts_init);
	char fresh[24], lease[24];
	sess_random_hex(fresh);
	snprintf(lease, sizeof(lease), "%lld", (long long)lease_ms);
	struct kv_argv a;
	kv_argv_script(&a, &heartbeat_script);
	kv_argv_add(&a, "1", 1);
	kv_argv_add(&a, GEN_KEY, strlen(GEN_KEY));
	kv_argv_add(&a, fresh, strlen(fresh));
	kv_argv_add(&a, lease, strlen(lease));
	kv_argv_add(&a, bump ? "1" : "0", 1);
	redisReply *x = kv_run(kv, &a, false);
	if (!x)
		return -1;
	int rc = x->type == REDIS_REPLY_INTEGER ? (int)x->integer : -1;
	freeReplyObject(x);
	return rc;
}
