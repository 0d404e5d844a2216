"""Progress report, PRD review and PRD export (API.md 1.11): the deterministic scoring, the
one-report-per-product-and-user upsert, and the export template checked against golden files
(tests/api/golden/prd.md, prd.html; the date and the owner's random e-mail are normalised).

The test stack has a provider for everyone (the fake's server-wide key), with which review-prd
and export-prd are the export agent's (tests/api/test_export_ai.py): these requests ask for the
deterministic answer with "use_ai": false (README, "Decisions where the spec was silent").

Regenerate the golden files after an intended template change with
    IDEAFORGE_UPDATE_GOLDEN=1 python3 -m pytest tests/api/test_export.py
and review the diff.
"""

import os
import re

import pytest

from conftest import psql, psql_one
from product_helpers import (DESIGN, DEVPLAN, GTM, IDEATION, MARKET, PHASES, REQUIREMENTS,
                             detail, uid, world)  # noqa: F401 (fixture)

NO_AI = {"use_ai": False}  # the deterministic review and template, whatever the providers
GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
FULL = {
    IDEATION: {"problem_statement": "p", "target_audience": "t", "value_proposition": "v"},
    MARKET: {"market_size": "m", "competitors": "c", "market_trends": "t"},
    REQUIREMENTS: {"functional_requirements": "f", "non_functional_requirements": "n",
                   "constraints": "c"},
    DESIGN: {"user_experience": "u", "v0_lovable_prompts": "{}", "design_mockups": ["m1"]},
    DEVPLAN: {"milestones": "m", "timeline": "t", "resources": "r"},
    GTM: {"launch_strategy": "l", "marketing_channels": "m", "success_metrics": "s"},
}


def save(http, pid, phase, form, status="completed", generated=None):
    body = {"product_id": pid, "phase_id": phase, "form_data": form, "status": status}
    if generated is not None:
        body["generated_content"] = generated
    r = http.post("/api/db/phase-submissions", json=body)
    assert r.status_code == 200, r.text


def test_progress_report_scoring(world):
    pid = world.new_product()
    o = world.owner.http
    save(o, pid, IDEATION, FULL[IDEATION])
    save(o, pid, MARKET, {"market_size": "m", "competitors": "  "}, status="in_progress")
    save(o, pid, REQUIREMENTS, {"functional_requirements": "f"}, status="reviewed")
    r = o.post("/api/products/%s/generate-progress-report" % pid)
    assert r.status_code == 200, r.text
    rep = r.json()
    assert set(rep) == {"id", "product_id", "overall_score", "status", "phase_scores",
                        "missing_sections", "recommendations", "summary", "created_at",
                        "updated_at"}
    assert rep["overall_score"] == 33.3 and rep["status"] == "needs_attention"
    assert [(p["phase_name"], p["phase_order"], p["score"], p["status"])
            for p in rep["phase_scores"]] == [
        ("Ideation", 1, 100, "completed"), ("Market Research", 2, 0, "in_progress"),
        ("Requirements", 3, 100, "reviewed"), ("Design", 4, 0, "not_started"),
        ("Development Planning", 5, 0, "not_started"), ("Go-to-Market", 6, 0, "not_started")]
    assert [p["phase_id"] for p in rep["phase_scores"]] == list(PHASES)
    missing = rep["missing_sections"]
    assert "Market Research: Competitors" in missing  # blank text is not filled
    assert "Market Research: Market Trends" in missing
    assert "Requirements: Constraints" in missing
    assert "Market Research: Market Size" not in missing
    assert not any(m.startswith("Ideation") for m in missing)
    assert len(missing) == 2 + 2 + 3 * 3
    assert "Complete the Market Research phase: add Competitors and Market Trends." in \
        rep["recommendations"]
    assert "Fill in Non Functional Requirements and Constraints in the Requirements phase." in \
        rep["recommendations"]
    assert rep["summary"].startswith("2 of 6 lifecycle phases completed (33.3%).")
    row = psql("SELECT user_id, tenant_id, overall_score, status, report_data->>'generated_by' "
               "FROM review_reports WHERE id = $1", rep["id"])
    assert row == [(world.owner.id, world.tenant_a, "33.3", "needs_attention", "deterministic")]

    # one report per product and user: regenerating updates it in place
    save(o, pid, MARKET, FULL[MARKET])
    again = o.post("/api/products/%s/generate-progress-report" % pid).json()
    assert again["id"] == rep["id"] and again["created_at"] == rep["created_at"]
    assert again["overall_score"] == 50.0 and again["updated_at"] > rep["updated_at"]
    # another user's report is theirs
    v = world.client("viewer")
    assert v.get("/api/products/%s/progress-report" % pid).json()["exists"] is False
    mine = v.post("/api/products/%s/generate-progress-report" % pid).json()
    assert mine["id"] != rep["id"]
    assert psql_one("SELECT count(*) FROM review_reports WHERE product_id = $1", pid) == "2"
    got = o.get("/api/products/%s/progress-report" % pid).json()
    assert got["exists"] is True and got["id"] == rep["id"] and got["overall_score"] == 50.0
    assert got["report_data"]["completed_phases"] == 3
    assert set(got) == {"exists", "id", "product_id", "overall_score", "status", "phase_scores",
                        "missing_sections", "recommendations", "summary", "report_data",
                        "created_at", "updated_at"}


def test_progress_report_ready(world):
    pid = world.new_product()
    o = world.owner.http
    for phase in PHASES:
        form = dict(FULL[phase])
        if phase == DESIGN:
            del form["design_mockups"]  # satisfied by a prototype instead
        save(o, pid, phase, form)
    rep = o.post("/api/products/%s/generate-progress-report" % pid).json()
    # every phase is completed: ready, even with a required field still open
    assert (rep["overall_score"], rep["status"]) == (100.0, "ready")
    assert rep["missing_sections"] == ["Design: Design Mockups"]
    rev = o.post("/api/products/%s/review-prd" % pid, json=NO_AI).json()
    assert rev["is_complete"] is False
    psql("INSERT INTO design_mockups (product_id, user_id, tenant_id, provider, prompt) "
         "VALUES ($1, $2, $3, 'lovable', 'p')", pid, world.owner.id, world.tenant_a)
    rep = o.post("/api/products/%s/generate-progress-report" % pid).json()
    assert (rep["overall_score"], rep["status"], rep["missing_sections"]) == (100.0, "ready", [])
    assert rep["recommendations"] == [
        "All lifecycle phases are complete: the PRD is ready for export."]
    rev = o.post("/api/products/%s/review-prd" % pid, json={"conversation_history": [], **NO_AI}).json()
    assert rev["is_complete"] is True and rev["missing_sections"] == []
    assert rev["warnings"] == ["There is no conversation history for this product."]


def test_review_prd(world):
    pid = world.new_product(description="")
    o = world.owner.http
    save(o, pid, IDEATION, FULL[IDEATION], status="in_progress")
    r = world.client("viewer").post("/api/products/%s/review-prd" % pid, json=NO_AI)
    assert r.status_code == 200, r.text
    rev = r.json()
    assert set(rev) == {"is_complete", "missing_sections", "recommendations", "warnings"}
    assert rev["is_complete"] is False
    assert "Market Research: Market Size" in rev["missing_sections"]
    assert "Review the Ideation phase and mark it as completed." in rev["recommendations"]
    assert "The product has no description." in rev["warnings"]
    assert "Ideation has every required field but is not marked as completed." in rev["warnings"]
    assert o.post("/api/products/%s/review-prd" % pid, data="nope",
                  headers={"Content-Type": "application/json"}).status_code == 400


# ---------------------------------------------------------------- export

@pytest.fixture(scope="module")
def golden_product(world):
    o = world.owner.http
    r = o.post("/api/products", json={
        "name": 'Golden Widget <Pro> & "Co"',
        "description": "A widget that <b>shines</b>.\nSecond line & more."})
    pid = r.json()["id"]
    save(o, pid, IDEATION, {
        "problem_statement": "Teams lose <script>alert(1)</script> hours.",
        "target_audience": "Product teams",
        "value_proposition": "  ",
        "notes": ["first", "second"],
        "budget": 12000}, generated="## Summary\nIdeation summary & next steps.")
    save(o, pid, MARKET, {"market_size": "Large"}, status="in_progress")
    save(o, pid, DESIGN, {
        "user_experience": "Three screens.",
        "v0_lovable_prompts": '{"v0_prompt": "Build <UI>", "lovable_prompt": "Make it"}'},
        status="draft")
    psql("INSERT INTO design_mockups (product_id, user_id, tenant_id, provider, prompt, "
         "project_url, thumbnail_url, project_status, created_at) VALUES "
         "($1, $2, $3, 'v0', $4, 'https://v0.dev/chat/abc?x=1&y=2', 'javascript:alert(1)', "
         "'completed', '2025-01-02 03:04:05+00')",
         pid, world.owner.id, world.tenant_a, "P" * 250)
    sess = uid()
    for content, kind, name, role in (
            ("How big is the market?", "user", None, None),
            ("About <10k> teams & growing.", "agent", "Research Agent", "research"),
            ("Session note", "system", None, None)):
        if kind == "agent":  # only the server writes agent rows (issue 9 item 5)
            psql("INSERT INTO conversation_history (session_id, product_id, tenant_id, "
                 "message_type, agent_name, agent_role, content) "
                 "VALUES ($1, $2, $3, 'agent', $4, $5, $6)",
                 sess, pid, world.tenant_a, name, role, content)
            continue
        body = {"session_id": sess, "product_id": pid, "message_type": kind, "content": content}
        assert o.post("/api/db/conversation-history", json=body).status_code == 200
    # distinct, fixed times in insertion order
    psql("WITH o AS (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n "
         "FROM conversation_history WHERE session_id = $1) UPDATE conversation_history h "
         "SET created_at = '2025-03-04 05:06:00+00'::timestamptz + o.n * interval '1 minute' "
         "FROM o WHERE h.id = o.id", sess)
    return pid


def normalise(text, world):
    text = text.replace(world.owner.email, "owner@example.test")
    today = psql_one("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')")
    return text.replace(today, "YYYY-MM-DD")


def check_golden(name, text):
    path = os.path.join(GOLDEN, name)
    if os.environ.get("IDEAFORGE_UPDATE_GOLDEN"):
        os.makedirs(GOLDEN, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    with open(path, encoding="utf-8") as f:
        want = f.read()
    assert text == want, "export differs from %s (see the module docstring)" % path


def export(http, pid, **body):
    body.setdefault("use_ai", False)
    return http.post("/api/products/%s/export-prd" % pid, json=body)


def test_export_markdown_golden(world, golden_product):
    r = export(world.owner.http, golden_product, format="markdown")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "text/markdown; charset=utf-8"
    stamp = psql_one("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD')")
    assert r.headers["Content-Disposition"] == \
        'attachment; filename="PRD_Golden_Widget_Pro__Co_%s.md"' % stamp
    check_golden("prd.md", normalise(r.content.decode("utf-8"), world))


def test_export_html_golden(world, golden_product):
    r = export(world.owner.http, golden_product)  # html is the default
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Content-Disposition"].endswith('.html"')
    html = r.content.decode("utf-8")
    # nothing the product supplied is markup
    assert "<script>" not in html and "<b>" not in html and "<UI>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="javascript:' not in html
    assert 'href="https://v0.dev/chat/abc?x=1&amp;y=2"' in html
    check_golden("prd.html", normalise(html, world))


def test_export_options(world, golden_product):
    md = export(world.owner.http, golden_product, format="markdown",
                include_metadata=False, override_missing=True).text
    assert "**Generated:**" not in md and "**Owner:**" not in md
    assert "## Open Items" not in md
    assert md.startswith("# Product Requirements Document: ")
    full = export(world.owner.http, golden_product, format="markdown").text
    assert "## Open Items" in full and "- Ideation: Value Proposition" in full
    r = export(world.owner.http, golden_product, format="pdf")
    assert r.status_code == 422
    r = export(world.owner.http, golden_product, include_metadata="yes")
    assert r.status_code == 422
    r = world.owner.http.post("/api/products/%s/export-prd" % golden_product)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("name,fname", [
    ("My Product: v2/beta \u00fcn\u00ef", "PRD_My_Product_v2beta_n_"),
    ("../../etc/passwd", "PRD_....etcpasswd_"),
    ("\u4ea7\u54c1", "PRD_Product_"),
    ('a"b\r\nc', "PRD_abc_"),
])
def test_export_filename(world, name, fname):
    pid = world.owner.http.post("/api/products", json={"name": name}).json()["id"]
    r = export(world.owner.http, pid, format="markdown")
    assert r.status_code == 200, r.text
    m = re.fullmatch(r'attachment; filename="(.*)"', r.headers["Content-Disposition"])
    assert m and m.group(1).startswith(fname) and re.fullmatch(r".*_\d{8}\.md", m.group(1))


def test_export_empty_product(world):
    pid = world.new_product(description=None)
    md = export(world.owner.http, pid, format="markdown").text
    assert "_No description provided._" in md
    assert "_No conversation yet._" in md
    assert "## 6. Go-to-Market" in md
    assert "- **Completion:** 0.0% (0 of 6 phases completed)" in md
