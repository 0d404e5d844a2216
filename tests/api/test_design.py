"""The design routes (issue 16; API.md 1.13) against tests/fakes/fake_ext.py's FakeV0, through
nginx: prompts (stored, or an agent job for agentd), V0 projects and chats with the user's own
key, the Lovable link builder, mockups stored with project_status inside the schema's CHECK,
status checks, lists, delete; V0 answering 401, 404, 429, 500 and never; tenant and permission
checks on every route (another tenant's product is 404).
"""

import json
import os
import sys
import urllib.parse

import pytest

from auth_helpers import api_config, clear_rate_limits
from conftest import ApiLog, psql, psql_one
from product_helpers import DESIGN, world  # noqa: F401

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "fakes"))
from fake_ext import UPSTREAM_TEXT, FakeV0  # noqa: E402

MARKERS = (UPSTREAM_TEXT, "v0_MARKER")
STATUSES = {"pending", "in_progress", "completed", "failed", "timeout"}


def assert_clean(*texts):
    for t in texts:
        for m in MARKERS:
            assert m not in t, "leaked %r" % m


@pytest.fixture(scope="module")
def v0(world):  # noqa: F811
    with FakeV0() as fake:
        with api_config(v0_api_url=fake.base_url, ext_timeout_ms=2000, design_follow_s=600):
            for role in ("owner", "editor", "viewer", "outsider"):
                r = world.client(role).post("/api/api-keys", json={"provider": "v0",
                                                                   "api_key": fake.key})
                assert r.status_code == 200, r.text
            yield fake


@pytest.fixture(autouse=True)
def _fresh(request):
    clear_rate_limits()
    if "v0" in request.fixturenames:
        request.getfixturevalue("v0").clear()
    yield


@pytest.fixture
def product(world, v0):  # noqa: F811
    return world.new_product(name="Gadget")


def mockup(product_id, provider="v0"):
    rows = psql("SELECT id, project_status, v0_project_id, v0_chat_id, project_url, "
                "follow_until IS NOT NULL, metadata::text FROM design_mockups "
                "WHERE product_id = $1 AND provider = $2", product_id, provider)
    return rows


# ---------------------------------------------------------------------------------------------
# prompts


def test_stored_prompt_is_returned(world, v0, product):  # noqa: F811
    psql("INSERT INTO phase_submissions (product_id, phase_id, user_id, tenant_id, form_data) "
         "VALUES ($1, $2, $3, $4, $5::jsonb)", product, DESIGN, world.owner.id, world.tenant_a,
         json.dumps({"v0_lovable_prompts": {"v0": "Build a gadget UI", "lovable": "Lovable it"}}))
    c = world.client("viewer")
    r = c.post("/api/design/generate-prompt", json={"product_id": product, "provider": "v0"})
    assert r.status_code == 200, r.text
    assert r.json() == {"prompt": "Build a gadget UI", "provider": "v0", "product_id": product,
                        "is_existing": True}
    r = c.post("/api/design/generate-prompt/stream", json={"product_id": product,
                                                           "provider": "lovable"})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream")
    assert json.loads(r.text.split("data: ", 1)[1]) == {"type": "complete",
                                                         "prompt": "Lovable it"}
    r = c.post("/api/design/generate-prompt", json={"product_id": product, "provider": "figma"})
    assert r.status_code == 400


def test_new_prompt_is_an_agent_job(world, v0, product):  # noqa: F811
    world.client("owner").post("/api/api-keys", json={"provider": "openai",
                                                      "api_key": "sk-test-0000000000000000"})
    try:
        r = world.client("owner").post("/api/design/generate-prompt", json={
            "product_id": product, "provider": "lovable", "force_new": True})
        # handed to nginx's /_agentd/ location with X-Accel-Redirect (agentd answers; it is
        # not part of this suite): the API accepted the request and queued the job
        assert r.status_code < 400 or r.status_code >= 500, r.text
        row = psql("SELECT kind, request->>'agent_type', request->>'design_prompt' "
                   "FROM agent_jobs WHERE product_id = $1", product)
        assert row == [("agent", "lovable", "true")]
    finally:
        world.client("owner").delete("/api/api-keys/openai")


# ---------------------------------------------------------------------------------------------
# V0 projects, chats, status


def test_create_project_reuses_the_project(world, v0, product):  # noqa: F811
    c = world.client("editor")
    r = c.post("/api/design/create-project", json={"product_id": product, "provider": "v0"})
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["is_existing"] is False and b["projectId"] in v0.projects
    assert b["project_status"] in STATUSES
    assert v0.projects[b["projectId"]]["name"] == "Gadget (IdeaForge)"
    r2 = c.post("/api/design/create-project", json={"product_id": product, "provider": "v0"})
    assert r2.json()["is_existing"] is True and r2.json()["projectId"] == b["projectId"]
    r3 = c.post("/api/design/create-project", json={"product_id": product, "provider": "v0",
                                                   "create_new": True})
    assert r3.json()["projectId"] != b["projectId"]
    assert_clean(r.text, r2.text, r3.text)


def test_lovable_link(world, v0, product):  # noqa: F811
    prompt = "A dashboard & a chart #1"
    r = world.client("owner").post("/api/design/create-project", json={
        "product_id": product, "provider": "lovable", "prompt": prompt})
    assert r.status_code == 200, r.text
    url = r.json()["project_url"]
    assert url.startswith("https://lovable.dev/?autosubmit=true#prompt=")
    assert urllib.parse.unquote(url.split("#prompt=", 1)[1]) == prompt
    assert mockup(product, "lovable")[0][1] == "completed"
    t = world.client("viewer").post("/api/design/generate-thumbnails", json={
        "product_id": product, "lovable_prompt": prompt, "num_previews": 3})
    assert t.status_code == 200 and len(t.json()["previews"]) == 3
    assert {p["type"] for p in t.json()["previews"]} == {"lovable_link"}


def test_chat_then_status_until_completed(world, v0, product):  # noqa: F811
    c = world.client("owner")
    pid = c.post("/api/design/create-project", json={"product_id": product}).json()["projectId"]
    r = c.post("/api/design/submit-chat", json={"product_id": product, "provider": "v0",
                                                "prompt": "Make it blue", "projectId": pid})
    assert r.status_code == 200, r.text
    chat = r.json()["chat_id"]
    assert v0.chats[chat]["message"] == "Make it blue"
    (mid, status, vpid, vchat, url, follow, meta) = mockup(product)[0]
    assert (status, vpid, vchat, follow) == ("in_progress", pid, chat, "t")
    s = c.get("/api/design/mockups/%s/status" % product)
    assert s.status_code == 200 and s.json()["status"] == "in_progress"
    v0.complete(chat)
    s = c.get("/api/design/mockups/%s/status?provider=v0" % product)
    assert s.json()["status"] == "completed", s.text
    assert s.json()["demo_url"] == "https://demo-fake.vusercontent.net/app"
    k = c.get("/api/design/check-status/%s?projectId=%s" % (product, pid))
    assert k.json()["is_complete"] is True and k.json()["chat_id"] == chat
    # two checks of the status routes, and maybe some of ideaforge-agentd's follow-up
    assert int(psql_one("SELECT status_checks FROM design_mockups WHERE id = $1", mid)) >= 2


def test_following_ends_in_timeout(world, v0, product):  # noqa: F811
    c = world.client("owner")
    r = c.post("/api/design/generate-mockup", json={"product_id": product, "provider": "v0",
                                                    "prompt": "A login page"})
    assert r.status_code == 200 and r.json()["status"] == "submitted", r.text
    psql("UPDATE design_mockups SET follow_until = now() - interval '1 second' "
         "WHERE product_id = $1", product)
    s = c.get("/api/design/check-status/%s" % product)
    assert s.json()["status"] == "timeout" and s.json()["can_submit_new"] is True
    assert mockup(product)[0][1] == "timeout"


def test_status_check_failure_keeps_the_row(world, v0, product):  # noqa: F811
    c = world.client("owner")
    c.post("/api/design/generate-mockup", json={"product_id": product, "prompt": "x"})
    v0.fail("/v1/chats/", "500")
    log = ApiLog()
    s = c.get("/api/design/mockups/%s/status" % product)
    assert s.status_code == 200 and s.json()["status"] == "in_progress"
    assert "V0 status check failed" in s.json()["message"]
    assert_clean(s.text, log.text())


def test_status_without_mockup(world, v0, product):  # noqa: F811
    s = world.client("viewer").get("/api/design/mockups/%s/status" % product)
    assert s.json()["status"] == "not_found"


@pytest.mark.parametrize("kind,status", [("401", 400), ("403", 400), ("404", 404),
                                          ("429", 429), ("500", 503), ("hang", 503)])
def test_v0_failures(world, v0, product, kind, status):  # noqa: F811
    v0.fail("/v1/projects", kind)
    log = ApiLog()
    r = world.client("owner").post("/api/design/create-project", json={"product_id": product})
    assert r.status_code == status, r.text
    assert_clean(r.text, log.text())
    assert mockup(product) == []


def test_no_v0_key_says_what_to_configure(world, v0, product):  # noqa: F811
    r = world.client("admin").post("/api/design/generate-mockup", json={
        "product_id": product, "prompt": "x"})
    assert r.status_code == 400 and "/api/api-keys" in r.json()["detail"]


# ---------------------------------------------------------------------------------------------
# lists, delete, access


def test_lists_and_delete(world, v0, product):  # noqa: F811
    o = world.client("owner")
    o.post("/api/design/create-project", json={"product_id": product, "provider": "lovable",
                                               "prompt": "p"})
    o.post("/api/design/generate-mockup", json={"product_id": product, "prompt": "q"})
    m = world.client("viewer").get("/api/design/mockups/%s" % product)
    assert m.status_code == 200 and len(m.json()["mockups"]) == 2
    assert {x["project_status"] for x in m.json()["mockups"]} <= STATUSES
    assert len(world.client("viewer").get("/api/design/mockups/%s?provider=lovable"
                                          % product).json()["mockups"]) == 1
    p = world.client("viewer").get("/api/design/prototypes/%s" % product)
    assert len(p.json()["prototypes"]) == 2
    mid = m.json()["mockups"][0]["id"]
    assert world.client("viewer").delete("/api/design/mockups/" + mid).status_code == 403
    assert world.client("outsider").delete("/api/design/mockups/" + mid).status_code == 404
    assert world.anon.delete("/api/design/mockups/" + mid).status_code == 401
    d = world.client("owner").delete("/api/design/mockups/" + mid)
    assert d.status_code == 200 and d.json() == {"success": True, "id": mid}
    assert world.client("owner").delete("/api/design/mockups/" + mid).status_code == 404


def _routes(product):
    body = {"product_id": product, "provider": "v0", "prompt": "x", "projectId": "prjx",
            "lovable_prompt": "x"}
    return [("post", "/api/design/generate-prompt", {"product_id": product}, "view"),
            ("post", "/api/design/generate-prompt/stream", {"product_id": product}, "view"),
            ("post", "/api/design/create-project", body, "edit"),
            ("post", "/api/design/submit-chat", body, "edit"),
            ("post", "/api/design/generate-mockup", body, "edit"),
            ("post", "/api/design/generate-thumbnails",
             {"product_id": product, "lovable_prompt": "x"}, "view"),
            ("get", "/api/design/mockups/" + product, None, "view"),
            ("get", "/api/design/prototypes/" + product, None, "view"),
            ("get", "/api/design/mockups/%s/status" % product, None, "view"),
            ("get", "/api/design/check-status/" + product, None, "view")]


def test_every_route_checks_tenant_and_permission(world, v0, product):  # noqa: F811
    for method, path, body, need in _routes(product):
        kw = {"json": body} if body is not None else {}
        assert getattr(world.anon, method)(path, **kw).status_code == 401, path
        r = getattr(world.client("outsider"), method)(path, **kw)
        assert r.status_code == 404, (path, r.text)
        r = getattr(world.client("stranger"), method)(path, **kw)
        assert r.status_code == 403, (path, r.text)
        if need == "edit":
            r = getattr(world.client("viewer"), method)(path, **kw)
            assert r.status_code == 403, (path, r.text)
    assert v0.requests == []


def test_phase_submission_of_another_product_is_404(world, v0, product):  # noqa: F811
    other = world.new_product(shares=False)
    sub = psql_one("INSERT INTO phase_submissions (product_id, phase_id, user_id, tenant_id) "
                   "VALUES ($1, $2, $3, $4) RETURNING id", other, DESIGN, world.owner.id,
                   world.tenant_a)
    r = world.client("owner").post("/api/design/create-project", json={
        "product_id": product, "phase_submission_id": sub, "provider": "lovable",
        "prompt": "x"})
    assert r.status_code == 404


def test_no_credential_in_the_log(v0):
    from conftest import API_LOG
    with open(API_LOG, errors="replace") as f:
        assert_clean(f.read())
