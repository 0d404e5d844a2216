"""The session store's properties (ARCHITECTURE.md section 3, issue "Tokens and sessions"),
each with a test that fails if it breaks, through nginx against the real PostgreSQL and Redis:

  * a token issued by any worker is accepted by every worker, and logout revokes it on every
    worker at once;
  * the hot path costs no SQL (Redis vouches for the session);
  * with Redis stopped or hung, logins and authenticated requests keep working from
    PostgreSQL, without 5xx and without paying Redis's timeout on every request;
  * a token logged out while Redis was down (or hung) stays rejected after Redis comes back,
    also when the revocation never reached Redis at all;
  * `ideaforgectl user deactivate` ends all of the user's sessions at once;
  * Redis evicting keys (allkeys-lru) never logs anyone out and never lets a revoked token in.
"""

import json
import time
import uuid

import pytest

from auth_helpers import (bearer, burst, claims_of, clear_rate_limits, ctl_run, login, login_ok, me,
                          new_user, post, rid_pids, session_row)
from conftest import (ApiLog, api_pids, new_http, psql, psql_one, redis_cmd, redis_skipped,
                      wait_for)


@pytest.fixture(autouse=True)
def _setup(demo_seed):
    clear_rate_limits()
    yield
    clear_rate_limits()


def _spread(token, n=48, expect=200, tries=20):
    """Requests with token in bursts of n simultaneous connections until at least two worker
    processes have answered (one worker's threads cannot take a whole burst); every answer must
    have status `expect`. Returns the set of worker pids seen."""
    pids = set()
    for _ in range(tries):
        log = ApiLog()
        res = burst("/api/auth/me", bearer(token), n=n)
        for status, hdrs, body in res:
            assert status == expect, body
        pids |= set(rid_pids([h["x-request-id"] for _, h, _ in res], log).values())
        if len(pids) >= 2:
            break
    return pids


def _cached(tok):
    """Waits until Redis vouches for tok (after an outage a worker may take a moment to see
    Redis again); returns its jti."""
    jti = claims_of(tok)["jti"]

    def ok():
        assert me(tok).status_code == 200
        return redis_cmd("EXISTS", "sess:" + jti) == "1"

    wait_for(ok, timeout=10, interval=0.05, message="session cached in Redis")
    return jti


# ---------------------------------------------------------------------------------------------
# every worker, one store


def test_token_from_any_worker_is_accepted_by_every_worker():
    """Logins served by both workers (simultaneous, so that both take some); each token is
    then accepted by both workers."""
    u = new_user()
    by_pid = {}
    for _ in range(10):
        log = ApiLog()
        res = burst("/api/auth/login", n=12, method="POST",
                    body={"email": u.email, "password": u.password})
        assert all(st == 200 for st, _, _ in res), [b for st, _, b in res if st != 200]
        pids = rid_pids([h["x-request-id"] for _, h, _ in res], log)
        for st, h, b in res:
            by_pid.setdefault(pids[h["x-request-id"]], json.loads(b)["token"])
        if len(by_pid) >= 2:
            break
    assert len(by_pid) >= 2, "logins did not reach two workers"
    toks = list(by_pid.values())
    for t in toks:
        pids = _spread(t)
        assert len(pids) >= 2, "requests did not reach two workers: %s" % pids


def test_logout_revokes_on_every_worker_at_once():
    u = new_user()
    tok = login_ok(u.email, u.password)
    assert len(_spread(tok)) >= 2  # cached, and used on every worker
    assert post("/api/auth/logout", tok).status_code == 200
    assert len(_spread(tok, expect=401)) >= 2


def _entry_ttl(jti):
    return int(redis_cmd("TTL", "sess:" + jti))


def test_hot_path_runs_no_sql_on_sessions():
    """A request that Redis vouches for never asks PostgreSQL: every PostgreSQL-resolved
    session with Redis up is followed by a refill, which resets the entry's TTL to
    session_cache_ttl_s; on the hot path the TTL only runs down."""
    u = new_user()
    tok = login_ok(u.email, u.password)
    s = new_http()
    jti = _cached(tok)  # first use: PostgreSQL, then the refill
    full = _entry_ttl(jti)
    assert 590 <= full <= 600, full
    time.sleep(2.1)
    for _ in range(50):
        assert me(tok, s).status_code == 200
    _spread(tok)  # on every worker
    assert _entry_ttl(jti) <= full - 2


def test_cache_miss_asks_postgresql_then_refills():
    u = new_user()
    tok = login_ok(u.email, u.password)
    jti = _cached(tok)
    time.sleep(1.1)
    redis_cmd("DEL", "sess:" + jti)
    assert me(tok).status_code == 200
    assert _entry_ttl(jti) >= 599


# ---------------------------------------------------------------------------------------------
# Redis stopped or hung


def _answers(tok, n=40):
    """n sequential GET /api/auth/me, each with a client bound far above Redis's command
    timeout (reaching it would be a hang); returns how many were made."""
    s = new_http()
    for _ in range(n):
        r = me(tok, s)
        assert r.status_code == 200, r.text
    return n


@pytest.mark.parametrize("mode", ["stopped", "hung"])
def test_redis_outage_logins_and_sessions_work_from_postgresql(redis, mode):
    u = new_user()
    tok = login_ok(u.email, u.password)
    assert me(tok).status_code == 200
    outage = redis.down if mode == "stopped" else redis.hung
    workers = len(api_pids()[1])
    with outage():
        # a fresh login and the old token both work, served by every worker
        t2 = login_ok(u.email, u.password)
        skipped0 = redis_skipped()
        n = _answers(tok) + _answers(t2)
        pids = _spread(tok, n=30)
        assert len(pids) >= 2
        # no request pays Redis's command timeout (100 ms) once the outage is known: the
        # first request of each worker may; the rest answer from PostgreSQL without trying
        # Redis. Counted, not timed (issue 14: was "at most 10 % of the requests above 90 ms
        # and a median under 50 ms"): every request but the first of each worker skipped
        # Redis at least once (a dead Redis without the backoff would be tried, and fail, on
        # every request instead)
        wait_for(lambda: redis_skipped() - skipped0 >= n - workers, timeout=10,
                 message="requests answered without trying Redis (%d of %d)" % (
                     n - workers, n))
        # a bad password is still a 401, logout still works
        assert login(u.email, "wrong").status_code == 401
        assert post("/api/auth/logout", t2).status_code == 200
        assert me(t2).status_code == 401
    # back to normal
    wait_for(lambda: me(tok).status_code == 200, timeout=10, message="token after the outage")
    assert me(t2).status_code == 401


@pytest.mark.parametrize("mode", ["stopped", "hung"])
def test_logout_during_outage_stays_revoked_after_redis_returns(redis, mode):
    u = new_user()
    tok = login_ok(u.email, u.password)
    _spread(tok, n=20)
    jti = _cached(tok)
    outage = redis.down if mode == "stopped" else redis.hung
    with outage():
        r = post("/api/auth/logout", tok)
        assert r.status_code == 200
        assert session_row(jti) == "t"
        assert me(tok).status_code == 401
    # Redis is back, with whatever it held before (a paused Redis keeps its keys); every
    # worker, also once it sees Redis again, refuses the token
    for _ in range(5):
        _spread(tok, n=16, expect=401)
        time.sleep(0.2)


def test_revocation_that_never_reached_redis_stays_revoked(redis):
    """The worst case of a missed write: the session is revoked in PostgreSQL while Redis is
    hung and Redis never hears of it (no logout request at all). The cache's generation lease
    (lib/sess.h rule 4) expires during the hang, so the stale entry is dead when Redis
    answers again."""
    u = new_user()
    tok = login_ok(u.email, u.password)
    _spread(tok, n=20)
    jti = _cached(tok)
    with redis.hung():
        psql("UPDATE user_sessions SET revoked_at = now() WHERE id = $1", jti)
        time.sleep(0.5)
    assert redis_cmd("EXISTS", "sess:" + jti) == "1"  # the stale entry is still there...
    _spread(tok, n=30, expect=401)                      # ...and trusted by no worker


def test_revoked_in_db_with_redis_up_is_cached_until_app_revokes():
    """Documents the contract: PostgreSQL is the authority, but a revocation must go through
    the application or ideaforgectl (which also tell Redis). Through the API it is immediate."""
    u = new_user()
    tok = login_ok(u.email, u.password)
    assert me(tok).status_code == 200
    assert post("/api/auth/logout", tok).status_code == 200
    assert me(tok).status_code == 401


# ---------------------------------------------------------------------------------------------
# deactivation


def test_deactivate_ends_every_session_at_once():
    u = new_user()
    toks = [login_ok(u.email, u.password) for _ in range(3)]
    for t in toks:
        _spread(t, n=10)
    p = ctl_run("user", "deactivate", "--email", u.email)
    assert p.returncode == 0, p.stderr
    assert "3 session(s) revoked" in p.stdout
    for t in toks:
        r = me(t)
        assert r.status_code == 401
        assert r.json()["detail"] in ("User not found or inactive", "Invalid or expired token")
        _spread(t, n=10, expect=401)
    assert login(u.email, u.password).status_code == 403
    # reactivated: old sessions stay dead, a new login works
    assert ctl_run("user", "activate", "--email", u.email).returncode == 0
    for t in toks:
        assert me(t).status_code == 401
    assert me(login_ok(u.email, u.password)).status_code == 200


def test_deactivate_while_redis_hung_still_ends_sessions(redis):
    u = new_user()
    tok = login_ok(u.email, u.password)
    _spread(tok, n=10)
    with redis.hung():
        p = ctl_run("user", "deactivate", "--email", u.email)
        assert p.returncode == 0, p.stderr
    _spread(tok, n=20, expect=401)


def test_ctl_passwd_ends_sessions():
    u = new_user()
    tok = login_ok(u.email, u.password)
    _spread(tok, n=10)
    p = ctl_run("user", "passwd", "--email", u.email, "--password-stdin",
                stdin="a-new-password-1\n")
    assert p.returncode == 0, p.stderr
    _spread(tok, n=10, expect=401)
    assert login_ok(u.email, "a-new-password-1")


# ---------------------------------------------------------------------------------------------
# eviction


def _session_keys():
    keys = []
    for pattern in ("sess:*", "urev:*"):
        keys += redis_cmd("--scan", "--pattern", pattern).split()
    return keys


def test_evicted_cache_keys_never_log_anyone_out_nor_resurrect():
    live_u, dead_u = new_user(), new_user()
    live = login_ok(live_u.email, live_u.password)
    dead = login_ok(dead_u.email, dead_u.password)
    _spread(live, n=10)
    _spread(dead, n=10)
    assert post("/api/auth/logout", dead).status_code == 200
    # every key of the cache disappears, as if evicted: entries, revocation markers, generation
    keys = _session_keys()
    assert keys
    redis_cmd("DEL", *keys)
    _spread(live, n=20, expect=200)
    _spread(dead, n=20, expect=401)
    # and once more with only the revocation markers evicted
    redis_cmd("DEL", *redis_cmd("--scan", "--pattern", "urev:*").split())
    _spread(live, n=10, expect=200)
    _spread(dead, n=10, expect=401)


def test_real_lru_eviction_under_memory_pressure(redis):
    """Fill Redis past a small maxmemory (allkeys-lru evicts for real), then every session still
    behaves: live ones accepted, revoked ones refused."""
    users = [new_user() for _ in range(3)]
    toks = [login_ok(u.email, u.password) for u in users]
    for t in toks:
        _spread(t, n=5)
    assert post("/api/auth/logout", toks[0]).status_code == 200
    old_max = redis_cmd("CONFIG", "GET", "maxmemory").split()[-1]
    used = int(redis_cmd("INFO", "memory").split("used_memory:")[1].split()[0])
    try:
        redis_cmd("CONFIG", "SET", "maxmemory", str(used + 2 * 1024 * 1024))
        blob = "x" * 4096
        evicted0 = int(redis_cmd("INFO", "stats").split("evicted_keys:")[1].split()[0])
        pipe = "".join("SET junk:%d:%s %s\r\n" % (i, uuid.uuid4().hex, blob)
                       for i in range(3000))
        import subprocess
        from conftest import REDIS_PORT
        subprocess.run(["redis-cli", "-p", str(REDIS_PORT), "--pipe"], input=pipe.encode(),
                       capture_output=True, timeout=60, check=True)
        evicted = int(redis_cmd("INFO", "stats").split("evicted_keys:")[1].split()[0])
        assert evicted - evicted0 > 100, "no eviction happened"
        for t in toks[1:]:
            _spread(t, n=10, expect=200)
        _spread(toks[0], n=10, expect=401)
    finally:
        redis_cmd("CONFIG", "SET", "maxmemory", old_max)
        junk = redis_cmd("--scan", "--pattern", "junk:*").split()
        for i in range(0, len(junk), 500):
            redis_cmd("DEL", *junk[i:i + 500])
