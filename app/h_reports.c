/* h_reports.c - progress report, PRD review and PRD export (API.md 1.11), the deterministic
 * versions that work with no AI provider configured (API.md 9).
 *
 * Scoring (API.md 1.11): a phase is complete when its submission's status is completed or
 * reviewed; overall_score = completed phases / all phases * 100, one decimal; each phase
 * scores 100 or 0; status "ready" iff 100. missing_sections lists every required field of
 * every phase that is not filled ("Phase: Field Label"); a Design phase's design_mockups also
 * counts as filled when the product has prototypes. One report per product and user (upsert).
 *
 * Export: Markdown or HTML (every product-supplied string HTML-escaped, links only for http(s)
 * URLs) from one template: product, each phase's form fields and generated content, design
 * prototypes, open items, the conversation transcript. Content-Disposition names the file
 * PRD_<name>_<YYYYMMDD>.(md|html) with spaces turned into _ and other unsafe characters
 * dropped.
 *
 * With a provider for the caller (ai_provider_ready: the rule of summarize and score) and no
 * "use_ai": false in the body, review-prd and export-prd are the export agent's (API.md 1.11,
 * 5.2; issue 12 item 5): the deterministic review, and the template's Markdown with the newest
 * transcript within the context budget (context_report), go to ideaforge-agentd as a job of
 * kind review_prd or export_prd (sql/0008), and the route answers with the X-Accel-Redirect to
 * its result (ai_job_answer), so no thread here waits on a provider. The review keeps
 * is_complete and missing_sections of the deterministic check and says "source": "agent", or
 * "template" when the model's JSON was unusable; the export is the model's Markdown, or for
 * HTML that Markdown rendered by lib/md.h (every byte escaped) in the template's page
 * (prd_html.h), downloaded with the same filename and headers as the template (set by agentd,
 * shape=file). A provider that fails is the job's error (502), not a silent template.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../lib/arena.h"
#include "ai_routes.h"
#include "prd_html.h"
#include "products.h"

#define MAX_PHASES 16
#define MAX_FIELDS 32
#define TRANSCRIPT_MAX_MESSAGES 2000
#define TRANSCRIPT_MAX_CHARS 10000 /* per message: a transcript stays a few MiB at most */
#define FILENAME_NAME_MAX 80

static const char *const export_formats[] = {"html", "markdown", NULL};

const struct jx_field review_fields[] = {
	/* ignored: we load our own */
	{"conversation_history", JX_ANY, JX_NULLABLE, HISTORY_MAX_BYTES, NULL},
	{"use_ai", JX_BOOL, JX_NULLABLE, 0, NULL}, /* false: the deterministic review */
	{NULL, 0, 0, 0, NULL},
};

const struct jx_field export_fields[] = {
	{"format", JX_ENUM, JX_NULLABLE, 0, export_formats},
	{"include_metadata", JX_BOOL, JX_NULLABLE, 0, NULL},
	{"override_missing", JX_BOOL, JX_NULLABLE, 0, NULL},
	{"conversation_history", JX_ANY, JX_NULLABLE, HISTORY_MAX_BYTES, NULL}, /* ignored */
	{"use_ai", JX_BOOL, JX_NULLABLE, 0, NULL}, /* false: the deterministic template */
	{NULL, 0, 0, 0, NULL},
};

/* 1 when the request is answered by the export agent: the caller has a provider (the rule
 * of summarize and score, ai_provider_ready) and did not ask for "use_ai": false; 0 for the
 * deterministic answer; -1 after a database error recorded in r. */
static int want_ai(struct req *r)
{
	if (!jx_get_bool(r->json, "use_ai", true))
		return 0;
	return ai_provider_ready(r);
}

/* ---------------------------------------------------------------- evaluation */

struct phase_eval {
	const char *id;                  /* phase id */
	const char *name;                /* phase_name */
	int order;                       /* phase_order */
	const char *status;              /* submission status, "not_started" without one */
	bool submitted;                  /* a submission exists */
	bool complete;                   /* status completed or reviewed */
	struct json_object *form;        /* form_data (borrowed), NULL without a submission */
	const char *generated;           /* generated_content or NULL */
	struct json_object *required;    /* required_fields array (borrowed) */
	int nmissing;                    /* required fields not filled */
	const char *missing[MAX_FIELDS]; /* their names */
};

struct report {
	struct json_object *root;    /* everything loaded (arena-released) */
	struct json_object *product; /* {id, name, description, status, owner_name, owner_email} */
	int nphases;                 /* phases evaluated */
	struct phase_eval ph[MAX_PHASES]; /* in phase_order */
	int completed;                    /* complete phases */
	int score_tenths;                 /* overall score * 10, rounded */
	bool ready;                       /* every phase complete */
	int nmissing;                     /* missing fields over all phases */
};

/* True when a form value counts as filled: non-blank text, a non-empty list or object, any
 * number or boolean. */
static bool filled(struct json_object *v)
{
	if (!v)
		return false;
	switch (json_object_get_type(v)) {
	case json_type_null: return false;
	case json_type_string: return str_has_text(json_object_get_string(v));
	case json_type_array: return json_object_array_length(v) > 0;
	case json_type_object: return json_object_object_length(v) > 0;
	default: return true;
	}
}

/* "problem_statement" -> "Problem Statement" (arena). */
static const char *field_label(struct arena *a, const char *key)
{
	char *s = arena_strdup(a, key);
	bool start = true;
	for (char *c = s; *c; c++) {
		if (*c == '_') {
			*c = ' ';
			start = true;
		} else if (start) {
			*c = (char)toupper((unsigned char)*c);
			start = false;
		}
	}
	return s;
}

/* Loads the product (visible to the caller), its phases and submissions, and with `full` the
 * prototypes and transcript, in one statement. RC_OK, or an error already described (404 when
 * the product is not the tenant's, 403 without view access). */
static int report_load(struct req *r, const char *id, bool full, struct report *rep)
{
	memset(rep, 0, sizeof(*rep));
	char max_msgs[16], max_chars[16];
	snprintf(max_msgs, sizeof(max_msgs), "%d", TRANSCRIPT_MAX_MESSAGES);
	snprintf(max_chars, sizeof(max_chars), "%d", TRANSCRIPT_MAX_CHARS);
	const char *p[] = {id,       r->auth.tenant_id, r->auth.user_id, full ? "true" : "false",
			   max_msgs, max_chars};
	const char *json = db_value(
		&r->c, NULL,
		"SELECT json_build_object('product', json_build_object('id', p.id, 'name', p.name, "
		"'description', p.description, 'status', p.status, 'owner_name', u.full_name, "
		"'owner_email', u.email), "
		"'today', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD'), "
		"'stamp', to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD'), "
		"'has_mockups', EXISTS (SELECT 1 FROM design_mockups m WHERE m.product_id = p.id), "
		"'message_count', (SELECT count(*) FROM conversation_history h "
		"WHERE h.product_id = p.id), "
		"'phases', (SELECT coalesce(json_agg(json_build_object('id', f.id, "
		"'phase_name', f.phase_name, 'phase_order', f.phase_order, "
		"'required_fields', f.required_fields, 'status', s.status, "
		"'form_data', s.form_data, 'generated_content', s.generated_content) "
		"ORDER BY f.phase_order), '[]'::json) FROM product_lifecycle_phases f "
		"LEFT JOIN phase_submissions s ON s.phase_id = f.id AND s.product_id = p.id), "
		"'mockups', CASE WHEN $4::boolean THEN (SELECT coalesce(json_agg(json_build_object("
		"'provider', m.provider, 'project_status', m.project_status, "
		"'project_url', m.project_url, 'thumbnail_url', m.thumbnail_url, "
		"'prompt', left(m.prompt, 200)) ORDER BY m.created_at, m.id), '[]'::json) "
		"FROM (SELECT * FROM design_mockups m WHERE m.product_id = p.id "
		"ORDER BY m.created_at, m.id LIMIT 100) m) END, "
		"'messages', CASE WHEN $4::boolean THEN (SELECT "
		"coalesce(json_agg(json_build_object("
		"'message_type', t.message_type, 'agent_name', t.agent_name, "
		"'agent_role', t.agent_role, 'content', left(t.content, $6), "
		"'at', to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')) "
		"ORDER BY t.created_at, t.id), '[]'::json) FROM (SELECT * FROM "
		"conversation_history h "
		"WHERE h.product_id = p.id AND h.tenant_id = p.tenant_id "
		"ORDER BY h.created_at DESC, h.id DESC LIMIT $5) t) END) "
		"FROM products p JOIN user_profiles u ON u.id = p.user_id "
		"WHERE p.id = $1 AND p.tenant_id = $2 AND " SQL_CAN_VIEW("p", "$3"),
		6, p);
	if (!json)
		return prod_refused(r, id);
	rep->root = jx_parse(json, strlen(json), 256);
	if (!rep->root)
		return req_fail(r, RC_INTERNAL, "report: unparsable JSON from the database");
	jx_arena_own(r->a, rep->root);
	rep->product = jx_get(rep->root, "product");
	bool mockups = jx_get_bool(rep->root, "has_mockups", false);
	struct json_object *phases = jx_get(rep->root, "phases");
	size_t n = phases ? json_object_array_length(phases) : 0;
	for (size_t i = 0; i < n && rep->nphases < MAX_PHASES; i++) {
		struct json_object *o = json_object_array_get_idx(phases, i);
		struct phase_eval *e = &rep->ph[rep->nphases++];
		e->id = jx_get_str(o, "id");
		e->name = jx_get_str(o, "phase_name");
		e->order = (int)jx_get_int(o, "phase_order", 0);
		e->status = jx_get_str(o, "status");
		e->submitted = e->status != NULL;
		if (!e->status)
			e->status = "not_started";
		e->complete =
			strcmp(e->status, "completed") == 0 || strcmp(e->status, "reviewed") == 0;
		e->form = jx_get(o, "form_data");
		e->generated = jx_get_str(o, "generated_content");
		e->required = jx_get(o, "required_fields");
		size_t nreq = e->required ? json_object_array_length(e->required) : 0;
		for (size_t k = 0; k < nreq && e->nmissing < MAX_FIELDS; k++) {
			const char *f =
				json_object_get_string(json_object_array_get_idx(e->required, k));
			if (!f)
				continue;
			bool ok = filled(jx_get(e->form, f));
			if (!ok && strcmp(f, "design_mockups") == 0 && mockups)
				ok = true;
			if (!ok)
				e->missing[e->nmissing++] = f;
		}
		rep->nmissing += e->nmissing;
		if (e->complete)
			rep->completed++;
	}
	rep->score_tenths =
		rep->nphases ? (rep->completed * 1000 + rep->nphases / 2) / rep->nphases : 0;
	rep->ready = rep->nphases > 0 && rep->completed == rep->nphases;
	return RC_OK;
}

/* "Label, Label and Label" of a phase's missing fields (arena). */
static const char *missing_labels(struct arena *a, const struct phase_eval *e)
{
	struct buf b;
	buf_init(&b, a);
	for (int i = 0; i < e->nmissing; i++) {
		if (i)
			buf_puts(&b, i == e->nmissing - 1 ? " and " : ", ");
		buf_puts(&b, field_label(a, e->missing[i]));
	}
	return b.p ? b.p : "";
}

/* ["Phase: Field Label", ...] (new reference). */
static struct json_object *missing_sections(struct arena *a, const struct report *rep)
{
	struct json_object *arr = json_object_new_array();
	for (int i = 0; i < rep->nphases; i++)
		for (int k = 0; k < rep->ph[i].nmissing; k++)
			json_object_array_add(arr, json_object_new_string(arena_printf(
							   a, "%s: %s", rep->ph[i].name,
							   field_label(a, rep->ph[i].missing[k]))));
	return arr;
}

/* What to do next, one line per phase that needs work (new reference). */
static struct json_object *recommendations(struct arena *a, const struct report *rep)
{
	struct json_object *arr = json_object_new_array();
	for (int i = 0; i < rep->nphases; i++) {
		const struct phase_eval *e = &rep->ph[i];
		const char *s = NULL;
		if (!e->complete && e->nmissing)
			s = arena_printf(a, "Complete the %s phase: add %s.", e->name,
					 missing_labels(a, e));
		else if (!e->complete)
			s = arena_printf(a, "Review the %s phase and mark it as completed.",
					 e->name);
		else if (e->nmissing)
			s = arena_printf(a, "Fill in %s in the %s phase.", missing_labels(a, e),
					 e->name);
		if (s)
			json_object_array_add(arr, json_object_new_string(s));
	}
	if (json_object_array_length(arr) == 0)
		json_object_array_add(
			arr, json_object_new_string("All lifecycle phases are complete: the PRD is "
						    "ready for export."));
	return arr;
}

static const char *score_text(struct arena *a, const struct report *rep)
{
	return arena_printf(a, "%d.%d", rep->score_tenths / 10, rep->score_tenths % 10);
}

/* ---------------------------------------------------------------- progress report */

int h_reports_generate(struct req *r)
{
	const char *id = req_path_uuid(r, "id");
	if (!id)
		return r->rc;
	struct report rep;
	if (report_load(r, id, false, &rep) != RC_OK)
		return r->rc;
	struct json_object *scores = json_object_new_array();
	jx_arena_own(r->a, scores);
	for (int i = 0; i < rep.nphases; i++) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "phase_name", json_object_new_string(rep.ph[i].name));
		json_object_object_add(o, "phase_id", json_object_new_string(rep.ph[i].id));
		json_object_object_add(o, "phase_order", json_object_new_int(rep.ph[i].order));
		json_object_object_add(o, "score",
				       json_object_new_int(rep.ph[i].complete ? 100 : 0));
		json_object_object_add(o, "status", json_object_new_string(rep.ph[i].status));
		json_object_array_add(scores, o);
	}
	struct json_object *missing = missing_sections(r->a, &rep);
	jx_arena_own(r->a, missing);
	struct json_object *recs = recommendations(r->a, &rep);
	jx_arena_own(r->a, recs);
	const char *score = score_text(r->a, &rep);
	const char *summary = arena_printf(
		r->a, "%d of %d lifecycle phases completed (%s%%).%s", rep.completed, rep.nphases,
		score,
		rep.ready ? " The product is ready for PRD export."
			  : " Complete the remaining phases before exporting the PRD.");
	const char *data = arena_printf(r->a,
					"{\"generated_by\":\"deterministic\","
					"\"completed_phases\":%d,\"total_phases\":%d}",
					rep.completed, rep.nphases);
	const char *p[] = {id,
			   r->auth.tenant_id,
			   r->auth.user_id,
			   score,
			   rep.ready ? "ready" : "needs_attention",
			   jx_str(scores, NULL),
			   jx_str(missing, NULL),
			   jx_str(recs, NULL),
			   summary,
			   data};
	/* clang-format off */
	const char *json = db_value(
		&r->c, NULL,
		"INSERT INTO review_reports AS t (product_id, user_id, tenant_id, overall_score, "
		"status, phase_scores, missing_sections, recommendations, summary, report_data) "
		"SELECT p.id, $3, p.tenant_id, $4::numeric, $5, $6::jsonb, $7::jsonb, $8::jsonb, "
		"$9, $10::jsonb FROM products p WHERE p.id = $1 AND p.tenant_id = $2 AND "
		SQL_CAN_VIEW("p", "$3") " ON CONFLICT (product_id, user_id) DO UPDATE SET "
		"overall_score = EXCLUDED.overall_score, status = EXCLUDED.status, "
		"phase_scores = EXCLUDED.phase_scores, missing_sections = "
		"EXCLUDED.missing_sections, "
		"recommendations = EXCLUDED.recommendations, summary = EXCLUDED.summary, "
		"report_data = EXCLUDED.report_data "
		"RETURNING json_build_object('id', id, 'product_id', product_id, "
		"'overall_score', overall_score, 'status', status, 'phase_scores', phase_scores, "
		"'missing_sections', missing_sections, 'recommendations', recommendations, "
		"'summary', summary, 'created_at', created_at, 'updated_at', updated_at)",
		10, p);
	/* clang-format on */
	/* access was lost between the two statements */
	return res_json_or(r, json, RC_FORBIDDEN, "Access denied to product");
}

/* The caller's own report of the product, or {exists: false, message}. */
int h_reports_get(struct req *r)
{
	const char *id = req_path_uuid(r, "id");
	if (!id)
		return r->rc;
	const char *p[] = {id, r->auth.tenant_id, r->auth.user_id};
	const char *json = db_value(
		&r->c, NULL,
		"SELECT coalesce((SELECT json_build_object('exists', true, 'id', t.id, "
		"'product_id', t.product_id, 'overall_score', t.overall_score, 'status', t.status, "
		"'phase_scores', t.phase_scores, 'missing_sections', t.missing_sections, "
		"'recommendations', t.recommendations, 'summary', t.summary, "
		"'report_data', t.report_data, 'created_at', t.created_at, "
		"'updated_at', t.updated_at) FROM review_reports t WHERE t.product_id = p.id "
		"AND t.user_id = $3), json_build_object('exists', false, 'message', "
		"'No progress report yet. Generate one first.')) FROM products p "
		"WHERE p.id = $1 AND p.tenant_id = $2 AND " SQL_CAN_VIEW("p", "$3"),
		3, p);
	return prod_json_or_refuse(r, json, id);
}

/* ---------------------------------------------------------------- review */

static const char *context_report(struct req *r, const struct report *rep);

int h_reports_review(struct req *r)
{
	const char *id = req_path_uuid(r, "id");
	if (!id)
		return r->rc;
	int ai = want_ai(r);
	if (ai < 0)
		return r->rc;
	struct report rep;
	if (report_load(r, id, ai == 1, &rep) != RC_OK)
		return r->rc;
	struct json_object *out = json_object_new_object();
	json_object_object_add(out, "is_complete",
			       json_object_new_boolean(rep.ready && rep.nmissing == 0));
	json_object_object_add(out, "missing_sections", missing_sections(r->a, &rep));
	json_object_object_add(out, "recommendations", recommendations(r->a, &rep));
	struct json_object *warn = json_object_new_array();
	const char *desc = jx_get_str(rep.product, "description");
	if (!str_has_text(desc))
		json_object_array_add(warn,
				      json_object_new_string("The product has no description."));
	for (int i = 0; i < rep.nphases; i++)
		if (rep.ph[i].submitted && !rep.ph[i].complete && rep.ph[i].nmissing == 0)
			json_object_array_add(
				warn, json_object_new_string(arena_printf(
					      r->a,
					      "%s has every required field but is not marked as "
					      "completed.",
					      rep.ph[i].name)));
	if (jx_get_int(rep.root, "message_count", 0) == 0)
		json_object_array_add(
			warn, json_object_new_string("There is no conversation history for this "
						     "product."));
	json_object_object_add(out, "warnings", warn);
	if (ai == 1) {
		/* the export agent reviews, given this review and the report (agentd.c,
		 * review_result: is_complete and missing_sections stay these) */
		jx_arena_own(r->a, out);
		struct json_object *o = json_object_new_object();
		jx_arena_own(r->a, o);
		json_object_object_add(o, "product_id", json_object_new_string(id));
		json_object_object_add(o, "deterministic", json_object_get(out));
		json_object_object_add(o, "report",
				       json_object_new_string(context_report(r, &rep)));
		return ai_job_answer(r, "review_prd", id, o, "kind");
	}
	return res_json(r, 200, out);
}

/* ---------------------------------------------------------------- export */

/* A document written as Markdown or HTML through the same calls. */
struct doc {
	struct buf b; /* output */
	bool html;    /* HTML, else Markdown */
};

static void d_heading(struct doc *d, int level, const char *text)
{
	if (d->html) {
		buf_printf(&d->b, "<h%d>", level);
		buf_html(&d->b, text);
		buf_printf(&d->b, "</h%d>\n", level);
	} else {
		for (int i = 0; i < level; i++)
			buf_putc(&d->b, '#');
		buf_printf(&d->b, " %s\n\n", text);
	}
}

/* Text of the product (user content): as is in Markdown, escaped in HTML. */
static void d_text(struct doc *d, const char *text)
{
	if (d->html) {
		buf_puts(&d->b, "<div class=\"text\">");
		buf_html(&d->b, text);
		buf_puts(&d->b, "</div>\n");
	} else {
		size_t n = strlen(text);
		while (n > 0 && isspace((unsigned char)text[n - 1]))
			n--;
		buf_append(&d->b, text, n);
		buf_puts(&d->b, "\n\n");
	}
}

/* A note of ours, in italics. */
static void d_note(struct doc *d, const char *cls, const char *text)
{
	if (d->html) {
		buf_printf(&d->b, "<p class=\"%s\">", cls);
		buf_html(&d->b, text);
		buf_puts(&d->b, "</p>\n");
	} else {
		buf_printf(&d->b, "_%s_\n\n", text);
	}
}

/* A JSON value that is not text. */
static void d_json(struct doc *d, struct json_object *v)
{
	const char *s = jx_str(v, NULL);
	if (d->html) {
		buf_puts(&d->b, "<pre>");
		buf_html(&d->b, s);
		buf_puts(&d->b, "</pre>\n");
	} else {
		buf_printf(&d->b, "```json\n%s\n```\n\n", s);
	}
}

static void d_list_begin(struct doc *d, const char *cls)
{
	if (d->html)
		buf_printf(&d->b, "<ul class=\"%s\">\n", cls);
}

static void d_list_end(struct doc *d)
{
	buf_puts(&d->b, d->html ? "</ul>\n" : "\n");
}

/* "- **label:** value" / "<li><strong>label:</strong> value</li>"; value is escaped. */
static void d_item(struct doc *d, const char *label, const char *value)
{
	if (d->html) {
		buf_puts(&d->b, "<li>");
		if (label) {
			buf_puts(&d->b, "<strong>");
			buf_html(&d->b, label);
			buf_puts(&d->b, ":</strong> ");
		}
		buf_html(&d->b, value);
		buf_puts(&d->b, "</li>\n");
	} else if (label) {
		buf_printf(&d->b, "- **%s:** %s\n", label, value);
	} else {
		buf_printf(&d->b, "- %s\n", value);
	}
}

static bool is_http_url(const char *s)
{
	return s && (strncasecmp(s, "https://", 8) == 0 || strncasecmp(s, "http://", 7) == 0) &&
	       !strpbrk(s, " \t\r\n<>\"'`");
}

/* A link item: only http(s) URLs become links; anything else is shown as text. */
static void d_link_item(struct doc *d, const char *label, const char *url)
{
	if (!url || !*url)
		return;
	if (!is_http_url(url)) {
		d_item(d, label, url);
		return;
	}
	if (d->html) {
		buf_puts(&d->b, "<li><strong>");
		buf_html(&d->b, label);
		buf_puts(&d->b, ":</strong> <a href=\"");
		buf_html(&d->b, url);
		buf_puts(&d->b, "\" rel=\"noopener noreferrer\">");
		buf_html(&d->b, url);
		buf_puts(&d->b, "</a></li>\n");
	} else {
		buf_printf(&d->b, "- **%s:** <%s>\n", label, url);
	}
}

/* One form field: its label as a heading, then the value. */
static void d_field(struct doc *d, struct arena *a, const char *key, struct json_object *v)
{
	d_heading(d, 3, field_label(a, key));
	if (!filled(v))
		d_note(d, "missing", "Not provided.");
	else if (json_object_is_type(v, json_type_string))
		d_text(d, json_object_get_string(v));
	else
		d_json(d, v);
}

/* Who spoke: "User", "System", or the agent's name with its role. */
static const char *speaker(struct arena *a, struct json_object *m)
{
	const char *type = jx_get_str(m, "message_type");
	const char *name = jx_get_str(m, "agent_name");
	const char *role = jx_get_str(m, "agent_role");
	if (type && strcmp(type, "user") == 0)
		return "User";
	if (type && strcmp(type, "system") == 0)
		return "System";
	if (!str_has_text(name))
		name = str_has_text(role) ? role : "Agent";
	if (str_has_text(role) && strcmp(role, name) != 0)
		return arena_printf(a, "%s (%s)", name, role);
	return name;
}

static void d_message(struct doc *d, struct arena *a, struct json_object *m)
{
	const char *who = speaker(a, m);
	const char *at = jx_get_str(m, "at");
	const char *content = jx_get_str(m, "content");
	if (d->html) {
		buf_puts(&d->b, "<div class=\"message\"><div><span class=\"who\">");
		buf_html(&d->b, who);
		buf_puts(&d->b, "</span> <span class=\"at\">");
		buf_html(&d->b, at);
		buf_puts(&d->b, " UTC</span></div>\n");
		d_text(d, content ? content : "");
		buf_puts(&d->b, "</div>\n");
	} else {
		buf_printf(&d->b, "**%s** · %s UTC\n\n", who, at ? at : "");
		d_text(d, content ? content : "");
	}
}

/* PRD_<name>_<stamp>.<ext>: spaces become _, only [A-Za-z0-9._-] are kept (arena). */
static const char *export_filename(struct arena *a, const char *name, const char *stamp,
				   const char *ext)
{
	struct buf b;
	buf_init(&b, a);
	buf_puts(&b, "PRD_");
	size_t kept = 0;
	for (const char *c = name ? name : ""; *c && kept < FILENAME_NAME_MAX; c++) {
		unsigned char ch = (unsigned char)*c;
		if (ch == ' ')
			ch = '_';
		else if (!(isalnum(ch) || ch == '-' || ch == '_' || ch == '.') || ch >= 0x80)
			continue;
		buf_putc(&b, (char)ch);
		kept++;
	}
	if (!kept)
		buf_puts(&b, "Product");
	buf_printf(&b, "_%s.%s", stamp ? stamp : "", ext);
	return b.p;
}

/* The title (and the HTML head) and, with include_metadata, the status/owner/completion list. */
static void render_title(struct doc *d, struct arena *a, const struct report *rep,
			 bool include_metadata)
{
	const char *name = jx_get_str(rep->product, "name");
	const char *title = arena_printf(a, "Product Requirements Document: %s", name);
	if (d->html) {
		prd_html_begin(&d->b, title);
	}
	d_heading(d, 1, title);
	if (!include_metadata)
		return;
	d_list_begin(d, "meta");
	d_item(d, "Status", jx_get_str(rep->product, "status"));
	const char *owner = jx_get_str(rep->product, "owner_name");
	const char *email = jx_get_str(rep->product, "owner_email");
	d_item(d, "Owner", str_has_text(owner) ? arena_printf(a, "%s (%s)", owner, email) : email);
	d_item(d, "Completion",
	       arena_printf(a, "%s%% (%d of %d phases completed)", score_text(a, rep),
			    rep->completed, rep->nphases));
	d_item(d, "Generated", jx_get_str(rep->root, "today"));
	d_list_end(d);
}

static void render_overview(struct doc *d, const struct report *rep)
{
	const char *desc = jx_get_str(rep->product, "description");
	d_heading(d, 2, "Product Overview");
	if (str_has_text(desc))
		d_text(d, desc);
	else
		d_note(d, "missing", "No description provided.");
}

/* Whether key is one of the phase's required fields. */
static bool is_required(const struct phase_eval *e, const char *key)
{
	size_t nreq = e->required ? json_object_array_length(e->required) : 0;
	for (size_t k = 0; k < nreq; k++) {
		const char *f = json_object_get_string(json_object_array_get_idx(e->required, k));
		if (f && strcmp(f, key) == 0)
			return true;
	}
	return false;
}

/* One phase: its heading and status, the required fields in their order (a missing
 * design_mockups points to the prototypes when there are some), the other fields of its form,
 * then its generated content. */
static void render_phase(struct doc *d, struct arena *a, const struct report *rep,
			 const struct phase_eval *e)
{
	d_heading(d, 2, arena_printf(a, "%d. %s", e->order, e->name));
	d_note(d, "status", arena_printf(a, "Phase status: %s", e->status));
	size_t nreq = e->required ? json_object_array_length(e->required) : 0;
	for (size_t k = 0; k < nreq; k++) {
		const char *f = json_object_get_string(json_object_array_get_idx(e->required, k));
		if (!f)
			continue;
		struct json_object *v = jx_get(e->form, f);
		if (strcmp(f, "design_mockups") == 0 && !filled(v) &&
		    jx_get_bool(rep->root, "has_mockups", false)) {
			d_heading(d, 3, field_label(a, f));
			d_note(d, "status", "See Design Prototypes below.");
		} else {
			d_field(d, a, f, v);
		}
	}
	if (e->form && json_object_is_type(e->form, json_type_object)) {
		json_object_object_foreach(e->form, key, val)
		{
			if (!is_required(e, key))
				d_field(d, a, key, val);
		}
	}
	if (str_has_text(e->generated)) {
		d_heading(d, 3, "Generated Content");
		d_text(d, e->generated);
	}
}

static void render_prototypes(struct doc *d, struct arena *a, const struct report *rep)
{
	struct json_object *mockups = jx_get(rep->root, "mockups");
	size_t nm = mockups ? json_object_array_length(mockups) : 0;
	if (!nm)
		return;
	d_heading(d, 2, "Design Prototypes");
	for (size_t i = 0; i < nm; i++) {
		struct json_object *m = json_object_array_get_idx(mockups, i);
		d_heading(d, 3,
			  arena_printf(a, "Prototype %zu (%s, %s)", i + 1,
				       jx_get_str(m, "provider"), jx_get_str(m, "project_status")));
		d_list_begin(d, "prototype");
		d_link_item(d, "Project", jx_get_str(m, "project_url"));
		d_link_item(d, "Thumbnail", jx_get_str(m, "thumbnail_url"));
		const char *prompt = jx_get_str(m, "prompt");
		if (str_has_text(prompt))
			d_item(d, "Prompt", prompt);
		d_list_end(d);
	}
}

static void render_open_items(struct doc *d, struct arena *a, const struct report *rep)
{
	d_heading(d, 2, "Open Items");
	d_list_begin(d, "open-items");
	struct json_object *missing = missing_sections(a, rep);
	for (size_t i = 0; i < json_object_array_length(missing); i++)
		d_item(d, NULL, json_object_get_string(json_object_array_get_idx(missing, i)));
	json_object_put(missing);
	d_list_end(d);
}

static void render_transcript(struct doc *d, struct arena *a, const struct report *rep)
{
	d_heading(d, 2, "Conversation Transcript");
	struct json_object *msgs = jx_get(rep->root, "messages");
	size_t nmsg = msgs ? json_object_array_length(msgs) : 0;
	if (!nmsg)
		d_note(d, "missing", "No conversation yet.");
	for (size_t i = 0; i < nmsg; i++)
		d_message(d, a, json_object_array_get_idx(msgs, i));
}

/* The whole export document, section by section. */
/* The report without its transcript: title, overview, phases, prototypes, open items. */
static void render_report(struct doc *d, struct arena *a, const struct report *rep,
			  bool include_metadata, bool open_items)
{
	render_title(d, a, rep, include_metadata);
	render_overview(d, rep);
	for (int i = 0; i < rep->nphases; i++)
		render_phase(d, a, rep, &rep->ph[i]);
	render_prototypes(d, a, rep);
	if (rep->nmissing && open_items)
		render_open_items(d, a, rep);
}

static void export_render(struct doc *d, struct arena *a, const struct report *rep,
			  bool include_metadata, bool override_missing)
{
	render_report(d, a, rep, include_metadata, !override_missing);
	render_transcript(d, a, rep);
	if (d->html)
		prd_html_end(&d->b);
}

/* The material the export agent works from (arena): the template's Markdown with metadata
 * and open items, and of the transcript the newest messages that fit, written oldest first,
 * all within the context budget of the agents (agent_context_budget_tokens, 4 bytes a token,
 * as agentd counts). A report larger than the budget without its transcript is cut at a
 * UTF-8 boundary. */
static const char *context_report(struct req *r, const struct report *rep)
{
	size_t cap = (size_t)app_cfg(r)->agent_context_budget_tokens * 4;
	struct doc d = {.html = false};
	buf_init(&d.b, r->a);
	render_report(&d, r->a, rep, true, true);
	if (d.b.len >= cap) {
		size_t n = jx_utf8_cut(d.b.p, d.b.len, cap);
		return arena_printf(r->a, "%.*s\n\n[The rest of the report is left out.]", (int)n,
				    d.b.p);
	}
	struct json_object *msgs = jx_get(rep->root, "messages");
	size_t nmsg = msgs ? json_object_array_length(msgs) : 0;
	struct doc *m = arena_calloc(r->a, (nmsg + 1) * sizeof(*m));
	size_t left = cap - d.b.len, first = nmsg;
	while (first > 0) {
		struct doc *x = &m[first - 1];
		buf_init(&x->b, r->a);
		d_message(x, r->a, json_object_array_get_idx(msgs, first - 1));
		if (x->b.len + 64 > left)
			break;
		left -= x->b.len;
		first--;
	}
	d_heading(&d, 2, "Conversation Transcript");
	if (!nmsg)
		d_note(&d, "missing", "No conversation yet.");
	else if (first > 0)
		d_note(&d, "missing",
		       arena_printf(r->a, "The %zu oldest messages are left out.", first));
	for (size_t i = first; i < nmsg; i++)
		buf_append(&d.b, m[i].b.p, m[i].b.len);
	return d.b.p;
}

int h_reports_export(struct req *r)
{
	const char *id = req_path_uuid(r, "id");
	if (!id)
		return r->rc;
	const char *format = jx_get_str(r->json, "format");
	bool html = !format || strcmp(format, "html") == 0;
	bool include_metadata = jx_get_bool(r->json, "include_metadata", true);
	bool override_missing = jx_get_bool(r->json, "override_missing", false);
	int ai = want_ai(r);
	if (ai < 0)
		return r->rc;
	struct report rep;
	if (report_load(r, id, true, &rep) != RC_OK)
		return r->rc;
	const char *fname = export_filename(r->a, jx_get_str(rep.product, "name"),
					    jx_get_str(rep.root, "stamp"), html ? "html" : "md");
	if (ai == 1) {
		/* the export agent writes the document from the report; agentd renders it and
		 * answers the download with these headers (agentd.c, export_file, reply_file) */
		struct json_object *o = json_object_new_object();
		jx_arena_own(r->a, o);
		json_object_object_add(o, "product_id", json_object_new_string(id));
		json_object_object_add(o, "format",
				       json_object_new_string(html ? "html" : "markdown"));
		json_object_object_add(o, "filename", json_object_new_string(fname));
		json_object_object_add(o, "title",
				       json_object_new_string(arena_printf(
					       r->a, "Product Requirements Document: %s",
					       jx_get_str(rep.product, "name"))));
		json_object_object_add(o, "include_metadata",
				       json_object_new_boolean(include_metadata));
		json_object_object_add(o, "override_missing",
				       json_object_new_boolean(override_missing));
		json_object_object_add(o, "report",
				       json_object_new_string(context_report(r, &rep)));
		return ai_job_answer(r, "export_prd", id, o, "file");
	}
	struct doc d = {.html = html};
	buf_init(&d.b, r->a);
	export_render(&d, r->a, &rep, include_metadata, override_missing);
	res_header(r, "Content-Disposition",
		   arena_printf(r->a, "attachment; filename=\"%s\"", fname));
	res_header(r, "Cache-Control", "no-store");
	return res_body(r, 200, html ? "text/html; charset=utf-8" : "text/markdown; charset=utf-8",
			d.b.p ? d.b.p : "", d.b.len);
}
