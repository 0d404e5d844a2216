/* db.h - per-worker PostgreSQL pool (libpq) and request-level query helpers.
 *
 * The pool follows the seed's five settings: size, overflow, checkout timeout, recycle age and
 * pre-ping. Threads of one worker share it (mutex + condition variable). A checkout that
 * cannot be served within the timeout fails with RC_UNAVAILABLE (503 + Retry-After), never a
 * hang. A connection found broken is dropped and replaced, so the pool recovers by itself
 * after a PostgreSQL restart.
 */
#ifndef IF_DB_H
#define IF_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ctx;
struct db_pool;
struct db_conn;

struct db_pool_opts {
	const char *conninfo;         /* libpq conninfo or URI (copied) */
	int size;                     /* connections kept */
	int overflow;                 /* extra connections allowed, closed when returned */
	int64_t timeout_ms;           /* checkout wait */
	int64_t recycle_s;            /* reconnect connections older than this, 0 = never */
	bool pre_ping;                /* check a connection idle > 1 s before handing it out */
	int64_t statement_timeout_ms; /* SET statement_timeout at connect, 0 = none */
	int64_t lock_timeout_ms;      /* SET lock_timeout at connect, 0 = none */
	const char *application_name; /* shown in pg_stat_activity */
	bool tool;                    /* an operator's tool, not a server: PostgreSQL's messages
				       * are the caller's to print (db_error, notices to stderr as
				       * libpq prints them), not logged; see db_error */
};

struct db_stats {
	int size;                /* configured pool size */
	int overflow;            /* configured overflow */
	int open;                /* connections open now */
	int in_use;              /* checked out now */
	int idle;                /* open and idle */
	int waiting;             /* threads waiting for a checkout now */
	uint64_t checkouts;      /* total successful checkouts */
	uint64_t waits;          /* checkouts that had to wait */
	uint64_t timeouts;       /* checkouts that timed out */
	uint64_t connect_errors; /* failed connection attempts */
};

/* New pool; connects lazily. NULL on out of memory. Owned by caller. */
struct db_pool *db_pool_new(const struct db_pool_opts *o);
void db_pool_free(struct db_pool *p); /* closes every connection; accepts NULL */
void db_pool_stats(struct db_pool *p, struct db_stats *s); /* zeros for a NULL pool */

/* Checks out a healthy connection. RC_OK, or RC_UNAVAILABLE with a reason in err (for the
 * log, not for clients; a tool's pool gives libpq's whole message); a NULL pool (a server
 * without a database) is always unavailable. */
int db_checkout(struct db_pool *p, struct db_conn **out, char *err, size_t errlen);
/* Returns a connection; broken ones (or ones in a transaction) are closed. Accepts NULL. */
void db_release(struct db_pool *p, struct db_conn *c);
PGconn *db_pg(struct db_conn *c);

/* --- work level (lib/ctx.h): the context's connection is checked out of c->pool on first
 * use and released by db_done (the server calls it after every request) --- */

/*
 * Runs one parameterised statement (text params, NULL = SQL NULL). Returns the result (cleared
 * by the request arena) for PGRES_TUPLES_OK / PGRES_COMMAND_OK, or NULL after ctx_fail():
 * RC_UNAVAILABLE when the database is unreachable, busy or timed out; RC_CONFLICT on unique
 * violations; RC_INVALID on invalid input syntax / check / foreign key violations; RC_INTERNAL
 * otherwise. c->db_sqlstate tells the SQLSTATE. The SQL error text is logged, never returned.
 */
PGresult *db_exec(struct ctx *c, const char *sql, int nparams, const char *const *params);

/*
 * Runs sql, which may hold several statements (a migration file), with the simple-query
 * protocol (PQexec): no parameters, nothing prepared. Returns the result of the last
 * statement (cleared by the arena) for PGRES_TUPLES_OK / PGRES_COMMAND_OK / PGRES_EMPTY_QUERY,
 * or NULL after ctx_fail() with the same codes as db_exec. Never with text from a client: it
 * takes no parameters, so anything variable belongs in db_exec.
 */
PGresult *db_exec_script(struct ctx *c, const char *sql);

/* First column of the first row as an arena string; NULL with *found = false when no row (not
 * an error), NULL with c->rc set on error. found may be NULL. */
const char *db_value(struct ctx *c, bool *found, const char *sql, int nparams,
		     const char *const *params);

int db_begin(struct ctx *c);     /* RC_OK or error (ctx_fail done) */
int db_commit(struct ctx *c);    /* RC_OK or error */
void db_rollback(struct ctx *c); /* best effort */

/* Releases the context's connection (rolling back an open transaction). Called by the
 * server after every request; handlers may call it early before slow work (streams). */
void db_done(struct ctx *c);

/*
 * PostgreSQL's own message of the context's last failure (a statement, or the connection: the
 * text libpq gives, possibly several lines, ending in a newline), or NULL when there was none
 * or the pool is not a tool's (db_pool_opts.tool). For an operator's tool, which prints it;
 * a server never keeps it, so SQL text cannot reach an HTTP client (the server logs it, and
 * c->detail holds the safe message). Arena-owned; forgotten by the next statement and
 * ctx_clear.
 */
const char *db_error(const struct ctx *c);

/* A field (PG_DIAG_*, e.g. PG_DIAG_STATEMENT_POSITION) of the last failed statement of a
 * tool's context, or NULL (no such field, no result: a connection failure, not a tool). */
const char *db_error_field(const struct ctx *c, int fieldcode);

/* Helpers on results. */
const char *db_get(PGresult *res, int row, const char *col); /* NULL when SQL NULL or no col */

#endif
