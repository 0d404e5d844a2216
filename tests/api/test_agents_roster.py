"""The agent roster as the UI reads it (API.md 1.1, 5.2, 5.4): one table, no duplicates, the
static phase table of the screens, and prompts of our own."""

import pytest

from auth_helpers import login_ok, new_user
from conftest import new_http

ROSTER = {"ideation", "research", "analysis", "requirements", "prd_authoring", "strategy",
          "validation", "summary", "scoring", "export", "v0", "lovable", "github_mcp",
          "atlassian_mcp", "rag"}

BY_PHASE = {
    "Ideation": {"ideation", "research", "rag"},
    "Market Research": {"research", "analysis", "rag"},
    "Requirements": {"analysis", "prd_authoring", "rag"},
    "Design": {"ideation", "v0", "lovable", "rag"},
    "Development Planning": {"prd_authoring", "github_mcp", "atlassian_mcp", "rag"},
    "Go-to-Market": {"summary", "scoring", "export", "rag"},
}


@pytest.fixture(scope="module")
def s():
    u = new_user()
    h = new_http()
    h.headers["Authorization"] = "Bearer " + login_ok(u.email, u.password)
    return h


def test_roster_lists_every_agent_once(s):
    r = s.get("/api/agents")
    assert r.status_code == 200, r.text
    j = r.json()
    types = [a["type"] for a in j["agents"]]
    assert sorted(types) == sorted(ROSTER) and len(types) == len(set(types)) == j["count"]
    for a in j["agents"]:
        assert set(a) == {"type", "name", "role"} and a["name"].endswith("Agent")


def test_capabilities_describe_each_agent_by_its_prompt(s):
    j = s.get("/api/agents/capabilities").json()
    assert j["count"] == len(ROSTER) == len(j["capabilities"])
    by = {c["agent_type"]: c for c in j["capabilities"]}
    assert set(by) == ROSTER
    for c in j["capabilities"]:
        assert c["capabilities"] and c["confidence_scores"] == {}
        assert 0 < len(c["description"]) <= 203
    # the prompts are ours and specific: the requirements agent writes FR/NFR and
    # Given/When/Then, the scoring agent answers strict JSON with weighted dimensions
    assert "FR-01" in by["requirements"]["description"] or "functional" in \
        by["requirements"]["description"]
    assert by["scoring"]["description"].startswith("You are the product scoring agent")


@pytest.mark.parametrize("phase", sorted(BY_PHASE))
def test_by_phase_is_the_static_table_of_the_screens(s, phase):
    j = s.get("/api/agents/by-phase", params={"phase_name": phase}).json()
    assert j["phase"] == phase
    assert {a["role"] for a in j["agents"]} == BY_PHASE[phase] and j["count"] == len(
        BY_PHASE[phase])
    for a in j["agents"]:
        assert set(a) == {"role", "name", "description", "icon", "isActive"}
        assert a["isActive"] is True and a["icon"]


def test_by_phase_without_a_phase_is_all_twelve_and_unknown_is_empty(s):
    j = s.get("/api/agents/by-phase").json()
    assert j["phase"] is None and j["count"] == 12
    assert {a["role"] for a in j["agents"]} == set().union(*BY_PHASE.values())
    j = s.get("/api/agents/by-phase", params={"phase_name": "Nope"}).json()
    assert j == {"phase": "Nope", "agents": [], "count": 0}
