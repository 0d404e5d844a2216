/* session.h - IdeaForge's sessions (app/session.c; API.md 1.2, 3; ARCHITECTURE.md section 3):
 * the client's address, the token of a request, the session cookie, creating a session,
 * propagating revocations to the cache and the durable check against PostgreSQL.
 *
 * A login creates a row in user_sessions (the durable record, id = the token's jti) and
 * returns an HS256 JWT (RFC 7519, lib/auth.h) carrying sub (user), tid (tenant), jti, iat and
 * exp. Every ROUTE_AUTH request verifies the token, then asks the Redis cache (lib/sess.h)
 * whether the session is live - one round trip, pipelined with the rate-limit check (app/mw.c)
 * - and only on a miss, or with Redis unavailable, asks PostgreSQL (and refills the cache).
 * Revocations are written to PostgreSQL first, then to Redis; the cache's rules (sess.h) make
 * sure that a missed or evicted Redis write can never let a revoked session back in.
 */
#ifndef IF_APP_SESSION_H
#define IF_APP_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "../lib/auth.h"
#include "../lib/sess.h"
#include "app.h"
#include "pcache.h"

/* What the middleware learnt about the caller, in r->auth.ext (arena): the /api/auth/me
 * document when the session check brought it along (Redis or PostgreSQL), and the cache stamp
 * a handler needs to refill it. */
struct session_info {
	const char *me_json;     /* the /me object, or NULL when not known */
	size_t me_len;           /* its length */
	struct sess_stamp stamp; /* what the Redis check saw (valid when stamp_ok) */
	bool stamp_ok;           /* Redis answered the check */
	struct pcache_ver pver;  /* the tenant's product version (app/pcache.h), when read */
};

/* SQL: the /me object (API.md 1.2) of user row u joined with its tenant row t. */
#define SESSION_ME_JSON                                                                 \
	"json_build_object('id', u.id, 'email', u.email, 'full_name', u.full_name,"     \
	" 'tenant_id', u.tenant_id, 'tenant_name', COALESCE(t.name, 'Default Tenant')," \
	" 'persona', u.persona, 'avatar_url', u.avatar_url,"                            \
	" 'mckinsey_subject', u.mckinsey_subject)"

/* ideaforge-api's start-up check (master, before forking, and on reload): resolves the JWT
 * secret (jwt_secret, i.e. env IDEAFORGE_JWT_SECRET, else the contents of jwt_secret_file read
 * by keys_read_file, trailing newline removed) into app->jwt_secret and refuses anything
 * shorter than 32 bytes. Returns 0, or -1 with err naming the key. */
int session_config_check(struct app_config *app, char *err, size_t errlen);

/* The client's address: REMOTE_ADDR from nginx; with trust_proxy, the last entry of
 * X-Forwarded-For (the one our proxy appended). Never NULL ("-" when unknown); arena or
 * borrowed from the request. */
const char *session_client_addr(struct req *r);

/* The token of the request: "Authorization: Bearer <t>" first, else the session_token cookie.
 * NULL when neither is present. Borrowed/arena. */
const char *session_token(struct req *r);

/* Set-Cookie for the session token (HttpOnly, SameSite=Lax, Path=/, Max-Age, Secure per
 * cookie_secure), and the one that clears it. token is borrowed (copied into the header). */
void session_set_cookie(struct req *r, const char *token);
void session_clear_cookie(struct req *r);

/* Creates a session for (user_id, tenant_id): the user_sessions row (with last_login_at when
 * login is true), then the token. On RC_OK *token (arena) and *expires_at (ISO-8601 text from
 * PostgreSQL, arena) are set; otherwise the error is recorded on r and returned. */
int session_create(struct req *r, const char *user_id, const char *tenant_id, bool login,
		   const char **token, const char **expires_at);

/* Propagates a revocation already committed in PostgreSQL to the Redis cache: a new revocation
 * marker for user_id (ends every cached session of that user, and drops the user's cached /me
 * document) and the entry of sid (may be NULL). Also called after a profile change, for the
 * cached document alone. When Redis does not take it, the worker's heartbeat starts a new
 * cache generation as soon as Redis answers again. Never fails the request. */
void session_revoke_cached(struct req *r, const char *user_id, const char *sid);

/* What PostgreSQL says of a token's session (session_check_db). */
enum session_state {
	SESSION_LIVE,     /* the row exists, is neither revoked nor expired, its user active */
	SESSION_INVALID,  /* no such session, or revoked, or expired */
	SESSION_INACTIVE, /* the session's user is deactivated */
	SESSION_ERROR,    /* the query failed: r->rc and its message are set */
	SESSION__MAX
};

/* The durable check of the session of claims c: its row, its user and tenant. On SESSION_LIVE
 * *me is the user's /me document (arena). */
enum session_state session_check_db(struct req *r, const struct auth_claims *c, const char **me);

/* Caches the caller's /me document (json, len bytes, borrowed) if the stamp the middleware saw
 * is still current. Best effort. */
void session_cache_me(struct req *r, const char *json, size_t len);

#endif
