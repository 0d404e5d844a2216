/* pcache.c - validated per-worker cache of product read answers (see pcache.h).
 *
 * A 4-way set-associative table of PCACHE_SLOTS entries per worker process (a direct-mapped
 * one lost 12 % of the benchmark's 200 lists to collisions), keyed by user id and a
 * route-specific sub key, each entry holding the answer, its ETag, the tenant version it was
 * read under and when. Slots are guarded by striped mutexes (the request threads of a worker
 * share the table); a hit copies the body into the response under the lock. An entry is used
 * only under the exact version the request read from Redis, and never after PCACHE_MAX_AGE_US
 * (a backstop for a write whose bump was lost to a Redis outage: this worker's table is also
 * emptied at once when a bump fails).
 */
#include "pcache.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/arena.h"
#include "../lib/log.h"
#include "products.h"
#include "session.h"

#define PCACHE_SLOTS 1024
#define PCACHE_WAYS 4
#define PCACHE_SETS (PCACHE_SLOTS / PCACHE_WAYS)
#define PCACHE_LOCKS 64
#define PCACHE_MAX_BODY (256 * 1024)
#define PCACHE_MAX_AGE_US (30LL * 1000000)

struct pc_entry {
	char user[37];
	size_t tslot;    /* its tenant's slot in tepoch */
	uint64_t tepoch; /* that slot's epoch when the answer was read */
	char sub[48];
	char ver[24];
	char etag[24];
	uint64_t epoch;
	int64_t at_us;
	char *body;
	size_t len;
};

static struct pc_entry table[PCACHE_SLOTS];
static pthread_mutex_t locks[PCACHE_LOCKS];
static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_uint_fast64_t epoch = 1; /* bumped to drop every entry of this worker */
#define PCACHE_TENANT_SLOTS 256
static atomic_uint_fast64_t tepoch[PCACHE_TENANT_SLOTS]; /* bumped to drop a tenant's */
static atomic_bool listening; /* the listener is connected and listening */
static pthread_once_t listener_once = PTHREAD_ONCE_INIT;
static const char *listener_conninfo;

static void init_locks(void)
{
	for (int i = 0; i < PCACHE_LOCKS; i++)
		pthread_mutex_init(&locks[i], NULL);
}

static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 0x100000001b3ULL;
	return h;
}

void pcache_etag(const char *body, size_t len, char *out)
{
	snprintf(out, 24, "W/\"%016llx\"",
		 (unsigned long long)fnv(0xcbf29ce484222325ULL, body, len));
}

bool pcache_inm_match(const char *inm, const char *etag)
{
	if (!inm || !*inm)
		return false;
	const char *opaque = etag + 2; /* "<hex>" with its quotes: weak comparison */
	size_t n = strlen(opaque);
	for (const char *p = inm; *p;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return true;
		if (p[0] == 'W' && p[1] == '/')
			p += 2;
		if (strncmp(p, opaque, n) == 0 &&
		    (p[n] == '\0' || p[n] == ',' || p[n] == ' ' || p[n] == '\t'))
			return true;
		const char *c = strchr(p, ',');
		if (!c)
			break;
		p = c;
	}
	return false;
}

static size_t tenant_slot(const char *tenant)
{
	return (size_t)(fnv(0xcbf29ce484222325ULL, tenant, strlen(tenant)) % PCACHE_TENANT_SLOTS);
}

/* One notification of sql/0007_read_path.sql: a tenant id, or "*" for every tenant. */
static void changed(const char *payload)
{
	if (!payload || strcmp(payload, "*") == 0 || !*payload)
		atomic_fetch_add(&epoch, 1);
	else
		atomic_fetch_add(&tepoch[tenant_slot(payload)], 1);
}

/* The listener thread: LISTEN ideaforge_products on its own connection, for good. Every
 * (re)connection first drops everything cached (changes while it was away went unheard). */
static void *listener(void *arg)
{
	(void)arg;
	for (;;) {
		PGconn *c = PQconnectdb(listener_conninfo);
		PGresult *res =
			PQstatus(c) == CONNECTION_OK
				? PQexec(c, "SET application_name = 'ideaforge-api listen'; "
					    "LISTEN ideaforge_products")
				: NULL;
		bool ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
		PQclear(res);
		if (ok) {
			atomic_fetch_add(&epoch, 1);
			atomic_store(&listening, true);
		}
		while (ok) {
			struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
			if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
				break;
			if (!PQconsumeInput(c))
				break;
			PGnotify *n;
			while ((n = PQnotifies(c)) != NULL) {
				changed(n->extra);
				PQfreemem(n);
			}
			if (PQstatus(c) != CONNECTION_OK)
				break;
		}
		if (atomic_exchange(&listening, false))
			log_msg(LL_WARN, NULL,
				"product cache: LISTEN connection lost, cache off until "
				"it is back");
		atomic_fetch_add(&epoch, 1);
		PQfinish(c);
		sleep(1);
	}
	return NULL;
}

static void listener_start(void)
{
	pthread_t th;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 256 * 1024);
	if (listener_conninfo && *listener_conninfo &&
	    pthread_create(&th, &at, listener, NULL) != 0)
		log_msg(LL_WARN, NULL, "product cache: cannot start the listener; cache off");
	pthread_attr_destroy(&at);
}

bool pcache_route(const struct req *r)
{
	return r->route && r->method == HM_GET &&
	       (r->route->fn == h_products_list || r->route->fn == h_products_get);
}

void pcache_cmd(struct kv_argv *a, char *keybuf, size_t cap, const char *tenant)
{
	int n = snprintf(keybuf, cap, "pv:%s", tenant);
	a->argc = 0;
	a->script = NULL;
	kv_argv_add(a, "GET", 3);
	kv_argv_add(a, keybuf, (size_t)n);
}

void pcache_ver_parse(struct req *r, const redisReply *rep, const char *tenant,
		      struct pcache_ver *v)
{
	v->ok = false;
	if (!rep)
		return;
	if (rep->type == REDIS_REPLY_STRING && rep->len > 0 && rep->len < sizeof(v->v)) {
		memcpy(v->v, rep->str, rep->len);
		v->v[rep->len] = '\0';
		v->ok = true;
		return;
	}
	if (rep->type == REDIS_REPLY_NIL) {
		/* first use, or Redis lost its data: start from the wall clock in microseconds, so
		 * the new counter never repeats a value an old cache entry was stored under */
		redisReply *x = kv_cmd(r->t->kv, "SET pv:%s %lld NX", tenant, (long long)wall_us());
		if (x)
			freeReplyObject(x);
	}
}

static struct pcache_ver *req_ver(const struct req *r)
{
	struct session_info *x = r->auth.ext;
	return r->authed && x && x->pver.ok ? &x->pver : NULL;
}

/* The set of (user, sub): its first entry's index in table. */
static size_t set_of(const char *user, const char *sub)
{
	uint64_t h = fnv(0xcbf29ce484222325ULL, user, strlen(user));
	h = fnv(h, sub, strlen(sub));
	return (size_t)(h % PCACHE_SETS) * PCACHE_WAYS;
}

/* The entry of (user, sub) in the set at i, or NULL. Under the set's lock. */
static struct pc_entry *find(size_t i, const char *user, const char *sub)
{
	for (size_t k = i; k < i + PCACHE_WAYS; k++)
		if (table[k].body && strcmp(table[k].user, user) == 0 &&
		    strcmp(table[k].sub, sub) == 0)
			return &table[k];
	return NULL;
}

/* Where (user, sub) goes in the set at i: its entry, else a free one, else the oldest. */
static struct pc_entry *victim(size_t i, const char *user, const char *sub)
{
	struct pc_entry *e = find(i, user, sub);
	if (e)
		return e;
	e = &table[i];
	for (size_t k = i; k < i + PCACHE_WAYS; k++) {
		if (!table[k].body)
			return &table[k];
		if (table[k].at_us < e->at_us)
			e = &table[k];
	}
	return e;
}

static int answer(struct req *r, const char *etag, const char *body, size_t len)
{
	res_header(r, "ETag", etag);
	if (pcache_inm_match(req_env(r, "HTTP_IF_NONE_MATCH"), etag)) {
		buf_reset(&r->out);
		r->status = 304;
		r->ctype = NULL;
		return RC_OK;
	}
	return res_json_text(r, 200, body, len);
}

bool pcache_get(struct req *r, const char *sub)
{
	struct pcache_ver *v = req_ver(r);
	if (!v || strlen(sub) >= sizeof(table[0].sub))
		return false;
	pthread_once(&once, init_locks);
	if (!listener_conninfo)
		listener_conninfo = r->w->cfg->database_url;
	pthread_once(&listener_once, listener_start);
	/* the epochs before any SQL: an answer read after a change was announced is stored
	 * under the epochs of before it, and so never used */
	size_t ts = tenant_slot(r->auth.tenant_id);
	v->snap = atomic_load(&listening);
	v->eg = atomic_load(&epoch);
	v->et = atomic_load(&tepoch[ts]);
	if (!v->snap)
		return false;
	size_t i = set_of(r->auth.user_id, sub);
	bool hit = false;
	char etag[24];
	pthread_mutex_lock(&locks[(i / PCACHE_WAYS) % PCACHE_LOCKS]);
	struct pc_entry *e = find(i, r->auth.user_id, sub);
	if (e && e->epoch == v->eg && e->tslot == ts && e->tepoch == v->et &&
	    strcmp(e->ver, v->v) == 0 && now_us() - e->at_us < PCACHE_MAX_AGE_US) {
		hit = true;
		memcpy(etag, e->etag, sizeof(etag));
		if (pcache_inm_match(req_env(r, "HTTP_IF_NONE_MATCH"), etag)) {
			buf_reset(&r->out);
			r->status = 304;
			r->ctype = NULL;
		} else {
			res_json_text(r, 200, e->body, e->len);
		}
	}
	pthread_mutex_unlock(&locks[(i / PCACHE_WAYS) % PCACHE_LOCKS]);
	if (hit)
		res_header(r, "ETag", etag);
	return hit;
}

int pcache_respond(struct req *r, const char *sub, const char *json)
{
	size_t len = strlen(json);
	char etag[24];
	pcache_etag(json, len, etag);
	const struct pcache_ver *v = req_ver(r);
	if (v && v->snap && len <= PCACHE_MAX_BODY && strlen(sub) < sizeof(table[0].sub)) {
		pthread_once(&once, init_locks);
		char *copy = malloc(len + 1);
		if (copy) {
			memcpy(copy, json, len + 1);
			size_t i = set_of(r->auth.user_id, sub);
			pthread_mutex_lock(&locks[(i / PCACHE_WAYS) % PCACHE_LOCKS]);
			struct pc_entry *e = victim(i, r->auth.user_id, sub);
			char *old = e->body;
			memcpy(e->user, r->auth.user_id, sizeof(e->user));
			snprintf(e->sub, sizeof(e->sub), "%s", sub);
			snprintf(e->ver, sizeof(e->ver), "%s", v->v);
			memcpy(e->etag, etag, sizeof(etag));
			e->epoch = v->eg;
			e->tslot = tenant_slot(r->auth.tenant_id);
			e->tepoch = v->et;
			e->at_us = now_us();
			e->body = copy;
			e->len = len;
			pthread_mutex_unlock(&locks[(i / PCACHE_WAYS) % PCACHE_LOCKS]);
			free(old);
		}
	}
	return answer(r, etag, json, len);
}

void pcache_committed(struct req *r)
{
	if (!r->authed || r->method == HM_GET || r->method == HM_HEAD || r->method == HM_OPTIONS ||
	    r->status < 200 || r->status >= 400 ||
	    (r->route && (r->route->flags & ROUTE_KEEPS_PRODUCTS)))
		return;
	redisReply *x = kv_cmd_force(r->t->kv, "INCR pv:%s", r->auth.tenant_id);
	if (x && x->type == REDIS_REPLY_INTEGER) {
		freeReplyObject(x);
		return;
	}
	if (x)
		freeReplyObject(x);
	/* the bump is lost: this worker forgets everything it cached (the others stop using
	 * theirs after PCACHE_MAX_AGE_US, and read nothing while Redis is down) */
	atomic_fetch_add(&epoch, 1);
	if (kv_configured(r->t->kv)) /* without Redis there is nothing to say on every write */
		log_msg(LL_WARN, r->rid, "tenant version bump failed (Redis unavailable)");
}
