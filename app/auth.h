/* auth.h - authentication, sessions, users and rate limiting (API.md 1.2, 1.3, 3, 4.1;
 * ARCHITECTURE.md section 3): the handlers for app/routes.c and the helpers they share with
 * the middleware (app/mw.c).
 *
 * Sessions: a login creates a row in user_sessions (the durable record, id = the token's jti)
 * and returns an HS256 JWT (lib/auth.h) carrying sub (user), tid (tenant), jti, iat and exp.
 * Every ROUTE_AUTH request verifies the token, then asks the Redis cache (lib/sess.h) whether
 * the session is live - one round trip, pipelined with the rate-limit check - and only on a
 * miss, or with Redis unavailable, asks PostgreSQL (and refills the cache). Revocations are
 * written to PostgreSQL first, then to Redis; the cache's rules (sess.h) make sure that a
 * missed or evicted Redis write can never let a revoked session back in.
 */
#ifndef IF_APP_AUTH_H
#define IF_APP_AUTH_H

#include "app.h"
#include "../lib/pw.h"
#include "../lib/rl.h"
#include "../lib/sess.h"

/* What the middleware learnt about the caller, in r->auth.ext (arena): the /api/auth/me
 * document when the session check brought it along (Redis or PostgreSQL), and the cache stamp
 * a handler needs to refill it. */
struct auth_ctx {
	const char *me_json;     /* the /me object, or NULL when not known */
	size_t me_len;           /* its length */
	struct sess_stamp stamp; /* what the Redis check saw (valid when stamp_ok) */
	bool stamp_ok;           /* Redis answered the check */
};

/* SQL: the /me object (API.md 1.2) of user row u joined with its tenant row t. */
#define AUTH_ME_JSON                                                                    \
	"json_build_object('id', u.id, 'email', u.email, 'full_name', u.full_name,"     \
	" 'tenant_id', u.tenant_id, 'tenant_name', COALESCE(t.name, 'Default Tenant')," \
	" 'persona', u.persona, 'avatar_url', u.avatar_url,"                            \
	" 'mckinsey_subject', u.mckinsey_subject)"

/* --- handlers (app/h_auth.c) ------------------------------------------------------------- */

int h_auth_login(struct req *r);      /* POST /api/auth/login */
int h_auth_logout(struct req *r);     /* POST /api/auth/logout */
int h_auth_logout_all(struct req *r); /* POST /api/auth/logout-all */
int h_auth_refresh(struct req *r);    /* POST /api/auth/refresh */
int h_auth_password(struct req *r);   /* PUT /api/auth/password */
int h_auth_register(struct req *r);   /* POST /api/auth/register */
/* GET /api/auth/register: 404 while registration is off (the path does not exist then), else
 * 405 with Allow: POST, as any other path without that method. */
int h_auth_register_get(struct req *r);
int h_auth_me(struct req *r);         /* GET /api/auth/me */
int h_auth_users(struct req *r);      /* GET /api/auth/users */

extern const struct jx_field auth_login_fields[];
extern const struct jx_field auth_password_fields[];
extern const struct jx_field auth_register_fields[];

/* --- handlers (app/h_users.c) ------------------------------------------------------------ */

int h_users_profile_get(struct req *r);     /* GET /api/users/profile */
int h_users_profile_put(struct req *r);     /* PUT /api/users/profile */
int h_users_preferences_get(struct req *r); /* GET /api/users/preferences */
int h_users_preferences_put(struct req *r); /* PUT /api/users/preferences */

extern const struct jx_field users_profile_fields[];
extern const struct jx_field users_preferences_fields[];

/* --- shared by the middleware and the handlers (app/mw.c) -------------------------------- */

/* ideaforge-api's start-up check (master, before forking, and on reload): resolves the JWT
 * secret (jwt_secret, i.e. env IDEAFORGE_JWT_SECRET, else the contents of jwt_secret_file,
 * trailing newline removed) into app->jwt_secret and refuses anything shorter than 32 bytes.
 * Returns 0, or -1 with err naming the key. */
int auth_config_check(struct app_config *app, char *err, size_t errlen);

/* The client's address: REMOTE_ADDR from nginx; with trust_proxy, the last entry of
 * X-Forwarded-For (the one our proxy appended). Never NULL ("-" when unknown). */
const char *auth_client_addr(struct req *r);

/* The token of the request: "Authorization: Bearer <t>" first, else the session_token cookie.
 * NULL when neither is present. Borrowed/arena. */
const char *auth_token(struct req *r);

/* One password computation, run by auth_pw_run() on the worker's hashing threads. */
struct auth_pw_job {
	bool verify;              /* check pw against hash first (else: only hash new_pw) */
	const char *hash;         /* stored hash; NULL with verify: a dummy verification (unknown
				   * user, same cost) whose result is PW_MISMATCH */
	const char *pw;           /* the password to check */
	const char *new_pw;       /* when set: hashed after a successful check (or alone) */
	bool rehash;              /* after a successful check: hash pw again if the stored hash
				   * has other parameters (or is bcrypt) */
	int result;               /* out: enum pw_result of the check (PW_OK when !verify) */
	char fresh[PW_HASH_MAX];  /* out: the new PHC string, "" when none was made or it failed */
	bool done;                /* internal */
	struct auth_pw_job *next; /* internal */
};

/* Runs job on one of the worker's argon2_max_concurrent hashing threads, waiting for a free one
 * as long as needed (a login storm queues instead of failing; memory stays at that many argon2
 * blocks), with the configured argon2id parameters. The request's database connection should
 * be released first (db_req_done). */
void auth_pw_run(struct req *r, struct auth_pw_job *job);

/* Creates a session for (user_id, tenant_id): the user_sessions row (with last_login_at when
 * login is true), then the token. On RC_OK *token (arena) and *expires_at (ISO-8601 text from
 * PostgreSQL, arena) are set; otherwise the error is recorded on r. */
int auth_session_create(struct req *r, const char *user_id, const char *tenant_id, bool login,
			const char **token, const char **expires_at);

/* Propagates a revocation already committed in PostgreSQL to the Redis cache: a new revocation
 * marker for user_id (ends every cached session of that user, and drops the user's cached /me
 * document) and the entry of sid (may be NULL). Also called after a profile change, for the
 * cached document alone. When Redis does not take it, the worker's heartbeat starts a new
 * cache generation as soon as Redis answers again. Never fails the request. */
void auth_revoke_cached(struct req *r, const char *user_id, const char *sid);

/* Caches the caller's /me document (json, len bytes) if the stamp the middleware saw is still
 * current. Best effort. */
void auth_cache_me(struct req *r, const char *json, size_t len);

/* Set-Cookie for the session token (HttpOnly, SameSite=Lax, Path=/, Max-Age, Secure per
 * cookie_secure), and the one that clears it. */
void auth_set_cookie(struct req *r, const char *token);
void auth_clear_cookie(struct req *r);

/* The failed-login budget of (email, client address) and of the address alone (API.md 4.1).
 * attempt: takes one unit of each, atomically per bucket, before the password is verified, so
 * N concurrent guesses can never verify more than the limit; when refused while other attempts
 * on the bucket are still verifying, waits (bounded) for them to settle. Returns whether the
 * attempt may proceed; res tells the limit either way. settle: ok gives both units back (a
 * right password costs nothing), otherwise the units stay spent (the failure is recorded).
 * Every allowed attempt is settled exactly once. */
bool auth_login_attempt(struct req *r, const char *email, struct rl_result *res);
void auth_login_settle(struct req *r, const char *email, bool ok);

/* Peeks at the address's failure budget without spending it: false (res set) when exhausted,
 * so an unauthenticated route can refuse before reading its body. */
bool auth_login_peek_address(struct req *r, struct rl_result *res);

/* Answers 429 with Retry-After, RateLimit-* and the body of API.md 4.1 plus "detail". RC_OK
 * (the response is set). */
int auth_too_many(struct req *r, const struct rl_result *res);

#endif
