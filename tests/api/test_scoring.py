"""Product sessions, summaries, scores and the standardized PRD (API.md 1.10, issue 12 item 5),
the agents' usage statistics (API.md 6.3) and agent metrics (6.2): the AI ones run as agentd
jobs against the fake provider; every route checks the tenant and the caller's access
(another tenant's product, summary, score or tenant id is 404 everywhere)."""

import json
import uuid

import pytest

from conftest import psql, psql_one
from product_helpers import User, world  # noqa: F401 (fixture)
from test_agentd import agentd, fake_log, fake_script  # noqa: F401 (fixture)

SCORE = {"overall_score": 72.5,
         "dimensions": {"market_opportunity": {"score": 80, "weight": 25, "rationale": "big"},
                        "user_value": {"score": 70, "weight": 25, "rationale": "clear"},
                        "business_value": {"score": 65, "weight": 20, "rationale": "ok"},
                        "technical_feasibility": {"score": 75, "weight": 15, "rationale": "ok"},
                        "risk": {"score": 70, "weight": 15, "rationale": "some"}},
         "success_probability": 0.64, "success_factors": ["timing"],
         "risk_factors": ["competition"], "recommendations": ["interview 10 nurses"]}


@pytest.fixture(scope="module")
def feat(world):
    """Keys of their own for the cast, a shared product with one session of two messages."""
    for role in ("owner", "viewer", "editor", "stranger", "outsider"):
        u = world.user(role)
        u.key = "sk-feat-%s-%s" % (role, uuid.uuid4().hex[:8])
        r = u.http.post("/api/api-keys", json={"provider": "openai", "api_key": u.key})
        assert r.status_code == 200, r.text
    o = world.owner
    world.fp = world.new_product(name="Feature product")
    world.sid = psql_one("INSERT INTO conversation_sessions (user_id, product_id, tenant_id, "
                         "title) VALUES ($1, $2, $3, 'Kickoff') RETURNING id", o.id, world.fp,
                         o.tenant_id)
    for t, name, text in (("user", None, "We help nurses with shift handover"),
                          ("agent", "research", "The handover market is 2 bn")):
        psql("INSERT INTO conversation_history (session_id, product_id, tenant_id, "
             "message_type, agent_name, agent_role, content) VALUES ($1, $2, $3, $4, $5, $5, "
             "$6)", world.sid, world.fp, o.tenant_id, t, name, text)
    # a product of tenant B, with a session
    b = world.user("outsider")
    r = b.http.post("/api/products", json={"name": "B product"})
    world.bp = r.json()["id"]
    world.bsid = psql_one("INSERT INTO conversation_sessions (user_id, product_id, tenant_id) "
                          "VALUES ($1, $2, $3) RETURNING id", b.id, world.bp, b.tenant_id)
    return world


def test_sessions_count_messages_and_agent_roles(feat, agentd):
    r = feat.owner.http.get("/api/products/%s/sessions" % feat.fp)
    assert r.status_code == 200, r.text
    s = r.json()["sessions"]
    assert [x["id"] for x in s] == [feat.sid]
    assert s[0]["message_count"] == 2 and s[0]["agent_roles"] == ["research"]
    assert s[0]["title"] == "Kickoff"
    assert feat.client("viewer").get("/api/products/%s/sessions" % feat.fp).status_code == 200


@pytest.mark.parametrize("method,path,body", [
    ("get", "/api/products/%s/sessions", None),
    ("post", "/api/products/%s/summarize", "SESSIONS"),
    ("post", "/api/products/%s/score", None),
    ("post", "/api/products/%s/generate-prd", None),
    ("get", "/api/products/%s/scores", None),
])
def test_every_route_refuses_other_tenants_and_strangers(feat, agentd, method, path, body):
    fresh = User(feat.tenant_a, "refused")  # its own AI rate limit

    def call(role, pid):
        kw = {"json": [feat.sid]} if body else {}
        c = fresh.http if role == "fresh" else feat.client(role)
        return getattr(c, method)(path % pid, timeout=30, **kw)
    assert call("outsider", feat.fp).status_code == 404  # another tenant's product
    assert call("fresh", feat.bp).status_code == 404  # the same, the other way
    assert call("fresh", str(uuid.uuid4())).status_code == 404  # missing
    assert call("stranger", feat.fp).status_code == 403  # my tenant, not shared with me
    assert call("anon", feat.fp).status_code == 401
    # nothing ran for them
    for role in ("outsider", "stranger"):
        assert fake_log(feat.user(role).key) == []


def test_summarize_writes_the_summary_of_the_named_sessions(feat, agentd):
    o = feat.owner
    fake_script(o.key, [{"kind": "ok", "text": "Nurses need faster handover."}])
    r = o.http.post("/api/products/%s/summarize" % feat.fp, json=[feat.sid], timeout=60)
    assert r.status_code == 200, r.text
    j = r.json()
    assert set(j) == {"summary_id", "summary", "created_at"}
    assert j["summary"] == "Nurses need faster handover."
    row = psql("SELECT summary_type, session_ids::text, summary_content, created_by, tenant_id "
               "FROM product_summaries WHERE id = $1", j["summary_id"])[0]
    assert row == ("multi_session", "{%s}" % feat.sid, j["summary"], o.id, o.tenant_id)
    prompt = fake_log(o.key)[-1]["prompt"]
    assert "shift handover" in prompt and "2 bn" in prompt
    feat.summary_id = j["summary_id"]


@pytest.mark.parametrize("body,status", [
    ([], 422), ({"a": 1}, 422), (["not-a-uuid"], 422), ("BSESSION", 404), ("RANDOM", 404)])
def test_summarize_refuses_bad_or_foreign_sessions(feat, agentd, body, status):
    body = {"BSESSION": [feat.bsid], "RANDOM": [str(uuid.uuid4())]}.get(body, body) \
        if isinstance(body, str) else body
    r = feat.client("admin").post("/api/products/%s/summarize" % feat.fp, json=body,
                                  timeout=30)
    assert r.status_code == status, r.text


def test_score_stores_the_weighted_score(feat, agentd):
    o = feat.owner
    if not hasattr(feat, "summary_id"):  # run alone: a summary of its own
        feat.summary_id = psql_one(
            "INSERT INTO product_summaries (product_id, tenant_id, summary_content) VALUES "
            "($1, $2, 'Nurses need faster handover.') RETURNING id", feat.fp, o.tenant_id)
    fake_script(o.key, [{"kind": "ok", "text": "```json\n%s\n```" % json.dumps(SCORE)}])
    r = o.http.post("/api/products/%s/score?summary_id=%s" % (feat.fp, feat.summary_id),
                    timeout=60)
    assert r.status_code == 200, r.text
    j = r.json()
    assert set(j) == {"score_id", "overall_score", "success_probability", "dimensions",
                      "recommendations", "success_factors", "risk_factors", "created_at"}
    assert float(j["overall_score"]) == 72.5 and float(j["success_probability"]) == 64
    assert j["dimensions"]["risk"]["weight"] == 15
    crit = json.loads(psql_one("SELECT scoring_criteria::text FROM product_idea_scores "
                               "WHERE id = $1", j["score_id"]))
    assert crit["standards"] == ["BCS", "ICAgile", "AIPMM", "Pragmatic Institute"]
    assert "Nurses need faster handover." in fake_log(o.key)[-1]["prompt"]
    feat.score_id = j["score_id"]


def test_score_without_json_is_502_and_stores_nothing(feat, agentd):
    o = feat.owner
    before = psql_one("SELECT count(*) FROM product_idea_scores WHERE product_id = $1", feat.fp)
    fake_script(o.key, [{"kind": "ok", "text": "I think it is a good idea."}])
    r = o.http.post("/api/products/%s/score" % feat.fp, timeout=60)
    assert r.status_code == 502 and "expected JSON" in r.json()["detail"]
    assert psql_one("SELECT count(*) FROM product_idea_scores WHERE product_id = $1",
                    feat.fp) == before


def test_score_with_another_products_summary_is_404(feat, agentd):
    sid = psql_one("INSERT INTO product_summaries (product_id, tenant_id, summary_content) "
                   "VALUES ($1, $2, 'theirs') RETURNING id", feat.bp,
                   feat.user("outsider").tenant_id)
    r = feat.owner.http.post("/api/products/%s/score?summary_id=%s" % (feat.fp, sid))
    assert r.status_code == 404 and r.json()["detail"] == "Summary not found"
    r = feat.owner.http.post("/api/products/%s/generate-prd?score_id=%s" % (feat.fp,
                                                                          uuid.uuid4()))
    assert r.status_code == 404


def test_generate_prd_needs_edit_and_stores_the_document(feat, agentd):
    r = feat.client("viewer").post("/api/products/%s/generate-prd" % feat.fp)
    assert r.status_code == 403
    e = feat.user("editor")
    fake_script(e.key, [{"kind": "ok", "text": "# PRD\n\n## Overview\nHandover app."}])
    q = "?score_id=%s" % feat.score_id if hasattr(feat, "score_id") else ""
    r = e.http.post("/api/products/%s/generate-prd%s" % (feat.fp, q), timeout=60)
    assert r.status_code == 200, r.text
    j = r.json()
    assert set(j) == {"prd_id", "prd_content", "created_at"}
    assert j["prd_content"] == {"content": "# PRD\n\n## Overview\nHandover app.",
                                "template": "industry_standard"}
    row = psql("SELECT created_by, score_id, status FROM product_prd_documents WHERE id = $1",
               j["prd_id"])[0]
    assert row[0] == e.id and row[2] == "draft"
    if q:
        assert row[1] == feat.score_id
        assert "72.5" in fake_log(e.key)[-1]["prompt"]


def test_scores_lists_and_tenant_scores_stay_in_the_tenant(feat, agentd):
    psql("INSERT INTO product_idea_scores (product_id, tenant_id, overall_score, scoring_data) "
         "VALUES ($1, $2, 50, '{}')", feat.fp, feat.owner.tenant_id)
    psql("INSERT INTO product_idea_scores (product_id, tenant_id, overall_score, scoring_data) "
         "VALUES ($1, $2, 10, '{}')", feat.bp, feat.user("outsider").tenant_id)
    v = feat.client("viewer")
    r = v.get("/api/products/%s/scores" % feat.fp)
    assert r.status_code == 200
    assert all(set(s) >= {"id", "overall_score", "dimensions", "scoring_criteria"}
               for s in r.json()["scores"])
    assert len(r.json()["scores"]) >= 1
    assert v.get("/api/products/%s/scores?tenant_id=%s"
                 % (feat.fp, feat.owner.tenant_id)).status_code == 200
    assert v.get("/api/products/%s/scores?tenant_id=%s"
                 % (feat.fp, feat.user("outsider").tenant_id)).status_code == 404
    t = v.get("/api/products/tenant/%s/scores" % feat.owner.tenant_id)
    assert t.status_code == 200
    body = t.json()
    assert body["tenant_id"] == feat.owner.tenant_id
    assert {s["product_id"] for s in body["scores"]} == {feat.fp}
    assert {s["product_name"] for s in body["scores"]} == {"Feature product"}
    for tid in (feat.user("outsider").tenant_id, str(uuid.uuid4())):
        assert v.get("/api/products/tenant/%s/scores" % tid).status_code == 404
    # the stranger sees no score of a product not shared with them
    s = feat.client("stranger").get("/api/products/tenant/%s/scores" % feat.owner.tenant_id)
    assert s.status_code == 200 and s.json()["scores"] == []


def test_usage_stats_and_agent_metrics_are_the_tenants_real_figures(feat, agentd):
    o = feat.owner
    r = o.http.post("/api/multi-agent/process", json={
        "query": "Who competes with us?", "product_id": feat.fp, "primary_agent": "research",
        "supporting_agents": ["analysis"], "context": {"phase_name": "Market Research"}},
        timeout=60)
    assert r.status_code == 200, r.text
    st = o.http.get("/api/agents/usage-stats")
    assert st.status_code == 200, st.text
    s = st.json()
    assert set(s) == {"total_agents", "total_usage", "agents", "usage_by_phase", "usage_trend"}
    by = {a["agent_role"]: a for a in s["agents"]}
    assert s["total_agents"] == len(by) == 15
    assert by["research"]["usage_count"] >= 1 and by["analysis"]["usage_count"] >= 1
    assert by["research"]["total_tokens"] > 0
    assert by["research"]["avg_processing_time"] > 0
    assert by["research"]["agent_name"] == "Research Agent"
    assert by["v0"]["usage_count"] == 0
    assert s["total_usage"] == sum(a["usage_count"] for a in s["agents"])
    assert s["usage_by_phase"].get("Market Research", 0) >= 1
    assert s["usage_trend"] and s["usage_trend"][-1]["count"] >= 2
    counts = [a["usage_count"] for a in s["agents"]]
    assert counts == sorted(counts, reverse=True)
    m = o.http.get("/api/metrics/agent-metrics").json()
    assert m["summary"]["total_calls"] >= 2 and m["agents"]["research"]["total_calls"] >= 1
    assert m["summary"]["total_time"] > 0
    assert m["summary"]["cache_hits"] + m["summary"]["cache_misses"] == \
        m["summary"]["total_calls"]
    # tenant B sees none of it
    b = feat.client("outsider")
    sb = b.get("/api/agents/usage-stats").json()
    assert sb["total_usage"] == 0 and sb["usage_trend"] == []
    assert b.get("/api/metrics/agent-metrics").json()["summary"]["total_calls"] == 0
