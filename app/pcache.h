/* pcache.h - validated per-worker cache of product read answers and their ETags (issue 17).
 *
 * Every tenant has a version counter in Redis (pv:<tenant id>). The middleware reads it in the
 * same round trip as the session check (pcache_cmd) for the product read routes; every
 * successful authenticated write of the tenant increments it before its response is sent
 * (pcache_committed, the server's committed hook), except the writes of routes flagged
 * ROUTE_KEEPS_PRODUCTS. A cached answer is used only when it was
 * stored under the version this request read: a write is visible on the very next request on
 * every worker and machine, and a cached answer costs no SQL. Without a version (Redis down,
 * the counter missing) the cache is neither read nor filled.
 *
 * Writes that bypass the API (ideaforgectl, SQL by hand, agentd) raise no version: triggers of
 * sql/0007_read_path.sql announce them on channel ideaforge_products (payload: the tenant id,
 * or "*"), and a listener thread per worker (its own PostgreSQL connection) drops that
 * tenant's answers. While the listener is not connected, the cache is neither read nor filled.
 */
#ifndef IDEAFORGE_PCACHE_H
#define IDEAFORGE_PCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/kv.h"
#include "../lib/srv.h"

/* Route flag: the route's writes never change a product answer (they write no row of products,
 * product_shares or the email, name or tenant of user_profiles: the tables the triggers of
 * sql/0007_read_path.sql watch), so they leave the tenant version alone. Chat messages,
 * phase submissions and knowledge writes are most writes; bumping for them made nearly every
 * product read of a busy tenant a miss. Should a flagged route ever change those tables, the
 * triggers still drop the answers on every worker (asynchronously, within milliseconds). */
#define ROUTE_KEEPS_PRODUCTS ROUTE_APP(0)

/* The tenant version as read for this request (kept in struct session_info). */
struct pcache_ver {
	bool ok;     /* a version was read */
	char v[24];  /* its decimal text */
	bool snap;   /* the listener was up when the cache was asked (pcache_get) */
	uint64_t eg; /* the worker's epoch then */
	uint64_t et; /* the tenant's epoch then */
};

/* "GET pv:<tenant>" into a (keybuf holds the key: at least 48 bytes). */
void pcache_cmd(struct kv_argv *a, char *keybuf, size_t cap, const char *tenant);
/* The reply of that command into v; a missing counter is created (SET NX) and v stays !ok. */
void pcache_ver_parse(struct req *r, const redisReply *rep, const char *tenant,
		      struct pcache_ver *v);
/* True when the route reads through the cache (the middleware then adds the GET). */
bool pcache_route(const struct req *r);

/* A cached answer of this user for sub (e.g. "l:50", "g:<id>") under the request's version:
 * the response (200 with ETag, or 304) is set and true returned. */
bool pcache_get(struct req *r, const char *sub);
/* Answers json (200 with a weak ETag of the body, or 304 when If-None-Match names it) and
 * stores it under the request's version when there is one. */
int pcache_respond(struct req *r, const char *sub, const char *json);
/* The server's committed hook: an authenticated write answered 2xx/3xx bumps its tenant,
 * unless its route is ROUTE_KEEPS_PRODUCTS. */
void pcache_committed(struct req *r);

/* FNV-1a 64 weak ETag of a body: W/"<16 hex digits>" (out: at least 24 bytes). */
void pcache_etag(const char *body, size_t len, char *out);
/* True when the If-None-Match header value inm matches etag (weak comparison, or "*"). */
bool pcache_inm_match(const char *inm, const char *etag);

#endif
