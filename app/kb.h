/* kb.h - the knowledge base's search SQL and retrieval for the agents (app/kb.c), shared by
 * the knowledge routes (app/h_knowledge.c) and ideaforge-agentd. */
#ifndef IF_APP_KB_H
#define IF_APP_KB_H

#include <json-c/json.h>

#include "../lib/arena.h"
#include "../lib/ctx.h"
#include "products.h" /* SQL_CAN_VIEW */

#define SEARCH_MAX_BYTES 500 /* a search query, longer ones are cut */

/* Articles: ($1 tenant, $2 user, $3 limit) then the statement's own parameters. */
#define ART_COLS "a.id, a.product_id, a.title, a.content, a.source, a.metadata, a.created_at"
#define ART_JSON                                                                       \
	"json_build_object('id', a.id, 'product_id', a.product_id, 'title', a.title, " \
	"'content', a.content, 'source', a.source, 'metadata', a.metadata, "           \
	"'created_at', a.created_at)"

/* Articles of one product / of every product the caller can view ($1 tenant, $2 user). The
 * visible products are listed first (own ones, then shares: both by index) and their articles
 * read by product: the cost follows the caller's products, never the tenant's article count
 * (an EXISTS per article read the whole tenant: 35 ms for a list and 190 ms for a search at
 * 100 000 articles; bench/products/RESULTS.md). */
#define F_PRODUCT(P) "a.tenant_id = $1 AND a.product_id = " P
#define F_VISIBLE                                                                                   \
	"a.tenant_id = $1 AND a.product_id IN (SELECT p.id FROM products p WHERE p.tenant_id = $1 " \
	"AND p.user_id = $2 UNION ALL SELECT s.product_id FROM product_shares s "                   \
	"WHERE s.shared_with_user_id = $2 AND s.tenant_id = $1)"
#define ACCESS(P)                                          \
	"EXISTS (SELECT 1 FROM products p WHERE p.id = " P \
	" AND p.tenant_id = $1 AND " SQL_CAN_VIEW("p", "$2") ")"

/* The substring fallback reads the title and this many leading characters of each article
 * (PostgreSQL detoasts only that slice), so its cost per article is bounded whatever the
 * article's size: a search never scans megabytes of content. */
#define SUBSTRING_SCAN_CHARS "4096"

/* Ranked matches (tier 0, by ts_rank) then substring-only matches (tier 1). Q: the query
 * text, PAT: the escaped ILIKE pattern. A query without lexemes (stop words, punctuation) is
 * the NULL tsquery, which matches nothing: websearch_to_tsquery is not even called for it, so
 * it raises no "only stop words" NOTICE (the CASE is folded when the statement is planned). */
#define TSQ(Q)                                                                        \
	"(CASE WHEN to_tsvector('english', " Q ") = ''::tsvector THEN NULL::tsquery " \
	"ELSE websearch_to_tsquery('english', " Q ") END)"
#define SEARCH(F, Q, PAT)                                                               \
	"SELECT " ART_COLS ", ts_rank(a.search_vector, " TSQ(                           \
		Q) ") AS rank, 0 AS tier "                                              \
		   "FROM knowledge_articles a WHERE " F " AND a.search_vector @@ " TSQ( \
			   Q) " "                                                       \
			      "UNION ALL SELECT " ART_COLS                              \
			      ", 0, 1 FROM knowledge_articles a WHERE " F " "           \
			      "AND (a.search_vector @@ " TSQ(                           \
				      Q) ") IS NOT TRUE "                               \
					 "AND (a.title ILIKE " PAT                      \
					 " OR left(a.content, " SUBSTRING_SCAN_CHARS    \
					 ") ILIKE " PAT ")"
#define SEARCH_ORDER "ORDER BY tier, rank DESC, created_at DESC, id"

#define LIST_PLAIN(F)                                                             \
	"SELECT json_build_object('articles', coalesce(json_agg(" ART_JSON        \
	" ORDER BY a.created_at DESC, a.id), '[]'::json)) FROM (SELECT " ART_COLS \
	" FROM knowledge_articles a WHERE " F " ORDER BY a.created_at DESC, a.id LIMIT $3) a"
#define LIST_SEARCH(F, Q, PAT)                                                                  \
	"SELECT json_build_object('articles', coalesce(json_agg(" ART_JSON                      \
	" ORDER BY a.tier, a.rank DESC, a.created_at DESC, a.id), '[]'::json)) FROM (SELECT * " \
	"FROM (" SEARCH(F, Q, PAT) ") m " SEARCH_ORDER " LIMIT $3) a"


/* '%' + q with \ % _ escaped + '%': a literal substring for ILIKE (arena). */
char *kb_like_pattern(struct arena *a, const char *q);

/*
 * Retrieval for the agents: the k (1..50) knowledge articles of product_id that best match
 * query, best first, ranked by PostgreSQL full-text search (then substring matches), limited
 * to what c->who may view. Returns a JSON array [{id, title, content, source, rank}] owned by
 * c's arena (do not put it), or NULL with c->rc set: RC_FORBIDDEN without view access,
 * RC_INVALID for a malformed id, RC_UNAUTH without a principal, a database error otherwise.
 * An empty array is a success.
 */
struct json_object *kb_retrieve(struct ctx *c, const char *product_id, const char *query, int k);

#endif
