"""GitHub, Confluence and Jira (issue 16; API.md 1.11, 1.12, 1.14): every route against
tests/fakes/fake_ext.py's FakeGitHub and FakeAtlassian, through nginx, including the service
answering 401, 404, 429, 500 and never; no credential or service text in a response or the
API log; another tenant's product is 404 on every product-scoped route.
"""

import os
import sys
import time

import pytest

from auth_helpers import api_config, clear_rate_limits
from conftest import ApiLog, psql, psql_one
from product_helpers import DESIGN, IDEATION, REQUIREMENTS, world  # noqa: F401

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "fakes"))
from fake_ext import UPSTREAM_TEXT, FakeAtlassian, FakeGitHub  # noqa: E402

MARKERS = (UPSTREAM_TEXT, "ghp_MARKER", "atl_MARKER", "v0_MARKER")
GH_URL = "https://github.com/acme/widgets/blob/main/docs/spec.md"
FAILURES = [("401", 400), ("403", 400), ("404", 404), ("429", 429), ("500", 503),
            ("hang", 503)]


def assert_clean(*texts):
    for t in texts:
        for m in MARKERS:
            assert m not in t, "leaked %r" % m


@pytest.fixture(scope="module")
def svc(world):  # noqa: F811
    with FakeGitHub() as gh, FakeAtlassian() as atl:
        gh.files[("acme", "widgets", "main", "docs/spec.md")] = "# Spec\nThe widget spins.\n".encode()
        gh.files[("acme", "widgets", "main", "big.txt")] = b"x" * 5000
        gh.files[("acme", "widgets", "main", "bin.dat")] = b"\x00\x01\x02"
        gh.files[("acme", "widgets", "main", "dir")] = None
        atl.pages["12345"] = ("Design notes", "<h1>Goals</h1><p>Fast &amp; small</p>"
                              "<ul><li>one</li><li>two &lt;3</li></ul>"
                              "<ac:structured-macro><ac:plain-text-body><![CDATA[x = 1 < 2]]>"
                              "</ac:plain-text-body></ac:structured-macro>")
        with api_config(github_api_url=gh.base_url, atlassian_allowed_hosts="127.0.0.1",
                        ext_allow_http="true", ext_timeout_ms=2000,
                        ext_upload_max_bytes=4096):
            for role in ("owner", "editor", "viewer", "stranger", "outsider"):
                c = world.client(role)
                r = c.post("/api/integrations/configure", json={
                    "provider": "github", "config": {"pat": gh.token}})
                assert r.status_code == 200, r.text
                r = c.post("/api/integrations/configure", json={
                    "provider": "atlassian", "config": {"url": atl.base_url, "email": atl.email,
                                                        "api_token": atl.token}})
                assert r.status_code == 200, r.text
            yield gh, atl


@pytest.fixture(autouse=True)
def _fresh(request):
    clear_rate_limits()
    if "svc" in request.fixturenames:
        for f in request.getfixturevalue("svc"):
            f.clear()
    yield


@pytest.fixture(scope="module")
def product(world, svc):  # noqa: F811
    pid = world.new_product(name="Widget")
    psql("INSERT INTO phase_submissions (product_id, phase_id, user_id, tenant_id, form_data) "
         "VALUES ($1, $2, $3, $4, $5::jsonb)", pid, REQUIREMENTS, world.owner.id,
         world.tenant_a, '{"functional_requirements": "- Spin the widget\\n- Stop it\\n\\n'
         '3. Report its speed"}')
    psql("INSERT INTO phase_submissions (product_id, phase_id, user_id, tenant_id, form_data) "
         "VALUES ($1, $2, $3, $4, $5::jsonb)", pid, IDEATION, world.owner.id,
         world.tenant_a, '{"problem_statement": "Widgets stand still"}')
    return pid


def kb_rows(pid, source):
    return psql("SELECT title, content, metadata->>'user_id' FROM knowledge_articles "
                "WHERE product_id = $1 AND source = $2 ORDER BY created_at", pid, source)


# ---------------------------------------------------------------------------------------------
# verify


def test_verify_github_stored_and_given(world, svc):  # noqa: F811
    gh, _ = svc
    r = world.client("owner").post("/api/integrations/verify", json={"provider": "github"})
    assert r.status_code == 200 and r.json()["valid"] is True, r.text
    assert "octo-test" in r.json()["message"]
    assert gh.requests[-1][1] == "/user"
    bad = world.client("owner").post("/api/integrations/verify", json={
        "provider": "github", "config": {"pat": "ghp_MARKER_wrong"}})
    assert bad.status_code == 200 and bad.json()["valid"] is False
    assert_clean(bad.text)


@pytest.mark.parametrize("kind,_", FAILURES)
def test_verify_github_failures_are_valid_false(world, svc, kind, _):  # noqa: F811
    gh, _a = svc
    gh.fail("/user", kind)
    log = ApiLog()
    r = world.client("owner").post("/api/integrations/verify", json={"provider": "github"})
    assert r.status_code == 200 and r.json()["valid"] is False, r.text
    assert_clean(r.text, log.text())


def test_verify_atlassian_stores_the_real_cloud_id(world, svc):  # noqa: F811
    _, atl = svc
    r = world.client("owner").post("/api/integrations/verify", json={"provider": "atlassian"})
    assert r.status_code == 200 and r.json()["valid"] is True, r.text
    assert r.json()["cloud_id"] == atl.cloud_id
    assert psql_one("SELECT metadata->>'cloud_id' FROM user_api_keys WHERE user_id = $1 AND "
                    "provider = 'atlassian'", world.owner.id) == atl.cloud_id
    st = world.client("owner").get("/api/integrations/status").json()
    assert st["integrations"]["atlassian"]["metadata"]["cloud_id"] == atl.cloud_id
    assert_clean(st.__repr__())


def test_verify_atlassian_refuses_hosts_not_allowed(world, svc):  # noqa: F811
    _, atl = svc
    r = world.client("owner").post("/api/integrations/verify", json={
        "provider": "atlassian", "config": {"url": "https://evil.example.com", "email": "a@b.c",
                                            "api_token": "atl_MARKER_x"}})
    assert r.status_code == 200 and r.json()["valid"] is False
    assert "atlassian_allowed_hosts" in r.json()["message"]
    assert atl.requests == []


def test_verify_without_credentials_says_what_to_configure(world, svc):  # noqa: F811
    from product_helpers import User
    u = User(world.tenant_a, "nocreds")
    for prov in ("github", "atlassian"):
        r = u.http.post("/api/integrations/verify", json={"provider": prov})
        assert r.status_code == 200 and r.json()["valid"] is False
        assert "/api/integrations/configure" in r.json()["message"]
    assert u.http.post("/api/integrations/verify", json={"provider": "gitlab"}).status_code == 400
    assert world.anon.post("/api/integrations/verify", json={"provider": "github"}).status_code == 401


# ---------------------------------------------------------------------------------------------
# upload-from-github


def test_upload_from_github(world, svc, product):  # noqa: F811
    gh, _ = svc
    r = world.client("editor").post("/api/documents/upload-from-github",
                                    json={"github_url": GH_URL, "product_id": product})
    assert r.status_code == 200, r.text
    assert r.json()["message"].startswith("File imported")
    rows = kb_rows(product, "github")
    assert rows[-1] == ("docs/spec.md", "# Spec\nThe widget spins.\n", world.user("editor").id)
    path = gh.requests[-1][1]
    assert path == "/repos/acme/widgets/contents/docs/spec.md?ref=main"
    # raw URLs too
    raw = "https://raw.githubusercontent.com/acme/widgets/main/docs/spec.md"
    assert world.client("owner").post("/api/documents/upload-from-github", json={
        "github_url": raw, "product_id": product}).status_code == 200


@pytest.mark.parametrize("url", ["https://gitlab.com/a/b/blob/main/x.md",
                                 "https://github.com/acme/widgets",
                                 "https://github.com/acme/widgets/blob/main/../../etc/passwd",
                                 "https://github.com/acme/widgets/tree/main/docs",
                                 "http://github.com/acme/widgets/blob/main/x.md"])
def test_upload_from_github_bad_urls(world, svc, product, url):  # noqa: F811
    gh, _ = svc
    r = world.client("owner").post("/api/documents/upload-from-github",
                                   json={"github_url": url, "product_id": product})
    assert r.status_code == 400, r.text
    assert gh.requests == []


def test_upload_from_github_size_and_content_checks(world, svc, product):  # noqa: F811
    c = world.client("owner")
    base = "https://github.com/acme/widgets/blob/main/"
    r = c.post("/api/documents/upload-from-github", json={"github_url": base + "big.txt",
                                                          "product_id": product})
    assert r.status_code == 413, r.text
    r = c.post("/api/documents/upload-from-github", json={"github_url": base + "bin.dat",
                                                          "product_id": product})
    assert r.status_code == 400 and "UTF-8" in r.json()["detail"]
    r = c.post("/api/documents/upload-from-github", json={"github_url": base + "dir",
                                                          "product_id": product})
    assert r.status_code == 400
    r = c.post("/api/documents/upload-from-github", json={"github_url": base + "missing.md",
                                                          "product_id": product})
    assert r.status_code == 404


@pytest.mark.parametrize("kind,status", FAILURES)
def test_upload_from_github_failures(world, svc, product, kind, status):  # noqa: F811
    gh, _ = svc
    gh.fail("/repos/", kind)
    log = ApiLog()
    t = time.monotonic()
    r = world.client("owner").post("/api/documents/upload-from-github",
                                   json={"github_url": GH_URL, "product_id": product})
    assert r.status_code == status, r.text
    assert time.monotonic() - t < 8
    if status == 429:
        assert r.headers["Retry-After"] == "7"
    if status == 503:
        assert r.json()["detail"] == "Service temporarily unavailable"
        assert r.headers["Retry-After"] == "30"
    else:
        assert "GitHub" in r.json()["detail"]
    assert_clean(r.text, log.text())


def test_upload_from_github_access(world, svc, product):  # noqa: F811
    body = {"github_url": GH_URL, "product_id": product}
    assert world.client("outsider").post("/api/documents/upload-from-github",
                                         json=body).status_code == 404
    assert world.client("stranger").post("/api/documents/upload-from-github",
                                         json=body).status_code == 403
    assert world.client("viewer").post("/api/documents/upload-from-github",
                                       json=body).status_code == 403
    assert world.anon.post("/api/documents/upload-from-github", json=body).status_code == 401
    r = world.client("owner").post("/api/documents/upload-from-github",
                                   json={"github_url": GH_URL})
    assert r.status_code == 400


# ---------------------------------------------------------------------------------------------
# upload-from-confluence


def test_upload_from_confluence_by_url_and_id(world, svc, product):  # noqa: F811
    _, atl = svc
    c = world.client("owner")
    url = atl.base_url + "/wiki/spaces/ENG/pages/12345/Design+notes"
    r = c.post("/api/documents/upload-from-confluence",
               json={"confluence_url": url, "product_id": product})
    assert r.status_code == 200, r.text
    title, content, _ = kb_rows(product, "confluence")[-1]
    assert title == "Design notes"
    assert content == "Goals\nFast & small\none\ntwo <3\nx = 1 < 2"
    r = c.post("/api/documents/upload-from-confluence",
               json={"confluence_url": "12345", "product_id": product})
    assert r.status_code == 200, r.text


def test_upload_from_confluence_refuses_other_hosts(world, svc, product):  # noqa: F811
    _, atl = svc
    r = world.client("owner").post("/api/documents/upload-from-confluence", json={
        "confluence_url": "https://evil.example.com/wiki/pages/12345", "product_id": product})
    assert r.status_code == 400
    assert atl.requests == []


@pytest.mark.parametrize("kind,status", FAILURES)
def test_upload_from_confluence_failures(world, svc, product, kind, status):  # noqa: F811
    _, atl = svc
    atl.fail("/wiki/rest/api/content/", kind)
    log = ApiLog()
    r = world.client("owner").post("/api/documents/upload-from-confluence",
                                   json={"confluence_url": "12345", "product_id": product})
    assert r.status_code == status, r.text
    assert_clean(r.text, log.text())


def test_upload_from_confluence_access(world, svc, product):  # noqa: F811
    body = {"confluence_url": "12345", "product_id": product}
    assert world.client("outsider").post("/api/documents/upload-from-confluence",
                                         json=body).status_code == 404
    assert world.client("viewer").post("/api/documents/upload-from-confluence",
                                       json=body).status_code == 403


# ---------------------------------------------------------------------------------------------
# publish-to-confluence


def test_publish_to_confluence(world, svc, product):  # noqa: F811
    _, atl = svc
    r = world.client("viewer").post("/api/products/%s/publish-to-confluence" % product, json={
        "space_id": "ENG", "title": "Widget PRD",
        "prd_content": "# Widget\n\nIt <spins> & stops.\n\n- one\n- two\n\n```\ncode <x>\n```"})
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["success"] is True and b["space_id"] == "98306"
    assert b["title"].startswith("Widget PRD - ") and len(b["title"]) == len("Widget PRD - ") + 15
    assert b["page_url"] == atl.base_url + "/wiki/spaces/ENG/pages/%s/x" % b["page_id"]
    sent = atl.created_pages[-1]
    assert sent["spaceId"] == "98306" and sent["body"]["representation"] == "storage"
    assert sent["body"]["value"] == ("<h1>Widget</h1><p>It &lt;spins&gt; &amp; stops.</p>"
                                     "<ul><li>one</li><li>two</li></ul><pre>code &lt;x&gt;\n</pre>")


@pytest.mark.parametrize("kind,status", FAILURES)
def test_publish_to_confluence_failures(world, svc, product, kind, status):  # noqa: F811
    _, atl = svc
    atl.fail("/wiki/api/v2/pages", kind)
    log = ApiLog()
    r = world.client("owner").post("/api/products/%s/publish-to-confluence" % product, json={
        "space_id": "98306", "title": "T", "prd_content": "x"})
    assert r.status_code == status, r.text
    assert_clean(r.text, log.text())


def test_publish_to_confluence_access(world, svc, product):  # noqa: F811
    body = {"space_id": "98306", "title": "T", "prd_content": "x"}
    path = "/api/products/%s/publish-to-confluence" % product
    assert world.client("outsider").post(path, json=body).status_code == 404
    assert world.client("stranger").post(path, json=body).status_code == 403
    assert world.anon.post(path, json=body).status_code == 401


# ---------------------------------------------------------------------------------------------
# workflows: idea_to_jira, prd_to_jira


def test_prd_to_jira(world, svc, product):  # noqa: F811
    _, atl = svc
    r = world.client("owner").post("/api/workflows/prd_to_jira",
                                   json={"product_id": product, "project_key": "WID"})
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["created"] == 3 and b["complete"] is True
    assert [i["summary"] for i in b["issues"]] == ["Spin the widget", "Stop it",
                                                   "Report its speed"]
    assert b["issues"][0]["url"] == atl.base_url + "/browse/WID-1"
    f = atl.created_issues[0]["fields"]
    assert f["project"] == {"key": "WID"} and f["issuetype"] == {"name": "Story"}


def test_idea_to_jira(world, svc, product):  # noqa: F811
    _, atl = svc
    r = world.client("viewer").post("/api/workflows/idea_to_jira",
                                    json={"product_id": product, "project_key": "WID",
                                          "issue_type": "Task"})
    assert r.status_code == 200, r.text
    f = atl.created_issues[-1]["fields"]
    assert f["summary"] == "Widget" and "Widgets stand still" in f["description"]


def test_workflow_rules(world, svc, product):  # noqa: F811
    c = world.client("owner")
    assert c.post("/api/workflows/delete_everything", json={
        "product_id": product, "project_key": "WID"}).status_code == 404
    assert c.post("/api/workflows/prd_to_jira", json={
        "product_id": product, "project_key": "bad key"}).status_code == 400
    empty = world.new_product(shares=False)
    r = c.post("/api/workflows/prd_to_jira", json={"product_id": empty, "project_key": "WID"})
    assert r.status_code == 400 and "requirements" in r.json()["detail"]
    body = {"product_id": product, "project_key": "WID"}
    assert world.anon.post("/api/workflows/prd_to_jira", json=body).status_code == 401
    assert world.client("outsider").post("/api/workflows/prd_to_jira", json=body).status_code == 404
    assert world.client("stranger").post("/api/workflows/idea_to_jira", json=body).status_code == 403


@pytest.mark.parametrize("kind,status", FAILURES)
def test_workflow_failures(world, svc, product, kind, status):  # noqa: F811
    _, atl = svc
    atl.fail("/rest/api/2/issue", kind)
    log = ApiLog()
    r = world.client("owner").post("/api/workflows/prd_to_jira",
                                   json={"product_id": product, "project_key": "WID"})
    assert r.status_code == status, r.text
    assert_clean(r.text, log.text())


def test_workflow_partial_failure_reports_what_was_made(world, svc, product):  # noqa: F811
    _, atl = svc
    n = len(atl.created_issues)
    r = None
    # the second issue fails: the first stays created and is reported
    atl._failures = []
    orig = atl.handle

    def second_fails(h, method, path, q, body, _c=[0]):
        if path == "/rest/api/2/issue":
            _c[0] += 1
            if _c[0] == 2:
                return h.send_json(500, {"message": UPSTREAM_TEXT})
        return orig(h, method, path, q, body)

    atl.handle = second_fails
    try:
        r = world.client("owner").post("/api/workflows/prd_to_jira",
                                       json={"product_id": product, "project_key": "WID"})
    finally:
        atl.handle = orig
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 1 and r.json()["complete"] is False
    assert len(atl.created_issues) == n + 1
    assert_clean(r.text)


def test_no_credential_in_the_log(svc):
    from conftest import API_LOG
    with open(API_LOG, errors="replace") as f:
        assert_clean(f.read())
