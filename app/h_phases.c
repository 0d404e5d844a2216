/* h_phases.c - the six lifecycle phases (API.md 1.5, GET /api/db/phases): public reference
 * data, built as JSON by PostgreSQL in one round trip. Like every list, bounded (100 rows). */
#include <string.h>

#include "app.h"

int h_phases_list(struct req *r)
{
	const char *json = db_value(
		&r->c, NULL,
		"SELECT json_build_object('phases', coalesce(json_agg(json_build_object("
		"'id', id, 'phase_name', phase_name, 'phase_order', phase_order, "
		"'description', description, 'icon', icon, 'required_fields', required_fields, "
		"'template_prompts', template_prompts, 'created_at', created_at) "
		"ORDER BY phase_order), '[]'::json)) FROM (SELECT * FROM product_lifecycle_phases "
		"ORDER BY phase_order LIMIT 100) f",
		0, NULL);
	if (!json)
		return r->rc != RC_OK ? (int)r->rc
				      : req_fail(r, RC_INTERNAL, "phases query returned nothing");
	return res_json_text(r, 200, json, strlen(json));
}
