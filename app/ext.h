/* ext.h - routes that reach outside services (issue 16): single sign-on with any OpenID
 * Connect provider (app/h_oidc.c, API.md 1.2), GitHub and Atlassian (app/h_integrations.c,
 * API.md 1.11, 1.12, 1.14) and the design routes with V0 and Lovable (app/h_design.c, API.md
 * 1.13).
 *
 * Every call leaves the server only for a configured base URL (oidc_issuer and the endpoints
 * its discovery document names, github_api_url, v0_api_url) or a user's Atlassian site whose
 * host ends in one of atlassian_allowed_hosts, through lib/httpc.h with ext_timeout_ms. A
 * failure of the outside service is answered with a fixed sentence naming the service and
 * the kind of failure (never its text, never a credential), and logged with its class and
 * HTTP status only. Everything is off until configured: single sign-on answers 404 without
 * oidc_issuer; an integration route without the user's credentials answers 400 saying which
 * to configure.
 */
#ifndef IF_APP_EXT_H
#define IF_APP_EXT_H

#include "../lib/httpc.h"
#include "app.h"

/* --- shared by the three files (app/h_integrations.c) ------------------------------------ */

/*
 * One call to an outside service with the configured timeout, its answer parsed as JSON when
 * want_json. On HTTPC_OK with want_json, *json is an arena-owned object or array (NULL when the
 * body is neither: then the result is HTTPC_E_PROTOCOL). Logs one line: service, method, status
 * class, HTTP status, duration; never the URL's query, a header or the body.
 */
enum httpc_status ext_call(struct req *r, const char *service, struct httpc_req *rq, bool want_json,
			   struct json_object **json, struct httpc_res *res);

/*
 * Records the error answer for a failed call to service ("GitHub"): auth -> 400 "<service>
 * rejected the stored credentials ...", notfound -> 404, quota -> 429 with Retry-After,
 * badreq -> 400, toolarge -> 413, server/unreachable/timeout/protocol -> 503. Returns the rc.
 */
int ext_fail(struct req *r, const char *service, enum httpc_status st, const struct httpc_res *res);

/* The caller's view of product_id (a UUID): RC_OK when the caller's level is at least want
 * (enum prod_level), else 404 "Product not found" for another tenant's or a missing product,
 * 403 "Access denied to product" for a product of the tenant without the right. */
int ext_product_access(struct req *r, const char *product_id, int want);

/* --- single sign-on (app/h_oidc.c) -------------------------------------------------------- */

int h_oidc_authorize(struct req *r); /* GET /api/auth/oidc/authorize (and mckinsey alias) */
int h_oidc_callback(struct req *r);  /* GET /api/auth/oidc/callback, /auth/mckinsey/callback */
int h_oidc_logout(struct req *r);    /* POST /api/auth/oidc/logout (and mckinsey alias) */
int h_oidc_refresh(struct req *r);   /* POST /api/auth/oidc/refresh (and mckinsey alias) */

/* --- GitHub, Confluence, Jira (app/h_integrations.c) ------------------------------------- */

extern const struct jx_field ext_verify_fields[];
extern const struct jx_field ext_github_fields[];
extern const struct jx_field ext_confluence_fields[];
extern const struct jx_field ext_publish_fields[];
extern const struct jx_field ext_workflow_fields[];

int h_ext_verify(struct req *r);             /* POST /api/integrations/verify */
int h_ext_upload_github(struct req *r);      /* POST /api/documents/upload-from-github */
int h_ext_upload_confluence(struct req *r);  /* POST /api/documents/upload-from-confluence */
int h_ext_publish_confluence(struct req *r); /* POST /api/products/{id}/publish-to-confluence */
int h_ext_workflow(struct req *r);           /* POST /api/workflows/{workflow_type} */

/* --- design (app/h_design.c) ------------------------------------------------------------- */

extern const struct jx_field design_prompt_fields[];
extern const struct jx_field design_project_fields[];
extern const struct jx_field design_chat_fields[];
extern const struct jx_field design_mockup_fields[];
extern const struct jx_field design_thumbnail_fields[];

int h_design_prompt(struct req *r);        /* POST /api/design/generate-prompt */
int h_design_prompt_stream(struct req *r); /* POST /api/design/generate-prompt/stream */
int h_design_project(struct req *r);       /* POST /api/design/create-project */
int h_design_chat(struct req *r);          /* POST /api/design/submit-chat */
int h_design_mockup(struct req *r);        /* POST /api/design/generate-mockup */
int h_design_thumbnails(struct req *r);    /* POST /api/design/generate-thumbnails */
int h_design_mockups(struct req *r);       /* GET /api/design/mockups/{product_id} */
int h_design_prototypes(struct req *r);    /* GET /api/design/prototypes/{product_id} */
int h_design_status(struct req *r);        /* GET /api/design/mockups/{product_id}/status */
int h_design_check(struct req *r);         /* GET /api/design/check-status/{product_id} */
int h_design_delete(struct req *r);        /* DELETE /api/design/mockups/{mockup_id} */

#endif
