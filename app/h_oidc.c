/* h_oidc.c - single sign-on with any OpenID Connect provider (issue 16; API.md 1.2 SSO rows,
 * 8.1 item 6).
 *
 * The authorization code flow (OpenID Connect Core 1.0 section 3.1) with PKCE S256 (RFC 7636):
 *   authorize: a random state, nonce and code verifier; the state's SHA-256, the nonce and the
 *     verifier go into oidc_logins (sql/0005_external.sql), the state also into an HttpOnly
 *     cookie (oidc_state) that binds the sign-in to this browser (RFC 6749 section 10.12);
 *     the answer is {authorization_url, state} as the original's, or a 302 with ?redirect=1.
 *   callback: the state must match the cookie and a live row, which is deleted as it is read
 *     (a replayed state finds nothing); the code is exchanged with the verifier (client secret
 *     as HTTP Basic, RFC 6749 section 2.3.1); the ID token is verified (lib/jws.h: RS256 or
 *     ES256 with the provider's JWKS; then iss, aud/azp, exp/iat/nbf with oidc_leeway_s, and
 *     the nonce, section 3.1.3.7); the user is found by issuer + subject (user_identities) or
 *     created in oidc_tenant; the session and cookie are those of a password login
 *     (session_create, session_set_cookie) and so is the body.
 *   logout: ends our session like /api/auth/logout, forgets the sealed refresh token, and
 *     returns the provider's end_session_endpoint (RP-Initiated Logout 1.0) as logout_url.
 *   refresh: uses the sealed refresh token (AES-GCM, app/keys.h) to prove the provider still
 *     knows the user; a refused token is forgotten.
 *
 * The discovery document (whose issuer must be ours, Discovery 1.0 section 4.3) and the JWKS
 * are cached per process for oidc_jwks_ttl_s; a token whose kid the cached set lacks fetches
 * the set again (key rotation), at most once per 10 seconds.
 *
 * An email address that already belongs to another account is not linked to the identity
 * (that would let whoever controls the provider's email claim take over a password account):
 * the first sign-in answers 409 and an operator links the accounts.
 */
#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/arena.h"
#include "../lib/jws.h"
#include "auth.h"
#include "session.h"
#include "ext.h"
#include "keys.h"
#include "ops.h"

#define OIDC_COOKIE "oidc_state"
#define OIDC_RANDOM_BYTES 32        /* state, nonce and verifier: 256 bits each */
#define OIDC_META_MAX (256u << 10)  /* discovery document cap */
#define OIDC_JWKS_MAX (256u << 10)  /* key set cap */
#define OIDC_TOKEN_MAX (256u << 10) /* token response cap */
#define OIDC_REFETCH_MIN_S 10       /* JWKS refetch on an unknown kid: at most this often */
#define OIDC_PARAM_MAX 2048         /* code and state lengths accepted */

/* --- provider metadata, cached per process ----------------------------------------------- */

struct oidc_cache {
	char *issuer;      /* the configured issuer these belong to */
	char *authz;       /* authorization_endpoint */
	char *token;       /* token_endpoint */
	char *jwks_uri;    /* jwks_uri */
	char *end_session; /* end_session_endpoint, NULL when none */
	char *jwks;        /* the key set text */
	int64_t meta_at_s; /* when the document was fetched, 0 never */
	int64_t jwks_at_s; /* when the key set was fetched, 0 never */
};

static pthread_mutex_t oidc_mu = PTHREAD_MUTEX_INITIALIZER;
static struct oidc_cache oidc_c; /* guarded by oidc_mu */

/* What a request uses: arena copies. */
struct oidc_meta {
	const char *authz;
	const char *token;
	const char *jwks_uri;
	const char *end_session;
};

static int64_t now_s(void)
{
	return wall_us() / 1000000;
}

static bool oidc_on(struct req *r)
{
	const char *iss = app_cfg(r)->oidc_issuer;
	return iss && *iss;
}

static bool url_acceptable(struct req *r, const char *u)
{
	return u && (strncmp(u, "https://", 8) == 0 ||
		     (app_cfg(r)->ext_allow_http && strncmp(u, "http://", 7) == 0));
}

static void cache_reset_locked(void)
{
	free(oidc_c.issuer);
	free(oidc_c.authz);
	free(oidc_c.token);
	free(oidc_c.jwks_uri);
	free(oidc_c.end_session);
	free(oidc_c.jwks);
	memset(&oidc_c, 0, sizeof(oidc_c));
}

/* Fetches the discovery document (no lock held during the call). RC_OK with the endpoints
 * stored in the cache, or an error recorded on r. */
static int meta_fetch(struct req *r)
{
	const struct app_config *cfg = app_cfg(r);
	size_t n = strlen(cfg->oidc_issuer);
	const char *url = arena_printf(r->a, "%.*s/.well-known/openid-configuration",
				       (int)(n && cfg->oidc_issuer[n - 1] == '/' ? n - 1 : n),
				       cfg->oidc_issuer);
	struct httpc_req rq = {
		.url = url, .headers = {"Accept: application/json"}, .max_body = OIDC_META_MAX};
	struct httpc_res res;
	struct json_object *doc = NULL;
	enum httpc_status st = ext_call(r, "identity provider", &rq, true, &doc, &res);
	httpc_res_free(&res);
	if (st != HTTPC_OK)
		return ext_fail(r, "The identity provider", st, &res);
	const char *iss = jx_get_str(doc, "issuer");
	const char *authz = jx_get_str(doc, "authorization_endpoint");
	const char *token = jx_get_str(doc, "token_endpoint");
	const char *jwks = jx_get_str(doc, "jwks_uri");
	const char *end = jx_get_str(doc, "end_session_endpoint");
	if (!iss || strcmp(iss, cfg->oidc_issuer) != 0 || !url_acceptable(r, authz) ||
	    !url_acceptable(r, token) || !url_acceptable(r, jwks) ||
	    (end && !url_acceptable(r, end))) {
		log_msg(LL_WARN, r->rid,
			"oidc: the discovery document does not match oidc_issuer or names "
			"unusable endpoints");
		return req_fail(r, RC_UNAVAILABLE,
				"The identity provider's configuration could not be used");
	}
	pthread_mutex_lock(&oidc_mu);
	if (!oidc_c.issuer || strcmp(oidc_c.issuer, cfg->oidc_issuer) != 0)
		cache_reset_locked();
	free(oidc_c.issuer);
	free(oidc_c.authz);
	free(oidc_c.token);
	free(oidc_c.jwks_uri);
	free(oidc_c.end_session);
	oidc_c.issuer = strdup(cfg->oidc_issuer);
	oidc_c.authz = strdup(authz);
	oidc_c.token = strdup(token);
	oidc_c.jwks_uri = strdup(jwks);
	oidc_c.end_session = end ? strdup(end) : NULL;
	oidc_c.meta_at_s = now_s();
	bool ok = oidc_c.issuer && oidc_c.authz && oidc_c.token && oidc_c.jwks_uri;
	if (!ok)
		cache_reset_locked();
	pthread_mutex_unlock(&oidc_mu);
	return ok ? RC_OK : req_fail(r, RC_INTERNAL, "oidc: out of memory");
}

/* The provider's endpoints, fetched when the cache is empty or older than oidc_jwks_ttl_s. */
static int oidc_meta(struct req *r, struct oidc_meta *m)
{
	const struct app_config *cfg = app_cfg(r);
	for (int pass = 0; pass < 2; pass++) {
		pthread_mutex_lock(&oidc_mu);
		bool fresh = oidc_c.issuer && strcmp(oidc_c.issuer, cfg->oidc_issuer) == 0 &&
			     oidc_c.meta_at_s && now_s() - oidc_c.meta_at_s < cfg->oidc_jwks_ttl_s;
		if (fresh) {
			m->authz = arena_strdup(r->a, oidc_c.authz);
			m->token = arena_strdup(r->a, oidc_c.token);
			m->jwks_uri = arena_strdup(r->a, oidc_c.jwks_uri);
			m->end_session = arena_strdup(r->a, oidc_c.end_session);
		}
		pthread_mutex_unlock(&oidc_mu);
		if (fresh)
			return RC_OK;
		if (pass == 0) {
			int rc = meta_fetch(r);
			if (rc != RC_OK)
				return rc;
		}
	}
	return req_fail(r, RC_UNAVAILABLE,
			"The identity provider's configuration could not be used");
}

/* The key set text: the cached one unless force (an unknown kid) and the last fetch is older
 * than OIDC_REFETCH_MIN_S, or the cache is stale. Arena copy, or NULL with r's error. */
static const char *oidc_jwks(struct req *r, const struct oidc_meta *m, bool force)
{
	const struct app_config *cfg = app_cfg(r);
	const char *out = NULL;
	pthread_mutex_lock(&oidc_mu);
	int64_t age = now_s() - oidc_c.jwks_at_s;
	bool use =
		oidc_c.jwks && age < cfg->oidc_jwks_ttl_s && !(force && age >= OIDC_REFETCH_MIN_S);
	if (use)
		out = arena_strdup(r->a, oidc_c.jwks);
	pthread_mutex_unlock(&oidc_mu);
	if (out)
		return out;
	struct httpc_req rq = {.url = m->jwks_uri,
			       .headers = {"Accept: application/jwk-set+json, application/json"},
			       .max_body = OIDC_JWKS_MAX};
	struct httpc_res res;
	enum httpc_status st = ext_call(r, "identity provider", &rq, false, NULL, &res);
	if (st != HTTPC_OK || !res.body) {
		httpc_res_free(&res);
		ext_fail(r, "The identity provider", st == HTTPC_OK ? HTTPC_E_PROTOCOL : st, &res);
		return NULL;
	}
	out = arena_strndup(r->a, res.body, res.body_len);
	pthread_mutex_lock(&oidc_mu);
	free(oidc_c.jwks);
	oidc_c.jwks = strdup(out);
	oidc_c.jwks_at_s = oidc_c.jwks ? now_s() : 0;
	pthread_mutex_unlock(&oidc_mu);
	httpc_res_free(&res);
	return out;
}

/* --- helpers ------------------------------------------------------------------------------ */

static const char *random_b64url(struct req *r)
{
	unsigned char b[OIDC_RANDOM_BYTES];
	if (RAND_bytes(b, sizeof(b)) != 1)
		return NULL;
	const char *s = httpc_b64url(r->a, b, sizeof(b));
	OPENSSL_cleanse(b, sizeof(b));
	return s;
}

/* SHA-256 of s: as base64url (the PKCE challenge) or as hex (the stored state). */
static void sha256(const char *s, unsigned char out[32])
{
	unsigned int n = 32;
	EVP_Digest(s, strlen(s), out, &n, EVP_sha256(), NULL);
}

static const char *sha256_hex(struct req *r, const char *s)
{
	unsigned char d[32];
	sha256(s, d);
	char *o = arena_alloc(r->a, 65);
	for (int i = 0; i < 32; i++)
		snprintf(o + 2 * i, 3, "%02x", d[i]);
	return o;
}

static bool cookie_secure(struct req *r)
{
	int m = app_cfg(r)->cookie_secure;
	return m == COOKIE_SECURE_ON || (m == COOKIE_SECURE_AUTO && r->https);
}

static void state_cookie(struct req *r, const char *state, int64_t max_age_s)
{
	/* clang-format off */
	res_header(r, "Set-Cookie",
		   arena_printf(r->a, OIDC_COOKIE "=%s; Max-Age=%lld; Path=/; HttpOnly; "
					"SameSite=Lax%s",
				state ? state : "", (long long)max_age_s,
				cookie_secure(r) ? "; Secure" : ""));
	/* clang-format on */
}

static void wipe_secret(void *p)
{
	OPENSSL_cleanse(p, 4096);
}

/* The client secret: the configured value, else the file's contents (read each time: a
 * rotated secret needs no reload). "" when none (a public client). */
static const char *client_secret(struct req *r)
{
	const struct app_config *cfg = app_cfg(r);
	if (cfg->oidc_client_secret && *cfg->oidc_client_secret)
		return cfg->oidc_client_secret;
	if (!cfg->oidc_client_secret_file || !*cfg->oidc_client_secret_file)
		return "";
	char *buf = arena_alloc(r->a, 4096), err[256];
	if (keys_read_file("oidc_client_secret_file", cfg->oidc_client_secret_file, buf, 4096, err,
			   sizeof(err)) < 0) {
		log_msg(LL_ERROR, r->rid, "%s", err);
		return NULL;
	}
	arena_defer(r->a, wipe_secret, buf);
	return buf;
}

/* --- authorize ---------------------------------------------------------------------------- */

int h_oidc_authorize(struct req *r)
{
	if (!oidc_on(r))
		return req_fail(r, RC_NOTFOUND, "Not Found");
	const struct app_config *cfg = app_cfg(r);
	struct oidc_meta m;
	int rc = oidc_meta(r, &m);
	if (rc != RC_OK)
		return rc;
	const char *state = random_b64url(r), *nonce = random_b64url(r);
	const char *verifier = random_b64url(r);
	if (!state || !nonce || !verifier)
		return req_fail(r, RC_INTERNAL, "oidc: no randomness");
	unsigned char d[32];
	sha256(verifier, d);
	const char *challenge = httpc_b64url(r->a, d, sizeof(d));
	char ttl[24];
	snprintf(ttl, sizeof(ttl), "%lld", (long long)cfg->oidc_login_ttl_s);
	const char *p[] = {sha256_hex(r, state), nonce, verifier, ttl};
	if (!db_exec(&r->c, "DELETE FROM oidc_logins WHERE expires_at < now() - interval '1 hour'",
		     0, NULL))
		return r->rc;
	if (!db_exec(&r->c,
		     "INSERT INTO oidc_logins (state_hash, nonce, code_verifier, expires_at) "
		     "VALUES ($1, $2, $3, now() + make_interval(secs => $4::int))",
		     4, p))
		return r->rc;
	const char *url = arena_printf(
		r->a,
		"%s%cresponse_type=code&client_id=%s&redirect_uri=%s&scope=%s&state=%s&nonce=%s"
		"&code_challenge=%s&code_challenge_method=S256",
		m.authz, strchr(m.authz, '?') ? '&' : '?',
		httpc_urlencode(r->a, cfg->oidc_client_id),
		httpc_urlencode(r->a, cfg->oidc_redirect_uri),
		httpc_urlencode(r->a, cfg->oidc_scopes), state, nonce, challenge);
	state_cookie(r, state, cfg->oidc_login_ttl_s);
	const char *redir = req_query(r, "redirect");
	if (redir && (strcmp(redir, "1") == 0 || strcmp(redir, "true") == 0)) {
		res_header(r, "Location", url);
		res_header(r, "Cache-Control", "no-store");
		return res_body(r, 302, "text/plain", "", 0);
	}
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "authorization_url", json_object_new_string(url));
	json_object_object_add(o, "state", json_object_new_string(state));
	return res_json(r, 200, o);
}

/* --- callback ----------------------------------------------------------------------------- */

/* The audience check of Core 1.0 section 3.1.3.7 items 3-5. */
static bool aud_ok(struct json_object *claims, const char *client_id)
{
	struct json_object *aud = jx_get(claims, "aud");
	const char *azp = jx_get_str(claims, "azp");
	if (!aud)
		return false;
	if (json_object_is_type(aud, json_type_string))
		return strcmp(json_object_get_string(aud), client_id) == 0 &&
		       (!azp || strcmp(azp, client_id) == 0);
	if (!json_object_is_type(aud, json_type_array))
		return false;
	size_t n = json_object_array_length(aud);
	bool found = false;
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(aud, i);
		if (json_object_is_type(e, json_type_string) &&
		    strcmp(json_object_get_string(e), client_id) == 0)
			found = true;
	}
	if (!found)
		return false;
	return n == 1 ? (!azp || strcmp(azp, client_id) == 0)
		      : (azp && strcmp(azp, client_id) == 0);
}

static bool num_claim(struct json_object *claims, const char *key, int64_t *v)
{
	struct json_object *o = jx_get(claims, key);
	if (!o ||
	    !(json_object_is_type(o, json_type_int) || json_object_is_type(o, json_type_double)))
		return false;
	*v = json_object_get_int64(o);
	return true;
}

static bool ct_equal(const char *a, const char *b)
{
	size_t n = strlen(a);
	return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

/* Verifies the ID token; the claims (arena) or NULL with r's error (400 for any defect, the
 * reason logged, never shown). */
static struct json_object *id_token_claims(struct req *r, const struct oidc_meta *m,
					   const char *id_token, const char *nonce)
{
	const struct app_config *cfg = app_cfg(r);
	struct json_object *claims = NULL;
	const char *why = NULL;
	int v = JWS_NOKEY;
	for (int pass = 0; pass < 2 && v == JWS_NOKEY; pass++) {
		const char *jwks = oidc_jwks(r, m, pass == 1);
		if (!jwks)
			return NULL;
		struct jws_keyset *ks = jws_keyset_parse(jwks, strlen(jwks));
		v = ks ? jws_verify(r->a, ks, id_token, &claims) : JWS_NOKEY;
		jws_keyset_free(ks);
	}
	int64_t exp, iat, nbf, t = now_s(), leeway = cfg->oidc_leeway_s;
	const char *iss = jx_get_str(claims, "iss"), *sub = jx_get_str(claims, "sub");
	const char *tok_nonce = jx_get_str(claims, "nonce");
	if (v != JWS_OK)
		why = jws_result_str(v);
	else if (!iss || strcmp(iss, cfg->oidc_issuer) != 0)
		why = "issuer";
	else if (!aud_ok(claims, cfg->oidc_client_id))
		why = "audience";
	else if (!num_claim(claims, "exp", &exp) || t > exp + leeway)
		why = "expired";
	else if (!num_claim(claims, "iat", &iat) || iat > t + leeway)
		why = "iat";
	else if (num_claim(claims, "nbf", &nbf) && nbf > t + leeway)
		why = "nbf";
	else if (!tok_nonce || !ct_equal(tok_nonce, nonce))
		why = "nonce";
	else if (!sub || !*sub || strlen(sub) > 255)
		why = "subject";
	if (why) {
		log_msg(LL_WARN, r->rid, "oidc: ID token refused (%s)", why);
		req_fail(r, RC_BADREQ, "The identity provider's ID token is invalid");
		return NULL;
	}
	return claims;
}

/* The login body of a user row (API.md 1.2), the cookie, and the counters. */
static int session_answer(struct req *r, PGresult *u, const char *token, const char *expires_at)
{
	struct json_object *o = json_object_new_object();
	static const char *const cols[] = {"user_id", "email", "full_name", "tenant_id"};
	for (size_t i = 0; i < 4; i++) {
		const char *v = db_get(u, 0, cols[i]);
		json_object_object_add(o, cols[i], v ? json_object_new_string(v) : NULL);
	}
	const char *tn = db_get(u, 0, "tenant_name");
	json_object_object_add(o, "tenant_name",
			       json_object_new_string(tn ? tn : "Default Tenant"));
	json_object_object_add(o, "token", json_object_new_string(token));
	json_object_object_add(o, "expires_at", json_object_new_string(expires_at));
	session_set_cookie(r, token);
	state_cookie(r, NULL, 0);
	return res_json(r, 200, o);
}

#define USER_COLS                                                                     \
	"u.id AS user_id, u.email, u.full_name, u.tenant_id, t.name AS tenant_name, " \
	"u.is_active"

/* The user of (issuer, subject), creating it in oidc_tenant on the first sign-in; inside the
 * caller's transaction. The row (USER_COLS) or NULL with r's error. */
static PGresult *sso_user(struct req *r, const char *sub, const char *email, const char *name)
{
	const struct app_config *cfg = app_cfg(r);
	const char *p[] = {cfg->oidc_issuer, sub};
	PGresult *u = db_exec(&r->c,
			      "SELECT " USER_COLS " FROM user_identities i "
			      "JOIN user_profiles u ON u.id = i.user_id "
			      "LEFT JOIN tenants t ON t.id = u.tenant_id "
			      "WHERE i.issuer = $1 AND i.subject = $2",
			      2, p);
	if (!u || PQntuples(u) == 1)
		return u;
	if (!email) {
		req_fail(r, RC_BADREQ,
			 "The identity provider did not share an email address: add the email "
			 "scope (oidc_scopes) or allow it at the provider");
		return NULL;
	}
	const char *q[] = {cfg->oidc_issuer, sub, email, name, cfg->oidc_tenant};
	/* clang-format off */
	u = db_exec(&r->c,
		    "WITH t AS (SELECT id, name FROM tenants WHERE slug = $5), "
		    "u AS (INSERT INTO user_profiles (email, full_name, tenant_id, auth_provider, "
		    "external_id, mckinsey_subject) SELECT $3, $4, t.id, 'oauth', $2, $2 FROM t "
		    "RETURNING id, email, full_name, tenant_id, is_active), "
		    "pr AS (INSERT INTO user_preferences (user_id) SELECT id FROM u), "
		    "i AS (INSERT INTO user_identities (issuer, subject, user_id, tenant_id, email) "
		    "SELECT $1, $2, u.id, u.tenant_id, $3 FROM u) "
		    "SELECT u.id AS user_id, u.email, u.full_name, u.tenant_id, t.name AS "
		    "tenant_name, u.is_active FROM u, t",
		    5, q);
	/* clang-format on */
	if (!u) {
		if (strcmp(r->db_sqlstate, "23505") == 0 || strcmp(r->db_sqlstate, "23514") == 0) {
			log_msg(LL_WARN, r->rid,
				"oidc: first sign-in refused, the email is taken or invalid (%s)",
				r->db_sqlstate);
			r->rc = RC_OK;
			req_fail(r, RC_CONFLICT,
				 "An account with this email address already exists. Sign in with "
				 "your password, or ask an administrator to link the accounts.");
		}
		return NULL;
	}
	if (PQntuples(u) != 1) {
		log_msg(LL_ERROR, r->rid, "oidc: oidc_tenant '%s' does not exist",
			cfg->oidc_tenant);
		req_fail(r, RC_INTERNAL, "oidc_tenant does not exist");
		return NULL;
	}
	log_msg(LL_INFO, r->rid, "oidc: user %s created on first sign-in", db_get(u, 0, "user_id"));
	return u;
}

/* The email claim, lower-cased, when it looks like an address; else NULL. */
static const char *email_claim(struct req *r, struct json_object *claims)
{
	const char *e = jx_get_str(claims, "email");
	if (!e || strlen(e) > 254 || !strchr(e, '@') || strpbrk(e, " \t\r\n"))
		return NULL;
	char *d = arena_strdup(r->a, e);
	for (char *c = d; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return d;
}

static const char *name_claim(struct req *r, struct json_object *claims)
{
	const char *n = jx_get_str(claims, "name");
	if (!n || !*n)
		n = jx_get_str(claims, "preferred_username");
	return n && *n ? arena_strndup(r->a, n, 200) : NULL;
}

/* POSTs a form to the token endpoint with our client authentication. */
static enum httpc_status token_call(struct req *r, const struct oidc_meta *m, const char *form,
				    struct json_object **json, struct httpc_res *res)
{
	const struct app_config *cfg = app_cfg(r);
	const char *secret = client_secret(r);
	if (!secret) {
		memset(res, 0, sizeof(*res));
		return HTTPC_E_AUTH;
	}
	const char *body = form;
	const char *authz = NULL;
	if (*secret) {
		/* RFC 6749 section 2.3.1: both halves form-urlencoded, then base64 */
		const char *pair =
			arena_printf(r->a, "%s:%s", httpc_urlencode(r->a, cfg->oidc_client_id),
				     httpc_urlencode(r->a, secret));
		authz = arena_printf(r->a, "Authorization: Basic %s",
				     httpc_b64(r->a, pair, strlen(pair)));
	} else {
		body = arena_printf(r->a, "%s&client_id=%s", form,
				    httpc_urlencode(r->a, cfg->oidc_client_id));
	}
	struct httpc_req rq = {.method = "POST",
			       .url = m->token,
			       .headers = {"Content-Type: application/x-www-form-urlencoded",
					   "Accept: application/json", authz},
			       .body = body,
			       .body_len = strlen(body),
			       .max_body = OIDC_TOKEN_MAX};
	return ext_call(r, "identity provider", &rq, true, json, res);
}

int h_oidc_callback(struct req *r)
{
	if (!oidc_on(r))
		return req_fail(r, RC_NOTFOUND, "Not Found");
	const struct app_config *cfg = app_cfg(r);
	const char *code = req_query(r, "code"), *state = req_query(r, "state");
	if (req_query(r, "error")) {
		log_msg(LL_INFO, r->rid, "oidc: the provider returned an error to the callback");
		state_cookie(r, NULL, 0);
		return req_fail(r, RC_BADREQ, "The identity provider did not complete the sign-in");
	}
	if (!code || !*code || !state || !*state || strlen(code) > OIDC_PARAM_MAX ||
	    strlen(state) > OIDC_PARAM_MAX)
		return req_fail(r, RC_BADREQ, "Missing code or state");
	const char *bound = req_cookie(r, OIDC_COOKIE);
	if (!bound || !ct_equal(bound, state)) {
		log_msg(LL_WARN, r->rid, "oidc: state does not match this browser's cookie");
		return req_fail(r, RC_BADREQ, "Invalid or expired state");
	}
	/* single use: the row is gone once read, whatever happens next */
	const char *sp[] = {sha256_hex(r, state)};
	PGresult *login = db_exec(&r->c,
				  "DELETE FROM oidc_logins WHERE state_hash = $1 "
				  "RETURNING nonce, code_verifier, expires_at > now() AS live",
				  1, sp);
	if (!login)
		return r->rc;
	if (PQntuples(login) != 1 || strcmp(db_get(login, 0, "live"), "t") != 0) {
		log_msg(LL_WARN, r->rid, "oidc: unknown, used or expired state");
		state_cookie(r, NULL, 0);
		return req_fail(r, RC_BADREQ, "Invalid or expired state");
	}
	const char *nonce = db_get(login, 0, "nonce");
	const char *verifier = db_get(login, 0, "code_verifier");
	db_done(&r->c); /* no connection held while the provider answers */

	struct oidc_meta m;
	int rc = oidc_meta(r, &m);
	if (rc != RC_OK)
		return rc;
	const char *form = arena_printf(r->a,
					"grant_type=authorization_code&code=%s&redirect_uri=%s"
					"&code_verifier=%s",
					httpc_urlencode(r->a, code),
					httpc_urlencode(r->a, cfg->oidc_redirect_uri), verifier);
	struct json_object *tok = NULL;
	struct httpc_res res;
	enum httpc_status st = token_call(r, &m, form, &tok, &res);
	httpc_res_free(&res);
	if (st != HTTPC_OK) {
		if (st == HTTPC_E_AUTH || st == HTTPC_E_BADREQ || st == HTTPC_E_NOTFOUND)
			return req_fail(r, RC_BADREQ,
					"The identity provider refused the authorization code");
		return ext_fail(r, "The identity provider", st, &res);
	}
	const char *id_token = jx_get_str(tok, "id_token");
	if (!id_token)
		return req_fail(r, RC_BADREQ, "The identity provider returned no ID token");
	struct json_object *claims = id_token_claims(r, &m, id_token, nonce);
	if (!claims)
		return r->rc;
	const char *sub = jx_get_str(claims, "sub");
	const char *email = email_claim(r, claims);
	const char *refresh = jx_get_str(tok, "refresh_token");

	rc = db_begin(&r->c);
	if (rc != RC_OK)
		return rc;
	PGresult *u = sso_user(r, sub, email, name_claim(r, claims));
	if (!u) {
		rc = r->rc;
		db_rollback(&r->c);
		return rc;
	}
	const char *uid = db_get(u, 0, "user_id"), *tid = db_get(u, 0, "tenant_id");
	if (strcmp(db_get(u, 0, "is_active"), "t") != 0) {
		db_rollback(&r->c);
		ops_count(r, OPS_LOGIN_FAILED);
		return req_fail(r, RC_FORBIDDEN, "User account is inactive");
	}
	const char *sealed = NULL;
	if (refresh && strlen(refresh) < 8192) {
		sealed = keys_seal(&r->c, uid, "oidc", refresh);
		if (!sealed) {
			log_msg(LL_WARN, r->rid,
				"oidc: refresh token not kept (no secrets_key configured)");
			ctx_clear(&r->c);
		}
	}
	const char *ip[] = {cfg->oidc_issuer, sub, email, sealed};
	if (!db_exec(&r->c,
		     "UPDATE user_identities SET last_login_at = now(), "
		     "email = coalesce($3, email), "
		     "refresh_token_sealed = coalesce($4, refresh_token_sealed) "
		     "WHERE issuer = $1 AND subject = $2",
		     4, ip))
		goto fail;
	const char *token, *expires_at;
	rc = session_create(r, uid, tid, true, &token, &expires_at);
	if (rc != RC_OK)
		goto fail;
	rc = db_commit(&r->c);
	if (rc != RC_OK)
		return rc;
	ops_count(r, OPS_LOGIN_OK);
	log_msg(LL_INFO, r->rid, "login user=%s method=oidc", uid);
	return session_answer(r, u, token, expires_at);
fail:
	rc = r->rc;
	db_rollback(&r->c);
	return rc;
}

/* --- logout and refresh ------------------------------------------------------------------- */

int h_oidc_logout(struct req *r)
{
	if (!oidc_on(r))
		return req_fail(r, RC_NOTFOUND, "Not Found");
	const struct app_config *cfg = app_cfg(r);
	const char *p[] = {r->auth.sid, r->auth.user_id};
	const char *q[] = {r->auth.user_id, cfg->oidc_issuer};
	if (!db_exec(&r->c,
		     "UPDATE user_sessions SET revoked_at = now() "
		     "WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
		     2, p))
		return r->rc;
	if (!db_exec(&r->c,
		     "UPDATE user_identities SET refresh_token_sealed = NULL "
		     "WHERE user_id = $1 AND issuer = $2",
		     2, q))
		return r->rc;
	session_revoke_cached(r, r->auth.user_id, r->auth.sid);
	session_clear_cookie(r);
	struct oidc_meta m = {0};
	const char *url = NULL;
	if (oidc_meta(r, &m) == RC_OK) {
		if (m.end_session) {
			url = arena_printf(r->a, "%s%cclient_id=%s", m.end_session,
					   strchr(m.end_session, '?') ? '&' : '?',
					   httpc_urlencode(r->a, cfg->oidc_client_id));
			if (*cfg->oidc_post_logout_redirect_uri)
				url = arena_printf(
					r->a, "%s&post_logout_redirect_uri=%s", url,
					httpc_urlencode(r->a, cfg->oidc_post_logout_redirect_uri));
		}
	} else {
		ctx_clear(&r->c); /* our session is over whatever the provider does */
	}
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "logout_url", url ? json_object_new_string(url) : NULL);
	json_object_object_add(o, "message", json_object_new_string("Logged out successfully"));
	return res_json(r, 200, o);
}

int h_oidc_refresh(struct req *r)
{
	if (!oidc_on(r))
		return req_fail(r, RC_NOTFOUND, "Not Found");
	const struct app_config *cfg = app_cfg(r);
	const char *p[] = {r->auth.user_id, cfg->oidc_issuer};
	bool found = false;
	const char *sealed = db_value(&r->c, &found,
				      "SELECT refresh_token_sealed FROM user_identities "
				      "WHERE user_id = $1 AND issuer = $2",
				      2, p);
	if (!sealed && r->rc != RC_OK)
		return r->rc;
	const char *rt = sealed ? keys_unseal(&r->c, r->auth.user_id, "oidc", sealed) : NULL;
	if (!rt)
		return req_fail(r, RC_UNAUTH, "No single sign-on session to refresh");
	db_done(&r->c);
	struct oidc_meta m;
	int rc = oidc_meta(r, &m);
	if (rc != RC_OK)
		return rc;
	const char *form = arena_printf(r->a, "grant_type=refresh_token&refresh_token=%s",
					httpc_urlencode(r->a, rt));
	struct json_object *tok = NULL;
	struct httpc_res res;
	enum httpc_status st = token_call(r, &m, form, &tok, &res);
	httpc_res_free(&res);
	if (st == HTTPC_E_AUTH || st == HTTPC_E_BADREQ) {
		db_exec(&r->c,
			"UPDATE user_identities SET refresh_token_sealed = NULL "
			"WHERE user_id = $1 AND issuer = $2",
			2, p);
		ctx_clear(&r->c);
		return req_fail(r, RC_UNAUTH,
				"The identity provider refused to refresh the session; sign in "
				"again");
	}
	if (st != HTTPC_OK)
		return ext_fail(r, "The identity provider", st, &res);
	const char *fresh = jx_get_str(tok, "refresh_token");
	if (fresh && strlen(fresh) < 8192) {
		const char *s = keys_seal(&r->c, r->auth.user_id, "oidc", fresh);
		const char *q[] = {r->auth.user_id, cfg->oidc_issuer, s};
		if (!s || !db_exec(&r->c,
				   "UPDATE user_identities SET refresh_token_sealed = $3 "
				   "WHERE user_id = $1 AND issuer = $2",
				   3, q))
			ctx_clear(&r->c);
	}
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "expires_in",
			       json_object_new_int64(jx_get_int(tok, "expires_in", 0)));
	json_object_object_add(o, "message",
			       json_object_new_string("Single sign-on session refreshed"));
	return res_json(r, 200, o);
}
