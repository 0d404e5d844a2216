/* h_conversations.c - GET /api/conversations/history (API.md 1.6): recent messages, newest
 * first, with their session title and product.
 *
 * With product_id: every message about that product, for a caller who can view it (403
 * otherwise, the same for a missing or another tenant's product). Without: the messages of
 * the caller's own sessions and of the products the caller can view. Unlike the original, the
 * product branch fills product_id and product_name too.
 */
#include <stdio.h>
#include <string.h>

#include "products.h"

#define CONV_JSON                                                                               \
	"json_build_object('id', x.id, 'message_type', x.message_type, 'agent_name', "          \
	"x.agent_name, 'agent_role', x.agent_role, 'content', x.content, 'formatted_content', " \
	"x.formatted_content, 'created_at', x.created_at, 'session_title', x.session_title, "   \
	"'product_id', x.product_id, 'product_name', x.product_name)"
#define CONV_COLS                                                                            \
	"h.id, h.message_type, h.agent_name, h.agent_role, h.content, h.formatted_content, " \
	"h.created_at, cs.title AS session_title, h.product_id, p.name AS product_name"
#define CONV_AGG                                                                 \
	"SELECT json_build_object('conversations', coalesce(json_agg(" CONV_JSON \
	" ORDER BY x.created_at DESC, x.id DESC), '[]'::json), 'count', count(x.id)) FROM "

int h_conversations_history(struct req *r)
{
	const char *product;
	int limit;
	if (req_query_uuid(r, "product_id", &product) ||
	    req_query_int(r, "limit", 50, 1, 200, &limit))
		return r->rc;
	char lim[16];
	snprintf(lim, sizeof(lim), "%d", limit);
	const char *json;
	if (product) {
		const char *p[] = {r->auth.tenant_id, r->auth.user_id, lim, product};
		/* clang-format off */
		json = db_value(
			&r->c, NULL,
			"SELECT CASE WHEN EXISTS (SELECT 1 FROM products p WHERE p.id = $4 "
			"AND p.tenant_id = $1 AND " SQL_CAN_VIEW("p", "$2") ") THEN (" CONV_AGG
			"(SELECT " CONV_COLS " FROM conversation_history h "
			"JOIN conversation_sessions cs ON cs.id = h.session_id "
			"LEFT JOIN products p ON p.id = h.product_id "
			"WHERE h.tenant_id = $1 AND h.product_id = $4 "
			"ORDER BY h.created_at DESC, h.id DESC LIMIT $3) x) END",
			4, p);
		/* clang-format on */
	} else {
		const char *p[] = {r->auth.tenant_id, r->auth.user_id, lim};
		/* clang-format off */
		json = db_value(
			&r->c, NULL,
			CONV_AGG "(SELECT " CONV_COLS " FROM conversation_history h "
			"JOIN conversation_sessions cs ON cs.id = h.session_id "
			"LEFT JOIN products p ON p.id = h.product_id "
			"WHERE h.tenant_id = $1 AND (cs.user_id = $2 OR (p.id IS NOT NULL AND "
			SQL_CAN_VIEW("p", "$2") ")) ORDER BY h.created_at DESC, h.id DESC "
			"LIMIT $3) x",
			3, p);
		/* clang-format on */
	}
	return res_json_or(r, json, RC_FORBIDDEN, "Access denied to product");
}
