"""The AI routes of the API (issue 11; API.md 1.7 to 1.9, 4.5): the API only authenticates,
validates, rate-limits and enqueues a row of agent_jobs for ideaforge-agentd, and answers
stream and process requests at once with X-Accel-Redirect to nginx's internal /_agentd/
location. agentd does not run in this stack, so these tests look at what the API itself does:
the job row, the owner-only job routes, the caps, the FastCGI answer (read straight from the
API's socket), and the provider routes against the loopback fake provider (tests/fakes)."""

import json
import os
import socket
import struct
import sys
import tempfile
import uuid

import pytest

from auth_helpers import api_config, bearer, burst, clear_rate_limits
from conftest import RUN_DIR, ApiLog, psql, psql_one, redis_down
from product_helpers import User, detail, world  # noqa: F401 (fixture)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "fakes"))
from fake_llm import FakeLLM  # noqa: E402

NO_PROVIDER = "No AI provider is configured"
USER_KEY = "sk-user-Key0123456789abcdefXYZ"
API_SOCK = os.path.join(RUN_DIR, "api.sock")


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers


def give_key(user, provider="openai", key=USER_KEY):
    r = user.http.post("/api/api-keys", json={"provider": provider, "api_key": key})
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def ai(world):
    """The world of product_helpers, each user with a stored OpenAI key (so that ai_choose
    finds a provider), and a product of the owner shared with viewer/editor/admin. The
    stack's ideaforge-agentd is stopped meanwhile: these tests look at the job rows the API
    writes (pending), which a running agentd would take and run (tests/api/test_agentd.py and
    test_ai_e2e.py test that part)."""
    from test_agentd import agentd_pid, agentd_start, agentd_stop
    running = agentd_pid() is not None
    if running:
        agentd_stop()
    for u in world.users.values():
        give_key(u)
    world.product = world.new_product()
    yield world
    if running and agentd_pid() is None:
        agentd_start()


@pytest.fixture
def no_server_provider():
    """The API without a server-wide provider (the test stack's config points at the fake
    provider with a server key): only users' own keys count."""
    with api_config(openai_api_key="", openai_base_url="https://api.openai.com/v1"):
        yield


def finish_open_jobs(w):
    psql("UPDATE agent_jobs SET state = 'failed', error = 'test cleanup' "
         "WHERE tenant_id IN ($1, $2) AND state IN ('pending', 'processing')",
         w.tenant_a, w.tenant_b)


@pytest.fixture(autouse=True)
def _clean(request):
    clear_rate_limits()
    w = request.getfixturevalue("ai") if "ai" in request.fixturenames else None
    if w:
        finish_open_jobs(w)
    yield
    if w:
        finish_open_jobs(w)
    clear_rate_limits()


def job_row(job_id):
    rows = psql("SELECT kind, request::text, user_id, tenant_id, product_id, state, "
                "max_attempts FROM agent_jobs WHERE id = $1", job_id)
    if not rows:
        return None
    kind, req, user_id, tenant_id, product_id, state, attempts = rows[0]
    return {"kind": kind, "request": json.loads(req), "user_id": user_id,
            "tenant_id": tenant_id, "product_id": product_id, "state": state,
            "max_attempts": int(attempts)}


def jobs_of(user):
    return psql("SELECT id, kind, state FROM agent_jobs WHERE user_id = $1 ORDER BY created_at",
                user.id)


def submit(user, **request):
    request.setdefault("query", "What should we build next?")
    return user.http.post("/api/multi-agent/submit", json={"request": request})


def submit_ok(user, **request):
    r = submit(user, **request)
    assert r.status_code == 200, r.text
    return r.json()["job_id"]


# A minimal FastCGI 1.0 client (responder role, section 6.2) to read the API's own answer,
# headers included, before nginx acts on X-Accel-Redirect.

def _fcgi_record(rtype, content, req_id=1):
    return struct.pack("!BBHHBB", 1, rtype, req_id, len(content), 0, 0) + content


def _fcgi_pairs(params):
    out = b""
    for k, v in params.items():
        k, v = k.encode(), v.encode()
        for n in (len(k), len(v)):
            out += struct.pack("!B", n) if n < 128 else struct.pack("!I", n | 0x80000000)
        out += k + v
    return out


def fcgi(method, path, token=None, body=None):
    """(status, headers {lower name: value}, body bytes) of the API for one request."""
    payload = json.dumps(body).encode() if body is not None else b""
    params = {"REQUEST_METHOD": method, "REQUEST_URI": path, "DOCUMENT_URI": path,
              "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
              "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
              "HTTP_X_REQUEST_ID": uuid.uuid4().hex, "CONTENT_LENGTH": str(len(payload))}
    if body is not None:
        params["CONTENT_TYPE"] = "application/json"
    if token:
        params["HTTP_AUTHORIZATION"] = "Bearer " + token
    sk = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sk.settimeout(30)
    sk.connect(API_SOCK)
    try:
        msg = _fcgi_record(1, struct.pack("!HB5x", 1, 0))           # BEGIN_REQUEST, responder
        msg += _fcgi_record(4, _fcgi_pairs(params)) + _fcgi_record(4, b"")   # PARAMS
        if payload:
            msg += _fcgi_record(5, payload)
        msg += _fcgi_record(5, b"")                                 # STDIN
        sk.sendall(msg)
        data, out = b"", b""
        while True:
            while len(data) < 8:
                chunk = sk.recv(65536)
                assert chunk, "FastCGI connection closed early"
                data += chunk
            _, rtype, _, clen, plen, _ = struct.unpack("!BBHHBB", data[:8])
            while len(data) < 8 + clen + plen:
                chunk = sk.recv(65536)
                assert chunk, "FastCGI connection closed early"
                data += chunk
            content, data = data[8:8 + clen], data[8 + clen + plen:]
            if rtype == 6:
                out += content
            elif rtype == 3:
                break
    finally:
        sk.close()
    head, _, rest = out.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode("latin-1").split("\r\n"):
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    status = int(headers.get("status", "200").split()[0])
    return status, headers, rest


# ---------------------------------------------------------------------------------------------
# Without a provider


@pytest.mark.parametrize("path,body", [
    ("/api/multi-agent/submit", {"request": {"query": "q"}}),
    ("/api/streaming/multi-agent/stream", {"query": "q"}),
    ("/api/multi-agent/process", {"query": "q"}),
    ("/api/agents/process", {"agent_type": "research",
                             "messages": [{"role": "user", "content": "hi"}]}),
    ("/api/phase-form-help/stream", None),
    ("/api/agno/initialize", None),
])
def test_ai_routes_answer_400_no_provider_configured_with_the_default_config(ai, path, body,
                                                                            no_server_provider):
    nokey = User(ai.tenant_a, "nokey")
    if path == "/api/phase-form-help/stream":
        body = {"product_id": ai.product, "phase_id": "ideation", "phase_name": "Ideation",
                "current_field": "problem", "current_prompt": "What problem?"}
    r = nokey.http.post(path, json=body) if body is not None else nokey.http.post(path)
    assert r.status_code == 400, r.text
    assert detail(r).startswith(NO_PROVIDER + ": "), r.text
    assert "openai" in detail(r).lower()  # says what to configure
    assert jobs_of(nokey) == []
    # everything else keeps working
    assert nokey.http.get("/api/products").status_code == 200
    st = nokey.http.get("/api/agno/status").json()
    assert st["providers_configured"] is False and st["configured_providers"] == []
    assert st["can_initialize"] is False and st["message"].startswith(NO_PROVIDER)


def test_server_key_file_serves_users_without_a_key_of_their_own(ai, no_server_provider):
    nokey = User(ai.tenant_a, "nokey")
    with tempfile.NamedTemporaryFile("w", dir=RUN_DIR, suffix=".key", delete=False) as f:
        f.write("sk-server-Key0123456789abcdef\n")
    os.chmod(f.name, 0o600)
    try:
        with api_config(openai_api_key_file=f.name):
            job = submit_ok(nokey)
            assert job_row(job)["user_id"] == nokey.id
            st = nokey.http.get("/api/agno/status").json()
            assert st["configured_providers"] == ["openai"] and st["can_initialize"] is True
            r = nokey.http.post("/api/agno/initialize")
            assert r.status_code == 200 and r.json()["success"] is True, r.text
    finally:
        os.unlink(f.name)


# ---------------------------------------------------------------------------------------------
# The job rows the routes create


def test_submit_creates_a_pending_multi_agent_job_of_the_caller(ai):
    o = ai.owner
    r = submit(o, query="Plan the MVP", product_id=ai.product, user_id=str(uuid.uuid4()),
               coordination_mode="parallel", primary_agent="research",
               supporting_agents=["strategy"], context={"phase": "ideation"})
    assert r.status_code == 200, r.text
    j = r.json()
    assert set(j) == {"job_id", "status", "message", "created_at",
                      "estimated_completion_seconds"}
    assert j["status"] == "pending" and j["message"] == "Job submitted successfully"
    assert j["estimated_completion_seconds"] == 300 and j["created_at"]
    row = job_row(j["job_id"])
    assert row["kind"] == "multi_agent" and row["state"] == "pending"
    assert row["user_id"] == o.id and row["tenant_id"] == ai.tenant_a
    assert row["product_id"] == ai.product and row["max_attempts"] == 3
    assert row["request"] == {
        "user_id": o.id,  # the session's, not the body's
        "product_id": ai.product, "query": "Plan the MVP", "coordination_mode": "parallel",
        "primary_agent": "research", "supporting_agents": ["strategy"],
        "context": {"phase": "ideation"}, "stream": False}


def test_submit_defaults_coordination_mode_and_keeps_no_unknown_members(ai):
    job = submit_ok(ai.owner, query="Hi", extra="dropped")
    req = job_row(job)["request"]
    assert req["coordination_mode"] == "collaborative" and "extra" not in req
    assert req["product_id"] is None and req["stream"] is False


def test_stream_creates_a_streaming_job(ai):
    before = {j[0] for j in jobs_of(ai.owner)}
    r = ai.owner.http.post("/api/streaming/multi-agent/stream",
                           json={"query": "Stream it", "product_id": ai.product})
    # the answer is whatever nginx does with /_agentd/ while agentd is not running
    assert r.status_code != 401 and r.status_code < 500 or r.status_code == 503
    new = [j for j in jobs_of(ai.owner) if j[0] not in before]
    assert len(new) == 1
    row = job_row(new[0][0])
    assert row["kind"] == "multi_agent" and row["request"]["stream"] is True
    assert row["request"]["query"] == "Stream it" and row["state"] == "pending"


def test_phase_form_help_creates_a_job_with_defaults(ai):
    body = {"product_id": ai.product, "phase_id": "ideation", "phase_name": "Ideation",
            "current_field": "problem", "current_prompt": "What problem do you solve?",
            "user_input": "Too many meetings"}
    st, h, _ = fcgi("POST", "/api/phase-form-help/stream", ai.owner.token, body)
    assert st == 200
    job = h["x-accel-redirect"].split("/")[3]
    row = job_row(job)
    assert row["kind"] == "phase_form_help" and row["product_id"] == ai.product
    assert row["request"] == dict(body, user_id=ai.owner.id, response_length="short",
                                  conversation_summary=None)


def test_agents_process_creates_an_agent_job(ai):
    body = {"user_id": str(uuid.uuid4()), "agent_type": "research",
            "messages": [{"role": "user", "content": "Market size?", "extra": 1}],
            "context": {"k": "v"}}
    st, h, _ = fcgi("POST", "/api/agents/process", ai.owner.token, body)
    assert st == 200, h
    row = job_row(h["x-accel-redirect"].split("/")[3])
    assert row["kind"] == "agent" and row["user_id"] == ai.owner.id
    assert row["request"] == {"user_id": ai.owner.id, "product_id": None,
                              "agent_type": "research", "context": {"k": "v"},
                              "messages": [{"role": "user", "content": "Market size?"}]}


@pytest.mark.parametrize("path,body,status", [
    ("/api/multi-agent/submit", {"request": {"query": "   "}}, 422),
    ("/api/multi-agent/submit", {"request": {}}, 422),
    ("/api/multi-agent/submit", {"query": "not wrapped"}, 422),
    ("/api/multi-agent/submit", {"request": {"query": "q", "coordination_mode": "chaos"}}, 422),
    ("/api/multi-agent/submit", {"request": {"query": "q", "product_id": "nope"}}, 422),
    ("/api/multi-agent/submit", {"request": {"query": "q", "supporting_agents": [1]}}, 422),
    ("/api/multi-agent/submit", {"request": {"query": "x" * (129 << 10)}}, 422),
    ("/api/streaming/multi-agent/stream", {"query": "q", "primary_agent": "a b"}, 422),
    ("/api/agents/process", {"agent_type": "r", "messages": []}, 422),
    ("/api/agents/process", {"agent_type": "r", "messages": [{"role": "x", "content": "c"}]},
     422),
    ("/api/agents/process", {"agent_type": "no such agent!",
                             "messages": [{"role": "user", "content": "c"}]}, 400),
    ("/api/phase-form-help/stream", {"phase_id": "p"}, 422),
])
def test_bad_ai_bodies_are_refused_with_a_clear_4xx_and_no_job(ai, path, body, status):
    r = ai.owner.http.post(path, json=body)
    assert r.status_code == status, r.text
    assert detail(r)
    assert not [j for j in jobs_of(ai.owner) if j[2] == "pending"]


def test_multi_agent_body_over_its_cap_is_413(ai):
    r = ai.owner.http.post("/api/streaming/multi-agent/stream",
                           json={"query": "x" * (300 << 10)})
    assert r.status_code == 413


# ---------------------------------------------------------------------------------------------
# Products: only one the caller can view


@pytest.mark.parametrize("role,status", [("owner", 200), ("viewer", 200), ("stranger", 404),
                                         ("outsider", 404)])
def test_a_job_on_a_product_needs_view_access(ai, role, status):
    u = ai.user(role)
    r = submit(u, product_id=ai.product)
    assert r.status_code == status, r.text
    st, h, body = fcgi("POST", "/api/streaming/multi-agent/stream", u.token,
                       {"query": "q", "product_id": ai.product})
    assert st == status
    if status == 404:
        assert json.loads(body) == {"detail": "Product not found"}
        assert jobs_of(u) == []
    else:
        assert len([j for j in jobs_of(u) if j[2] == "pending"]) == 2


def test_a_missing_product_is_the_same_404(ai):
    r = submit(ai.owner, product_id=str(uuid.uuid4()))
    assert r.status_code == 404 and detail(r) == "Product not found"


# ---------------------------------------------------------------------------------------------
# The FastCGI answer: X-Accel-Redirect to agentd


def test_stream_answers_x_accel_redirect_to_the_jobs_named_events(ai):
    st, h, body = fcgi("POST", "/api/streaming/multi-agent/stream", ai.owner.token,
                       {"query": "q"})
    assert st == 200 and body == b""
    uri = h["x-accel-redirect"]
    assert uri.startswith("/_agentd/jobs/") and uri.endswith("/events?format=named")
    assert h["x-accel-buffering"] == "no"
    job = uri.split("/")[3]
    assert job_row(job)["request"]["stream"] is True


def test_phase_help_stream_redirects_to_data_only_events(ai):
    st, h, _ = fcgi("POST", "/api/phase-form-help/stream", ai.owner.token,
                    {"product_id": ai.product, "phase_id": "x", "phase_name": "Design",
                     "current_field": "f", "current_prompt": "p"})
    assert st == 200 and h["x-accel-redirect"].endswith("/events?format=data")
    assert h["x-accel-buffering"] == "no"


@pytest.mark.parametrize("path,body,shape,kind", [
    ("/api/multi-agent/process", {"query": "q"}, "multi_agent", "multi_agent"),
    ("/api/agents/process", {"agent_type": "research",
                             "messages": [{"role": "user", "content": "hi"}]}, "agent", "agent"),
])
def test_process_routes_redirect_to_the_jobs_final_answer(ai, path, body, shape, kind):
    st, h, b = fcgi("POST", path, ai.owner.token, body)
    assert st == 200 and b == b""
    uri = h["x-accel-redirect"]
    assert uri.startswith("/_agentd/jobs/") and uri.endswith("/wait?shape=" + shape)
    row = job_row(uri.split("/")[3])
    assert row["kind"] == kind and row["state"] == "pending"
    if kind == "multi_agent":
        assert row["request"]["stream"] is False


def test_events_reconnect_redirects_for_the_owner_only(ai):
    job = submit_ok(ai.owner)
    path = "/api/streaming/jobs/%s/events" % job
    st, h, _ = fcgi("GET", path, ai.owner.token)
    assert st == 200
    assert h["x-accel-redirect"] == "/_agentd/jobs/%s/events?format=named" % job
    for role in ("stranger", "viewer", "outsider"):
        st, h, body = fcgi("GET", path, ai.user(role).token)
        assert st == 404 and "x-accel-redirect" not in h
        assert json.loads(body) == {"detail": "Job not found"}


def test_stream_route_logs_status_200_through_nginx(ai, api_log):
    r = ai.owner.http.post("/api/streaming/multi-agent/stream", json={"query": "q"})
    rid = r.headers["X-Request-Id"]
    api_log.wait_for(r"rid=%s .*status=200" % rid)


# ---------------------------------------------------------------------------------------------
# Asynchronous jobs: status, result, cancel, owner-only


def test_status_of_a_pending_job(ai):
    job = submit_ok(ai.owner)
    r = ai.owner.http.get("/api/multi-agent/jobs/%s/status" % job)
    assert r.status_code == 200, r.text
    j = r.json()
    assert set(j) == {"job_id", "status", "progress", "message", "created_at", "updated_at",
                      "estimated_remaining_seconds"}
    assert j["job_id"] == job and j["status"] == "pending" and j["progress"] == 0
    assert j["message"] == "Job queued for processing"


def test_result_is_202_while_pending_then_the_result_once_completed(ai):
    job = submit_ok(ai.owner)
    r = ai.owner.http.get("/api/multi-agent/jobs/%s/result" % job)
    assert r.status_code == 202 and r.json() == {"detail": "Job is still processing"}
    psql("UPDATE agent_jobs SET state = 'processing', progress = 0.5, "
         "started_at = now() - interval '10 seconds' WHERE id = $1", job)
    assert ai.owner.http.get("/api/multi-agent/jobs/%s/result" % job).status_code == 202
    st = ai.owner.http.get("/api/multi-agent/jobs/%s/status" % job).json()
    assert st["status"] == "processing" and st["progress"] == 0.5
    assert 5 <= st["estimated_remaining_seconds"] <= 30
    answer = {"primary_agent": "research", "response": "Build the thing",
              "agent_interactions": [], "coordination_mode": "collaborative",
              "metadata": {}, "timestamp": "2025-01-01T00:00:00"}
    psql("UPDATE agent_jobs SET state = 'completed', progress = 1, result = $1::jsonb, "
         "message = 'Job completed', completed_at = now() WHERE id = $2",
         json.dumps(answer), job)
    r = ai.owner.http.get("/api/multi-agent/jobs/%s/result" % job)
    assert r.status_code == 200, r.text
    j = r.json()
    assert set(j) == {"job_id", "status", "result", "error", "created_at", "completed_at"}
    assert j["job_id"] == job and j["status"] == "completed" and j["result"] == answer
    assert j["error"] is None and j["completed_at"]
    st = ai.owner.http.get("/api/multi-agent/jobs/%s/status" % job).json()
    assert st["status"] == "completed" and st["progress"] == 1
    assert st["estimated_remaining_seconds"] == 0


def test_failed_job_shape(ai):
    job = submit_ok(ai.owner)
    psql("UPDATE agent_jobs SET state = 'failed', error = 'Unable to reach the provider', "
         "message = 'Job failed: Unable to reach the provider', completed_at = now() "
         "WHERE id = $1", job)
    j = ai.owner.http.get("/api/multi-agent/jobs/%s/result" % job).json()
    assert j["status"] == "failed" and j["result"] is None
    assert j["error"] == "Unable to reach the provider"
    st = ai.owner.http.get("/api/multi-agent/jobs/%s/status" % job).json()
    assert st["status"] == "failed" and st["message"].startswith("Job failed")


def test_cancel_marks_the_job_cancelled_and_shows_it_as_failed(ai):
    job = submit_ok(ai.owner)
    r = ai.owner.http.delete("/api/multi-agent/jobs/%s" % job)
    assert r.status_code == 200 and r.json() == {"job_id": job, "status": "cancelled"}
    assert job_row(job)["state"] == "cancelled"
    st = ai.owner.http.get("/api/multi-agent/jobs/%s/status" % job).json()
    assert st["status"] == "failed" and st["message"] == "Job cancelled"
    res = ai.owner.http.get("/api/multi-agent/jobs/%s/result" % job)
    assert res.status_code == 200
    assert res.json()["status"] == "failed" and res.json()["error"] == "Job cancelled"
    # already finished: 409
    r = ai.owner.http.delete("/api/multi-agent/jobs/%s" % job)
    assert r.status_code == 409 and "already finished" in detail(r)


def test_cancel_of_a_processing_job_and_409_for_a_completed_one(ai):
    a, b = submit_ok(ai.owner), submit_ok(ai.owner)
    psql("UPDATE agent_jobs SET state = 'processing' WHERE id = $1", a)
    psql("UPDATE agent_jobs SET state = 'completed', result = '{}' WHERE id = $1", b)
    assert ai.owner.http.delete("/api/multi-agent/jobs/%s" % a).status_code == 200
    assert job_row(a)["state"] == "cancelled"
    assert ai.owner.http.delete("/api/multi-agent/jobs/%s" % b).status_code == 409
    assert job_row(b)["state"] == "completed"


@pytest.mark.parametrize("role", ["stranger", "viewer", "outsider"])
def test_another_users_job_is_not_found_for_status_result_cancel_and_events(ai, role):
    job = submit_ok(ai.owner, product_id=ai.product)
    other = ai.user(role).http
    for method, path in (("GET", "/api/multi-agent/jobs/%s/status"),
                         ("GET", "/api/multi-agent/jobs/%s/result"),
                         ("DELETE", "/api/multi-agent/jobs/%s"),
                         ("GET", "/api/streaming/jobs/%s/events")):
        r = other.request(method, path % job)
        assert r.status_code == 404, (method, path, r.text)
        assert detail(r) == "Job not found"
    assert job_row(job)["state"] == "pending"  # the cancel attempt changed nothing


def test_unknown_and_malformed_job_ids(ai):
    r = ai.owner.http.get("/api/multi-agent/jobs/%s/status" % uuid.uuid4())
    assert r.status_code == 404 and detail(r) == "Job not found"
    assert ai.owner.http.get("/api/multi-agent/jobs/not-a-uuid/status").status_code == 422


def test_job_routes_need_a_session(ai):
    job = submit_ok(ai.owner)
    for method, path in (("GET", "/api/multi-agent/jobs/%s/status" % job),
                         ("GET", "/api/multi-agent/jobs/%s/result" % job),
                         ("DELETE", "/api/multi-agent/jobs/%s" % job),
                         ("GET", "/api/streaming/jobs/%s/events" % job),
                         ("POST", "/api/multi-agent/submit"),
                         ("POST", "/api/agents/process"),
                         ("POST", "/api/providers/verify")):
        r = ai.anon.request(method, path, json={} if method == "POST" else None)
        assert r.status_code == 401, (method, path)
    assert job_row(job)["state"] == "pending"


def test_jobs_work_with_redis_down(ai):
    with redis_down():
        job = submit_ok(ai.owner)
        assert ai.owner.http.get("/api/multi-agent/jobs/%s/status" % job).json()["status"] \
            == "pending"
        assert ai.owner.http.get("/api/multi-agent/jobs/%s/result" % job).status_code == 202
        assert ai.owner.http.delete("/api/multi-agent/jobs/%s" % job).status_code == 200


# ---------------------------------------------------------------------------------------------
# The per-user cap on unfinished jobs (agent_max_concurrent_per_user = 4 by default)


def test_per_user_cap_is_429_with_retry_after_and_finished_jobs_free_a_place(ai):
    u = User(ai.tenant_a, "capped")
    give_key(u)
    jobs = [submit_ok(u) for _ in range(4)]
    r = submit(u)
    assert r.status_code == 429, r.text
    assert r.headers["Retry-After"] == "10"
    assert "4 per user" in detail(r) and "cancel" in detail(r)
    st, _, _ = fcgi("POST", "/api/streaming/multi-agent/stream", u.token, {"query": "q"})
    assert st == 429
    assert len(jobs_of(u)) == 4
    # another user is not affected
    assert submit(ai.user("editor")).status_code == 200
    # a finished (cancelled) job frees a place
    assert u.http.delete("/api/multi-agent/jobs/%s" % jobs[0]).status_code == 200
    assert submit(u).status_code == 200
    assert submit(u).status_code == 429


def test_concurrent_submits_never_exceed_the_per_user_cap(ai):
    u = User(ai.tenant_a, "racer")
    give_key(u)
    out = burst("/api/multi-agent/submit", bearer(u.token), n=9, method="POST",
                body={"request": {"query": "race"}})
    codes = sorted(st for st, _, _ in out)
    assert codes == [200] * 4 + [429] * 5, codes
    assert int(psql_one("SELECT count(*) FROM agent_jobs WHERE user_id = $1", u.id)) == 4


# ---------------------------------------------------------------------------------------------
# Providers: verify, configure, status per user


@pytest.fixture(scope="module")
def fake():
    with FakeLLM(first_token_ms=0, tokens_per_s=1000) as f:
        yield f


@pytest.mark.parametrize("provider,attr", [("openai", "openai_base_url"),
                                           ("claude", "anthropic_base_url"),
                                           ("anthropic", "anthropic_base_url"),
                                           ("gemini", "gemini_base_url"),
                                           ("google", "gemini_base_url")])
def test_verify_a_valid_key_against_the_fake_provider(ai, fake, provider, attr):
    key = "sk-valid-%s-0123456789" % provider
    r = ai.owner.http.post("/api/providers/verify", json={
        "provider": provider, "api_key": key, "base_url": getattr(fake, attr)})
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["provider"] == provider and j["valid"] is True and j["message"]
    assert key not in r.text
    assert any(q["key"] == key and q["status"] == 200 for q in fake.requests())


@pytest.mark.parametrize("provider,attr,name", [("openai", "openai_base_url", "OpenAI"),
                                                ("claude", "anthropic_base_url", "Anthropic"),
                                                ("gemini", "gemini_base_url", "Gemini")])
def test_verify_a_rejected_key_is_400_naming_the_provider_without_the_key(ai, fake, api_log,
                                                                          provider, attr, name):
    key = "fake-401-secret-abcdef123456"
    r = ai.owner.http.post("/api/providers/verify", json={
        "provider": provider, "api_key": key, "base_url": getattr(fake, attr)})
    assert r.status_code == 400, r.text
    assert name in detail(r) and "rejected the API key" in detail(r)
    assert key not in r.text and "secret-abcdef" not in r.text
    api_log.wait_for(r"provider verify .*outcome=auth")
    assert key not in api_log.text()


def test_verify_an_unreachable_base_url_is_400(ai):
    r = ai.owner.http.post("/api/providers/verify", json={
        "provider": "openai", "api_key": "sk-whatever-123", "base_url": "http://127.0.0.1:1/v1"})
    assert r.status_code == 400 and "Unable to reach OpenAI" in detail(r)


def test_verify_a_hanging_provider_gives_up_after_its_timeout(ai, fake):
    # the fake never answers a "hang" key on its own (it waits for the client to close), so
    # any answer at all, within a client bound far above the verify timeout, is the API
    # giving up by itself (issue 14: was "within 10 s")
    r = ai.owner.http.post("/api/providers/verify", json={
        "provider": "openai", "api_key": "fake-hang-1", "base_url": fake.openai_base_url},
        timeout=120)
    assert r.status_code == 400 and "Unable to reach OpenAI" in detail(r)


@pytest.mark.parametrize("body,msg", [
    ({"provider": "v0", "api_key": "k"}, "Unsupported provider"),
    ({"provider": "azure", "api_key": "k"}, "Unsupported provider"),
    ({"provider": "openai", "api_key": "  "}, "API key cannot be empty"),
    ({"provider": "openai", "api_key": "k", "base_url": "ftp://example.com"}, "http://"),
    ({"provider": "openai", "api_key": "k", "base_url": "file:///etc/passwd"}, "http://"),
    ({"provider": "openai", "api_key": "k", "base_url": "http://x/v1?a=b"}, "http://"),
])
def test_verify_refuses_bad_input_with_400(ai, body, msg):
    r = ai.owner.http.post("/api/providers/verify", json=body)
    assert r.status_code == 400 and msg in detail(r), r.text


def stored_providers(user):
    return {p: v for p, v in psql("SELECT provider, api_key_encrypted FROM user_api_keys "
                                  "WHERE user_id = $1", user.id)}


def test_configure_stores_sealed_keys_per_user_and_deletes_lovable(ai, no_server_provider):
    u = User(ai.tenant_a, "configure")
    give_key(u, "lovable", "lovable-key-123456")
    secrets = {"openaiKey": "sk-openai-Secret0123456789", "claudeKey": "sk-ant-Secret0123456789",
               "v0Key": "v0-Secret0123456789"}
    log = ApiLog()
    r = u.http.post("/api/providers/configure", json=dict(secrets, geminiKey="",
                                                           lovableKey="x-lovable"))
    assert r.status_code == 200, r.text
    assert r.json() == {"configured_providers": ["openai", "claude"]}
    rows = stored_providers(u)
    assert set(rows) == {"openai", "anthropic", "v0"}
    for v in rows.values():
        assert v.startswith("v1:")
    for s in secrets.values():
        assert s not in r.text and s not in log.text()
        assert all(s not in v for v in rows.values())
    keys = {k["provider"]: k for k in u.http.get("/api/api-keys").json()["keys"]}
    assert keys["openai"]["is_configured"] and keys["anthropic"]["is_configured"]
    assert not keys["lovable"]["is_configured"] and not keys["google"]["is_configured"]
    # nothing process-wide: another user has no provider because of it
    other = User(ai.tenant_a, "other")
    assert other.http.get("/api/agno/status").json()["configured_providers"] == []


def test_configure_ai_gateway_needs_id_and_secret(ai):
    u = User(ai.tenant_a, "gateway")
    r = u.http.post("/api/providers/configure", json={"aiGatewayClientId": "id"})
    assert r.status_code == 400 and "aiGatewayClientSecret" in detail(r)
    r = u.http.post("/api/providers/configure", json={
        "aiGatewayClientId": "id", "aiGatewayClientSecret": "gw-Secret0123",
        "aiGatewayBaseUrl": "https://gw.example.com"})
    assert r.status_code == 200, r.text
    meta = psql_one("SELECT metadata::text FROM user_api_keys WHERE user_id = $1 "
                    "AND provider = 'ai_gateway'", u.id)
    assert json.loads(meta)["client_id"] == "id"
    assert "gw-Secret0123" not in meta


def test_agno_status_is_per_user(ai, no_server_provider):
    a, b = User(ai.tenant_a, "agno-a"), User(ai.tenant_a, "agno-b")
    assert a.http.post("/api/providers/configure",
                       json={"openaiKey": "sk-a-0123456789"}).status_code == 200
    assert b.http.post("/api/providers/configure",
                       json={"geminiKey": "gm-b-0123456789"}).status_code == 200
    sa, sb = a.http.get("/api/agno/status").json(), b.http.get("/api/agno/status").json()
    assert sa["configured_providers"] == ["openai"] and sb["configured_providers"] == ["gemini"]
    for s in (sa, sb):
        assert s["agno_available"] is True and s["agno_enabled"] is True
        assert s["providers_configured"] is True and s["can_initialize"] is True
        assert set(s) == {"agno_available", "agno_enabled", "providers_configured",
                          "configured_providers", "can_initialize", "message"}
    r = b.http.post("/api/agno/initialize")
    assert r.status_code == 200
    assert r.json()["success"] is True and r.json()["agno_enabled"] is True
    assert "Gemini" in r.json()["message"]


def test_provider_keys_never_reach_the_api_log(ai):
    with open(os.path.join(RUN_DIR, "api.log"), errors="replace") as f:
        text = f.read()
    for s in (USER_KEY, "sk-openai-Secret0123456789", "fake-401-secret-abcdef123456",
              "sk-a-0123456789"):
        assert s not in text
