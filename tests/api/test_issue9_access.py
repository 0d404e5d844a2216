"""Regression tests of issue 9 items 5-8: who may write to a chat, product ids that must not
reveal anything, caps on free-form JSON fields and on every list, and the small gaps (avatar
URLs, nginx's own errors, Cache-Control, HSTS, GET /api/auth/register, Idempotency-Key).

Each test is named after the defect it guards against. The caps asserted here are the ones the
README lists (section "Sessions, passwords and access").
"""

import concurrent.futures
import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid

import pytest
import requests

from auth_helpers import api_config
from conftest import BASE_URL, BUILD_DIR, CONF, RUN_DIR, new_http, psql, psql_one
from product_helpers import (IDEATION, MARKET, User, demo_hash, detail, make_tenant, uid,
                             world)  # noqa: F401 (fixture)

KIB = 1024


def append(http, **kw):
    body = {"message_type": "user", "content": "hello"}
    body.update(kw)
    return http.post("/api/db/conversation-history", json=body)


def chat_rows(pid):
    return psql("SELECT id, message_type, agent_name, content FROM conversation_history "
                "WHERE product_id = $1 ORDER BY id", pid)


# --------------------------------------------------------------------------------- item 5


def test_view_share_cannot_write_chat(world):
    """A view share reads the chat but cannot write to it; agent rows are the server's."""
    pid = world.new_product()
    sess = uid()
    assert append(world.owner.http, session_id=sess, product_id=pid,
                  content="owner asks").status_code == 200
    before = chat_rows(pid)
    viewer = world.user("viewer").http
    # the attack of the issue: an "agent" message from a view-only user
    r = append(viewer, session_id=sess, product_id=pid, message_type="agent",
               agent_name="Research Agent", agent_role="research", content="Pivot to crypto.")
    assert r.status_code == 422, r.text
    assert ["body", "message_type"] in [e["loc"] for e in r.json()["detail"]]
    # a plain message, to the owner's session or a new one, with or without product_id
    for body in ({"session_id": sess, "product_id": pid},
                 {"session_id": uid(), "product_id": pid},
                 {"session_id": sess}):
        r = append(viewer, content="viewer writes", **body)
        assert r.status_code == 403, (body, r.text)
        assert isinstance(detail(r), str)
    assert chat_rows(pid) == before
    assert psql_one("SELECT count(*) FROM conversation_history WHERE session_id = $1 "
                    "AND content = 'viewer writes'", sess) == "0"
    # the viewer still reads the chat
    r = viewer.get("/api/db/conversation-history", params={"product_id": pid})
    assert r.status_code == 200 and [m["content"] for m in r.json()["messages"]] == ["owner asks"]
    # the PRD export quotes nothing the viewer tried to write
    r = world.owner.http.post("/api/products/%s/export-prd" % pid, json={"format": "markdown"})
    assert r.status_code == 200 and "Pivot to crypto" not in r.text
    # edit rights write; nobody writes an agent row, not even the owner
    assert append(world.user("editor").http, session_id=sess, product_id=pid,
                  content="editor writes").status_code == 200
    r = append(world.owner.http, session_id=sess, product_id=pid, message_type="agent",
               agent_name="Research Agent", content="forged")
    assert r.status_code == 422
    assert [row[1] for row in chat_rows(pid)] == ["user", "user"]


# --------------------------------------------------------------------------------- item 6


def test_foreign_product_id_indistinguishable_on_create(world):
    """POST /api/db/products with an id that exists elsewhere answers like an id that exists
    nowhere: same status, same body shape, a new server-chosen id; the other row is unchanged."""
    foreign = world.user("outsider").http.post(
        "/api/products", json={"name": "Other tenant's"}).json()["id"]
    unshared = world.user("stranger").http.post(
        "/api/products", json={"name": "Stranger's"}).json()["id"]
    shared = world.new_product(name="Shared with the caller")  # caller below is the viewer
    caller = world.user("viewer").http

    def row(pid):
        return psql("SELECT name, description, status, metadata::text, user_id, tenant_id, "
                    "updated_at FROM products WHERE id = $1", pid)

    answers = {}
    for label, pid in (("missing", uid()), ("foreign", foreign), ("unshared", unshared),
                       ("shared", shared)):
        before = row(pid)
        r = caller.post("/api/db/products", json={
            "id": pid, "name": "Probe", "status": "build", "metadata": {"probe": True}})
        assert row(pid) == before, "%s row changed" % label
        answers[label] = (r.status_code, tuple(sorted(r.json())), r.json().get("id"))
        new_id = r.json()["id"]
        assert new_id != pid, label
        assert psql("SELECT name, user_id FROM products WHERE id = $1", new_id) == [
            ("Probe", world.user("viewer").id)], label
    shapes = {(s, keys) for s, keys, _ in answers.values()}
    assert shapes == {(200, ("created_at", "id", "updated_at"))}, answers
    # the caller's own product is still updated in place
    mine = answers["missing"][2]
    r = caller.post("/api/db/products", json={"id": mine, "name": "Renamed"})
    assert r.status_code == 200 and r.json()["id"] == mine
    assert psql_one("SELECT name FROM products WHERE id = $1", mine) == "Renamed"


# --------------------------------------------------------------------------------- item 7


def sized(nbytes):
    """A JSON object whose compact serialisation is exactly nbytes long."""
    o = {"k": "x" * (nbytes - len('{"k":""}'))}
    assert len(json.dumps(o, separators=(",", ":"))) == nbytes
    return o


def _cap_cases(w, pid, sub_id):
    """(name, method, path, body(value), field, cap, row query)"""
    return [
        ("db product metadata", "POST", "/api/db/products",
         lambda v: {"name": "Capped", "metadata": v}, "metadata", 64 * KIB),
        ("submission form_data", "POST", "/api/db/phase-submissions",
         lambda v: {"product_id": pid, "phase_id": MARKET, "form_data": v}, "form_data",
         256 * KIB),
        ("submission metadata", "POST", "/api/db/phase-submissions",
         lambda v: {"product_id": pid, "phase_id": MARKET, "metadata": v}, "metadata", 64 * KIB),
        ("submission update form_data", "PUT", "/api/db/phase-submissions/" + sub_id,
         lambda v: {"form_data": v}, "form_data", 256 * KIB),
        ("message interaction_metadata", "POST", "/api/db/conversation-history",
         lambda v: {"session_id": uid(), "product_id": pid, "message_type": "user",
                    "content": "c", "interaction_metadata": v}, "interaction_metadata", 64 * KIB),
        ("article metadata", "POST", "/api/db/knowledge-articles",
         lambda v: {"product_id": pid, "title": "T", "content": "c", "metadata": v},
         "metadata", 64 * KIB),
        ("preferences", "PUT", "/api/users/preferences",
         lambda v: {"preferences": v}, "preferences", 64 * KIB),
    ]


def test_object_field_caps(world):
    """Every free-form JSON field has a byte cap (serialised size): at the cap 200, one byte
    over 422 naming the field, and a 1 MiB object is refused without a row being written."""
    pid = world.new_product()
    o = world.owner.http
    sub_id = o.post("/api/db/phase-submissions", json={
        "product_id": pid, "phase_id": IDEATION, "form_data": {"a": 1}}).json()["id"]
    counts = ("SELECT (SELECT count(*) FROM products WHERE user_id = $1) + "
              "(SELECT count(*) FROM conversation_history h JOIN products p "
              "ON p.id = h.product_id WHERE p.user_id = $1) + "
              "(SELECT count(*) FROM knowledge_articles a JOIN products p "
              "ON p.id = a.product_id WHERE p.user_id = $1)")
    for name, method, path, body, field, cap in _cap_cases(world, pid, sub_id):
        r = o.request(method, path, json=body(sized(cap)))
        assert r.status_code == 200, (name, r.status_code, r.text[:300])
        r = o.request(method, path, json=body(sized(cap + 1)))
        assert r.status_code == 422, (name, r.status_code, r.text[:300])
        assert ["body", field] in [e["loc"] for e in r.json()["detail"]], (name, r.text[:300])
        n = psql_one(counts, world.owner.id)
        r = o.request(method, path, json=body(sized(1024 * KIB)))
        # 422 from the field cap, or 413 when the route's body cap is smaller still
        assert r.status_code in (413, 422), (name, r.status_code, r.text[:300])
        assert isinstance(r.json()["detail"], (str, list))
        assert psql_one(counts, world.owner.id) == n, name
    # the stored objects stayed within their caps
    assert int(psql_one("SELECT max(length(metadata::text)) FROM products WHERE user_id = $1",
                        world.owner.id)) <= 64 * KIB + 64
    assert int(psql_one("SELECT length(form_data::text) FROM phase_submissions WHERE id = $1",
                        sub_id)) <= 256 * KIB + 64


@pytest.fixture(scope="module")
def crowd(demo_seed):
    """A tenant with more rows than any list returns: 1005 users, 505 products (170 with all
    six phase submissions), 1005 shares of one product, 205 articles and 1005 messages of one
    session. Inserted with SQL (fast); the API only reads them."""
    tenant = make_tenant("crowd")
    owner = User(tenant, "owner")
    tag = uuid.uuid4().hex[:8]
    psql("INSERT INTO user_profiles (email, full_name, tenant_id, password_hash) "
         "SELECT 'bulk-' || g || '-' || $2 || '@example.test', 'Bulk ' || g, $1, $3 "
         "FROM generate_series(1, 1005) g", tenant, tag, demo_hash())
    psql("INSERT INTO products (user_id, tenant_id, name) SELECT $1, $2, 'P' || g "
         "FROM generate_series(1, 505) g", owner.id, tenant)
    pid = psql_one("SELECT id FROM products WHERE user_id = $1 ORDER BY id LIMIT 1", owner.id)
    psql("INSERT INTO phase_submissions (product_id, phase_id, user_id, tenant_id) "
         "SELECT p.id, f.id, $1, $2 FROM (SELECT id FROM products WHERE user_id = $1 "
         "ORDER BY id LIMIT 170) p CROSS JOIN product_lifecycle_phases f", owner.id, tenant)
    psql("INSERT INTO product_shares (product_id, tenant_id, shared_with_user_id, "
         "shared_by_user_id, permission) SELECT $1, $2, u.id, $3, 'view' FROM user_profiles u "
         "WHERE u.tenant_id = $2 AND u.id <> $3", pid, tenant, owner.id)
    psql("INSERT INTO knowledge_articles (product_id, tenant_id, title, content) "
         "SELECT $1, $2, 'A' || g, 'content ' || g FROM generate_series(1, 205) g", pid, tenant)
    sess = uid()
    psql("INSERT INTO conversation_sessions (id, user_id, product_id, tenant_id, title) "
         "VALUES ($1, $2, $3, $4, 'Crowded')", sess, owner.id, pid, tenant)
    psql("INSERT INTO conversation_history (session_id, product_id, tenant_id, message_type, "
         "content) SELECT $1, $2, $3, 'user', 'm' || g FROM generate_series(1, 1005) g",
         sess, pid, tenant)
    yield {"owner": owner, "pid": pid, "session": sess}
    owner.http.close()


def test_list_responses_bounded(crowd):
    """Every list answers at most its cap, even when asked for more (limits are capped, not
    refused): the caps of the README."""
    o = crowd["owner"].http
    pid = crowd["pid"]
    huge = {"limit": 1000000}
    cases = [
        ("/api/products", huge, "products", 500),
        ("/api/products/portfolio", huge, "portfolio", 500),
        ("/api/db/products", huge, "products", 500),
        ("/api/db/phase-submissions", huge, "submissions", 1000),
        ("/api/db/conversation-history", dict(huge, product_id=pid), "messages", 1000),
        ("/api/db/knowledge-articles", dict(huge, product_id=pid), "articles", 200),
        ("/api/auth/users", {}, "users", 1000),
        ("/api/products/%s/shares" % pid, {}, "shares", 1000),
        ("/api/db/phases", {}, "phases", 6),
    ]
    for path, params, key, cap in cases:
        r = o.get(path, params=params)
        assert r.status_code == 200, (path, r.text[:200])
        assert len(r.json()[key]) == cap, (path, len(r.json()[key]))
    r = o.get("/api/conversations/history", params=dict(huge, product_id=pid))
    assert r.status_code == 200 and len(r.json()["conversations"]) <= 200


# --------------------------------------------------------------------------------- item 8


@pytest.fixture(scope="module")
def solo(demo_seed):
    u = User(make_tenant("solo"), "solo")
    yield u
    u.http.close()


@pytest.mark.parametrize("url", [
    "javascript:alert(document.cookie)", "JavaScript:alert(1)", " javascript:alert(1)",
    "data:image/svg+xml;base64,PHN2Zz4=", "vbscript:msgbox", "file:///etc/passwd",
    "//evil.example/a.png", "ftp://example.com/a.png", "http://", "https:///a.png",
    "https://example.com/a b.png", "https://example.com/\u0000.png", "avatar.png"])
def test_avatar_url_rejects_javascript(solo, url):
    before = psql_one("SELECT coalesce(avatar_url, '<null>') FROM user_profiles WHERE id = $1",
                      solo.id)
    r = solo.http.put("/api/users/profile", json={"avatar_url": url})
    assert r.status_code == 422, (url, r.status_code, r.text)
    assert ["body", "avatar_url"] in [e["loc"] for e in r.json()["detail"]]
    assert psql_one("SELECT coalesce(avatar_url, '<null>') FROM user_profiles WHERE id = $1",
                    solo.id) == before


def test_avatar_url_accepts_http_and_https(solo):
    for url in ("https://cdn.example.com/u/1.png?size=64", "http://example.com/a.png",
                "HTTPS://Example.com/b.png", ""):
        r = solo.http.put("/api/users/profile", json={"avatar_url": url})
        assert r.status_code == 200, (url, r.text)
        stored = psql_one("SELECT avatar_url FROM user_profiles WHERE id = $1", solo.id)
        assert stored == (url or None), url  # "" clears it


def _host_port():
    host, port = BASE_URL.split("//", 1)[1].split("/")[0].split(":")
    return host, int(port)


def raw_http(data, timeout=10):
    """Sends raw bytes to nginx; returns (status, {header: value} lower-cased, body)."""
    s = socket.create_connection(_host_port(), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while b"\r\n\r\n" not in out or not _complete(out):
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def _complete(out):
    head, _, body = out.partition(b"\r\n\r\n")
    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    return m is not None and len(body) >= int(m.group(1))


def assert_json_error(status, headers, body, want):
    assert status == want, (status, headers, body[:200])
    assert headers.get("content-type", "").startswith("application/json"), headers
    assert isinstance(json.loads(body)["detail"], str), body
    assert headers.get("cache-control") == "no-store", headers


def _reload_nginx():
    """SIGHUP to the stack's nginx, then wait until its old workers are gone."""
    with open(os.path.join(RUN_DIR, "nginx.pid")) as f:
        master = int(f.read().strip())

    def workers():
        try:
            with open("/proc/%d/task/%d/children" % (master, master)) as f:
                return set(f.read().split())
        except OSError:
            return set()
    old = workers()
    os.kill(master, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (not workers() or workers() & old):
        time.sleep(0.05)


def _api_socket():
    with open(CONF) as f:
        m = re.search(r"^listen\s*=\s*unix:(\S+)", f.read(), re.M)
    return m.group(1) if m else os.path.join(RUN_DIR, "api.sock")


def test_nginx_errors_are_json(http):
    host = _host_port()[0].encode()
    # 400: a malformed request (two Host headers)
    assert_json_error(*raw_http(b"GET /api/auth/me HTTP/1.1\r\nHost: " + host + b"\r\nHost: x"
                                b"\r\nConnection: close\r\n\r\n"), 400)
    # 400 too: a header line over nginx's buffers
    assert_json_error(*raw_http(b"GET /api/auth/me HTTP/1.1\r\nHost: " + host +
                                b"\r\nX-Big: " + b"a" * 40000 + b"\r\nConnection: close\r\n\r\n"),
                      400)
    # 414: a URI over nginx's buffers
    r = http.get("/api/" + "a" * 20000)
    assert_json_error(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content,
                      414)
    # 413: a declared body over client_max_body_size, refused before it is sent
    assert_json_error(*raw_http(b"POST /api/auth/login HTTP/1.1\r\nHost: " + host +
                                b"\r\nContent-Type: application/json\r\nContent-Length: "
                                b"20000000\r\nConnection: close\r\n\r\n"), 413)
    # 404 and 403 of nginx's own locations under /api/ (a hashed-asset name, a dotfile)
    for path, want in (("/api/app.0123456789abcdef.js", 404), ("/api/.env", 403)):
        r = http.get(path)
        assert_json_error(r.status_code, {k.lower(): v for k, v in r.headers.items()},
                          r.content, want)
    # the API's own errors are unchanged: its detail, once
    r = http.get("/api/no/such/thing")
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}


def test_nginx_503_when_api_unreachable_has_retry_after(http):
    """The API's socket gone (API down): nginx's 502 becomes a JSON 503 with Retry-After."""
    sock = _api_socket()
    moved = sock + ".moved"
    # nginx keeps idle FastCGI connections to the API (upstream keepalive, issue 17): a reload
    # gives it new workers with none, so the request below must connect, and finds no socket
    _reload_nginx()
    os.rename(sock, moved)
    try:
        r = http.get("/api/auth/me")
    finally:
        os.rename(moved, sock)
    assert_json_error(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content,
                      503)
    assert r.headers.get("Retry-After", "").isdigit(), r.headers
    assert r.json() == {"detail": "Service temporarily unavailable"}
    assert http.get("/health/live").status_code == 200


def test_api_responses_no_store(http, solo):
    """Cache-Control: no-store, exactly once, on every API answer: login (success and failure),
    authenticated reads, writes, the API's errors and 405s, health."""
    s = new_http()
    responses = [
        s.post("/api/auth/login", json={"email": solo.email, "password": "password123"}),
        new_http().post("/api/auth/login", json={"email": solo.email, "password": "wrong"}),
        s.get("/api/auth/me"),
        s.get("/api/products"),
        s.post("/api/products", json={"name": "Cached?"}),
        s.post("/api/products", json={}),
        http.get("/api/auth/me"),
        http.get("/api/no/such/thing"),
        http.delete("/api/db/phases"),
        http.get("/api/db/phases"),
        http.get("/health"),
    ]
    for r in responses:
        assert r.headers.get("Cache-Control") == "no-store", (r.request.method, r.url,
                                                              r.status_code, r.headers)
    s.close()
    # static files keep their own caching
    assert http.get("/index.html").headers.get("Cache-Control") != "no-store"


def test_hsts_only_over_https(http):
    """Plain http (this stack) sends no Strict-Transport-Security; the site sends it when nginx
    itself serves https (map on $https)."""
    for path in ("/api/auth/me", "/health/live", "/"):
        assert "Strict-Transport-Security" not in http.get(path).headers, path
    site = open(os.path.join(RUN_DIR, "site.conf")).read()
    assert re.search(r"map \$https \$ideaforge_hsts \{\s*on \"max-age=\d+", site)
    assert "add_header Strict-Transport-Security $ideaforge_hsts always;" in site


def test_register_get_404_when_disabled(http):
    r = http.get("/api/auth/register")
    assert r.status_code == 404, r.text
    assert r.json() == {"detail": "Not Found"}
    assert "Allow" not in r.headers
    with api_config(register_enabled="true"):
        r = new_http().get("/api/auth/register")
        assert r.status_code == 405, r.text
        assert r.headers["Allow"] == "POST"
        assert r.json() == {"detail": "Method Not Allowed"}


# --------------------------------------------------------------------------------- idempotency

IDEMPOTENT = {
    ("POST", "/api/products"), ("POST", "/api/db/products"),
    ("POST", "/api/db/knowledge-articles"), ("POST", "/api/db/conversation-history"),
    ("POST", "/api/products/{id}/share"), ("POST", "/api/documents/upload"),
}


def test_create_routes_are_idempotent_in_the_table():
    out = subprocess.run([os.path.join(BUILD_DIR, "ideaforge-api"), "--list-routes"],
                         capture_output=True, text=True, check=True).stdout
    flagged = {(m, p) for m, p, f, _ in (line.split() for line in out.splitlines())
               if "idempotent" in f.split(",")}
    assert flagged == IDEMPOTENT


MULTIPART_BOUNDARY = "idem-boundary-0123456789"


def _upload_body(pid, text):
    b = MULTIPART_BOUNDARY
    return ("--%s\r\nContent-Disposition: form-data; name=\"product_id\"\r\n\r\n%s\r\n"
            "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"n.md\"\r\n"
            "Content-Type: text/markdown\r\n\r\n%s\r\n--%s--\r\n"
            % (b, pid, b, text, b)).encode()


def _idem_cases(w, pid):
    """(name, send(http, variant, key) -> response, rows() -> count)"""
    mp = {"Content-Type": "multipart/form-data; boundary=" + MULTIPART_BOUNDARY}
    sess = uid()
    tag = uuid.uuid4().hex[:8]

    def hdr(key, extra=None):
        h = {"Idempotency-Key": key}
        h.update(extra or {})
        return h

    return [
        ("products", lambda h, v, k: h.post("/api/products", json={"name": "I-%s-%s" % (tag, v)},
                                            headers=hdr(k)),
         lambda: psql_one("SELECT count(*) FROM products WHERE name LIKE $1", "I-%s-%%" % tag)),
        ("db products", lambda h, v, k: h.post("/api/db/products",
                                               json={"name": "D-%s-%s" % (tag, v)},
                                               headers=hdr(k)),
         lambda: psql_one("SELECT count(*) FROM products WHERE name LIKE $1", "D-%s-%%" % tag)),
        ("articles", lambda h, v, k: h.post("/api/db/knowledge-articles", json={
            "product_id": pid, "title": "A-%s-%s" % (tag, v), "content": "c"}, headers=hdr(k)),
         lambda: psql_one("SELECT count(*) FROM knowledge_articles WHERE title LIKE $1",
                          "A-%s-%%" % tag)),
        ("messages", lambda h, v, k: h.post("/api/db/conversation-history", json={
             "session_id": sess, "product_id": pid, "message_type": "user",
             "content": "M-%s-%s" % (tag, v)}, headers=hdr(k)),
         lambda: psql_one("SELECT count(*) FROM conversation_history WHERE content LIKE $1",
                          "M-%s-%%" % tag)),
        ("share", lambda h, v, k: h.post("/api/products/%s/share" % pid, json={
            "shared_with_user_id": w.user("target").id,
            "permission": "view" if v == 1 else "edit"}, headers=hdr(k)),
         lambda: psql_one("SELECT count(*) FROM product_shares WHERE product_id = $1 "
                          "AND shared_with_user_id = $2", pid, w.user("target").id)),
        ("upload", lambda h, v, k: h.post("/api/documents/upload",
                                          data=_upload_body(pid, "U-%s-%s" % (tag, v)),
                                          headers=hdr(k, mp)),
         lambda: psql_one("SELECT count(*) FROM knowledge_articles WHERE content LIKE $1",
                          "%%U-%s-%%" % tag)),
    ]


def test_idempotency_key_replays_first_result(world):
    pid = world.new_product(shares=False)
    o = world.owner.http
    for name, send, rows in _idem_cases(world, pid):
        key = "key-%s-%s" % (name.replace(" ", "-"), uuid.uuid4())
        n0 = int(rows())
        first = send(o, 1, key)
        assert first.status_code == 200, (name, first.text)
        assert int(rows()) == n0 + 1, name
        again = send(o, 1, key)
        assert (again.status_code, again.json()) == (200, first.json()), name
        assert again.headers.get("Idempotent-Replayed") == "true", name
        assert int(rows()) == n0 + 1, "%s: the retry wrote a second row" % name
        # the same key with another request: refused, nothing written
        other = send(o, 2, key)
        assert other.status_code == 422, (name, other.status_code, other.text)
        assert "Idempotency-Key" in detail(other), name
        assert int(rows()) == n0 + 1, name
    # the key is the user's: another user's identical key is another request
    key = "shared-" + uuid.uuid4().hex
    a = world.owner.http.post("/api/products", json={"name": "Mine"},
                              headers={"Idempotency-Key": key})
    b = world.user("editor").http.post("/api/products", json={"name": "Mine"},
                                       headers={"Idempotency-Key": key})
    assert a.status_code == b.status_code == 200 and a.json()["id"] != b.json()["id"]
    # without the header every request creates
    c1 = o.post("/api/products", json={"name": "No key"}).json()["id"]
    c2 = o.post("/api/products", json={"name": "No key"}).json()["id"]
    assert c1 != c2


def test_idempotency_key_concurrent_retries_make_one_row(world):
    o = world.owner.http
    key = "race-" + uuid.uuid4().hex
    name = "Race-" + uuid.uuid4().hex[:8]
    token = o.headers["Authorization"]

    def one(_):
        s = new_http()
        s.headers["Authorization"] = token
        r = s.post("/api/products", json={"name": name}, headers={"Idempotency-Key": key})
        s.close()
        return r.status_code, r.text

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(8)))
    assert {s for s, _ in results} == {200}, results
    assert len({t for _, t in results}) == 1, results
    assert psql_one("SELECT count(*) FROM products WHERE name = $1", name) == "1"


def test_idempotency_key_bounds_and_expiry(world):
    o = world.owner.http
    for bad in ("k" * 256, "caf\u00e9", "tab\there"):
        try:
            r = o.post("/api/products", json={"name": "Bad key"},
                       headers={"Idempotency-Key": bad.encode("utf-8")})
        except (requests.exceptions.InvalidHeader, ValueError):
            continue  # the client library refuses to send it at all
        assert r.status_code == 400, (bad, r.status_code, r.text)
        assert "Idempotency-Key" in detail(r)
    ok = "k" * 255
    r1 = o.post("/api/products", json={"name": "Long key"}, headers={"Idempotency-Key": ok})
    r2 = o.post("/api/products", json={"name": "Long key"}, headers={"Idempotency-Key": ok})
    assert r1.status_code == 200 and r2.json() == r1.json()
    # kept 24 hours: once older, the key is free again and the request runs afresh
    psql("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' "
         "WHERE user_id = $1 AND key = $2", world.owner.id, ok)
    r3 = o.post("/api/products", json={"name": "Long key"}, headers={"Idempotency-Key": ok})
    assert r3.status_code == 200 and r3.json()["id"] != r1.json()["id"]
    assert "Idempotent-Replayed" not in r3.headers
    # a failed first attempt records nothing: its retry runs again
    key = "fails-" + uuid.uuid4().hex
    r = o.post("/api/products", json={"name": " "}, headers={"Idempotency-Key": key})
    assert r.status_code == 422
    assert psql_one("SELECT count(*) FROM idempotency_keys WHERE key = $1", key) == "0"
