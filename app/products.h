/* products.h - the product domain (API.md 1.4-1.6, 1.11, 1.12, 1.14): products and sharing,
 * the lifecycle "DB" API, knowledge base and uploads, conversations, progress reports and PRD
 * export, provider keys and integrations. Declared here for app/routes.c and for the agents.
 *
 * Access rules (API.md 2.4) live in the SQL of every route, never in C alone: a product is
 * visible to a user when it is in the user's tenant and the user owns it or has a share; it is
 * writable with ownership or an edit/admin share; sharing and deleting are the owner's. The
 * user id of every write is the session's (r->auth.user_id), never a body field.
 */
#ifndef IF_APP_PRODUCTS_H
#define IF_APP_PRODUCTS_H

#include "app.h"
#include "keys.h"

/* --- SQL fragments: the access predicates of API.md 2.4 ---------------------------------- */

/* Product row P is visible to user U (owner or any share). Use with P.tenant_id = <tenant>. */
#define SQL_CAN_VIEW(P, U)                                                    \
	"(" P ".user_id = " U " OR EXISTS (SELECT 1 FROM product_shares vs_ " \
	"WHERE vs_.product_id = " P ".id AND vs_.shared_with_user_id = " U "))"

/* Product row P is writable by user U (owner, or an edit or admin share). */
#define SQL_CAN_EDIT(P, U)                                                     \
	"(" P ".user_id = " U " OR EXISTS (SELECT 1 FROM product_shares es_ "  \
	"WHERE es_.product_id = " P ".id AND es_.shared_with_user_id = " U " " \
	"AND es_.permission IN ('edit', 'admin')))"

/* --- byte caps of the free-form JSON fields (serialised size; lib/jx.h max_len) ---------
 * A value over its cap is 422; README "Sessions, passwords and access" lists them. */
#define META_MAX_BYTES (64u << 10)       /* metadata, interaction_metadata, integration config */
#define FORM_DATA_MAX_BYTES (256u << 10) /* phase_submissions.form_data: a whole phase form */
#define IGNORED_MAX_BYTES 256            /* accepted-and-ignored members (user_id) */
#define HISTORY_MAX_BYTES (1u << 20)     /* ignored conversation_history of review/export */

/* --- shared helpers (app/h_products.c) --------------------------------------------------- */

/* What the caller may do with one product, most to least. */
enum prod_level {
	PL_NONE = 0,   /* not in the caller's tenant (missing or another tenant's: same answer) */
	PL_TENANT = 1, /* in the caller's tenant, neither owned nor shared */
	PL_VIEW = 2,   /* view share */
	PL_EDIT = 3,   /* edit share */
	PL_ADMIN = 4,  /* admin share */
	PL_OWNER = 5,  /* owner */
};

/* The caller's level on product_id (a checked UUID), for choosing between 404 and 403 after a
 * guarded statement touched no row. Returns an enum prod_level, or -1 after a database error
 * (already described in r). */
int prod_level(struct req *r, const char *product_id);

/* The refusal after a guarded read of product_id touched no row: the error the statement
 * recorded, else 404 "Product not found or access denied" without access (another tenant's
 * product included) or 403 "Access denied to product" with too little. Returns the code. */
int prod_refused(struct req *r, const char *product_id);
/* 200 with json when the guarded read returned it, else prod_refused. */
int prod_json_or_refuse(struct req *r, const char *json, const char *product_id);

/* Path parameter name as a UUID: the value, or NULL after a 422 (req_fail_field). */
const char *req_path_uuid(struct req *r, const char *name);

/* Optional query parameter as a UUID: 0 with *out = value or NULL (absent or empty), or
 * RC_INVALID after a 422. */
int req_query_uuid(struct req *r, const char *name, const char **out);

/* Optional integer query parameter: absent -> def; not an integer or below min -> 422; above
 * max -> max (lists are capped, not refused). 0 or RC_INVALID. */
int req_query_int(struct req *r, const char *name, int def, int min, int max, int *out);

/* 422 for a blank string field ("String should have at least 1 character"). */
int req_fail_blank(struct req *r, const char *name);

/* Product statuses (API.md 1.4): whether status is one, and the original's 400 when not
 * ("Invalid status. Must be one of: ..."; a 400 rather than a 422, as the original). */
bool products_status_ok(const char *status);
int products_status_fail(struct req *r);

/* True when s is non-NULL and has a character other than white space. */
bool str_has_text(const char *s);

/* --- products, portfolio, sharing (app/h_products.c, API.md 1.4) ------------------------- */

extern const struct jx_field product_create_fields[];
extern const struct jx_field product_update_fields[];
extern const struct jx_field product_share_fields[];

int h_products_list(struct req *r);      /* GET /api/products */
int h_products_portfolio(struct req *r); /* GET /api/products/portfolio */
int h_products_create(struct req *r);    /* POST /api/products */
int h_products_get(struct req *r);       /* GET /api/products/{id} */
int h_products_update(struct req *r);    /* PUT /api/products/{id} */
int h_products_delete(struct req *r);    /* DELETE /api/products/{id} */
int h_products_share(struct req *r);     /* POST /api/products/{id}/share */
int h_products_shares(struct req *r);    /* GET /api/products/{id}/shares */
int h_products_unshare(struct req *r);   /* DELETE /api/products/{id}/shares/{share_id} */

/* --- lifecycle "DB" API (app/h_lifecycle.c, API.md 1.5) ---------------------------------- */

extern const struct jx_field db_product_fields[];
extern const struct jx_field submission_upsert_fields[];
extern const struct jx_field submission_update_fields[];
extern const struct jx_field message_fields[];

int h_db_products_list(struct req *r);   /* GET /api/db/products */
int h_db_products_create(struct req *r); /* POST /api/db/products */
int h_submissions_list(struct req *r);   /* GET /api/db/phase-submissions */
/* GET /api/db/phase-submissions/{product_id}/{phase_id} */
int h_submissions_get(struct req *r);
int h_submissions_upsert(struct req *r); /* POST /api/db/phase-submissions */
int h_submissions_update(struct req *r); /* PUT /api/db/phase-submissions/{id} */
int h_messages_list(struct req *r);      /* GET /api/db/conversation-history */
int h_messages_append(struct req *r);    /* POST /api/db/conversation-history */

/* --- knowledge base (app/h_knowledge.c, API.md 1.5, 1.12) -------------------------------- */

extern const struct jx_field article_fields[];

int h_articles_list(struct req *r);    /* GET /api/db/knowledge-articles */
int h_articles_create(struct req *r);  /* POST /api/db/knowledge-articles */
int h_articles_delete(struct req *r);  /* DELETE /api/db/knowledge-articles/{id} */
int h_documents_upload(struct req *r); /* POST /api/documents/upload (multipart/form-data) */


/* --- conversations (app/h_conversations.c, API.md 1.6) ----------------------------------- */

int h_conversations_history(struct req *r); /* GET /api/conversations/history */

/* --- progress report, PRD review and export (app/h_reports.c, API.md 1.11) --------------- */

extern const struct jx_field review_fields[];
extern const struct jx_field export_fields[];

int h_reports_generate(struct req *r); /* POST /api/products/{id}/generate-progress-report */
int h_reports_get(struct req *r);      /* GET /api/products/{id}/progress-report */
int h_reports_review(struct req *r);   /* POST /api/products/{id}/review-prd */
int h_reports_export(struct req *r);   /* POST /api/products/{id}/export-prd */

/* --- provider keys and integrations (app/h_keys.c, API.md 1.14) -------------------------- */

/* API keys are printable ASCII without spaces; surrounding white space is dropped (pasted
 * keys often carry a newline). An arena copy, or NULL when empty or not printable. */
const char *key_clean_secret(struct arena *a, const char *s);
/* The body's "api_key" member as key_clean_secret gives it, or NULL with the 400 recorded
 * ("API key cannot be empty" / "... printable ASCII without spaces"). */
const char *key_body_secret(struct req *r);

/*
 * Seals secret (app/keys.h) and upserts it as the active row (user_id, provider) of
 * user_api_keys with metadata meta_json (a JSON object text; NULL for {}). Returns the row as
 * an arena JSON text {provider, is_configured, created_at, updated_at}, or NULL with c->rc
 * set (RC_UNAVAILABLE without a master key, a database error). The plaintext is not kept.
 */
const char *key_store(struct ctx *c, const char *user_id, const char *provider, const char *secret,
		      const char *meta_json);

extern const struct jx_field key_save_fields[];
extern const struct jx_field integration_fields[];

int h_keys_list(struct req *r);              /* GET /api/api-keys */
int h_keys_save(struct req *r);              /* POST /api/api-keys */
int h_keys_delete(struct req *r);            /* DELETE /api/api-keys/{provider} */
int h_keys_decrypt(struct req *r);           /* GET /api/api-keys/decrypt/{provider}: 410 */
int h_integrations_configure(struct req *r); /* POST /api/integrations/configure */
int h_integrations_status(struct req *r);    /* GET /api/integrations/status */

#endif
