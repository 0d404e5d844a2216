/* agents.h - the agent roster and the coordinator's plan (API.md 5.2 to 5.4).
 *
 * The roster is a table (app/agents.c): key, name, role, tier, icon, capabilities, phases and
 * a system prompt of our own for each agent. The coordinator picks a primary agent and the
 * supporting agents for a message; ideaforge-agentd runs the supporting agents in parallel
 * and streams the primary agent's answer, which is the answer (complete.response).
 */
#ifndef IF_APP_AGENTS_H
#define IF_APP_AGENTS_H

#include <stddef.h>

#define AGENT_MAX_SUPPORTING 4

struct agent_def {
	const char *key;                 /* "research": agent_type, role */
	const char *name;                /* "Research Agent" */
	const char *role;                /* one line: what it does */
	const char *tier;                /* "fast", "standard" or "premium" */
	const char *icon;                /* UI icon (API.md 5.4) */
	const char *const *capabilities; /* NULL-terminated */
	const char *const *phases;       /* the phases whose screen shows it (API.md 5.4),
					  * NULL-terminated; empty for agents reached by routing */
	const char *system_prompt;       /* its instructions to the model */
	int max_tokens;                  /* answer budget */
};

extern const struct agent_def agent_roster[];
extern const size_t agent_roster_n;

/* The agent of key (also "multi_agent" aliases), or NULL. */
const struct agent_def *agent_find(const char *key);

/* The coordinator's choice for one message. */
struct agent_plan {
	const struct agent_def *primary;                          /* answers */
	const struct agent_def *supporting[AGENT_MAX_SUPPORTING]; /* consulted, in parallel */
	int nsupporting;                                          /* used entries */
};

/*
 * Plans the agents for query in phase_name (may be NULL). primary_key and supporting keys
 * (may be NULL / n = 0) given by the client win when they name roster agents; unknown keys
 * are skipped. The primary never appears among the supporting agents. Always succeeds.
 */
void agent_plan_for(struct agent_plan *out, const char *query, const char *phase_name,
		    const char *primary_key, const char *const *supporting, size_t n);

/* The single expert of the phase-form help (API.md 1.9), from the phase name. */
const struct agent_def *agent_for_phase_help(const char *phase_name);

#endif
