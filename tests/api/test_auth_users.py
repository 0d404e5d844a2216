"""/api/users/profile and /api/users/preferences through nginx (API.md 1.3): shapes, partial
updates, enumerations (400 as in the original), types and unknown fields (422), and the
preferences object stored as real jsonb (the original stored Python's str() of it)."""

import pytest

from auth_helpers import bearer, clear_rate_limits, login_ok, new_user
from conftest import new_http, psql, psql_one


@pytest.fixture(autouse=True)
def _clean(demo_seed):
    clear_rate_limits()
    yield


@pytest.fixture
def user():
    u = new_user(name="Pro File")
    u.token = login_ok(u.email, u.password)
    s = new_http()
    s.headers.update(bearer(u.token))
    u.s = s
    return u


# ---------------------------------------------------------------------------------------------
# profile


def test_profile_get_shape(user):
    r = user.s.get("/api/users/profile")
    assert r.status_code == 200, r.text
    b = r.json()
    assert set(b) == {"id", "email", "full_name", "persona", "avatar_url", "tenant_id",
                      "created_at", "updated_at", "last_login_at"}
    assert b["id"] == user.id and b["email"] == user.email
    assert b["full_name"] == "Pro File" and b["persona"] == "product_manager"
    assert b["avatar_url"] is None and b["last_login_at"] is not None


def test_profile_put_partial_update(user):
    r = user.s.put("/api/users/profile", json={"persona": "leadership"})
    assert r.status_code == 200, r.text
    assert r.json() == {"id": user.id, "email": user.email, "full_name": "Pro File",
                        "persona": "leadership", "avatar_url": None}
    r = user.s.put("/api/users/profile",
                   json={"full_name": "New Name", "avatar_url": "https://x.example/a.png"})
    assert r.status_code == 200
    assert r.json()["persona"] == "leadership"
    row = psql("SELECT full_name, persona, avatar_url FROM user_profiles WHERE id = $1",
               user.id)
    assert row == [("New Name", "leadership", "https://x.example/a.png")]
    # null leaves a field as it is (the original's behaviour)
    r = user.s.put("/api/users/profile", json={"full_name": None, "persona": "tech_lead"})
    assert r.status_code == 200
    assert r.json()["full_name"] == "New Name"
    # /me reflects it
    assert user.s.get("/api/auth/me").json()["persona"] == "tech_lead"


@pytest.mark.parametrize("body,status,detail", [
    ({"persona": "ceo"}, 400, "Invalid persona"),
    ({}, 400, "No fields to update"),
    ({"full_name": None}, 400, "No fields to update"),
])
def test_profile_put_refusals_400(user, body, status, detail):
    r = user.s.put("/api/users/profile", json=body)
    assert r.status_code == status, r.text
    assert r.json() == {"detail": detail}
    assert psql_one("SELECT persona FROM user_profiles WHERE id = $1", user.id) == \
        "product_manager"


@pytest.mark.parametrize("body,loc", [
    ({"persona": 5}, "persona"),
    ({"full_name": ["a"]}, "full_name"),
    ({"full_name": "x" * 201}, "full_name"),
    ({"email": "new@example.test"}, "email"),
    ({"tenant_id": "00000000-0000-0000-0000-000000000002"}, "tenant_id"),
    ({"is_active": False}, "is_active"),
])
def test_profile_put_types_and_unknown_fields_422(user, body, loc):
    r = user.s.put("/api/users/profile", json=body)
    assert r.status_code == 422, r.text
    assert any(e["loc"] == ["body", loc] for e in r.json()["detail"]), r.text
    row = psql("SELECT email, tenant_id, is_active FROM user_profiles WHERE id = $1", user.id)
    assert row == [(user.email, "00000000-0000-0000-0000-000000000001", "t")]


def test_profile_put_body_must_be_an_object(user):
    r = user.s.put("/api/users/profile", data="[1]", headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 422)
    r = user.s.put("/api/users/profile", data="persona=x",
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415


# ---------------------------------------------------------------------------------------------
# preferences


def test_preferences_get_creates_defaults(user):
    psql("DELETE FROM user_preferences WHERE user_id = $1", user.id)
    r = user.s.get("/api/users/preferences")
    assert r.status_code == 200, r.text
    assert r.json() == {"theme": "light", "language": "en", "notifications_enabled": True,
                        "email_notifications": False, "preferences": {}}
    assert psql_one("SELECT count(*) FROM user_preferences WHERE user_id = $1", user.id) == "1"
    assert user.s.get("/api/users/preferences").status_code == 200


def test_preferences_put_partial_and_jsonb(user):
    r = user.s.put("/api/users/preferences", json={"theme": "retro",
                                                    "preferences": {"a": [1, 2], "b": {"c": "d"}}})
    assert r.status_code == 200, r.text
    assert r.json() == {"theme": "retro", "language": "en", "notifications_enabled": True,
                        "email_notifications": False,
                        "preferences": {"a": [1, 2], "b": {"c": "d"}}}
    assert psql_one("SELECT preferences->'b'->>'c' FROM user_preferences WHERE user_id = $1",
                    user.id) == "d"
    assert psql_one("SELECT jsonb_typeof(preferences) FROM user_preferences WHERE user_id = $1",
                    user.id) == "object"
    r = user.s.put("/api/users/preferences", json={"email_notifications": True,
                                                    "language": "pt-BR"})
    assert r.status_code == 200
    b = r.json()
    assert b["theme"] == "retro" and b["email_notifications"] is True
    assert b["language"] == "pt-BR" and b["preferences"] == {"a": [1, 2], "b": {"c": "d"}}
    assert user.s.get("/api/users/preferences").json() == b


def test_preferences_put_without_a_row_creates_it(user):
    psql("DELETE FROM user_preferences WHERE user_id = $1", user.id)
    r = user.s.put("/api/users/preferences", json={"notifications_enabled": False})
    assert r.status_code == 200, r.text
    assert r.json() == {"theme": "light", "language": "en", "notifications_enabled": False,
                        "email_notifications": False, "preferences": {}}


@pytest.mark.parametrize("body,status,detail", [
    ({"theme": "neon"}, 400, "Invalid theme"),
    ({"language": "not a language"}, 400, "Invalid language"),
    ({}, 400, "No fields to update"),
])
def test_preferences_put_refusals_400(user, body, status, detail):
    r = user.s.put("/api/users/preferences", json=body)
    assert r.status_code == status, r.text
    assert r.json() == {"detail": detail}


@pytest.mark.parametrize("body,loc", [
    ({"preferences": "not-an-object"}, "preferences"),
    ({"preferences": [1, 2]}, "preferences"),
    ({"notifications_enabled": "yes"}, "notifications_enabled"),
    ({"email_notifications": 1}, "email_notifications"),
    ({"theme": 3}, "theme"),
    ({"colour": "red"}, "colour"),
    ({"user_id": "00000000-0000-0000-0000-000000000000"}, "user_id"),
])
def test_preferences_put_types_and_unknown_fields_422(user, body, loc):
    r = user.s.put("/api/users/preferences", json=body)
    assert r.status_code == 422, r.text
    assert any(e["loc"] == ["body", loc] for e in r.json()["detail"]), r.text


def test_preferences_are_per_user(user):
    other = new_user()
    ot = login_ok(other.email, other.password)
    assert user.s.put("/api/users/preferences", json={"theme": "dark"}).status_code == 200
    r = new_http().get("/api/users/preferences", headers=bearer(ot))
    assert r.json()["theme"] == "light"
