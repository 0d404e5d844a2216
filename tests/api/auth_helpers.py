"""Helpers of the authentication, session and rate-limit tests (test_auth*.py,
test_ratelimit.py).

    u = new_user()                         # a fresh user of the default tenant (own password)
    tok = login_ok(u.email, u.password)    # a bearer token through the real /api/auth/login
    me(tok)                                # GET /api/auth/me with it
    forge(claims, alg="HS384")             # hand-made tokens signed with the stack's secret
    with api_config(rl_default_per_min=20): ...   # the API reloaded with other limits

Each test creates its own users, so that failed-login budgets, revocations and deactivations
never touch the demo accounts other suites rely on; clear_login_limits() forgets the failed
logins counted for 127.0.0.1 (every test client comes from there).
"""

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid

from conftest import (BASE_URL, BUILD_DIR, CONF, ApiLog, api_pids, new_http, psql_one,
                      redis_cmd, redis_up, wait_for)

PASSWORD = "correct-horse-battery"


class User:
    def __init__(self, id_, email, password):
        self.id = id_
        self.email = email
        self.password = password

    def __repr__(self):
        return "User(%s)" % self.email


def new_user(password=PASSWORD, name="Auth Tester", tenant="default", persona=None):
    """Creates a user with `ideaforgectl user add` (argon2id with the configured parameters)."""
    email = "auth-%s@example.test" % uuid.uuid4().hex[:12]
    argv = [os.path.join(BUILD_DIR, "ideaforgectl"), "--config", CONF, "user", "add",
            "--email", email, "--name", name, "--tenant", tenant, "--password-stdin"]
    if persona:
        argv += ["--persona", persona]
    p = subprocess.run(argv, input=password + "\n", capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, "ideaforgectl user add: %s" % p.stderr
    return User(p.stdout.strip(), email, password)


def ctl_run(*args, stdin=None):
    """ideaforgectl --config CONF args...; returns the CompletedProcess (not checked)."""
    return subprocess.run([os.path.join(BUILD_DIR, "ideaforgectl"), "--config", CONF, *args],
                          input=stdin, capture_output=True, text=True, timeout=60)


def login(email, password, session=None, **kw):
    s = session or new_http()
    try:
        return s.post("/api/auth/login", json={"email": email, "password": password}, **kw)
    finally:
        if session is None:
            s.close()


def login_ok(email, password):
    r = login(email, password)
    assert r.status_code == 200, "login %s: %d %s" % (email, r.status_code, r.text)
    return r.json()["token"]


def bearer(token):
    return {"Authorization": "Bearer " + token}


def get(path, token=None, **kw):
    s = new_http()
    try:
        if token:
            kw.setdefault("headers", {}).update(bearer(token))
        return s.get(path, **kw)
    finally:
        s.close()


def post(path, token=None, **kw):
    s = new_http()
    try:
        if token:
            kw.setdefault("headers", {}).update(bearer(token))
        return s.post(path, **kw)
    finally:
        s.close()


def me(token, session=None):
    s = session or new_http()
    try:
        return s.get("/api/auth/me", headers=bearer(token))
    finally:
        if session is None:
            s.close()


def session_row(jti):
    return psql_one("SELECT revoked_at IS NOT NULL FROM user_sessions WHERE id = $1", jti)


# ---------------------------------------------------------------------------------------------
# Tokens


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def claims_of(token):
    return json.loads(b64url_decode(token.split(".")[1]))


def jwt_secret():
    """The stack's signing secret, from jwt_secret_file of its configuration."""
    with open(CONF) as f:
        conf = f.read()
    m = re.search(r"^\s*jwt_secret_file\s*=\s*(\S+)", conf, re.M)
    assert m, "no jwt_secret_file in " + CONF
    with open(m.group(1), "rb") as f:
        return f.read().rstrip(b"\r\n")


def forge(claims, alg="HS256", key=None, header=None):
    """A token with these claims; alg HS256/HS384/HS512 signed with key (default: the stack's
    secret), or "none" (no signature)."""
    h = header or {"alg": alg, "typ": "JWT"}
    signing = b64url(json.dumps(h).encode()) + "." + b64url(json.dumps(claims).encode())
    if alg == "none":
        return signing + "."
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    sig = hmac.new(key if key is not None else jwt_secret(), signing.encode(), digest).digest()
    return signing + "." + b64url(sig)


# ---------------------------------------------------------------------------------------------
# Rate limits and configuration


def clear_login_limits():
    """Forgets the failed-login budgets of every address (Redis keys rl:lf*)."""
    if not redis_up():
        return
    for pattern in ("rl:lf:*", "rl:lfi:*"):
        keys = redis_cmd("--scan", "--pattern", pattern).split()
        for i in range(0, len(keys), 100):
            redis_cmd("DEL", *keys[i:i + 100])


def clear_rate_limits():
    """Forgets every rate-limit bucket (rl:*)."""
    if not redis_up():
        return
    keys = redis_cmd("--scan", "--pattern", "rl:*").split()
    for i in range(0, len(keys), 100):
        redis_cmd("DEL", *keys[i:i + 100])


def _workers_settled(old):
    master, kids = api_pids()
    return master is not None and kids and not (set(kids) & set(old))


def _reload():
    master, old = api_pids()
    assert master, "ideaforge-api is not running"
    log = ApiLog()
    os.kill(master, signal.SIGHUP)
    log.wait_for(r"configuration reloaded", timeout=10)
    wait_for(lambda: _workers_settled(old), timeout=30, message="old workers replaced")
    # the new workers answer
    wait_for(lambda: new_http().get("/health/live").status_code == 200, timeout=10,
             message="API answering after reload")


@contextlib.contextmanager
def api_config(**overrides):
    """Runs the block with the API reloaded (SIGHUP) with these configuration keys appended to
    its config file; the file and the configuration are restored afterwards."""
    with open(CONF) as f:
        original = f.read()
    extra = "".join("%s = %s\n" % (k, v) for k, v in overrides.items())
    with open(CONF, "w") as f:
        f.write(original + "\n# test override\n" + extra)
    try:
        _reload()
        yield
    finally:
        with open(CONF, "w") as f:
            f.write(original)
        _reload()


def rid_pids(rids, log, timeout=5.0):
    """Maps request ids to the pid of the worker that logged their access line, reading the
    API log from where `log` (an ApiLog made before the requests) started."""
    want = set(rids)

    def scan():
        found = {}
        for m in re.finditer(r"pid=(\d+) rid=(\S+) method=", log.text()):
            if m.group(2) in want:
                found[m.group(2)] = int(m.group(1))
        return found if len(found) == len(want) else None

    return wait_for(scan, timeout=timeout, message="access lines of %d requests" % len(want))


def burst(path, headers=None, n=48, method="GET", body=None):
    """n requests sent at the same instant on n raw connections (a thread pool of requests
    sessions is too slow to keep more than one worker busy); returns [(status, headers dict,
    body)] in order."""
    host, port = BASE_URL.split("//", 1)[1].split(":")
    port = int(port.split("/")[0])
    req = "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n" % (method, path, host)
    for k, v in (headers or {}).items():
        req += "%s: %s\r\n" % (k, v)
    payload = b""
    if body is not None:
        payload = json.dumps(body).encode()
        req += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(payload)
    req = (req + "\r\n").encode() + payload
    socks = [socket.create_connection((host, port), timeout=30) for _ in range(n)]
    try:
        for sk in socks:
            sk.sendall(req)
        out = []
        for sk in socks:
            data = b""
            while True:
                chunk = sk.recv(65536)
                if not chunk:
                    break
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            hdrs = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                hdrs[k.strip().lower()] = v.strip()
            out.append((status, hdrs, body))
        return out
    finally:
        for sk in socks:
            sk.close()


def timed(fn):
    t = time.monotonic()
    v = fn()
    return v, time.monotonic() - t
