"""ideaforge-agentd (issue 11): agent jobs run on one event loop, their tokens streamed as the
provider sends them, durable across client disconnects, restarts and crashes.

The API routes that create jobs come with app/h_ai.c; until then these tests create jobs the
way those routes do (a row in agent_jobs) and talk to agentd directly on its unix socket:
its endpoints (GET /jobs/{id}/events, /jobs/{id}/wait, /status, /metrics) are the contract
nginx's internal /_agentd/ location proxies to. The provider is the test stack's fake
(tests/fakes/fake_llm.py), scripted per key through its control API; each test uses keys of
its own, stored as a user's provider key (Settings -> Providers), so tests never share a
script queue.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest
import requests

from conftest import BUILD_DIR, CONF, RUN_DIR, psql, psql_one, wait_for
from product_helpers import User, world  # noqa: F401 (fixture)

SOCK = os.environ.get("IDEAFORGE_AGENTD_SOCKET", os.path.join(RUN_DIR, "agentd.sock"))
PID_FILE = os.environ.get("IDEAFORGE_AGENTD_PID_FILE", os.path.join(RUN_DIR, "agentd.pid"))
AGENTD_LOG = os.path.join(RUN_DIR, "agentd.log")
AGENTD = os.path.join(BUILD_DIR, "ideaforge-agentd")


def _fake_url():
    url = os.environ.get("IDEAFORGE_FAKE_LLM_URL")
    if url:
        return url
    with open(os.path.join(RUN_DIR, "fake_llm.port")) as f:
        return "http://127.0.0.1:%d" % int(f.read().strip())


FAKE = _fake_url()
TRUNCATED = "[Response truncated - content exceeded length limit]"

# ---------------------------------------------------------------------------------------------
# agentd over its unix socket


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


def get(path, sock=SOCK, headers=None, timeout=30):
    c = UnixHTTPConnection(sock, timeout)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, r.getheader("Content-Type"), body


class Stream:
    """An open event stream: next() returns the next event as a dict (id, event, data) and
    counts comment lines (heartbeats) in .comments; None at the end of the stream."""

    def __init__(self, job_id, fmt="named", last_id=None, sock=SOCK, timeout=30):
        self.conn = UnixHTTPConnection(sock, timeout)
        h = {"Last-Event-ID": last_id} if last_id else {}
        self.conn.request("GET", "/jobs/%s/events?format=%s" % (job_id, fmt), headers=h)
        self.resp = self.conn.getresponse()
        self.comments = []
        self.events = []

    def next(self):
        ev = {}
        while True:
            line = self.resp.readline()
            if not line:
                return None
            line = line.decode().rstrip("\n")
            if line == "":
                if ev:
                    if "data" in ev:
                        ev["json"] = json.loads(ev["data"])
                    self.events.append(ev)
                    return ev
                continue
            if line.startswith(":"):
                self.comments.append(line)
                continue
            k, _, v = line.partition(":")
            v = v[1:] if v.startswith(" ") else v
            ev[k] = ev[k] + "\n" + v if k == "data" and k in ev else v

    def until(self, pred):
        while True:
            ev = self.next()
            assert ev is not None, "stream ended early: %r" % self.events
            if pred(ev):
                return ev

    def rest(self):
        while self.next() is not None:
            pass
        return self.events

    def close(self):
        self.conn.close()


# ---------------------------------------------------------------------------------------------
# the fake provider and the process


def fake_script(key, steps):
    r = requests.post(FAKE + "/_control/script", json={"key": key, "steps": steps}, timeout=10)
    assert r.status_code == 200, r.text


def fake_log(key=None):
    log = requests.get(FAKE + "/_control/requests", timeout=10).json()
    return [x for x in log if key is None or x["key"] == key]


def agentd_pid():
    try:
        with open(PID_FILE) as f:
            pid = int(f.read().strip())
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            if b"ideaforge-agentd" not in f.read():
                return None
        with open("/proc/%d/status" % pid) as f:
            if "\nState:\tZ" in f.read():
                return None
        return pid
    except (OSError, ValueError):
        return None


def agentd_start(*flags, pid_file=PID_FILE, sock=SOCK, log=AGENTD_LOG):
    """Starts an ideaforge-agentd (the stack's one unless told otherwise) and waits for its
    socket to answer."""
    if os.path.exists(sock):
        os.unlink(sock)
    argv = [AGENTD, "--config", CONF, "--agentd_listen=unix:" + sock, *flags]
    with open(log, "ab") as f:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                             start_new_session=True)
    with open(pid_file, "w") as f:
        f.write("%d\n" % p.pid)

    def up():
        try:
            return get("/status", sock=sock, timeout=2)[0] == 200
        except OSError:
            return False

    wait_for(up, 10, message="ideaforge-agentd on " + sock)
    return p


def agentd_stop(sig=signal.SIGTERM, pid=None):
    pid = pid or agentd_pid()
    if pid is None:
        return None
    os.kill(pid, sig)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            wpid, status = os.waitpid(pid, os.WNOHANG)
            if wpid == pid:
                return os.waitstatus_to_exitcode(status)
        except ChildProcessError:  # not our child (started by scripts/dev)
            if not os.path.exists("/proc/%d" % pid) or agentd_pid() is None:
                return None
        time.sleep(0.05)
    raise AssertionError("ideaforge-agentd %d did not exit" % pid)


@pytest.fixture
def agentd():
    """The stack's agentd is running before and after the test (restarted if a test stopped
    or killed it)."""
    if agentd_pid() is None:
        agentd_start()
    yield
    if agentd_pid() is None:
        agentd_start()


# ---------------------------------------------------------------------------------------------
# jobs


def keyed_user(world, tag):
    """A user of tenant A whose own OpenAI key is a fresh fake key (its own script queue)."""
    u = User(world.tenant_a, tag)
    u.key = "sk-%s-%s" % (tag, uuid.uuid4().hex[:12])
    r = u.http.post("/api/api-keys", json={"provider": "openai", "api_key": u.key})
    assert r.status_code == 200, r.text
    return u


def user_with_key(world, tag, key):
    u = User(world.tenant_a, tag)
    u.key = key
    r = u.http.post("/api/api-keys", json={"provider": "openai", "api_key": key})
    assert r.status_code == 200, r.text
    return u


def new_job(user, kind="multi_agent", request=None, product_id=None):
    if request is None:
        request = {"query": "How big is the market for %s?" % user.name,
                   "primary_agent": "research", "supporting_agents": ["analysis", "ideation"],
                   "coordination_mode": "enhanced_collaborative"}
    return psql_one("INSERT INTO agent_jobs (tenant_id, user_id, product_id, kind, request) "
                    "VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING id",
                    user.tenant_id, user.id, product_id, kind, json.dumps(request))


def job_row(job_id):
    rows = psql("SELECT state, attempts, saved, lease_owner, result::text, error "
                "FROM agent_jobs WHERE id = $1", job_id)
    s, a, saved, owner, result, error = rows[0]
    return {"state": s, "attempts": int(a), "saved": saved == "t", "lease_owner": owner,
            "result": json.loads(result) if result else None, "error": error}


def wait_state(job_id, states=("completed", "failed"), timeout=30):
    return wait_for(lambda: job_row(job_id)["state"] in states and job_row(job_id), timeout,
                    message="job %s to reach %s" % (job_id, states))


def history_count(user, product_id):
    return int(psql_one("SELECT count(*) FROM conversation_history h JOIN conversation_sessions "
                        "s ON s.id = h.session_id WHERE s.user_id = $1 "
                        "AND h.product_id IS NOT DISTINCT FROM $2::uuid", user.id, product_id))


TOKENS = ["Alpha", " beta", " gamma", " delta", " epsilon", " zeta", " eta", " theta", " iota",
          " kappa", " lambda", " mu"]


def ids_ok(events):
    """Every event carries an id run:seq, seq strictly increasing within a run."""
    last = {}
    for ev in events:
        assert "id" in ev, ev
        run, seq = (int(x) for x in ev["id"].split(":"))
        if ev.get("event") != "agent_reset":
            assert seq > last.get(run, 0), events
            last[run] = seq
    return True


# ---------------------------------------------------------------------------------------------
# streaming


def test_tokens_arrive_one_by_one_and_the_answer_is_the_primarys(world, agentd):
    u = keyed_user(world, "tokens")
    pid = world.new_product(shares=False)
    fake_script(u.key, [{"kind": "ok", "text": "Support one."},
                        {"kind": "ok", "text": "Support two."},
                        {"kind": "ok", "tokens": TOKENS, "tokens_per_s": 50}])
    job = new_job(u, product_id=pid)
    s = Stream(job)
    assert s.resp.status == 200
    assert s.resp.getheader("Content-Type") == "text/event-stream"
    assert s.resp.getheader("Cache-Control") == "no-cache"
    assert s.resp.getheader("X-Accel-Buffering") == "no"
    events = s.rest()
    names = [e["event"] for e in events]
    assert names[0] == "progress" and names[-1] == "complete"
    chunks = [e["json"] for e in events if e["event"] == "agent_chunk"]
    # one agent_chunk per provider token, in order, only the primary agent's
    assert [c["chunk"] for c in chunks] == TOKENS
    assert {c["agent"] for c in chunks} == {"research"}
    answer = "".join(TOKENS)
    complete = events[-1]["json"]
    assert complete["response"] == answer
    done = {e["json"]["agent"] for e in events if e["event"] == "agent_complete"}
    assert done == {"analysis", "ideation", "research"}
    assert ids_ok(events)
    row = wait_state(job)
    assert row["state"] == "completed" and row["result"]["response"] == answer
    assert row["result"]["primary_agent"] == "research"
    assert row["saved"] and history_count(u, pid) == 2
    agent_row = psql("SELECT h.agent_name, h.content, h.interaction_metadata->>'primary_agent' "
                     "FROM conversation_history h JOIN conversation_sessions s "
                     "ON s.id = h.session_id WHERE s.user_id = $1 AND h.message_type = 'agent'",
                     u.id)
    assert agent_row == [("research", answer, "research")]
    # the fake sent exactly those tokens to the primary agent's call
    prim = [r for r in fake_log(u.key) if r["tokens_sent"] == len(TOKENS)]
    assert len(prim) == 1 and prim[0]["key"] == u.key
    # chunks are not stored; every other event is
    stored = [r[0] for r in psql("SELECT event FROM agent_job_events WHERE job_id = $1 "
                                 "ORDER BY seq", job)]
    assert stored == [n for n in names if n != "agent_chunk"]


def test_supporting_agents_run_in_parallel(world, agentd):
    u = keyed_user(world, "parallel")
    fake_script(u.key, [{"kind": "ok", "text": "one two three", "first_token_ms": 300},
                        {"kind": "ok", "text": "four five six", "first_token_ms": 300},
                        {"kind": "ok", "text": "the answer"}])
    job = new_job(u)
    s = Stream(job)
    # watch the fake's log until the first supporting call has sent all its tokens: by then
    # every supporting call must have arrived (sequential calls would arrive one by one)
    snapshot = None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and snapshot is None:
        log = fake_log(u.key)
        if any(r["tokens_sent"] == 3 and r["outcome"] == "ok" for r in log):
            snapshot = log
        time.sleep(0.01)
    assert snapshot is not None, "no supporting call finished"
    assert len(snapshot) >= 2, snapshot
    events = s.rest()
    assert events[-1]["event"] == "complete"
    assert events[-1]["json"]["response"] == "the answer"
    log = fake_log(u.key)
    assert len(log) == 3
    # the primary agent's call came after both supporting calls, with their insights
    primary = max(log, key=lambda r: r["seq"])
    assert "one two three" in primary["prompt"] and "four five six" in primary["prompt"]
    starts = [e for e in events if e["event"] == "agent_start"]
    assert [e["json"]["agent"] for e in starts] == ["analysis", "ideation", "research"]


def test_last_event_id_resumes_a_running_stream_and_replays_a_finished_one(world, agentd):
    u = keyed_user(world, "resume")
    toks = [" w%d" % i for i in range(20)]
    fake_script(u.key, [{"kind": "ok", "text": "s1"}, {"kind": "ok", "text": "s2"},
                        {"kind": "ok", "tokens": toks, "tokens_per_s": 20}])
    job = new_job(u)
    s = Stream(job)
    seen = []
    while len(seen) < 5:
        ev = s.until(lambda e: e["event"] == "agent_chunk")
        seen.append(ev)
    s.close()
    # reconnect: the rest from memory, nothing twice
    s2 = Stream(job, last_id=seen[-1]["id"])
    rest = s2.rest()
    got = [e["json"]["chunk"] for e in seen + rest if e["event"] == "agent_chunk"]
    assert got == toks
    assert rest[-1]["event"] == "complete" and rest[-1]["json"]["response"] == "".join(toks)
    assert ids_ok(seen + rest)
    wait_state(job)
    # finished: the stored events after the given one, through complete, then the end
    events = Stream(job).rest()
    assert [e["event"] for e in events][-1] == "complete"
    assert not [e for e in events if e["event"] == "agent_chunk"]  # chunks are not stored
    mid = events[2]
    after = Stream(job, last_id=mid["id"]).rest()
    assert [e["id"] for e in after] == [e["id"] for e in events[3:]]
    # an id of another run: agent_reset, then the whole current run
    older = Stream(job, last_id="7:1").rest()
    assert older[0]["event"] == "agent_reset"
    assert [e["id"] for e in older[1:]] == [e["id"] for e in events]


def test_heartbeat_comment(world, agentd):
    """A second agentd with agent_heartbeat_s=1 (its own socket): a comment every second on
    an open stream, whichever agentd runs the job."""
    u = keyed_user(world, "heartbeat")
    fake_script(u.key, [{"kind": "ok", "text": "a"}, {"kind": "ok", "text": "b"},
                        {"kind": "ok", "tokens": [" x"] * 8, "tokens_per_s": 2.5}])
    sock = os.path.join(RUN_DIR, "agentd-hb.sock")
    pidf = os.path.join(RUN_DIR, "agentd-hb.pid")
    p = agentd_start("--agent_heartbeat_s=1", pid_file=pidf, sock=sock,
                     log=os.path.join(RUN_DIR, "agentd-hb.log"))
    try:
        job = new_job(u)
        s = Stream(job, sock=sock)
        events = s.rest()
        assert events[-1]["event"] == "complete"
        assert ": ping" in s.comments, (s.comments, [e["event"] for e in events])
        assert ids_ok(events)
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(20) == 0


def test_client_disconnect_does_not_stop_the_job_and_saves_once(world, agentd):
    u = keyed_user(world, "gone")
    pid = world.new_product(shares=False)
    fake_script(u.key, [{"kind": "ok", "text": "s1"}, {"kind": "ok", "text": "s2"},
                        {"kind": "ok", "tokens": [" t%d" % i for i in range(15)],
                         "tokens_per_s": 15}])
    job = new_job(u, product_id=pid)
    s = Stream(job)
    s.until(lambda e: e["event"] == "agent_chunk")
    s.close()
    row = wait_state(job)
    assert row["state"] == "completed"
    assert row["result"]["response"] == "".join(" t%d" % i for i in range(15))
    assert row["saved"]
    time.sleep(0.5)
    assert history_count(u, pid) == 2
    primary = max(fake_log(u.key), key=lambda r: r["seq"])
    assert primary["tokens_sent"] == 15 and not primary["client_gone"]


def test_kill9_mid_stream_then_restart_completes_and_the_client_resumes(world, agentd):
    u = keyed_user(world, "kill9")
    pid = world.new_product(shares=False)
    fake_script(u.key, [{"kind": "ok", "text": "s1"}, {"kind": "ok", "text": "s2"},
                        {"kind": "ok", "tokens": [" k%d" % i for i in range(40)],
                         "tokens_per_s": 10}])
    job = new_job(u, product_id=pid)
    s = Stream(job)
    last = None
    for _ in range(3):
        last = s.until(lambda e: e["event"] == "agent_chunk")
    agentd_stop(signal.SIGKILL)
    s.close()
    assert job_row(job)["state"] == "processing"
    agentd_start()
    # the lease (3 s in the test stack) runs out, the restarted agentd takes the job over;
    # the reconnecting client is told the run restarted, then gets the new run to the end
    s2 = Stream(job, last_id=last["id"])
    events = s2.rest()
    assert events[0]["event"] == "agent_reset", [e["event"] for e in events]
    assert events[0]["id"].startswith("2:")
    assert all(e["id"].startswith("2:") for e in events)
    assert events[-1]["event"] == "complete"
    row = wait_state(job)
    assert row["state"] == "completed" and row["attempts"] == 2
    assert events[-1]["json"]["response"] == row["result"]["response"]
    chunks = "".join(e["json"]["chunk"] for e in events if e["event"] == "agent_chunk")
    assert chunks == row["result"]["response"]
    time.sleep(0.5)
    assert history_count(u, pid) == 2


def test_sigterm_hands_a_running_job_back_and_a_restart_finishes_it(world, agentd):
    u = keyed_user(world, "sigterm")
    fake_script(u.key, [{"kind": "ok", "text": "s1"}, {"kind": "ok", "text": "s2"},
                        {"kind": "ok", "tokens": [" q%d" % i for i in range(40)],
                         "tokens_per_s": 10}])
    job = new_job(u)
    s = Stream(job)
    s.until(lambda e: e["event"] == "agent_chunk")
    rc = agentd_stop(signal.SIGTERM)
    assert rc in (0, None)
    assert s.rest()[-1]["event"] != "complete"  # the stream ended without an answer
    row = job_row(job)
    assert row["state"] == "pending" and row["lease_owner"] is None and row["attempts"] == 0
    assert agentd_pid() is None
    agentd_start()
    row = wait_state(job)
    assert row["state"] == "completed" and row["attempts"] == 1


def test_cancel_stops_the_provider_call_and_ends_the_stream(world, agentd):
    u = keyed_user(world, "cancel")
    fake_script(u.key, [{"kind": "ok", "text": "s1"}, {"kind": "ok", "text": "s2"},
                        {"kind": "ok", "tokens": [" c%d" % i for i in range(100)],
                         "tokens_per_s": 10}])
    job = new_job(u)
    s = Stream(job)
    s.until(lambda e: e["event"] == "agent_chunk")
    psql("UPDATE agent_jobs SET state = 'cancelled' WHERE id = $1", job)
    err = s.until(lambda e: e["event"] == "error")
    assert err["json"]["error"] == "Job was cancelled"
    rest = s.rest()
    assert rest[-1]["event"] == "complete" and rest[-1]["json"]["metadata"]["partial"] is True
    primary = max(fake_log(u.key), key=lambda r: r["seq"])
    wait_for(lambda: max(fake_log(u.key), key=lambda r: r["seq"])["client_gone"], 5,
             message="the provider call to stop")
    assert primary["tokens_sent"] < 100
    assert job_row(job)["state"] == "cancelled"
    status, _, body = get("/jobs/%s/wait" % job)
    assert status == 409


# ---------------------------------------------------------------------------------------------
# provider failures: the documented error, never a hang


ERRORS = {  # key prefix: (status of /wait, detail start)
    "401": (401, "OpenAI rejected the API key. Please verify the key in Settings"),
    "429": (429, "OpenAI rate limit or quota exceeded"),
    "500": (502, "Unable to reach the configured LLM provider"),
    "reset": (502, "Unable to reach the configured LLM provider"),
    "hang": (502, "Unable to reach the configured LLM provider"),
}


@pytest.mark.parametrize("kind", sorted(ERRORS))
def test_provider_error_wait_status(world, agentd, kind):
    u = user_with_key(world, "err" + kind, "fake-%s-%s" % (kind, uuid.uuid4().hex[:8]))
    job = new_job(u, "agent", {"agent_type": "research", "user_id": u.id,
                               "messages": [{"role": "user", "content": "hello"}]})
    t0 = time.monotonic()
    status, ctype, body = get("/jobs/%s/wait?shape=agent" % job, timeout=60)
    assert time.monotonic() - t0 < 30
    want_status, want_detail = ERRORS[kind]
    assert status == want_status, body
    assert ctype == "application/json"
    detail = json.loads(body)["detail"]
    assert detail.startswith(want_detail), detail
    assert u.key not in body.decode()
    row = job_row(job)
    assert row["state"] == "failed" and row["error"] == detail
    # a second wait on the finished job answers the same from the database
    assert get("/jobs/%s/wait" % job)[0] == want_status


@pytest.mark.parametrize("kind", ["401", "500", "reset"])
def test_provider_error_stream_events(world, agentd, kind):
    u = user_with_key(world, "errs" + kind, "fake-%s-%s" % (kind, uuid.uuid4().hex[:8]))
    job = new_job(u)
    events = Stream(job).rest()
    errors = [e["json"] for e in events if e["event"] == "error"]
    # every agent failed: the supporting ones (the job went on) and the primary (it ended)
    assert sorted(e["agent"] for e in errors) == ["analysis", "ideation", "research"]
    want_status, want_detail = ERRORS[kind]
    assert all(e["error"].startswith(want_detail) for e in errors)
    complete = events[-1]
    assert complete["event"] == "complete"
    md = complete["json"]["metadata"]
    assert md["partial"] is True and md["status"] == want_status
    assert ids_ok(events)
    assert job_row(job)["state"] == "failed"


def test_each_users_calls_carry_their_own_key(world, agentd):
    a = keyed_user(world, "keya")
    b = keyed_user(world, "keyb")
    for u in (a, b):
        fake_script(u.key, [{"kind": "ok", "text": "x", "first_token_ms": 200}] * 3)
    ja = new_job(a, request={"query": "marker-A-%s" % a.id, "primary_agent": "research",
                             "supporting_agents": ["analysis", "ideation"]})
    jb = new_job(b, request={"query": "marker-B-%s" % b.id, "primary_agent": "research",
                             "supporting_agents": ["analysis", "ideation"]})
    results = {}

    def wait(j):
        results[j] = get("/jobs/%s/wait?shape=multi_agent" % j)[0]

    ts = [threading.Thread(target=wait, args=(j,)) for j in (ja, jb)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert results == {ja: 200, jb: 200}
    for u, marker in ((a, "marker-A-"), (b, "marker-B-")):
        calls = fake_log(u.key)
        assert len(calls) == 3
        assert all(marker + u.id in c["prompt"] for c in calls), calls
    other = [c for c in fake_log() if c["prompt"] and ("marker-A-%s" % a.id in c["prompt"]
                                                       or "marker-B-%s" % b.id in c["prompt"])]
    assert len(other) == 6 and {c["key"] for c in other} == {a.key, b.key}


# ---------------------------------------------------------------------------------------------
# kinds, shapes, caps


def test_phase_form_help_data_only_and_capped(world, agentd):
    u = keyed_user(world, "phase")
    toks = [" word%04d" % i for i in range(400)]  # 3 600 characters
    fake_script(u.key, [{"kind": "ok", "tokens": toks, "tokens_per_s": 2000}])
    job = new_job(u, "phase_form_help", {
        "product_id": str(uuid.uuid4()), "phase_id": str(uuid.uuid4()),
        "phase_name": "Ideation", "current_field": "problem",
        "current_prompt": "What problem do you solve?", "response_length": "short"})
    s = Stream(job, fmt="data")
    events = s.rest()
    assert all("event" not in e for e in events)
    assert ids_ok(events)
    kinds = [e["json"]["type"] for e in events]
    assert set(kinds) == {"chunk", "complete"} and kinds[-1] == "complete"
    sent = "".join(e["json"]["content"] for e in events if e["json"]["type"] == "chunk")
    assert len(sent) == 2000 and "".join(toks).startswith(sent)
    done = events[-1]["json"]
    assert done["agent"] == "ideation" and done["content"].endswith(TRUNCATED)
    assert len(done["content"]) <= 2000 + len(TRUNCATED) + 2
    assert done["word_count"] > 0
    assert wait_state(job)["state"] == "completed"


def test_agent_kind_wait_and_unknown_agent(world, agentd):
    u = keyed_user(world, "agentkind")
    fake_script(u.key, [{"kind": "ok", "text": "Direct answer."}])
    job = new_job(u, "agent", {"agent_type": "research", "user_id": u.id,
                               "messages": [{"role": "user", "content": "hi"}]})
    status, _, body = get("/jobs/%s/wait?shape=agent" % job)
    assert status == 200, body
    r = json.loads(body)
    assert r["agent_type"] == "research" and r["response"] == "Direct answer."
    assert set(r) == {"agent_type", "response", "metadata", "timestamp"}
    bad = new_job(u, "agent", {"agent_type": "no_such_agent",
                               "messages": [{"role": "user", "content": "hi"}]})
    status, _, body = get("/jobs/%s/wait" % bad)
    assert status == 400 and json.loads(body)["detail"] == "Unknown agent type"


def test_multi_agent_wait_shape(world, agentd):
    u = keyed_user(world, "shape")
    fake_script(u.key, [{"kind": "ok", "text": "a"}, {"kind": "ok", "text": "b"},
                        {"kind": "ok", "text": "Final."}])
    job = new_job(u)
    status, _, body = get("/jobs/%s/wait?shape=multi_agent" % job)
    assert status == 200
    r = json.loads(body)
    for k in ("primary_agent", "response", "agent_interactions", "coordination_mode",
              "metadata", "timestamp"):
        assert k in r
    assert r["response"] == "Final." and len(r["agent_interactions"]) == 3
    assert r["metadata"]["supporting_agents"] == ["analysis", "ideation"]


def test_unknown_job_and_paths(agentd):
    assert get("/jobs/%s/events" % uuid.uuid4())[0] == 404
    assert get("/jobs/%s/wait" % uuid.uuid4())[0] == 404
    assert get("/jobs/not-a-uuid/events")[0] == 404
    assert get("/nothing")[0] == 404


def test_status_and_metrics(world, agentd):
    u = keyed_user(world, "metrics")
    job = new_job(u)
    assert get("/jobs/%s/wait" % job)[0] == 200
    status, ctype, body = get("/status")
    assert status == 200 and ctype == "application/json"
    st = json.loads(body)
    for k in ("jobs_queued", "jobs_running", "jobs_completed", "jobs_failed", "jobs_retried",
              "streams_open", "rss_bytes", "owner"):
        assert k in st
    assert st["jobs_completed"] >= 1 and st["rss_bytes"] > 0
    status, ctype, body = get("/metrics")
    text = body.decode()
    assert status == 200 and ctype.startswith("text/plain")
    for name in ("ideaforge_agentd_jobs_queued", "ideaforge_agentd_jobs_running",
                 'ideaforge_agentd_jobs_total{outcome="done"}',
                 'ideaforge_agentd_jobs_total{outcome="retried"}',
                 "ideaforge_agentd_streams_open",
                 'ideaforge_agentd_provider_calls_total{provider="openai",status="ok"}',
                 'ideaforge_agentd_provider_latency_seconds_bucket{provider="openai"',
                 'ideaforge_agentd_first_token_seconds_bucket{provider="openai"',
                 "ideaforge_agentd_rss_bytes"):
        assert name in text, name


def test_logs_one_line_per_job_and_call_without_prompt_or_key(world, agentd):
    u = keyed_user(world, "logs")
    secret_query = "secret-question-%s" % uuid.uuid4().hex
    job = new_job(u, request={"query": secret_query, "primary_agent": "research",
                              "supporting_agents": ["analysis"]})
    assert get("/jobs/%s/wait" % job)[0] == 200
    time.sleep(0.2)
    log = open(AGENTD_LOG, errors="replace").read()
    mine = [l for l in log.splitlines() if job in l]
    assert any("job start" in l for l in mine)
    assert any("job end state=completed" in l and "duration_ms=" in l for l in mine)
    calls = [l for l in mine if "provider call" in l]
    assert len(calls) == 2
    assert all("first_token_ms=" in l and "total_ms=" in l and "status=ok" in l for l in calls)
    assert secret_query not in log and u.key not in log


def test_command_line():
    r = subprocess.run([AGENTD, "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "ideaforge-agentd" in r.stdout
    r = subprocess.run([AGENTD, "--version"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and r.stdout.startswith("ideaforge-agentd ")
    r = subprocess.run([AGENTD, "--config", CONF, "--print-config"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0 and "agentd_listen = unix:" in r.stdout
    assert "fake-server-key" not in r.stdout
    r = subprocess.run([AGENTD, "--config", CONF, "--agent_job_lease_s=1"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "agent_job_lease_s" in r.stderr
