/* session.c - sessions (session.h): the client's address, the token from the Authorization
 * header or the cookie, the session cookie (OWASP Session Management Cheat Sheet: HttpOnly,
 * SameSite, Secure), the user_sessions row, revocations propagated to the Redis cache and the
 * durable check against PostgreSQL.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <openssl/crypto.h>

#include "../lib/arena.h"
#include "keys.h"
#include "session.h"
#include "wstate.h"

/* --- configuration --------------------------------------------------------------------- */

/* The longest signing secret taken, and the largest jwt_secret_file read. */
#define SECRET_MAX 1024
#define SECRET_FILE_MAX 4096

int session_config_check(struct app_config *app, char *err, size_t errlen)
{
	int rc = -1;
	char *buf = NULL;
	if ((!app->jwt_secret || !*app->jwt_secret) && app->jwt_secret_file &&
	    *app->jwt_secret_file) {
		buf = malloc(SECRET_FILE_MAX + 1);
		if (!buf) {
			snprintf(err, errlen, "jwt_secret_file: out of memory");
			goto out;
		}
		if (keys_read_file("jwt_secret_file", app->jwt_secret_file, buf,
				   SECRET_FILE_MAX + 1, err, errlen) < 0)
			goto out;
		free(app->jwt_secret);
		app->jwt_secret = strdup(buf);
		if (!app->jwt_secret) {
			snprintf(err, errlen, "jwt_secret_file: out of memory");
			goto out;
		}
	}
	if (!app->jwt_secret || strlen(app->jwt_secret) < AUTH_KEY_MIN) {
		snprintf(err, errlen,
			 "no token signing secret of at least %d bytes: set jwt_secret_file (e.g. "
			 "head -c 48 /dev/urandom | base64 > FILE) or env IDEAFORGE_JWT_SECRET",
			 AUTH_KEY_MIN);
		goto out;
	}
	if (strlen(app->jwt_secret) > SECRET_MAX) {
		snprintf(err, errlen, "token signing secret: longer than %d bytes", SECRET_MAX);
		goto out;
	}
	rc = 0;
out:
	if (buf) {
		OPENSSL_cleanse(buf, SECRET_FILE_MAX + 1);
		free(buf);
	}
	return rc;
}

/* --- the request's client and token ---------------------------------------------------- */

const char *session_client_addr(struct req *r)
{
	if (app_cfg(r)->trust_proxy) {
		const char *xff = req_env(r, "HTTP_X_FORWARDED_FOR");
		if (xff && *xff) {
			const char *last = strrchr(xff, ',');
			last = last ? last + 1 : xff;
			while (*last == ' ')
				last++;
			size_t n = strcspn(last, " ");
			if (n > 0 && n < 64)
				return arena_strndup(r->a, last, n);
		}
	}
	return r->remote_addr && *r->remote_addr ? r->remote_addr : "-";
}

const char *session_token(struct req *r)
{
	const char *h = req_env(r, "HTTP_AUTHORIZATION");
	if (h) {
		while (*h == ' ')
			h++;
		if (strncasecmp(h, "Bearer ", 7) == 0) {
			h += 7;
			while (*h == ' ')
				h++;
			size_t n = strcspn(h, " ");
			if (n > 0)
				return arena_strndup(r->a, h, n);
		}
	}
	const char *c = req_cookie(r, "session_token");
	return c && *c ? c : NULL;
}

/* --- cookies --------------------------------------------------------------------------- */

static bool cookie_secure(struct req *r)
{
	int m = app_cfg(r)->cookie_secure;
	return m == COOKIE_SECURE_ON || (m == COOKIE_SECURE_AUTO && r->https);
}

void session_set_cookie(struct req *r, const char *token)
{
	res_header(r, "Set-Cookie",
		   arena_printf(r->a,
				"session_token=%s; Max-Age=%lld; Path=/; HttpOnly; SameSite=Lax%s",
				token, (long long)app_cfg(r)->session_ttl_s,
				cookie_secure(r) ? "; Secure" : ""));
}

void session_clear_cookie(struct req *r)
{
	res_header(r, "Set-Cookie",
		   arena_printf(r->a,
				"session_token=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; "
				"Path=/; HttpOnly; SameSite=Lax%s",
				cookie_secure(r) ? "; Secure" : ""));
}

/* --- creating a session ---------------------------------------------------------------- */

/* A random (version 4) UUID: the session id, also the token's jti. */
static void uuid_v4(char out[37])
{
	unsigned char b[16];
	if (getrandom(b, sizeof(b), 0) != sizeof(b)) {
		/* not expected with flags 0; the id must be unique, not secret (the token is
		 * signed) */
		char h[2][17];
		sess_random_hex(h[0]);
		sess_random_hex(h[1]);
		for (int i = 0; i < 16; i++)
			b[i] = (unsigned char)((h[i / 8][(i % 8) * 2] & 0x0f) << 4 |
					       (h[i / 8][(i % 8) * 2 + 1] & 0x0f));
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

/* The address as inet text when it parses as IPv4 or IPv6, else NULL (unix sockets). */
static const char *inet_or_null(const char *a)
{
	unsigned char buf[sizeof(struct in6_addr)];
	if (a && (inet_pton(AF_INET, a, buf) == 1 || inet_pton(AF_INET6, a, buf) == 1))
		return a;
	return NULL;
}

/* Signs the token of claims c with the worker's key: RC_OK with *token (arena) set. */
static int sign_token(struct req *r, const struct auth_claims *c, const char **token)
{
	struct app_state *st = wstate_get(r);
	char *tok = auth_issue(c, st->key, st->keylen);
	if (!tok)
		return req_fail(r, RC_INTERNAL, "token signing failed");
	*token = arena_strdup(r->a, tok);
	free(tok);
	return RC_OK;
}

int session_create(struct req *r, const char *user_id, const char *tenant_id, bool login,
		   const char **token, const char **expires_at)
{
	const struct app_config *cfg = app_cfg(r);
	char jti[37];
	uuid_v4(jti);
	int64_t now_s = wall_us() / 1000000;
	struct auth_claims c;
	memset(&c, 0, sizeof(c));
	snprintf(c.sub, sizeof(c.sub), "%s", user_id);
	snprintf(c.tid, sizeof(c.tid), "%s", tenant_id);
	snprintf(c.jti, sizeof(c.jti), "%s", jti);
	c.iat_s = now_s;
	c.exp_s = now_s + cfg->session_ttl_s;
	int rc = sign_token(r, &c, token);
	if (rc != RC_OK)
		return rc;

	const char *ua = req_env(r, "HTTP_USER_AGENT");
	char exp[24];
	snprintf(exp, sizeof(exp), "%lld", (long long)c.exp_s);
	const char *p[] = {jti,
			   user_id,
			   tenant_id,
			   exp,
			   ua,
			   inet_or_null(session_client_addr(r)),
			   login ? "t" : "f"};
	bool found = false;
	*expires_at =
		db_value(&r->c, &found,
			 "WITH s AS (INSERT INTO user_sessions"
			 " (id, user_id, tenant_id, expires_at, user_agent, ip, last_seen_at)"
			 " VALUES ($1, $2, $3, to_timestamp($4::bigint), left($5, 512), $6::inet,"
			 " now()) RETURNING expires_at),"
			 " u AS (UPDATE user_profiles SET last_login_at = now()"
			 " WHERE id = $2 AND $7::boolean)"
			 " SELECT to_json(expires_at) #>> '{}' FROM s",
			 7, p);
	if (!*expires_at && r->rc != RC_OK)
		return r->rc;
	if (!*expires_at)
		return req_fail(r, RC_INTERNAL, "session insert: no row");
	return RC_OK;
}

/* --- the cache and the durable check --------------------------------------------------- */

void session_revoke_cached(struct req *r, const char *user_id, const char *sid)
{
	struct app_state *st = wstate_get(r);
	if (!kv_configured(r->t->kv))
		return; /* no Redis, no cache: PostgreSQL's revocation is all there is */
	if (sess_revoke(r->t->kv, user_id, sid, app_cfg(r)->session_cache_ttl_s) < 0) {
		atomic_store(&st->gen_bump, true);
		log_msg(LL_WARN, r->rid,
			"session revocation did not reach redis; the cache generation is replaced");
	}
}

enum session_state session_check_db(struct req *r, const struct auth_claims *c, const char **me)
{
	const char *p[] = {c->jti, c->sub, c->tid};
	PGresult *res =
		db_exec(&r->c,
			"SELECT CASE WHEN NOT u.is_active THEN 'inactive'"
			" WHEN s.revoked_at IS NOT NULL OR s.expires_at <= now() THEN 'revoked'"
			" ELSE 'live' END AS state, " SESSION_ME_JSON " AS me"
			" FROM user_sessions s JOIN user_profiles u"
			" ON u.id = s.user_id AND u.tenant_id = s.tenant_id"
			" LEFT JOIN tenants t ON t.id = u.tenant_id"
			" WHERE s.id = $1 AND s.user_id = $2 AND s.tenant_id = $3",
			3, p);
	if (!res)
		return SESSION_ERROR;
	if (PQntuples(res) != 1)
		return SESSION_INVALID;
	const char *v = db_get(res, 0, "state");
	if (strcmp(v, "inactive") == 0)
		return SESSION_INACTIVE;
	if (strcmp(v, "live") != 0)
		return SESSION_INVALID;
	*me = db_get(res, 0, "me");
	return SESSION_LIVE;
}

void session_cache_me(struct req *r, const char *json, size_t len)
{
	struct session_info *x = r->auth.ext;
	if (!x || !x->stamp_ok)
		return;
	int64_t ttl_s = app_cfg(r)->session_cache_ttl_s;
	int64_t left_s = r->auth.exp_s - wall_us() / 1000000;
	sess_refill(r->t->kv, NULL, r->auth.user_id, &x->stamp, left_s < ttl_s ? left_s : ttl_s,
		    json, len);
}
