/* h_auth.c - the /api/auth routes: login, logout, logout-all, refresh, password, register, me,
 * users (API.md 1.2 and section 3; the session design is in session.h and lib/sess.h).
 *
 * Passwords (OWASP Password Storage Cheat Sheet): argon2id with the configured parameters, a
 * legacy bcrypt hash verified once and replaced, an unknown email costing one dummy argon2id
 * computation so that timing does not tell which accounts exist. Hashing runs outside any
 * database connection (the request gives its connection back first) and within the worker's
 * argon2_max_concurrent slots, so a login storm queues on CPU instead of exhausting memory or
 * the pool. Failed logins spend the failed-login budgets (per email and address, per address),
 * checked before any password work; successful logins spend nothing.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/arena.h"
#include "../lib/auth.h"
#include "auth.h"
#include "limits.h"
#include "ops.h"
#include "pwpool.h"
#include "session.h"

const struct jx_field auth_login_fields[] = {
	{"email", JX_EMAIL, JX_REQUIRED, 0, NULL},
	{"password", JX_STR, JX_REQUIRED, 1024, NULL},
	{NULL, JX_ANY, 0, 0, NULL},
};

const struct jx_field auth_password_fields[] = {
	{"current_password", JX_STR, JX_REQUIRED, 1024, NULL},
	{"new_password", JX_STR, JX_REQUIRED, 1024, NULL},
	{NULL, JX_ANY, 0, 0, NULL},
};

const struct jx_field auth_register_fields[] = {
	{"email", JX_EMAIL, JX_REQUIRED, 0, NULL},
	{"password", JX_STR, JX_REQUIRED, 1024, NULL},
	{"full_name", JX_STR, JX_NULLABLE, 200, NULL},
	{NULL, JX_ANY, 0, 0, NULL},
};

static const char invalid_login[] = "Invalid email or password";

/* ASCII lower-case copy (emails are stored lower-case: API.md 3). */
static char *lower(struct req *r, const char *s)
{
	char *d = arena_strdup(r->a, s);
	for (char *p = d; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

static int too_short(struct req *r, const char *field)
{
	char msg[96];
	snprintf(msg, sizeof(msg), "String should have at least %lld characters",
		 (long long)app_cfg(r)->password_min_length);
	return req_fail_field(r, "body", field, "string_too_short", msg);
}

static void put_str(struct json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

/* The login response (API.md 1.2) plus the cookie. */
static int session_response(struct req *r, int status, const char *user_id, const char *email,
			    const char *full_name, const char *tenant_id, const char *tenant_name,
			    const char *token, const char *expires_at)
{
	struct json_object *o = json_object_new_object();
	put_str(o, "user_id", user_id);
	put_str(o, "email", email);
	put_str(o, "full_name", full_name);
	put_str(o, "tenant_id", tenant_id);
	put_str(o, "tenant_name", tenant_name ? tenant_name : "Default Tenant");
	put_str(o, "token", token);
	put_str(o, "expires_at", expires_at);
	session_set_cookie(r, token);
	return res_json(r, status, o);
}

/* Replaces a hash that verified but uses old parameters (or bcrypt). Only if unchanged since we
 * read it, so a concurrent password change wins. Failure is logged, never the login's. */
static void store_rehash(struct req *r, const char *user_id, const char *old, const char *fresh)
{
	const char *p[] = {user_id, old, fresh};
	if (!db_exec(&r->c,
		     "UPDATE user_profiles SET password_hash = $3"
		     " WHERE id = $1 AND password_hash = $2",
		     3, p)) {
		log_msg(LL_WARN, r->rid, "password rehash not stored");
		r->rc = RC_OK;
		r->detail[0] = '\0';
	} else {
		log_msg(LL_INFO, r->rid,
			"password hash upgraded to the configured argon2id parameters");
	}
}

int h_auth_login(struct req *r)
{
	const char *email = lower(r, jx_get_str(r->json, "email"));
	const char *pw = jx_get_str(r->json, "password");
	struct rl_result rl;
	if (!limits_login_attempt(r, email, &rl))
		return limits_too_many(r, &rl);

	const char *p[] = {email};
	PGresult *res = db_exec(&r->c,
				"SELECT u.id, u.password_hash, u.is_active, u.tenant_id, u.email,"
				" u.full_name, t.name"
				" FROM user_profiles u LEFT JOIN tenants t ON t.id = u.tenant_id"
				" WHERE u.email = $1",
				1, p);
	if (!res) {
		limits_login_settle(r, email, true); /* not a failure of the client's */
		return r->rc;
	}
	db_done(&r->c); /* no connection held while hashing */
	bool found = PQntuples(res) == 1;
	const char *hash = found ? db_get(res, 0, "password_hash") : NULL;
	/* an unknown email (or no password) costs a dummy verification: same time */
	struct pwpool_job job = {.verify = true, .hash = hash, .pw = pw, .rehash = true};
	pwpool_run(r, &job);
	int v = job.result;
	limits_login_settle(r, email, v == PW_OK);

	if (v != PW_OK) {
		if (v == PW_ERROR)
			log_msg(LL_WARN, r->rid, "stored password hash of a user is not usable");
		ops_count(r, OPS_LOGIN_FAILED);
		return req_fail(r, RC_UNAUTH, invalid_login);
	}
	const char *uid = db_get(res, 0, "id");
	if (strcmp(db_get(res, 0, "is_active"), "t") != 0) {
		ops_count(r, OPS_LOGIN_FAILED);
		return req_fail(r, RC_FORBIDDEN, "User account is inactive");
	}
	if (job.fresh[0])
		store_rehash(r, uid, hash, job.fresh);
	const char *tok, *exp;
	const char *tid = db_get(res, 0, "tenant_id");
	int rc = session_create(r, uid, tid, true, &tok, &exp);
	if (rc != RC_OK)
		return rc;
	ops_count(r, OPS_LOGIN_OK);
	log_msg(LL_INFO, r->rid, "login user=%s", uid);
	return session_response(r, 200, uid, db_get(res, 0, "email"), db_get(res, 0, "full_name"),
				tid, db_get(res, 0, "name"), tok, exp);
}

int h_auth_logout(struct req *r)
{
	const char *tok = session_token(r);
	if (tok) {
		/* the token's own signature decides which session it may end; an expired token may
		 * still end its session */
		struct auth_claims c;
		const struct app_config *cfg = app_cfg(r);
		int v = auth_verify(tok, (const unsigned char *)cfg->jwt_secret,
				    strlen(cfg->jwt_secret), wall_us() / 1000000, &c);
		if ((v == AUTH_OK || v == AUTH_EXPIRED) && jx_is_uuid(c.jti) && jx_is_uuid(c.sub)) {
			const char *p[] = {c.jti, c.sub};
			if (!db_exec(&r->c,
				     "UPDATE user_sessions SET revoked_at = now()"
				     " WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
				     2, p))
				return r->rc;
			session_revoke_cached(r, c.sub, c.jti);
		}
	}
	session_clear_cookie(r);
	const char body[] = "{\"message\":\"Logged out successfully\"}";
	return res_json_text(r, 200, body, sizeof(body) - 1);
}

int h_auth_logout_all(struct req *r)
{
	const char *p[] = {r->auth.user_id};
	PGresult *res = db_exec(&r->c,
				"UPDATE user_sessions SET revoked_at = now()"
				" WHERE user_id = $1 AND revoked_at IS NULL",
				1, p);
	if (!res)
		return r->rc;
	session_revoke_cached(r, r->auth.user_id, r->auth.sid);
	session_clear_cookie(r);
	struct json_object *o = json_object_new_object();
	put_str(o, "message", "Logged out of all sessions");
	json_object_object_add(o, "sessions_revoked",
			       json_object_new_int64(strtoll(PQcmdTuples(res), NULL, 10)));
	return res_json(r, 200, o);
}

int h_auth_refresh(struct req *r)
{
	const char *p[] = {r->auth.user_id, r->auth.sid};
	int rc = db_begin(&r->c);
	if (rc != RC_OK)
		return rc;
	PGresult *u = db_exec(&r->c,
			      "SELECT u.email, u.full_name, t.name FROM user_profiles u"
			      " LEFT JOIN tenants t ON t.id = u.tenant_id WHERE u.id = $1",
			      1, p);
	if (!u)
		return r->rc;
	if (PQntuples(u) != 1)
		return req_fail(r, RC_UNAUTH, "User not found or inactive");
	/* the old session ends in the same transaction that creates the new one */
	PGresult *old = db_exec(&r->c,
				"UPDATE user_sessions SET revoked_at = now()"
				" WHERE user_id = $1 AND id = $2 AND revoked_at IS NULL",
				2, p);
	if (!old)
		return r->rc;
	if (strcmp(PQcmdTuples(old), "1") != 0)
		return req_fail(r, RC_UNAUTH, "Invalid or expired token");
	const char *tok, *exp;
	rc = session_create(r, r->auth.user_id, r->auth.tenant_id, false, &tok, &exp);
	if (rc != RC_OK)
		return rc;
	rc = db_commit(&r->c);
	if (rc != RC_OK)
		return rc;
	session_revoke_cached(r, r->auth.user_id, r->auth.sid);
	return session_response(r, 200, r->auth.user_id, db_get(u, 0, "email"),
				db_get(u, 0, "full_name"), r->auth.tenant_id, db_get(u, 0, "name"),
				tok, exp);
}

int h_auth_password(struct req *r)
{
	const char *cur = jx_get_str(r->json, "current_password");
	const char *neu = jx_get_str(r->json, "new_password");
	if ((int64_t)jx_utf8_chars(neu) < app_cfg(r)->password_min_length)
		return too_short(r, "new_password");
	const char *p[] = {r->auth.user_id};
	PGresult *res = db_exec(
		&r->c, "SELECT email, password_hash FROM user_profiles WHERE id = $1", 1, p);
	if (!res)
		return r->rc;
	if (PQntuples(res) != 1)
		return req_fail(r, RC_UNAUTH, "User not found or inactive");
	db_done(&r->c);
	const char *email = db_get(res, 0, "email");
	const char *hash = db_get(res, 0, "password_hash");
	struct rl_result rl;
	if (!limits_login_attempt(r, email, &rl))
		return limits_too_many(r, &rl);

	struct pwpool_job job = {.verify = true, .hash = hash, .pw = cur, .new_pw = neu};
	pwpool_run(r, &job);
	limits_login_settle(r, email, job.result == PW_OK);
	if (job.result != PW_OK) {
		return req_fail(r, RC_BADREQ, "Current password is incorrect");
	}
	if (!job.fresh[0])
		return req_fail(r, RC_INTERNAL, "password hashing failed");
	const char *fresh = job.fresh;

	/* the new hash and the end of the other sessions commit together; Redis follows */
	const char *q[] = {r->auth.user_id, fresh};
	const char *s[] = {r->auth.user_id, r->auth.sid};
	int rc = db_begin(&r->c);
	if (rc != RC_OK)
		return rc;
	if (!db_exec(&r->c, "UPDATE user_profiles SET password_hash = $2 WHERE id = $1", 2, q))
		return r->rc;
	PGresult *rev = db_exec(&r->c,
				"UPDATE user_sessions SET revoked_at = now()"
				" WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL",
				2, s);
	if (!rev)
		return r->rc;
	rc = db_commit(&r->c);
	if (rc != RC_OK)
		return rc;
	session_revoke_cached(r, r->auth.user_id, NULL);
	log_msg(LL_INFO, r->rid, "password changed user=%s", r->auth.user_id);
	struct json_object *o = json_object_new_object();
	put_str(o, "message", "Password changed");
	json_object_object_add(o, "sessions_revoked",
			       json_object_new_int64(strtoll(PQcmdTuples(rev), NULL, 10)));
	return res_json(r, 200, o);
}

/* Self-registration is off unless register_enabled: the route then answers 404 as if it did
 * not exist (nothing to probe). Each attempt spends one unit of the address's failed-login
 * budget, which bounds account creation per address. */
/* The route takes its body raw (ROUTE_RAW) so that, switched off, it answers 404 whatever is
 * sent; switched on, the body gets the same treatment as a ROUTE_JSON | ROUTE_STRICT route. */
static int register_body(struct req *r)
{
	return http_parse_json(r, auth_register_fields, true);
}

int h_auth_register_get(struct req *r)
{
	if (!app_cfg(r)->register_enabled)
		return req_fail(r, RC_NOTFOUND, "Not Found");
	res_header(r, "Allow", "POST");
	return req_fail(r, RC_METHOD, "Method Not Allowed");
}

int h_auth_register(struct req *r)
{
	if (!app_cfg(r)->register_enabled)
		return req_fail(r, RC_NOTFOUND, "Not Found");
	int brc = register_body(r);
	if (brc != RC_OK)
		return brc;
	const char *email = lower(r, jx_get_str(r->json, "email"));
	const char *pw = jx_get_str(r->json, "password");
	const char *name = jx_get_str(r->json, "full_name");
	/* every registration spends a unit of the failure budget (settled as spent) */
	struct rl_result rl;
	if (!limits_login_attempt(r, email, &rl))
		return limits_too_many(r, &rl);
	limits_login_settle(r, email, false);
	if ((int64_t)jx_utf8_chars(pw) < app_cfg(r)->password_min_length)
		return too_short(r, "password");

	struct pwpool_job job = {.verify = false, .new_pw = pw};
	pwpool_run(r, &job);
	if (!job.fresh[0])
		return req_fail(r, RC_INTERNAL, "password hashing failed");
	const char *hash = job.fresh;

	const char *p[] = {email, name, hash};
	int rc = db_begin(&r->c);
	if (rc != RC_OK)
		return rc;
	PGresult *res = db_exec(
		&r->c,
		"WITH t AS (SELECT id, name FROM tenants WHERE slug = 'default'),"
		" u AS (INSERT INTO user_profiles (email, full_name, password_hash, tenant_id,"
		" auth_provider) SELECT $1, $2, $3, t.id, 'local' FROM t"
		" RETURNING id, email, full_name, tenant_id),"
		" p AS (INSERT INTO user_preferences (user_id) SELECT id FROM u)"
		" SELECT u.id, u.email, u.full_name, u.tenant_id, t.name FROM u, t",
		3, p);
	if (!res) {
		if (strcmp(r->db_sqlstate, "23505") == 0)
			return req_fail(r, RC_CONFLICT, "Email already registered");
		return r->rc;
	}
	if (PQntuples(res) != 1)
		return req_fail(r, RC_INTERNAL, "the default tenant is missing");
	const char *uid = db_get(res, 0, "id");
	const char *tid = db_get(res, 0, "tenant_id");
	const char *tok, *exp;
	rc = session_create(r, uid, tid, true, &tok, &exp);
	if (rc != RC_OK)
		return rc;
	rc = db_commit(&r->c);
	if (rc != RC_OK)
		return rc;
	log_msg(LL_INFO, r->rid, "registered user=%s", uid);
	return session_response(r, 201, uid, db_get(res, 0, "email"), db_get(res, 0, "full_name"),
				tid, db_get(res, 0, "name"), tok, exp);
}

/* The document usually comes with the session check (Redis, or the PostgreSQL fallback), so
 * the hot path of /me runs no SQL; it is read and cached here only when Redis had the session
 * but not the document (evicted, or just invalidated by a profile change). */
int h_auth_me(struct req *r)
{
	const struct session_info *x = r->auth.ext;
	if (x && x->me_json)
		return res_json_text(r, 200, x->me_json, x->me_len);
	const char *p[] = {r->auth.user_id};
	bool found = false;
	const char *json =
		db_value(&r->c, &found,
			 "SELECT " SESSION_ME_JSON
			 " FROM user_profiles u LEFT JOIN tenants t ON t.id = u.tenant_id"
			 " WHERE u.id = $1 AND u.is_active",
			 1, p);
	if (!json && r->rc != RC_OK)
		return r->rc;
	if (!found)
		return req_fail(r, RC_UNAUTH, "User not found or inactive");
	size_t len = strlen(json);
	session_cache_me(r, json, len);
	return res_json_text(r, 200, json, len);
}

int h_auth_users(struct req *r)
{
	const char *p[] = {r->auth.tenant_id};
	bool found = false;
	const char *json = db_value(
		&r->c, &found,
		"SELECT json_build_object('users', COALESCE(json_agg(json_build_object("
		"'id', id, 'email', email, 'full_name', full_name, 'persona', persona,"
		" 'avatar_url', avatar_url, 'created_at', created_at, 'last_login_at', last_login_at)"
		" ORDER BY full_name, email), '[]'::json))"
		" FROM (SELECT * FROM user_profiles WHERE tenant_id = $1 AND is_active"
		" ORDER BY full_name, email LIMIT 1000) u", /* bounded like every list */
		1, p);
	if (!json)
		return r->rc != RC_OK ? (int)r->rc : req_fail(r, RC_INTERNAL, "no row");
	return res_json_text(r, 200, json, strlen(json));
}
