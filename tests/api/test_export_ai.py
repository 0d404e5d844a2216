"""review-prd and export-prd answered by the export agent (API.md 1.11, 5.2; issue 12 item 5):
with a provider for the caller, the API enqueues a job (kinds review_prd, export_prd of
sql/0008) and agentd runs the export agent on the deterministic review or report; the answer
keeps the review's shape and the export's download headers. "use_ai": false keeps the
deterministic answer (tests/api/test_export.py). Every user of the cast has a fake key of its
own, so each test scripts the fake for its user and reads the requests that user's key made."""

import json
import uuid

import pytest

from conftest import psql, psql_one
from product_helpers import IDEATION, MARKET, world  # noqa: F401 (fixture)
from test_agentd import agentd, fake_log, fake_script  # noqa: F401 (fixture)

EXPORT_SYSTEM = "You are the export agent."
NO_AI = {"use_ai": False}
HOSTILE_MD = ("# PRD: Nurse Handover\n\n"
              "Intro paragraph with **bold** and `code`.\n\n"
              "- first <script>alert(1)</script>\n"
              "- second <img src=x onerror=alert(2)>\n\n"
              "<b>raw html</b> & [link](javascript:alert(3))\n")


@pytest.fixture(scope="module")
def cast(world):
    """Keys of their own for the cast."""
    for role in ("owner", "viewer", "stranger", "outsider"):
        u = world.user(role)
        u.key = "sk-exp-%s-%s" % (role, uuid.uuid4().hex[:8])
        r = u.http.post("/api/api-keys", json={"provider": "openai", "api_key": u.key})
        assert r.status_code == 200, r.text
    return world


def material(world):
    """A fresh product (the agents' response cache is per product and prompt) with a phase
    or two and a conversation."""
    o = world.owner
    pid = world.new_product(name="Nurse Handover <AI>", description="Shift handover app")
    for phase, form, status in (
            (IDEATION, {"problem_statement": "Handover takes 40 minutes",
                        "target_audience": "Ward nurses", "value_proposition": "Faster"},
             "completed"),
            (MARKET, {"market_size": "2 bn"}, "in_progress")):
        r = o.http.post("/api/db/phase-submissions", json={
            "product_id": pid, "phase_id": phase, "form_data": form, "status": status})
        assert r.status_code == 200, r.text
    sess = str(uuid.uuid4())
    r = o.http.post("/api/db/conversation-history", json={
        "session_id": sess, "product_id": pid, "message_type": "user",
        "content": "Nurses lose notes between shifts"})
    assert r.status_code == 200, r.text
    return pid


def review(http, pid, **body):
    return http.post("/api/products/%s/review-prd" % pid, json=body, timeout=60)


def export(http, pid, **body):
    return http.post("/api/products/%s/export-prd" % pid, json=body, timeout=60)


def jobs_of(pid, kind):
    return int(psql_one("SELECT count(*) FROM agent_jobs WHERE product_id = $1 AND kind = $2",
                        pid, kind))


# ---------------------------------------------------------------- review

def test_review_is_the_export_agents_with_the_deterministic_truth(cast, agentd):
    o = cast.owner
    pid = material(cast)
    det = review(o.http, pid, **NO_AI).json()
    assert det["is_complete"] is False and det["missing_sections"]
    fake_script(o.key, [{"kind": "ok", "text": json.dumps({
        "is_complete": True, "missing_sections": [],  # not the model's to decide
        "recommendations": ["Interview five ward nurses", "Quantify the 40 minutes"],
        "warnings": ["The market size has no source"]})}])
    before = len(fake_log(o.key))
    r = review(o.http, pid)
    assert r.status_code == 200, r.text
    rev = r.json()
    assert set(rev) == {"is_complete", "missing_sections", "recommendations", "warnings",
                        "source"}
    assert rev["source"] == "agent"
    assert rev["is_complete"] is False and rev["missing_sections"] == det["missing_sections"]
    assert rev["recommendations"] == ["Interview five ward nurses", "Quantify the 40 minutes"]
    assert rev["warnings"] == det["warnings"] + ["The market size has no source"]
    calls = fake_log(o.key)[before:]
    assert len(calls) == 1
    assert calls[0]["system"].startswith(EXPORT_SYSTEM) and "strict JSON" in calls[0]["system"]
    # the agent was given the deterministic check and the product's material
    assert "Market Research: Market Trends" in calls[0]["prompt"]
    assert "Handover takes 40 minutes" in calls[0]["prompt"]
    assert "Nurses lose notes between shifts" in calls[0]["prompt"]
    assert jobs_of(pid, "review_prd") == 1
    row = psql("SELECT user_id, tenant_id, state FROM agent_jobs WHERE product_id = $1 "
               "AND kind = 'review_prd'", pid)
    assert row == [(o.id, o.tenant_id, "completed")]


@pytest.mark.parametrize("answer", [
    "The PRD looks fine to me.",                                    # no JSON at all
    '{"recommendations": "do more", "warnings": []}',               # a string, not a list
    '{"recommendations": ["ok", 3], "warnings": []}',               # not only strings
    '{"recommendations": [], "warnings": ["w"]}',                   # nothing recommended
    '{"recommendations": ["a"], "warnings": "w"}',                  # warnings not a list
    '```json\n{"recommendations": ["cut short"\n```',               # cut JSON
])
def test_review_falls_back_to_the_template_on_bad_json(cast, agentd, answer):
    o = cast.owner
    pid = material(cast)
    det = review(o.http, pid, **NO_AI).json()
    fake_script(o.key, [{"kind": "ok", "text": answer}])
    before = len(fake_log(o.key))
    r = review(o.http, pid)
    assert r.status_code == 200, r.text
    rev = r.json()
    assert rev.pop("source") == "template"
    assert rev == det
    assert len(fake_log(o.key)) == before + 1  # the agent was asked


def test_review_without_ai_is_todays_and_asks_nobody(cast, agentd):
    o = cast.owner
    pid = material(cast)
    before = len(fake_log(o.key))
    r = review(o.http, pid, use_ai=False)
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"is_complete", "missing_sections", "recommendations", "warnings"}
    assert len(fake_log(o.key)) == before and jobs_of(pid, "review_prd") == 0
    assert review(o.http, pid, use_ai="no").status_code == 422


# ---------------------------------------------------------------- export

def test_export_markdown_is_the_agents_document(cast, agentd):
    o = cast.owner
    pid = material(cast)
    template = export(o.http, pid, format="markdown", **NO_AI)
    assert template.status_code == 200
    fake_script(o.key, [{"kind": "ok", "text": HOSTILE_MD}])
    before = len(fake_log(o.key))
    r = export(o.http, pid, format="markdown")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "text/markdown; charset=utf-8"
    assert r.headers["Content-Disposition"] == template.headers["Content-Disposition"]
    assert r.headers["Content-Disposition"].startswith(
        'attachment; filename="PRD_Nurse_Handover_AI_')
    assert r.headers["Cache-Control"] == "no-store"
    assert r.content.decode("utf-8") == HOSTILE_MD  # Markdown as written
    calls = fake_log(o.key)[before:]
    assert len(calls) == 1 and calls[0]["system"].startswith(EXPORT_SYSTEM)
    p = calls[0]["prompt"]
    assert "# Product Requirements Document: Nurse Handover <AI>" in p
    assert "Handover takes 40 minutes" in p and "2 bn" in p
    assert "Nurses lose notes between shifts" in p  # the transcript
    assert "Open Items" in p
    assert jobs_of(pid, "export_prd") == 1


def test_export_html_renders_the_agents_markdown_escaped(cast, agentd):
    o = cast.owner
    pid = material(cast)
    fake_script(o.key, [{"kind": "ok", "text": HOSTILE_MD}])
    r = export(o.http, pid)  # html is the default
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Content-Disposition"].endswith('.html"')
    assert r.headers["Cache-Control"] == "no-store"
    html = r.content.decode("utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert "<title>Product Requirements Document: Nurse Handover &lt;AI&gt;</title>" in html
    assert "<h1>PRD: Nurse Handover</h1>" in html
    assert "<strong>bold</strong>" in html and "<code>code</code>" in html
    assert "<li>first &lt;script&gt;alert(1)&lt;/script&gt;</li>" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "&lt;b&gt;raw html&lt;/b&gt; &amp; [link](javascript:alert(3))" in html
    body = html.split("<body>", 1)[1]
    assert "<script" not in body and "<img" not in body and "<b>" not in body
    assert "href=" not in body
    assert html.rstrip().endswith("</html>")


def test_export_options_reach_the_agent(cast, agentd):
    o = cast.owner
    pid = material(cast)
    fake_script(o.key, [{"kind": "ok", "text": "# PRD"}])
    before = len(fake_log(o.key))
    r = export(o.http, pid, format="markdown", include_metadata=False, override_missing=True)
    assert r.status_code == 200, r.text
    assert r.text == "# PRD\n"
    p = fake_log(o.key)[before]["prompt"]
    assert "Leave out any status, owner or date block" in p and "Do not list open items" in p


@pytest.mark.parametrize("route", ["export-prd", "review-prd"])
def test_a_failing_provider_is_a_clear_502(cast, agentd, route):
    """The provider failing (500, then the retry too) is an error the user can act on (retry,
    or ask for the template with "use_ai": false), not a silent template."""
    o = cast.owner
    pid = material(cast)
    fake_script(o.key, [{"kind": "500"}, {"kind": "500"}])
    before = len(fake_log(o.key))
    r = o.http.post("/api/products/%s/%s" % (pid, route), json={"format": "markdown"}
                    if route == "export-prd" else {}, timeout=60)
    assert r.status_code == 502, r.text
    assert r.json()["detail"] == \
        "Unable to reach the configured LLM provider. Please try again later."
    assert "Content-Disposition" not in r.headers
    assert len(fake_log(o.key)) == before + 2  # the call and its retry
    assert psql_one("SELECT state FROM agent_jobs WHERE product_id = $1", pid) == "failed"


@pytest.mark.parametrize("route", ["export-prd", "review-prd"])
def test_access_rules_hold_on_the_agent_path(cast, agentd, route):
    pid = material(cast)
    path = "/api/products/%s/%s" % (pid, route)
    # another tenant's product and a missing one: 404 alike, nothing asked of the provider
    out = cast.user("outsider")
    a = out.http.post(path, json={}, timeout=60)
    b = out.http.post("/api/products/%s/%s" % (uuid.uuid4(), route), json={}, timeout=60)
    assert a.status_code == 404 and (a.status_code, a.json()) == (b.status_code, b.json())
    s = cast.user("stranger")
    assert s.http.post(path, json={}, timeout=60).status_code == 403
    assert cast.client("anon").post(path, json={}).status_code == 401
    for u in (out, s):
        assert fake_log(u.key) == []
    assert jobs_of(pid, route.replace("-", "_")) == 0
    # a viewer may review and export (API.md 1.11: view access), with its own provider
    v = cast.user("viewer")
    before = len(fake_log(v.key))
    r = v.http.post(path, json={"format": "markdown"} if route == "export-prd" else {},
                    timeout=60)
    assert r.status_code == 200, r.text
    assert len(fake_log(v.key)) == before + 1
    assert fake_log(v.key)[-1]["system"].startswith(EXPORT_SYSTEM)
    assert psql_one("SELECT user_id FROM agent_jobs WHERE product_id = $1", pid) == v.id
