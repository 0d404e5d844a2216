"""Rate limiting through nginx (issue section 4, API.md 4.1): failed-login budgets per email and
address and per address, the per-user (or per-address) default class, the AI class, the 429
response, the Redis-down fallback and the client address.

Every test client comes from 127.0.0.1, so tests that need tight limits reload the API with
them (auth_helpers.api_config) and every test starts and ends with the buckets cleared.
"""

import concurrent.futures
import os
import subprocess
import time
import uuid

import pytest

from auth_helpers import (api_config, bearer, burst, clear_rate_limits, login, login_ok, me,
                          new_user)
from conftest import BUILD_DIR, DEMO_EMAIL, DEMO_PASSWORD, metric, new_http, redis_cmd, wait_for

MSG = "Too many requests. Please wait a moment and try again."


@pytest.fixture(autouse=True)
def _clean(demo_seed):
    clear_rate_limits()
    yield
    clear_rate_limits()


def assert_429(r, limit=None):
    assert r.status_code == 429, r.text
    b = r.json()
    ra = int(r.headers["Retry-After"])
    assert ra >= 1
    assert b == {"detail": MSG, "error": {"code": "RATE_LIMIT_EXCEEDED", "message": MSG,
                                          "details": {"retry_after": ra}}}
    assert r.headers["RateLimit-Remaining"] == "0"
    assert int(r.headers["RateLimit-Reset"]) >= 1
    if limit is not None:
        assert r.headers["RateLimit-Limit"] == str(limit)
    return ra


# ---------------------------------------------------------------------------------------------
# failed logins


def test_five_failures_per_email_and_address_then_429_before_the_password_check():
    u = new_user()
    for i in range(5):
        r = login(u.email, "wrong-%d" % i)
        assert r.status_code == 401, (i, r.text)
    # over the budget: refused before the password is looked at, even the right one.
    # Counted, not timed (issue 14: was "the refused login is faster than a password check"):
    # the refusal is a rate-limit rejection, and neither a login nor a failed password check
    logins0 = metric("ideaforge_logins_total")
    failures0 = metric("ideaforge_login_failures_total")
    rejections0 = metric("ideaforge_rate_limit_rejections_total")
    r = login(u.email, u.password)
    ra = assert_429(r, limit=5)
    assert 170 <= ra <= 180  # one more attempt every 900 s / 5
    wait_for(lambda: metric("ideaforge_rate_limit_rejections_total") > rejections0,
             timeout=10, message="the refusal counted as a rate-limit rejection")
    assert metric("ideaforge_logins_total") == logins0
    assert metric("ideaforge_login_failures_total") == failures0
    assert login(DEMO_EMAIL, DEMO_PASSWORD).status_code == 200
    # another account from the same address is not affected
    other = new_user()
    assert login(other.email, other.password).status_code == 200
    # the email matches case-insensitively
    assert_429(login(u.email.upper(), u.password))


def test_successful_logins_do_not_spend_the_failure_budget():
    u = new_user()
    for i in range(4):
        assert login(u.email, "wrong-%d" % i).status_code == 401
    for _ in range(10):
        assert login(u.email, u.password).status_code == 200
    assert login(u.email, "wrong-again").status_code == 401  # the 5th failure
    assert_429(login(u.email, u.password))


def test_per_address_failure_budget():
    with api_config(rl_login_fail_ip_max=3):
        for _ in range(3):
            r = login("ghost-%s@example.test" % uuid.uuid4().hex, "x")
            assert r.status_code == 401
        u = new_user()
        assert_429(login(u.email, u.password), limit=3)


def test_forwarded_for_is_ignored_unless_trusted():
    u = new_user()
    for i in range(5):
        r = login(u.email, "wrong", headers={"X-Forwarded-For": "10.0.0.%d" % i})
        assert r.status_code == 401
    # the budget is REMOTE_ADDR's (127.0.0.1), whatever the header claims
    assert_429(login(u.email, u.password, headers={"X-Forwarded-For": "10.9.9.9"}))


def test_forwarded_for_counts_when_trust_proxy_is_on():
    u = new_user()
    with api_config(trust_proxy="true"):
        for i in range(5):
            r = login(u.email, "wrong", headers={"X-Forwarded-For": "203.0.113.7"})
            assert r.status_code == 401
        assert_429(login(u.email, u.password, headers={"X-Forwarded-For": "203.0.113.7"}))
        # another client address behind the proxy has its own budget; the last entry is the
        # one the proxy appended
        r = login(u.email, u.password, headers={"X-Forwarded-For": "203.0.113.7, 198.51.100.2"})
        assert r.status_code == 200, r.text
        assert redis_cmd("EXISTS", "rl:lf:203.0.113.7:" + u.email) == "1"


def test_200_concurrent_logins_of_one_account_from_one_address_succeed():
    """The seed's load test with the default configuration: successes are not throttled."""
    s_list = [new_http() for _ in range(200)]

    def one(i):
        r = s_list[i].post("/api/auth/login",
                           json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD}, timeout=120)
        return r.status_code

    # each within its client bound (120 s); how long the storm takes is bench/auth/logins.py's
    # figure (issue 14: was "all within 90 s")
    with concurrent.futures.ThreadPoolExecutor(max_workers=200) as pool:
        codes = list(pool.map(one, range(200)))
    assert codes.count(200) == 200, {c: codes.count(c) for c in set(codes)}


# ---------------------------------------------------------------------------------------------
# default and AI classes


def _until_429(send, most=100):
    """Sends until the first 429: (number of 200s before it, the 429 response, seconds)."""
    t0 = time.monotonic()
    n_ok = 0
    for _ in range(most):
        r = send()
        if r.status_code != 200:
            break
        n_ok += 1
    assert r.status_code == 429, r.text
    return n_ok, r, time.monotonic() - t0


def test_default_class_is_per_user():
    a, b = new_user(), new_user()
    ta, tb = login_ok(a.email, a.password), login_ok(b.email, b.password)
    with api_config(rl_default_per_min=20):
        s = new_http()
        n_ok, last, elapsed = _until_429(lambda: me(ta, s))
        # the burst of 20, plus one per 3 s that went by while sending them
        assert 20 <= n_ok <= 20 + int(elapsed / 3) + 1, (n_ok, elapsed)
        ra = assert_429(last, limit=20)
        assert ra <= 3  # one request every 3 s
        # another user is not limited by a's traffic
        assert me(tb).status_code == 200
        # a's second session shares a's budget
        assert_429(me(login_ok(a.email, a.password)))


def test_default_class_for_anonymous_requests_is_per_address():
    with api_config(rl_default_per_min=10):
        s = new_http()
        n_ok, last, elapsed = _until_429(lambda: s.get("/api/"))
        assert 10 <= n_ok <= 10 + int(elapsed / 6) + 1, (n_ok, elapsed)
        assert_429(last, limit=10)
        # a request without a token to a protected route spends the same address budget
        assert_429(s.get("/api/auth/me"), limit=10)


def test_internal_routes_are_never_limited():
    with api_config(rl_default_per_min=5):
        s = new_http()
        for path in ("/health", "/health/live", "/"):
            codes = [s.get(path).status_code for _ in range(15)]
            assert 429 not in codes, (path, codes)


def _routes_of_class(cls):
    out = subprocess.run([os.path.join(BUILD_DIR, "ideaforge-api"), "--list-routes"],
                         capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in out.splitlines()]
    return [(m, p) for m, p, flags, c in rows if c == cls and "auth" in flags.split(",")]


def test_ai_class_is_per_user_per_minute():
    routes = _routes_of_class("ai")
    if not routes:
        pytest.skip("no route of the AI class in this build")
    method, pattern = routes[0]
    path = "/".join(str(uuid.uuid4()) if seg.startswith("{") else seg
                    for seg in pattern.split("/"))
    a, b = new_user(), new_user()
    ta, tb = login_ok(a.email, a.password), login_ok(b.email, b.password)
    with api_config(rl_ai_per_min=3):
        s = new_http()
        for _ in range(3):
            r = s.request(method, path, headers=bearer(ta), json={})
            assert r.status_code != 429, r.text
        # the 4th within 20 s (one per 20 s drains)
        assert_429(s.request(method, path, headers=bearer(ta), json={}), limit=3)
        r = s.request(method, path, headers=bearer(tb), json={})
        assert r.status_code != 429
        # the AI budget is separate from the default one
        assert me(ta).status_code == 200


# ---------------------------------------------------------------------------------------------
# Redis unavailable: per-worker counters, never unlimited, never 5xx


@pytest.mark.parametrize("mode", ["stopped", "hung"])
def test_redis_down_falls_back_to_per_worker_limits(redis, mode):
    u = new_user()
    tok = login_ok(u.email, u.password)
    with api_config(rl_default_per_min=10):
        outage = redis.down if mode == "stopped" else redis.hung
        with outage():
            codes = []
            t0 = time.monotonic()
            for _ in range(8):
                codes += [st for st, _, _ in _burst_me(tok, 12)]
            elapsed = time.monotonic() - t0
            assert all(c in (200, 429) for c in codes), codes
            allowed = codes.count(200)
            # at most the limit per worker (2 workers; one more each per 6 s), never unlimited
            assert 10 <= allowed <= 2 * (10 + int(elapsed / 6) + 1), (allowed, len(codes))
            assert 429 in codes
            # failed logins too: per-worker budgets, then 429
            fails = [login(u.email, "wrong").status_code for _ in range(12)]
            assert set(fails) <= {401, 429} and 429 in fails, fails


def _burst_me(tok, n):
    return burst("/api/auth/me", bearer(tok), n=n)
