/* h_products.c - products, portfolio and sharing (API.md 1.4), plus the helpers the other
 * product-domain handlers share (access level, query and path parameter checks).
 *
 * Every statement carries the tenant and owner-or-share predicates of API.md 2.4, so a refused
 * request touches no row; only then does a second, read-only query (prod_level) choose the
 * status. Refusals never tell another tenant's product from a missing one: both are PL_NONE.
 * Lists are built as JSON by PostgreSQL in one round trip.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pcache.h"
#include "products.h"

/* Product statuses (API.md 1.4); the database CHECK says the same. */
static const char *const product_statuses[] = {"ideation", "build",  "operate", "learn",
					       "govern",   "sunset", NULL};

bool products_status_ok(const char *status)
{
	return jx_one_of(status, product_statuses);
}

int products_status_fail(struct req *r)
{
	return req_fail(r, RC_BADREQ,
			"Invalid status. Must be one of: ideation, build, operate, learn, govern, "
			"sunset");
}
static const char *const share_permissions[] = {"view", "edit", "admin", NULL};

#define NAME_MAX_BYTES 200
#define DESCRIPTION_MAX_BYTES 10000
#define PRODUCTS_LIMIT_DEFAULT 500
#define PRODUCTS_LIMIT_MAX 500

/* Status and permission are plain strings here so that an unknown value is the original's
 * 400 "Invalid status" rather than a 422. */
const struct jx_field product_create_fields[] = {
	{"name", JX_STR, JX_REQUIRED, NAME_MAX_BYTES, NULL},
	{"description", JX_STR, JX_NULLABLE, DESCRIPTION_MAX_BYTES, NULL},
	{NULL, 0, 0, 0, NULL},
};

const struct jx_field product_update_fields[] = {
	{"name", JX_STR, JX_NULLABLE, NAME_MAX_BYTES, NULL},
	{"description", JX_STR, JX_NULLABLE, DESCRIPTION_MAX_BYTES, NULL},
	{"status", JX_STR, JX_NULLABLE, 32, NULL},
	{NULL, 0, 0, 0, NULL},
};

const struct jx_field product_share_fields[] = {
	{"shared_with_user_id", JX_UUID, JX_REQUIRED, 0, NULL},
	{"permission", JX_STR, JX_NULLABLE, 32, NULL},
	{NULL, 0, 0, 0, NULL},
};

/* ---------------------------------------------------------------- shared helpers */


bool str_has_text(const char *s)
{
	for (; s && *s; s++)
		if (!isspace((unsigned char)*s))
			return true;
	return false;
}

int req_fail_blank(struct req *r, const char *name)
{
	return req_fail_field(r, "body", name, "string_too_short",
			      "String should have at least 1 character");
}

int prod_refused(struct req *r, const char *product_id)
{
	if (r->rc != RC_OK)
		return r->rc;
	int lvl = prod_level(r, product_id);
	if (lvl < 0)
		return r->rc;
	if (lvl == PL_NONE)
		return req_fail(r, RC_NOTFOUND, "Product not found or access denied");
	return req_fail(r, RC_FORBIDDEN, "Access denied to product");
}

int prod_json_or_refuse(struct req *r, const char *json, const char *product_id)
{
	return json ? res_json_str(r, json) : prod_refused(r, product_id);
}

int prod_level(struct req *r, const char *product_id)
{
	const char *p[] = {product_id, r->auth.tenant_id, r->auth.user_id};
	bool found;
	const char *v = db_value(&r->c, &found,
				 "SELECT CASE WHEN p.user_id = $3 THEN 5 "
				 "WHEN s.permission = 'admin' THEN 4 "
				 "WHEN s.permission = 'edit' THEN 3 "
				 "WHEN s.permission = 'view' THEN 2 ELSE 1 END "
				 "FROM products p LEFT JOIN product_shares s "
				 "ON s.product_id = p.id AND s.shared_with_user_id = $3 "
				 "WHERE p.id = $1 AND p.tenant_id = $2",
				 3, p);
	if (!v)
		return r->rc != RC_OK ? -1 : PL_NONE;
	return atoi(v);
}

const char *req_path_uuid(struct req *r, const char *name)
{
	const char *v = req_param(r, name);
	if (!jx_is_uuid(v)) {
		req_fail_field(r, "path", name, "uuid_parsing", "Input should be a valid UUID");
		return NULL;
	}
	return v;
}

int req_query_uuid(struct req *r, const char *name, const char **out)
{
	const char *v = req_query(r, name);
	*out = NULL;
	if (!v || !*v)
		return RC_OK;
	if (!jx_is_uuid(v))
		return req_fail_field(r, "query", name, "uuid_parsing",
				      "Input should be a valid UUID");
	*out = v;
	return RC_OK;
}

int req_query_int(struct req *r, const char *name, int def, int min, int max, int *out)
{
	const char *v = req_query(r, name);
	*out = def;
	if (!v)
		return RC_OK;
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (!*v || *end || errno == ERANGE || isspace((unsigned char)*v))
		return req_fail_field(r, "query", name, "int_parsing",
				      "Input should be a valid integer, unable to parse string as "
				      "an integer");
	if (n < min) {
		char msg[64];
		snprintf(msg, sizeof(msg), "Input should be greater than or equal to %d", min);
		return req_fail_field(r, "query", name, "greater_than_equal", msg);
	}
	*out = n > max ? max : (int)n;
	return RC_OK;
}

/* After a guarded statement touched nothing: 404 when the product is not the caller's tenant's
 * (or does not exist), else 403 with msg. */
static int refuse(struct req *r, const char *product_id, int none_rc, const char *none_msg,
		  const char *msg)
{
	int lvl = prod_level(r, product_id);
	if (lvl < 0)
		return r->rc;
	if (lvl == PL_NONE)
		return req_fail(r, none_rc, "%s", none_msg);
	return req_fail(r, RC_FORBIDDEN, "%s", msg);
}

/* ---------------------------------------------------------------- handlers */

/* The caller's products and those shared with them, newest first; access_level is "owner" or
 * the share's permission. One statement: the owner branch and the share branch each use their
 * index (products_tenant_user_idx, product_shares_shared_with_idx). */
int h_products_list(struct req *r)
{
	int limit;
	if (req_query_int(r, "limit", PRODUCTS_LIMIT_DEFAULT, 1, PRODUCTS_LIMIT_MAX, &limit))
		return r->rc;
	char lim[16];
	snprintf(lim, sizeof(lim), "%d", limit);
	char sub[24];
	snprintf(sub, sizeof(sub), "l:%d", limit);
	if (pcache_get(r, sub))
		return RC_OK;
	const char *p[] = {r->auth.tenant_id, r->auth.user_id, lim};
	const char *json = db_value(
		&r->c, NULL,
		"SELECT json_build_object('products', coalesce(json_agg(json_build_object("
		"'id', x.id, 'name', x.name, 'description', x.description, 'status', x.status, "
		"'user_id', x.user_id, 'owner_email', u.email, 'owner_name', u.full_name, "
		"'created_at', x.created_at, 'updated_at', x.updated_at, "
		"'access_level', x.access_level) ORDER BY x.updated_at DESC, x.id), '[]'::json)) "
		"FROM ((SELECT p.id, p.name, p.description, p.status, p.user_id, p.created_at, "
		"p.updated_at, 'owner'::text AS access_level FROM products p "
		"WHERE p.tenant_id = $1 AND p.user_id = $2) "
		"UNION ALL (SELECT p.id, p.name, p.description, p.status, p.user_id, p.created_at, "
		"p.updated_at, s.permission FROM product_shares s "
		"JOIN products p ON p.id = s.product_id AND p.tenant_id = s.tenant_id "
		"WHERE s.shared_with_user_id = $2 AND s.tenant_id = $1 AND p.user_id <> $2) "
		"ORDER BY updated_at DESC, id LIMIT $3) x "
		/* the owners by index, one per listed product (OFFSET 0 keeps the planner from
		 * hashing the whole user table, which grows with the tenant) */
		"JOIN LATERAL (SELECT u.email, u.full_name FROM user_profiles u "
		"WHERE u.id = x.user_id OFFSET 0) u ON true",
		3, p);
	if (!json)
		return r->rc;
	return pcache_respond(r, sub, json);
}

/* Every product of the tenant (API.md 1.4: the portfolio has no owner/share filter), with its
 * share count and whether it is shared with the caller. */
int h_products_portfolio(struct req *r)
{
	int limit;
	if (req_query_int(r, "limit", PRODUCTS_LIMIT_DEFAULT, 1, PRODUCTS_LIMIT_MAX, &limit))
		return r->rc;
	char lim[16];
	snprintf(lim, sizeof(lim), "%d", limit);
	const char *p[] = {r->auth.tenant_id, r->auth.user_id, lim};
	const char *json = db_value(
		&r->c, NULL,
		"SELECT json_build_object('portfolio', coalesce(json_agg(json_build_object("
		"'id', x.id, 'name', x.name, 'description', x.description, 'status', x.status, "
		"'user_id', x.user_id, 'owner_email', u.email, 'owner_name', u.full_name, "
		"'created_at', x.created_at, 'updated_at', x.updated_at, "
		"'share_count', (SELECT count(*) FROM product_shares s WHERE s.product_id = x.id), "
		"'shared_with_me', EXISTS (SELECT 1 FROM product_shares s WHERE s.product_id = "
		"x.id "
		"AND s.shared_with_user_id = $2)) ORDER BY x.updated_at DESC, x.id), '[]'::json), "
		"'tenant_id', $1::uuid) "
		"FROM (SELECT * FROM products WHERE tenant_id = $1 ORDER BY updated_at DESC, id "
		"LIMIT $3) x JOIN user_profiles u ON u.id = x.user_id",
		3, p);
	if (!json)
		return r->rc;
	return res_json_str(r, json);
}

static int products_create(struct req *r)
{
	const char *name = jx_get_str(r->json, "name");
	if (!str_has_text(name))
		return req_fail_blank(r, "name");
	const char *p[] = {r->auth.user_id, r->auth.tenant_id, name,
			   jx_get_str(r->json, "description")};
	const char *json = db_value(
		&r->c, NULL,
		"INSERT INTO products (user_id, tenant_id, name, description) "
		"VALUES ($1, $2, $3, $4) RETURNING json_build_object('id', id, 'name', name, "
		"'description', description, 'status', status, 'user_id', user_id, "
		"'created_at', created_at, 'updated_at', updated_at)",
		4, p);
	if (!json)
		return r->rc;
	return res_json_str(r, json);
}

int h_products_get(struct req *r)
{
	const char *id = req_path_uuid(r, "id");
	if (!id)
		return r->rc;
	char sub[48];
	snprintf(sub, sizeof(sub), "g:%s", id);
	if (pcache_get(r, sub))
		return RC_OK;
	const char *p[] = {id, r->auth.tenant_id, r->auth.user_id};
	bool found;
	const char *json = db_value(
		&r->c, &found,
		"SELECT json_build_object('id', p.id, 'name', p.name, 'description', "
		"p.description, "
		"'status', p.status, 'user_id', p.user_id, 'tenant_id', p.tenant_id, "
		"'owner_email', u.email, 'owner_name', u.full_name, 'created_at', p.created_at, "
		"'updated_at', p.updated_at, 'metadata', p.metadata) "
		"FROM products p JOIN user_profiles u ON u.id = p.user_id "
		"WHERE p.id = $1 AND p.tenant_id = $2 AND " SQL_CAN_VIEW("p", "$3"),
		3, p);
	if (!json) {
		if (r->rc != RC_OK)
			return r->rc;
		return req_fail(r, RC_NOTFOUND, "Product not found or access denied");
	}
	return pcache_respond(r, sub, json);
}

/* Owner or edit/admin share. Null members count as absent (as the original's exclude-None). */
int h_products_update(struct req *r)
{
	const char *id = req_path_uuid(r, "id");
	if (!id)
		return r->rc;
	const char *name = jx_get_str(r->json, "name");
	const char *desc = jx_get_str(r->json, "description");
	const char *status = jx_get_str(r->json, "status");
	if (!name && !desc && !status)
		return req_fail(r, RC_BADREQ, "No fields to update");
	if (name && !str_has_text(name))
		return req_fail_blank(r, "name");
	if (status && !products_status_ok(status))
		return products_status_fail(r);
	const char *p[] = {id, r->auth.tenant_id, r->auth.user_id, name, desc, status};
	bool found;
	/* clang-format off */
	const char *json = db_value(
		&r->c, &found,
		"UPDATE products p SET name = coalesce($4, p.name), "
		"description = coalesce($5, p.description), status = coalesce($6, p.status) "
		"WHERE p.id = $1 AND p.tenant_id = $2 AND " SQL_CAN_EDIT("p", "$3") " "
		"RETURNING json_build_object('id', p.id, 'name', p.name, "
		"'description', p.description, 'status', p.status, 'user_id', p.user_id, "
		"'updated_at', p.updated_at)",
		6, p);
	/* clang-format on */
	if (!json) {
		if (r->rc != RC_OK)
			return r->rc;
		/* API.md 1.4: 403 whether the product is another tenant's, unshared or view-only */
		return req_fail(r, RC_FORBIDDEN, "Not authorized to update this product");
	}
	return res_json_str(r, json);
}

/* Owner only; everything about the product goes with it (foreign keys ON DELETE CASCADE). */
int h_products_delete(struct req *r)
{
	const char *id = req_path_uuid(r, "id");
	if (!id)
		return r->rc;
	const char *p[] = {id, r->auth.tenant_id, r->auth.user_id};
	bool found;
	db_value(&r->c, &found,
		 "DELETE FROM products p WHERE p.id = $1 AND p.tenant_id = $2 AND p.user_id = $3 "
		 "RETURNING p.id",
		 3, p);
	if (r->rc != RC_OK)
		return r->rc;
	if (!found)
		return refuse(r, id, RC_NOTFOUND, "Product not found",
			      "Only the product owner can delete this product");
	static const char ok[] = "{\"message\":\"Product deleted successfully\"}";
	return res_json_text(r, 200, ok, sizeof(ok) - 1);
}

/* Owner only; the target is an active user of the same tenant, not the owner; sharing again
 * updates the permission (upsert on product + user). */
static int products_share(struct req *r)
{
	const char *id = req_path_uuid(r, "id");
	if (!id)
		return r->rc;
	const char *target = jx_get_str(r->json, "shared_with_user_id");
	const char *perm = jx_get_str(r->json, "permission");
	if (!perm)
		perm = "view";
	if (!jx_one_of(perm, share_permissions))
		return req_fail(r, RC_BADREQ,
				"Invalid permission. Must be one of: view, edit, admin");
	const char *p[] = {id, r->auth.tenant_id, r->auth.user_id, perm, target};
	bool found;
	const char *json = NULL;
	/* sharing with oneself is refused below, after the owner check: only the owner learns
	 * that this is the reason */
	if (strcasecmp(target, r->auth.user_id) != 0)
		json = db_value(
			&r->c, &found,
			"INSERT INTO product_shares (product_id, tenant_id, shared_with_user_id, "
			"shared_by_user_id, permission) "
			"SELECT p.id, p.tenant_id, u.id, $3, $4 FROM products p "
			"JOIN user_profiles u ON u.id = $5 AND u.tenant_id = p.tenant_id AND "
			"u.is_active "
			"WHERE p.id = $1 AND p.tenant_id = $2 AND p.user_id = $3 "
			"ON CONFLICT (product_id, shared_with_user_id) DO UPDATE "
			"SET permission = EXCLUDED.permission, "
			"shared_by_user_id = EXCLUDED.shared_by_user_id "
			"RETURNING json_build_object('id', id, 'permission', permission, "
			"'created_at', created_at)",
			5, p);
	if (json)
		return res_json_str(r, json);
	if (r->rc != RC_OK)
		return r->rc;
	int lvl = prod_level(r, id);
	if (lvl < 0)
		return r->rc;
	if (lvl == PL_NONE)
		return req_fail(r, RC_NOTFOUND, "Product not found");
	if (lvl != PL_OWNER)
		return req_fail(r, RC_FORBIDDEN, "Only the product owner can share this product");
	if (strcasecmp(target, r->auth.user_id) == 0)
		return req_fail(r, RC_BADREQ, "Cannot share a product with yourself");
	/* the user is missing, in another tenant (the same answer, on purpose) or inactive */
	const char *q[] = {target, r->auth.tenant_id};
	const char *active = db_value(
		&r->c, &found,
		"SELECT is_active FROM user_profiles WHERE id = $1 AND tenant_id = $2", 2, q);
	if (!active && r->rc != RC_OK)
		return r->rc;
	if (!found)
		return req_fail(r, RC_NOTFOUND, "User not found");
	if (strcmp(active, "t") == 0) /* the product or the user changed in between */
		return req_fail(r, RC_CONFLICT, "Concurrent change, please retry");
	return req_fail(r, RC_BADREQ, "Cannot share with an inactive user");
}


int h_products_shares(struct req *r)
{
	const char *id = req_path_uuid(r, "id");
	if (!id)
		return r->rc;
	const char *p[] = {id, r->auth.tenant_id, r->auth.user_id};
	bool found;
	const char *json = db_value(
		&r->c, &found,
		"SELECT json_build_object('shares', coalesce((SELECT json_agg(json_build_object("
		"'id', s.id, 'shared_with_user_id', s.shared_with_user_id, "
		"'permission', s.permission, 'created_at', s.created_at, 'user_email', u.email, "
		"'user_name', u.full_name) ORDER BY s.created_at, s.id) FROM (SELECT * FROM "
		"product_shares s WHERE s.product_id = p.id ORDER BY s.created_at, s.id "
		"LIMIT 1000) s JOIN user_profiles u ON u.id = s.shared_with_user_id), "
		"'[]'::json)) FROM products p "
		"WHERE p.id = $1 AND p.tenant_id = $2 AND p.user_id = $3",
		3, p);
	if (json)
		return res_json_str(r, json);
	if (r->rc != RC_OK)
		return r->rc;
	return refuse(r, id, RC_NOTFOUND, "Product not found",
		      "Only the product owner can view its shares");
}

int h_products_unshare(struct req *r)
{
	const char *id = req_path_uuid(r, "id");
	if (!id)
		return r->rc;
	const char *sid = req_path_uuid(r, "share_id");
	if (!sid)
		return r->rc;
	const char *p[] = {id, r->auth.tenant_id, r->auth.user_id, sid};
	PGresult *res = db_exec(
		&r->c,
		"WITH p AS (SELECT id FROM products WHERE id = $1 AND tenant_id = $2 AND user_id = "
		"$3), "
		"d AS (DELETE FROM product_shares s USING p WHERE s.id = $4 AND s.product_id = "
		"p.id "
		"RETURNING s.id) SELECT (SELECT count(*) FROM p), (SELECT count(*) FROM d)",
		4, p);
	if (!res)
		return r->rc;
	if (strcmp(PQgetvalue(res, 0, 0), "0") == 0)
		return refuse(r, id, RC_NOTFOUND, "Product not found",
			      "Only the product owner can remove shares");
	if (strcmp(PQgetvalue(res, 0, 1), "0") == 0)
		return req_fail(r, RC_NOTFOUND, "Share not found");
	static const char ok[] = "{\"message\":\"Share removed successfully\"}";
	return res_json_text(r, 200, ok, sizeof(ok) - 1);
}

int h_products_create(struct req *r)
{
	return idem_run(r, products_create);
}

int h_products_share(struct req *r)
{
	return idem_run(r, products_share);
}
