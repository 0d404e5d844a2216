"""Helpers of the product-domain API tests (test_products*.py, test_matrix.py,
test_knowledge.py, test_export.py, test_keys.py).

Each test module builds its own little world in the database so that tests never depend on
each other or on the demo data: fresh tenants (unique slugs) and users that share the demo
password hash (so they can log in with password123), then logs them in through the real
/api/auth/login and talks to the API with their bearer tokens.

    w = World.build()                    # tenant A: owner, viewer, editor, admin, stranger,
                                         # target; tenant B: outsider
    pid = w.new_product()                # owned by w.owner, shared view/edit/admin
    w.client("viewer").get("/api/products/" + pid)
"""

import json
import uuid

import pytest

from conftest import DEMO_EMAIL, DEMO_PASSWORD, ctl, login, new_http, psql, psql_one

ROLES = ("anon", "outsider", "stranger", "viewer", "editor", "admin", "owner")

IDEATION = "00000000-0000-0000-0001-000000000001"
MARKET = "00000000-0000-0000-0001-000000000002"
REQUIREMENTS = "00000000-0000-0000-0001-000000000003"
DESIGN = "00000000-0000-0000-0001-000000000004"
DEVPLAN = "00000000-0000-0000-0001-000000000005"
GTM = "00000000-0000-0000-0001-000000000006"
PHASES = (IDEATION, MARKET, REQUIREMENTS, DESIGN, DEVPLAN, GTM)


def uid():
    return str(uuid.uuid4())


_demo_ready = False


def demo_hash():
    """The demo users' argon2id hash of password123 (the demo seed is loaded on first use)."""
    global _demo_ready
    if not _demo_ready:
        if psql_one("SELECT 1 FROM user_profiles WHERE email = $1", DEMO_EMAIL) is None:
            ctl("migrate")
            ctl("seed-demo")
        _demo_ready = True
    h = psql_one("SELECT password_hash FROM user_profiles WHERE email = $1", DEMO_EMAIL)
    assert h and h.startswith("$argon2id$"), "demo seed missing its password hash"
    return h


def make_tenant(tag="t"):
    """A new tenant with a unique slug; returns its id."""
    slug = "%s-%s" % (tag, uuid.uuid4().hex[:12])
    return psql_one("INSERT INTO tenants (name, slug) VALUES ($1, $2) RETURNING id",
                    "Test " + slug, slug)


def make_user(tenant_id, name, active=True):
    """A new user of tenant_id whose password is password123; returns (id, email)."""
    email = "%s-%s@example.test" % (name, uuid.uuid4().hex[:10])
    uid_ = psql_one(
        "INSERT INTO user_profiles (email, full_name, tenant_id, password_hash, is_active) "
        "VALUES ($1, $2, $3, $4, $5) RETURNING id",
        email, name.capitalize() + " Tester", tenant_id, demo_hash(), active)
    return uid_, email


def token_for(email, password=DEMO_PASSWORD):
    s = new_http()
    r = login(s, email, password)
    s.close()
    assert r.status_code == 200, "login %s: %s %s" % (email, r.status_code, r.text)
    return r.json()["token"]


def client(token=None):
    """An Http session; with token, every request carries Authorization: Bearer."""
    s = new_http()
    if token:
        s.headers["Authorization"] = "Bearer " + token
    return s


class User:
    def __init__(self, tenant_id, name, active=True):
        self.tenant_id = tenant_id
        self.name = name
        self.id, self.email = make_user(tenant_id, name, active)
        self.token = token_for(self.email) if active else None
        self.http = client(self.token)


class World:
    """Two tenants and the cast of the authorization matrix."""

    @classmethod
    def build(cls):
        w = cls()
        w.tenant_a = make_tenant("a")
        w.tenant_b = make_tenant("b")
        w.users = {}
        for role in ("owner", "viewer", "editor", "admin", "stranger", "target"):
            w.users[role] = User(w.tenant_a, role)
        w.users["outsider"] = User(w.tenant_b, "outsider")
        w.anon = client()
        return w

    @property
    def owner(self):
        return self.users["owner"]

    def user(self, role):
        return self.users[role]

    def client(self, role):
        if role == "anon":
            return self.anon
        return self.users[role].http

    def new_product(self, name=None, shares=True, description="A product under test"):
        """A product of the owner, shared view/edit/admin with viewer/editor/admin."""
        r = self.owner.http.post("/api/products", json={
            "name": name or "Product " + uuid.uuid4().hex[:8], "description": description})
        assert r.status_code == 200, r.text
        pid = r.json()["id"]
        if shares:
            for role, perm in (("viewer", "view"), ("editor", "edit"), ("admin", "admin")):
                s = self.owner.http.post("/api/products/%s/share" % pid, json={
                    "shared_with_user_id": self.users[role].id, "permission": perm})
                assert s.status_code == 200, s.text
        return pid

    def share_id(self, pid, role):
        return psql_one("SELECT id FROM product_shares WHERE product_id = $1 "
                        "AND shared_with_user_id = $2", pid, self.users[role].id)

    def close(self):
        self.anon.close()
        for u in self.users.values():
            u.http.close()


@pytest.fixture(scope="module")
def world(demo_seed):
    w = World.build()
    yield w
    w.close()


def detail(r):
    try:
        return r.json().get("detail")
    except ValueError:
        return None


def multipart(fields, files):
    """requests' files= argument from {name: value} and {name: (filename, bytes, ctype)}."""
    out = {k: (None, v) for k, v in fields.items()}
    out.update(files)
    return out


def jdump(v):
    return json.dumps(v, sort_keys=True)
