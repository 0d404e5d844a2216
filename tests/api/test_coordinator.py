"""The coordinator (issue 12 items 2, 4, 6; API.md 5.3 to 5.5): routing, the NLU gate, each
coordination mode's order and concurrency, the context (history, submissions, knowledge,
budget), the response cache and the conversation rows, through nginx against agentd and the
fake provider.

Order and concurrency come from the fake's request log: `arrived` and `ended` number the
arrival and the end of each provider call on one counter (tests/fakes/README.md), so "ran side
by side" is "all arrived before any ended", with no clock compared. Each test's user has its
own stored key, so its calls are the log entries with that key.
"""

import json
import time
import uuid

import pytest

from conftest import psql, psql_one, redis_cmd, wait_for
from product_helpers import User, world  # noqa: F401 (fixture)
from test_agentd import agentd, fake_log, fake_script, history_count, keyed_user  # noqa: F401
from test_ai_e2e import SSE, own_product

SYSTEM_OF = {  # the first words of each agent's system prompt (app/agents.c)
    "research": "You are the market research agent",
    "analysis": "You are the analysis agent",
    "ideation": "You are the ideation agent",
    "validation": "You are the validation agent",
    "strategy": "You are the strategy agent",
    "requirements": "You are the requirements agent",
    "rag": "You are the knowledge agent",
}


def agent_of(call):
    for k, v in SYSTEM_OF.items():
        if (call.get("system") or "").startswith(v):
            return k
    return None


def process(user, body, timeout=60):
    r = user.http.post("/api/multi-agent/process", json=body, timeout=timeout)
    assert r.status_code == 200, r.text
    return r.json()


def calls(user, n, timeout=20):
    """The user's provider calls once n of them have ended, in arrival order."""
    def done():
        log = [x for x in fake_log(user.key) if x["path"].endswith("/chat/completions")]
        return log if len(log) >= n and all(x["ended"] for x in log) else None
    return sorted(wait_for(done, timeout, message="%d provider calls" % n),
                  key=lambda x: x["arrived"])


# ---------------------------------------------------------------------------------------------
# routing (API.md 5.3 steps 1 to 4)


@pytest.mark.parametrize("query,context,primary", [
    ("Write the next part for us", {"phase_name": "Requirements"}, "requirements"),
    ("Write the next part for us", {"phase_name": "Market Research"}, "research"),
    ("Who are our main competitors in this market and what trends matter?", None, "research"),
    ("Draft the roadmap and the pricing for the launch", None, "strategy"),
    ("Do a SWOT and a risk analysis", None, "analysis"),
    ("Write user stories with acceptance criteria", None, "requirements"),
    ("yes", {"phase_name": "Go-to-Market"}, "strategy"),
    ("ok, go ahead", {"phase_name": "Ideation"}, "ideation"),
    ("Hello there", None, "research"),
])
def test_routing_table(world, agentd, query, context, primary):
    u = keyed_user(world, "route")
    body = {"query": query, "coordination_mode": "enhanced_collaborative"}
    if context:
        body["context"] = context
    res = process(u, body)
    assert res["primary_agent"] == primary, res["metadata"]
    assert res["metadata"]["primary_agent"] == primary
    sup = res["metadata"]["supporting_agents"]
    assert "rag" in sup and primary not in sup and len(sup) == len(set(sup))
    if context:
        assert res["metadata"]["phase"] == context["phase_name"]
    # every consulted agent and the primary were called, each once, with this user's key
    assert sorted(agent_of(c) or "?" for c in calls(u, len(sup) + 1)) == \
        sorted([primary] + [a if a in SYSTEM_OF else "?" for a in sup])


def test_phase_is_detected_from_the_last_messages(world, agentd):
    u = keyed_user(world, "detect")
    pid = own_product(u)
    sid = psql_one("INSERT INTO conversation_sessions (user_id, product_id, tenant_id, title) "
                   "VALUES ($1, $2, $3, 't') RETURNING id", u.id, pid, u.tenant_id)
    for text in ("What is the market size?", "Our competitors are A and B",
                 "The market trend is consolidation", "Which industry segment first?"):
        psql("INSERT INTO conversation_history (session_id, product_id, tenant_id, "
             "message_type, content) VALUES ($1, $2, $3, 'user', $4)", sid, pid, u.tenant_id,
             text)
    res = process(u, {"query": "continue", "product_id": pid,
                      "coordination_mode": "enhanced_collaborative"})
    assert res["metadata"]["phase"] == "Market Research"
    assert res["metadata"]["phase_detected"] is True
    assert res["primary_agent"] == "research"  # a confirmation in the detected phase


@pytest.mark.parametrize("word", ["no", "Skip", "not now.", "never mind"])
def test_a_bare_negative_gets_the_guidance_as_an_answer_without_a_provider_call(world, agentd,
                                                                                word):
    u = keyed_user(world, "nlu")
    pid = own_product(u)
    res = process(u, {"query": word, "product_id": pid,
                      "coordination_mode": "enhanced_collaborative"})
    assert res["primary_agent"] == "coordinator"
    assert res["response"].startswith("Understood, nothing more on this for now.")
    assert res["metadata"]["cache_hit"] is False
    assert fake_log(u.key) == []  # no provider call
    wait_for(lambda: history_count(u, pid) == 2, 5, message="the guidance saved")
    rows = psql("SELECT h.message_type, h.agent_name, h.content FROM conversation_history h "
                "JOIN conversation_sessions s ON s.id = h.session_id WHERE s.user_id = $1 "
                "ORDER BY h.created_at", u.id)
    assert rows == [("user", None, word), ("agent", "coordinator", res["response"])]


def test_a_negative_on_the_stream_is_a_proper_event_sequence(world, agentd):
    u = keyed_user(world, "nlustream")
    r = u.http.post("/api/streaming/multi-agent/stream", json={"query": "skip"}, stream=True,
                    timeout=30)
    assert r.status_code == 200
    events = SSE(r).rest()
    names = [e["event"] for e in events]
    assert names == ["progress", "agent_start", "agent_chunk", "agent_complete", "interaction",
                     "complete"], names
    assert events[-1]["json"]["response"] == events[2]["json"]["chunk"]
    assert events[-1]["json"]["response"].startswith("Understood")
    assert fake_log(u.key) == []


def test_a_negative_needs_no_provider_and_empty_input_is_422(world, agentd):
    u = User(world.tenant_a, "noprov")  # no key of its own: the server's fake key serves it
    r = u.http.post("/api/multi-agent/process", json={"query": "no thanks"}, timeout=30)
    assert r.status_code == 200 and r.json()["primary_agent"] == "coordinator"
    for q in ("", "   ", "\n\t"):
        r = u.http.post("/api/multi-agent/process", json={"query": q}, timeout=30)
        assert r.status_code == 422, (q, r.text)
    assert psql_one("SELECT count(*) FROM agent_jobs WHERE user_id = $1", u.id) == "1"


def test_questions_and_requests_are_never_declined(world, agentd):
    u = keyed_user(world, "nluq")
    for q in ("no?", "No, tell me more about pricing"):
        res = process(u, {"query": q, "primary_agent": "strategy",
                          "supporting_agents": ["analysis"]})
        assert res["primary_agent"] == "strategy"
        assert res["response"].startswith("Fake answer")
    assert [agent_of(c) for c in calls(u, 4)] == ["analysis", "strategy"] * 2


# ---------------------------------------------------------------------------------------------
# modes (API.md 5.3 step 5)


def test_enhanced_collaborative_supporting_side_by_side_then_the_primary(world, agentd):
    u = keyed_user(world, "menh")
    fake_script(u.key, [{"kind": "ok", "text": "insight-A", "first_token_ms": 300},
                        {"kind": "ok", "text": "insight-B", "first_token_ms": 300},
                        {"kind": "ok", "text": "the answer"}])
    res = process(u, {"query": "Plan the market entry", "primary_agent": "research",
                      "supporting_agents": ["analysis", "ideation"],
                      "coordination_mode": "enhanced_collaborative"})
    c = calls(u, 3)
    s1, s2, p = c
    assert {agent_of(s1), agent_of(s2)} == {"analysis", "ideation"}
    assert max(s1["arrived"], s2["arrived"]) < min(s1["ended"], s2["ended"])  # concurrent
    assert agent_of(p) == "research" and p["arrived"] > max(s1["ended"], s2["ended"])
    assert "insight-A" in p["prompt"] and "insight-B" in p["prompt"]
    assert res["response"] == "the answer" and res["coordination_mode"] == "enhanced_collaborative"


def test_collaborative_consults_one_after_another_each_seeing_the_earlier_insights(world,
                                                                                  agentd):
    u = keyed_user(world, "mcol")
    fake_script(u.key, [{"kind": "ok", "text": "first-insight"},
                        {"kind": "ok", "text": "second-insight"},
                        {"kind": "ok", "text": "collab answer"}])
    res = process(u, {"query": "Plan the market entry", "primary_agent": "research",
                      "supporting_agents": ["analysis", "ideation"],
                      "coordination_mode": "collaborative"})
    a, b, p = calls(u, 3)
    assert [agent_of(a), agent_of(b), agent_of(p)] == ["analysis", "ideation", "research"]
    assert a["ended"] < b["arrived"] and b["ended"] < p["arrived"]
    assert "first-insight" not in a["prompt"]
    assert "first-insight" in b["prompt"]
    assert "first-insight" in p["prompt"] and "second-insight" in p["prompt"]
    assert res["response"] == "collab answer"


def test_sequential_each_agent_builds_on_the_previous_answer(world, agentd):
    u = keyed_user(world, "mseq")
    fake_script(u.key, [{"kind": "ok", "text": "draft-one"},
                        {"kind": "ok", "text": "draft-two"},
                        {"kind": "ok", "text": "final-three"}])
    res = process(u, {"query": "Write the positioning", "primary_agent": "strategy",
                      "supporting_agents": ["research", "validation"],
                      "coordination_mode": "sequential"})
    a, b, p = calls(u, 3)
    assert [agent_of(a), agent_of(b), agent_of(p)] == ["research", "validation", "strategy"]
    assert a["ended"] < b["arrived"] and b["ended"] < p["arrived"]
    assert "draft-one" in b["prompt"] and "draft-two" in p["prompt"]
    assert "draft-one" not in p["prompt"]  # each builds on the one before it
    assert res["response"] == "final-three"
    assert [i["from_agent"] for i in res["agent_interactions"]] == \
        ["coordinator", "research", "validation"]


def test_parallel_every_agent_at_once_and_the_primarys_answer_wins(world, agentd):
    u = keyed_user(world, "mpar")
    fake_script(u.key, [{"kind": "ok", "text": "p-%d" % i, "first_token_ms": 300}
                        for i in range(3)])
    res = process(u, {"query": "Assess the idea", "primary_agent": "strategy",
                      "supporting_agents": ["research", "analysis"],
                      "coordination_mode": "parallel"})
    c = calls(u, 3)
    assert max(x["arrived"] for x in c) < min(x["ended"] for x in c)  # all side by side
    assert sorted(agent_of(x) for x in c) == ["analysis", "research", "strategy"]
    assert len({x["prompt"] for x in c}) == 1  # the same message for all
    by_agent = {i["to_agent"]: i["response"] for i in res["agent_interactions"]}
    assert res["response"] == by_agent["strategy"]
    assert sorted(by_agent.values()) == ["p-0", "p-1", "p-2"]


def test_debate_two_answers_two_critiques_then_the_synthesis(world, agentd):
    u = keyed_user(world, "mdeb")
    fake_script(u.key, [{"kind": "ok", "text": "open-%d" % i, "first_token_ms": 200}
                        for i in range(2)] +
                [{"kind": "ok", "text": "crit-%d" % i, "first_token_ms": 200}
                 for i in range(2)] + [{"kind": "ok", "text": "synthesis"}])
    res = process(u, {"query": "Should we build it?", "primary_agent": "strategy",
                      "supporting_agents": ["analysis"], "coordination_mode": "debate"})
    o1, o2, c1, c2, s = calls(u, 5)
    assert {agent_of(o1), agent_of(o2)} == {"strategy", "analysis"}
    assert max(o1["arrived"], o2["arrived"]) < min(o1["ended"], o2["ended"])
    assert max(o1["ended"], o2["ended"]) < min(c1["arrived"], c2["arrived"])
    assert max(c1["arrived"], c2["arrived"]) < min(c1["ended"], c2["ended"])
    # each critiques the other's answer once (the fake answered in arrival order)
    opened = {agent_of(o1): "open-0", agent_of(o2): "open-1"}
    assert {agent_of(c1), agent_of(c2)} == {"strategy", "analysis"}
    for crit in (c1, c2):
        mine = opened[agent_of(crit)]
        other = [t for a, t in opened.items() if a != agent_of(crit)][0]
        assert other in crit["prompt"] and mine not in crit["prompt"]
    assert agent_of(s) == "strategy" and s["arrived"] > max(c1["ended"], c2["ended"])
    for t in ("open-0", "open-1", "crit-0", "crit-1"):
        assert t in s["prompt"]
    assert res["response"] == "synthesis" and res["coordination_mode"] == "debate"


def test_stream_parallel_streams_the_primarys_tokens_only(world, agentd):
    u = keyed_user(world, "mparstream")
    r = u.http.post("/api/streaming/multi-agent/stream", json={
        "query": "Assess it", "primary_agent": "research", "supporting_agents": ["analysis"],
        "coordination_mode": "parallel"}, stream=True, timeout=60)
    events = SSE(r).rest()
    assert {e["json"]["agent"] for e in events if e["event"] == "agent_chunk"} == {"research"}
    assert events[-1]["event"] == "complete"
    assert events[-1]["json"]["metadata"]["mode"] == "parallel"


# ---------------------------------------------------------------------------------------------
# context (API.md 5.3 step 2): history and submissions on every path, bounded


def test_history_and_submissions_reach_the_agents_on_the_sync_path(world, agentd):
    u = keyed_user(world, "ctxsync")
    pid = own_product(u)
    phase = psql_one("SELECT id FROM product_lifecycle_phases WHERE phase_name = 'Ideation'")
    r = u.http.post("/api/db/phase-submissions", json={
        "product_id": pid, "phase_id": phase,
        "form_data": {"problem_statement": "Nurses lose 40 minutes per shift to paperwork"}})
    assert r.status_code == 200, r.text
    process(u, {"query": "Remember the zebra codename", "product_id": pid,
                "primary_agent": "ideation", "supporting_agents": []})
    fake_log_before = len(fake_log(u.key))
    res = process(u, {"query": "What should we do next?", "product_id": pid,
                      "primary_agent": "ideation", "supporting_agents": []})
    last = calls(u, fake_log_before + 1)[-1]
    assert "Remember the zebra codename" in last["prompt"]  # the earlier question
    assert "40 minutes per shift" in last["prompt"]  # the Ideation submission
    assert res["metadata"]["has_context"] is True


def test_context_keeps_the_newest_messages_within_the_token_budget(world, agentd):
    u = keyed_user(world, "budget")
    pid = own_product(u)
    sid = psql_one("INSERT INTO conversation_sessions (user_id, product_id, tenant_id, title) "
                   "VALUES ($1, $2, $3, 't') RETURNING id", u.id, pid, u.tenant_id)
    # 50 messages of 1 500 characters: 75 000 characters, over the 32 000 of 8 000 tokens
    for i in range(50):
        psql("INSERT INTO conversation_history (session_id, product_id, tenant_id, "
             "message_type, content, created_at) VALUES ($1, $2, $3, 'user', $4, "
             "now() - make_interval(mins => $5::int))", sid, pid, u.tenant_id,
             ("msg%02d " % i) + "x" * 1494, str(50 - i))
    process(u, {"query": "Summarise", "product_id": pid, "primary_agent": "summary",
                "supporting_agents": []})
    p = calls(u, 1)[-1]["prompt"]
    assert "msg49 " in p and "msg48 " in p  # the newest
    assert "msg00 " not in p and "msg10 " not in p  # the oldest dropped
    assert len(p) <= 8000 * 4 + 2000
    kept = [i for i in range(50) if "msg%02d " % i in p]
    assert kept == list(range(kept[0], 50))  # a contiguous recent past, oldest first
    assert p.index("msg48 ") < p.index("msg49 ")


def test_retrieval_never_reaches_another_products_or_tenants_articles(world, agentd):
    u = keyed_user(world, "scope")
    mine, other = own_product(u), own_product(u)
    for pid, title in ((mine, "Mine memo"), (other, "Other product memo")):
        r = u.http.post("/api/db/knowledge-articles", json={
            "product_id": pid, "title": title, "content": "The quokka pricing plan."})
        assert r.status_code == 200, r.text
    stranger = keyed_user(world, "scope2")
    outsider = User(world.tenant_b, "scopeb")
    for owner in (stranger, outsider):
        p = own_product(owner)
        r = owner.http.post("/api/db/knowledge-articles", json={
            "product_id": p, "title": "Foreign memo", "content": "The quokka pricing plan."})
        assert r.status_code == 200, r.text
    res = process(u, {"query": "What is the quokka pricing plan?", "product_id": mine,
                      "primary_agent": "strategy", "supporting_agents": ["rag"]})
    for call in calls(u, 2):
        assert "Mine memo" in call["prompt"]
        assert "Other product memo" not in call["prompt"]
        assert "Foreign memo" not in call["prompt"]
    srcs = [s["title"] for s in res["metadata"]["context_sources"]]
    assert srcs == ["Mine memo"]


# ---------------------------------------------------------------------------------------------
# response cache (API.md 4.3, 8.2 item 13 fixed)


def agent_call(user, agent, text="Describe the onboarding flow", product_id=None):
    body = {"agent_type": agent, "messages": [{"role": "user", "content": text}]}
    if product_id:
        body["product_id"] = product_id
    r = user.http.post("/api/agents/process", json=body, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def test_cache_key_separates_agents_and_users_and_serves_the_same_call_once(world, agentd):
    u = keyed_user(world, "cache")
    fake_script(u.key, [{"kind": "ok", "text": "research says"},
                        {"kind": "ok", "text": "analysis says"}])
    a = agent_call(u, "research")
    b = agent_call(u, "analysis")  # another agent, same message: its own call
    assert (a["response"], b["response"]) == ("research says", "analysis says")
    assert len(calls(u, 2)) == 2
    c = agent_call(u, "research")  # same agent, user and context: the cache
    assert c["response"] == "research says" and c["metadata"]["cache_hit"] is True
    assert a["metadata"]["cache_hit"] is False
    assert c["metadata"]["tokens"]["total"] == 0
    time.sleep(0.3)
    assert len(fake_log(u.key)) == 2  # no provider call for the hit
    v = keyed_user(world, "cache2")  # another user, same agent and message: not shared
    fake_script(v.key, [{"kind": "ok", "text": "for v"}])
    assert agent_call(v, "research")["response"] == "for v"
    assert len(fake_log(v.key)) == 1
    keys = redis_cmd("--scan", "--pattern", "agent_cache:research:*").split()
    assert keys, "no cache entry in Redis"
    ttl = int(redis_cmd("TTL", keys[0]))
    assert 0 < ttl <= 3600


def test_cache_is_bypassed_with_redis_down(world, agentd, redis):
    u = keyed_user(world, "cachedown")
    fake_script(u.key, [{"kind": "ok", "text": "one"}, {"kind": "ok", "text": "two"}])
    with redis.down():
        assert agent_call(u, "validation")["response"] == "one"
        r = agent_call(u, "validation")
        assert r["response"] == "two" and r["metadata"]["cache_hit"] is False
    assert len(fake_log(u.key)) == 2


def test_failed_answers_are_not_cached(world, agentd):
    u = keyed_user(world, "cachefail")
    fake_script(u.key, [{"kind": "401"}])
    r = u.http.post("/api/agents/process", json={
        "agent_type": "summary", "messages": [{"role": "user", "content": "x"}]}, timeout=60)
    assert r.status_code == 401
    fake_script(u.key, [{"kind": "ok", "text": "fresh"}])
    assert agent_call(u, "summary", "x")["response"] == "fresh"


# ---------------------------------------------------------------------------------------------
# persistence (API.md 5.5), once per answer, on every path


def agent_rows(user):
    return psql("SELECT h.session_id, h.message_type, h.agent_name, h.agent_role, h.content, "
                "h.interaction_metadata::text, h.tenant_id, h.product_id FROM "
                "conversation_history h JOIN conversation_sessions s ON s.id = h.session_id "
                "WHERE s.user_id = $1 ORDER BY h.created_at", user.id)


@pytest.mark.parametrize("path", ["process", "stream", "submit"])
@pytest.mark.parametrize("with_product", [True, False])
def test_each_answer_is_saved_once_as_api_5_5(world, agentd, path, with_product):
    u = keyed_user(world, "save")
    pid = own_product(u) if with_product else None
    body = {"query": "Question %s" % uuid.uuid4().hex[:6], "primary_agent": "research",
            "supporting_agents": ["analysis"], "coordination_mode": "enhanced_collaborative"}
    if pid:
        body["product_id"] = pid
    for _ in range(2):  # two answers: two pairs of rows, one session
        fake_script(u.key, [{"kind": "ok", "text": "support"},
                            {"kind": "ok", "text": "answer %s" % uuid.uuid4().hex[:6]}])
        if path == "process":
            process(u, body)
        elif path == "stream":
            r = u.http.post("/api/streaming/multi-agent/stream", json=body, stream=True,
                            timeout=60)
            SSE(r).rest()
        else:
            r = u.http.post("/api/multi-agent/submit", json={"request": body})
            job = r.json()["job_id"]
            wait_for(lambda: u.http.get("/api/multi-agent/jobs/%s/status" % job).json()
                     ["status"] == "completed", 30, message="the job")
        body["query"] += " again"
    wait_for(lambda: len(agent_rows(u)) == 4, 10, message="4 rows")
    time.sleep(0.3)
    rows = agent_rows(u)
    assert len(rows) == 4
    assert len({r[0] for r in rows}) == 1  # one session, found again for the second answer
    title = psql_one("SELECT title FROM conversation_sessions WHERE id = $1", rows[0][0])
    assert title == ("Product %s..." % pid[:8] if pid else "New Conversation")
    assert [r[1] for r in rows] == ["user", "agent", "user", "agent"]
    for r in rows:
        assert r[6] == u.tenant_id and r[7] == pid
    user_row, agent_row = rows[0], rows[1]
    assert user_row[4].startswith("Question ") and user_row[2] is None
    assert agent_row[2] == agent_row[3] == "research"
    md = json.loads(agent_row[5])
    assert md["primary_agent"] == "research"
    assert md["coordination_mode"] == "enhanced_collaborative"
    assert [set(i) for i in md["agent_interactions"]] == \
        [{"from_agent", "to_agent", "query", "response", "metadata"}] * 2
    pm = md["performance_metrics"]
    assert set(pm) == {"total_processing_time", "total_tokens", "total_cache_hits",
                       "total_cache_misses", "agent_metrics"}
    assert set(pm["agent_metrics"]) == {"research", "analysis"}
    assert pm["total_cache_misses"] == 2 and pm["total_tokens"] > 0
    for m in pm["agent_metrics"].values():
        assert set(m) == {"processing_time", "tokens", "cache_hits", "cache_misses", "count"}


def test_a_given_session_id_is_used_when_it_is_the_callers(world, agentd):
    u = keyed_user(world, "savesid")
    pid = own_product(u)
    sid = psql_one("INSERT INTO conversation_sessions (user_id, product_id, tenant_id, title) "
                   "VALUES ($1, $2, $3, 'mine') RETURNING id", u.id, pid, u.tenant_id)
    psql("INSERT INTO conversation_sessions (user_id, product_id, tenant_id, title) "
         "VALUES ($1, $2, $3, 'newer') RETURNING id", u.id, pid, u.tenant_id)
    process(u, {"query": "Hi there", "product_id": pid, "primary_agent": "research",
                "supporting_agents": [], "context": {"session_id": sid}})
    wait_for(lambda: len(agent_rows(u)) == 2, 10, message="rows")
    assert {r[0] for r in agent_rows(u)} == {sid}


# ---------------------------------------------------------------------------------------------
# GET /api/multi-agent/interactions: the caller's own


def test_interactions_are_the_callers_own(world, agentd):
    a = keyed_user(world, "inta")
    b = keyed_user(world, "intb")
    process(a, {"query": "Secret plan of A", "primary_agent": "research",
                "supporting_agents": ["analysis"]})
    r = a.http.get("/api/multi-agent/interactions")
    assert r.status_code == 200
    j = r.json()
    assert j["count"] == 2 and len(j["interactions"]) == 2
    assert {i["to_agent"] for i in j["interactions"]} == {"research", "analysis"}
    assert all(i["query"] == "Secret plan of A" for i in j["interactions"])
    rb = b.http.get("/api/multi-agent/interactions").json()
    assert rb == {"interactions": [], "count": 0}
    assert world.anon.get("/api/multi-agent/interactions").status_code == 401
