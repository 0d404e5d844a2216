#!/usr/bin/env python3
"""fake_ext - loopback fakes of the outside services of issue 16, for the API tests.

    FakeOIDC      an OpenID provider: discovery, JWKS (a test RSA 2048 key and a P-256 key),
                  /authorize (redirects back with a code), /token (signed ID tokens, PKCE S256
                  checked, refresh tokens), /logout; every tampering case on request.
    FakeGitHub    GET /user, GET /repos/{o}/{r}/contents/{path}?ref=
    FakeAtlassian GET /wiki/rest/api/space, /rest/api/3/myself, /_edge/tenant_info,
                  GET /wiki/rest/api/content/{id}, GET /wiki/api/v2/spaces?keys=,
                  POST /wiki/api/v2/pages, POST /rest/api/2/issue
    FakeV0        POST /v1/projects, POST /v1/chats, GET /v1/chats/{id}

Python 3 standard library only (RSA PKCS#1 v1.5 and ECDSA P-256 are done with integers here:
fine for tests, useless for anything else). Each fake runs in a thread on an ephemeral port:

    with FakeGitHub(token="ghp-good") as gh:
        gh.base_url                       # http://127.0.0.1:PORT
        gh.fail("/user", "401")           # next request to that path prefix: 401/404/429/500
        gh.fail("*", "hang")              # ... or never answers (until the fake stops)
        gh.requests                       # [(method, path, headers dict, body bytes)]

Every error body carries UPSTREAM_TEXT, and every credential the tests use carries a
recognisable marker, so a test can assert that neither reaches a response or a log line.
"""

import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM_TEXT = "UPSTREAM-ERROR-TEXT-7f3a"  # in every error body a fake sends


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64url_int(i, length=None):
    n = length or max(1, (i.bit_length() + 7) // 8)
    return b64url(i.to_bytes(n, "big"))


# ---------------------------------------------------------------------------------------------
# RSA and ECDSA with integers


def _is_probable_prime(n, rounds=40):
    if n < 2:
        return False
    for p in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(rounds):
        a = secrets.randbelow(n - 3) + 2
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits):
    while True:
        c = secrets.randbits(bits) | (1 << (bits - 1)) | (1 << (bits - 2)) | 1
        if _is_probable_prime(c):
            return c


class RsaKey:
    """An RSA key pair; sign() is RSASSA-PKCS1-v1_5 with SHA-256 (RS256)."""

    def __init__(self, bits=2048):
        e = 65537
        while True:
            p, q = _prime(bits // 2), _prime(bits // 2)
            phi = (p - 1) * (q - 1)
            if p != q and phi % e and (p * q).bit_length() == bits:
                break
        self.n, self.e, self.d = p * q, e, pow(e, -1, phi)
        self.k = (self.n.bit_length() + 7) // 8

    def sign(self, data):
        t = bytes.fromhex("3031300d060960864801650304020105000420") + hashlib.sha256(data).digest()
        em = b"\x00\x01" + b"\xff" * (self.k - len(t) - 3) + b"\x00" + t
        return pow(int.from_bytes(em, "big"), self.d, self.n).to_bytes(self.k, "big")

    def jwk(self, kid):
        return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                "n": b64url_int(self.n), "e": b64url_int(self.e)}


# NIST P-256 (FIPS 186-4 D.1.2.3)
_P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffff
_A = _P - 3
_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551
_G = (0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296,
      0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5)


def _ec_add(p1, p2):
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    if p1[0] == p2[0] and (p1[1] + p2[1]) % _P == 0:
        return None
    if p1 == p2:
        lam = (3 * p1[0] * p1[0] + _A) * pow(2 * p1[1], -1, _P) % _P
    else:
        lam = (p2[1] - p1[1]) * pow(p2[0] - p1[0], -1, _P) % _P
    x = (lam * lam - p1[0] - p2[0]) % _P
    return x, (lam * (p1[0] - x) - p1[1]) % _P


def _ec_mul(k, pt):
    out = None
    while k:
        if k & 1:
            out = _ec_add(out, pt)
        pt = _ec_add(pt, pt)
        k >>= 1
    return out


class EcKey:
    """A P-256 key pair; sign() is ECDSA with SHA-256, r || s (ES256)."""

    def __init__(self):
        self.d = secrets.randbelow(_N - 1) + 1
        self.q = _ec_mul(self.d, _G)

    def sign(self, data):
        z = int.from_bytes(hashlib.sha256(data).digest(), "big")
        while True:
            k = secrets.randbelow(_N - 1) + 1
            r = _ec_mul(k, _G)[0] % _N
            s = pow(k, -1, _N) * (z + r * self.d) % _N
            if r and s:
                return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def jwk(self, kid):
        return {"kty": "EC", "use": "sig", "alg": "ES256", "kid": kid, "crv": "P-256",
                "x": b64url_int(self.q[0], 32), "y": b64url_int(self.q[1], 32)}


_RSA_CACHE = []


def test_rsa_key():
    """One RSA key per test process (generating one takes a second or two)."""
    if not _RSA_CACHE:
        _RSA_CACHE.append(RsaKey())
    return _RSA_CACHE[0]


def sign_jwt(claims, key, alg, kid):
    h = {"alg": alg, "typ": "JWT"}
    if kid is not None:
        h["kid"] = kid
    signing = (b64url(json.dumps(h).encode()) + "." + b64url(json.dumps(claims).encode()))
    if alg == "none":
        return signing + "."
    return signing + "." + b64url(key.sign(signing.encode()))


# ---------------------------------------------------------------------------------------------
# The server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _serve(self):
        fake = self.server.fake
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        url = urllib.parse.urlsplit(self.path)
        fake.requests.append((self.command, self.path, dict(self.headers), body))
        failure = fake._take_failure(url.path)
        if failure == "hang":
            fake._stop.wait(30)
            self.close_connection = True
            return
        if failure:
            status = int(failure)
            extra = {"Retry-After": str(fake.retry_after)} if status == 429 else {}
            return self.send_json(status, {"message": UPSTREAM_TEXT, "error": UPSTREAM_TEXT},
                                  extra)
        q = dict(urllib.parse.parse_qsl(url.query))
        fake.handle(self, self.command, url.path, q, body)

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def send_json(self, status, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


class Fake:
    """Base: an HTTP server in a thread, a request log and per-path failures."""

    def __init__(self):
        self.requests = []
        self._failures = []  # [(path prefix or "*", kind)] taken in order
        self.retry_after = 7  # Retry-After (seconds) of a failure "429"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.fake = self
        self.port = self.httpd.server_address[1]
        self.base_url = "http://127.0.0.1:%d" % self.port
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def fail(self, prefix, kind, times=1):
        """The next `times` requests whose path starts with prefix ("*": any) fail: "401",
        "403", "404", "429" (with Retry-After: .retry_after), "500" or "hang"."""
        with self._lock:
            self._failures += [(prefix, kind)] * times

    def clear(self):
        with self._lock:
            self._failures = []
        self.requests = []

    def _take_failure(self, path):
        with self._lock:
            for i, (prefix, kind) in enumerate(self._failures):
                if prefix == "*" or path.startswith(prefix):
                    del self._failures[i]
                    return kind
        return None

    def handle(self, h, method, path, q, body):
        h.send_json(404, {"message": "no such path " + UPSTREAM_TEXT})


# ---------------------------------------------------------------------------------------------
# OpenID provider


class FakeOIDC(Fake):
    """An OpenID provider. client_id/client_secret are what it accepts; users: the claims the
    next sign-ins get (set .user before each). .next_token: overrides for the next ID token:
        {"alg": "ES256"|"RS256"|"none"|"HS256", "kid": ..., "claims": {...} (merged; None
        deletes), "tamper": "signature", "key": "unknown" (a key the JWKS does not list)}.
    """

    def __init__(self, client_id="ideaforge-test", client_secret="oidc-SECRET-marker-91c2"):
        super().__init__()
        self.issuer = self.base_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.rsa = test_rsa_key()
        self.ec = EcKey()
        self.other_ec = EcKey()
        self.jwks_keys = [self.rsa.jwk("rsa-1"), self.ec.jwk("ec-1")]
        self.codes = {}  # code -> authorize parameters
        self.refresh_tokens = {}  # token -> sub
        self.user = {"sub": "sub-" + secrets.token_hex(6), "email": "sso@example.test",
                     "name": "SSO User"}
        self.next_token = {}
        self.token_requests = []  # parsed form of each /token request
        self.jwks_fetches = 0
        self.discovery_overrides = {}

    def discovery(self):
        d = {"issuer": self.issuer,
             "authorization_endpoint": self.base_url + "/authorize",
             "token_endpoint": self.base_url + "/token",
             "jwks_uri": self.base_url + "/jwks",
             "end_session_endpoint": self.base_url + "/logout",
             "response_types_supported": ["code"],
             "subject_types_supported": ["public"],
             "id_token_signing_alg_values_supported": ["RS256", "ES256"],
             "code_challenge_methods_supported": ["S256"]}
        d.update(self.discovery_overrides)
        return d

    def handle(self, h, method, path, q, body):
        if path == "/.well-known/openid-configuration":
            return h.send_json(200, self.discovery())
        if path == "/jwks":
            self.jwks_fetches += 1
            return h.send_json(200, {"keys": self.jwks_keys})
        if path == "/authorize":
            return self._authorize(h, q)
        if path == "/token" and method == "POST":
            return self._token(h, body)
        if path == "/logout":
            return h.send_json(200, {"ok": True})
        return super().handle(h, method, path, q, body)

    def _authorize(self, h, q):
        if q.get("client_id") != self.client_id or q.get("response_type") != "code":
            return h.send_json(400, {"error": "invalid_request"})
        code = "code-" + secrets.token_hex(12)
        self.codes[code] = dict(q, user=dict(self.user))
        sep = "&" if "?" in q["redirect_uri"] else "?"
        h.redirect(q["redirect_uri"] + sep + urllib.parse.urlencode(
            {"code": code, "state": q.get("state", "")}))

    def _client_ok(self, h, form):
        auth = h.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            raw = base64.b64decode(auth[6:]).decode()
            cid, _, sec = raw.partition(":")
            return (urllib.parse.unquote_plus(cid) == self.client_id
                    and urllib.parse.unquote_plus(sec) == self.client_secret)
        return form.get("client_id") == self.client_id and not self.client_secret

    def _token(self, h, body):
        form = dict(urllib.parse.parse_qsl(body.decode()))
        self.token_requests.append(form)
        if not self._client_ok(h, form):
            return h.send_json(401, {"error": "invalid_client", "error_description": UPSTREAM_TEXT})
        if form.get("grant_type") == "refresh_token":
            sub = self.refresh_tokens.pop(form.get("refresh_token"), None)
            if not sub:
                return h.send_json(400, {"error": "invalid_grant"})
            new = "rt-MARKER-" + secrets.token_hex(8)
            self.refresh_tokens[new] = sub
            return h.send_json(200, {"access_token": "at-" + secrets.token_hex(8),
                                     "token_type": "Bearer", "expires_in": 3600,
                                     "refresh_token": new})
        if form.get("grant_type") != "authorization_code":
            return h.send_json(400, {"error": "unsupported_grant_type"})
        a = self.codes.pop(form.get("code"), None)
        if not a or form.get("redirect_uri") != a.get("redirect_uri"):
            return h.send_json(400, {"error": "invalid_grant", "error_description": UPSTREAM_TEXT})
        verifier = form.get("code_verifier")
        challenge = a.get("code_challenge")
        # PKCE (RFC 7636 section 4.6): the verifier must hash to the challenge; a code issued
        # without a challenge, or a token request without a verifier, is refused (OAuth 2.1)
        if (not verifier or not challenge or a.get("code_challenge_method") != "S256"
                or b64url(hashlib.sha256(verifier.encode()).digest()) != challenge):
            return h.send_json(400, {"error": "invalid_grant", "error_description": "PKCE"})
        user = a["user"]
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": user["sub"], "aud": self.client_id,
                  "exp": now + 300, "iat": now, "nonce": a.get("nonce"),
                  "email": user.get("email"), "name": user.get("name"),
                  "email_verified": True}
        nt, self.next_token = self.next_token, {}
        for k, v in nt.get("claims", {}).items():
            if v is None:
                claims.pop(k, None)
            else:
                claims[k] = v
        alg = nt.get("alg", "RS256")
        key = {"RS256": self.rsa, "ES256": self.ec}.get(alg)
        kid = nt.get("kid", {"RS256": "rsa-1", "ES256": "ec-1"}.get(alg))
        if nt.get("key") == "unknown":
            key, alg, kid = self.other_ec, "ES256", nt.get("kid", "ec-unknown")
        if alg == "HS256":
            # the classic confusion: HMAC keyed with the public key's JSON
            import hmac
            hdr = b64url(json.dumps({"alg": "HS256", "kid": "rsa-1"}).encode())
            pl = b64url(json.dumps(claims).encode())
            secret = json.dumps(self.jwks_keys[0]).encode()
            sig = hmac.new(secret, (hdr + "." + pl).encode(), hashlib.sha256).digest()
            id_token = hdr + "." + pl + "." + b64url(sig)
        else:
            id_token = sign_jwt(claims, key, alg, kid)
        if nt.get("tamper") == "signature":
            head, _, sig = id_token.rpartition(".")
            raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
            raw[len(raw) // 2] ^= 0x01
            id_token = head + "." + b64url(bytes(raw))
        if nt.get("tamper") == "payload":
            h1, p1, s1 = id_token.split(".")
            c2 = dict(claims, sub="someone-else")
            id_token = h1 + "." + b64url(json.dumps(c2).encode()) + "." + s1
        rt = "rt-MARKER-" + secrets.token_hex(8)
        self.refresh_tokens[rt] = user["sub"]
        out = {"access_token": "at-" + secrets.token_hex(8), "token_type": "Bearer",
               "expires_in": 300, "refresh_token": rt}
        if not nt.get("no_id_token"):
            out["id_token"] = id_token
        h.send_json(200, out)


# ---------------------------------------------------------------------------------------------
# GitHub


class FakeGitHub(Fake):
    """GitHub's REST API with one valid token; files: {(owner, repo, ref, path): bytes}."""

    def __init__(self, token="ghp_MARKER_good_0001"):
        super().__init__()
        self.token = token
        self.files = {}

    def handle(self, h, method, path, q, body):
        if h.headers.get("Authorization") != "Bearer " + self.token:
            return h.send_json(401, {"message": "Bad credentials " + UPSTREAM_TEXT})
        if path == "/user":
            return h.send_json(200, {"login": "octo-test", "id": 1})
        parts = path.split("/")
        if len(parts) >= 6 and parts[1] == "repos" and parts[4] == "contents":
            fpath = urllib.parse.unquote("/".join(parts[5:]))
            key = (parts[2], parts[3], q.get("ref", "main"), fpath)
            if key not in self.files:
                return h.send_json(404, {"message": "Not Found " + UPSTREAM_TEXT})
            data = self.files[key]
            if data is None:  # a directory
                return h.send_json(200, [{"type": "file", "name": "x"}])
            b64 = base64.b64encode(data).decode()
            wrapped = "\n".join(b64[i:i + 60] for i in range(0, len(b64), 60)) + "\n"
            return h.send_json(200, {"type": "file", "encoding": "base64", "size": len(data),
                                     "name": fpath.rsplit("/", 1)[-1], "path": fpath,
                                     "sha": hashlib.sha1(data).hexdigest(),
                                     "content": wrapped})
        return super().handle(h, method, path, q, body)


# ---------------------------------------------------------------------------------------------
# Atlassian (Confluence and Jira Cloud)


class FakeAtlassian(Fake):
    """One Atlassian site: Basic email:token; pages {id: (title, storage)}; created pages and
    issues are recorded in .created_pages / .created_issues."""

    def __init__(self, email="me@example.test", token="atl_MARKER_token_0001"):
        super().__init__()
        self.email, self.token = email, token
        self.cloud_id = "a436116f-02ce-4520-8fbb-7301462a1674"
        self.pages = {}
        self.spaces = {"ENG": "98306"}
        self.created_pages = []
        self.created_issues = []

    def _auth_ok(self, h):
        want = "Basic " + base64.b64encode(("%s:%s" % (self.email, self.token)).encode()).decode()
        return h.headers.get("Authorization") == want

    def handle(self, h, method, path, q, body):
        if path == "/_edge/tenant_info":
            return h.send_json(200, {"cloudId": self.cloud_id})
        if not self._auth_ok(h):
            return h.send_json(401, {"message": "Unauthorized " + UPSTREAM_TEXT})
        if path in ("/wiki/rest/api/space", "/rest/api/3/myself"):
            return h.send_json(200, {"results": [{"key": "ENG"}], "accountId": "x"})
        if path.startswith("/wiki/rest/api/content/"):
            pid = path.rsplit("/", 1)[-1]
            if pid not in self.pages:
                return h.send_json(404, {"message": "No content " + UPSTREAM_TEXT})
            title, storage = self.pages[pid]
            return h.send_json(200, {"id": pid, "type": "page", "title": title,
                                     "space": {"key": "ENG"}, "version": {"number": 3},
                                     "body": {"storage": {"value": storage,
                                                          "representation": "storage"}}})
        if path == "/wiki/api/v2/spaces":
            sid = self.spaces.get(q.get("keys"))
            return h.send_json(200, {"results": [{"id": sid, "key": q.get("keys")}] if sid else []})
        if path == "/wiki/api/v2/pages" and method == "POST":
            req = json.loads(body)
            pid = str(100000 + len(self.created_pages))
            self.created_pages.append(req)
            return h.send_json(200, {"id": pid, "title": req.get("title"),
                                     "spaceId": req.get("spaceId"),
                                     "_links": {"webui": "/spaces/ENG/pages/%s/x" % pid,
                                                "base": self.base_url + "/wiki"}})
        if path == "/rest/api/2/issue" and method == "POST":
            req = json.loads(body)
            n = len(self.created_issues) + 1
            self.created_issues.append(req)
            key = "%s-%d" % (req["fields"]["project"]["key"], n)
            return h.send_json(201, {"id": str(10000 + n), "key": key,
                                     "self": self.base_url + "/rest/api/2/issue/" + key})
        return super().handle(h, method, path, q, body)


# ---------------------------------------------------------------------------------------------
# V0


class FakeV0(Fake):
    """V0's Platform API with one valid key. Chats stay "pending" until .complete(chat_id)."""

    def __init__(self, key="v0_MARKER_key_0001"):
        super().__init__()
        self.key = key
        self.projects = {}
        self.chats = {}

    def complete(self, chat_id, demo_url="https://demo-fake.vusercontent.net/app"):
        self.chats[chat_id].update(status="completed", demoUrl=demo_url)

    def polls(self, chat_id):
        """GET /v1/chats/{chat_id} requests received so far (answered or not)."""
        return sum(1 for m, path, _, _ in list(self.requests)
                   if m == "GET" and path.split("?")[0] == "/v1/chats/" + chat_id)

    def _chat(self, cid):
        c = self.chats[cid]
        return {"id": cid, "webUrl": "https://v0.dev/chat/" + cid, "projectId": c["projectId"],
                "latestVersion": {"id": "ver-" + cid, "status": c["status"],
                                  "demoUrl": c.get("demoUrl")}}

    def handle(self, h, method, path, q, body):
        if h.headers.get("Authorization") != "Bearer " + self.key:
            return h.send_json(401, {"error": {"message": "Unauthorized " + UPSTREAM_TEXT}})
        if path == "/v1/projects" and method == "POST":
            pid = "prj" + secrets.token_hex(6)
            self.projects[pid] = json.loads(body or b"{}")
            return h.send_json(200, {"id": pid, "object": "project",
                                     "name": self.projects[pid].get("name"),
                                     "webUrl": "https://v0.dev/chat/projects/" + pid})
        if path == "/v1/chats" and method == "POST":
            req = json.loads(body or b"{}")
            if req.get("projectId") not in self.projects:
                return h.send_json(404, {"error": {"message": "no project " + UPSTREAM_TEXT}})
            cid = "chat" + secrets.token_hex(6)
            self.chats[cid] = {"projectId": req["projectId"], "message": req.get("message"),
                               "status": "pending"}
            return h.send_json(200, self._chat(cid))
        if path.startswith("/v1/chats/") and method == "GET":
            cid = path.rsplit("/", 1)[-1]
            if cid not in self.chats:
                return h.send_json(404, {"error": {"message": "no chat " + UPSTREAM_TEXT}})
            return h.send_json(200, self._chat(cid))
        return super().handle(h, method, path, q, body)
