/* h_agents.c - the agent roster as the UI reads it (API.md 1.1: /api/agents, capabilities,
 * by-phase), from the one table of app/agents.c: no duplicates, nothing hard-coded twice. */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "agents.h"
#include "ai_routes.h"

static struct json_object *str(const char *s)
{
	return json_object_new_string(s ? s : "");
}

/* GET /api/agents: {agents:[{type, name, role}], count} */
int h_agents_list(struct req *r)
{
	struct json_object *arr = json_object_new_array();
	for (size_t i = 0; i < agent_roster_n; i++) {
		const struct agent_def *a = &agent_roster[i];
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "type", str(a->key));
		json_object_object_add(o, "name", str(a->name));
		json_object_object_add(o, "role", str(a->role));
		json_object_array_add(arr, o);
	}
	struct json_object *out = json_object_new_object();
	json_object_object_add(out, "agents", arr);
	json_object_object_add(out, "count", json_object_new_int((int)agent_roster_n));
	return res_json(r, 200, out);
}

/* GET /api/agents/capabilities: {capabilities:[{agent_type, capabilities, confidence_scores,
 * description}], count}; the description is the first 200 characters of the system prompt. */
int h_agents_capabilities(struct req *r)
{
	struct json_object *arr = json_object_new_array();
	for (size_t i = 0; i < agent_roster_n; i++) {
		const struct agent_def *a = &agent_roster[i];
		struct json_object *o = json_object_new_object(), *caps = json_object_new_array();
		for (const char *const *c = a->capabilities; c && *c; c++)
			json_object_array_add(caps, str(*c));
		char desc[208];
		size_t n = strlen(a->system_prompt);
		snprintf(desc, sizeof(desc), "%.200s%s", a->system_prompt, n > 200 ? "..." : "");
		json_object_object_add(o, "agent_type", str(a->key));
		json_object_object_add(o, "capabilities", caps);
		json_object_object_add(o, "confidence_scores", json_object_new_object());
		json_object_object_add(o, "description", str(desc));
		json_object_array_add(arr, o);
	}
	struct json_object *out = json_object_new_object();
	json_object_object_add(out, "capabilities", arr);
	json_object_object_add(out, "count", json_object_new_int((int)agent_roster_n));
	return res_json(r, 200, out);
}

static bool shown_in(const struct agent_def *a, const char *phase)
{
	for (const char *const *p = a->phases; p && *p; p++)
		if (!phase || strcmp(*p, phase) == 0)
			return true;
	return false;
}

/* GET /api/agents/by-phase?phase_name=: the agents a phase's screen shows (API.md 5.4),
 * {phase, agents:[{role, name, description, icon, isActive}], count}; without a phase, every
 * agent some phase shows; an unknown phase, none. */
int h_agents_by_phase(struct req *r)
{
	const char *phase = req_query(r, "phase_name");
	if (phase && !*phase)
		phase = NULL;
	struct json_object *arr = json_object_new_array();
	int n = 0;
	for (size_t i = 0; i < agent_roster_n; i++) {
		const struct agent_def *a = &agent_roster[i];
		if (!shown_in(a, phase))
			continue;
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "role", str(a->key));
		json_object_object_add(o, "name", str(a->name));
		json_object_object_add(o, "description", str(a->role));
		json_object_object_add(o, "icon", str(a->icon));
		json_object_object_add(o, "isActive", json_object_new_boolean(1));
		json_object_array_add(arr, o);
		n++;
	}
	struct json_object *out = json_object_new_object();
	json_object_object_add(out, "phase", phase ? str(phase) : NULL);
	json_object_object_add(out, "agents", arr);
	json_object_object_add(out, "count", json_object_new_int(n));
	return res_json(r, 200, out);
}
