"""Single sign-on with an OpenID provider (issue 16; API.md 1.2 SSO rows, 8.1 item 6): the
authorization code flow with PKCE against tests/fakes/fake_ext.py's FakeOIDC, through nginx.

Every tampering case is refused (bad signature, wrong audience, wrong issuer, expired, replayed
state, wrong nonce, a PKCE verifier that does not match, a state from another browser, "none"
and HMAC algorithms, an unknown key); the first sign-in creates the user in oidc_tenant, matched
by issuer + subject afterwards; the session and cookie are a password login's; no credential or
provider text reaches a response or the API log.
"""

import os
import re
import sys
import time
import urllib.parse
import uuid

import pytest
import requests

from auth_helpers import api_config, bearer, clear_rate_limits, login, new_user
from conftest import BASE_URL, ApiLog, new_http, psql, psql_one

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "fakes"))
from fake_ext import UPSTREAM_TEXT, FakeOIDC  # noqa: E402

TENANT_SLUG = "sso-test"
CALLBACK = BASE_URL + "/auth/mckinsey/callback"
MARKERS = (UPSTREAM_TEXT, "oidc-SECRET-marker-91c2", "rt-MARKER-")


@pytest.fixture(scope="module")
def idp():
    psql("INSERT INTO tenants (name, slug) VALUES ('SSO Test Tenant', $1) "
         "ON CONFLICT (slug) DO NOTHING", TENANT_SLUG)
    with FakeOIDC() as fake:
        with api_config(oidc_issuer=fake.issuer, oidc_client_id=fake.client_id,
                        oidc_client_secret=fake.client_secret, oidc_redirect_uri=CALLBACK,
                        oidc_tenant=TENANT_SLUG, ext_allow_http="true", ext_timeout_ms=3000,
                        oidc_post_logout_redirect_uri=BASE_URL + "/"):
            yield fake


@pytest.fixture(autouse=True)
def _fresh(request):
    clear_rate_limits()
    if "idp" in request.fixturenames:
        idp = request.getfixturevalue("idp")
        idp.clear()
        idp.next_token = {}
        idp.user = {"sub": "sub-" + uuid.uuid4().hex[:12],
                    "email": "sso-%s@example.test" % uuid.uuid4().hex[:8], "name": "SSO User"}
    yield


def start(s, path="/api/auth/oidc/authorize"):
    """authorize on session s; returns (authorization_url, state)."""
    r = s.get(path)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"authorization_url", "state"}
    return body["authorization_url"], body["state"]


def at_provider(url):
    """The browser at the provider: follows nothing, returns the redirect back to us."""
    r = requests.get(url, allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text
    return r.headers["Location"]


def sign_in(s, path="/api/auth/oidc/authorize"):
    url, _ = start(s, path)
    return s.get(at_provider(url))


def assert_clean(*texts):
    for t in texts:
        for m in MARKERS:
            assert m not in t, "leaked %r" % m


def test_off_unless_configured():
    """Without oidc_issuer every SSO path is 404 (the test stack's default)."""
    s = new_http()
    for path in ("/api/auth/oidc/authorize", "/api/auth/oidc/callback?code=a&state=b",
                 "/api/auth/mckinsey/authorize", "/auth/mckinsey/callback?code=a&state=b"):
        r = s.get(path)
        assert r.status_code == 404, (path, r.text)
        assert r.json() == {"detail": "Not Found"}


# ---------------------------------------------------------------------------------------------
# The happy path


def test_authorize_url_carries_pkce_state_nonce(idp):
    s = new_http()
    url, state = start(s)
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert url.startswith(idp.base_url + "/authorize?")
    assert q["response_type"] == "code" and q["client_id"] == idp.client_id
    assert q["redirect_uri"] == CALLBACK and q["scope"] == "openid profile email"
    assert q["state"] == state and len(state) >= 43
    assert len(q["nonce"]) >= 43 and q["nonce"] != state
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43
    assert s.cookies.get("oidc_state") == state
    # only a hash of the state is stored
    assert psql_one("SELECT count(*) FROM oidc_logins WHERE state_hash = $1", state) == "0"


def test_first_sign_in_creates_the_user_in_the_configured_tenant(idp):
    s = new_http()
    r = sign_in(s)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"user_id", "email", "full_name", "tenant_id", "tenant_name", "token",
                         "expires_at"}
    assert body["email"] == idp.user["email"] and body["full_name"] == "SSO User"
    assert body["tenant_name"] == "SSO Test Tenant"
    row = psql("SELECT t.slug, u.auth_provider, u.password_hash IS NULL, i.issuer, i.subject "
               "FROM user_profiles u JOIN tenants t ON t.id = u.tenant_id "
               "JOIN user_identities i ON i.user_id = u.id WHERE u.id = $1", body["user_id"])
    assert row == [(TENANT_SLUG, "oauth", "t", idp.issuer, idp.user["sub"])]
    # the token request carried the verifier and our client authentication
    form = idp.token_requests[-1]
    assert form["grant_type"] == "authorization_code" and len(form["code_verifier"]) >= 43
    assert form["redirect_uri"] == CALLBACK


def test_session_and_cookie_are_a_password_logins(idp):
    s = new_http()
    r = sign_in(s)
    assert r.status_code == 200, r.text
    tok = r.json()["token"]
    sso_cookie = [c for c in r.headers.get("Set-Cookie", "").split(", ") if "session_token=" in c]
    # a password login's cookie, for comparison
    u = new_user()
    pr = login(u.email, u.password)
    assert pr.status_code == 200
    pw_cookie = [c for c in pr.headers.get("Set-Cookie", "").split(", ") if "session_token=" in c]
    strip = lambda c: re.sub(r"session_token=[^;]*", "session_token=X", c)  # noqa: E731
    assert [strip(c) for c in sso_cookie] == [strip(c) for c in pw_cookie]
    assert set(r.json()) == set(pr.json())
    # the token works as a bearer and as the cookie; the session row exists
    me = new_http().get("/api/auth/me", headers=bearer(tok))
    assert me.status_code == 200 and me.json()["email"] == idp.user["email"]
    assert me.json()["mckinsey_subject"] == idp.user["sub"]
    assert s.get("/api/auth/me").status_code == 200
    assert psql_one("SELECT count(*) FROM user_sessions WHERE user_id = $1 AND revoked_at IS NULL",
                    r.json()["user_id"]) == "1"
    # the state cookie is cleared
    assert "oidc_state=;" in r.headers.get("Set-Cookie", "")


def test_second_sign_in_matches_issuer_and_subject_not_email(idp):
    s = new_http()
    first = sign_in(s).json()
    idp.user = dict(idp.user, email="changed-%s@example.test" % uuid.uuid4().hex[:6])
    second = sign_in(new_http())
    assert second.status_code == 200, second.text
    assert second.json()["user_id"] == first["user_id"]
    assert psql_one("SELECT count(*) FROM user_identities WHERE subject = $1",
                    idp.user["sub"]) == "1"


def test_es256_tokens_and_the_mckinsey_aliases(idp):
    idp.next_token = {"alg": "ES256"}
    s = new_http()
    r = sign_in(s, "/api/auth/mckinsey/authorize")
    assert r.status_code == 200, r.text
    # the /api/auth/mckinsey/callback alias too
    url, _ = start(s, "/api/auth/mckinsey/authorize")
    loc = at_provider(url).replace("/auth/mckinsey/callback", "/api/auth/mckinsey/callback")
    r2 = s.get(loc)
    assert r2.status_code == 200, r2.text


def test_an_existing_email_is_not_taken_over(idp):
    u = new_user()
    idp.user = dict(idp.user, email=u.email)
    r = sign_in(new_http())
    assert r.status_code == 409, r.text
    assert psql_one("SELECT count(*) FROM user_identities WHERE subject = $1",
                    idp.user["sub"]) == "0"


def test_inactive_user_is_refused(idp):
    r = sign_in(new_http())
    uid = r.json()["user_id"]
    psql("UPDATE user_profiles SET is_active = false WHERE id = $1", uid)
    r2 = sign_in(new_http())
    assert r2.status_code == 403 and r2.json()["detail"] == "User account is inactive"


# ---------------------------------------------------------------------------------------------
# Tampering: every case is a 400 and no session


def _refused(s, r, status=400):
    assert r.status_code == status, r.text
    assert "token" not in r.json()
    assert "session_token=" not in r.headers.get("Set-Cookie", "").replace("session_token=;", "")
    assert_clean(r.text)


@pytest.mark.parametrize("case", [
    {"tamper": "signature"},
    {"tamper": "payload"},
    {"claims": {"aud": "another-client"}},
    {"claims": {"aud": ["another-client", "ideaforge-test"]}},  # several aud, no azp
    {"claims": {"iss": "http://evil.example"}},
    {"claims": {"exp": int(time.time()) - 3600}},
    {"claims": {"iat": int(time.time()) + 3600}},
    {"claims": {"nonce": "not-the-nonce"}},
    {"claims": {"nonce": None}},
    {"claims": {"sub": None}},
    {"alg": "none"},
    {"alg": "HS256"},
    {"key": "unknown"},
    {"no_id_token": True},
], ids=["bad-signature", "tampered-payload", "wrong-audience", "audience-without-azp",
        "wrong-issuer", "expired", "issued-in-future", "wrong-nonce", "no-nonce", "no-subject",
        "alg-none", "alg-hs256-with-public-key", "unknown-key", "no-id-token"])
def test_tampered_id_token_is_refused(idp, case):
    idp.next_token = case
    s = new_http()
    r = sign_in(s)
    _refused(s, r)
    assert s.get("/api/auth/me").status_code == 401


def test_replayed_state_is_refused(idp):
    s = new_http()
    url, _ = start(s)
    back = at_provider(url)
    assert s.get(back).status_code == 200
    s.cookies.clear()
    # the same callback again (same code and state), with the state cookie put back
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(back).query))
    s.cookies.set("oidc_state", q["state"])
    _refused(s, s.get(back))


def test_state_of_another_browser_is_refused(idp):
    victim = new_http()
    url, _ = start(victim)
    back = at_provider(url)
    attacker = new_http()  # no oidc_state cookie (login CSRF)
    _refused(attacker, attacker.get(back))
    # a forged cookie with another state does not help either
    attacker.cookies.set("oidc_state", "x" * 43)
    _refused(attacker, attacker.get(back))


def test_unknown_state_is_refused(idp):
    s = new_http()
    url, _ = start(s)
    back = at_provider(url)
    forged = re.sub(r"state=[^&]+", "state=" + "A" * 43, back)
    s.cookies.set("oidc_state", "A" * 43)
    _refused(s, s.get(forged))


def test_code_bound_to_another_pkce_challenge_is_refused(idp):
    """Code injection: a code obtained with the attacker's challenge (or with none) fails with
    our verifier (RFC 7636): the provider refuses the exchange and so do we."""
    s = new_http()
    url, state = start(s)
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    for challenge in ("B" * 43, None):
        q2 = dict(q)
        if challenge:
            q2["code_challenge"] = challenge
        else:
            q2.pop("code_challenge")
            q2.pop("code_challenge_method")
        back = at_provider(idp.base_url + "/authorize?" + urllib.parse.urlencode(q2))
        _refused(s, s.get(back))
        # the state was spent by the failed attempt: start again for the next case
        url, state = start(s)
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert all(f.get("code_verifier") for f in idp.token_requests)


def test_expired_state_is_refused(idp):
    s = new_http()
    url, state = start(s)
    psql("UPDATE oidc_logins SET expires_at = now() - interval '1 second' "
         "WHERE expires_at > now()")
    _refused(s, s.get(at_provider(url)))


def test_provider_error_and_missing_parameters(idp):
    s = new_http()
    start(s)
    r = s.get("/api/auth/oidc/callback?error=access_denied&error_description=" + UPSTREAM_TEXT)
    _refused(s, r)
    _refused(s, s.get("/api/auth/oidc/callback"))


# ---------------------------------------------------------------------------------------------
# Keys, provider failures, logout and refresh


def test_key_rotation_fetches_the_jwks_again(idp):
    new = type(idp.ec)()
    idp.jwks_keys = [idp.rsa.jwk("rsa-1"), idp.ec.jwk("ec-1"), new.jwk("ec-2")]
    idp.other_ec = new
    idp.next_token = {"key": "unknown", "kid": "ec-2"}
    before = idp.jwks_fetches
    time.sleep(11)  # the refetch on an unknown kid is rate limited to once per 10 s
    r = sign_in(new_http())
    assert r.status_code == 200, r.text
    assert idp.jwks_fetches > before


@pytest.mark.parametrize("kind,status", [("401", 400), ("429", 429), ("500", 503),
                                          ("hang", 503)])
def test_token_endpoint_failures(idp, kind, status):
    s = new_http()
    url, _ = start(s)
    back = at_provider(url)
    idp.fail("/token", kind)
    log = ApiLog()
    t = time.monotonic()
    r = s.get(back)
    assert r.status_code == status, r.text
    assert time.monotonic() - t < 10
    assert_clean(r.text, log.text())


def test_discovery_failure_is_503_without_provider_text(idp):
    from auth_helpers import _reload
    idp.fail("/.well-known", "500", times=5)
    _reload()  # a fresh process has no cached discovery document
    log = ApiLog()
    r = new_http().get("/api/auth/oidc/authorize")
    assert r.status_code == 503, r.text
    assert_clean(r.text, log.text())
    idp.clear()


def test_logout_ends_the_session_and_returns_the_provider_url(idp):
    s = new_http()
    r = sign_in(s)
    tok, uid = r.json()["token"], r.json()["user_id"]
    assert psql_one("SELECT refresh_token_sealed LIKE 'v1:%' FROM user_identities "
                    "WHERE user_id = $1", uid) == "t"
    out = new_http().post("/api/auth/oidc/logout", headers=bearer(tok))
    assert out.status_code == 200, out.text
    lu = out.json()["logout_url"]
    assert lu.startswith(idp.base_url + "/logout?client_id=")
    assert "post_logout_redirect_uri=" in lu
    assert new_http().get("/api/auth/me", headers=bearer(tok)).status_code == 401
    assert psql_one("SELECT refresh_token_sealed IS NULL FROM user_identities "
                    "WHERE user_id = $1", uid) == "t"
    assert new_http().post("/api/auth/mckinsey/logout").status_code == 401


def test_refresh_uses_the_sealed_refresh_token(idp):
    s = new_http()
    r = sign_in(s)
    tok = r.json()["token"]
    sealed = psql_one("SELECT refresh_token_sealed FROM user_identities WHERE user_id = $1",
                      r.json()["user_id"])
    assert "rt-MARKER-" not in sealed
    ok = new_http().post("/api/auth/mckinsey/refresh", headers=bearer(tok))
    assert ok.status_code == 200, ok.text
    assert_clean(ok.text)
    idp.refresh_tokens.clear()  # the provider forgot it
    bad = new_http().post("/api/auth/oidc/refresh", headers=bearer(tok))
    assert bad.status_code == 401
    again = new_http().post("/api/auth/oidc/refresh", headers=bearer(tok))
    assert again.status_code == 401


def test_no_secret_in_the_log(idp):
    log = ApiLog()
    sign_in(new_http())
    idp.next_token = {"tamper": "signature"}
    sign_in(new_http())
    assert_clean(log.text())
    assert "code=" not in log.text() or "code=code-" not in log.text()
