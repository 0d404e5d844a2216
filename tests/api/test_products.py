"""Products, portfolio and sharing (API.md 1.4): shapes, ordering, validation, share rules and
the cascade of a product delete."""

import pytest

from conftest import psql, psql_one
from product_helpers import (DESIGN, IDEATION, User, detail, uid,
                             world)  # noqa: F401 (fixture)

PRODUCT_KEYS = {"id", "name", "description", "status", "user_id", "owner_email", "owner_name",
                "created_at", "updated_at", "access_level"}


def test_create_shape_and_owner_from_session(world):
    o = world.owner
    r = o.http.post("/api/products", json={
        "name": "Created", "description": "d", "user_id": world.user("stranger").id})
    assert r.status_code == 200, r.text
    p = r.json()
    assert set(p) == {"id", "name", "description", "status", "user_id", "created_at",
                      "updated_at"}
    assert p["status"] == "ideation" and p["name"] == "Created" and p["description"] == "d"
    assert p["user_id"] == o.id  # never the body's user_id
    assert psql("SELECT user_id, tenant_id FROM products WHERE id = $1", p["id"]) == \
        [(o.id, o.tenant_id)]


@pytest.mark.parametrize("body,loc", [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": 5}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"name": "ok", "description": "y" * 10001}, "description"),
])
def test_create_validation(world, body, loc):
    r = world.owner.http.post("/api/products", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", loc]


def test_create_needs_json(world):
    r = world.owner.http.post("/api/products", data="name=x",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415


def test_list_shape_order_and_access_level(world):
    older = world.new_product("Older")
    newer = world.new_product("Newer")
    # make `older` the most recently updated: the list is by updated_at, newest first
    r = world.owner.http.put("/api/products/" + older, json={"description": "touched"})
    assert r.status_code == 200
    for role, level in (("owner", "owner"), ("viewer", "view"), ("editor", "edit"),
                        ("admin", "admin")):
        items = world.client(role).get("/api/products").json()["products"]
        assert all(set(i) == PRODUCT_KEYS for i in items)
        ids = [i["id"] for i in items]
        assert ids.index(older) < ids.index(newer), role
        mine = {i["id"]: i for i in items}
        assert mine[older]["access_level"] == level
        assert mine[older]["owner_email"] == world.owner.email
        stamps = [i["updated_at"] for i in items]
        assert stamps == sorted(stamps, reverse=True)


def test_list_limit(world):
    world.new_product(shares=False)
    world.new_product(shares=False)
    r = world.owner.http.get("/api/products", params={"limit": 1})
    assert r.status_code == 200 and len(r.json()["products"]) == 1
    assert world.owner.http.get("/api/products", params={"limit": 10 ** 9}).status_code == 200
    for bad in ("abc", "0", "-1", "1.5"):
        r = world.owner.http.get("/api/products", params={"limit": bad})
        assert r.status_code == 422, bad
        assert r.json()["detail"][0]["loc"] == ["query", "limit"]


def test_portfolio(world):
    pid = world.new_product("Portfolio item")
    body = world.client("stranger").get("/api/products/portfolio").json()
    assert body["tenant_id"] == world.tenant_a
    item = {p["id"]: p for p in body["portfolio"]}[pid]
    assert item["share_count"] == 3 and item["shared_with_me"] is False
    item = {p["id"]: p for p in
            world.client("viewer").get("/api/products/portfolio").json()["portfolio"]}[pid]
    assert item["shared_with_me"] is True
    assert set(item) == {"id", "name", "description", "status", "user_id", "owner_email",
                         "owner_name", "created_at", "updated_at", "share_count",
                         "shared_with_me"}
    out = world.client("outsider").get("/api/products/portfolio").json()
    assert out["tenant_id"] == world.tenant_b and pid not in [p["id"] for p in out["portfolio"]]


def test_get_shape(world):
    pid = world.new_product("Shape")
    r = world.client("viewer").get("/api/products/" + pid)
    assert r.status_code == 200
    p = r.json()
    assert set(p) == {"id", "name", "description", "status", "user_id", "tenant_id",
                      "owner_email", "owner_name", "created_at", "updated_at", "metadata"}
    assert p["tenant_id"] == world.tenant_a and p["metadata"] == {}


def test_bad_uuid_is_422(world):
    for method, path in (("GET", "/api/products/not-a-uuid"),
                         ("PUT", "/api/products/not-a-uuid"),
                         ("DELETE", "/api/products/123"),
                         ("GET", "/api/products/xyz/shares"),
                         ("DELETE", "/api/products/%s/shares/nope" % uid())):
        r = world.owner.http.request(method, path, json={"name": "x"})
        assert r.status_code == 422, (method, path, r.text)
        assert r.json()["detail"][0]["type"] == "uuid_parsing"
        assert r.json()["detail"][0]["loc"][0] == "path"


def test_missing_product_is_404(world):
    r = world.owner.http.get("/api/products/" + uid())
    assert r.status_code == 404
    assert detail(r) == "Product not found or access denied"


def test_update_rules(world):
    pid = world.new_product("Updatable")
    h = world.client("editor")
    before = psql_one("SELECT updated_at FROM products WHERE id = $1", pid)
    r = h.put("/api/products/" + pid, json={"status": "launch"})
    assert r.status_code == 400 and detail(r).startswith("Invalid status")
    r = h.put("/api/products/" + pid, json={})
    assert r.status_code == 400 and detail(r) == "No fields to update"
    r = h.put("/api/products/" + pid, json={"name": None, "status": None})
    assert r.status_code == 400 and detail(r) == "No fields to update"
    r = h.put("/api/products/" + pid, json={"name": "  "})
    assert r.status_code == 422
    r = h.put("/api/products/" + pid, json={"status": "build", "name": "New name"})
    assert r.status_code == 200, r.text
    p = r.json()
    assert set(p) == {"id", "name", "description", "status", "user_id", "updated_at"}
    assert (p["name"], p["status"], p["user_id"]) == ("New name", "build", world.owner.id)
    assert p["description"] == "A product under test"  # untouched
    assert psql_one("SELECT updated_at > $1::timestamptz FROM products WHERE id = $2",
                    before, pid) == "t"
    for status in ("ideation", "build", "operate", "learn", "govern", "sunset"):
        assert h.put("/api/products/" + pid, json={"status": status}).status_code == 200


def test_delete_cascades(world):
    pid = world.new_product("Doomed")
    o = world.owner.http
    assert o.post("/api/db/knowledge-articles", json={
        "product_id": pid, "title": "t", "content": "c"}).status_code == 200
    assert o.post("/api/db/phase-submissions", json={
        "product_id": pid, "phase_id": IDEATION, "form_data": {"a": 1}}).status_code == 200
    sess = uid()
    assert o.post("/api/db/conversation-history", json={
        "session_id": sess, "product_id": pid, "message_type": "user",
        "content": "hi"}).status_code == 200
    assert world.client("viewer").post(
        "/api/products/%s/generate-progress-report" % pid).status_code == 200
    sub = psql_one("SELECT id FROM phase_submissions WHERE product_id = $1", pid)
    psql("INSERT INTO design_mockups (product_id, phase_submission_id, user_id, tenant_id, "
         "provider, prompt) VALUES ($1, $2, $3, $4, 'v0', 'p')", pid, sub, world.owner.id,
         world.tenant_a)
    r = o.delete("/api/products/" + pid)
    assert r.status_code == 200 and r.json() == {"message": "Product deleted successfully"}
    for table in ("products WHERE id", "product_shares WHERE product_id",
                  "phase_submissions WHERE product_id", "knowledge_articles WHERE product_id",
                  "conversation_sessions WHERE product_id",
                  "conversation_history WHERE product_id", "review_reports WHERE product_id",
                  "design_mockups WHERE product_id"):
        assert psql_one("SELECT count(*) FROM %s = $1" % table, pid) == "0", table
    assert psql_one("SELECT count(*) FROM conversation_history WHERE session_id = $1",
                    sess) == "0"
    assert o.get("/api/products/" + pid).status_code == 404
    assert o.delete("/api/products/" + pid).status_code == 404


def test_share_rules(world):
    pid = world.new_product("Shared", shares=False)
    o = world.owner.http
    target = world.user("target")
    url = "/api/products/%s/share" % pid
    r = o.post(url, json={"shared_with_user_id": world.owner.id})
    assert r.status_code == 400 and "yourself" in detail(r)
    r = o.post(url, json={"shared_with_user_id": target.id, "permission": "owner"})
    assert r.status_code == 400 and detail(r).startswith("Invalid permission")
    r = o.post(url, json={"shared_with_user_id": "nope"})
    assert r.status_code == 422
    r = o.post(url, json={})
    assert r.status_code == 422
    r = o.post(url, json={"shared_with_user_id": uid()})
    assert r.status_code == 404 and detail(r) == "User not found"
    r = o.post(url, json={"shared_with_user_id": world.user("outsider").id})
    assert r.status_code == 404 and detail(r) == "User not found"  # other tenant: same answer
    inactive = User(world.tenant_a, "inactive", active=False)
    r = o.post(url, json={"shared_with_user_id": inactive.id})
    assert r.status_code == 400 and "inactive" in detail(r)
    assert psql_one("SELECT count(*) FROM product_shares WHERE product_id = $1", pid) == "0"

    r = o.post(url, json={"shared_with_user_id": target.id})
    assert r.status_code == 200, r.text
    first = r.json()
    assert set(first) == {"id", "permission", "created_at"} and first["permission"] == "view"
    r = o.post(url, json={"shared_with_user_id": target.id, "permission": "edit"})
    assert r.status_code == 200
    again = r.json()
    assert again["id"] == first["id"] and again["permission"] == "edit"
    assert psql("SELECT permission, shared_by_user_id FROM product_shares "
                "WHERE product_id = $1", pid) == [("edit", world.owner.id)]
    # the target can now edit
    assert target.http.put("/api/products/" + pid, json={"name": "By target"}).status_code == 200

    shares = o.get("/api/products/%s/shares" % pid).json()["shares"]
    assert len(shares) == 1
    s = shares[0]
    assert set(s) == {"id", "shared_with_user_id", "permission", "created_at", "user_email",
                      "user_name"}
    assert (s["shared_with_user_id"], s["user_email"]) == (target.id, target.email)

    r = o.delete("/api/products/%s/shares/%s" % (pid, uid()))
    assert r.status_code == 404 and detail(r) == "Share not found"
    r = o.delete("/api/products/%s/shares/%s" % (pid, s["id"]))
    assert r.status_code == 200 and r.json() == {"message": "Share removed successfully"}
    assert target.http.get("/api/products/" + pid).status_code == 404
    assert o.get("/api/products/%s/shares" % pid).json() == {"shares": []}


def test_share_of_another_product_cannot_be_removed_through_mine(world):
    mine = world.new_product("Mine", shares=False)
    other = world.new_product("Other")
    sid = world.share_id(other, "viewer")
    r = world.owner.http.delete("/api/products/%s/shares/%s" % (mine, sid))
    assert r.status_code == 404
    assert psql_one("SELECT count(*) FROM product_shares WHERE id = $1", sid) == "1"


def test_db_products(world):
    """GET/POST /api/db/products: authenticated and tenant-scoped (API.md 8.1 item 1)."""
    o = world.owner.http
    r = o.post("/api/db/products", json={"name": "Via db", "user_id": "anonymous-user",
                                         "metadata": {"k": "v"}})
    assert r.status_code == 200, r.text
    created = r.json()
    assert set(created) == {"id", "created_at", "updated_at"}
    assert psql("SELECT user_id, tenant_id, status, metadata::text FROM products "
                "WHERE id = $1", created["id"]) == [
        (world.owner.id, world.tenant_a, "ideation", '{"k": "v"}')]
    # an id of the caller's own product updates it; any other id creates a new product under
    # a server-chosen id, without touching the other row (issue 9 item 6)
    cid = o.post("/api/db/products", json={"name": "Chosen"}).json()["id"]
    r = o.post("/api/db/products", json={"id": cid, "name": "Chosen 2", "status": "build"})
    assert r.status_code == 200 and r.json()["id"] == cid
    assert psql("SELECT name, status FROM products WHERE id = $1", cid) == [("Chosen 2", "build")]
    r = world.client("outsider").post("/api/db/products", json={"id": cid, "name": "Stolen"})
    assert r.status_code == 200 and r.json()["id"] != cid
    assert psql_one("SELECT name FROM products WHERE id = $1", cid) == "Chosen 2"
    r = o.post("/api/db/products", json={"name": "Bad", "status": "nope"})
    assert r.status_code == 400 and detail(r).startswith("Invalid status")

    items = o.get("/api/db/products").json()["products"]
    assert set(items[0]) == {"id", "user_id", "name", "description", "status", "metadata",
                             "created_at", "updated_at"}
    assert cid in [p["id"] for p in items]
    only = o.get("/api/db/products", params={"user_id": world.owner.id}).json()["products"]
    assert only and all(p["user_id"] == world.owner.id for p in only)
    assert o.get("/api/db/products", params={"user_id": "x"}).status_code == 422
    assert cid not in [p["id"] for p in
                       world.client("outsider").get("/api/db/products").json()["products"]]
    assert world.anon.get("/api/db/products").status_code == 401
    assert world.anon.post("/api/db/products", json={"name": "x"}).status_code == 401
