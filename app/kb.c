/* kb.c - knowledge retrieval for the agents, on a context (no request needed). */
#include "kb.h"

#include <stdio.h>
#include <string.h>

#include "../lib/db.h"
#include "../lib/jx.h"

static const char sql_retrieve[] = /* $4 product, $5 query, $6 pattern */
				   /* clang-format off */
	"SELECT CASE WHEN " ACCESS("$4") " THEN (SELECT coalesce(json_agg(json_build_object("
	"'id', a.id, 'title', a.title, 'content', a.content, 'source', a.source, "
	"'rank', a.rank) ORDER BY a.tier, a.rank DESC, a.created_at DESC, a.id), '[]'::json) "
	"FROM (SELECT * FROM (" SEARCH(F_PRODUCT("$4"), "$5", "$6") ") m " SEARCH_ORDER
	" LIMIT $3) a) END";
				   /* clang-format on */

/* '%' + q with \ % _ escaped + '%': a literal substring for ILIKE (default escape '\'). */
char *kb_like_pattern(struct arena *a, const char *q)
{
	size_t n = strlen(q);
	char *out = arena_alloc(a, 2 * n + 3), *o = out;
	*o++ = '%';
	for (; *q; q++) {
		if (*q == '\\' || *q == '%' || *q == '_')
			*o++ = '\\';
		*o++ = *q;
	}
	*o++ = '%';
	*o = '\0';
	return out;
}

struct json_object *kb_retrieve(struct ctx *c, const char *product_id, const char *query, int k)
{
	if (!c->who)
		return ctx_fail(c, RC_UNAUTH, "Not authenticated"), NULL;
	if (!jx_is_uuid(product_id)) {
		ctx_fail(c, RC_INVALID, "Invalid product id");
		return NULL;
	}
	if (k < 1)
		k = 1;
	if (k > 50)
		k = 50;
	if (!query)
		query = "";
	if (strlen(query) > SEARCH_MAX_BYTES)
		query = arena_strndup(c->a, query, SEARCH_MAX_BYTES);
	char lim[16];
	snprintf(lim, sizeof(lim), "%d", k);
	const char *p[] = {c->who->tenant_id, c->who->user_id, lim,
			   product_id,        query,           kb_like_pattern(c->a, query)};
	const char *json = db_value(c, NULL, sql_retrieve, 6, p);
	if (!json) {
		if (c->rc == RC_OK)
			ctx_fail(c, RC_FORBIDDEN, "Access denied to product");
		return NULL;
	}
	struct json_object *arr = jx_parse(json, strlen(json), 8);
	if (!arr) {
		ctx_fail(c, RC_INTERNAL, "kb_retrieve: unparsable JSON from the database");
		return NULL;
	}
	jx_arena_own(c->a, arr);
	return arr;
}
