/* design.h - the V0 follow-up of a design mockup (issue 16 item 3), shared by the design routes
 * (app/h_design.c: a status route asks V0 when a client asks) and ideaforge-agentd (app/agentd.c:
 * the durable follow-up, whether or not a client asks): what V0's chat answer means for a
 * mockup, and the SQL that records it (sql/0005_external.sql, sql/0009_design_follow.sql).
 *
 * project_status only takes the values of the schema's CHECK: in_progress while V0 works,
 * completed or failed from V0's answer, timeout once follow_until has passed. Nothing V0 sends
 * is stored but its status word and two https URLs, checked; a failure is stored as one of our
 * fixed sentences (metadata.follow_error), never V0's text.
 */
#ifndef IF_APP_DESIGN_H
#define IF_APP_DESIGN_H

#include <json-c/json.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "../lib/ctx.h"

/* What GET /v1/chats/{id} says of a generation. */
struct design_chat {
	const char *status;   /* "completed", "failed" or "in_progress" (project_status values) */
	const char *demo_url; /* the generated app (latestVersion.demoUrl), or NULL */
	const char *web_url;  /* the chat's page (webUrl), or NULL */
};

/* An https URL member key of o (at most 2048 bytes, no space, quote or angle bracket), copied
 * into arena a; NULL when absent or refused. */
const char *design_v0_url(struct arena *a, struct json_object *o, const char *key);

/* Reads V0's chat object o (borrowed; may be NULL: in_progress) into *out (strings in a). */
void design_chat_read(struct arena *a, struct json_object *o, struct design_chat *out);

/*
 * Records a check's answer ch on mockup id: project_status, status_checked_at = now(),
 * status_checks + 1, check_failures = 0, the URLs into metadata (demo_url, web_url); while
 * in_progress the next check is due in poll_s seconds, else follow_until is cleared. claim
 * NULL: unconditional (a status route); else only while the row is in_progress and still
 * holds that claim (agentd). *done tells whether the row was written. RC_OK or the error
 * (c->rc, c->detail).
 */
int design_record(struct ctx *c, const char *id, const struct design_chat *ch, int64_t poll_s,
		  const char *claim, bool *done);

/* --- ideaforge-agentd --------------------------------------------------------------------- */

/* Marks timeout every generation followed past its follow_until (rows locked by another
 * agentd's claim are left for the next round). The result lists the ids; NULL on error. */
PGresult *design_follow_expire(struct ctx *c);

/*
 * Claims at most n due generations (in_progress, a V0 chat, follow_until ahead, next_check_at
 * come) for lease_s seconds, FOR UPDATE SKIP LOCKED. Columns: id, user_id, tenant_id,
 * v0_chat_id, claim (the new next_check_at, to pass back), check_failures. NULL on error.
 */
PGresult *design_follow_claim(struct ctx *c, int n, int64_t lease_s);

/* A check without a usable answer (V0 429/5xx/unreachable/timeout, or no key to ask with):
 * status_checked_at, status_checks + 1, check_failures + 1, next check in delay_s seconds.
 * Only while the claim holds. RC_OK or the error. */
int design_follow_retry(struct ctx *c, const char *id, const char *claim, int64_t delay_s);

/* A check V0 refused for good (its 401/403/404): failed, with message (one of our fixed
 * sentences) in metadata.follow_error. Only while the claim holds. RC_OK or the error. */
int design_follow_fail(struct ctx *c, const char *id, const char *claim, const char *message);

/* Gives a claim back (agentd stopping): the row is due at once for another agentd. */
int design_follow_release(struct ctx *c, const char *id, const char *claim);

#endif
