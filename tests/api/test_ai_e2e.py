"""The AI engine end to end, as a client sees it: through nginx, the API (authentication,
validation, the job row) hands the request to ideaforge-agentd with X-Accel-Redirect, and the
tokens of the fake provider arrive as they are produced. Also: kill -9 of agentd mid-answer,
the synchronous routes, the job routes."""

import json
import signal
import time

import pytest

from conftest import psql_one, wait_for
from product_helpers import world  # noqa: F401 (fixture)
from test_agentd import (agentd, agentd_start, agentd_stop, fake_log,  # noqa: F401 (fixture)
                         fake_script, history_count, job_row, keyed_user, wait_state)


class SSE:
    """Server-sent events read from a requests response (stream=True)."""

    def __init__(self, resp):
        self.resp = resp
        self.lines = resp.iter_lines(decode_unicode=True)
        self.events = []

    def next(self):
        ev = {}
        for line in self.lines:
            if line == "":
                if ev:
                    ev["json"] = json.loads(ev["data"]) if "data" in ev else None
                    self.events.append(ev)
                    return ev
                continue
            if line.startswith(":"):
                continue
            k, _, v = line.partition(":")
            ev[k] = v[1:] if v.startswith(" ") else v
        return None

    def until(self, event):
        while True:
            ev = self.next()
            assert ev is not None, [e["event"] for e in self.events]
            if ev["event"] == event:
                return ev

    def rest(self):
        while self.next() is not None:
            pass
        return self.events


def own_product(user):
    r = user.http.post("/api/products", json={"name": "AI product", "description": "d"})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def ask(user, product_id, query="How big is the market?", **extra):
    body = {"query": query, "product_id": product_id, "primary_agent": "research",
            "supporting_agents": ["analysis"], "coordination_mode": "enhanced_collaborative"}
    body.update(extra)
    r = user.http.post("/api/streaming/multi-agent/stream", json=body, stream=True, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/event-stream")
    return SSE(r)


def test_tokens_stream_through_nginx_before_the_answer_is_complete(world, agentd):
    u = keyed_user(world, "e2e")
    pid = own_product(u)
    tokens = [" w%d" % i for i in range(30)]
    fake_script(u.key, [{"kind": "ok", "text": "insight"},
                        {"kind": "ok", "tokens": tokens, "tokens_per_s": 20}])
    s = ask(u, pid)
    first = s.until("progress")
    job = first["json"]["job_id"]
    chunk = s.until("agent_chunk")
    # the first token is at the client while the answer is still being written
    assert job_row(job)["state"] == "processing"
    assert chunk["json"]["agent"] == "research"
    events = s.rest()
    assert events[-1]["event"] == "complete"
    chunks = [e["json"]["chunk"] for e in events if e["event"] == "agent_chunk"]
    assert "".join(chunks) == "".join(tokens) == events[-1]["json"]["response"]
    assert len(chunks) == len(tokens)  # as the provider sent them, not re-sliced
    assert all(e.get("id") for e in events)
    row = wait_state(job)
    assert row["state"] == "completed" and row["result"]["response"] == "".join(tokens)
    wait_for(lambda: history_count(u, pid) == 2, 5, message="the answer saved")
    time.sleep(0.3)
    assert history_count(u, pid) == 2  # exactly once
    # every provider call carried this user's own key
    assert {x["key"] for x in fake_log(u.key)} == {u.key}


def test_kill9_agentd_mid_answer_and_the_client_resumes_through_nginx(world, agentd):
    u = keyed_user(world, "e2ekill")
    pid = own_product(u)
    fake_script(u.key, [{"kind": "ok", "text": "s1"},
                        {"kind": "ok", "tokens": [" a%d" % i for i in range(40)],
                         "tokens_per_s": 10},
                        {"kind": "ok", "text": "s1 again"},
                        {"kind": "ok", "tokens": [" b%d" % i for i in range(10)]}])
    s = ask(u, pid)
    job = s.until("progress")["json"]["job_id"]
    last = None
    for _ in range(3):
        last = s.until("agent_chunk")
    agentd_stop(signal.SIGKILL)
    s.resp.close()
    agentd_start()
    r = u.http.get("/api/streaming/jobs/%s/events" % job, headers={"Last-Event-ID": last["id"]},
                   stream=True, timeout=60)
    assert r.status_code == 200
    events = SSE(r).rest()
    assert events[0]["event"] == "agent_reset", [e["event"] for e in events]
    assert events[-1]["event"] == "complete"
    answer = "".join(" b%d" % i for i in range(10))
    assert events[-1]["json"]["response"] == answer
    row = wait_state(job)
    assert row["state"] == "completed" and row["attempts"] == 2
    wait_for(lambda: history_count(u, pid) == 2, 5, message="the answer saved")
    time.sleep(0.3)
    assert history_count(u, pid) == 2


def test_another_user_cannot_open_a_jobs_stream(world, agentd):
    u = keyed_user(world, "e2eowner")
    fake_script(u.key, [{"kind": "ok", "text": "x"}, {"kind": "ok", "text": "y"}])
    s = ask(u, None)
    job = s.until("progress")["json"]["job_id"]
    s.rest()
    other = keyed_user(world, "e2eother")
    r = other.http.get("/api/streaming/jobs/%s/events" % job, timeout=10)
    assert r.status_code == 404 and r.json() == {"detail": "Job not found"}


def test_process_routes_answer_the_finished_answer(world, agentd):
    u = keyed_user(world, "e2esync")
    fake_script(u.key, [{"kind": "ok", "text": "support"}, {"kind": "ok", "text": "The answer."}])
    r = u.http.post("/api/multi-agent/process", json={
        "query": "Summarise", "primary_agent": "summary", "supporting_agents": ["research"]},
        timeout=60)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["response"] == "The answer." and j["primary_agent"] == "summary"
    fake_script(u.key, [{"kind": "ok", "text": "Single agent."}])
    r = u.http.post("/api/agents/process", json={
        "agent_type": "research", "messages": [{"role": "user", "content": "Hi"}]}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["response"] == "Single agent." and r.json()["agent_type"] == "research"


def test_provider_rejecting_the_key_is_401_with_the_documented_message(world, agentd):
    u = keyed_user(world, "e2ebad")
    fake_script(u.key, [{"kind": "401"}] * 4)
    r = u.http.post("/api/agents/process", json={
        "agent_type": "research", "messages": [{"role": "user", "content": "Hi"}]}, timeout=60)
    assert r.status_code == 401, r.text
    assert "rejected the API key" in r.json()["detail"]
    assert u.key not in r.text


def test_submitted_job_completes_and_its_result_is_the_answer(world, agentd):
    u = keyed_user(world, "e2ejob")
    fake_script(u.key, [{"kind": "ok", "text": "s"}, {"kind": "ok", "text": "Queued answer."}])
    r = u.http.post("/api/multi-agent/submit", json={"request": {
        "query": "Plan it", "primary_agent": "strategy", "supporting_agents": ["research"]}})
    assert r.status_code == 200, r.text
    job = r.json()["job_id"]
    wait_for(lambda: u.http.get("/api/multi-agent/jobs/%s/status" % job).json()["status"]
             == "completed", 30, message="the job to complete")
    res = u.http.get("/api/multi-agent/jobs/%s/result" % job)
    assert res.status_code == 200
    assert res.json()["result"]["response"] == "Queued answer."


def test_knowledge_articles_reach_the_agents_and_are_cited_in_metadata(world, agentd):
    u = keyed_user(world, "e2erag")
    pid = own_product(u)
    r = u.http.post("/api/db/knowledge-articles", json={
        "product_id": pid, "title": "Pricing memo", "content": "Our pricing is per seat."})
    assert r.status_code == 200
    art = r.json()["id"]
    fake_script(u.key, [{"kind": "ok", "text": "from kb"}, {"kind": "ok", "text": "final"}])
    s = ask(u, pid, query="What is our pricing?", primary_agent="strategy",
            supporting_agents=["rag"])
    events = s.rest()
    done = [e for e in events if e["event"] == "agent_complete" and e["json"]["agent"] == "rag"]
    assert done and done[0]["json"]["metadata"]["context_sources"][0]["id"] == art
    # the prompt the provider got carried the article
    prompts = [x["prompt"] for x in fake_log(u.key)]
    assert any("Pricing memo" in p and "per seat" in p for p in prompts)
    assert psql_one("SELECT count(*) FROM agent_jobs WHERE product_id = $1", pid) == "1"


def test_design_prompt_is_written_by_the_design_agent_through_agentd(world, agentd):
    """POST /api/design/generate-prompt (API.md 1.13): the lovable/v0 agent writes the prompt
    in agentd; the answer is {prompt, provider, product_id}; the stream form sends the data-only
    events {type: chunk|complete}."""
    u = keyed_user(world, "e2edesign")
    pid = own_product(u)
    fake_script(u.key, [{"kind": "ok", "text": "Build a dashboard with three cards."}])
    r = u.http.post("/api/design/generate-prompt",
                    json={"product_id": pid, "provider": "lovable", "force_new": True},
                    timeout=60)
    assert r.status_code == 200, r.text
    assert r.json() == {"prompt": "Build a dashboard with three cards.", "provider": "lovable",
                        "product_id": pid, "is_existing": False}
    fake_script(u.key, [{"kind": "ok", "tokens": ["One", " two", " three"]}])
    r = u.http.post("/api/design/generate-prompt/stream",
                    json={"product_id": pid, "provider": "v0", "force_new": True},
                    stream=True, timeout=60)
    assert r.status_code == 200
    events = SSE(r).rest()
    kinds = [e["json"]["type"] for e in events]
    assert kinds[-1] == "complete" and kinds.count("chunk") == 3, kinds
    assert events[-1]["json"]["content"] == "One two three"
