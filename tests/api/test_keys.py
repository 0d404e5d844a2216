"""Provider API keys and integrations (API.md 1.14): encrypted at rest (AES-256-GCM, lib/aead,
"v1:" + base64), never returned in plaintext, bound to their row, per user. The cipher itself
(wrong master key, tampering) is covered by tests/unit/test-aead.c."""

import base64

import pytest

from conftest import psql, psql_one
from product_helpers import User, detail, world  # noqa: F401 (fixture)

PROVIDERS = ["openai", "anthropic", "google", "v0", "lovable", "ai_gateway"]
SECRET = "sk-proj-Abc123def456GHI789jklMNO0abcd"


@pytest.fixture
def user(world):
    u = User(world.tenant_a, "keys")
    yield u
    u.http.close()


def stored(user_id, provider):
    return psql_one("SELECT api_key_encrypted FROM user_api_keys WHERE user_id = $1 "
                    "AND provider = $2", user_id, provider)


def test_list_empty(user):
    r = user.http.get("/api/api-keys")
    assert r.status_code == 200
    keys = r.json()["keys"]
    assert [k["provider"] for k in keys] == PROVIDERS
    for k in keys:
        assert k == {"provider": k["provider"], "is_configured": False, "masked_key": None,
                     "created_at": None, "updated_at": None}


def test_save_is_encrypted_and_masked(user):
    r = user.http.post("/api/api-keys", json={"provider": "openai", "api_key": SECRET + "\n"})
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["provider"] == "openai" and j["is_configured"] is True
    assert j["masked_key"] == "sk-\u2026abcd"
    assert j["created_at"] and j["updated_at"]
    assert SECRET not in r.text

    col = stored(user.id, "openai")
    assert col.startswith("v1:")
    assert SECRET not in col and "Abc123" not in col
    raw = base64.b64decode(col[3:], validate=True)
    assert len(raw) == 12 + len(SECRET) + 16  # nonce | ciphertext | tag
    assert SECRET.encode() not in raw

    keys = {k["provider"]: k for k in user.http.get("/api/api-keys").json()["keys"]}
    assert keys["openai"]["is_configured"] is True
    assert keys["openai"]["masked_key"] == "sk-\u2026abcd"
    assert keys["google"]["is_configured"] is False
    body = user.http.get("/api/api-keys").text
    assert SECRET not in body

    # saving again replaces the value (and re-encrypts with a fresh nonce)
    r = user.http.post("/api/api-keys", json={"provider": "openai", "api_key": "sk-other-key-9999"})
    assert r.status_code == 200 and r.json()["masked_key"] == "sk-\u20269999"
    assert stored(user.id, "openai") != col
    assert psql_one("SELECT count(*) FROM user_api_keys WHERE user_id = $1", user.id) == "1"


def test_same_key_twice_gives_different_ciphertexts(world):
    a, b = User(world.tenant_a, "k1"), User(world.tenant_a, "k2")
    for u in (a, b):
        assert u.http.post("/api/api-keys", json={"provider": "anthropic",
                                                  "api_key": SECRET}).status_code == 200
    assert stored(a.id, "anthropic") != stored(b.id, "anthropic")


def test_keys_are_per_user_and_bound_to_their_row(world, user):
    other = User(world.tenant_a, "other")
    assert user.http.post("/api/api-keys", json={"provider": "google",
                                                 "api_key": SECRET}).status_code == 200
    keys = {k["provider"]: k for k in other.http.get("/api/api-keys").json()["keys"]}
    assert keys["google"]["is_configured"] is False
    # a ciphertext copied into another user's row does not open there (associated data)
    psql("INSERT INTO user_api_keys (user_id, provider, api_key_encrypted) VALUES ($1, $2, $3)",
         other.id, "google", stored(user.id, "google"))
    keys = {k["provider"]: k for k in other.http.get("/api/api-keys").json()["keys"]}
    assert keys["google"]["is_configured"] is True and keys["google"]["masked_key"] is None
    # nor under another provider of the same user
    psql("INSERT INTO user_api_keys (user_id, provider, api_key_encrypted) VALUES ($1, $2, $3)",
         user.id, "v0", stored(user.id, "google"))
    keys = {k["provider"]: k for k in user.http.get("/api/api-keys").json()["keys"]}
    assert keys["v0"]["masked_key"] is None and keys["google"]["masked_key"] == "sk-\u2026abcd"
    # a tampered value does not open either
    col = stored(user.id, "google")
    flipped = col[:10] + ("A" if col[10] != "A" else "B") + col[11:]
    psql("UPDATE user_api_keys SET api_key_encrypted = $1 WHERE user_id = $2 "
         "AND provider = 'google'", flipped, user.id)
    keys = {k["provider"]: k for k in user.http.get("/api/api-keys").json()["keys"]}
    assert keys["google"]["is_configured"] is True and keys["google"]["masked_key"] is None


@pytest.mark.parametrize("body,status,msg", [
    ({"provider": "azure", "api_key": "k"}, 400, "Invalid provider"),
    ({"provider": "ai_gateway", "api_key": "k"}, 400, "/api/providers/configure"),
    ({"provider": "openai", "api_key": ""}, 400, "API key cannot be empty"),
    ({"provider": "openai", "api_key": "   "}, 400, "API key cannot be empty"),
    ({"provider": "openai", "api_key": "sk-with space"}, 400, "printable ASCII"),
    ({"provider": "openai", "api_key": "sk-\u00e9\u00e9\u00e9"}, 400, "printable ASCII"),
    ({"provider": "openai"}, 422, None),
    ({"api_key": "x"}, 422, None),
    ({"provider": "openai", "api_key": "x" * 4097}, 422, None),
])
def test_save_validation(user, body, status, msg):
    r = user.http.post("/api/api-keys", json=body)
    assert r.status_code == status, r.text
    if msg:
        assert msg in detail(r)
    assert psql_one("SELECT count(*) FROM user_api_keys WHERE user_id = $1", user.id) == "0"


def test_delete(user):
    assert user.http.post("/api/api-keys", json={"provider": "v0",
                                                 "api_key": "v0-key-123456"}).status_code == 200
    r = user.http.delete("/api/api-keys/v0")
    assert r.status_code == 200 and r.json() == {"message": "API key deleted successfully"}
    assert stored(user.id, "v0") is None  # the ciphertext is gone too
    assert user.http.delete("/api/api-keys/v0").status_code == 404
    assert user.http.delete("/api/api-keys/azure").status_code == 400


def test_decrypt_is_gone(user):
    assert user.http.post("/api/api-keys", json={"provider": "openai",
                                                 "api_key": SECRET}).status_code == 200
    r = user.http.get("/api/api-keys/decrypt/openai")
    assert r.status_code == 410
    assert "never returned in plaintext" in detail(r)
    assert SECRET not in r.text


def test_unauthenticated(world):
    for method, path in (("GET", "/api/api-keys"), ("POST", "/api/api-keys"),
                         ("DELETE", "/api/api-keys/openai"),
                         ("GET", "/api/api-keys/decrypt/openai"),
                         ("POST", "/api/integrations/configure"),
                         ("GET", "/api/integrations/status")):
        assert world.anon.request(method, path, json={}).status_code == 401, path


def test_integrations(user):
    r = user.http.get("/api/integrations/status")
    assert r.status_code == 200
    assert r.json() == {"integrations": {"github": {"configured": False, "metadata": {}},
                                         "atlassian": {"configured": False, "metadata": {}}}}
    pat = "ghp_0123456789abcdefghijABCDEFGHIJ012345"
    r = user.http.post("/api/integrations/configure",
                       json={"provider": "github", "config": {"pat": pat}})
    assert r.status_code == 200, r.text
    assert r.json() == {"provider": "github", "configured": True,
                        "message": "GitHub integration configured successfully"}
    token = "ATATT3xFfGF0-secret-token"
    r = user.http.post("/api/integrations/configure", json={
        "provider": "atlassian",
        "config": {"url": "https://acme.atlassian.net", "email": "me@acme.com",
                   "api_token": token}})
    assert r.status_code == 200, r.text
    st = user.http.get("/api/integrations/status").json()["integrations"]
    assert st["github"] == {"configured": True, "metadata": {"type": "pat"}}
    assert st["atlassian"] == {"configured": True, "metadata": {
        "type": "sso", "url": "https://acme.atlassian.net", "email": "me@acme.com"}}
    for provider, secret in (("github", pat), ("atlassian", token)):
        col = stored(user.id, provider)
        assert col.startswith("v1:") and secret not in col
    # integrations do not show up as provider keys
    keys = user.http.get("/api/api-keys").json()["keys"]
    assert [k["provider"] for k in keys] == PROVIDERS


@pytest.mark.parametrize("body,status", [
    ({"provider": "gitlab", "config": {"pat": "x"}}, 400),
    ({"provider": "github", "config": {}}, 400),
    ({"provider": "github", "config": {"pat": " "}}, 400),
    ({"provider": "atlassian", "config": {"url": "https://a.atlassian.net",
                                          "email": "me@a.com"}}, 400),
    ({"provider": "atlassian", "config": {"url": "javascript:alert(1)", "email": "me@a.com",
                                          "api_token": "t"}}, 400),
    ({"provider": "atlassian", "config": {"url": "https://a.atlassian.net", "email": "nope",
                                          "api_token": "t"}}, 400),
    ({"provider": "github"}, 422),
    ({"provider": "github", "config": "pat"}, 422),
])
def test_integration_validation(user, body, status):
    r = user.http.post("/api/integrations/configure", json=body)
    assert r.status_code == status, r.text
    assert psql_one("SELECT count(*) FROM user_api_keys WHERE user_id = $1", user.id) == "0"


def test_master_key_rotation_reseals_every_stored_key(user):
    """`ideaforgectl keys reseal --old-key-file OLD` (issue 15 item 11): every stored key moves
    from the old master key to the configured one in one transaction; the API then opens them
    with the new key only; a rerun moves nothing; and back again for the rest of the suite."""
    import os
    import secrets

    from auth_helpers import api_config
    from conftest import CONF, RUN_DIR, ctl

    r = user.http.post("/api/api-keys", json={"provider": "openai", "api_key": SECRET})
    assert r.status_code == 200
    before = stored(user.id, "openai")
    old = None
    for line in open(CONF):
        if line.startswith("secrets_key_file"):
            old = line.split("=", 1)[1].strip()
    assert old and os.path.exists(old)
    new = os.path.join(RUN_DIR, "rotated-master.key")
    with open(new, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    os.chmod(new, 0o600)
    try:
        p = ctl("--secrets_key_file=" + new, "keys", "reseal", "--old-key-file", old)
        assert p.stdout.startswith("resealed ") and "already were" in p.stdout
        after = stored(user.id, "openai")
        assert after != before and after.startswith("v1:")
        again = ctl("--secrets_key_file=" + new, "keys", "reseal", "--old-key-file", old)
        assert "resealed 0 stored key(s)" in again.stdout
        with api_config(secrets_key_file=new):
            keys = {k["provider"]: k for k in user.http.get("/api/api-keys").json()["keys"]}
            assert keys["openai"]["masked_key"] == "sk-\u2026abcd"
        # the same key twice is refused; a wrong old key leaves everything as it was
        same = ctl("--secrets_key_file=" + new, "keys", "reseal", "--old-key-file", new,
                   check=False)
        assert same.returncode == 1 and "the same" in same.stderr
    finally:
        back = ctl("--secrets_key_file=" + old, "keys", "reseal", "--old-key-file", new,
                   check=False)
        os.unlink(new)
    assert back.returncode == 0, back.stderr
    assert user.http.get("/api/api-keys").json()["keys"][0]["masked_key"] == "sk-\u2026abcd"
