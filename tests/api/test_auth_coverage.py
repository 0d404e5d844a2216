"""Auth coverage by construction (issue section 5): the route table says which routes need a
session (ROUTE_AUTH); this test reads the table from the binary (`ideaforge-api --list-routes`)
and asserts that every protected route answers 401 without a token, with a garbage token, with
a revoked token and with an expired one - before it looks at the path parameters or the body -
so a route added later cannot forget authentication. Routes that are not protected are listed
explicitly: a new public route fails this test until it is added there on purpose.
"""

import os
import subprocess
import time
import uuid

import pytest

from auth_helpers import (bearer, claims_of, clear_rate_limits, forge, login_ok, new_user,
                          post)
from conftest import BUILD_DIR, new_http

# Routes that answer without a session, on purpose.
PUBLIC = {
    ("GET", "/"),
    ("GET", "/api/"),
    ("GET", "/health"),
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("GET", "/status"),
    ("GET", "/metrics"),
    ("GET", "/api/db/phases"),
    ("POST", "/api/auth/login"),
    ("POST", "/api/auth/logout"),
    ("POST", "/api/auth/register"),
    ("GET", "/api/auth/register"),   # 404 while registration is off, else 405 (issue 9 item 8)
    ("GET", "/api/agents"),
    ("GET", "/api/agents/capabilities"),
    ("GET", "/api/agents/by-phase"),
    # single sign-on's browser steps (issue 16): the session is what they create; 404 while
    # oidc_issuer is unset (tests/api/test_oidc.py)
    ("GET", "/api/auth/oidc/authorize"),
    ("GET", "/api/auth/oidc/callback"),
    ("GET", "/api/auth/mckinsey/authorize"),
    ("GET", "/api/auth/mckinsey/callback"),
    ("GET", "/auth/mckinsey/callback"),
}


def routes():
    out = subprocess.run([os.path.join(BUILD_DIR, "ideaforge-api"), "--list-routes"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    rows = []
    for line in out.splitlines():
        method, pattern, flags, rl = line.split()
        rows.append((method, pattern, set() if flags == "-" else set(flags.split(",")), rl))
    assert len(rows) > 10, out
    return rows


ROUTES = routes()
PROTECTED = [(m, p) for m, p, f, _ in ROUTES if "auth" in f]


def concrete(pattern):
    return "/".join(str(uuid.uuid4()) if seg.startswith("{") and seg.endswith("}") else seg
                    for seg in pattern.split("/"))


@pytest.fixture(scope="module")
def tokens(demo_seed):
    u = new_user()
    revoked = login_ok(u.email, u.password)
    assert post("/api/auth/logout", revoked).status_code == 200
    live = login_ok(u.email, u.password)
    c = claims_of(live)
    expired = forge(dict(c, exp=int(time.time()) - 60))
    return {"revoked": revoked, "expired": expired, "live": live}


@pytest.fixture(autouse=True)
def _clean():
    clear_rate_limits()
    yield
    clear_rate_limits()


def test_table_lists_every_route_once_with_known_flags():
    seen = set()
    for m, p, flags, rl in ROUTES:
        assert (m, p) not in seen, (m, p)
        seen.add((m, p))
        assert flags <= {"auth", "json", "raw", "strict", "stream", "optbody", "internal",
                         "idempotent", "product"}
        assert rl in ("default", "login", "ai", "none")
        if "internal" in flags:
            assert "auth" not in flags and rl == "none", (m, p)


def test_every_unprotected_route_is_public_on_purpose():
    unprotected = {(m, p) for m, p, f, _ in ROUTES if "auth" not in f}
    assert unprotected <= PUBLIC, "routes without ROUTE_AUTH: %s" % sorted(unprotected - PUBLIC)


def _send(s, method, path, headers):
    kw = {"headers": dict(headers)}
    if method in ("POST", "PUT", "PATCH"):
        kw["json"] = {}
    return s.request(method, path, **kw)


@pytest.mark.parametrize("method,pattern", PROTECTED, ids=["%s %s" % x for x in PROTECTED])
def test_protected_route_refuses_missing_bad_revoked_and_expired_tokens(tokens, method,
                                                                         pattern):
    s = new_http()
    path = concrete(pattern)
    cases = [
        ({}, "Not authenticated"),
        (bearer("not.a.token"), "Invalid or expired token"),
        (bearer(tokens["revoked"]), "Invalid or expired token"),
        (bearer(tokens["expired"]), "Token expired"),
    ]
    for headers, detail in cases:
        r = _send(s, method, path, headers)
        assert r.status_code == 401, (method, path, headers, r.status_code, r.text)
        assert r.json() == {"detail": detail}, (method, path, r.text)
    # the revoked token as a cookie too
    s.cookies.set("session_token", tokens["revoked"])
    r = _send(s, method, path, {})
    assert r.status_code == 401 and r.json() == {"detail": "Invalid or expired token"}


def test_live_token_passes_the_auth_check(tokens):
    """The same walk with a live token never gets a 401 from the middleware (handlers then
    answer 404/422/200... for the random ids and empty bodies)."""
    s = new_http()
    for method, pattern in PROTECTED:
        if pattern in ("/api/auth/logout-all", "/api/auth/refresh"):
            continue  # these would end the session the walk uses
        r = _send(s, method, concrete(pattern), bearer(tokens["live"]))
        assert r.status_code != 401 or r.json()["detail"] not in (
            "Not authenticated", "Invalid or expired token", "Token expired"), (method, pattern)
