/* agents_stub.c - THROWAWAY minimal app/agents.h so that ideaforge-agentd links before
 * app/agents.c lands (the lead deletes this file at merge). A small roster and the simplest
 * plan: the client's choice when it names roster agents, else research + analysis. */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "agents.h"

static const char *const none[] = {NULL};

#define A(k, n, t, prompt)                                                                        \
	{ .key = k, .name = n, .role = n, .tier = t, .icon = "", .capabilities = none,              \
	  .phases = none, .system_prompt = prompt, .max_tokens = 0 }

const struct agent_def agent_roster[] = {
	A("ideation", "Ideation Agent", "fast", "You help product teams brainstorm ideas."),
	A("research", "Research Agent", "fast", "You research markets, competitors and trends."),
	A("analysis", "Analysis Agent", "fast", "You analyse feasibility, risks and gaps."),
	A("requirements", "Requirements Agent", "standard", "You write product requirements."),
	A("prd_authoring", "PRD Authoring Agent", "standard", "You write PRD documents."),
	A("strategy", "Strategy Agent", "standard", "You plan roadmaps and go-to-market."),
	A("validation", "Validation Agent", "fast", "You review content for quality."),
	A("summary", "Summary Agent", "fast", "You summarise conversations."),
};
const size_t agent_roster_n = sizeof(agent_roster) / sizeof(agent_roster[0]);

const struct agent_def *agent_find(const char *key)
{
	if (!key)
		return NULL;
	for (size_t i = 0; i < agent_roster_n; i++)
		if (strcmp(agent_roster[i].key, key) == 0)
			return &agent_roster[i];
	return NULL;
}

void agent_plan_for(struct agent_plan *out, const char *query, const char *phase_name,
		    const char *primary_key, const char *const *supporting, size_t n)
{
	(void)query;
	(void)phase_name;
	memset(out, 0, sizeof(*out));
	out->primary = agent_find(primary_key);
	if (!out->primary)
		out->primary = agent_find("research");
	static const char *const def[] = {"analysis", "ideation"};
	if (!supporting || n == 0) {
		supporting = def;
		n = 2;
	}
	for (size_t i = 0; i < n && out->nsupporting < AGENT_MAX_SUPPORTING; i++) {
		const struct agent_def *a = agent_find(supporting[i]);
		bool dup = a == out->primary;
		for (int j = 0; j < out->nsupporting; j++)
			dup |= out->supporting[j] == a;
		if (a && !dup)
			out->supporting[out->nsupporting++] = a;
	}
}

const struct agent_def *agent_for_phase_help(const char *phase_name)
{
	const char *p = phase_name ? phase_name : "";
	if (strcasestr(p, "ideation"))
		return agent_find("ideation");
	if (strcasestr(p, "research") || strcasestr(p, "market"))
		return agent_find("research");
	if (strcasestr(p, "requirement"))
		return agent_find("requirements");
	if (strcasestr(p, "design"))
		return agent_find("strategy");
	if (strcasestr(p, "development"))
		return agent_find("prd_authoring");
	return agent_find("ideation");
}
