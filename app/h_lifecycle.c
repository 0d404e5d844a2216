/* h_lifecycle.c - the "DB" API of the lifecycle UI (API.md 1.5, prefix /api/db): products in
 * the original's short shape, phase submissions and the conversation history. (The phases
 * themselves are public reference data: app/h_phases.c.)
 *
 * Unlike the original (API.md 8.1), every route here needs a session and is tenant-scoped:
 * GET/POST /api/db/products only see and create the caller's products, and the submission
 * update needs edit rights. Refusals on a product are 403 "Access denied to product", the same
 * for another tenant's, an unshared or a missing product.
 */
#include <stdio.h>
#include <string.h>

#include "products.h"

#define TEXT_MAX_BYTES (1u << 20) /* generated content, messages: 1 MiB */
#define NAME_MAX_BYTES 200
#define LABEL_MAX_BYTES 200

static const char *const submission_statuses[] = {"draft", "in_progress", "completed", "reviewed",
						  NULL};
static const char *const message_types[] = {"user", "agent", "system", NULL};

const struct jx_field db_product_fields[] = {
	{"id", JX_UUID, JX_NULLABLE, 0, NULL},
	/* accepted and ignored: the session decides */
	{"user_id", JX_ANY, JX_NULLABLE, IGNORED_MAX_BYTES, NULL},
	{"name", JX_STR, JX_REQUIRED, NAME_MAX_BYTES, NULL},
	{"description", JX_STR, JX_NULLABLE, 10000, NULL},
	{"status", JX_STR, JX_NULLABLE, 32, NULL},
	{"metadata", JX_OBJ, JX_NULLABLE, META_MAX_BYTES, NULL},
	{NULL, 0, 0, 0, NULL},
};

const struct jx_field submission_upsert_fields[] = {
	{"product_id", JX_UUID, JX_REQUIRED, 0, NULL},
	{"phase_id", JX_UUID, JX_REQUIRED, 0, NULL},
	/* ignored (API.md 1.5 took it from the body) */
	{"user_id", JX_ANY, JX_NULLABLE, IGNORED_MAX_BYTES, NULL},
	{"form_data", JX_OBJ, JX_NULLABLE, FORM_DATA_MAX_BYTES, NULL},
	{"generated_content", JX_STR, JX_NULLABLE, TEXT_MAX_BYTES, NULL},
	{"status", JX_ENUM, JX_NULLABLE, 0, submission_statuses},
	{"metadata", JX_OBJ, JX_NULLABLE, META_MAX_BYTES, NULL},
	{NULL, 0, 0, 0, NULL},
};

const struct jx_field submission_update_fields[] = {
	{"form_data", JX_OBJ, JX_NULLABLE, FORM_DATA_MAX_BYTES, NULL},
	{"generated_content", JX_STR, JX_NULLABLE, TEXT_MAX_BYTES, NULL},
	{"status", JX_ENUM, JX_NULLABLE, 0, submission_statuses},
	{"metadata", JX_OBJ, JX_NULLABLE, META_MAX_BYTES, NULL},
	{NULL, 0, 0, 0, NULL},
};

const struct jx_field message_fields[] = {
	{"session_id", JX_UUID, JX_REQUIRED, 0, NULL},
	{"product_id", JX_UUID, JX_NULLABLE, 0, NULL},
	{"phase_id", JX_UUID, JX_NULLABLE, 0, NULL},
	{"user_id", JX_ANY, JX_NULLABLE, IGNORED_MAX_BYTES, NULL}, /* ignored */
	{"message_type", JX_ENUM, JX_REQUIRED, 0, message_types},
	{"agent_name", JX_STR, JX_NULLABLE, LABEL_MAX_BYTES, NULL},
	{"agent_role", JX_STR, JX_NULLABLE, LABEL_MAX_BYTES, NULL},
	{"content", JX_STR, JX_REQUIRED, TEXT_MAX_BYTES, NULL},
	{"formatted_content", JX_STR, JX_NULLABLE, TEXT_MAX_BYTES, NULL},
	{"parent_message_id", JX_UUID, JX_NULLABLE, 0, NULL},
	{"interaction_metadata", JX_OBJ, JX_NULLABLE, META_MAX_BYTES, NULL},
	{NULL, 0, 0, 0, NULL},
};

/* JSON of a phase_submissions row s / a conversation_history row h. */
#define SUB_JSON(s)                                                                            \
	"json_build_object('id', " s ".id, 'product_id', " s ".product_id, 'phase_id', " s     \
	".phase_id, 'user_id', " s ".user_id, 'form_data', " s ".form_data, "                  \
	"'generated_content', " s ".generated_content, 'status', " s ".status, 'metadata', " s \
	".metadata, 'created_at', " s ".created_at, 'updated_at', " s ".updated_at)"
#define MSG_JSON(h)                                                                          \
	"json_build_object('id', " h ".id, 'session_id', " h ".session_id, 'product_id', " h \
	".product_id, 'phase_id', " h ".phase_id, 'message_type', " h ".message_type, "      \
	"'agent_name', " h ".agent_name, 'agent_role', " h ".agent_role, 'content', " h      \
	".content, 'formatted_content', " h ".formatted_content, 'parent_message_id', " h    \
	".parent_message_id, 'interaction_metadata', " h ".interaction_metadata, "           \
	"'created_at', " h ".created_at)"

/* The serialised member key of r->json, or NULL when absent or null. Borrowed. */
static const char *json_member(struct req *r, const char *key)
{
	struct json_object *o = jx_get(r->json, key);
	return o ? jx_str(o, NULL) : NULL;
}


/* ---------------------------------------------------------------- /api/db/products */

/* The caller's visible products (owned or shared), optionally only those owned by user_id. */
int h_db_products_list(struct req *r)
{
	const char *owner;
	int limit;
	if (req_query_uuid(r, "user_id", &owner) || req_query_int(r, "limit", 500, 1, 500, &limit))
		return r->rc;
	char lim[16];
	snprintf(lim, sizeof(lim), "%d", limit);
	const char *p[] = {r->auth.tenant_id, r->auth.user_id, owner, lim};
	/* clang-format off */
	const char *json = db_value(
		&r->c, NULL,
		"SELECT json_build_object('products', coalesce(json_agg(json_build_object("
		"'id', x.id, 'user_id', x.user_id, 'name', x.name, 'description', x.description, "
		"'status', x.status, 'metadata', x.metadata, 'created_at', x.created_at, "
		"'updated_at', x.updated_at) ORDER BY x.updated_at DESC, x.id), '[]'::json)) "
		"FROM (SELECT * FROM products p WHERE p.tenant_id = $1 AND " SQL_CAN_VIEW("p", "$2")
		" AND ($3::uuid IS NULL OR p.user_id = $3) ORDER BY p.updated_at DESC, p.id "
		"LIMIT $4) x",
		4, p);
	/* clang-format on */
	if (!json)
		return r->rc;
	return res_json_str(r, json);
}

/* Creates a product owned by the caller. A client-chosen id updates that product when it is the
 * caller's own; any other id (free, another user's or another tenant's) creates a new product
 * under a server-chosen id. So the answer is the same 200 {id, created_at, updated_at} for an
 * id that exists elsewhere and for one that exists nowhere, and a foreign row is never touched
 * (README: another tenant's product answers exactly like a missing one; issue 9 item 6). */
static int db_products_create(struct req *r)
{
	const char *name = jx_get_str(r->json, "name");
	const char *status = jx_get_str(r->json, "status");
	if (!str_has_text(name))
		return req_fail_blank(r, "name");
	if (status && !products_status_ok(status))
		return products_status_fail(r);
	const char *p[] = {jx_get_str(r->json, "id"),
			   r->auth.user_id,
			   r->auth.tenant_id,
			   name,
			   jx_get_str(r->json, "description"),
			   status,
			   json_member(r, "metadata")};
	const char *json = db_value(
		&r->c, NULL,
		"WITH upd AS (UPDATE products t SET name = $4, "
		"description = coalesce($5, t.description), status = coalesce($6, t.status), "
		"metadata = coalesce($7::jsonb, t.metadata) "
		"WHERE t.id = $1::uuid AND t.tenant_id = $3 AND t.user_id = $2 "
		"RETURNING t.id, t.created_at, t.updated_at), "
		"ins AS (INSERT INTO products (user_id, tenant_id, name, description, status, "
		"metadata) SELECT $2, $3, $4, $5, coalesce($6, 'ideation'), "
		"coalesce($7::jsonb, '{}') WHERE NOT EXISTS (SELECT 1 FROM upd) "
		"RETURNING id, created_at, updated_at) "
		"SELECT json_build_object('id', x.id, 'created_at', x.created_at, "
		"'updated_at', x.updated_at) FROM (SELECT * FROM upd UNION ALL SELECT * FROM ins) x",
		7, p);
	if (!json)
		return r->rc != RC_OK ? (int)r->rc
				      : req_fail(r, RC_INTERNAL, "product upsert returned no row");
	return res_json_str(r, json);
}

int h_db_products_create(struct req *r)
{
	return idem_run(r, db_products_create);
}

/* ---------------------------------------------------------------- phase submissions */

int h_submissions_list(struct req *r)
{
	const char *product, *phase;
	int limit;
	if (req_query_uuid(r, "product_id", &product) || req_query_uuid(r, "phase_id", &phase) ||
	    req_query_int(r, "limit", 1000, 1, 1000, &limit))
		return r->rc;
	char lim[16];
	snprintf(lim, sizeof(lim), "%d", limit);
	const char *json;
	bool found;
	if (product) {
		const char *p[] = {r->auth.tenant_id, r->auth.user_id, product, phase, lim};
		/* clang-format off */
		json = db_value(
			&r->c, &found,
			"SELECT CASE WHEN EXISTS (SELECT 1 FROM products p WHERE p.id = $3 "
			"AND p.tenant_id = $1 AND " SQL_CAN_VIEW("p", "$2") ") THEN "
			"(SELECT json_build_object('submissions', coalesce(json_agg(" SUB_JSON("s")
			" ORDER BY s.created_at, s.id), '[]'::json)) FROM (SELECT * FROM "
			"phase_submissions s WHERE s.product_id = $3 AND s.tenant_id = $1 "
			"AND ($4::uuid IS NULL OR s.phase_id = $4) ORDER BY s.created_at, s.id "
			"LIMIT $5) s) END",
			5, p);
		/* clang-format on */
	} else {
		const char *p[] = {r->auth.tenant_id, r->auth.user_id, phase, lim};
		/* clang-format off */
		json = db_value(
			&r->c, &found,
			"SELECT json_build_object('submissions', coalesce(json_agg(" SUB_JSON("s")
			" ORDER BY s.created_at, s.id), '[]'::json)) FROM (SELECT s.* FROM "
			"phase_submissions s JOIN products p ON p.id = s.product_id "
			"AND p.tenant_id = s.tenant_id WHERE s.tenant_id = $1 AND "
			SQL_CAN_VIEW("p", "$2") " AND ($3::uuid IS NULL OR s.phase_id = $3) "
			"ORDER BY s.created_at, s.id LIMIT $4) s",
			4, p);
		/* clang-format on */
	}
	return res_json_or(r, json, RC_FORBIDDEN, "Access denied to product");
}

/* One submission or JSON null; 403 without view access. */
int h_submissions_get(struct req *r)
{
	const char *product = req_path_uuid(r, "product_id");
	if (!product)
		return r->rc;
	const char *phase = req_path_uuid(r, "phase_id");
	if (!phase)
		return r->rc;
	const char *p[] = {r->auth.tenant_id, r->auth.user_id, product, phase};
	/* clang-format off */
	const char *json = db_value(
		&r->c, NULL,
		"SELECT CASE WHEN EXISTS (SELECT 1 FROM products p WHERE p.id = $3 "
		"AND p.tenant_id = $1 AND " SQL_CAN_VIEW("p", "$2") ") THEN "
		"coalesce((SELECT " SUB_JSON("s") " FROM phase_submissions s "
		"WHERE s.product_id = $3 "
		"AND s.phase_id = $4 AND s.tenant_id = $1), 'null'::json) END",
		4, p);
	/* clang-format on */
	return res_json_or(r, json, RC_FORBIDDEN, "Access denied to product");
}

/* Upsert on (product_id, phase_id): replaces form_data, status and metadata (and
 * generated_content when given). ON CONFLICT DO UPDATE is atomic, so concurrent saves of the
 * same phase never fail: the last one wins. */
int h_submissions_upsert(struct req *r)
{
	const char *product = jx_get_str(r->json, "product_id");
	const char *gen = jx_get_str(r->json, "generated_content");
	const char *p[] = {product,
			   r->auth.tenant_id,
			   r->auth.user_id,
			   jx_get_str(r->json, "phase_id"),
			   json_member(r, "form_data"),
			   jx_get_str(r->json, "status"),
			   json_member(r, "metadata"),
			   gen,
			   gen ? "true" : "false"};
	/* clang-format off */
	const char *json = db_value(
		&r->c, NULL,
		"INSERT INTO phase_submissions AS t (product_id, phase_id, user_id, tenant_id, "
		"form_data, status, metadata, generated_content) "
		"SELECT p.id, f.id, $3, p.tenant_id, coalesce($5::jsonb, '{}'), "
		"coalesce($6, 'draft'), coalesce($7::jsonb, '{}'), $8 FROM products p "
		"JOIN product_lifecycle_phases f ON f.id = $4 "
		"WHERE p.id = $1 AND p.tenant_id = $2 AND " SQL_CAN_EDIT("p", "$3") " "
		"ON CONFLICT (product_id, phase_id) DO UPDATE SET form_data = EXCLUDED.form_data, "
		"status = EXCLUDED.status, metadata = EXCLUDED.metadata, user_id = "
		"EXCLUDED.user_id, "
		"generated_content = CASE WHEN $9::boolean THEN EXCLUDED.generated_content "
		"ELSE t.generated_content END "
		"RETURNING json_build_object('id', id, 'created_at', created_at, "
		"'updated_at', updated_at)",
		9, p);
	/* clang-format on */
	if (json)
		return res_json_str(r, json);
	if (r->rc != RC_OK)
		return r->rc;
	int lvl = prod_level(r, product);
	if (lvl < 0)
		return r->rc;
	if (lvl < PL_EDIT)
		return req_fail(r, RC_FORBIDDEN, "Access denied to product");
	return req_fail(r, RC_NOTFOUND, "Phase not found");
}

/* Partial update by id (null members count as absent); needs edit rights on the product. */
int h_submissions_update(struct req *r)
{
	const char *id = req_path_uuid(r, "id");
	if (!id)
		return r->rc;
	const char *form = json_member(r, "form_data");
	const char *gen = jx_get_str(r->json, "generated_content");
	const char *status = jx_get_str(r->json, "status");
	const char *meta = json_member(r, "metadata");
	if (!form && !gen && !status && !meta)
		return req_fail(r, RC_BADREQ, "No fields to update");
	const char *p[] = {id, r->auth.tenant_id, r->auth.user_id, form, gen, status, meta};
	/* clang-format off */
	const char *json = db_value(
		&r->c, NULL,
		"UPDATE phase_submissions s SET form_data = coalesce($4::jsonb, s.form_data), "
		"generated_content = coalesce($5, s.generated_content), "
		"status = coalesce($6, s.status), metadata = coalesce($7::jsonb, s.metadata), "
		"user_id = $3 FROM products p WHERE s.id = $1 AND s.tenant_id = $2 "
		"AND p.id = s.product_id AND p.tenant_id = s.tenant_id AND " SQL_CAN_EDIT("p", "$3")
		" RETURNING " SUB_JSON("s"),
		7, p);
	/* clang-format on */
	if (json)
		return res_json_str(r, json);
	if (r->rc != RC_OK)
		return r->rc;
	const char *q[] = {id, r->auth.tenant_id};
	bool found;
	db_value(&r->c, &found, "SELECT 1 FROM phase_submissions WHERE id = $1 AND tenant_id = $2",
		 2, q);
	if (r->rc != RC_OK)
		return r->rc;
	if (!found)
		return req_fail(r, RC_NOTFOUND, "Phase submission not found");
	return req_fail(r, RC_FORBIDDEN, "Access denied to product");
}

/* ---------------------------------------------------------------- conversation history */

/* Oldest first. With product_id: every message about that product (view access needed); else
 * the caller's own sessions and the products they can view. The newest `limit` messages are
 * returned (in ascending order), so a long chat shows its end. */
int h_messages_list(struct req *r)
{
	const char *session, *product;
	int limit;
	if (req_query_uuid(r, "session_id", &session) ||
	    req_query_uuid(r, "product_id", &product) ||
	    req_query_int(r, "limit", 100, 1, 1000, &limit))
		return r->rc;
	char lim[16];
	snprintf(lim, sizeof(lim), "%d", limit);
	const char *json;
	if (product) {
		const char *p[] = {r->auth.tenant_id, r->auth.user_id, product, session, lim};
		/* clang-format off */
		json = db_value(
			&r->c, NULL,
			"SELECT CASE WHEN EXISTS (SELECT 1 FROM products p WHERE p.id = $3 "
			"AND p.tenant_id = $1 AND " SQL_CAN_VIEW("p", "$2") ") THEN "
			"(SELECT json_build_object('messages', coalesce(json_agg(" MSG_JSON("h")
			" ORDER BY h.created_at, h.id), '[]'::json)) FROM (SELECT * FROM "
			"conversation_history h WHERE h.tenant_id = $1 AND h.product_id = $3 "
			"AND ($4::uuid IS NULL OR h.session_id = $4) "
			"ORDER BY h.created_at DESC, h.id DESC LIMIT $5) h) END",
			5, p);
		/* clang-format on */
	} else {
		const char *p[] = {r->auth.tenant_id, r->auth.user_id, session, lim};
		json = db_value(
			&r->c, NULL,
			/* the newest `limit` of the caller's sessions' messages and the newest
			 * `limit` about the products they can view (owned or shared), each read
			 * by index from the caller's sessions and products, then the newest
			 * `limit` of both: the cost follows the caller's data, never the
			 * tenant's (the former filter over the tenant's history read 500 000
			 * buffers at a million messages; bench/products/RESULTS.md) */
			/* clang-format off */
			"SELECT json_build_object('messages', coalesce(json_agg(" MSG_JSON("h")
			" ORDER BY h.created_at, h.id), '[]'::json)) FROM (SELECT h.* FROM "
			"conversation_history h WHERE h.id IN (SELECT x.id FROM ((SELECT h.id "
			"FROM conversation_sessions cs JOIN conversation_history h ON "
			"h.session_id = cs.id WHERE cs.user_id = $2 AND h.tenant_id = $1 "
			"AND ($3::uuid IS NULL OR h.session_id = $3) "
			"ORDER BY h.created_at DESC, h.id DESC LIMIT $4) UNION ALL (SELECT h.id "
			"FROM conversation_history h WHERE h.product_id IN (SELECT p.id FROM "
			"products p WHERE p.tenant_id = $1 AND p.user_id = $2 UNION ALL SELECT "
			"s.product_id FROM product_shares s WHERE s.shared_with_user_id = $2 AND "
			"s.tenant_id = $1) AND h.tenant_id = $1 "
			"AND ($3::uuid IS NULL OR h.session_id = $3) "
			"ORDER BY h.created_at DESC, h.id DESC LIMIT $4)) x) "
			"ORDER BY h.created_at DESC, h.id DESC LIMIT $4) h",
			4, p);
		/* clang-format on */
	}
	return res_json_or(r, json, RC_FORBIDDEN, "Access denied to product");
}

/* One statement: the product check (edit rights: writing to a product's chat is a write, API.md
 * 2.4), the session (created as "Product Lifecycle Session" when the id is unknown; an existing
 * one must be the caller's or about a product they can edit), the parent message (same tenant)
 * and the insert. */
/* clang-format off */
static const char append_sql[] =
	"WITH acc AS (SELECT ($3::uuid IS NULL OR EXISTS (SELECT 1 FROM products p "
	"WHERE p.id = $3 AND p.tenant_id = $1 AND " SQL_CAN_EDIT("p", "$2") ")) AS ok), "
	"cur AS (SELECT cs.id FROM conversation_sessions cs WHERE cs.id = $4 AND cs.tenant_id = $1 "
	"AND (cs.user_id = $2 OR (cs.product_id IS NOT NULL AND EXISTS (SELECT 1 FROM products p "
	"WHERE p.id = cs.product_id AND p.tenant_id = $1 AND " SQL_CAN_EDIT("p", "$2") ")))), "
	"made AS (INSERT INTO conversation_sessions (id, user_id, product_id, tenant_id, title) "
	"SELECT $4, $2, $3, $1, 'Product Lifecycle Session' FROM acc WHERE acc.ok "
	"AND NOT EXISTS (SELECT 1 FROM conversation_sessions WHERE id = $4) "
	"ON CONFLICT (id) DO NOTHING RETURNING id) "
	"INSERT INTO conversation_history (session_id, product_id, phase_id, tenant_id, "
	"message_type, agent_name, agent_role, content, formatted_content, parent_message_id, "
	"interaction_metadata) SELECT $4, $3, $5, $1, $6, $7, $8, $9, $10, $11, "
	"coalesce($12::jsonb, '{}') FROM acc WHERE acc.ok "
	"AND (EXISTS (SELECT 1 FROM cur) OR EXISTS (SELECT 1 FROM made)) "
	"AND ($11::uuid IS NULL OR EXISTS (SELECT 1 FROM conversation_history m "
	"WHERE m.id = $11 AND m.tenant_id = $1)) "
	"RETURNING json_build_object('id', id, 'created_at', created_at)";
/* clang-format on */

/* Clients write "user" and "system" messages; "agent" rows are the server's own (the agents'
 * answers, which the PRD export quotes as theirs), so a client sending one gets 422 whatever
 * its rights (checked before any access check: the answer reveals nothing). */
static int messages_append(struct req *r)
{
	const char *type = jx_get_str(r->json, "message_type");
	if (type && strcmp(type, "agent") == 0)
		return req_fail_field(r, "body", "message_type", "enum",
				      "Input should be 'user' or 'system': agent messages are "
				      "written by the server only");
	const char *product = jx_get_str(r->json, "product_id");
	const char *session = jx_get_str(r->json, "session_id");
	const char *parent = jx_get_str(r->json, "parent_message_id");
	const char *p[] = {r->auth.tenant_id,
			   r->auth.user_id,
			   product,
			   session,
			   jx_get_str(r->json, "phase_id"),
			   jx_get_str(r->json, "message_type"),
			   jx_get_str(r->json, "agent_name"),
			   jx_get_str(r->json, "agent_role"),
			   jx_get_str(r->json, "content"),
			   jx_get_str(r->json, "formatted_content"),
			   parent,
			   json_member(r, "interaction_metadata")};
	/* Two tries: a session created by a concurrent first message is invisible to this
	 * statement's snapshot (its INSERT waits, then does nothing); the retry sees it. */
	for (int attempt = 0; attempt < 2; attempt++) {
		const char *json = db_value(&r->c, NULL, append_sql, 12, p);
		if (json)
			return res_json_str(r, json);
		if (r->rc != RC_OK)
			return r->rc;
		const char *q[] = {r->auth.tenant_id, r->auth.user_id, product, session, parent};
		/* clang-format off */
		PGresult *res = db_exec(
			&r->c,
			"SELECT ($3::uuid IS NULL OR EXISTS (SELECT 1 FROM products p WHERE p.id = "
			"$3 "
			"AND p.tenant_id = $1 AND " SQL_CAN_EDIT("p", "$2") ")), "
			"($5::uuid IS NULL OR EXISTS (SELECT 1 FROM conversation_history m "
			"WHERE m.id = $5 AND m.tenant_id = $1)), "
			"EXISTS (SELECT 1 FROM conversation_sessions cs WHERE cs.id = $4 "
			"AND cs.tenant_id = $1 AND (cs.user_id = $2 OR (cs.product_id IS NOT NULL "
			"AND EXISTS (SELECT 1 FROM products p WHERE p.id = cs.product_id "
			"AND " SQL_CAN_EDIT("p", "$2") "))))",
			5, q);
		/* clang-format on */
		if (!res)
			return r->rc;
		if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
			return req_fail(r, RC_FORBIDDEN, "Access denied to product");
		if (strcmp(PQgetvalue(res, 0, 1), "t") != 0)
			return req_fail(r, RC_BADREQ, "Parent message not found");
		if (strcmp(PQgetvalue(res, 0, 2), "t") != 0)
			break; /* the session is someone else's (or another tenant's) */
	}
	return req_fail(r, RC_FORBIDDEN, "Access denied to conversation session");
}

int h_messages_append(struct req *r)
{
	return idem_run(r, messages_append);
}
