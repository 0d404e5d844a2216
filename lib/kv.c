/* kv.c - Redis handle with timeouts, worker-wide backoff and one probe at a time. */
#include "kv.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "log.h"

#include <openssl/evp.h>

#define KV_BACKOFF_MIN_US 250000LL  /* first backoff after a failure */
#define KV_BACKOFF_MAX_US 5000000LL /* cap */

struct kv {
	redisContext *c;      /* connection, NULL when closed */
	char *host;           /* TCP host, or NULL for unix */
	int port;             /* TCP port */
	char *path;           /* unix socket path, or NULL */
	int db;               /* SELECTed database */
	char *user;           /* ACL user (Redis 6) for AUTH, or NULL */
	char *password;       /* AUTH password, or NULL; never logged, wiped on free */
	int64_t connect_ms;   /* connect timeout */
	int64_t command_ms;   /* command timeout */
	struct kv_shared *sh; /* worker-wide state */
	bool prober;          /* the worker's dedicated prober (kv_set_prober) */
	bool off;             /* no URL: no Redis, every command fails at once */
};

void kv_shared_init(struct kv_shared *s)
{
	atomic_store(&s->down_until_us, 0);
	atomic_store(&s->backoff_us, 0);
	atomic_store(&s->probing, 0);
	atomic_store(&s->failures, 0);
	atomic_store(&s->skipped, 0);
	atomic_store(&s->up, true);
	atomic_store(&s->has_prober, false);
}

/* Percent-decodes n bytes of s into a new string (userinfo may carry %40 for '@' and so on).
 * NULL when malformed or on out of memory. */
static char *pct_decode(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
		    isxdigit((unsigned char)s[i + 2])) {
			char hex[3] = {s[i + 1], s[i + 2], 0};
			*o++ = (char)strtol(hex, NULL, 16);
			i += 2;
		} else if (s[i] == '%') {
			free(out);
			return NULL;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

/* Parses "[user]:password@" at the start of *p (up to the first '@' before any '/'): sets
 * k->user (NULL when empty) and k->password and moves *p past it. 0, or -1 when malformed. */
static int parse_userinfo(struct kv *k, const char **p)
{
	const char *h = *p;
	const char *slash = strchr(h, '/');
	const char *at = memchr(h, '@', slash ? (size_t)(slash - h) : strlen(h));
	if (!at && slash == h) /* unix://[userinfo@]/path: the path starts at once */
		return 0;
	if (!at)
		return 0;
	const char *colon = memchr(h, ':', (size_t)(at - h));
	if (!colon)
		return -1; /* "user@" alone: a password is required */
	if (colon > h) {
		k->user = pct_decode(h, (size_t)(colon - h));
		if (!k->user)
			return -1;
	}
	k->password = pct_decode(colon + 1, (size_t)(at - colon - 1));
	if (!k->password || !*k->password)
		return -1;
	*p = at + 1;
	return 0;
}

/* Parses url into k; -1 when malformed. Forms: redis://[[user]:password@]host[:port][/db],
 * unix:/path, unix://[[user]:password@]/path. */
static int parse_url(struct kv *k, const char *url)
{
	if (strncmp(url, "unix:", 5) == 0) {
		const char *p = url + 5;
		if (strncmp(p, "//", 2) == 0) {
			p += 2;
			if (parse_userinfo(k, &p) < 0)
				return -1;
		}
		if (*p != '/')
			return -1;
		k->path = strdup(p);
		return k->path ? 0 : -1;
	}
	if (strncmp(url, "redis://", 8) != 0)
		return -1;
	const char *h = url + 8;
	if (parse_userinfo(k, &h) < 0)
		return -1;
	const char *slash = strchr(h, '/');
	size_t hl = slash ? (size_t)(slash - h) : strlen(h);
	char hostport[256];
	if (hl == 0 || hl >= sizeof(hostport) || memchr(h, '@', hl))
		return -1;
	memcpy(hostport, h, hl);
	hostport[hl] = '\0';
	k->port = 6379;
	char *colon = strrchr(hostport, ':');
	if (colon) {
		char *end;
		long port = strtol(colon + 1, &end, 10);
		if (*end || port <= 0 || port > 65535)
			return -1;
		k->port = (int)port;
		*colon = '\0';
	}
	if (!*hostport)
		return -1;
	k->host = strdup(hostport);
	if (slash && slash[1]) {
		char *end;
		long db = strtol(slash + 1, &end, 10);
		if (*end || db < 0 || db > 1000)
			return -1;
		k->db = (int)db;
	}
	return k->host ? 0 : -1;
}

static void free_url(struct kv *k)
{
	free(k->host);
	free(k->path);
	free(k->user);
	if (k->password) {
		explicit_bzero(k->password, strlen(k->password));
		free(k->password);
	}
	k->host = k->path = k->user = k->password = NULL;
}

int kv_url_check(const char *url)
{
	struct kv k = {0};
	int rc = url ? parse_url(&k, url) : -1;
	free_url(&k);
	return rc;
}

const char *kv_url_problem(const char *url)
{
	if (!url)
		return "missing";
	if (strncmp(url, "rediss://", 9) == 0)
		return "rediss:// (TLS) is not supported: Debian 12's hiredis 0.14 has no TLS; run a "
		       "local TLS client tunnel (stunnel) and point redis_url at it (README)";
	if (kv_url_check(url) < 0)
		return "expected redis://[[user]:password@]host:port/db or unix:/path";
	return NULL;
}

struct kv *kv_new(const char *url, int64_t connect_timeout_ms, int64_t command_timeout_ms,
		  struct kv_shared *shared)
{
	struct kv *k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	k->sh = shared;
	if (!url || !*url) {
		k->off = true;
		atomic_store(&shared->up, false);
		return k;
	}
	if (parse_url(k, url) < 0) {
		kv_free(k);
		return NULL;
	}
	k->connect_ms = connect_timeout_ms;
	k->command_ms = command_timeout_ms;
	return k;
}

void kv_free(struct kv *k)
{
	if (!k)
		return;
	if (k->c)
		redisFree(k->c);
	free_url(k);
	free(k);
}

static struct timeval tv_ms(int64_t ms)
{
	struct timeval tv = {.tv_sec = (time_t)(ms / 1000),
			     .tv_usec = (suseconds_t)(ms % 1000) * 1000};
	return tv;
}

static void kv_close(struct kv *k)
{
	if (k->c) {
		redisFree(k->c);
		k->c = NULL;
	}
}

static int kv_connect(struct kv *k)
{
	struct timeval ct = tv_ms(k->connect_ms);
	k->c = k->path ? redisConnectUnixWithTimeout(k->path, ct)
		       : redisConnectWithTimeout(k->host, k->port, ct);
	if (!k->c || k->c->err) {
		kv_close(k);
		return -1;
	}
	redisSetTimeout(k->c, tv_ms(k->command_ms));
	if (k->password) {
		/* on every (re)connect; Redis 6 ACL: AUTH user password */
		redisReply *r = k->user ? redisCommand(k->c, "AUTH %s %s", k->user, k->password)
					: redisCommand(k->c, "AUTH %s", k->password);
		bool ok = r && r->type == REDIS_REPLY_STATUS;
		if (r && !ok && r->type == REDIS_REPLY_ERROR)
			log_msg(LL_WARN, NULL, "redis refused the credentials of redis_url");
		if (r)
			freeReplyObject(r);
		if (!ok) {
			kv_close(k);
			return -1;
		}
	}
	if (k->db) {
		redisReply *r = redisCommand(k->c, "SELECT %d", k->db);
		bool ok = r && r->type == REDIS_REPLY_STATUS;
		if (r)
			freeReplyObject(r);
		if (!ok) {
			kv_close(k);
			return -1;
		}
	}
	return 0;
}

static void mark_down(struct kv *k)
{
	int64_t b = atomic_load(&k->sh->backoff_us);
	b = b ? b * 2 : KV_BACKOFF_MIN_US;
	if (b > KV_BACKOFF_MAX_US)
		b = KV_BACKOFF_MAX_US;
	atomic_store(&k->sh->backoff_us, b);
	atomic_store(&k->sh->down_until_us, now_us() + b);
	atomic_fetch_add(&k->sh->failures, 1);
	if (atomic_exchange(&k->sh->up, false))
		log_msg(LL_WARN, NULL, "redis unavailable, falling back (retry in %lld ms)",
			(long long)(b / 1000));
}

static void mark_up(struct kv *k)
{
	atomic_store(&k->sh->backoff_us, 0);
	atomic_store(&k->sh->down_until_us, 0);
	if (!atomic_exchange(&k->sh->up, true))
		log_msg(LL_INFO, NULL, "redis available again");
}

/* Decides whether this call may talk to Redis: yes when up; when down, only after the backoff
 * and only for the one thread that wins the probe (the prober's, when the worker has one). */
static bool may_try(struct kv *k)
{
	int64_t until = atomic_load(&k->sh->down_until_us);
	if (until == 0)
		return true;
	/* the dedicated prober runs outside requests: it may pay a timeout at every try, so it
	 * tries at its own pace and notices a recovery within its period, not the backoff's */
	if (k->prober)
		return true;
	if (atomic_load(&k->sh->has_prober))
		return false;
	int64_t now = now_us();
	if (now < until)
		return false;
	/* claim the probe: push the deadline out so that others keep skipping meanwhile */
	int_fast64_t expect = until;
	return atomic_compare_exchange_strong(&k->sh->down_until_us, &expect,
					      now + k->command_ms * 1000 + k->connect_ms * 1000);
}

/* The I/O of one call on a connected context: 0 when every reply arrived, -1 otherwise. */
typedef int (*kv_io_fn)(redisContext *c, void *arg);

/* Runs io with the backoff rules (unless force), one reconnect for a connection that Redis
 * closed, and the shared up/down bookkeeping. 0 or -1 (unavailable). */
static int kv_exec(struct kv *k, bool force, kv_io_fn io, void *arg)
{
	if (k->off || (!force && !may_try(k))) {
		atomic_fetch_add(&k->sh->skipped, 1);
		return -1;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		bool fresh = false;
		if (!k->c) {
			if (kv_connect(k) < 0)
				break;
			fresh = true;
		}
		if (io(k->c, arg) == 0) {
			mark_up(k);
			return 0;
		}
		/* an old connection may simply have been closed by a Redis restart (EOF or a
		 * reset): retry once on a fresh one. A timeout means Redis is hung: do not pay it
		 * twice. */
		bool closed =
			k->c &&
			(k->c->err == REDIS_ERR_EOF ||
			 (k->c->err == REDIS_ERR_IO && errno != EAGAIN && errno != EWOULDBLOCK));
		kv_close(k);
		if (fresh || !closed)
			break;
	}
	mark_down(k);
	return -1;
}

struct kv_one {
	const char *fmt;    /* format, or NULL for argv */
	va_list *ap;        /* its arguments */
	int argc;           /* argv form */
	const char **argv;  /* argv form */
	const size_t *lens; /* argv form */
	redisReply *reply;  /* out */
};

static int io_one(redisContext *c, void *arg)
{
	struct kv_one *o = arg;
	if (o->fmt) {
		va_list ap2;
		va_copy(ap2, *o->ap);
		o->reply = redisvCommand(c, o->fmt, ap2);
		va_end(ap2);
	} else {
		o->reply = redisCommandArgv(c, o->argc, o->argv, o->lens);
	}
	return o->reply ? 0 : -1;
}

redisReply *kv_cmd(struct kv *k, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct kv_one o = {.fmt = fmt, .ap = &ap};
	kv_exec(k, false, io_one, &o);
	va_end(ap);
	return o.reply;
}

redisReply *kv_cmd_force(struct kv *k, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct kv_one o = {.fmt = fmt, .ap = &ap};
	kv_exec(k, true, io_one, &o);
	va_end(ap);
	return o.reply;
}

redisReply *kv_cmdargv(struct kv *k, int argc, const char **argv, const size_t *lens)
{
	struct kv_one o = {.argc = argc, .argv = argv, .lens = lens};
	kv_exec(k, false, io_one, &o);
	return o.reply;
}

struct kv_many {
	int n;                      /* commands */
	const struct kv_argv *cmds; /* them */
	redisReply **out;           /* replies */
};

static int io_many(redisContext *c, void *arg)
{
	struct kv_many *m = arg;
	for (int i = 0; i < m->n; i++)
		if (redisAppendCommandArgv(c, m->cmds[i].argc, (const char **)m->cmds[i].argv,
					   m->cmds[i].lens) != REDIS_OK)
			return -1;
	for (int i = 0; i < m->n; i++) {
		void *rep = NULL;
		if (redisGetReply(c, &rep) != REDIS_OK || !rep) {
			for (int j = 0; j < i; j++) {
				freeReplyObject(m->out[j]);
				m->out[j] = NULL;
			}
			return -1;
		}
		m->out[i] = rep;
	}
	return 0;
}

void kv_argv_script(struct kv_argv *a, const struct kv_script *s)
{
	a->argc = 0;
	a->script = s;
	kv_argv_add(a, "EVALSHA", 7);
	kv_argv_add(a, s->sha, strlen(s->sha));
}

void kv_argv_add(struct kv_argv *a, const char *arg, size_t n)
{
	if (a->argc >= KV_ARGV_MAX)
		return;
	a->argv[a->argc] = arg;
	a->lens[a->argc] = n;
	a->argc++;
}

/* The same command as EVAL <body>, after a NOSCRIPT. */
static redisReply *retry_eval(struct kv *k, const struct kv_argv *a, bool force)
{
	struct kv_argv e = *a;
	e.argv[0] = "EVAL";
	e.lens[0] = 4;
	e.argv[1] = a->script->body;
	e.lens[1] = strlen(a->script->body);
	struct kv_one o = {.argc = e.argc, .argv = e.argv, .lens = e.lens};
	kv_exec(k, force, io_one, &o);
	return o.reply;
}

redisReply *kv_run(struct kv *k, const struct kv_argv *a, bool force)
{
	struct kv_one o = {.argc = a->argc, .argv = (const char **)a->argv, .lens = a->lens};
	kv_exec(k, force, io_one, &o);
	if (a->script && kv_is_noscript(o.reply)) {
		freeReplyObject(o.reply);
		o.reply = retry_eval(k, a, force);
	}
	return o.reply;
}

int kv_pipeline(struct kv *k, int n, const struct kv_argv *cmds, redisReply **out)
{
	for (int i = 0; i < n; i++)
		out[i] = NULL;
	if (n <= 0)
		return 0;
	struct kv_many m = {.n = n, .cmds = cmds, .out = out};
	if (kv_exec(k, false, io_many, &m) < 0)
		return -1;
	for (int i = 0; i < n; i++)
		if (cmds[i].script && kv_is_noscript(out[i])) {
			freeReplyObject(out[i]);
			out[i] = retry_eval(k, &cmds[i], false);
		}
	return 0;
}

void kv_set_prober(struct kv *k)
{
	k->prober = true;
	atomic_store(&k->sh->has_prober, true);
}

int kv_script_init(struct kv_script *s)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (s->sha[0])
		return 0;
	if (!EVP_Digest(s->body, strlen(s->body), md, &n, EVP_sha1(), NULL) || n != 20)
		return -1;
	char hex[41];
	for (unsigned i = 0; i < 20; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	memcpy(s->sha, hex, sizeof(hex));
	return 0;
}

bool kv_is_noscript(const redisReply *x)
{
	return x && x->type == REDIS_REPLY_ERROR && x->str && strncmp(x->str, "NOSCRIPT", 8) == 0;
}

bool kv_up(const struct kv *k)
{
	return atomic_load(&k->sh->up);
}

bool kv_configured(const struct kv *k)
{
	return k && !k->off;
}
