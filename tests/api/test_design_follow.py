"""The durable V0 follow-up (issue 16 item 3; app/design.h, sql/0009_design_follow.sql): a V0
generation in progress is followed by ideaforge-agentd, whether or not a client asks, and ends
completed (with the demo URL), failed, or timeout once follow_until has passed. The follow-up
is the design_mockups row, so it outlives a killed agentd. V0 is tests/fakes/fake_ext.py's
FakeV0; the stack's agentd is restarted pointing at it (design_poll_s = 1 in the test stack).

No status route is called here: every check the fake sees is agentd's.
"""

import json
import os
import signal
import sys

import pytest

from auth_helpers import api_config, clear_rate_limits
from conftest import API_LOG, RUN_DIR, psql, wait_for
from product_helpers import world  # noqa: F401
from test_agentd import AGENTD_LOG, agentd_pid, agentd_start, agentd_stop

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "fakes"))
from fake_ext import UPSTREAM_TEXT, FakeV0  # noqa: E402

MARKERS = (UPSTREAM_TEXT, "v0_MARKER")


def assert_clean(*texts):
    for t in texts:
        for m in MARKERS:
            assert m not in t, "leaked %r" % m


def restart_agentd():
    """agentd again, reading the configuration file as it is now."""
    if agentd_pid() is not None:
        agentd_stop(signal.SIGTERM)
    agentd_start()


@pytest.fixture(scope="module")
def v0(world):  # noqa: F811
    with FakeV0() as fake:
        fake.retry_after = 1
        try:
            with api_config(v0_api_url=fake.base_url, ext_timeout_ms=2000,
                            design_follow_s=600):
                r = world.client("owner").post("/api/api-keys", json={"provider": "v0",
                                                                      "api_key": fake.key})
                assert r.status_code == 200, r.text
                restart_agentd()  # agentd reads v0_api_url and ext_timeout_ms at start
                yield fake
        finally:
            restart_agentd()  # back to the stack's configuration


@pytest.fixture(autouse=True)
def _agentd_up():
    clear_rate_limits()
    if agentd_pid() is None:
        agentd_start()
    yield
    if agentd_pid() is None:
        agentd_start()


@pytest.fixture
def product(world, v0):  # noqa: F811
    return world.new_product(name="Follow")


def new_chat(world, product, prompt="A settings page"):  # noqa: F811
    r = world.client("owner").post("/api/design/generate-mockup", json={
        "product_id": product, "provider": "v0", "prompt": prompt})
    assert r.status_code == 200 and r.json()["status"] == "submitted", r.text
    assert_clean(r.text)
    return r.json()["mockup_id"], r.json()["chat_id"]


def row(mid):
    (status, checks, checked, follow, failures, meta), = psql(
        "SELECT project_status, status_checks, status_checked_at IS NOT NULL, "
        "follow_until IS NOT NULL, check_failures, metadata::text FROM design_mockups "
        "WHERE id = $1", mid)
    return {"status": status, "checks": int(checks), "checked": checked == "t",
            "follow": follow == "t", "failures": int(failures), "meta": json.loads(meta),
            "text": meta}


def wait_done(mid, timeout=30):
    return wait_for(lambda: row(mid)["status"] != "in_progress" and row(mid), timeout,
                    interval=0.2, message="mockup %s to leave in_progress" % mid)


def agentd_lines(mid):
    with open(AGENTD_LOG, errors="replace") as f:
        return [line for line in f if mid in line]


def test_completes_without_a_client_asking(world, v0, product):  # noqa: F811
    mid, chat = new_chat(world, product)
    assert row(mid)["status"] == "in_progress"
    # agentd asks V0 by itself; V0 still working: the row stays in progress
    wait_for(lambda: v0.polls(chat) >= 2, 15, message="two checks of agentd")
    r = row(mid)
    assert r["status"] == "in_progress" and r["follow"] and r["checked"] and r["checks"] >= 1
    v0.complete(chat, demo_url="https://demo-follow.vusercontent.net/app")
    done = wait_done(mid)
    assert done["status"] == "completed" and not done["follow"]
    assert done["meta"]["demo_url"] == "https://demo-follow.vusercontent.net/app"
    assert done["meta"]["web_url"] == "https://v0.dev/chat/" + chat
    assert done["checks"] >= 3 and done["failures"] == 0
    # what the user sees: the list of mockups
    m = world.client("viewer").get("/api/design/mockups/%s" % product)
    assert m.status_code == 200, m.text
    (mk,) = m.json()["mockups"]
    assert mk["project_status"] == "completed" and mk["v0_chat_id"] == chat
    assert mk["metadata"]["demo_url"] == "https://demo-follow.vusercontent.net/app"
    # every check used the owner's key; checks stop once the generation ended
    auth = {h.get("Authorization") for m_, p, h, _ in list(v0.requests)
            if p == "/v1/chats/" + chat}
    assert auth == {"Bearer " + v0.key}
    polls = v0.polls(chat)
    wait_for(lambda: any("status=completed" in l for l in agentd_lines(mid)), 5,
             message="agentd's log line")
    assert v0.polls(chat) == polls


def test_follow_until_passed_is_timeout(world, v0, product):  # noqa: F811
    mid, chat = new_chat(world, product)
    psql("UPDATE design_mockups SET follow_until = now() + interval '1 second' WHERE id = $1",
         mid)
    done = wait_done(mid)
    assert done["status"] == "timeout" and not done["follow"]
    c = world.client("owner").get("/api/design/check-status/%s" % product)
    assert c.json()["status"] == "timeout" and c.json()["can_submit_new"] is True


@pytest.mark.parametrize("failures", [("500", "429"), ("hang",)])
def test_v0_failures_are_retried_later(world, v0, product, failures):  # noqa: F811
    mid, chat = new_chat(world, product)
    for kind in failures:  # before agentd's first check (design_poll_s after the chat)
        v0.fail("/v1/chats/" + chat, kind)
    v0.complete(chat)
    done = wait_done(mid)
    assert done["status"] == "completed", done
    assert done["meta"]["demo_url"] == "https://demo-fake.vusercontent.net/app"
    assert v0.polls(chat) == len(failures) + 1
    assert done["checks"] == len(failures) + 1 and done["failures"] == 0
    assert "follow_error" not in done["meta"]
    assert_clean(done["text"], "".join(agentd_lines(mid)))


@pytest.mark.parametrize("kind,says", [("401", "rejected"), ("403", "rejected"),
                                       ("404", "does not know")])
def test_v0_refusals_fail_with_a_safe_message(world, v0, product, kind, says):  # noqa: F811
    mid, chat = new_chat(world, product)
    v0.fail("/v1/chats/" + chat, kind)
    done = wait_done(mid)
    assert done["status"] == "failed" and not done["follow"]
    assert says in done["meta"]["follow_error"]
    assert v0.polls(chat) == 1
    c = world.client("owner").get("/api/design/check-status/%s" % product)
    assert c.json()["status"] == "failed" and c.json()["is_complete"] is False
    m = world.client("owner").get("/api/design/mockups/%s" % product)
    assert m.json()["mockups"][0]["project_status"] == "failed"
    assert_clean(done["text"], c.text, m.text, "".join(agentd_lines(mid)))


def test_no_key_is_retried_later_not_failed(world, v0, product):  # noqa: F811
    mid, chat = new_chat(world, product)
    psql("UPDATE design_mockups SET next_check_at = now() + interval '1 hour' WHERE id = $1",
         mid)
    c = world.client("owner")
    assert c.delete("/api/api-keys/v0").status_code == 200
    try:
        psql("UPDATE design_mockups SET next_check_at = now() WHERE id = $1", mid)
        wait_for(lambda: row(mid)["failures"] >= 1, 15, message="a check without a key")
        r = row(mid)
        assert r["status"] == "in_progress" and r["follow"] and "follow_error" not in r["meta"]
        assert v0.polls(chat) == 0
    finally:
        r = c.post("/api/api-keys", json={"provider": "v0", "api_key": v0.key})
        assert r.status_code == 200, r.text
    v0.complete(chat)
    done = wait_done(mid)
    assert done["status"] == "completed" and done["failures"] == 0


def test_survives_agentd_killed_during_a_check(world, v0, product):  # noqa: F811
    mid, chat = new_chat(world, product)
    v0.fail("/v1/chats/" + chat, "hang")
    wait_for(lambda: v0.polls(chat) >= 1, 15, message="agentd's check in flight")
    agentd_stop(signal.SIGKILL)  # the row stays claimed by a dead agentd
    assert row(mid)["status"] == "in_progress"
    v0.complete(chat)
    agentd_start()
    # the claim runs out (ext_timeout_ms + a margin); the new agentd takes the row over
    done = wait_done(mid)
    assert done["status"] == "completed"
    assert done["meta"]["demo_url"] == "https://demo-fake.vusercontent.net/app"
    assert v0.polls(chat) == 2


def test_survives_agentd_killed_between_checks(world, v0, product):  # noqa: F811
    mid, chat = new_chat(world, product)
    wait_for(lambda: row(mid)["checks"] >= 1, 15, message="agentd's first check")
    agentd_stop(signal.SIGKILL)
    v0.complete(chat)
    assert row(mid)["status"] == "in_progress"
    agentd_start()
    done = wait_done(mid)
    assert done["status"] == "completed"


def test_sigterm_hands_a_check_back(world, v0, product):  # noqa: F811
    mid, chat = new_chat(world, product)
    v0.fail("/v1/chats/" + chat, "hang")
    wait_for(lambda: v0.polls(chat) >= 1, 15, message="agentd's check in flight")
    assert agentd_stop(signal.SIGTERM) in (0, None)
    # handed back: due at once, not after the claim would have run out
    assert psql("SELECT next_check_at <= now() FROM design_mockups WHERE id = $1",
                mid) == [("t",)]
    v0.complete(chat)
    agentd_start()
    assert wait_done(mid)["status"] == "completed"


def test_two_agentds_never_check_a_generation_twice(world, v0):  # noqa: F811
    sock, pid_file = os.path.join(RUN_DIR, "agentd2.sock"), os.path.join(RUN_DIR, "agentd2.pid")
    second = agentd_start(pid_file=pid_file, sock=sock)
    try:
        chats = [new_chat(world, world.new_product(name="Twin %d" % i)) for i in range(4)]
        for mid, chat in chats:
            wait_for(lambda: v0.polls(chat) >= 3, 20, message="three checks of " + chat)
        for mid, chat in chats:
            v0.complete(chat)
        for mid, chat in chats:
            done = wait_done(mid)
            assert done["status"] == "completed"
            # each GET the fake answered was recorded once: no row was claimed by both
            assert done["checks"] == v0.polls(chat), (done, v0.polls(chat))
    finally:
        agentd_stop(signal.SIGTERM, pid=second.pid)
        for path in (sock, pid_file):
            if os.path.exists(path):
                os.unlink(path)


def test_metrics_count_the_checks(v0):
    from test_agentd import get
    status, _, body = get("/metrics")
    text = body.decode()
    assert status == 200
    for name in ("ideaforge_agentd_design_checks_in_flight",
                 "ideaforge_agentd_design_timeouts_total"):
        assert name in text, name
    ok = [line for line in text.splitlines()
          if line.startswith('ideaforge_agentd_design_checks_total{outcome="ok"} ')]
    assert len(ok) == 1 and int(ok[0].split()[-1]) >= 1, ok  # this agentd's checks so far


def test_no_key_or_upstream_text_in_the_logs(v0):
    for path in (AGENTD_LOG, API_LOG):
        with open(path, errors="replace") as f:
            assert_clean(f.read())
