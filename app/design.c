/* design.c - the V0 follow-up of a design mockup (see design.h). */
#include "design.h"

#include <stdio.h>
#include <string.h>

#include "../lib/arena.h"
#include "../lib/db.h"
#include "../lib/jx.h"

#define URL_MAX 2048

const char *design_v0_url(struct arena *a, struct json_object *o, const char *key)
{
	const char *s = jx_get_str(o, key);
	if (!s || strncmp(s, "https://", 8) != 0 || strlen(s) > URL_MAX || strpbrk(s, " \"'<>\r\n"))
		return NULL;
	return arena_strdup(a, s);
}

void design_chat_read(struct arena *a, struct json_object *o, struct design_chat *out)
{
	struct json_object *lv = jx_get(o, "latestVersion");
	const char *vs = jx_get_str(lv, "status");
	out->status = vs && strcmp(vs, "completed") == 0 ? "completed"
		      : vs && strcmp(vs, "failed") == 0  ? "failed"
							 : "in_progress";
	out->demo_url = design_v0_url(a, lv, "demoUrl");
	out->web_url = design_v0_url(a, o, "webUrl");
}

static void secs(char out[24], int64_t s)
{
	snprintf(out, 24, "%lld", (long long)s);
}

/* "the row still holds the claim": claim NULL (a status route) always does */
#define HOLDS_CLAIM(n)                                                       \
	"($" n "::text IS NULL OR (next_check_at = $" n "::timestamptz AND " \
	"project_status = 'in_progress'))"

int design_record(struct ctx *c, const char *id, const struct design_chat *ch, int64_t poll_s,
		  const char *claim, bool *done)
{
	char poll[24];
	secs(poll, poll_s);
	const char *p[] = {id, ch->status, ch->demo_url, ch->web_url, poll, claim};
	/* clang-format off */
	PGresult *res = db_exec(
		c,
		"UPDATE design_mockups SET project_status = $2, status_checked_at = now(), "
		"status_checks = status_checks + 1, check_failures = 0, "
		"follow_until = CASE WHEN $2 = 'in_progress' THEN follow_until END, "
		"next_check_at = CASE WHEN $2 = 'in_progress' THEN now() + "
		"make_interval(secs => $5::int) END, "
		"metadata = (metadata - 'follow_error') || jsonb_strip_nulls("
		"jsonb_build_object('demo_url', $3::text, 'web_url', $4::text)) "
		"WHERE id = $1 AND " HOLDS_CLAIM("6"),
		6, p);
	/* clang-format on */
	if (!res)
		return c->rc;
	*done = strcmp(PQcmdTuples(res), "1") == 0;
	return RC_OK;
}

PGresult *design_follow_expire(struct ctx *c)
{
	return db_exec(
		c,
		"UPDATE design_mockups SET project_status = 'timeout', follow_until = NULL, "
		"next_check_at = NULL WHERE id IN (SELECT id FROM design_mockups "
		"WHERE project_status IN ('pending', 'in_progress') AND follow_until < now() "
		"FOR UPDATE SKIP LOCKED) RETURNING id",
		0, NULL);
}

PGresult *design_follow_claim(struct ctx *c, int n, int64_t lease_s)
{
	char lim[24], lease[24];
	secs(lim, n);
	secs(lease, lease_s);
	const char *p[] = {lim, lease};
	return db_exec(
		c,
		"UPDATE design_mockups m SET next_check_at = now() + "
		"make_interval(secs => $2::int) FROM (SELECT id FROM design_mockups "
		"WHERE project_status = 'in_progress' AND v0_chat_id IS NOT NULL AND "
		"provider = 'v0' AND follow_until > now() AND "
		"(next_check_at IS NULL OR next_check_at <= now()) "
		"ORDER BY next_check_at NULLS FIRST LIMIT $1::int FOR UPDATE SKIP LOCKED) due "
		"WHERE m.id = due.id RETURNING m.id, m.user_id, m.tenant_id, m.v0_chat_id, "
		"m.next_check_at::text AS claim, m.check_failures",
		2, p);
}

int design_follow_retry(struct ctx *c, const char *id, const char *claim, int64_t delay_s)
{
	char delay[24];
	secs(delay, delay_s);
	const char *p[] = {id, claim, delay};
	if (!db_exec(c,
		     "UPDATE design_mockups SET status_checked_at = now(), "
		     "status_checks = status_checks + 1, check_failures = check_failures + 1, "
		     "next_check_at = now() + make_interval(secs => $3::int) "
		     "WHERE id = $1 AND " HOLDS_CLAIM("2"),
		     3, p))
		return c->rc;
	return RC_OK;
}

int design_follow_fail(struct ctx *c, const char *id, const char *claim, const char *message)
{
	const char *p[] = {id, claim, message};
	if (!db_exec(c,
		     "UPDATE design_mockups SET project_status = 'failed', follow_until = NULL, "
		     "next_check_at = NULL, status_checked_at = now(), "
		     "status_checks = status_checks + 1, "
		     "metadata = metadata || jsonb_build_object('follow_error', $3::text) "
		     "WHERE id = $1 AND " HOLDS_CLAIM("2"),
		     3, p))
		return c->rc;
	return RC_OK;
}

int design_follow_release(struct ctx *c, const char *id, const char *claim)
{
	const char *p[] = {id, claim};
	if (!db_exec(c,
		     "UPDATE design_mockups SET next_check_at = now() "
		     "WHERE id = $1 AND " HOLDS_CLAIM("2"),
		     2, p))
		return c->rc;
	return RC_OK;
}
