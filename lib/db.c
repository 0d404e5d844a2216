/* db.c - libpq pool per worker, and the request-level helpers that turn SQL failures into
 * result codes without ever showing SQL text to a client.
 */
#include "db.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "ctx.h"
#include "log.h"

#define PRE_PING_IDLE_US 1000000 /* ping connections idle longer than this */
#define PREP_MAX 256             /* statements prepared per connection; more run unnamed */

struct db_prep {
	uint64_t hash; /* FNV-1a of the text and the parameter count */
	char *sql;     /* the text (owned), compared on a hash hit */
};

struct db_conn {
	PGconn *pg;           /* the connection */
	int64_t created_us;   /* monotonic connect time, for recycling */
	int64_t last_used_us; /* monotonic time it was returned */
	struct db_conn *next; /* idle list link */
	struct db_prep *prep; /* statements prepared on this connection (PREP_MAX slots) */
	int nprep;            /* entries in prep */
	bool discard;         /* close instead of returning to the pool */
};

/* The last failure of a tool's context (db_error): PostgreSQL's message, and the failed result
 * when there was one (its fields: the statement position ...). Arena-owned. */
struct db_error {
	char *msg;     /* libpq's text */
	PGresult *res; /* the failed result, cleared by the arena, or NULL */
};

struct db_pool {
	struct db_pool_opts o; /* options (conninfo and name are copies) */
	char *conninfo;        /* owned copy */
	char *appname;         /* owned copy */
	char options[96];      /* "-c statement_timeout=N -c lock_timeout=M" */
	pthread_mutex_t mu;    /* protects everything below */
	pthread_cond_t cv;     /* signalled when a connection or a slot frees up */
	struct db_conn *idle;  /* idle connections, most recently used first */
	int open;              /* connections open or being opened */
	int in_use;            /* checked out */
	int waiting;           /* threads waiting */
	uint64_t checkouts, waits, timeouts, connect_errors; /* counters */
};

struct db_pool *db_pool_new(const struct db_pool_opts *o)
{
	struct db_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->o = *o;
	p->conninfo = strdup(o->conninfo ? o->conninfo : "");
	p->appname = strdup(o->application_name ? o->application_name : "fastcgi-app");
	int n = 0;
	if (o->statement_timeout_ms > 0)
		n = snprintf(p->options, sizeof(p->options), "-c statement_timeout=%lld",
			     (long long)o->statement_timeout_ms);
	if (o->lock_timeout_ms > 0)
		snprintf(p->options + n, sizeof(p->options) - (size_t)n, "%s-c lock_timeout=%lld",
			 n ? " " : "", (long long)o->lock_timeout_ms);
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	return p;
}

/* Forgets the statements prepared on c (after DEALLOCATE ALL, or when closing). */
static void prep_forget(struct db_conn *c)
{
	for (int i = 0; i < c->nprep; i++)
		free(c->prep[i].sql);
	c->nprep = 0;
}

static void conn_close(struct db_conn *c)
{
	if (!c)
		return;
	PQfinish(c->pg);
	prep_forget(c);
	free(c->prep);
	free(c);
}

void db_pool_free(struct db_pool *p)
{
	if (!p)
		return;
	while (p->idle) {
		struct db_conn *c = p->idle;
		p->idle = c->next;
		conn_close(c);
	}
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->conninfo);
	free(p->appname);
	free(p);
}

void db_pool_stats(struct db_pool *p, struct db_stats *s)
{
	if (!p) {
		memset(s, 0, sizeof(*s));
		return;
	}
	pthread_mutex_lock(&p->mu);
	int idle = 0;
	for (struct db_conn *c = p->idle; c; c = c->next)
		idle++;
	s->size = p->o.size;
	s->overflow = p->o.overflow;
	s->open = p->open;
	s->in_use = p->in_use;
	s->idle = idle;
	s->waiting = p->waiting;
	s->checkouts = p->checkouts;
	s->waits = p->waits;
	s->timeouts = p->timeouts;
	s->connect_errors = p->connect_errors;
	pthread_mutex_unlock(&p->mu);
}

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Server notices (e.g. "word is too long to be indexed") go to our log, not raw to stderr. */
static void notice_log(void *arg, const char *msg)
{
	(void)arg;
	if (!log_enabled(LL_DEBUG))
		return;
	char line[300];
	snprintf(line, sizeof(line), "%s", msg);
	char *nl = strchr(line, '\n');
	if (nl)
		*nl = '\0';
	log_msg(LL_DEBUG, NULL, "postgresql notice: %s", line);
}

/* Opens a connection; NULL with err on failure. Runs without the pool lock. */
static struct db_conn *conn_open(struct db_pool *p, char *err, size_t errlen)
{
	const char *keys[6], *vals[6];
	int n = 0;
	keys[n] = "dbname";
	vals[n++] = p->conninfo;
	keys[n] = "application_name";
	vals[n++] = p->appname;
	keys[n] = "connect_timeout";
	vals[n++] = "3";
	if (p->options[0]) {
		keys[n] = "options";
		vals[n++] = p->options;
	}
	keys[n] = NULL;
	vals[n] = NULL;
	PGconn *pg = PQconnectdbParams(keys, vals, 1);
	if (!pg || PQstatus(pg) != CONNECTION_OK) {
		const char *m = pg ? PQerrorMessage(pg) : "out of memory";
		if (p->o.tool) {
			snprintf(err, errlen, "%s", m); /* the tool prints it whole */
		} else {
			snprintf(err, errlen, "connect failed: %s", m);
			char *nl = strchr(err, '\n');
			if (nl)
				*nl = '\0';
		}
		PQfinish(pg);
		return NULL;
	}
	if (!p->o.tool)
		PQsetNoticeProcessor(pg, notice_log, NULL);
	struct db_conn *c = calloc(1, sizeof(*c));
	if (!c) {
		PQfinish(pg);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->pg = pg;
	c->created_us = c->last_used_us = mono_us();
	return c;
}

/* True when an idle connection still works (one round trip). */
static bool conn_ping(struct db_conn *c)
{
	if (PQstatus(c->pg) != CONNECTION_OK)
		return false;
	PGresult *res = PQexec(c->pg, "");
	bool ok = res && PQresultStatus(res) == PGRES_EMPTY_QUERY;
	PQclear(res);
	return ok && PQstatus(c->pg) == CONNECTION_OK;
}

int db_checkout(struct db_pool *p, struct db_conn **out, char *err, size_t errlen)
{
	if (!p) {
		*out = NULL;
		snprintf(err, errlen, "no database is configured");
		return RC_UNAVAILABLE;
	}
	int64_t deadline = mono_us() + p->o.timeout_ms * 1000;
	bool waited = false;
	*out = NULL;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		if (p->idle) {
			struct db_conn *c = p->idle;
			p->idle = c->next;
			p->in_use++;
			pthread_mutex_unlock(&p->mu);
			int64_t now = mono_us();
			bool stale = p->o.recycle_s > 0 &&
				     now - c->created_us > p->o.recycle_s * 1000000;
			bool bad = PQstatus(c->pg) != CONNECTION_OK ||
				   (p->o.pre_ping && now - c->last_used_us > PRE_PING_IDLE_US &&
				    !conn_ping(c));
			if (stale || bad) {
				conn_close(c);
				c = conn_open(p, err, errlen);
				if (!c) {
					pthread_mutex_lock(&p->mu);
					p->in_use--;
					p->open--;
					p->connect_errors++;
					pthread_cond_signal(&p->cv);
					pthread_mutex_unlock(&p->mu);
					return RC_UNAVAILABLE;
				}
			}
			pthread_mutex_lock(&p->mu);
			p->checkouts++;
			pthread_mutex_unlock(&p->mu);
			*out = c;
			return RC_OK;
		}
		if (p->open < p->o.size + p->o.overflow) {
			p->open++;
			p->in_use++;
			pthread_mutex_unlock(&p->mu);
			struct db_conn *c = conn_open(p, err, errlen);
			pthread_mutex_lock(&p->mu);
			if (!c) {
				p->open--;
				p->in_use--;
				p->connect_errors++;
				pthread_cond_signal(&p->cv);
				pthread_mutex_unlock(&p->mu);
				return RC_UNAVAILABLE;
			}
			p->checkouts++;
			pthread_mutex_unlock(&p->mu);
			*out = c;
			return RC_OK;
		}
		if (!waited) {
			waited = true;
			p->waits++;
		}
		int64_t left = deadline - mono_us();
		if (left <= 0) {
			p->timeouts++;
			pthread_mutex_unlock(&p->mu);
			snprintf(err, errlen, "pool checkout timed out after %lld ms (%d in use)",
				 (long long)p->o.timeout_ms, p->in_use);
			return RC_UNAVAILABLE;
		}
		struct timespec ts;
		int64_t at = mono_us() + left;
		ts.tv_sec = at / 1000000;
		ts.tv_nsec = (at % 1000000) * 1000;
		p->waiting++;
		pthread_cond_timedwait(&p->cv, &p->mu, &ts);
		p->waiting--;
	}
}

void db_release(struct db_pool *p, struct db_conn *c)
{
	if (!c)
		return;
	bool keep = !c->discard && PQstatus(c->pg) == CONNECTION_OK &&
		    PQtransactionStatus(c->pg) == PQTRANS_IDLE;
	pthread_mutex_lock(&p->mu);
	p->in_use--;
	if (keep && p->open <= p->o.size) {
		c->last_used_us = mono_us();
		c->next = p->idle;
		p->idle = c;
		c = NULL;
	} else {
		p->open--;
	}
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	conn_close(c);
}

PGconn *db_pg(struct db_conn *c)
{
	return c->pg;
}

/* ---------------------------------------------------------------- request level */

static void clear_result(void *p)
{
	PQclear(p);
}

static bool is_tool(const struct ctx *r)
{
	return r->pool && r->pool->o.tool;
}

/* Keeps PostgreSQL's message (and the failed result, which then belongs to the arena) for
 * db_error, in a tool's context only. Returns whether it did (then res, if any, is taken and
 * nothing is to be logged). */
static bool keep_error(struct ctx *r, const char *msg, PGresult *res)
{
	struct db_error *e = is_tool(r) ? arena_calloc(r->a, sizeof(*e)) : NULL;
	if (!e)
		return false;
	e->msg = arena_strdup(r->a, msg ? msg : "");
	e->res = res;
	if (res)
		arena_defer(r->a, clear_result, res);
	r->db_err = e;
	return true;
}

static int ensure_conn(struct ctx *r)
{
	if (r->db)
		return RC_OK;
	char err[1024];
	if (db_checkout(r->pool, &r->db, err, sizeof(err)) != RC_OK) {
		if (!keep_error(r, err, NULL))
			log_msg(LL_WARN, r->rid, "database checkout: %s", err);
		ctx_fail(r, RC_UNAVAILABLE, "Database unavailable");
		return RC_UNAVAILABLE;
	}
	return RC_OK;
}

/* The code and client-safe message of a failed result; the error is logged, except for a tool
 * (which prints it itself: db_error). */
static int map_result(struct ctx *r, PGresult *res)
{
	bool quiet = is_tool(r);
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(db_pg(r->db));
	snprintf(r->db_sqlstate, sizeof(r->db_sqlstate), "%s", state ? state : "");
	char line[400];
	snprintf(line, sizeof(line), "%s", msg ? msg : "");
	char *nl = strchr(line, '\n');
	if (nl)
		*nl = '\0';
	bool conn_bad = PQstatus(db_pg(r->db)) != CONNECTION_OK;
	if (conn_bad || !state || strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
	    strcmp(state, "53300") == 0) {
		if (!quiet)
			log_msg(LL_WARN, r->rid, "database unavailable: %s (%s)", line,
				state ? state : "-");
		return ctx_fail(r, RC_UNAVAILABLE, "Database unavailable");
	}
	if (strcmp(state, "57014") == 0 || strcmp(state, "55P03") == 0) {
		/* statement_timeout, lock_timeout: the data is busy (a long lock, a slow query);
		 * the request fails fast with 503 + Retry-After instead of holding its thread */
		if (!quiet)
			log_msg(LL_WARN, r->rid, "statement or lock timeout: %s", line);
		return ctx_fail(r, RC_UNAVAILABLE, "Database timeout");
	}
	if (!quiet)
		log_msg(LL_INFO, r->rid, "sql error %s: %s", state, line);
	if (strcmp(state, "23505") == 0)
		return ctx_fail(r, RC_CONFLICT, "Conflict with an existing record");
	if (strcmp(state, "23503") == 0)
		return ctx_fail(r, RC_BADREQ, "Referenced record does not exist");
	/* class 54, program limit exceeded (a value too big to index or store), and class 22,
	 * data exception (a value PostgreSQL cannot take): the client's input, never a 500 */
	if (strncmp(state, "54", 2) == 0)
		return ctx_fail(r, RC_TOOLARGE, "Value too large to store");
	if (strncmp(state, "22", 2) == 0)
		return ctx_fail(r, RC_INVALID, "Invalid value");
	if (strncmp(state, "23", 2) == 0)
		return ctx_fail(r, RC_BADREQ, "Invalid value");
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
		return ctx_fail(r, RC_CONFLICT, "Concurrent update, please retry");
	return ctx_fail(r, RC_INTERNAL, "sql error %s: %s", state, line);
}

/* Maps a failed result to a code and a client-safe message; logs the real error, or keeps it
 * for a tool (db_error). Consumes res. */
static int map_error(struct ctx *r, PGresult *res)
{
	int rc = map_result(r, res);
	if (!keep_error(r, res ? PQresultErrorMessage(res) : PQerrorMessage(db_pg(r->db)), res))
		PQclear(res);
	return rc;
}

/* res when it succeeded (then cleared by the arena; an empty query counts when empty_ok), else
 * NULL after map_error, which consumes res. */
static PGresult *checked(struct ctx *r, PGresult *res, bool empty_ok)
{
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK ||
	    (empty_ok && st == PGRES_EMPTY_QUERY)) {
		arena_defer(r->a, clear_result, res);
		return res;
	}
	map_error(r, res);
	return NULL;
}

PGresult *db_exec(struct ctx *r, const char *sql, int nparams, const char *const *params)
{
	r->db_sqlstate[0] = '\0';
	r->db_err = NULL;
	if (ensure_conn(r) != RC_OK)
		return NULL;
	/* Every statement text is prepared once per connection (named by its hash) and then
	 * executed by name: PostgreSQL plans it once per connection instead of on every request,
	 * which for the JSON-building statements costs more than running them. */
	struct db_conn *c = r->db;
	uint64_t h = 1469598103934665603ull;
	for (const unsigned char *q = (const unsigned char *)sql; *q; q++)
		h = (h ^ *q) * 1099511628211ull;
	h ^= (uint64_t)nparams;
	char name[24];
	snprintf(name, sizeof(name), "s%016llx", (unsigned long long)h);
	bool prepared = false;
	for (int i = 0; i < c->nprep && !prepared; i++)
		prepared = c->prep[i].hash == h && strcmp(c->prep[i].sql, sql) == 0;
	PGresult *res = NULL;
	if (!prepared && c->nprep < PREP_MAX) {
		if (!c->prep)
			c->prep = calloc(PREP_MAX, sizeof(*c->prep));
		char *copy = c->prep ? strdup(sql) : NULL;
		bool taken = false; /* a colliding hash names another text: run this one unnamed */
		for (int i = 0; i < c->nprep; i++)
			taken |= c->prep[i].hash == h;
		if (copy && !taken) {
			res = PQprepare(c->pg, name, sql, nparams, NULL);
			if (res && PQresultStatus(res) == PGRES_COMMAND_OK) {
				c->prep[c->nprep].hash = h;
				c->prep[c->nprep].sql = copy;
				c->nprep++;
				copy = NULL;
				prepared = true;
				PQclear(res);
				res = NULL;
			}
		}
		free(copy);
	}
	if (!res)
		res = prepared ? PQexecPrepared(c->pg, name, nparams, params, NULL, NULL, 0)
			       : PQexecParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (prepared && st == PGRES_FATAL_ERROR) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (state && strcmp(state, "0A000") == 0) {
			/* "cached plan must not change result type": the schema changed under a
			 * prepared statement (a migration while running). This statement fails;
			 * the connection is closed when returned, so its successor prepares
			 * afresh. */
			c->discard = true;
		}
	}
	return checked(r, res, false);
}

PGresult *db_exec_script(struct ctx *r, const char *sql)
{
	r->db_sqlstate[0] = '\0';
	r->db_err = NULL;
	if (ensure_conn(r) != RC_OK)
		return NULL;
	return checked(r, PQexec(db_pg(r->db), sql), true);
}

const char *db_value(struct ctx *r, bool *found, const char *sql, int nparams,
		     const char *const *params)
{
	if (found)
		*found = false;
	PGresult *res = db_exec(r, sql, nparams, params);
	if (!res || PQntuples(res) == 0 || PQnfields(res) == 0)
		return NULL;
	if (found)
		*found = true;
	if (PQgetisnull(res, 0, 0))
		return NULL;
	return PQgetvalue(res, 0, 0);
}

int db_begin(struct ctx *r)
{
	if (!db_exec(r, "BEGIN", 0, NULL))
		return r->rc;
	r->db_tx++;
	return RC_OK;
}

int db_commit(struct ctx *r)
{
	if (!db_exec(r, "COMMIT", 0, NULL))
		return r->rc;
	r->db_tx = 0;
	return RC_OK;
}

void db_rollback(struct ctx *r)
{
	if (!r->db)
		return;
	PGresult *res = PQexec(db_pg(r->db), "ROLLBACK");
	PQclear(res);
	r->db_tx = 0;
}

void db_done(struct ctx *r)
{
	if (!r->db)
		return;
	if (PQtransactionStatus(db_pg(r->db)) != PQTRANS_IDLE &&
	    PQstatus(db_pg(r->db)) == CONNECTION_OK)
		db_rollback(r);
	db_release(r->pool, r->db);
	r->db = NULL;
}

const char *db_error(const struct ctx *r)
{
	return r->db_err ? r->db_err->msg : NULL;
}

const char *db_error_field(const struct ctx *r, int fieldcode)
{
	return r->db_err && r->db_err->res ? PQresultErrorField(r->db_err->res, fieldcode) : NULL;
}

const char *db_get(PGresult *res, int row, const char *col)
{
	int c = PQfnumber(res, col);
	if (c < 0 || row >= PQntuples(res) || PQgetisnull(res, row, c))
		return NULL;
	return PQgetvalue(res, row, c);
}
