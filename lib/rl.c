/* rl.c - GCRA rate limiting: one Lua script in Redis, a per-worker table as the fallback. */
#include "rl.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#include "log.h"

/*
 * KEYS[1] = the key; ARGV = limit, period_ms, cost (negative: give back what was taken, never
 * below an empty bucket). Times are Redis's clock in microseconds
 * (integers: a high limit has an interval of a few us, which whole milliseconds would round
 * into a much lower limit); the key holds the TAT and expires when the bucket is empty, so idle
 * keys cost no memory. Returns {allowed, remaining, retry_after_ms, reset_ms}.
 */
static const char rl_lua[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
	"local limit = tonumber(ARGV[1])\n"
	"local period = tonumber(ARGV[2]) * 1000\n"
	"local cost = tonumber(ARGV[3])\n"
	"local interval = period / limit\n"
	"local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0\n"
	"if tat < now then tat = now end\n"
	"if cost < 0 then\n"
	"  tat = math.floor(tat + interval * cost + 0.5)\n"
	"  if tat <= now then\n"
	"    redis.call('DEL', KEYS[1])\n"
	"    return {1, limit, 0, 0}\n"
	"  end\n"
	"  redis.call('SET', KEYS[1], string.format('%d', tat), 'PX',\n"
	"             math.floor((tat - now) / 1000) + 1)\n"
	"  return {1, math.floor((period - (tat - now)) / interval), 0, math.ceil((tat - now) / 1000)}\n"
	"end\n"
	"local need = cost\n"
	"if need < 1 then need = 1 end\n"
	"local allow_at = tat + interval * need - period\n"
	"if now < allow_at then\n"
	"  return {0, 0, math.ceil((allow_at - now) / 1000), math.ceil((tat - now) / 1000)}\n"
	"end\n"
	"if cost > 0 then\n"
	"  tat = math.floor(tat + interval * cost + 0.5)\n"
	"  redis.call('SET', KEYS[1], string.format('%d', tat), 'PX',\n"
	"             math.floor((tat - now) / 1000) + 1)\n"
	"end\n"
	"local used = tat - now\n"
	"return {1, math.floor((period - used) / interval), 0, math.ceil(used / 1000)}\n";

static struct kv_script rl_script = {.body = rl_lua};
static pthread_once_t rl_once = PTHREAD_ONCE_INIT;

static void rl_script_init(void)
{
	if (kv_script_init(&rl_script) < 0)
		log_msg(LL_ERROR, NULL, "rate limiter: cannot hash its script");
}

void rl_cmd(struct rl_cmd *cmd, const char *key, const struct rl_limit *lim, int cost)
{
	pthread_once(&rl_once, rl_script_init);
	memset(&cmd->a, 0, sizeof(cmd->a));
	snprintf(cmd->num[0], sizeof(cmd->num[0]), "%lld", (long long)lim->limit);
	snprintf(cmd->num[1], sizeof(cmd->num[1]), "%lld", (long long)lim->period_ms);
	snprintf(cmd->num[2], sizeof(cmd->num[2]), "%d", cost);
	kv_argv_script(&cmd->a, &rl_script);
	kv_argv_add(&cmd->a, "1", 1);
	kv_argv_add(&cmd->a, key, strlen(key));
	for (int i = 0; i < 3; i++)
		kv_argv_add(&cmd->a, cmd->num[i], strlen(cmd->num[i]));
}

/* Seconds from ms, rounded up, at least `min`. */
static int64_t ceil_s(int64_t ms, int64_t min)
{
	int64_t s = (ms + 999) / 1000;
	return s < min ? min : s;
}

int rl_parse(const redisReply *x, const struct rl_limit *lim, struct rl_result *res)
{
	memset(res, 0, sizeof(*res));
	if (!x || x->type != REDIS_REPLY_ARRAY || x->elements != 4)
		return -1;
	for (size_t i = 0; i < 4; i++)
		if (x->element[i]->type != REDIS_REPLY_INTEGER)
			return -1;
	res->allowed = x->element[0]->integer == 1;
	res->limit = lim->limit;
	res->remaining = x->element[1]->integer < 0 ? 0 : x->element[1]->integer;
	if (res->remaining > lim->limit)
		res->remaining = lim->limit;
	res->retry_after_s = res->allowed ? 0 : ceil_s(x->element[2]->integer, 1);
	res->reset_s = ceil_s(x->element[3]->integer, 0);
	return 0;
}

/* --- the per-worker fallback ----------------------------------------------------------- */

#define RL_WAYS 8 /* entries per set: a key lives in one set, evicting the earliest TAT */

struct rl_slot {
	uint64_t h;     /* key hash, 0 = empty */
	int64_t tat_us; /* theoretical arrival time (monotonic us) */
};

struct rl_local {
	pthread_mutex_t mu;    /* guards slots; process-shared and robust when shared */
	size_t nsets;          /* number of sets, a power of two */
	uint64_t seed;         /* per-table hash seed */
	size_t map_bytes;      /* shared: size of the mapping holding this struct and the slots */
	struct rl_slot *slots; /* nsets * RL_WAYS */
};

static size_t sets_for(size_t keys)
{
	size_t sets = 8;
	while (sets * RL_WAYS < keys)
		sets <<= 1;
	return sets;
}

static void seed_init(struct rl_local *t)
{
	if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != sizeof(t->seed))
		t->seed = (uint64_t)now_us() * 0x9E3779B97F4A7C15ULL;
}

struct rl_local *rl_local_new(size_t keys)
{
	struct rl_local *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->nsets = sets_for(keys);
	t->slots = calloc(t->nsets * RL_WAYS, sizeof(*t->slots));
	if (!t->slots) {
		free(t);
		return NULL;
	}
	seed_init(t);
	pthread_mutex_init(&t->mu, NULL);
	return t;
}

struct rl_local *rl_local_new_shared(size_t keys)
{
	size_t sets = sets_for(keys);
	size_t bytes = sizeof(struct rl_local) + sets * RL_WAYS * sizeof(struct rl_slot);
	void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	struct rl_local *t = m;
	t->nsets = sets;
	t->map_bytes = bytes;
	t->slots = (struct rl_slot *)(t + 1);
	seed_init(t);
	/* robust: a worker killed while holding the lock must not stop the others */
	pthread_mutexattr_t at;
	pthread_mutexattr_init(&at);
	pthread_mutexattr_setpshared(&at, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&t->mu, &at);
	pthread_mutexattr_destroy(&at);
	return t;
}

void rl_local_free(struct rl_local *t)
{
	if (!t)
		return;
	if (t->map_bytes) {
		munmap(t, t->map_bytes);
		return;
	}
	pthread_mutex_destroy(&t->mu);
	free(t->slots);
	free(t);
}

/* Takes the table's lock; a holder that died leaves the slots consistent enough (each update
 * is one store), so the lock is simply marked consistent again. */
static void lock(struct rl_local *t)
{
	if (pthread_mutex_lock(&t->mu) == EOWNERDEAD)
		pthread_mutex_consistent(&t->mu);
}

/* FNV-1a over the key, mixed with the seed and finalised (splitmix64) so that sets spread. */
static uint64_t key_hash(uint64_t seed, const char *key)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h ? h : 1;
}

void rl_local_check(struct rl_local *t, const char *key, const struct rl_limit *lim, int cost,
		    int64_t now_ms, struct rl_result *res)
{
	/* the same arithmetic as the script, in microseconds */
	int64_t now = now_ms * 1000;
	double period = (double)lim->period_ms * 1000.0;
	double interval = period / (double)lim->limit;
	memset(res, 0, sizeof(*res));
	res->local = true;
	res->limit = lim->limit;
	uint64_t h = key_hash(t->seed, key);
	lock(t);
	struct rl_slot *set = &t->slots[(h & (t->nsets - 1)) * RL_WAYS];
	struct rl_slot *s = NULL, *victim = NULL;
	for (int i = 0; i < RL_WAYS; i++) {
		if (set[i].h == h) {
			s = &set[i];
			break;
		}
		/* an empty slot, else the one whose bucket empties first */
		if (!victim ||
		    (victim->h != 0 && (set[i].h == 0 || set[i].tat_us < victim->tat_us)))
			victim = &set[i];
	}
	int64_t tat = s ? s->tat_us : now;
	if (tat < now)
		tat = now;
	if (cost < 0) {
		tat = (int64_t)((double)tat + interval * cost + 0.5);
		if (tat < now)
			tat = now;
		if (s)
			s->tat_us = tat;
		res->allowed = true;
		res->remaining = (int64_t)((period - (double)(tat - now)) / interval);
		res->reset_s = ceil_s((tat - now + 999) / 1000, 0);
		goto out;
	}
	int need = cost < 1 ? 1 : cost;
	double allow_at = (double)tat + interval * need - period;
	if ((double)now < allow_at) {
		res->allowed = false;
		res->retry_after_s =
			ceil_s((int64_t)((allow_at - (double)now) / 1000.0 + 0.999), 1);
		res->reset_s = ceil_s((tat - now + 999) / 1000, 0);
		goto out;
	}
	if (cost > 0) {
		tat = (int64_t)((double)tat + interval * cost + 0.5);
		if (!s) {
			s = victim;
			s->h = h;
		}
		s->tat_us = tat;
	}
	res->allowed = true;
	int64_t used = tat - now;
	res->remaining = (int64_t)((period - (double)used) / interval);
	if (res->remaining < 0)
		res->remaining = 0;
	res->reset_s = ceil_s((used + 999) / 1000, 0);
out:
	pthread_mutex_unlock(&t->mu);
}

void rl_check(struct kv *kv, struct rl_local *t, const char *key, const struct rl_limit *lim,
	      int cost, struct rl_result *res)
{
	struct rl_cmd cmd;
	rl_cmd(&cmd, key, lim, cost);
	redisReply *x = kv ? kv_run(kv, &cmd.a, false) : NULL;
	int ok = x ? rl_parse(x, lim, res) : -1;
	if (x && ok < 0 && x->type == REDIS_REPLY_ERROR)
		log_msg(LL_WARN, NULL, "rate limiter: redis refused the script: %s", x->str);
	if (x)
		freeReplyObject(x);
	if (ok < 0)
		rl_local_check(t, key, lim, cost, now_us() / 1000, res);
}
