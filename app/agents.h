/* agents.h - the agent roster and the coordinator's plan (API.md 5.2 to 5.4).
 *
 * The roster is a table (app/agents.c): key, name, role, tier, icon, capabilities, phases and
 * a system prompt of our own for each agent. The coordinator picks a primary agent and the
 * supporting agents for a message; ideaforge-agentd runs the supporting agents in parallel
 * and streams the primary agent's answer, which is the answer (complete.response).
 */
#ifndef IF_APP_AGENTS_H
#define IF_APP_AGENTS_H

#include <stdbool.h>
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

/* Coordination modes (API.md 1.7, 5.3 step 5; app/agentd.c runs them). */
enum agent_mode {
	AM_ENHANCED,      /* enhanced_collaborative: supporting agents in parallel, then primary */
	AM_COLLABORATIVE, /* supporting agents one after another (each sees the earlier
			   * insights), then the primary */
	AM_SEQUENTIAL,    /* a chain: each agent builds on the previous answer; last = primary */
	AM_PARALLEL,      /* every agent at once on the same message; the primary's answer wins */
	AM_DEBATE,        /* two agents answer, each critiques the other, the primary synthesizes */
	AM__MAX
};
extern const char *const agent_mode_names[AM__MAX];

/* The mode named s; AM_COLLABORATIVE (the schema's default) for NULL or an unknown name. */
enum agent_mode agent_mode_parse(const char *s);

/* The coordinator's choice for one message. */
struct agent_plan {
	const struct agent_def *primary;                          /* answers */
	const struct agent_def *supporting[AGENT_MAX_SUPPORTING]; /* consulted */
	int nsupporting;                                          /* used entries */
	const struct agent_def *debaters[2]; /* debate: the two who answer and critique */
	const char *phase;   /* the phase given or detected (static or borrowed), or NULL */
	bool phase_detected; /* phase came from the words of the conversation */
};

/*
 * Plans the agents for query (API.md 5.3 steps 2 to 4). phase_name is the client's (may be
 * NULL: then the phase is detected from query and the recent messages, newest first, n of
 * them, by keyword scores of at least 2.0). primary_key and supporting keys (may be NULL /
 * n = 0) given by the client win when they name roster agents; unknown keys are skipped.
 * Otherwise the primary is the best-scored agent (0.5 for the phase's agent + 0.4 x keyword
 * confidence + 0.3 x the share of its phase's words, x 0.3 for another phase's agent); a
 * confirmation ("yes", "ok", "go ahead"...) in a known phase goes to the phase's agent. The
 * supporting agents: rag always, plus the agents the phase or the words call for. The primary
 * never appears among the supporting agents. Always succeeds.
 */
void agent_plan_for(struct agent_plan *out, const char *query, const char *phase_name,
		    const char *const *recent, size_t nrecent, const char *primary_key,
		    const char *const *supporting, size_t n);

/* The NLU gate (API.md 5.3 step 1, 8.2 item 10). */
enum agent_nlu {
	NLU_PROCEED, /* a question, a request, anything with content: run the agents */
	NLU_EMPTY,   /* nothing but white space (the API refuses it with 422) */
	NLU_DECLINE, /* a bare negative ("no", "skip", "not now"...): the guidance, no LLM */
};
enum agent_nlu agent_nlu_gate(const char *query);

/* The guidance answered to a declined message (static text), for phase (may be NULL). */
const char *agent_guidance(const char *phase);

/* The pseudo-agent that answers declined messages (not in the roster). */
extern const struct agent_def agent_coordinator;

/* The single expert of the phase-form help (API.md 1.9), from the phase name. */
const struct agent_def *agent_for_phase_help(const char *phase_name);

#endif
