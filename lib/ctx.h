/* ctx.h - what one unit of work needs, whatever its transport: an HTTP request served by a
 * worker thread, a job run by a daemon, a command of an admin tool.
 *
 * The query helpers (lib/db.h) and the application's data helpers take a struct ctx, so the
 * same code runs with or without a FastCGI request in sight. An HTTP request (lib/http.h)
 * embeds one: its fields are also the request's own fields (r->rid, r->rc, r->detail ...),
 * and &r->c is the context of the request.
 *
 * Errors: library code records a code and a message safe to show (ctx_fail) and returns the
 * code; the edge (the HTTP response, the job's error event, the tool's stderr) reports it
 * once. SQL text, errno strings and keys never go into detail.
 */
#ifndef IF_CTX_H
#define IF_CTX_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "rc.h"

struct arena;
struct db_pool;
struct db_conn;
struct db_error;
struct json_object;

/* The authenticated party of the work, when there is one. */
struct principal {
	char user_id[40];   /* authenticated user (UUID text) */
	char tenant_id[40]; /* the user's tenant (UUID text) */
	char sid[64];       /* session id (JWT jti) */
	int64_t exp_s;      /* token expiry, unix seconds */
	void *ext;          /* application data (arena-owned) */
};

/* The members of struct ctx, as a list, so that struct req can hold them both as its own
 * fields and as one struct ctx (an anonymous struct in a union with it: same layout). */
#define CTX_FIELDS                                                                               \
	struct arena *a;                 /* work memory, reset when the work is done */          \
	char rid[40];                    /* request or job id, on every log line */              \
	enum rc rc;                      /* last error code recorded by ctx_fail */              \
	char detail[512];                /* last error message, safe for the client */           \
	struct json_object *detail_list; /* 422 FastAPI-style list, overrides detail */          \
	struct db_pool *pool;            /* where the db_* helpers check out a connection */     \
	struct db_conn *db;              /* connection borrowed for this work, or NULL */        \
	int db_tx;                       /* open transaction depth on db */                      \
	char db_sqlstate[6];             /* SQLSTATE of the last failed statement, "" if none */ \
	struct db_error *db_err;     /* tools only: PostgreSQL's message (lib/db.h db_error) */  \
	const struct principal *who; /* the authenticated party, NULL when none */

struct ctx {
	CTX_FIELDS
};

/* Starts a context over arena a (borrowed) and pool (borrowed, may be NULL when the work
 * runs no SQL), with id copied for the logs. */
void ctx_init(struct ctx *c, struct arena *a, struct db_pool *pool, const char *id);

/* Records an error: code and a message safe to show. Returns rc, so callers write
 * `return ctx_fail(c, RC_NOTFOUND, "Product not found");`. */
int ctx_fail(struct ctx *c, enum rc rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int ctx_vfail(struct ctx *c, enum rc rc, const char *fmt, va_list ap);

/* Forgets the last error (a failure the caller handled itself). */
void ctx_clear(struct ctx *c);

#endif
