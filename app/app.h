/* app.h - what IdeaForge's handlers share: the route table, the handlers, the middleware and
 * the per-worker application state. */
#ifndef IF_APP_H
#define IF_APP_H

#include "../lib/db.h"
#include "../lib/http.h"
#include "../lib/jx.h"
#include "../lib/kv.h"
#include "../lib/log.h"
#include "../lib/srv.h"
#include "config.h"

/* The version has one source, AC_INIT in configure.ac: configure puts PACKAGE_VERSION in DEFS
 * (no config.h), so every compile of the programs has it. */
#ifndef PACKAGE_VERSION
#error "PACKAGE_VERSION is set by configure (AC_INIT); build through ./configure && make"
#endif

/* Rate-limit classes of the route table (app/mw.c has the limits). */
enum rl_class { RL_DEFAULT, RL_LOGIN, RL_AI, RL_NONE, RL__MAX };

extern const struct route app_routes[];
extern const size_t app_nroutes;

/* The application's configuration for this request's worker. */
static inline const struct app_config *app_cfg(struct req *r)
{
	return (const struct app_config *)r->w->app_cfg;
}

/* Now as an ISO-8601 UTC string with microseconds and no zone, like the original's
 * datetime.utcnow().isoformat() (app/h_health.c). New reference. */
json_object *app_now_iso(void);

/* The highest migration (sql/NNNN_*.sql) this build needs: /health/ready answers 503 while the
 * database is older, so a new version takes no traffic before `ideaforgectl migrate` ran.
 * tests/schema-version.sh fails the build when a migration is added without raising it. */
#define APP_SCHEMA_VERSION 9

/* Middleware (app/mw.c), the srv_app before hook: rate limit, the in-flight cap, then
 * authentication for ROUTE_AUTH routes. RC_OK to go on (or with r->status set: answered, e.g.
 * 429), else the failure recorded on r (401 with WWW-Authenticate, or the database's error).
 * The worker hooks are in app/wstate.h. */
int app_before(struct req *r);

/*
 * Idempotency-Key (app/idem.c; the IETF httpapi idempotency-key draft) for a ROUTE_IDEMPOTENT
 * create route: its handler is `return idem_run(r, the_real_handler);`. Without the header, or
 * on a route without the flag, fn(r) runs as usual. With one, fn runs inside a transaction that
 * also records the key (per user, method and route pattern) with a fingerprint of the request
 * (path and body bytes) and, when fn answered 2xx, the status and body, committed together with
 * fn's writes. A retry with the same key then answers that first status and body again
 * (header Idempotent-Replayed: true) without running fn; the same key with another request is
 * 422; a concurrent retry waits for the first to finish. A key is 1..255 printable ASCII
 * characters (else 400) and is kept 24 hours. A failed first attempt (4xx, 5xx) records
 * nothing, so its retry runs again. Returns an enum rc like any handler.
 */
int idem_run(struct req *r, route_fn fn);

/* Handlers, one file per resource. */
int h_root(struct req *r);         /* GET / and /api/ */
int h_health(struct req *r);       /* GET /health */
int h_health_live(struct req *r);  /* GET /health/live */
int h_health_ready(struct req *r); /* GET /health/ready */
int h_phases_list(struct req *r);  /* GET /api/db/phases */

#endif
