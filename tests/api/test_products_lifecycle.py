"""The lifecycle "DB" API (API.md 1.5) and /api/conversations/history (API.md 1.6): phase
submissions (upsert, concurrency, partial update), conversation history (sessions, ordering,
limits) and the rule that the user id of a write is the session's."""

import threading

import pytest

from conftest import new_http, psql, psql_one
from product_helpers import (DESIGN, IDEATION, MARKET, PHASES, detail, uid,
                             world)  # noqa: F401 (fixture)

SUB_KEYS = {"id", "product_id", "phase_id", "user_id", "form_data", "generated_content",
            "status", "metadata", "created_at", "updated_at"}
MSG_KEYS = {"id", "session_id", "product_id", "phase_id", "message_type", "agent_name",
            "agent_role", "content", "formatted_content", "parent_message_id",
            "interaction_metadata", "created_at"}


def test_phases_are_public_and_ordered(world):
    r = world.anon.get("/api/db/phases")
    assert r.status_code == 200
    phases = r.json()["phases"]
    assert [p["id"] for p in phases] == list(PHASES)
    assert [p["phase_order"] for p in phases] == [1, 2, 3, 4, 5, 6]


def test_submission_upsert_and_get(world):
    pid = world.new_product()
    ed = world.user("editor")
    url = "/api/db/phase-submissions/%s/%s" % (pid, IDEATION)
    r = ed.http.get(url)
    assert r.status_code == 200 and r.json() is None
    r = ed.http.post("/api/db/phase-submissions", json={
        "product_id": pid, "phase_id": IDEATION, "user_id": world.user("stranger").id,
        "form_data": {"problem_statement": "p1"}, "status": "in_progress"})
    assert r.status_code == 200, r.text
    first = r.json()
    assert set(first) == {"id", "created_at", "updated_at"}
    got = ed.http.get(url).json()
    assert set(got) == SUB_KEYS
    assert got["form_data"] == {"problem_statement": "p1"} and got["status"] == "in_progress"
    assert got["user_id"] == ed.id  # the session's user, not the body's
    assert got["metadata"] == {} and got["generated_content"] is None
    # second save replaces form_data/status/metadata, same row
    r = world.owner.http.post("/api/db/phase-submissions", json={
        "product_id": pid, "phase_id": IDEATION, "form_data": {"target_audience": "t"},
        "metadata": {"m": 1}})
    assert r.status_code == 200
    assert r.json()["id"] == first["id"] and r.json()["created_at"] == first["created_at"]
    got = ed.http.get(url).json()
    assert got["form_data"] == {"target_audience": "t"} and got["status"] == "draft"
    assert got["metadata"] == {"m": 1} and got["user_id"] == world.owner.id
    assert psql_one("SELECT count(*) FROM phase_submissions WHERE product_id = $1", pid) == "1"


@pytest.mark.parametrize("body,loc", [
    ({"phase_id": IDEATION}, "product_id"),
    ({"product_id": "x", "phase_id": IDEATION}, "product_id"),
    ({"product_id": None, "phase_id": IDEATION}, "product_id"),
    ({"product_id": "PID", "phase_id": IDEATION, "status": "done"}, "status"),
    ({"product_id": "PID", "phase_id": IDEATION, "form_data": []}, "form_data"),
    ({"product_id": "PID"}, "phase_id"),
])
def test_submission_validation(world, body, loc):
    pid = world.new_product(shares=False)
    body = {k: (pid if v == "PID" else v) for k, v in body.items()}
    r = world.owner.http.post("/api/db/phase-submissions", json=body)
    assert r.status_code == 422, r.text
    assert ["body", loc] in [e["loc"] for e in r.json()["detail"]]


def test_submission_unknown_phase(world):
    pid = world.new_product(shares=False)
    r = world.owner.http.post("/api/db/phase-submissions", json={
        "product_id": pid, "phase_id": uid(), "form_data": {}})
    assert r.status_code == 404 and detail(r) == "Phase not found"


def test_concurrent_upserts_of_one_phase_never_fail(world):
    pid = world.new_product()
    statuses = []
    lock = threading.Lock()

    def worker(role, n):
        h = new_http()
        h.headers["Authorization"] = "Bearer " + world.user(role).token
        for i in range(n):
            r = h.post("/api/db/phase-submissions", json={
                "product_id": pid, "phase_id": MARKET,
                "form_data": {"market_size": "%s-%d" % (role, i)}, "status": "in_progress"})
            with lock:
                statuses.append(r.status_code)
        h.close()

    threads = [threading.Thread(target=worker, args=(role, 10))
               for role in ("owner", "editor", "admin", "owner", "editor", "admin",
                            "owner", "editor")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 80
    rows = psql("SELECT form_data->>'market_size' FROM phase_submissions "
                "WHERE product_id = $1 AND phase_id = $2", pid, MARKET)
    assert len(rows) == 1 and rows[0][0].split("-")[1] == "9"


def test_submission_list_order_and_filters(world):
    pid = world.new_product()
    o = world.owner.http
    for phase in (DESIGN, IDEATION, MARKET):
        assert o.post("/api/db/phase-submissions", json={
            "product_id": pid, "phase_id": phase, "form_data": {"x": phase}}).status_code == 200
    subs = world.client("viewer").get("/api/db/phase-submissions",
                                      params={"product_id": pid}).json()["submissions"]
    assert [s["phase_id"] for s in subs] == [DESIGN, IDEATION, MARKET]  # oldest first
    assert all(set(s) == SUB_KEYS for s in subs)
    one = o.get("/api/db/phase-submissions",
                params={"product_id": pid, "phase_id": MARKET}).json()["submissions"]
    assert [s["phase_id"] for s in one] == [MARKET]
    assert o.get("/api/db/phase-submissions", params={"phase_id": "x"}).status_code == 422


def test_submission_update(world):
    pid = world.new_product()
    o = world.owner.http
    sid = o.post("/api/db/phase-submissions", json={
        "product_id": pid, "phase_id": IDEATION,
        "form_data": {"problem_statement": "p"}}).json()["id"]
    url = "/api/db/phase-submissions/" + sid
    ed = world.user("editor")
    r = ed.http.put(url, json={})
    assert r.status_code == 400 and detail(r) == "No fields to update"
    r = ed.http.put(url, json={"status": "finished"})
    assert r.status_code == 422
    r = ed.http.put(url, json={"generated_content": "Generated text", "status": "completed"})
    assert r.status_code == 200, r.text
    s = r.json()
    assert set(s) == SUB_KEYS
    assert (s["generated_content"], s["status"], s["user_id"]) == \
        ("Generated text", "completed", ed.id)
    assert s["form_data"] == {"problem_statement": "p"}  # untouched
    assert ed.http.put("/api/db/phase-submissions/" + uid(),
                       json={"status": "draft"}).status_code == 404
    assert ed.http.put("/api/db/phase-submissions/bad", json={"status": "draft"}).status_code == 422
    assert world.anon.put(url, json={"status": "draft"}).status_code == 401


def append(http, **kw):
    body = {"message_type": "user", "content": "hello"}
    body.update(kw)
    return http.post("/api/db/conversation-history", json=body)


def test_append_creates_session_and_lists_oldest_first(world):
    pid = world.new_product()
    v = world.user("editor")  # writing to a product's chat needs edit rights (issue 9 item 5)
    sess = uid()
    r = append(v.http, session_id=sess, product_id=pid, content="one")
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"id", "created_at"}
    assert psql("SELECT user_id, product_id, tenant_id, title FROM conversation_sessions "
                "WHERE id = $1", sess) == [(v.id, pid, world.tenant_a,
                                           "Product Lifecycle Session")]
    first = r.json()["id"]
    r = append(v.http, session_id=sess, product_id=pid, message_type="system",
               agent_name="Research Agent", agent_role="research", content="two",
               formatted_content="**two**", parent_message_id=first, phase_id=MARKET,
               interaction_metadata={"k": [1, 2]})
    assert r.status_code == 200, r.text
    assert append(v.http, session_id=sess, product_id=pid, content="three").status_code == 200
    assert psql_one("SELECT count(*) FROM conversation_sessions WHERE id = $1", sess) == "1"
    msgs = v.http.get("/api/db/conversation-history",
                      params={"session_id": sess}).json()["messages"]
    assert [m["content"] for m in msgs] == ["one", "two", "three"]
    assert all(set(m) == MSG_KEYS for m in msgs)
    assert msgs[1]["agent_name"] == "Research Agent" and msgs[1]["parent_message_id"] == first
    assert msgs[1]["interaction_metadata"] == {"k": [1, 2]} and msgs[1]["phase_id"] == MARKET
    # limit keeps the newest, still oldest first
    last2 = world.owner.http.get("/api/db/conversation-history",
                                 params={"product_id": pid, "limit": 2}).json()["messages"]
    assert [m["content"] for m in last2] == ["two", "three"]


@pytest.mark.parametrize("body,loc", [
    ({"product_id": None}, "session_id"),
    ({"session_id": "nope"}, "session_id"),
    ({"session_id": "S", "message_type": "bot"}, "message_type"),
    ({"session_id": "S", "content": None}, "content"),
    ({"session_id": "S", "content": "x" * (1024 * 1024 + 1)}, "content"),
])
def test_append_validation(world, body, loc):
    body = {k: (uid() if v == "S" else v) for k, v in body.items()}
    r = append(world.owner.http, **body)
    assert r.status_code == 422, r.text
    assert ["body", loc] in [e["loc"] for e in r.json()["detail"]]


def test_append_to_someone_elses_session(world):
    pid = world.new_product()
    sess = uid()
    assert append(world.owner.http, session_id=sess, product_id=pid).status_code == 200
    # a user with no access to the session's product
    r = append(world.user("stranger").http, session_id=sess)
    assert r.status_code == 403 and detail(r) == "Access denied to conversation session"
    # a session of another tenant, even without a product in the body
    r = append(world.user("outsider").http, session_id=sess)
    assert r.status_code == 403
    # a general (product-less) session is its creator's only
    own = uid()
    assert append(world.user("viewer").http, session_id=own).status_code == 200
    assert append(world.user("editor").http, session_id=own).status_code == 403
    assert psql_one("SELECT count(*) FROM conversation_history WHERE session_id = $1",
                    own) == "1"


def test_append_parent_must_be_in_tenant(world):
    pid = world.new_product()
    foreign = uid()
    other = world.user("outsider").http.post("/api/products", json={"name": "B"}).json()["id"]
    r = append(world.user("outsider").http, session_id=foreign, product_id=other)
    assert r.status_code == 200
    foreign_msg = r.json()["id"]
    r = append(world.owner.http, session_id=uid(), product_id=pid,
               parent_message_id=foreign_msg)
    assert r.status_code == 400 and detail(r) == "Parent message not found"


def test_messages_without_product_are_mine_or_visible(world):
    sess = uid()
    v = world.user("viewer")
    assert append(v.http, session_id=sess, content="private note").status_code == 200
    mine = v.http.get("/api/db/conversation-history").json()["messages"]
    assert "private note" in [m["content"] for m in mine]
    theirs = world.user("editor").http.get("/api/db/conversation-history").json()["messages"]
    assert sess not in [m["session_id"] for m in theirs]
    r = world.user("editor").http.get("/api/db/conversation-history",
                                      params={"session_id": sess})
    assert r.status_code == 200 and r.json() == {"messages": []}


def test_conversations_history(world):
    pid = world.new_product("Chatty")
    sess = uid()
    o = world.owner.http
    for i in range(3):
        assert append(o, session_id=sess, product_id=pid, content="m%d" % i).status_code == 200
    r = world.client("viewer").get("/api/conversations/history", params={"product_id": pid})
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 3
    assert [c["content"] for c in body["conversations"]] == ["m2", "m1", "m0"]  # newest first
    c = body["conversations"][0]
    assert set(c) == {"id", "message_type", "agent_name", "agent_role", "content",
                      "formatted_content", "created_at", "session_title", "product_id",
                      "product_name"}
    assert (c["session_title"], c["product_id"], c["product_name"]) == \
        ("Product Lifecycle Session", pid, "Chatty")
    r = o.get("/api/conversations/history", params={"product_id": pid, "limit": 2})
    assert r.json()["count"] == 2
    mine = o.get("/api/conversations/history").json()["conversations"]
    assert "m2" in [m["content"] for m in mine]
    assert o.get("/api/conversations/history", params={"limit": "x"}).status_code == 422
