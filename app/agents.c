/* agents.c - the agent roster (API.md 5.2, 5.4) and the coordinator's plan (API.md 5.3).
 *
 * The prompts are ours: concrete, phase-specific, no coaching filler. Agents that need an
 * outside service (v0, github_mcp, atlassian_mcp) write their prompts and plans and say
 * plainly that the live integration is not connected in this installation.
 */
#include "agents.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#define LIST(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NONE ((const char *const[]){NULL})

/* Shared by every prompt: what the product team reads. */
#define HOUSE_RULES                                                                             \
	" Write for a product team: specific, numbered where order matters, with assumptions "  \
	"stated as assumptions. Use the product's knowledge-base excerpts and earlier phase "   \
	"answers when they are given, and say which ones you used. Never invent data sources, " \
	"customers or figures: mark estimates as estimates with their basis. No pleasantries."

const struct agent_def agent_roster[] = {
	{"ideation", "Ideation Agent", "brainstorming, problem statements, concept generation",
	 "fast", "\U0001F4A1", LIST("brainstorming", "problem_framing", "concept_generation"),
	 LIST("Ideation", "Design"),
	 "You are the ideation agent of a product team in the Ideation phase. Turn the idea into a "
	 "sharp problem statement (who has the problem, when, what it costs them today), three to "
	 "five distinct solution concepts with the riskiest assumption of each, and the one concept "
	 "you would test first with the cheapest experiment that could disprove it." HOUSE_RULES,
	 2000},
	{"research", "Research Agent", "market size, competitors, trends", "fast", "\U0001F52C",
	 LIST("market_research", "competitive_analysis", "trend_analysis"),
	 LIST("Market Research", "Ideation"),
	 "You are the market research agent. Give a top-down and a bottom-up market size (TAM, "
	 "SAM, SOM) with every input and its source or stated assumption, a competitor table "
	 "(name, segment, pricing model, strength, gap we can use), three trends with evidence, "
	 "and the open questions that primary research must answer." HOUSE_RULES,
	 2000},
	{"analysis", "Analysis Agent", "SWOT, feasibility, risk and gap analysis", "fast",
	 "\U0001F4CA", LIST("swot", "feasibility", "risk_analysis", "gap_analysis"),
	 LIST("Market Research", "Requirements"),
	 "You are the analysis agent. Produce a SWOT whose items are specific to this product, a "
	 "feasibility check (technical, operational, economic) with a verdict per dimension, and "
	 "a risk register: risk, likelihood 1-5, impact 1-5, mitigation, owner role." HOUSE_RULES,
	 2000},
	{"requirements", "Requirements Agent",
	 "functional and non-functional requirements, user stories, scope", "standard",
	 "\U0001F4DD",
	 LIST("functional_requirements", "non_functional_requirements", "user_stories", "moscow"),
	 NONE,
	 "You are the requirements agent. Write functional requirements as FR-01, FR-02 ... each "
	 "testable; non-functional requirements as NFR-01 ... each with a numeric target and how it "
	 "is measured (e.g. p95 latency under 300 ms at 200 concurrent users; 99.9 % monthly "
	 "availability); user stories as 'As a <role>, I want <capability> so that <outcome>' with "
	 "Given/When/Then acceptance criteria; a MoSCoW scope; constraints; and the requirements "
	 "still ambiguous, each with the question that resolves it." HOUSE_RULES,
	 4000},
	{"prd_authoring", "PRD Authoring Agent", "complete product requirements documents",
	 "standard", "\U0001F4C4", LIST("prd_writing", "documentation", "templates"),
	 LIST("Requirements", "Development Planning"),
	 "You are the PRD authoring agent. Write or extend the PRD with these sections: overview "
	 "and problem, goals and non-goals, personas, user journeys, functional requirements "
	 "(FR-xx), non-functional requirements (NFR-xx with numeric targets), success metrics with "
	 "baselines and targets, release plan, dependencies, risks, open questions. Keep earlier "
	 "decisions unless the new input changes them, and say what changed." HOUSE_RULES,
	 4000},
	{"strategy", "Strategy Agent", "roadmap, go-to-market, business model, positioning",
	 "standard", "\U0001F3AF", LIST("roadmap", "go_to_market", "business_model", "positioning"),
	 NONE,
	 "You are the strategy agent. Give a positioning statement (for whom, the need, the "
	 "category, the key benefit, unlike which alternative), the business model with pricing "
	 "hypotheses, a go-to-market plan (segment first, channels, launch sequence, the metric "
	 "that says it works), and a roadmap in three horizons with exit criteria." HOUSE_RULES,
	 4000},
	{"validation", "Validation Agent", "reviews and quality checks of content", "fast",
	 "\u2705", LIST("review", "quality_check", "consistency"), NONE,
	 "You are the validation agent. Review the given content for completeness, internal "
	 "consistency, testability and unsupported claims. List findings by severity (blocker, "
	 "major, minor) with the exact passage and a concrete fix; end with a pass/fail verdict "
	 "per section." HOUSE_RULES,
	 2000},
	{"summary", "Summary Agent", "summaries of sessions and phases", "fast", "\U0001F4CB",
	 LIST("summarization", "decision_log"), LIST("Go-to-Market"),
	 "You are the summary agent. Summarise the material in at most ten bullets: decisions "
	 "taken, open questions, next actions with owner roles. Keep numbers and names exactly as "
	 "given." HOUSE_RULES,
	 1500},
	{"scoring", "Product Scoring Agent", "weighted product score and recommendations", "fast",
	 "\u2B50", LIST("scoring", "success_probability", "recommendations"), LIST("Go-to-Market"),
	 "You are the product scoring agent. Answer with strict JSON only, no prose around it: "
	 "{\"overall_score\": 0-100, \"dimensions\": {\"market_opportunity\": {\"score\": 0-100, "
	 "\"weight\": 25, \"rationale\": \"...\"}, \"user_value\": {... \"weight\": 25}, "
	 "\"business_value\": {... \"weight\": 20}, \"technical_feasibility\": {... \"weight\": 15}, "
	 "\"risk\": {... \"weight\": 15}}, \"success_probability\": 0-1, \"success_factors\": [...], "
	 "\"risk_factors\": [...], \"recommendations\": [...]}. overall_score is the weighted mean "
	 "of the dimension scores.",
	 1500},
	{"export", "Export Agent", "completeness review and PRD generation for export", "standard",
	 "\U0001F4E4", LIST("completeness_review", "prd_export"), LIST("Go-to-Market"),
	 "You are the export agent. Score each lifecycle phase's completeness 0-100 with the "
	 "missing sections named, then produce the PRD for export in Markdown with the standard "
	 "sections, marking every gap as TODO rather than filling it with invented content." HOUSE_RULES,
	 4000},
	{"v0", "V0 Agent", "prompts for V0 UI generation", "fast", "\U0001F3A8",
	 LIST("ui_prompts", "design_generation"), LIST("Design"),
	 "You are the V0 design agent. Write a V0 prompt for the screens this product needs: "
	 "layout, components, states (empty, loading, error), data shown, accessibility "
	 "requirements. The live V0 integration is not connected in this installation: say so in "
	 "one line, and give the prompt ready to paste into v0.dev." HOUSE_RULES,
	 2000},
	{"lovable", "Lovable Agent", "prompts and build links for Lovable", "fast", "\U0001F3AD",
	 LIST("ui_prompts", "lovable_links"), LIST("Design"),
	 "You are the Lovable design agent. Write a Lovable build prompt (at most 50 000 "
	 "characters) describing the app: pages, data model, components, behaviour. End with the "
	 "link https://lovable.dev/?autosubmit=true#prompt=<the prompt, URL-encoded>." HOUSE_RULES,
	 2000},
	{"github_mcp", "GitHub MCP Agent", "repository context for planning", "fast", "\U0001F419",
	 LIST("repository_context"), LIST("Development Planning"),
	 "You are the GitHub agent. The live GitHub integration is not connected in this "
	 "installation: say so in one line. Then give the plan you would follow: which "
	 "repositories, files and issues you would read to answer, and what you would look for "
	 "in each." HOUSE_RULES,
	 1500},
	{"atlassian_mcp", "Atlassian MCP Agent", "Confluence and Jira planning", "fast",
	 "\U0001F537", LIST("confluence", "jira"), LIST("Development Planning"),
	 "You are the Atlassian agent. The live Confluence and Jira integration is not connected "
	 "in this installation: say so in one line. Then draft what would be published: the "
	 "Confluence page outline, and Jira epics and stories (title, description, acceptance "
	 "criteria, estimate in points)." HOUSE_RULES,
	 2000},
	{"rag", "RAG Knowledge Agent", "answers from the product's knowledge base", "fast",
	 "\U0001F4DA", LIST("knowledge_retrieval", "citations"),
	 LIST("Ideation", "Market Research", "Requirements", "Design", "Development Planning",
	      "Go-to-Market"),
	 "You are the knowledge agent. Answer only from the knowledge-base excerpts given, citing "
	 "each by its title in brackets. When the excerpts do not answer the question, say exactly "
	 "that and name the document that would.",
	 1500},
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

const struct agent_def agent_coordinator = {"coordinator",
					    "Coordinator",
					    "routes messages to the agents",
					    "fast",
					    "\U0001F9ED",
					    LIST("routing"),
					    NONE,
					    "",
					    0};

const char *const agent_mode_names[AM__MAX] = {
	[AM_ENHANCED] = "enhanced_collaborative",
	[AM_COLLABORATIVE] = "collaborative",
	[AM_SEQUENTIAL] = "sequential",
	[AM_PARALLEL] = "parallel",
	[AM_DEBATE] = "debate",
};

enum agent_mode agent_mode_parse(const char *s)
{
	for (int m = 0; s && m < AM__MAX; m++)
		if (strcmp(s, agent_mode_names[m]) == 0)
			return (enum agent_mode)m;
	return AM_COLLABORATIVE;
}

/* Case-insensitive substring. */
static bool has(const char *s, const char *word)
{
	return s && strcasestr(s, word) != NULL;
}

/* ---------------------------------------------------------------- phases and words */

/* The six lifecycle phases (API.md 2.2): the agent that leads each (API.md 5.3 step 3), the
 * words that say a message is about it, and the agents its work calls for beside the lead. */
static const struct phase_def {
	const char *name;           /* product_lifecycle_phases.phase_name */
	const char *const *match;   /* substrings of a phase name that mean this phase */
	const char *agent;          /* its lead agent */
	const char *const *words;   /* words of a message about it */
	const char *const *helpers; /* supporting agents the phase calls for */
} phases[] = {
	{"Ideation", LIST("ideation", "idea"), "ideation",
	 LIST("idea", "brainstorm", "concept", "problem", "solution", "innovat", "pain point"),
	 LIST("research")},
	{"Market Research", LIST("research", "market"), "research",
	 LIST("market", "competitor", "competition", "trend", "tam", "segment", "industry"),
	 LIST("analysis")},
	{"Requirements", LIST("requirement"), "requirements",
	 LIST("requirement", "user stor", "acceptance", "functional", "feature", "constraint",
	      "nfr"),
	 LIST("analysis")},
	{"Design", LIST("design"), "prd_authoring",
	 LIST("design", "wireframe", "mockup", "prototype", "user flow", "ux", "screen"),
	 LIST("validation")},
	{"Development Planning", LIST("development", "planning", "prd"), "prd_authoring",
	 LIST("milestone", "timeline", "sprint", "resource", "development", "estimate", "backlog"),
	 LIST("analysis")},
	{"Go-to-Market",
	 LIST("go-to-market", "go to market", "gtm", "launch", "strategy", "marketing"), "strategy",
	 LIST("launch", "go-to-market", "gtm", "marketing", "channel", "pricing", "positioning"),
	 LIST("research")},
};
#define NPHASES (sizeof(phases) / sizeof(phases[0]))

/* The words that call for each agent (its keyword confidence, API.md 5.3 step 3). */
static const struct {
	const char *agent;
	const char *const *words;
} agent_words[] = {
	{"ideation", LIST("idea", "brainstorm", "concept", "problem statement", "innovat")},
	{"research",
	 LIST("market", "competitor", "competition", "trend", "tam ", "industry", "segment")},
	{"analysis", LIST("swot", "risk", "feasib", "gap analysis", "analy")},
	{"requirements", LIST("requirement", "user stor", "acceptance criteria", "functional",
			      "nfr", "given/when/then")},
	{"prd_authoring",
	 LIST("prd", "product requirements document", "specification", "document")},
	{"strategy", LIST("strategy", "roadmap", "pricing", "go-to-market", "gtm", "positioning",
			  "business model", "launch")},
	{"validation", LIST("validat", "review", "quality", "consisten", "check my")},
	{"summary", LIST("summar", "recap", "tl;dr")},
	{"scoring", LIST("score", "scoring", "success probability", "rate my")},
	{"export", LIST("export")},
	{"v0", LIST("v0", "ui generation", "generate ui", "generate the ui")},
	{"lovable", LIST("lovable")},
	{"github_mcp", LIST("github", "repository", "repo ")},
	{"atlassian_mcp", LIST("confluence", "jira", "publish")},
};
#define NAGENT_WORDS (sizeof(agent_words) / sizeof(agent_words[0]))

static int count_hits(const char *text, const char *const *words)
{
	int n = 0;
	for (const char *const *w = words; *w; w++)
		n += has(text, *w);
	return n;
}

static int list_len(const char *const *l)
{
	int n = 0;
	while (l[n])
		n++;
	return n;
}

/* The phase a phase name means, or NULL. */
static const struct phase_def *phase_of(const char *name)
{
	if (!name || !*name)
		return NULL;
	for (size_t i = 0; i < NPHASES; i++)
		if (strcasecmp(name, phases[i].name) == 0)
			return &phases[i];
	/* the longest match wins: "go to market" is Go-to-Market, not Market Research */
	const struct phase_def *best = NULL;
	size_t best_len = 0;
	for (size_t i = 0; i < NPHASES; i++)
		for (const char *const *m = phases[i].match; *m; m++)
			if (has(name, *m) && strlen(*m) > best_len) {
				best = &phases[i];
				best_len = strlen(*m);
			}
	return best;
}

/* The phase whose lead agent is a, or NULL (agents that lead no phase). */
static const struct phase_def *home_phase(const struct agent_def *a)
{
	for (size_t i = 0; i < NPHASES; i++)
		if (strcmp(phases[i].agent, a->key) == 0)
			return &phases[i];
	return NULL;
}

static const char *const no_words[] = {NULL};

static const char *const *words_of(const struct agent_def *a)
{
	for (size_t i = 0; i < NAGENT_WORDS; i++)
		if (strcmp(agent_words[i].agent, a->key) == 0)
			return agent_words[i].words;
	return no_words;
}

/* Phase detection (API.md 5.3 step 2): each phase's words found in the message count 1.0,
 * in each of the (up to 10) recent messages 0.5; the best phase with at least 2.0 wins. */
static const struct phase_def *detect_phase(const char *query, const char *const *recent, size_t n)
{
	const struct phase_def *best = NULL;
	double best_score = 0;
	for (size_t p = 0; p < NPHASES; p++) {
		double sc = count_hits(query, phases[p].words);
		for (size_t i = 0; i < n && i < 10; i++)
			sc += 0.5 * count_hits(recent[i], phases[p].words);
		if (sc > best_score) {
			best_score = sc;
			best = &phases[p];
		}
	}
	return best_score >= 2.0 ? best : NULL;
}

/* ---------------------------------------------------------------- the NLU gate */

/* Short stand-alone negatives answered locally (API.md 5.3 step 1). */
static const char *const declines[] = {
	"no",        "nope",      "nah",    "no thanks", "no thank you", "skip",
	"skip it",   "skip this", "cancel", "not now",   "not yet",      "never mind",
	"nevermind", "stop",      "pass",   "later",     "maybe later",  "not interested",
	"no need",   "none",      NULL};

/* Confirmations that continue the current phase's work (API.md 5.3 step 3). */
static const char *const confirmations[] = {
	"yes",       "yeah",       "yep",      "y",     "ok",          "okay",       "sure",
	"proceed",   "go ahead",   "continue", "do it", "let's do it", "lets do it", "sounds good",
	"please do", "yes please", "go on",    "next",  "agreed",      "confirm",    NULL};

/* q lower-cased, trimmed, without trailing punctuation, into out; false when too long. */
static bool normalise(const char *q, char *out, size_t outlen)
{
	while (*q && isspace((unsigned char)*q))
		q++;
	size_t n = strlen(q);
	while (n > 0 && (isspace((unsigned char)q[n - 1]) || strchr(".!,;~", q[n - 1])))
		n--;
	if (n >= outlen)
		return false;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)q[i]);
	out[n] = '\0';
	return true;
}

static bool in_list(const char *s, const char *const *list)
{
	for (const char *const *w = list; *w; w++)
		if (strcmp(s, *w) == 0)
			return true;
	return false;
}

enum agent_nlu agent_nlu_gate(const char *query)
{
	const char *q = query ? query : "";
	while (*q && isspace((unsigned char)*q))
		q++;
	if (!*q)
		return NLU_EMPTY;
	/* questions and requests for help always go through */
	if (strchr(q, '?'))
		return NLU_PROCEED;
	char norm[48];
	if (!normalise(q, norm, sizeof(norm)))
		return NLU_PROCEED;
	return in_list(norm, declines) ? NLU_DECLINE : NLU_PROCEED;
}

/* A confirmation, alone or a few joined by commas ("ok, go ahead"). */
static bool is_confirmation(const char *query)
{
	char norm[48];
	if (!query || !normalise(query, norm, sizeof(norm)) || !*norm)
		return false;
	for (char *part = norm, *next; part; part = next) {
		next = strchr(part, ',');
		if (next)
			*next++ = '\0';
		while (*part == ' ')
			part++;
		if (!in_list(part, confirmations))
			return false;
	}
	return true;
}

const char *agent_guidance(const char *phase)
{
	const struct phase_def *p = phase_of(phase);
	if (p && strcmp(p->name, "Ideation") == 0)
		return "Understood, nothing more on this for now. When you are ready, you can: "
		       "describe the problem and who has it, ask for solution concepts, or fill in "
		       "the Ideation form and ask for help on a field.";
	if (p && strcmp(p->name, "Market Research") == 0)
		return "Understood, nothing more on this for now. When you are ready, you can: ask "
		       "for a market size estimate, a competitor table, or the trends that matter "
		       "for this product.";
	if (p && strcmp(p->name, "Requirements") == 0)
		return "Understood, nothing more on this for now. When you are ready, you can: ask "
		       "for functional requirements, non-functional requirements with targets, or "
		       "user stories with acceptance criteria.";
	if (p && strcmp(p->name, "Design") == 0)
		return "Understood, nothing more on this for now. When you are ready, you can: "
		       "describe the key user flows, or ask for a V0 or Lovable prompt.";
	if (p && strcmp(p->name, "Development Planning") == 0)
		return "Understood, nothing more on this for now. When you are ready, you can: ask "
		       "for milestones, a timeline, or the PRD sections still missing.";
	if (p)
		return "Understood, nothing more on this for now. When you are ready, you can: ask "
		       "for a launch plan, channels, or the success metrics to track.";
	return "Understood, nothing more on this for now. When you are ready, you can: ask a "
	       "question about the product, pick a lifecycle phase and ask for help with its form, "
	       "or ask for a summary, a score or a PRD.";
}

/* ---------------------------------------------------------------- the plan */

static void add_supporting(struct agent_plan *p, const struct agent_def *a)
{
	if (!a || a == p->primary || p->nsupporting >= AGENT_MAX_SUPPORTING)
		return;
	for (int i = 0; i < p->nsupporting; i++)
		if (p->supporting[i] == a)
			return;
	p->supporting[p->nsupporting++] = a;
}

/* The primary agent's score for query in phase ph (API.md 5.3 step 3). */
static double score_agent(const struct agent_def *a, const char *query, const struct phase_def *ph)
{
	const struct phase_def *home = home_phase(a);
	const char *const *w = words_of(a);
	int hits = count_hits(query, w);
	double conf = hits >= 2 ? 1.0 : hits * 0.5;
	double share = 0;
	if (home) {
		int n = list_len(home->words);
		int h = count_hits(query, home->words);
		share = n ? (double)h / (n < 3 ? n : 3) : 0;
		if (share > 1)
			share = 1;
	}
	double s = (ph && home == ph ? 0.5 : 0) + 0.4 * conf + 0.3 * share;
	if (ph && home && home != ph)
		s *= 0.3;
	return s;
}

/* The fallback when nothing scores (API.md 5.3 step 3): research > requirements >
 * prd_authoring (design) > strategy > ideation, else research. */
static const struct agent_def *fallback_agent(const char *q)
{
	static const struct {
		const char *word, *agent;
	} map[] = {
		{"market", "research"},
		{"competitor", "research"},
		{"requirement", "requirements"},
		{"user stor", "requirements"},
		{"design", "prd_authoring"},
		{"prd", "prd_authoring"},
		{"strategy", "strategy"},
		{"roadmap", "strategy"},
		{"idea", "ideation"},
	};
	for (size_t i = 0; q && i < sizeof(map) / sizeof(map[0]); i++)
		if (has(q, map[i].word))
			return agent_find(map[i].agent);
	return agent_find("research");
}

void agent_plan_for(struct agent_plan *out, const char *query, const char *phase_name,
		    const char *const *recent, size_t nrecent, const char *primary_key,
		    const char *const *supporting, size_t n)
{
	memset(out, 0, sizeof(*out));
	const struct phase_def *ph = phase_of(phase_name);
	if (ph) {
		out->phase = ph->name;
	} else {
		ph = detect_phase(query, recent, nrecent);
		out->phase = ph ? ph->name : NULL;
		out->phase_detected = ph != NULL;
	}
	out->primary = agent_find(primary_key);
	if (!out->primary && ph && is_confirmation(query))
		out->primary = agent_find(ph->agent);
	if (!out->primary) {
		const struct agent_def *best = NULL;
		double best_score = 0;
		for (size_t i = 0; i < agent_roster_n; i++) {
			const struct agent_def *a = &agent_roster[i];
			if (strcmp(a->key, "rag") == 0)
				continue; /* consulted, never the one who answers */
			double sc = score_agent(a, query, ph);
			if (sc > best_score) {
				best_score = sc;
				best = a;
			}
		}
		if (best && (best_score >= 0.3 || ph))
			out->primary = best;
		else
			out->primary = fallback_agent(query);
	}
	if (supporting && n > 0) {
		for (size_t i = 0; i < n; i++)
			add_supporting(out, agent_find(supporting[i]));
	} else {
		/* the knowledge agent always, then what the phase and the words of the message
		 * call for (API.md 5.3 step 4; ideation only in the Ideation phase) */
		add_supporting(out, agent_find("rag"));
		static const char *const consultants[] = {"research",   "analysis",
							  "ideation",   "strategy",
							  "validation", "prd_authoring"};
		for (size_t i = 0; i < sizeof(consultants) / sizeof(consultants[0]); i++) {
			const struct agent_def *a = agent_find(consultants[i]);
			if (strcmp(a->key, "ideation") == 0 && ph &&
			    strcmp(ph->name, "Ideation") != 0)
				continue;
			if (count_hits(query, words_of(a)) > 0)
				add_supporting(out, a);
		}
		for (const char *const *h = ph ? ph->helpers : no_words; *h; h++)
			add_supporting(out, agent_find(*h));
		if (has(query, "confluence") || has(query, "jira") || has(query, "publish"))
			add_supporting(out, agent_find("atlassian_mcp"));
		if (has(query, "export"))
			add_supporting(out, agent_find("export"));
		if (has(query, "v0") || has(query, "ui generation"))
			add_supporting(out, agent_find("v0"));
	}
	/* debate: the primary and the first consulted agent that is not the knowledge agent
	 * (validation, or analysis, when there is none) */
	out->debaters[0] = out->primary;
	for (int i = 0; i < out->nsupporting && !out->debaters[1]; i++)
		if (strcmp(out->supporting[i]->key, "rag") != 0)
			out->debaters[1] = out->supporting[i];
	if (!out->debaters[1])
		out->debaters[1] = agent_find(
			strcmp(out->primary->key, "validation") == 0 ? "analysis" : "validation");
}

const struct agent_def *agent_for_phase_help(const char *phase_name)
{
	/* API.md 1.9: ideation, research/market, requirement, design -> strategy,
	 * development -> prd_authoring, else ideation */
	if (has(phase_name, "ideation"))
		return agent_find("ideation");
	if (has(phase_name, "research") || has(phase_name, "market"))
		return agent_find("research");
	if (has(phase_name, "requirement"))
		return agent_find("requirements");
	if (has(phase_name, "design"))
		return agent_find("strategy");
	if (has(phase_name, "development"))
		return agent_find("prd_authoring");
	return agent_find("ideation");
}
