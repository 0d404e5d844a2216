"""The product read path of issue 17: ETag / If-None-Match on product reads, the per-worker list
cache validated by the tenant version in Redis (read-your-writes on every worker, Redis down),
and persistent nginx-to-API FastCGI connections that never hold a thread while idle.

Behaviour only, never timings."""

import os
import socket
import struct

from conftest import RUN_DIR, new_http, psql, redis_cmd, redis_down
from product_helpers import world  # noqa: F401 (fixture)

# enough reads that every worker and thread of the test stack has answered (and cached) one
SPREAD = 24


def _etag(r):
    e = r.headers.get("ETag")
    assert e and e.startswith('W/"') and e.endswith('"'), r.headers
    return e


def _names(r):
    assert r.status_code == 200, r.text
    return {p["id"]: p["name"] for p in r.json()["products"]}


def test_list_etag_and_304(world):
    o = world.owner.http
    world.new_product("ETag list")
    r1 = o.get("/api/products")
    e1 = _etag(r1)
    r2 = o.get("/api/products", headers={"If-None-Match": e1})
    assert r2.status_code == 304 and r2.content == b""
    assert r2.headers.get("ETag") == e1
    # a list of tags and the strong form of the same tag match too (weak comparison)
    r3 = o.get("/api/products", headers={"If-None-Match": 'W/"0000", ' + e1[2:]})
    assert r3.status_code == 304
    # another tag: the whole answer
    r4 = o.get("/api/products", headers={"If-None-Match": 'W/"0123456789abcdef"'})
    assert r4.status_code == 200 and _etag(r4) == e1 and r4.json() == r1.json()


def test_list_new_etag_after_write(world):
    o = world.owner.http
    pid = world.new_product("Before write")
    e1 = _etag(o.get("/api/products"))
    assert o.put("/api/products/" + pid, json={"name": "After write"}).status_code == 200
    r = o.get("/api/products", headers={"If-None-Match": e1})
    assert r.status_code == 200
    assert _etag(r) != e1
    assert _names(r)[pid] == "After write"


def test_get_etag_304_and_change(world):
    o = world.owner.http
    pid = world.new_product("Get etag")
    r1 = o.get("/api/products/" + pid)
    assert r1.status_code == 200
    e1 = _etag(r1)
    r2 = o.get("/api/products/" + pid, headers={"If-None-Match": e1})
    assert r2.status_code == 304 and r2.content == b"" and r2.headers.get("ETag") == e1
    assert o.put("/api/products/" + pid, json={"description": "changed"}).status_code == 200
    r3 = o.get("/api/products/" + pid, headers={"If-None-Match": e1})
    assert r3.status_code == 200 and _etag(r3) != e1
    assert r3.json()["description"] == "changed"
    # a viewer of the product has its own answer, a stranger none (the cache is per user)
    assert world.client("viewer").get("/api/products/" + pid).json()["description"] == \
        "changed"
    assert world.client("stranger").get("/api/products/" + pid).status_code == 404


def test_read_your_writes_on_every_worker(world):
    """Every worker caches the lists first; after each write, every following read (spread over
    fresh connections, so over the workers) sees it, for the writer and for a share's user."""
    pid = world.new_product("RYW 0")
    viewer = world.client("viewer")
    for i in range(1, 4):
        for _ in range(SPREAD):
            with new_http() as s:
                s.headers["Authorization"] = "Bearer " + world.owner.token
                assert s.get("/api/products").status_code == 200
            assert viewer.get("/api/products").status_code == 200
        name = "RYW %d" % i
        assert world.owner.http.put("/api/products/" + pid,
                                    json={"name": name}).status_code == 200
        for _ in range(SPREAD):
            with new_http() as s:
                s.headers["Authorization"] = "Bearer " + world.owner.token
                assert _names(s.get("/api/products"))[pid] == name
            assert _names(viewer.get("/api/products"))[pid] == name


def test_share_and_unshare_seen_at_once(world):
    pid = world.new_product("Share seen", shares=False)
    target = world.client("target")
    for _ in range(SPREAD):
        assert pid not in _names(target.get("/api/products"))
    r = world.owner.http.post("/api/products/%s/share" % pid, json={
        "shared_with_user_id": world.user("target").id, "permission": "view"})
    assert r.status_code == 200, r.text
    for _ in range(SPREAD):
        assert pid in _names(target.get("/api/products"))
        assert target.get("/api/products/" + pid).status_code == 200
    sid = psql("SELECT id FROM product_shares WHERE product_id = $1 AND "
               "shared_with_user_id = $2", pid, world.user("target").id)[0][0]
    assert world.owner.http.delete("/api/products/%s/shares/%s" % (pid, sid)).status_code in \
        (200, 204)
    for _ in range(SPREAD):
        assert pid not in _names(target.get("/api/products"))
        assert target.get("/api/products/" + pid).status_code == 404


def test_tenant_version_counter(world):
    """The version lives in Redis under pv:<tenant>; every write of the tenant moves it."""
    o = world.owner.http
    o.get("/api/products")
    v1 = int(redis_cmd("GET", "pv:" + world.tenant_a))
    world.new_product("Version bump", shares=False)
    v2 = int(redis_cmd("GET", "pv:" + world.tenant_a))
    assert v2 > v1
    # a lost counter (Redis restarted empty) starts again from the clock, never from 1: an
    # answer cached under an old small value can never be taken for current
    redis_cmd("DEL", "pv:" + world.tenant_a)
    o.get("/api/products")
    o.get("/api/products")
    assert int(redis_cmd("GET", "pv:" + world.tenant_a)) > 10 ** 15


def test_chat_submission_and_article_writes_keep_the_version(world):
    """Writes that change no product answer (chat messages, phase submissions, knowledge
    articles) leave the tenant version alone, so the tenant's cached product reads stay valid
    (304 on the same tag); a product write still moves it."""
    import uuid
    o = world.owner.http
    pid = world.new_product("Keep version")
    e1 = _etag(o.get("/api/products"))
    v1 = int(redis_cmd("GET", "pv:" + world.tenant_a))
    r = o.post("/api/db/conversation-history", json={
        "session_id": str(uuid.uuid4()), "product_id": pid, "message_type": "user",
        "content": "does this move the version?"})
    assert r.status_code in (200, 201), r.text
    r = o.post("/api/db/phase-submissions", json={
        "product_id": pid, "phase_id": "00000000-0000-0000-0001-000000000002",
        "form_data": {"market_size": "12 teams"}, "status": "draft"})
    assert r.status_code in (200, 201), r.text
    r = o.post("/api/db/knowledge-articles", json={
        "product_id": pid, "title": "Pricing notes", "content": "Per seat."})
    assert r.status_code in (200, 201), r.text
    assert o.delete("/api/db/knowledge-articles/" + r.json()["id"]).status_code in (200, 204)
    assert int(redis_cmd("GET", "pv:" + world.tenant_a)) == v1
    assert o.get("/api/products", headers={"If-None-Match": e1}).status_code == 304
    assert o.put("/api/products/" + pid, json={"status": "build"}).status_code == 200
    assert int(redis_cmd("GET", "pv:" + world.tenant_a)) > v1
    r = o.get("/api/products", headers={"If-None-Match": e1})
    assert r.status_code == 200 and _names(r)[pid] == "Keep version"
    assert [p["status"] for p in r.json()["products"] if p["id"] == pid] == ["build"]


def test_correct_with_redis_down(world):
    o = world.owner.http
    pid = world.new_product("Redis down 0")
    for _ in range(SPREAD):
        assert o.get("/api/products").status_code == 200
    with redis_down():
        # the cache is neither read nor filled: PostgreSQL answers, and writes show at once
        for i in range(1, 3):
            name = "Redis down %d" % i
            assert o.put("/api/products/" + pid, json={"name": name}).status_code == 200
            for _ in range(SPREAD // 2):
                r = o.get("/api/products")
                assert _names(r)[pid] == name
                e = _etag(r)
                assert o.get("/api/products", headers={"If-None-Match": e}).status_code == 304
                assert o.get("/api/products/" + pid).json()["name"] == name
    # back up: a write made while Redis was down is not hidden by an older cached answer
    for _ in range(SPREAD):
        assert _names(o.get("/api/products"))[pid] == "Redis down 2"
    assert o.put("/api/products/" + pid, json={"name": "Redis up"}).status_code == 200
    for _ in range(SPREAD):
        assert _names(o.get("/api/products"))[pid] == "Redis up"


# --- persistent FastCGI connections ---------------------------------------------------------

def _record(rtype, content, rid=1):
    pad = (8 - len(content) % 8) % 8
    return struct.pack("!BBHHBx", 1, rtype, rid, len(content), pad) + content + b"\0" * pad


def _nv(name, value):
    def ln(n):
        return struct.pack("!B", n) if n < 128 else struct.pack("!I", n | 0x80000000)
    return ln(len(name)) + ln(len(value)) + name + value


def _fcgi_request(sock, path, keep=True):
    """One FastCGI request on sock (FCGI_KEEP_CONN when keep); returns its stdout bytes."""
    params = b"".join(_nv(k.encode(), v.encode()) for k, v in (
        ("REQUEST_METHOD", "GET"), ("REQUEST_URI", path), ("SCRIPT_NAME", ""),
        ("PATH_INFO", path), ("QUERY_STRING", ""), ("REMOTE_ADDR", "127.0.0.1"),
        ("SERVER_PROTOCOL", "HTTP/1.1")))
    begin = struct.pack("!HB5x", 1, 1 if keep else 0)
    sock.sendall(_record(1, begin) + _record(4, params) + _record(4, b"") + _record(5, b""))
    out = b""
    while True:
        head = b""
        while len(head) < 8:
            chunk = sock.recv(8 - len(head))
            assert chunk, "connection closed before FCGI_END_REQUEST"
            head += chunk
        _, rtype, _, clen, pad = struct.unpack("!BBHHBx", head)
        body = b""
        while len(body) < clen + pad:
            chunk = sock.recv(clen + pad - len(body))
            assert chunk
            body += chunk
        if rtype == 6:
            out += body[:clen]
        elif rtype == 3:
            return out


def _api_socket():
    return os.path.join(RUN_DIR, "api.sock")


def _threads():
    conf = open(os.path.join(RUN_DIR, "ideaforge.conf")).read()
    workers = threads = None
    for line in conf.splitlines():
        k, _, v = line.partition("=")
        if k.strip() == "workers":
            workers = int(v.strip())
        if k.strip() == "threads":
            threads = int(v.strip())
    return (workers or 2) * (threads or 8)


def test_idle_kept_connections_hold_no_thread():
    """More idle kept connections than the API has request threads: a new connection is still
    served, and every idle kept connection still answers its next request."""
    n = _threads() + 8
    conns = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(20)
            s.connect(_api_socket())
            assert b"Status: 200" in _fcgi_request(s, "/health/live")
            conns.append(s)
        # every thread could now be waiting on one of those: they must not be
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as fresh:
            fresh.settimeout(20)
            fresh.connect(_api_socket())
            assert b"Status: 200" in _fcgi_request(fresh, "/health/live", keep=False)
        with new_http() as h:
            assert h.get("/health/live", timeout=20).status_code == 200
        for s in conns:
            assert b"Status: 200" in _fcgi_request(s, "/health/live")
        # a request without FCGI_KEEP_CONN ends its connection
        last = conns.pop()
        _fcgi_request(last, "/health/live", keep=False)
        assert last.recv(1) == b""
        last.close()
    finally:
        for s in conns:
            s.close()


def test_kept_connection_after_unread_body(world):
    """A body the handler never read (a 401 before the body) does not spoil the next request
    of the same kept connection."""
    with new_http() as h:
        for _ in range(SPREAD):
            r = h.post("/api/products", json={"name": "x" * 1000})
            assert r.status_code == 401
            assert h.get("/health/live").status_code == 200
    o = world.owner.http
    for _ in range(SPREAD):
        assert o.post("/api/products", data="not json" * 100,
                      headers={"Content-Type": "text/plain"}).status_code == 415
        assert o.get("/api/products").status_code == 200


def _eventually(fn, seconds=10):
    """fn() until it is true (the announcement of a change made in SQL arrives after its
    commit); a bounded wait for a behaviour, not a timing."""
    import time
    deadline = time.monotonic() + seconds
    while not fn():
        assert time.monotonic() < deadline, "not seen in %d s" % seconds
        time.sleep(0.05)


def test_change_made_in_sql_is_seen(world):
    """A write that bypasses the API (ideaforgectl, an operator's SQL) raises no tenant version;
    the triggers of sql/0007_read_path.sql announce it and every worker drops its answers."""
    o = world.owner.http
    viewer = world.client("viewer")
    pid = world.new_product("SQL 0")
    for _ in range(SPREAD):
        assert _names(o.get("/api/products"))[pid] == "SQL 0"
        assert _names(viewer.get("/api/products"))[pid] == "SQL 0"
    psql("UPDATE products SET name = 'SQL 1' WHERE id = $1", pid)
    _eventually(lambda: _names(o.get("/api/products"))[pid] == "SQL 1")
    for _ in range(SPREAD):
        assert _names(o.get("/api/products"))[pid] == "SQL 1"
        assert _names(viewer.get("/api/products"))[pid] == "SQL 1"
        assert o.get("/api/products/" + pid).json()["name"] == "SQL 1"
    # the owner's name is in every answer: renaming the user shows too
    psql("UPDATE user_profiles SET full_name = 'Renamed Owner' WHERE id = $1", world.owner.id)
    _eventually(lambda: all(p["owner_name"] == "Renamed Owner"
                            for p in viewer.get("/api/products").json()["products"]
                            if p["id"] == pid))
    for _ in range(SPREAD):
        mine = [p for p in viewer.get("/api/products").json()["products"] if p["id"] == pid]
        assert mine[0]["owner_name"] == "Renamed Owner"
