/* h_integrations.c - GitHub, Confluence and Jira (issue 16; API.md 1.11 publish-to-confluence,
 * 1.12 upload-from-github and upload-from-confluence, 1.14 integrations verify; the original's
 * idea_to_jira / prd_to_jira workflows), and the helpers every outside call shares (ext.h).
 *
 * Credentials are the caller's own, stored sealed by POST /api/integrations/configure
 * (app/h_keys.c): a GitHub personal access token; an Atlassian site URL, email and API token
 * (HTTP Basic, as Atlassian documents for API tokens). They are opened for one call and never
 * returned. GitHub is reached at github_api_url; an Atlassian site only when its host ends in
 * one of atlassian_allowed_hosts (the server must not call any host a user names). The
 * Confluence cloud id comes from the site's own tenant info (GET /_edge/tenant_info), not
 * from its subdomain (API.md 8.2 item 15).
 *
 * Product-scoped routes check the caller's access first: another tenant's product (or a
 * missing one) is 404, a product of the tenant without the right is 403. Imports need edit
 * rights (they write the knowledge base); publishing and Jira export need view rights.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../lib/arena.h"
#include "../lib/buf.h"
#include "ext.h"
#include "products.h"

#define EXT_JSON_DEPTH 64
#define URL_MAX 2048
#define JIRA_ISSUES_MAX 50 /* issues one workflow creates */
#define SUMMARY_MAX 250    /* Jira summary length (Jira's limit is 255) */
#define PRD_MAX_BYTES (2u << 20)

/* --- shared helpers (ext.h) ---------------------------------------------------------------- */

enum httpc_status ext_call(struct req *r, const char *service, struct httpc_req *rq, bool want_json,
			   struct json_object **json, struct httpc_res *res)
{
	if (!rq->total_timeout_ms)
		rq->total_timeout_ms = app_cfg(r)->ext_timeout_ms;
	if (!rq->connect_timeout_ms)
		rq->connect_timeout_ms =
			rq->total_timeout_ms < 10000 ? rq->total_timeout_ms : 10000;
	enum httpc_status st = httpc_do(rq, res);
	if (json)
		*json = NULL;
	if (st == HTTPC_OK && want_json) {
		struct json_object *o =
			res->body ? jx_parse(res->body, res->body_len, EXT_JSON_DEPTH) : NULL;
		if (o && (json_object_is_type(o, json_type_object) ||
			  json_object_is_type(o, json_type_array))) {
			jx_arena_own(r->a, o);
			if (json)
				*json = o;
		} else {
			json_object_put(o);
			st = res->status = HTTPC_E_PROTOCOL;
		}
	}
	/* the path without its query: no token or search text in the log */
	const char *u = rq->url, *host = strstr(u, "://");
	host = host ? host + 3 : u;
	size_t n = strcspn(host, "?#");
	log_msg(st == HTTPC_OK ? LL_INFO : LL_WARN, r->rid,
		"ext call service=\"%s\" method=%s url=%.*s outcome=%s http=%d dur_ms=%lld",
		service, rq->method ? rq->method : "GET", (int)(n > 200 ? 200 : n), host,
		httpc_status_str(st), res->http_status, (long long)res->total_ms);
	return st;
}

int ext_fail(struct req *r, const char *service, enum httpc_status st, const struct httpc_res *res)
{
	switch (st) {
	case HTTPC_E_AUTH:
		return req_fail(r, RC_BADREQ,
				"%s rejected the stored credentials or they lack a permission: "
				"check them with POST /api/integrations/configure",
				service);
	case HTTPC_E_NOTFOUND:
		return req_fail(r, RC_NOTFOUND, "%s does not know the requested item", service);
	case HTTPC_E_QUOTA: {
		int64_t ra = res && res->retry_after_s > 0 ? res->retry_after_s : 60;
		res_header(r, "Retry-After", arena_printf(r->a, "%lld", (long long)ra));
		return req_fail(r, RC_RATELIMIT, "%s's rate limit was reached; try again later",
				service);
	}
	case HTTPC_E_BADREQ: return req_fail(r, RC_BADREQ, "%s refused the request", service);
	case HTTPC_E_TOOLARGE:
		return req_fail(r, RC_TOOLARGE, "%s's answer is larger than allowed", service);
	case HTTPC_E_TIMEOUT:
		res_header(r, "Retry-After", "30");
		return req_fail(r, RC_UNAVAILABLE, "%s did not answer in time", service);
	case HTTPC_E_UNREACHABLE:
		res_header(r, "Retry-After", "30");
		return req_fail(r, RC_UNAVAILABLE, "%s could not be reached", service);
	case HTTPC_E_SERVER:
		res_header(r, "Retry-After", "30");
		return req_fail(r, RC_UNAVAILABLE, "%s failed or is overloaded; try again later",
				service);
	default:
		res_header(r, "Retry-After", "30");
		return req_fail(r, RC_UNAVAILABLE, "%s's answer could not be understood", service);
	}
}

int ext_product_access(struct req *r, const char *product_id, int want)
{
	if (!jx_is_uuid(product_id))
		return req_fail_field(r, "body", "product_id", "uuid_parsing",
				      "Input should be a valid UUID");
	int lvl = prod_level(r, product_id);
	if (lvl < 0)
		return r->rc;
	if (lvl == PL_NONE)
		return req_fail(r, RC_NOTFOUND, "Product not found");
	if (lvl < want)
		return req_fail(r, RC_FORBIDDEN, "Access denied to product");
	return RC_OK;
}

/* --- credentials --------------------------------------------------------------------------- */

struct atl {
	const char *site;     /* https://x.atlassian.net, no trailing '/' */
	const char *auth;     /* "Authorization: Basic ..." (arena, wiped with it) */
	const char *cloud_id; /* from the stored metadata, NULL when not known yet */
};

static const char github_missing[] =
	"GitHub is not configured: save a personal access token with POST "
	"/api/integrations/configure {provider: github, config: {pat}}";
static const char atlassian_missing[] =
	"Atlassian is not configured: save url, email and api_token with POST "
	"/api/integrations/configure {provider: atlassian, config: {url, email, api_token}}";

/* The host of an http(s) URL (arena, lower case, no port), or NULL. */
static const char *url_host(struct req *r, const char *url, bool *https)
{
	size_t skip;
	if (strncasecmp(url, "https://", 8) == 0) {
		skip = 8;
		*https = true;
	} else if (strncasecmp(url, "http://", 7) == 0) {
		skip = 7;
		*https = false;
	} else {
		return NULL;
	}
	const char *h = url + skip;
	size_t n = strcspn(h, ":/?#");
	if (n == 0 || memchr(h, '@', strcspn(h, "/?#")))
		return NULL; /* no userinfo: it would hide the real host */
	char *o = arena_strndup(r->a, h, n);
	for (char *c = o; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return o;
}

/* Whether the Atlassian site url may be called: https (or http with ext_allow_http) and a
 * host that ends in one of atlassian_allowed_hosts ("a.atlassian.net" matches
 * ".atlassian.net"; an entry without a leading dot matches that host exactly). */
static bool site_allowed(struct req *r, const char *url)
{
	const struct app_config *cfg = app_cfg(r);
	bool https = false;
	const char *host = url_host(r, url, &https);
	if (!host || (!https && !cfg->ext_allow_http) || strpbrk(url, " \t\r\n\"'<>\\"))
		return false;
	const char *list = cfg->atlassian_allowed_hosts;
	while (list && *list) {
		size_t n = strcspn(list, ",");
		const char *e = list;
		while (n && isspace((unsigned char)*e)) {
			e++;
			n--;
		}
		while (n && isspace((unsigned char)e[n - 1]))
			n--;
		size_t hl = strlen(host);
		if (n && ((e[0] == '.' && hl > n && strncasecmp(host + hl - n, e, n) == 0) ||
			  (e[0] != '.' && hl == n && strncasecmp(host, e, n) == 0)))
			return true;
		list += strcspn(list, ",");
		if (*list == ',')
			list++;
	}
	return false;
}

static const char *basic_auth(struct req *r, const char *email, const char *token)
{
	const char *pair = arena_printf(r->a, "%s:%s", email, token);
	return arena_printf(r->a, "Authorization: Basic %s", httpc_b64(r->a, pair, strlen(pair)));
}

static const char *trim_slash(struct req *r, const char *s)
{
	size_t n = strlen(s);
	while (n && s[n - 1] == '/')
		n--;
	return arena_strndup(r->a, s, n);
}

/* The caller's stored Atlassian credentials: RC_OK, or 400 (not configured, or a site URL the
 * configuration no longer allows) / a database error. */
static int atl_load(struct req *r, struct atl *out)
{
	const char *p[] = {r->auth.user_id};
	PGresult *res = db_exec(&r->c,
				"SELECT api_key_encrypted, metadata->>'url' AS url, "
				"metadata->>'email' AS email, metadata->>'cloud_id' AS cloud_id "
				"FROM user_api_keys WHERE user_id = $1 AND provider = 'atlassian' "
				"AND is_active",
				1, p);
	if (!res)
		return r->rc;
	if (PQntuples(res) != 1)
		return req_fail(r, RC_BADREQ, atlassian_missing);
	const char *token = keys_unseal(&r->c, r->auth.user_id, "atlassian",
					db_get(res, 0, "api_key_encrypted"));
	const char *url = db_get(res, 0, "url"), *email = db_get(res, 0, "email");
	if (!token || !url || !email)
		return req_fail(r, RC_BADREQ, atlassian_missing);
	if (!site_allowed(r, url))
		return req_fail(r, RC_BADREQ,
				"The stored Atlassian site is not one this server may call "
				"(atlassian_allowed_hosts)");
	out->site = trim_slash(r, url);
	out->auth = basic_auth(r, email, token);
	out->cloud_id = arena_strdup(r->a, db_get(res, 0, "cloud_id"));
	return RC_OK;
}

static int github_token(struct req *r, const char **auth)
{
	const char *pat = keys_user_secret(&r->c, "github");
	if (!pat)
		return r->rc != RC_OK ? (int)r->rc : req_fail(r, RC_BADREQ, github_missing);
	*auth = arena_printf(r->a, "Authorization: Bearer %s", pat);
	return RC_OK;
}

static enum httpc_status github_get(struct req *r, const char *auth, const char *path, size_t max,
				    struct json_object **json, struct httpc_res *res)
{
	struct httpc_req rq = {
		.url = arena_printf(r->a, "%s%s", trim_slash(r, app_cfg(r)->github_api_url), path),
		.headers = {"Accept: application/vnd.github+json",
			    "X-GitHub-Api-Version: 2022-11-28", auth},
		.max_body = max};
	return ext_call(r, "GitHub", &rq, true, json, res);
}

static enum httpc_status atl_call(struct req *r, const struct atl *a, const char *method,
				  const char *path, const char *body, struct json_object **json,
				  struct httpc_res *res, size_t max)
{
	struct httpc_req rq = {.method = method,
			       .url = arena_printf(r->a, "%s%s", a->site, path),
			       .headers = {"Accept: application/json", a->auth,
					   body ? "Content-Type: application/json" : NULL},
			       .body = body,
			       .body_len = body ? strlen(body) : 0,
			       .max_body = max};
	return ext_call(r, "Atlassian", &rq, true, json, res);
}

/* The site's cloud id from its tenant info; NULL when it has none (logged). */
static const char *atl_cloud_id(struct req *r, const struct atl *a)
{
	struct json_object *o = NULL;
	struct httpc_res res;
	enum httpc_status st =
		atl_call(r, a, "GET", "/_edge/tenant_info", NULL, &o, &res, 64 << 10);
	httpc_res_free(&res);
	const char *id = st == HTTPC_OK ? jx_get_str(o, "cloudId") : NULL;
	return id && strlen(id) <= 64 ? arena_strdup(r->a, id) : NULL;
}

/* --- POST /api/integrations/verify --------------------------------------------------------- */

const struct jx_field ext_verify_fields[] = {
	{"provider", JX_STR, JX_REQUIRED, 64, NULL},
	{"config", JX_OBJ, JX_NULLABLE, META_MAX_BYTES, NULL},
	{NULL, 0, 0, 0, NULL},
};

static int verify_answer(struct req *r, const char *provider, bool valid, const char *message,
			 const char *cloud_id)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "provider", json_object_new_string(provider));
	json_object_object_add(o, "valid", json_object_new_boolean(valid));
	json_object_object_add(o, "message", json_object_new_string(message));
	if (cloud_id)
		json_object_object_add(o, "cloud_id", json_object_new_string(cloud_id));
	return res_json(r, 200, o);
}

static const char *cfg_text(struct req *r, struct json_object *config, const char *key)
{
	const char *s = jx_get_str(config, key);
	return str_has_text(s) ? key_clean_secret(r->a, s) : NULL;
}

/* Always 200 {provider, valid, message} as the original, except for a request that cannot
 * be understood (400) and a database failure. The message names the kind of failure only. */
int h_ext_verify(struct req *r)
{
	const char *provider = jx_get_str(r->json, "provider");
	struct json_object *config = jx_get(r->json, "config");
	bool given = config && json_object_is_type(config, json_type_object) &&
		     json_object_object_length(config) > 0;
	struct httpc_res res;
	enum httpc_status st;
	char msg[200];
	if (strcmp(provider, "github") == 0) {
		const char *auth;
		if (given) {
			const char *pat = cfg_text(r, config, "pat");
			if (!pat)
				return req_fail(r, RC_BADREQ,
						"GitHub configuration requires a pat");
			auth = arena_printf(r->a, "Authorization: Bearer %s", pat);
		} else {
			int rc = github_token(r, &auth);
			if (rc == RC_BADREQ)
				return verify_answer(r, provider, false, github_missing, NULL);
			if (rc != RC_OK)
				return rc;
		}
		db_done(&r->c);
		struct json_object *user = NULL;
		st = github_get(r, auth, "/user", 256 << 10, &user, &res);
		httpc_res_free(&res);
		if (st == HTTPC_OK) {
			const char *login = jx_get_str(user, "login");
			snprintf(msg, sizeof(msg), "GitHub token is valid%s%.64s",
				 login ? " for " : "", login ? login : "");
			return verify_answer(r, provider, true, msg, NULL);
		}
		snprintf(msg, sizeof(msg), "GitHub verification failed: %s",
			 httpc_status_detail(st));
		return verify_answer(r, provider, false, msg, NULL);
	}
	if (strcmp(provider, "atlassian") == 0) {
		struct atl a = {0};
		if (given) {
			const char *url = jx_get_str(config, "url");
			const char *email = cfg_text(r, config, "email");
			const char *token = cfg_text(r, config, "api_token");
			if (!str_has_text(url) || !email || !token || strlen(url) > URL_MAX)
				return req_fail(r, RC_BADREQ,
						"Atlassian configuration requires url, "
						"email and api_token");
			if (!site_allowed(r, url))
				return verify_answer(
					r, provider, false,
					"This Atlassian site is not one this server may "
					"call (atlassian_allowed_hosts)",
					NULL);
			a.site = trim_slash(r, url);
			a.auth = basic_auth(r, email, token);
		} else {
			int rc = atl_load(r, &a);
			if (rc == RC_BADREQ)
				return verify_answer(r, provider, false, r->detail, NULL);
			if (rc != RC_OK)
				return rc;
		}
		db_done(&r->c);
		st = atl_call(r, &a, "GET", "/wiki/rest/api/space?limit=1", NULL, NULL, &res,
			      1 << 20);
		httpc_res_free(&res);
		if (st != HTTPC_OK) {
			snprintf(msg, sizeof(msg), "Atlassian verification failed: %s",
				 httpc_status_detail(st));
			return verify_answer(r, provider, false, msg, NULL);
		}
		const char *cloud = atl_cloud_id(r, &a);
		if (cloud && !given) {
			const char *p[] = {r->auth.user_id, cloud};
			if (!db_exec(&r->c,
				     "UPDATE user_api_keys SET metadata = metadata || "
				     "jsonb_build_object('cloud_id', $2::text) "
				     "WHERE user_id = $1 AND provider = 'atlassian'",
				     2, p))
				return r->rc;
		}
		return verify_answer(r, provider, true, "Atlassian credentials are valid", cloud);
	}
	return req_fail(r, RC_BADREQ,
			"Unknown integration provider. Must be one of: github, "
			"atlassian");
}

/* --- text ------------------------------------------------------------------------------------ */

/* Inserts a knowledge article (the caller's edit right checked again in the SQL). Answers
 * {document_id, message}. */
static int kb_insert(struct req *r, const char *product, const char *title, const char *content,
		     const char *source, struct json_object *meta, const char *message)
{
	json_object_object_add(meta, "user_id", json_object_new_string(r->auth.user_id));
	/* clang-format off */
	const char *p[] = {product, r->auth.tenant_id, r->auth.user_id, title, content, source,
			   jx_str(meta, NULL)};
	const char *id = db_value(&r->c, NULL,
				  "INSERT INTO knowledge_articles (product_id, tenant_id, title, "
				  "content, source, metadata) SELECT p.id, p.tenant_id, $4, $5, $6, "
				  "$7::jsonb FROM products p WHERE p.id = $1 AND p.tenant_id = $2 "
				  "AND " SQL_CAN_EDIT("p", "$3") " RETURNING id",
				  7, p);
	/* clang-format on */
	if (!id)
		return r->rc != RC_OK ? (int)r->rc
				      : req_fail(r, RC_FORBIDDEN, "Access denied to product");
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "document_id", json_object_new_string(id));
	json_object_object_add(o, "message", json_object_new_string(message));
	return res_json(r, 200, o);
}

/* --- POST /api/documents/upload-from-github ------------------------------------------------ */

const struct jx_field ext_github_fields[] = {
	{"github_url", JX_STR, JX_REQUIRED, URL_MAX, NULL},
	{"product_id", JX_STR, JX_NULLABLE, 64, NULL},
	{NULL, 0, 0, 0, NULL},
};

static bool gh_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > 100 || (n <= 2 && s[0] == '.'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

struct gh_file {
	const char *owner, *repo, *ref, *path; /* arena strings */
};

/* https://github.com/OWNER/REPO/blob/REF/PATH or https://raw.githubusercontent.com/OWNER/REPO/
 * REF/PATH; REF is one segment (a branch with '/' cannot be told from the path). */
static bool gh_parse(struct req *r, const char *url, struct gh_file *f)
{
	const char *rest;
	bool raw;
	if (strncmp(url, "https://github.com/", 19) == 0) {
		rest = url + 19;
		raw = false;
	} else if (strncmp(url, "https://raw.githubusercontent.com/", 34) == 0) {
		rest = url + 34;
		raw = true;
	} else {
		return false;
	}
	if (strpbrk(rest, "?# \t\r\n\\"))
		return false;
	const char *seg[4];
	size_t len[4];
	const char *p = rest;
	for (int i = 0; i < 4; i++) {
		if (!raw && i == 2) { /* "blob" */
			if (strncmp(p, "blob/", 5) != 0)
				return false;
			p += 5;
		}
		seg[i] = p;
		len[i] = strcspn(p, "/");
		if (len[i] == 0 || (i < 3 && p[len[i]] != '/'))
			return false;
		p += len[i] + (i < 3 ? 1 : 0);
		if (i == 3)
			break;
	}
	seg[3] = seg[3];
	const char *path = seg[3];
	if (!gh_name_ok(seg[0], len[0]) || !gh_name_ok(seg[1], len[1]) || len[2] > 200 || !*path ||
	    strstr(path, "..") || strstr(path, "//") || path[strlen(path) - 1] == '/')
		return false;
	for (size_t i = 0; i < len[2]; i++)
		if (!isalnum((unsigned char)seg[2][i]) && !strchr("-_.", seg[2][i]))
			return false;
	f->owner = arena_strndup(r->a, seg[0], len[0]);
	f->repo = arena_strndup(r->a, seg[1], len[1]);
	f->ref = arena_strndup(r->a, seg[2], len[2]);
	f->path = arena_strdup(r->a, path);
	return true;
}

/* The path with each segment percent-encoded, '/' kept. */
static const char *path_encode(struct req *r, const char *path)
{
	struct buf b;
	buf_init(&b, r->a);
	while (*path) {
		size_t n = strcspn(path, "/");
		buf_puts(&b, httpc_urlencode(r->a, arena_strndup(r->a, path, n)));
		path += n;
		if (*path == '/') {
			buf_putc(&b, '/');
			path++;
		}
	}
	return b.p ? b.p : "";
}

/* The product_id of an upload body: required, and the caller may edit the product (404 for
 * another tenant's). RC_OK with *product, or the error recorded. */
static int upload_target(struct req *r, const char **product)
{
	*product = jx_get_str(r->json, "product_id");
	if (!str_has_text(*product))
		return req_fail(r, RC_BADREQ, "product_id is required");
	return ext_product_access(r, *product, PL_EDIT);
}

int h_ext_upload_github(struct req *r)
{
	const char *product;
	int rc = upload_target(r, &product);
	if (rc != RC_OK)
		return rc;
	struct gh_file f;
	const char *url = jx_get_str(r->json, "github_url");
	if (!gh_parse(r, url, &f))
		return req_fail(r, RC_BADREQ,
				"github_url must name a file: https://github.com/OWNER/REPO/blob/"
				"REF/PATH");
	const char *auth;
	rc = github_token(r, &auth);
	if (rc != RC_OK)
		return rc;
	db_done(&r->c);
	int64_t cap = app_cfg(r)->ext_upload_max_bytes;
	struct json_object *o = NULL;
	struct httpc_res res;
	enum httpc_status st =
		github_get(r, auth,
			   arena_printf(r->a, "/repos/%s/%s/contents/%s?ref=%s", f.owner, f.repo,
					path_encode(r, f.path), httpc_urlencode(r->a, f.ref)),
			   (size_t)cap * 4 / 3 + (64 << 10), &o, &res);
	httpc_res_free(&res);
	if (st == HTTPC_E_TOOLARGE)
		return req_fail(r, RC_TOOLARGE, "The file is larger than %lld bytes",
				(long long)cap);
	if (st != HTTPC_OK)
		return ext_fail(r, "GitHub", st, &res);
	const char *type = jx_get_str(o, "type"), *enc = jx_get_str(o, "encoding");
	const char *b64 = jx_get_str(o, "content");
	if (!type || strcmp(type, "file") != 0)
		return req_fail(r, RC_BADREQ, "github_url does not name a file");
	if (jx_get_int(o, "size", 0) > cap)
		return req_fail(r, RC_TOOLARGE, "The file is larger than %lld bytes",
				(long long)cap);
	if (!enc || strcmp(enc, "base64") != 0 || !b64)
		return req_fail(r, RC_BADREQ, "GitHub did not return the file's content");
	size_t n = 0;
	unsigned char *data = httpc_b64_decode(r->a, b64, strlen(b64), &n);
	if (!data)
		return ext_fail(r, "GitHub", HTTPC_E_PROTOCOL, NULL);
	if ((int64_t)n > cap)
		return req_fail(r, RC_TOOLARGE, "The file is larger than %lld bytes",
				(long long)cap);
	if (n >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0) {
		data += 3;
		n -= 3;
	}
	if (!jx_utf8_text(data, n))
		return req_fail(r, RC_BADREQ, "The file is not UTF-8 text");
	if (!str_has_text((const char *)data))
		return req_fail(r, RC_BADREQ, "The file is empty");
	struct json_object *meta = jx_arena_own(r->a, json_object_new_object());
	json_object_object_add(meta, "github_url", json_object_new_string(url));
	json_object_object_add(
		meta, "repository",
		json_object_new_string(arena_printf(r->a, "%s/%s", f.owner, f.repo)));
	json_object_object_add(meta, "ref", json_object_new_string(f.ref));
	json_object_object_add(meta, "path", json_object_new_string(f.path));
	const char *sha = jx_get_str(o, "sha");
	if (sha && strlen(sha) <= 64)
		json_object_object_add(meta, "sha", json_object_new_string(sha));
	json_object_object_add(meta, "size", json_object_new_int64((int64_t)n));
	return kb_insert(r, product, f.path, (const char *)data, "github", meta,
			 "File imported from GitHub successfully");
}

/* --- Confluence storage format to text ------------------------------------------------------ */

static const char *const block_tags[] = {"p",          "br",    "li", "h1", "h2",  "h3",
					 "h4",         "h5",    "h6", "tr", "div", "pre",
					 "blockquote", "table", "ul", "ol", NULL};

/* Appends the UTF-8 encoding of code point cp. */
static void put_cp(struct buf *b, unsigned long cp)
{
	char u[4];
	size_t n;
	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | cp >> 18);
		u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	buf_append(b, u, n);
}

/* Confluence storage format (XHTML with ac:/ri: elements) to plain text: tags dropped, block
 * elements end a line, CDATA kept (code macros), the common entities decoded. */
static const char *storage_to_text(struct req *r, const char *s)
{
	struct buf b;
	buf_init(&b, r->a);
	static const struct {
		const char *name;
		const char *text;
	} ents[] = {{"amp", "&"},        {"lt", "<"},         {"gt", ">"},
		    {"quot", "\""},      {"apos", "'"},       {"nbsp", " "},
		    {"ndash", "\u2013"}, {"mdash", "\u2014"}, {"hellip", "\u2026"},
		    {"rsquo", "\u2019"}, {"lsquo", "\u2018"}, {"rdquo", "\u201d"},
		    {"ldquo", "\u201c"}};
	while (*s) {
		if (strncmp(s, "<![CDATA[", 9) == 0) {
			const char *end = strstr(s + 9, "]]>");
			size_t n = end ? (size_t)(end - s - 9) : strlen(s + 9);
			buf_append(&b, s + 9, n);
			s += 9 + n + (end ? 3 : 0);
		} else if (*s == '<') {
			const char *end = strchr(s, '>');
			if (!end)
				break;
			const char *name = s + 1 + (s[1] == '/');
			size_t n = strcspn(name, " \t\r\n/>");
			for (const char *const *t = block_tags; *t; t++)
				if (strlen(*t) == n && strncasecmp(name, *t, n) == 0) {
					if (b.len && b.p[b.len - 1] != '\n')
						buf_putc(&b, '\n');
					break;
				}
			s = end + 1;
		} else if (*s == '&') {
			size_t n = strcspn(s + 1, ";< \t\r\n");
			bool done = false;
			if (s[1 + n] == ';' && n > 1 && s[1] == '#') {
				unsigned long cp = s[2] == 'x' || s[2] == 'X'
							   ? strtoul(s + 3, NULL, 16)
							   : strtoul(s + 2, NULL, 10);
				put_cp(&b, cp);
				done = true;
			}
			for (size_t i = 0;
			     !done && s[1 + n] == ';' && i < sizeof(ents) / sizeof(ents[0]); i++)
				if (strlen(ents[i].name) == n &&
				    strncmp(s + 1, ents[i].name, n) == 0) {
					buf_puts(&b, ents[i].text);
					done = true;
				}
			if (done) {
				s += n + 2;
			} else {
				buf_putc(&b, '&');
				s++;
			}
		} else {
			size_t n = strcspn(s, "<&");
			buf_append(&b, s, n);
			s += n;
		}
	}
	return b.p ? b.p : "";
}

/* --- POST /api/documents/upload-from-confluence --------------------------------------------- */

const struct jx_field ext_confluence_fields[] = {
	{"confluence_url", JX_STR, JX_REQUIRED, URL_MAX, NULL},
	{"product_id", JX_STR, JX_NULLABLE, 64, NULL},
	{NULL, 0, 0, 0, NULL},
};

/* The page id of a URL containing /pages/<digits> (on the stored site), or a bare id. */
static const char *page_id(struct req *r, const struct atl *a, const char *s)
{
	size_t n = strspn(s, "0123456789");
	if (n && !s[n] && n <= 20)
		return s;
	bool https;
	const char *host = url_host(r, s, &https), *site = url_host(r, a->site, &https);
	if (!host || !site || strcmp(host, site) != 0)
		return NULL;
	const char *p = strstr(s, "/pages/");
	if (!p)
		return NULL;
	p += 7;
	n = strspn(p, "0123456789");
	if (!n || n > 20 || (p[n] && p[n] != '/' && p[n] != '?' && p[n] != '#'))
		return NULL;
	return arena_strndup(r->a, p, n);
}

int h_ext_upload_confluence(struct req *r)
{
	const char *product;
	int rc = upload_target(r, &product);
	if (rc != RC_OK)
		return rc;
	struct atl a;
	rc = atl_load(r, &a);
	if (rc != RC_OK)
		return rc;
	const char *url = jx_get_str(r->json, "confluence_url");
	const char *id = page_id(r, &a, url);
	if (!id)
		return req_fail(r, RC_BADREQ,
				"confluence_url must be a page URL of your Atlassian site "
				"(containing /pages/<id>) or a page id");
	db_done(&r->c);
	int64_t cap = app_cfg(r)->ext_upload_max_bytes;
	struct json_object *o = NULL;
	struct httpc_res res;
	enum httpc_status st = atl_call(
		r, &a, "GET",
		arena_printf(r->a, "/wiki/rest/api/content/%s?expand=body.storage,version,space",
			     id),
		NULL, &o, &res, (size_t)cap * 3 + (64 << 10));
	httpc_res_free(&res);
	if (st == HTTPC_E_TOOLARGE)
		return req_fail(r, RC_TOOLARGE, "The page is larger than %lld bytes",
				(long long)cap);
	if (st != HTTPC_OK)
		return ext_fail(r, "Confluence", st, &res);
	const char *title = jx_get_str(o, "title");
	const char *storage = jx_get_str(jx_get(jx_get(o, "body"), "storage"), "value");
	if (!title || !storage)
		return req_fail(r, RC_BADREQ, "Confluence did not return the page's content");
	const char *text = storage_to_text(r, storage);
	if ((int64_t)strlen(text) > cap)
		return req_fail(r, RC_TOOLARGE, "The page is larger than %lld bytes",
				(long long)cap);
	if (!jx_utf8_text((const unsigned char *)text, strlen(text)) ||
	    !jx_utf8_text((const unsigned char *)title, strlen(title)))
		return req_fail(r, RC_BADREQ, "The page is not UTF-8 text");
	if (!str_has_text(text))
		return req_fail(r, RC_BADREQ, "The page is empty");
	struct json_object *meta = jx_arena_own(r->a, json_object_new_object());
	json_object_object_add(meta, "confluence_page_id", json_object_new_string(id));
	json_object_object_add(meta, "site", json_object_new_string(a.site));
	const char *space = jx_get_str(jx_get(o, "space"), "key");
	if (space && strlen(space) <= 255)
		json_object_object_add(meta, "space_key", json_object_new_string(space));
	int64_t ver = jx_get_int(jx_get(o, "version"), "number", -1);
	if (ver >= 0)
		json_object_object_add(meta, "version", json_object_new_int64(ver));
	return kb_insert(r, product, arena_strndup(r->a, title, 500), text, "confluence", meta,
			 "Page imported from Confluence successfully");
}

/* --- POST /api/products/{id}/publish-to-confluence ------------------------------------------ */

const struct jx_field ext_publish_fields[] = {
	{"space_id", JX_STR, JX_REQUIRED, 255, NULL},
	{"title", JX_STR, JX_REQUIRED, 200, NULL},
	{"prd_content", JX_STR, JX_REQUIRED, PRD_MAX_BYTES, NULL},
	{"parent_page_id", JX_STR, JX_NULLABLE, 32, NULL},
	{NULL, 0, 0, 0, NULL},
};

static void html_text(struct buf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (s[i]) {
		case '&': buf_puts(b, "&amp;"); break;
		case '<': buf_puts(b, "&lt;"); break;
		case '>': buf_puts(b, "&gt;"); break;
		case '"': buf_puts(b, "&quot;"); break;
		default:
			if ((unsigned char)s[i] >= 0x20 || s[i] == '\t')
				buf_putc(b, s[i]);
		}
	}
}

/* Markdown to Confluence storage format, for what a PRD uses: headings, bullet and numbered
 * lists, fenced code, paragraphs. Everything is escaped: no markup of the input survives. */
static const char *md_to_storage(struct req *r, const char *md)
{
	struct buf b;
	buf_init(&b, r->a);
	enum { NONE, UL, OL, PARA, CODE } open = NONE;
	static const char *const closer[] = {"", "</ul>", "</ol>", "</p>", "</pre>"};
	while (*md) {
		size_t n = strcspn(md, "\n");
		const char *l = md;
		md += n + (md[n] == '\n');
		if (n && l[n - 1] == '\r')
			n--;
		if (open == CODE) {
			if (n >= 3 && strncmp(l, "```", 3) == 0) {
				buf_puts(&b, closer[CODE]);
				open = NONE;
			} else {
				html_text(&b, l, n);
				buf_putc(&b, '\n');
			}
			continue;
		}
		size_t ind = 0;
		while (ind < n && l[ind] == ' ')
			ind++;
		const char *t = l + ind;
		size_t tn = n - ind;
		int h = 0;
		while (h < (int)tn && h < 6 && t[h] == '#')
			h++;
		bool heading = h > 0 && h < (int)tn && t[h] == ' ';
		bool bullet = tn >= 2 && (t[0] == '-' || t[0] == '*' || t[0] == '+') && t[1] == ' ';
		size_t dig = strspn(t, "0123456789");
		bool num = dig > 0 && dig + 1 < tn && t[dig] == '.' && t[dig + 1] == ' ';
		int want = tn == 0 ? NONE : bullet ? UL : num ? OL : heading ? NONE : PARA;
		bool fence = tn >= 3 && strncmp(t, "```", 3) == 0;
		if (open != NONE && ((int)open != want || heading || fence)) {
			buf_puts(&b, closer[open]);
			open = NONE;
		}
		if (fence) {
			buf_puts(&b, "<pre>");
			open = CODE;
		} else if (heading) {
			buf_printf(&b, "<h%d>", h);
			html_text(&b, t + h + 1, tn - (size_t)h - 1);
			buf_printf(&b, "</h%d>", h);
		} else if (bullet || num) {
			if (open == NONE) {
				buf_puts(&b, bullet ? "<ul>" : "<ol>");
				open = bullet ? UL : OL;
			}
			size_t skip = bullet ? 2 : dig + 2;
			buf_puts(&b, "<li>");
			html_text(&b, t + skip, tn - skip);
			buf_puts(&b, "</li>");
		} else if (tn) {
			if (open == NONE) {
				buf_puts(&b, "<p>");
				open = PARA;
			} else {
				buf_puts(&b, "<br/>");
			}
			html_text(&b, t, tn);
		}
	}
	if (open != NONE)
		buf_puts(&b, closer[open]);
	return b.p ? b.p : "";
}

/* A space id (digits) as is; a space key looked up (GET /wiki/api/v2/spaces?keys=). NULL with
 * r's error. */
static const char *space_id(struct req *r, const struct atl *a, const char *s)
{
	size_t n = strspn(s, "0123456789");
	if (n && !s[n] && n <= 20)
		return s;
	for (const char *c = s; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '_' && *c != '~' && *c != '-') {
			req_fail(r, RC_BADREQ, "space_id must be a space id or a space key");
			return NULL;
		}
	struct json_object *o = NULL;
	struct httpc_res res;
	enum httpc_status st = atl_call(
		r, a, "GET",
		arena_printf(r->a, "/wiki/api/v2/spaces?keys=%s&limit=1", httpc_urlencode(r->a, s)),
		NULL, &o, &res, 256 << 10);
	httpc_res_free(&res);
	if (st != HTTPC_OK) {
		ext_fail(r, "Confluence", st, &res);
		return NULL;
	}
	struct json_object *results = jx_get(o, "results");
	struct json_object *first = results && json_object_is_type(results, json_type_array) &&
						    json_object_array_length(results) > 0
					    ? json_object_array_get_idx(results, 0)
					    : NULL;
	struct json_object *id = jx_get(first, "id");
	if (!id) {
		req_fail(r, RC_NOTFOUND, "Confluence has no space with this key");
		return NULL;
	}
	return arena_strdup(r->a, json_object_get_string(id));
}

int h_ext_publish_confluence(struct req *r)
{
	const char *product = req_path_uuid(r, "id");
	if (!product)
		return r->rc;
	int rc = ext_product_access(r, product, PL_VIEW);
	if (rc != RC_OK)
		return rc;
	const char *title = jx_get_str(r->json, "title");
	const char *content = jx_get_str(r->json, "prd_content");
	const char *parent = jx_get_str(r->json, "parent_page_id");
	if (!str_has_text(title))
		return req_fail_blank(r, "title");
	if (!str_has_text(content))
		return req_fail_blank(r, "prd_content");
	if (parent && (!*parent || parent[strspn(parent, "0123456789")]))
		return req_fail(r, RC_BADREQ, "parent_page_id must be a page id (digits)");
	struct atl a;
	rc = atl_load(r, &a);
	if (rc != RC_OK)
		return rc;
	db_done(&r->c);
	const char *space = space_id(r, &a, jx_get_str(r->json, "space_id"));
	if (!space)
		return r->rc;
	char stamp[32];
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	const char *full = arena_printf(r->a, "%s - %s", title, stamp);
	struct json_object *req = jx_arena_own(r->a, json_object_new_object());
	json_object_object_add(req, "spaceId", json_object_new_string(space));
	json_object_object_add(req, "status", json_object_new_string("current"));
	json_object_object_add(req, "title", json_object_new_string(full));
	if (parent)
		json_object_object_add(req, "parentId", json_object_new_string(parent));
	struct json_object *body = json_object_new_object();
	json_object_object_add(body, "representation", json_object_new_string("storage"));
	json_object_object_add(body, "value", json_object_new_string(md_to_storage(r, content)));
	json_object_object_add(req, "body", body);
	struct json_object *o = NULL;
	struct httpc_res res;
	enum httpc_status st =
		atl_call(r, &a, "POST", "/wiki/api/v2/pages", jx_str(req, NULL), &o, &res, 1 << 20);
	httpc_res_free(&res);
	if (st != HTTPC_OK)
		return ext_fail(r, "Confluence", st, &res);
	struct json_object *idv = jx_get(o, "id");
	const char *webui = jx_get_str(jx_get(o, "_links"), "webui");
	if (!idv)
		return ext_fail(r, "Confluence", HTTPC_E_PROTOCOL, NULL);
	const char *pid = json_object_get_string(idv);
	const char *page_url =
		webui && webui[0] == '/'
			? arena_printf(r->a, "%s/wiki%s", a.site, webui)
			: arena_printf(r->a, "%s/wiki/pages/viewpage.action?pageId=%s", a.site,
				       httpc_urlencode(r->a, pid));
	log_msg(LL_INFO, r->rid, "confluence page %s published for product %s", pid, product);
	struct json_object *out = json_object_new_object();
	json_object_object_add(out, "success", json_object_new_boolean(true));
	json_object_object_add(out, "page_id", json_object_new_string(pid));
	json_object_object_add(out, "page_url", json_object_new_string(page_url));
	json_object_object_add(out, "title", json_object_new_string(full));
	json_object_object_add(out, "space_id", json_object_new_string(space));
	if (a.cloud_id)
		json_object_object_add(out, "cloud_id", json_object_new_string(a.cloud_id));
	return res_json(r, 200, out);
}

/* --- POST /api/workflows/{workflow_type} ---------------------------------------------------- */

const struct jx_field ext_workflow_fields[] = {
	{"product_id", JX_UUID, JX_REQUIRED, 0, NULL},
	{"project_key", JX_STR, JX_REQUIRED, 32, NULL},
	{"issue_type", JX_STR, JX_NULLABLE, 64, NULL},
	{NULL, 0, 0, 0, NULL},
};

/* One line of a requirements text as an issue summary: list markers dropped, trimmed, cut at
 * SUMMARY_MAX bytes on a character boundary. NULL when nothing is left. */
static const char *summary_of(struct req *r, const char *l, size_t n)
{
	while (n && isspace((unsigned char)*l)) {
		l++;
		n--;
	}
	if (n >= 2 && (l[0] == '-' || l[0] == '*' || l[0] == '+') && l[1] == ' ') {
		l += 2;
		n -= 2;
	} else {
		size_t d = 0;
		while (d < n && isdigit((unsigned char)l[d]))
			d++;
		if (d && d + 1 < n && (l[d] == '.' || l[d] == ')') && l[d + 1] == ' ') {
			l += d + 2;
			n -= d + 2;
		}
	}
	while (n && isspace((unsigned char)l[n - 1]))
		n--;
	while (n && isspace((unsigned char)*l)) {
		l++;
		n--;
	}
	if (!n)
		return NULL;
	n = jx_utf8_cut(l, n, SUMMARY_MAX);
	char *s = arena_strndup(r->a, l, n);
	for (char *c = s; *c; c++)
		if ((unsigned char)*c < 0x20)
			*c = ' ';
	return s;
}

int h_ext_workflow(struct req *r)
{
	const char *type = req_param(r, "workflow_type");
	bool idea = type && strcmp(type, "idea_to_jira") == 0;
	if (!idea && !(type && strcmp(type, "prd_to_jira") == 0))
		return req_fail(r, RC_NOTFOUND,
				"Unknown workflow. Must be one of: idea_to_jira, prd_to_jira");
	const char *product = jx_get_str(r->json, "product_id");
	int rc = ext_product_access(r, product, PL_VIEW);
	if (rc != RC_OK)
		return rc;
	const char *key = jx_get_str(r->json, "project_key");
	const char *itype = jx_get_str(r->json, "issue_type");
	if (!key[0] || key[strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")])
		return req_fail(r, RC_BADREQ,
				"project_key must be a Jira project key (A-Z, 0-9, _)");
	if (!str_has_text(itype))
		itype = idea ? "Epic" : "Story";
	const char *p[] = {product, r->auth.tenant_id};
	PGresult *pr = db_exec(
		&r->c,
		"SELECT p.name, coalesce(p.description, '') AS description, "
		"coalesce((SELECT s.form_data::text FROM phase_submissions s "
		"JOIN product_lifecycle_phases ph ON ph.id = s.phase_id "
		"WHERE s.product_id = p.id AND s.tenant_id = p.tenant_id AND ph.phase_name = "
		"'Ideation'), '{}') AS ideation, "
		"coalesce((SELECT s.form_data->>'functional_requirements' FROM phase_submissions s "
		"JOIN product_lifecycle_phases ph ON ph.id = s.phase_id "
		"WHERE s.product_id = p.id AND s.tenant_id = p.tenant_id AND ph.phase_name = "
		"'Requirements'), '') AS requirements "
		"FROM products p WHERE p.id = $1 AND p.tenant_id = $2",
		2, p);
	if (!pr)
		return r->rc;
	if (PQntuples(pr) != 1)
		return req_fail(r, RC_NOTFOUND, "Product not found");
	struct atl a;
	rc = atl_load(r, &a);
	if (rc != RC_OK)
		return rc;
	db_done(&r->c);

	/* the issues to create: (summary, description) pairs */
	const char *sums[JIRA_ISSUES_MAX], *descs[JIRA_ISSUES_MAX];
	int n = 0;
	if (idea) {
		struct buf d;
		buf_init(&d, r->a);
		buf_puts(&d, db_get(pr, 0, "description"));
		struct json_object *form =
			jx_arena_own(r->a, jx_parse(db_get(pr, 0, "ideation"),
						    strlen(db_get(pr, 0, "ideation")), 16));
		static const char *const fields[] = {"problem_statement", "target_audience",
						     "value_proposition", NULL};
		for (const char *const *f = fields; *f; f++) {
			const char *v = jx_get_str(form, *f);
			if (str_has_text(v))
				buf_printf(&d, "\n\n%s:\n%s", *f, v);
		}
		const char *name = db_get(pr, 0, "name");
		sums[n] = summary_of(r, name, strlen(name));
		descs[n++] = d.p ? d.p : "";
	} else {
		const char *req = db_get(pr, 0, "requirements");
		while (*req && n < JIRA_ISSUES_MAX) {
			size_t len = strcspn(req, "\n");
			const char *s = summary_of(r, req, len);
			if (s) {
				sums[n] = s;
				descs[n++] = arena_printf(r->a,
							  "Requirement of %s (exported from "
							  "IdeaForge)",
							  db_get(pr, 0, "name"));
			}
			req += len + (req[len] == '\n');
		}
		if (n == 0)
			return req_fail(r, RC_BADREQ,
					"The product has no requirements to export (Requirements "
					"phase, functional_requirements)");
	}
	struct json_object *issues = jx_arena_own(r->a, json_object_new_array());
	enum httpc_status last = HTTPC_OK;
	struct httpc_res res = {0};
	for (int i = 0; i < n; i++) {
		if (!sums[i])
			continue;
		struct json_object *fields = json_object_new_object();
		struct json_object *proj = json_object_new_object(), *it = json_object_new_object();
		json_object_object_add(proj, "key", json_object_new_string(key));
		json_object_object_add(it, "name", json_object_new_string(itype));
		json_object_object_add(fields, "project", proj);
		json_object_object_add(fields, "summary", json_object_new_string(sums[i]));
		json_object_object_add(fields, "description", json_object_new_string(descs[i]));
		json_object_object_add(fields, "issuetype", it);
		struct json_object *req = jx_arena_own(r->a, json_object_new_object());
		json_object_object_add(req, "fields", fields);
		struct json_object *o = NULL;
		last = atl_call(r, &a, "POST", "/rest/api/2/issue", jx_str(req, NULL), &o, &res,
				64 << 10);
		httpc_res_free(&res);
		if (last != HTTPC_OK)
			break;
		const char *ikey = jx_get_str(o, "key");
		struct json_object *iid = jx_get(o, "id");
		if (!ikey || strlen(ikey) > 64) {
			last = HTTPC_E_PROTOCOL;
			break;
		}
		struct json_object *e = json_object_new_object();
		json_object_object_add(e, "key", json_object_new_string(ikey));
		json_object_object_add(
			e, "id", iid ? json_object_new_string(json_object_get_string(iid)) : NULL);
		json_object_object_add(e, "summary", json_object_new_string(sums[i]));
		json_object_object_add(
			e, "url",
			json_object_new_string(arena_printf(r->a, "%s/browse/%s", a.site, ikey)));
		json_object_array_add(issues, e);
	}
	size_t made = json_object_array_length(issues);
	if (last != HTTPC_OK && made == 0)
		return ext_fail(r, "Jira", last, &res);
	log_msg(LL_INFO, r->rid, "workflow %s product %s: %zu Jira issues created", type, product,
		made);
	struct json_object *out = json_object_new_object();
	json_object_object_add(out, "workflow_type", json_object_new_string(type));
	json_object_object_add(out, "product_id", json_object_new_string(product));
	json_object_object_add(out, "issues", json_object_get(issues));
	json_object_object_add(out, "created", json_object_new_int64((int64_t)made));
	json_object_object_add(out, "complete", json_object_new_boolean(last == HTTPC_OK));
	json_object_object_add(
		out, "message",
		json_object_new_string(
			last == HTTPC_OK ? "Jira issues created successfully"
					 : arena_printf(r->a, "Jira stopped after %zu issues: %s",
							made, httpc_status_detail(last))));
	return res_json(r, 200, out);
}
