/* h_users.c - /api/users/profile and /api/users/preferences (API.md 1.3).
 *
 * Both PUTs take any subset of their fields; a field sent as null is left unchanged (as in the
 * original), unknown members are 422 (ROUTE_STRICT), wrong types are 422, an empty update is
 * 400 "No fields to update", and the enumerations keep the original's 400 messages
 * ("Invalid persona", "Invalid theme"). preferences.preferences is a JSON object stored as
 * jsonb (the original wrote Python's str() of it, API.md 8.2 item 15).
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "session.h"

#define PREFS_JSON_MAX 65536 /* bytes of the free-form preferences object */

const struct jx_field users_profile_fields[] = {
	{"full_name", JX_STR, JX_NULLABLE, 200, NULL},
	{"persona", JX_STR, JX_NULLABLE, 64, NULL},
	{"avatar_url", JX_STR, JX_NULLABLE, 2048, NULL},
	{NULL, JX_ANY, 0, 0, NULL},
};

const struct jx_field users_preferences_fields[] = {
	{"theme", JX_STR, JX_NULLABLE, 32, NULL},
	{"language", JX_STR, JX_NULLABLE, 35, NULL},
	{"notifications_enabled", JX_BOOL, JX_NULLABLE, 0, NULL},
	{"email_notifications", JX_BOOL, JX_NULLABLE, 0, NULL},
	{"preferences", JX_OBJ, JX_NULLABLE, PREFS_JSON_MAX, NULL},
	{NULL, JX_ANY, 0, 0, NULL},
};

static const char *const themes[] = {"light", "dark", "retro", NULL};

/* BCP 47-ish: 2-3 letters, then -/_ separated alphanumeric subtags of 1-8 (the column's CHECK). */
static bool language_ok(const char *s)
{
	size_t n = 0;
	while (isalpha((unsigned char)s[n]))
		n++;
	if (n < 2 || n > 3)
		return false;
	s += n;
	while (*s) {
		if (*s != '-' && *s != '_')
			return false;
		s++;
		n = 0;
		while (isalnum((unsigned char)s[n]))
			n++;
		if (n < 1 || n > 8)
			return false;
		s += n;
	}
	return true;
}

/* An avatar is shown as an image by the frontend: only an absolute http or https URL with a
 * host (or "" to clear it), never javascript:, data: and the like; no white space or control
 * characters. (Like pydantic's AnyHttpUrl in the original's later versions.) */
static bool avatar_url_ok(const char *s)
{
	size_t skip;
	if (!*s)
		return true;
	if (strncasecmp(s, "https://", 8) == 0)
		skip = 8;
	else if (strncasecmp(s, "http://", 7) == 0)
		skip = 7;
	else
		return false;
	if (!s[skip] || s[skip] == '/' || s[skip] == '?' || s[skip] == '#')
		return false; /* no host */
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if (*c <= 0x20 || *c == 0x7f)
			return false;
	return true;
}

#define PROFILE_JSON                                                                              \
	"json_build_object('id', id, 'email', email, 'full_name', full_name, 'persona', persona," \
	" 'avatar_url', avatar_url"

int h_users_profile_get(struct req *r)
{
	const char *p[] = {r->auth.user_id, r->auth.tenant_id};
	bool found = false;
	const char *json = db_value(&r->c, &found,
				    "SELECT " PROFILE_JSON ", 'tenant_id', tenant_id,"
				    " 'created_at', created_at, 'updated_at', updated_at,"
				    " 'last_login_at', last_login_at)"
				    " FROM user_profiles WHERE id = $1 AND tenant_id = $2",
				    2, p);
	if (!json && r->rc != RC_OK)
		return r->rc;
	if (!found)
		return req_fail(r, RC_NOTFOUND, "User not found");
	return res_json_text(r, 200, json, strlen(json));
}

int h_users_profile_put(struct req *r)
{
	const char *name = jx_get_str(r->json, "full_name");
	const char *persona = jx_get_str(r->json, "persona");
	const char *avatar = jx_get_str(r->json, "avatar_url");
	if (!name && !persona && !avatar)
		return req_fail(r, RC_BADREQ, "No fields to update");
	if (persona && !jx_one_of(persona, user_personas))
		return req_fail(r, RC_BADREQ, "Invalid persona");
	if (avatar && !avatar_url_ok(avatar))
		return req_fail_field(r, "body", "avatar_url", "url_scheme",
				      "URL scheme should be 'http' or 'https'");
	const char *p[] = {r->auth.user_id, r->auth.tenant_id, name, persona, avatar};
	bool found = false;
	const char *json = db_value(&r->c, &found,
				    "UPDATE user_profiles SET full_name = COALESCE($3, full_name),"
				    " persona = COALESCE($4, persona),"
				    " avatar_url = COALESCE($5, avatar_url)"
				    " WHERE id = $1 AND tenant_id = $2"
				    " RETURNING " PROFILE_JSON ")",
				    5, p);
	if (!json && r->rc != RC_OK)
		return r->rc;
	if (!found)
		return req_fail(r, RC_NOTFOUND, "User not found");
	/* the cached /me document of this user is stale now */
	session_revoke_cached(r, r->auth.user_id, NULL);
	return res_json_text(r, 200, json, strlen(json));
}

#define PREFS_JSON                                                \
	"json_build_object('theme', theme, 'language', language," \
	" 'notifications_enabled', notifications_enabled,"        \
	" 'email_notifications', email_notifications, 'preferences', preferences)"

int h_users_preferences_get(struct req *r)
{
	const char *p[] = {r->auth.user_id};
	bool found = false;
	const char *sel = "SELECT " PREFS_JSON " FROM user_preferences WHERE user_id = $1";
	const char *json = db_value(&r->c, &found, sel, 1, p);
	if (!json && r->rc != RC_OK)
		return r->rc;
	if (!found) {
		/* the original creates the default row on first read */
		if (!db_exec(&r->c,
			     "INSERT INTO user_preferences (user_id) VALUES ($1)"
			     " ON CONFLICT (user_id) DO NOTHING",
			     1, p))
			return r->rc;
		json = db_value(&r->c, &found, sel, 1, p);
		if (!json && r->rc != RC_OK)
			return r->rc;
		if (!found)
			return req_fail(r, RC_INTERNAL, "preferences row missing after insert");
	}
	return res_json_text(r, 200, json, strlen(json));
}

int h_users_preferences_put(struct req *r)
{
	const char *theme = jx_get_str(r->json, "theme");
	const char *lang = jx_get_str(r->json, "language");
	struct json_object *ne = jx_get(r->json, "notifications_enabled");
	struct json_object *en = jx_get(r->json, "email_notifications");
	struct json_object *prefs = jx_get(r->json, "preferences");
	if (!theme && !lang && !ne && !en && !prefs)
		return req_fail(r, RC_BADREQ, "No fields to update");
	if (theme && !jx_one_of(theme, themes))
		return req_fail(r, RC_BADREQ, "Invalid theme");
	if (lang && !language_ok(lang))
		return req_fail(r, RC_BADREQ, "Invalid language");
	const char *pj = NULL;
	if (prefs) {
		size_t len = 0;
		pj = jx_str(prefs, &len);
		if (len > PREFS_JSON_MAX)
			return req_fail_field(r, "body", "preferences", "too_long",
					      "Object is too large (64 KiB at most)");
	}
	const char *p[] = {r->auth.user_id,
			   theme,
			   lang,
			   ne ? (json_object_get_boolean(ne) ? "t" : "f") : NULL,
			   en ? (json_object_get_boolean(en) ? "t" : "f") : NULL,
			   pj};
	bool found = false;
	const char *json = db_value(
		&r->c, &found,
		"INSERT INTO user_preferences AS x (user_id, theme, language, notifications_enabled,"
		" email_notifications, preferences)"
		" VALUES ($1, COALESCE($2, 'light'), COALESCE($3, 'en'), COALESCE($4::boolean, true),"
		" COALESCE($5::boolean, false), COALESCE($6::jsonb, '{}'))"
		" ON CONFLICT (user_id) DO UPDATE SET theme = COALESCE($2, x.theme),"
		" language = COALESCE($3, x.language),"
		" notifications_enabled = COALESCE($4::boolean, x.notifications_enabled),"
		" email_notifications = COALESCE($5::boolean, x.email_notifications),"
		" preferences = COALESCE($6::jsonb, x.preferences)"
		" RETURNING " PREFS_JSON,
		6, p);
	if (!json && r->rc != RC_OK)
		return r->rc;
	if (!found)
		return req_fail(r, RC_INTERNAL, "preferences upsert returned no row");
	return res_json_text(r, 200, json, strlen(json));
}
