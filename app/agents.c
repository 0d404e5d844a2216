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
#define HOUSE_RULES                                                                           \
	" Write for a product team: specific, numbered where order matters, with assumptions "   \
	"stated as assumptions. Use the product's knowledge-base excerpts and earlier phase "    \
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
	{"research", "Research Agent", "market size, competitors, trends", "fast",
	 "\U0001F52C", LIST("market_research", "competitive_analysis", "trend_analysis"),
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
	 "functional and non-functional requirements, user stories, scope", "standard", "\U0001F4DD",
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
	 "sections, marking every gap as TODO rather than filling it with invented content."
	 HOUSE_RULES,
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

/* Case-insensitive substring. */
static bool has(const char *s, const char *word)
{
	return s && strcasestr(s, word) != NULL;
}

/* Phase name -> its agent (API.md 5.3 step 3). */
static const struct agent_def *phase_agent(const char *phase)
{
	static const struct {
		const char *word, *agent;
	} map[] = {
		{"ideation", "ideation"},           {"research", "research"},
		{"market", "research"},             {"requirement", "requirements"},
		{"development", "prd_authoring"},   {"prd", "prd_authoring"},
		{"design", "prd_authoring"},        {"go-to-market", "strategy"},
		{"gtm", "strategy"},                {"strategy", "strategy"},
		{"analysis", "analysis"},           {"validation", "validation"},
		{"review", "validation"},
	};
	for (size_t i = 0; phase && i < sizeof(map) / sizeof(map[0]); i++)
		if (has(phase, map[i].word))
			return agent_find(map[i].agent);
	return NULL;
}

/* Keywords of a message -> an agent (API.md 5.3: research > requirements > prd > strategy >
 * ideation, else research). */
static const struct agent_def *keyword_agent(const char *q)
{
	static const struct {
		const char *word, *agent;
	} map[] = {
		{"market", "research"},      {"competitor", "research"}, {"trend", "research"},
		{"requirement", "requirements"}, {"user stor", "requirements"},
		{"acceptance", "requirements"},  {"prd", "prd_authoring"},
		{"document", "prd_authoring"},   {"design", "prd_authoring"},
		{"roadmap", "strategy"},     {"pricing", "strategy"},    {"go-to-market", "strategy"},
		{"strategy", "strategy"},    {"swot", "analysis"},       {"risk", "analysis"},
		{"feasib", "analysis"},      {"score", "scoring"},       {"summar", "summary"},
		{"idea", "ideation"},        {"brainstorm", "ideation"},
	};
	for (size_t i = 0; q && i < sizeof(map) / sizeof(map[0]); i++)
		if (has(q, map[i].word))
			return agent_find(map[i].agent);
	return agent_find("research");
}

static void add_supporting(struct agent_plan *p, const struct agent_def *a)
{
	if (!a || a == p->primary || p->nsupporting >= AGENT_MAX_SUPPORTING)
		return;
	for (int i = 0; i < p->nsupporting; i++)
		if (p->supporting[i] == a)
			return;
	p->supporting[p->nsupporting++] = a;
}

void agent_plan_for(struct agent_plan *out, const char *query, const char *phase_name,
		    const char *primary_key, const char *const *supporting, size_t n)
{
	out->primary = agent_find(primary_key);
	out->nsupporting = 0;
	if (!out->primary)
		out->primary = phase_agent(phase_name);
	if (!out->primary)
		out->primary = keyword_agent(query);
	if (supporting && n > 0) {
		for (size_t i = 0; i < n; i++)
			add_supporting(out, agent_find(supporting[i]));
		return;
	}
	/* the knowledge agent always, then what the words of the message call for (API.md 5.3
	 * step 4; ideation only in the Ideation phase) */
	add_supporting(out, agent_find("rag"));
	const struct agent_def *k = keyword_agent(query);
	if (k && !(strcmp(k->key, "ideation") == 0 && phase_name && !has(phase_name, "ideation")))
		add_supporting(out, k);
	if (has(query, "confluence") || has(query, "jira") || has(query, "publish"))
		add_supporting(out, agent_find("atlassian_mcp"));
	if (has(query, "export"))
		add_supporting(out, agent_find("export"));
	if (has(query, "v0") || has(query, "ui generation"))
		add_supporting(out, agent_find("v0"));
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
