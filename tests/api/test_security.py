"""Security checks as tests (issue 14 item 5).

* Secrets never appear in logs or responses: the test sets known secret values (a user's
  password and its replacement, provider API keys saved and verified, an integration secret;
  the stack's own JWT signing secret and encryption key are read from run/test), drives every
  route of the table (from `ideaforge-api --list-routes`) with and without a session and with
  bodies that carry the secrets in every field, plus the error paths, then scans every response
  (status line, headers, body) and every log file of the stack (API, nginx, Redis, PostgreSQL)
  for each secret, raw and in the common encodings (base64, hex, URL-encoding). The one route
  whose answer is a secret by design, GET /api/api-keys/decrypt/{provider}, which returns the
  caller's own key to the caller, is only checked to answer nobody else.
* Every response carries the security headers, errors of the API and of nginx included.
* Login throttling per account and per client address, with the figures of the README
  (rl_login_fail_max = 5 per email and address, rl_login_fail_ip_max = 50 per address, both in
  a window of rl_login_fail_window_s = 900 s): the 6th failure of one account and the 51st of
  one address are refused with 429 and Retry-After, before the password is checked.
"""

import base64
import glob
import os
import subprocess
import urllib.parse
import uuid

import requests

from auth_helpers import clear_login_limits, new_user
from conftest import BASE_URL, BUILD_DIR, PGHOST, RUN_DIR, metric

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
}


def _routes():
    out = subprocess.run([os.path.join(BUILD_DIR, "ideaforge-api"), "--list-routes"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return [tuple(line.split()[:3]) for line in out.splitlines()]


def _read(path):
    with open(path) as f:
        return f.read().strip()


def _variants(secret):
    b = secret.encode()
    return {secret, base64.b64encode(b).decode().rstrip("="),
            base64.urlsafe_b64encode(b).decode().rstrip("="), b.hex(),
            urllib.parse.quote(secret, safe="")}


def _check_headers(r, what):
    h = {k.lower(): v for k, v in r.headers.items()}
    for k, v in SECURITY_HEADERS.items():
        assert h.get(k) == v, "%s: %s missing or wrong (%r)" % (what, k, h.get(k))
    assert "content-security-policy" in h, what
    assert "server" not in h or "/" not in h["server"], "%s: server version shown" % what


def test_secrets_never_appear_in_logs_or_responses():
    password = "Pw-" + uuid.uuid4().hex
    new_password = "Pw2-" + uuid.uuid4().hex
    openai_key = "sk-secret-" + uuid.uuid4().hex
    claude_key = "sk-ant-secret-" + uuid.uuid4().hex
    client_secret = "cs-secret-" + uuid.uuid4().hex
    u = new_user(password=password)
    secrets = {"password": password, "new password": new_password, "openai key": openai_key,
               "anthropic key": claude_key, "client secret": client_secret,
               "jwt secret": _read(os.path.join(RUN_DIR, "jwt.secret")),
               "encryption key": _read(os.path.join(RUN_DIR, "secrets.key"))}
    logs_before = {p: os.path.getsize(p) for p in _log_files()}
    responses = []

    def keep(r, what):
        responses.append((what, r))
        _check_headers(r, what)
        return r

    s = requests.Session()
    r = keep(s.post(BASE_URL + "/api/auth/login",
                    json={"email": u.email, "password": password}, timeout=60), "login")
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    auth = {"Authorization": "Bearer " + token}
    keep(s.post(BASE_URL + "/api/auth/login", json={"email": u.email, "password": password + "x"},
                timeout=60), "wrong login")
    clear_login_limits()
    keep(s.post(BASE_URL + "/api/api-keys", json={"provider": "openai", "api_key": openai_key},
                headers=auth, timeout=30), "save key")
    keep(s.post(BASE_URL + "/api/api-keys", json={"provider": "anthropic", "api_key": claude_key},
                headers=auth, timeout=30), "save key 2")
    keep(s.post(BASE_URL + "/api/integrations/configure",
                json={"provider": "v0", "config": {"api_key": openai_key,
                                                   "client_secret": client_secret}},
                headers=auth, timeout=30), "integration")
    keep(s.post(BASE_URL + "/api/providers/verify",
                json={"provider": "openai", "api_key": openai_key,
                      "base_url": "http://127.0.0.1:1/v1", "client_secret": client_secret},
                headers=auth, timeout=60), "verify")
    keep(s.post(BASE_URL + "/api/providers/configure",
                json={"openaiKey": openai_key, "claudeKey": claude_key},
                headers=auth, timeout=30), "configure")
    # every route, with a session and without, with the secrets in the body's fields
    body = {"email": u.email, "password": password, "current_password": password,
            "new_password": "short", "api_key": openai_key, "openaiKey": openai_key,
            "claudeKey": 12, "client_secret": client_secret, "provider": "openai",
            "config": {"secret": client_secret}, "name": "x", "content": "x", "query": "x",
            "product_id": "not-a-uuid"}
    for method, pattern, flags in _routes():
        # streams hold the connection; the decrypt route's answer is the caller's own key;
        # the session must survive the loop (logouts are driven with the bad token only)
        if "stream" in flags or pattern.startswith("/api/api-keys/decrypt"):
            continue
        ends_session = pattern in ("/api/auth/logout", "/api/auth/logout-all",
                                   "/api/auth/refresh", "/api/auth/password")
        path = pattern.replace("{provider}", "openai")
        for p in ("{id}", "{share_id}", "{product_id}", "{phase_id}"):
            path = path.replace(p, str(uuid.uuid4()))
        for hdrs in (auth, {}, {"Authorization": "Bearer " + password}):
            if ends_session and hdrs is auth:
                continue
            kw = {"headers": hdrs, "timeout": 60}
            if method in ("POST", "PUT", "PATCH"):
                kw["json"] = body
            keep(s.request(method, BASE_URL + path, **kw), "%s %s" % (method, pattern))
    # the errors: malformed JSON carrying a secret, unknown route, method, cookie
    keep(s.post(BASE_URL + "/api/auth/login", data='{"password": "%s", ' % password,
                headers={**auth, "Content-Type": "application/json"}, timeout=30), "malformed")
    keep(s.get(BASE_URL + "/api/nowhere", headers=auth, timeout=30), "404")
    keep(s.delete(BASE_URL + "/api/auth/me", headers=auth, timeout=30), "405")
    keep(s.get(BASE_URL + "/api/auth/me", cookies={"session_token": password}, timeout=30),
         "cookie")
    # the password change: the new password is a secret too
    r = keep(s.put(BASE_URL + "/api/auth/password", headers=auth, timeout=60,
                   json={"current_password": password, "new_password": new_password}),
             "password change")
    assert r.status_code == 200, r.text
    # the decrypt route answers the owner only
    other = new_user()
    r2 = s.post(BASE_URL + "/api/auth/login",
                json={"email": other.email, "password": other.password}, timeout=60)
    r = keep(s.get(BASE_URL + "/api/api-keys/decrypt/openai",
                   headers={"Authorization": "Bearer " + r2.json()["token"]}, timeout=30),
             "decrypt as another user")
    assert r.status_code == 404 or openai_key not in r.text

    # scan every response
    for what, r in responses:
        text = "%d %s\n%s\n%s" % (r.status_code, r.reason, "\n".join(
            "%s: %s" % kv for kv in r.headers.items()), r.content.decode(errors="replace"))
        for name, secret in secrets.items():
            for v in _variants(secret):
                assert v not in text, "the %s appears in the answer to %s" % (name, what)
    # and every log the run wrote to (each written per line)
    for path in _log_files():
        with open(path, "rb") as f:
            f.seek(logs_before.get(path, 0))
            text = f.read().decode(errors="replace")
        for name, secret in secrets.items():
            for v in _variants(secret):
                assert v not in text, "the %s appears in %s" % (name, path)


def _log_files():
    """Our processes' logs (API, agentd, nginx, PostgreSQL, Redis). Not the fake provider's
    (tests/fakes: it stands for the provider, which receives the key by design)."""
    files = glob.glob(os.path.join(RUN_DIR, "*.log")) + [os.path.join(PGHOST, "postgres.log")]
    return [p for p in files if os.path.isfile(p)
            and not os.path.basename(p).startswith("fake_")]


def test_every_response_carries_the_security_headers():
    s = requests.Session()
    checks = [("GET", "/health/live", {}), ("GET", "/api/", {}), ("GET", "/api/auth/me", {}),
              ("GET", "/api/nowhere", {}), ("DELETE", "/api/auth/me", {}),
              ("POST", "/api/auth/login", {"data": "{", "headers": {
                  "Content-Type": "application/json"}}),
              ("GET", "/api/products?x=" + "a" * 9000, {}),          # nginx 414
              ("GET", "/api/products", {"headers": {"X-Big": "a" * 10000}}),  # nginx 400
              ("POST", "/api/products", {"data": b"x" * (11 << 20)}),  # nginx 413
              ("GET", "/", {}), ("GET", "/index.html", {})]
    for method, path, kw in checks:
        r = s.request(method, BASE_URL + path, timeout=60, **kw)
        _check_headers(r, "%s %s -> %d" % (method, path[:40], r.status_code))
    # every route of the table, without a session (mostly 401) and with a bad body
    for method, pattern, flags in _routes():
        path = pattern.replace("{provider}", "openai")
        for p in ("{id}", "{share_id}", "{product_id}", "{phase_id}"):
            path = path.replace(p, str(uuid.uuid4()))
        r = s.request(method, BASE_URL + path, timeout=60)
        _check_headers(r, "%s %s -> %d" % (method, pattern, r.status_code))
        if r.status_code in (401, 403, 404, 405, 422, 500, 503) and path.startswith("/api/"):
            assert r.headers.get("Cache-Control") == "no-store", (method, pattern)


def test_login_throttling_per_account_and_per_address():
    clear_login_limits()
    try:
        # per account and address: 5 failures, then 429 before the password is checked
        u = new_user()
        for i in range(5):
            r = requests.post(BASE_URL + "/api/auth/login",
                              json={"email": u.email, "password": "wrong-%d" % i}, timeout=60)
            assert r.status_code == 401, (i, r.text)
        r = requests.post(BASE_URL + "/api/auth/login",
                          json={"email": u.email, "password": u.password}, timeout=60)
        assert r.status_code == 429 and r.headers.get("Retry-After"), r.text
        # per address: 50 failures over any accounts, then every login from it is refused
        clear_login_limits()
        logins0 = metric("ideaforge_logins_total")
        for i in range(50):
            r = requests.post(BASE_URL + "/api/auth/login",
                              json={"email": "ghost-%d-%s@example.test" % (i, uuid.uuid4().hex),
                                    "password": "wrong"}, timeout=60)
            assert r.status_code == 401, (i, r.status_code, r.text)
        other = new_user()
        r = requests.post(BASE_URL + "/api/auth/login",
                          json={"email": other.email, "password": other.password}, timeout=60)
        assert r.status_code == 429 and r.headers.get("Retry-After"), r.text
        assert metric("ideaforge_logins_total") == logins0
    finally:
        clear_login_limits()
