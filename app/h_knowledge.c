/* h_knowledge.c - the knowledge base of a product (API.md 1.5 knowledge-articles, 1.12 local
 * upload) and the retrieval function of the agents.
 *
 * Search is PostgreSQL full-text search on knowledge_articles.search_vector (a generated
 * tsvector, title weighted A and body B, GIN index; sql/0001_core.sql): articles matching
 * websearch_to_tsquery('english', q) come first by ts_rank, then articles that only contain q
 * as a substring (the original's ILIKE semantics, so a search never finds less than before).
 * A query full-text search cannot use (stop words or punctuation only) is a substring search.
 *
 * Upload: multipart/form-data (RFC 7578) parsed here, fields `file` and `product_id`; text,
 * Markdown, JSON, CSV and XML only, valid UTF-8 (a BOM is dropped), at most 5 MiB per file.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../lib/arena.h"
#include "../lib/mp.h"
#include "kb.h"
#include "products.h"

#define TITLE_MAX_BYTES 500
#define CONTENT_MAX_BYTES (1u << 20) /* an article typed or pasted: 1 MiB */
#define UPLOAD_MAX_BYTES (5u << 20)  /* an uploaded file: 5 MiB */
#define MP_MAX_PARTS 16

static const char *const article_sources[] = {"manual", "jira",         "confluence",
					      "github", "local_upload", NULL};

const struct jx_field article_fields[] = {
	{"product_id", JX_UUID, JX_NULLABLE, 0, NULL}, /* missing -> 400, as the original */
	{"title", JX_STR, JX_REQUIRED, TITLE_MAX_BYTES, NULL},
	{"content", JX_STR, JX_REQUIRED, CONTENT_MAX_BYTES, NULL},
	{"source", JX_ENUM, JX_NULLABLE, 0, article_sources},
	{"metadata", JX_OBJ, JX_NULLABLE, META_MAX_BYTES, NULL},
	{NULL, 0, 0, 0, NULL},
};

/* ---------------------------------------------------------------- SQL */

/* $1 tenant, $2 user, $3 limit, then: */
static const char sql_list_product[] = /* $4 product */
	"SELECT CASE WHEN " ACCESS("$4") " THEN (" LIST_PLAIN(F_PRODUCT("$4")) ") END";
static const char sql_list_visible[] = LIST_PLAIN(F_VISIBLE);
static const char sql_search_product[] = /* $4 product, $5 query, $6 pattern */
					 /* clang-format off */
	"SELECT CASE WHEN " ACCESS("$4") " THEN (" LIST_SEARCH(F_PRODUCT("$4"), "$5", "$6")
	") END";
					 /* clang-format on */
static const char sql_search_visible[] = /* $4 query, $5 pattern */
	LIST_SEARCH(F_VISIBLE, "$4", "$5");


/* ---------------------------------------------------------------- articles */

int h_articles_list(struct req *r)
{
	const char *product;
	int limit;
	if (req_query_uuid(r, "product_id", &product) ||
	    req_query_int(r, "limit", 50, 1, 200, &limit))
		return r->rc;
	const char *search = req_query(r, "search");
	if (search && strlen(search) > SEARCH_MAX_BYTES)
		return req_fail_field(r, "query", "search", "string_too_long",
				      "String should have at most 500 characters");
	if (search && !*search)
		search = NULL;
	char lim[16];
	snprintf(lim, sizeof(lim), "%d", limit);
	const char *json;
	if (search) {
		const char *pat = kb_like_pattern(r->a, search);
		if (product) {
			const char *p[] = {r->auth.tenant_id, r->auth.user_id, lim,
					   product,           search,          pat};
			json = db_value(&r->c, NULL, sql_search_product, 6, p);
		} else {
			const char *p[] = {r->auth.tenant_id, r->auth.user_id, lim, search, pat};
			json = db_value(&r->c, NULL, sql_search_visible, 5, p);
		}
	} else if (product) {
		const char *p[] = {r->auth.tenant_id, r->auth.user_id, lim, product};
		json = db_value(&r->c, NULL, sql_list_product, 4, p);
	} else {
		const char *p[] = {r->auth.tenant_id, r->auth.user_id, lim};
		json = db_value(&r->c, NULL, sql_list_visible, 3, p);
	}
	return res_json_or(r, json, RC_FORBIDDEN, "Access denied to product");
}

/* Inserts an article when the caller may edit the product; the JSON {id, created_at} or NULL
 * (r->rc == RC_OK: refused). */
static const char *article_insert(struct req *r, const char *product, const char *title,
				  const char *content, const char *source, const char *meta)
{
	const char *p[] = {product, r->auth.tenant_id, r->auth.user_id, title, content, source,
			   meta};
	/* clang-format off */
	return db_value(&r->c, NULL,
			"INSERT INTO knowledge_articles (product_id, tenant_id, title, content, "
			"source, metadata) SELECT p.id, p.tenant_id, $4, $5, coalesce($6, "
			"'manual'), "
			"coalesce($7::jsonb, '{}') FROM products p WHERE p.id = $1 "
			"AND p.tenant_id = $2 AND " SQL_CAN_EDIT("p", "$3") " "
			"RETURNING json_build_object('id', id, 'created_at', created_at)",
			7, p);
	/* clang-format on */
}

static int articles_create(struct req *r)
{
	const char *product = jx_get_str(r->json, "product_id");
	if (!product)
		return req_fail(r, RC_BADREQ, "product_id is required");
	const char *title = jx_get_str(r->json, "title");
	if (!str_has_text(title))
		return req_fail_blank(r, "title");
	struct json_object *meta = jx_get(r->json, "metadata");
	const char *json =
		article_insert(r, product, title, jx_get_str(r->json, "content"),
			       jx_get_str(r->json, "source"), meta ? jx_str(meta, NULL) : NULL);
	return res_json_or(r, json, RC_FORBIDDEN, "Access denied to product");
}

int h_articles_delete(struct req *r)
{
	const char *id = req_path_uuid(r, "id");
	if (!id)
		return r->rc;
	const char *p[] = {id, r->auth.tenant_id, r->auth.user_id};
	bool found;
	/* clang-format off */
	db_value(&r->c, &found,
		 "DELETE FROM knowledge_articles a USING products p WHERE a.id = $1 "
		 "AND a.tenant_id = $2 AND p.id = a.product_id AND p.tenant_id = a.tenant_id AND "
		 SQL_CAN_EDIT("p", "$3") " RETURNING a.id",
		 3, p);
	/* clang-format on */
	if (r->rc != RC_OK)
		return r->rc;
	if (!found) {
		db_value(&r->c, &found,
			 "SELECT 1 FROM knowledge_articles WHERE id = $1 AND tenant_id = $2", 2, p);
		if (r->rc != RC_OK)
			return r->rc;
		if (!found)
			return req_fail(r, RC_NOTFOUND, "Knowledge article not found");
		return req_fail(r, RC_FORBIDDEN, "Access denied to product");
	}
	static const char ok[] = "{\"success\":true}";
	return res_json_text(r, 200, ok, sizeof(ok) - 1);
}


/* ---------------------------------------------------------------- upload */

struct doc_type {
	const char *ext;   /* file name extension, lower-case, with the dot */
	const char *ctype; /* canonical content type */
};

static const struct doc_type doc_types[] = {
	{".txt", "text/plain"},        {".text", "text/plain"},
	{".md", "text/markdown"},      {".markdown", "text/markdown"},
	{".json", "application/json"}, {".csv", "text/csv"},
	{".xml", "application/xml"},   {NULL, NULL},
};

/* Accepted content types as sent by browsers and tools, with their canonical form. */
static const struct doc_type ctype_aliases[] = {
	{"text/plain", "text/plain"},         {"text/markdown", "text/markdown"},
	{"text/x-markdown", "text/markdown"}, {"application/json", "application/json"},
	{"text/json", "application/json"},    {"text/csv", "text/csv"},
	{"application/csv", "text/csv"},      {"application/xml", "application/xml"},
	{"text/xml", "application/xml"},      {NULL, NULL},
};

/* The canonical type of an acceptable upload, from its content type or else its extension;
 * NULL when neither is one of ours. */
static const char *doc_type_of(const char *ctype, const char *filename)
{
	for (const struct doc_type *t = ctype_aliases; ctype && t->ext; t++)
		if (strcmp(ctype, t->ext) == 0)
			return t->ctype;
	const char *dot = filename ? strrchr(filename, '.') : NULL;
	for (const struct doc_type *t = doc_types; dot && t->ext; t++)
		if (strcasecmp(dot, t->ext) == 0)
			return t->ctype;
	return NULL;
}

/* The article title for an uploaded file: its base name without control characters, at most
 * 255 bytes cut on a character boundary; "Untitled document" when nothing is left. */
static const char *doc_title(struct arena *a, const char *filename)
{
	if (!filename || !jx_utf8_text((const unsigned char *)filename, strlen(filename)))
		return "Untitled document";
	const char *base = filename;
	for (const char *c = filename; *c; c++)
		if (*c == '/' || *c == '\\')
			base = c + 1;
	char *out = arena_alloc(a, strlen(base) + 1), *o = out;
	for (const unsigned char *c = (const unsigned char *)base; *c; c++)
		if (*c >= 0x20 && *c != 0x7f)
			*o++ = (char)*c;
	*o = '\0';
	out[jx_utf8_cut(out, strlen(out), 255)] = '\0';
	return str_has_text(out) ? out : "Untitled document";
}

static int documents_upload(struct req *r)
{
	const char *boundary = mp_boundary(r->a, r->content_type);
	if (!boundary)
		return req_fail(r, RC_MEDIA,
				"Unsupported media type: expected multipart/form-data");
	struct mp_part parts[MP_MAX_PARTS];
	int n = mp_parse(r->a, r->body, r->body_len, boundary, parts, MP_MAX_PARTS);
	if (n < 0)
		return req_fail(r, RC_BADREQ, "Malformed multipart/form-data body");
	const struct mp_part *file = NULL, *pid = NULL;
	for (int i = 0; i < n; i++) {
		if (!file && strcmp(parts[i].name, "file") == 0)
			file = &parts[i];
		else if (!pid && strcmp(parts[i].name, "product_id") == 0)
			pid = &parts[i];
	}
	if (!pid || pid->len == 0)
		return req_fail(r, RC_BADREQ, "product_id is required");
	const char *product = arena_strndup(r->a, pid->data, pid->len);
	if (!jx_is_uuid(product))
		return req_fail_field(r, "body", "product_id", "uuid_parsing",
				      "Input should be a valid UUID");
	if (!file)
		return req_fail_field(r, "body", "file", "missing", "Field required");
	if (file->len > UPLOAD_MAX_BYTES)
		return req_fail(r, RC_TOOLARGE, "File too large: the limit is 5 MiB");
	const char *type = doc_type_of(file->ctype, file->filename);
	if (!type)
		return req_fail(r, RC_MEDIA,
				"Unsupported file type: upload text, Markdown, JSON, CSV or XML "
				"files");
	const char *data = file->data;
	size_t len = file->len;
	if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0) {
		data += 3; /* UTF-8 byte order mark */
		len -= 3;
	}
	if (!jx_utf8_text((const unsigned char *)data, len))
		return req_fail(r, RC_BADREQ,
				"File is not valid UTF-8 text; save it as UTF-8 and upload again");
	if (!str_has_text(arena_strndup(r->a, data, len)))
		return req_fail(r, RC_BADREQ, "File is empty");
	const char *title = doc_title(r->a, file->filename);
	/* metadata as the original: {filename, content_type, size, user_id} */
	struct json_object *meta = json_object_new_object();
	jx_arena_own(r->a, meta);
	json_object_object_add(meta, "filename", json_object_new_string(title));
	json_object_object_add(meta, "content_type", json_object_new_string(type));
	json_object_object_add(meta, "size", json_object_new_int64((int64_t)file->len));
	json_object_object_add(meta, "user_id", json_object_new_string(r->auth.user_id));
	const char *json = article_insert(r, product, title, arena_strndup(r->a, data, len),
					  "local_upload", jx_str(meta, NULL));
	if (!json) {
		if (r->rc != RC_OK)
			return r->rc;
		return req_fail(r, RC_FORBIDDEN, "Access denied to product");
	}
	struct json_object *row = jx_parse(json, strlen(json), 4);
	if (!row)
		return req_fail(r, RC_INTERNAL, "upload: unparsable JSON from the database");
	struct json_object *out = json_object_new_object();
	json_object_object_add(out, "document_id", json_object_get(jx_get(row, "id")));
	json_object_object_add(out, "message",
			       json_object_new_string("File uploaded successfully"));
	json_object_put(row);
	return res_json(r, 200, out);
}

int h_articles_create(struct req *r)
{
	return idem_run(r, articles_create);
}

int h_documents_upload(struct req *r)
{
	return idem_run(r, documents_upload);
}
