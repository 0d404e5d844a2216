"""Black-box tests of the platform (issue 2, section 7): health and readiness against real
PostgreSQL and Redis outages, the error contract (404, 405 + Allow, 400, 413, 415, 422, 503 +
Retry-After, always {"detail": ...} and never internals), request ids, the process manager
(SIGKILL of a worker, SIGHUP reload under traffic, graceful SIGTERM with a request in flight),
the database pool's checkout timeout, and `ideaforgectl migrate` being idempotent.

Everything goes through nginx at IDEAFORGE_BASE_URL. Tests that stop a service bring it back in
a `finally`; the graceful-stop test runs last and restarts ideaforge-api exactly as scripts/dev
starts it.

Rate limits: /api/db/phases is rate limited per client address (rl_default_per_min), so the
tests here send it a few dozen requests in all; the traffic generators use /health/live and
/health/ready (operator routes, never limited) for volume.
"""

import concurrent.futures
import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest
import requests

from auth_helpers import api_config
from conftest import (metric, redis_skipped,  # noqa: F401 (issue 14 helpers)
                      
    API_LOG,
    API_PID_FILE,
    BUILD_DIR,
    CONF,
    PG_BIN,
    PGHOST,
    ApiLog,
    api_pids,
    ctl,
    new_http,
    psql,
    psql_one,
    wait_for,
)

PHASES = "/api/db/phases"
LOGIN = "/api/auth/login"

# Words that must never appear in an error body: SQL, libpq, paths, stack traces.
INTERNALS = re.compile(
    r"(?i)(sql|pgres|libpq|postgres|relation|syntax error|errno|segfault|traceback|"
    r"/tmp/|/run/|\.c:\d|hiredis|redis://|connection to server|unix socket|\bfcgi)")


def conf_value(key, default=None):
    """A key of the API's config file (the last assignment wins), or default."""
    val = default
    try:
        with open(CONF) as f:
            for line in f:
                m = re.match(r"\s*([a-z0-9_]+)\s*=\s*(.*?)\s*$", line)
                if m and m.group(1) == key:
                    val = m.group(2).strip("\"'")
    except OSError:
        pass
    return val


def conf_int(key, default):
    return int(conf_value(key, str(default)))


def assert_error(resp, status, detail=None):
    """resp is status with a JSON body {"detail": ...} that shows no internals."""
    assert resp.status_code == status, (resp.status_code, resp.text[:300])
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.startswith("application/json"), (ctype, resp.text[:300])
    body = resp.json()
    assert isinstance(body, dict) and list(body) == ["detail"], body
    text = json.dumps(body["detail"])
    assert not INTERNALS.search(text), "internals in an error body: %s" % text
    if detail is not None:
        assert body["detail"] == detail, body
    return body["detail"]


# ---------------------------------------------------------------------------------------------
# Health and readiness


def test_health_all_up(http):
    r = http.get("/health")
    assert r.status_code == 200, r.text
    h = r.json()
    assert h["status"] == "healthy"
    assert h["services"]["api"] is True
    assert h["services"]["database"] is True
    assert h["services"]["redis"] is True
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", h["timestamp"])
    assert h["version"]
    assert http.get("/health/live").json() == {"status": "alive"}
    r = http.get("/health/ready")
    assert r.status_code == 200 and r.json()["status"] == "ready"


def test_head_answers_like_get(http):
    r = http.head("/health/live")
    assert r.status_code == 200
    assert r.content == b""


def test_service_info(http):
    r = http.get("/api/")
    assert r.status_code == 200
    info = r.json()
    assert info["status"] == "operational"
    assert info["endpoints"]["health"] == "/health"


def test_postgres_down_ready_503_then_recovers_without_restart(http, pg):
    master, workers = api_pids()
    assert master and workers
    assert http.get("/health/ready").status_code == 200
    timeouts0 = metric("ideaforge_db_pool_timeouts_total")
    connect_errors0 = metric("ideaforge_db_connect_errors_total")
    pg.stop()
    try:
        # a client bound far above every fail-fast of the stack: reaching it is a hang
        r = http.get("/health/ready", timeout=30)
        assert r.status_code == 503, r.text
        assert r.json()["status"] == "not_ready"
        assert r.headers.get("Retry-After")

        r = http.get("/health", timeout=5)
        assert r.status_code == 503
        h = r.json()
        assert h["services"]["database"] is False
        assert h["status"] == "unhealthy"

        # a database route: 503 with Retry-After and the fixed text
        r = http.get(PHASES, timeout=30)
        assert_error(r, 503, "Database unavailable")
        assert r.headers.get("Retry-After")
        # noticed without waiting (issue 14: was "took < 1 s"): the refusal came from a failed
        # connection attempt (counted), never from a request waiting for a pool checkout to
        # time out
        wait_for(lambda: metric("ideaforge_db_connect_errors_total") > connect_errors0,
                 timeout=10, message="connect errors counted during the outage")
        assert metric("ideaforge_db_pool_timeouts_total") == timeouts0
        # every request: no hang, no crash (both workers see the outage)
        for _ in range(6):
            assert http.get("/health/ready", timeout=5).status_code == 503
    finally:
        pg.start()
    # back without restarting the API: the pool reconnects by itself (how fast: the chaos
    # suite's pg-restart figure)
    wait_for(lambda: all(new_http().get("/health/ready", timeout=5).status_code == 200
                         for _ in range(4)),
             timeout=15, interval=0.1, message="/health/ready 200 after PostgreSQL restart")
    assert http.get("/health").json()["services"]["database"] is True
    assert http.get(PHASES).status_code == 200
    m2, w2 = api_pids()
    assert m2 == master and w2 == workers, "the API was restarted: %s -> %s" % (
        (master, workers), (m2, w2))


def test_redis_down_degraded_not_failed(http, redis):
    fallbacks0 = metric("ideaforge_redis_fallbacks_total")
    with redis.down():
        r = http.get("/health", timeout=30)
        assert r.status_code == 200, r.text
        h = r.json()
        assert h["services"]["redis"] is False
        assert h["services"]["database"] is True
        assert h["status"] == "degraded"
        # the API keeps serving without Redis
        assert http.get("/health/ready").status_code == 200
        assert http.get(PHASES).status_code == 200
        # answered by the fallback path (issue 14: was "took < 1 s"), counted as such
        wait_for(lambda: metric("ideaforge_redis_fallbacks_total") > fallbacks0, timeout=10,
                 message="Redis fallbacks counted")
    # Redis back: reported healthy again after the backoff (at most 5 s), no restart
    wait_for(lambda: http.get("/health").json()["services"]["redis"] is True,
             timeout=10, interval=0.2, message="redis true in /health after restart")


def test_redis_hung_costs_no_time(http, redis):
    """A frozen Redis (SIGSTOP) costs a request at most the API's own command timeout, and
    only until the worker knows: then requests skip Redis. Asserted without a stopwatch (issue
    14: was "each /health under 1 s"): every answer arrives while Redis is still frozen (so the
    API's own timeout ended the wait), the timeouts are counted, and all but the first request
    of each worker skipped Redis."""
    workers = len(api_pids()[1])
    skipped0 = redis_skipped()
    failures0 = metric("ideaforge_redis_failures_total")
    n = 8
    with redis.hung():
        for _ in range(n):
            r = http.get("/health", timeout=30)
            assert r.status_code == 200
            assert r.json()["services"]["redis"] is False
        wait_for(lambda: metric("ideaforge_redis_failures_total") > failures0, timeout=10,
                 message="the API's own Redis timeout counted")
        wait_for(lambda: redis_skipped() - skipped0 >= n - workers, timeout=10,
                 message="requests skipping the frozen Redis (%d of %d)" % (n - workers, n))


# ---------------------------------------------------------------------------------------------
# The error contract


def test_unknown_path_404_json(http):
    assert_error(http.get("/api/no/such/thing"), 404)
    assert_error(http.get("/health/nope"), 404)
    assert_error(http.post("/api/nope", json={}), 404)


def test_wrong_method_405_with_allow(http):
    r = http.delete("/health")
    assert_error(r, 405)
    allow = {m.strip() for m in r.headers["Allow"].split(",")}
    assert allow == {"GET", "HEAD"}, r.headers["Allow"]
    r = http.post(PHASES, json={})
    assert_error(r, 405)
    assert {m.strip() for m in r.headers["Allow"].split(",")} == {"GET", "HEAD"}
    r = http.get(LOGIN)
    assert_error(r, 405)
    assert "POST" in r.headers["Allow"]


def test_malformed_json_400(http):
    for body in ('{"email": "a@b.co", "password": ', '{"email": \'a@b.co\'}', "[1, 2", "nope",
                 '{"email": "a@b.co"} trailing', '{"email": "a@b.co",}'):
        r = http.post(LOGIN, data=body, headers={"Content-Type": "application/json"})
        assert_error(r, 400)


def test_json_too_deep_400(http):
    deep = "[" * 200 + "]" * 200
    r = http.post(LOGIN, data='{"email": %s}' % deep,
                  headers={"Content-Type": "application/json"})
    assert_error(r, 400)


def test_wrong_content_type_415(http):
    body = json.dumps({"email": "a@b.co", "password": "x"})
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/jsonp"):
        r = http.post(LOGIN, data=body, headers={"Content-Type": ctype})
        assert_error(r, 415)


def test_field_validation_422_fastapi_list(http):
    r = http.post(LOGIN, json={"password": "x"})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, list) and detail
    for item in detail:
        assert set(item) >= {"type", "loc", "msg"}, item
        assert item["loc"][0] == "body"
    assert any(i["loc"] == ["body", "email"] and i["type"] == "missing" for i in detail)


def test_oversized_body_413_json(http):
    # over the 10 MiB cap of nginx and of the API
    big = b'{"email": "' + b"a" * (11 * 1024 * 1024) + b'"}'
    r = http.post(LOGIN, data=big, headers={"Content-Type": "application/json"})
    assert_error(r, 413)


def test_too_many_headers_400(http):
    cap = conf_int("max_headers", 100)
    headers = {"X-Filler-%d" % i: "x" for i in range(cap + 5)}
    r = http.get("/health/live", headers=headers)
    assert_error(r, 400)
    # at the cap it is fine (requests adds a few headers of its own)
    headers = {"X-Filler-%d" % i: "x" for i in range(cap - 10)}
    assert http.get("/health/live", headers=headers).status_code == 200


def test_request_id_header_and_log_line(http):
    log = ApiLog()
    r = http.get("/health/live")
    rid = r.headers.get("X-Request-Id", "")
    assert re.fullmatch(r"[0-9a-f]{32}", rid), r.headers
    # hidden from the API's copy: the client sees exactly one
    r2 = http.get("/api/no/such/path")
    assert "," not in r2.headers.get("X-Request-Id", ",")
    assert r2.headers["X-Request-Id"] != rid
    m = log.wait_for(r"^.* rid=%s .*$" % rid, timeout=5)
    line = m.group(0)
    assert 'route="/health/live"' in line and "status=200" in line, line
    assert re.search(r"\bpid=\d+\b", line) and re.search(r"\bdur_ms=[0-9.]+", line), line
    log.wait_for(r"rid=%s .*status=404" % r2.headers["X-Request-Id"], timeout=5)


def test_client_request_id_cannot_forge_log(http):
    log = ApiLog()
    evil = 'abc status=500 route="/x"\nts=forged'
    r = http.get("/health/live", headers={"X-Request-Id": evil.replace("\n", " ")})
    assert r.status_code == 200
    rid = r.headers["X-Request-Id"]
    log.wait_for(r"rid=%s " % rid, timeout=5)
    assert "forged" not in log.text()


# ---------------------------------------------------------------------------------------------
# The database pool: checkout timeout -> 503 with Retry-After, never a hang


class TableLock:
    """Holds ACCESS EXCLUSIVE on a table in a psql session until released, so every query
    on it blocks while keeping its pool connection."""

    def __init__(self, table):
        from conftest import PG_BIN, PGHOST
        self.p = subprocess.Popen(
            [os.path.join(PG_BIN, "psql"), "-X", "-q", "-At", "-h", PGHOST, "-U", "ideaforge",
             "-d", "ideaforge", "-v", "ON_ERROR_STOP=1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.p.stdin.write("BEGIN; LOCK TABLE %s IN ACCESS EXCLUSIVE MODE; "
                           "SELECT 'locked';\n" % table)
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if "locked" not in line:
            self.release()
            raise RuntimeError("could not lock %s: %s" % (table, self.p.stderr.read()))

    def release(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write("ROLLBACK;\n")
                self.p.stdin.close()
                self.p.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.p.kill()
                self.p.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def _get(path, timeout=30):
    s = new_http()
    try:
        return s.get(path, timeout=timeout), None
    finally:
        s.close()


def test_pool_checkout_timeout_503_retry_after():
    workers = conf_int("workers", 2)
    threads = conf_int("threads", 8)
    size = conf_int("db_pool_size", 4)
    overflow = conf_int("db_max_overflow", 4)
    timeout_s = conf_int("db_pool_timeout_s", 30)
    if timeout_s > 5 or size + overflow >= threads:
        pytest.skip("needs the test config's small pool (db_pool_size=2, db_max_overflow=1, "
                    "db_pool_timeout_s=1): have %d+%d, %d s" % (size, overflow, timeout_s))
    n = workers * threads  # every accept thread busy: each worker holds size+overflow
    # the statements holding connections wait on the lock for as long as it is held (no
    # lock_timeout), so the others can only wait for a checkout
    with api_config(db_lock_timeout_ms=0), TableLock("product_lifecycle_phases") as lock:
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=n)
        timeouts0 = metric("ideaforge_db_pool_timeouts_total")
        try:
            futs = [pool.submit(_get, PHASES) for _ in range(n)]
            # the requests over the pool's capacity fail after the checkout timeout, while
            # the others still wait on the lock: poll for them with a generous bound (the
            # lock is held until the end of the block, so no request can end any other way)
            over = n - workers * (size + overflow)
            wait_for(lambda: sum(f.done() for f in futs) >= over, timeout=timeout_s + 20,
                     interval=0.05, message="the %d requests over the pool's capacity" % over)
            time.sleep(0.5)
            failed = [f.result() for f in futs if f.done()]
            for r, _ in failed:
                assert_error(r, 503, "Database unavailable")
                assert r.headers.get("Retry-After"), r.headers
            # each of them ended by the checkout timeout (issue 14: was "503 within the
            # timeout + 3 s"), counted as such
            wait_for(lambda: metric("ideaforge_db_pool_timeouts_total") - timeouts0
                     >= len(failed), timeout=10, message="pool checkout timeouts counted")
            assert len(failed) >= n - workers * (size + overflow), (
                "%d of %d requests failed; expected those over %d connections" % (
                    len(failed), n, workers * (size + overflow)))
            assert len(failed) < n, "every request failed: none held a connection"
        finally:
            lock.release()
            results = [f.result() for f in futs]
            pool.shutdown()
    # the ones that waited on the lock completed normally once it was released
    ok = [r for r, _ in results if r.status_code == 200]
    assert ok and all("phases" in r.json() for r in ok)
    assert len(ok) + len(failed) == n
    # and the pool is healthy afterwards
    assert _get(PHASES)[0].status_code == 200


# ---------------------------------------------------------------------------------------------
# ideaforgectl migrate


def test_migrate_twice_changes_nothing(ctl):
    before = psql("SELECT version, name, checksum, applied_at FROM schema_migrations "
                  "ORDER BY version")
    tables = psql_one("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    assert before, "no migration recorded"
    p1 = ctl("migrate")
    p2 = ctl("migrate")
    for p in (p1, p2):
        assert "up to date" in p.stdout, p.stdout + p.stderr
        assert "applied" not in p.stdout.replace("up to date", "")
    after = psql("SELECT version, name, checksum, applied_at FROM schema_migrations "
                 "ORDER BY version")
    assert after == before
    assert psql_one("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == tables
    # the six lifecycle phases and the default tenant are there, once
    assert psql_one("SELECT count(*) FROM product_lifecycle_phases") == "6"


CTL_DB = "ideaforge_ctl"
CTL_DB_URL = "host=%s dbname=%s user=ideaforge" % (PGHOST, CTL_DB)


def _pg_admin(sql):
    p = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-At", "-h", PGHOST, "-U",
                        "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


@pytest.fixture
def ctl_db():
    """A private, empty database for migrations that must fail."""
    _pg_admin("DROP DATABASE IF EXISTS %s WITH (FORCE)" % CTL_DB)
    _pg_admin("CREATE DATABASE %s OWNER ideaforge" % CTL_DB)
    yield CTL_DB_URL
    _pg_admin("DROP DATABASE IF EXISTS %s WITH (FORCE)" % CTL_DB)


def test_migrate_reports_postgresql_message_with_file_and_line(ctl_db, tmp_path):
    """A failing migration: PostgreSQL's own message, after the file and the line of the
    failing statement; the file's work rolled back, the files before it recorded."""
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE ok_a (x int);\n")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE bad_b (x int);\n\n"
                                           "SELECT nosuch\n  FROM bad_b;\n")
    p = ctl("--database_url=" + ctl_db, "migrate", "--sql-dir", str(tmp_path), check=False)
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stdout == "applied 0001_ok.sql\n"
    assert p.stderr.startswith('ideaforgectl: %s/0002_bad.sql:3: ERROR:  column "nosuch" '
                               "does not exist\nLINE 3: SELECT nosuch\n" % tmp_path), p.stderr
    assert p.stderr.endswith("^\n") and p.stderr.count("ideaforgectl:") == 1, p.stderr
    q = ctl("--database_url=" + ctl_db, "migrate", "--sql-dir", str(tmp_path), check=False)
    assert q.returncode == 1 and q.stdout == "" and q.stderr == p.stderr, q.stderr


def test_ctl_reports_connection_failure_whole():
    """libpq's whole message (both lines) when the server cannot be reached."""
    p = ctl("--database_url=host=/nonexistent-ctl dbname=x", "user", "activate", "--email",
            "nobody@example.test", check=False)
    assert p.returncode == 1
    assert p.stderr.startswith("ideaforgectl: connect: connection to server on socket "
                               '"/nonexistent-ctl/.s.PGSQL.5432" failed: '), p.stderr
    assert "\n\tIs the server running locally" in p.stderr and p.stderr.count("\n") == 2
    assert p.stdout == ""


def test_ctl_user_errors_in_its_own_words(demo_seed):
    """A duplicate email and an unknown one: the tool's sentences, nothing else."""
    dup = subprocess.run([os.path.join(BUILD_DIR, "ideaforgectl"), "--config", CONF, "user",
                          "add", "--email", demo_seed["email"], "--name", "Dup",
                          "--password-stdin"], input="password12345\n", capture_output=True,
                         text=True, timeout=60)
    assert dup.returncode == 1 and dup.stdout == ""
    assert dup.stderr == "ideaforgectl: a user with email %s already exists\n" % \
        demo_seed["email"]
    none = ctl("user", "activate", "--email", "nobody-here@example.test", check=False)
    assert none.returncode == 1
    assert none.stderr == "ideaforgectl: no user with email nobody-here@example.test\n"


# ---------------------------------------------------------------------------------------------
# Process manager: SIGKILL, SIGHUP reload, graceful SIGTERM


class Traffic:
    """Client threads issuing requests in a loop until stopped; counts failures."""

    def __init__(self, paths, nthreads=6, pace_s=0.0):
        self.paths = paths
        self.pace_s = pace_s
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failures = []
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(nthreads)]

    def _run(self, i):
        s = new_http()
        k = i
        while not self.stop_ev.is_set():
            path = self.paths[k % len(self.paths)]
            k += 1
            try:
                r = s.get(path, timeout=15)
                good = r.status_code == 200
                why = "%s -> %d %s" % (path, r.status_code, r.text[:120])
            except requests.RequestException as e:
                good = False
                why = "%s -> %s" % (path, e)
            with self.lock:
                if good:
                    self.ok += 1
                else:
                    self.failures.append(why)
            if self.pace_s:
                time.sleep(self.pace_s)
        s.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        for t in self.threads:
            t.join(timeout=30)


def _replaced(victim, count):
    """The worker pids once victim is gone and count workers run again, else None."""
    w = api_pids()[1]
    return w if len(w) == count and victim not in w else None


def _all_new(old):
    """The worker pids once none of old is among them, else None."""
    w = api_pids()[1]
    return w if w and not set(w) & set(old) else None


def test_worker_sigkill_is_replaced(http):
    master, workers = api_pids()
    assert master and workers
    log = ApiLog()
    victim = workers[0]
    with Traffic(["/health/live", "/health/ready"], nthreads=4) as t:
        time.sleep(0.3)
        os.kill(victim, signal.SIGKILL)
        # replaced by the master on its own (how fast: the chaos suite's worker-kill figure;
        # issue 14: was "took < 1 s")
        new = wait_for(lambda: _replaced(victim, len(workers)), timeout=10, interval=0.01,
                       message="a replacement worker")
        time.sleep(0.5)  # traffic continues against the new set
        before_kill_ok = t.ok
    assert api_pids()[0] == master
    assert set(new) - set(workers), "no new worker pid"
    # at most the one request the killed worker may have been serving is lost, and only as
    # nginx's JSON 503, never a hang or an HTML page
    assert len(t.failures) <= 1, t.failures
    for f in t.failures:
        assert "503" in f and "detail" in f, f
    assert before_kill_ok > 10
    m = log.wait_for(r"worker \d+ pid %d killed by signal 9" % victim, timeout=10)
    assert m
    for pid in set(new) - set(workers):
        log.wait_for(r"started worker \d+ pid %d " % pid, timeout=10)
    for _ in range(10):
        assert http.get("/health/live").status_code == 200


def test_reload_under_traffic_no_failed_request(http):
    master, workers = api_pids()
    assert master and workers
    log = ApiLog()
    with Traffic(["/health/live", "/health/ready", "/health/live"], nthreads=6) as t, \
            Traffic([PHASES], nthreads=1, pace_s=0.1) as tp:
        time.sleep(0.5)
        os.kill(master, signal.SIGHUP)
        # new workers replace the old ones
        wait_for(lambda: _all_new(workers), timeout=15, interval=0.05,
                 message="old workers replaced after SIGHUP")
        time.sleep(0.5)
    assert t.failures == [] and tp.failures == [], (t.failures + tp.failures)[:5]
    assert t.ok > 50 and tp.ok > 3, (t.ok, tp.ok)
    m2, w2 = api_pids()
    assert m2 == master, "the master was replaced"
    assert len(w2) == len(workers)
    log.wait_for(r"configuration reloaded", timeout=5)


@pytest.fixture
def restarts_api():
    """For tests that stop the API: afterwards it runs again, started as scripts/dev does."""
    yield
    master, _ = api_pids()
    if master is not None:
        return
    listen = conf_value("listen", "")
    if listen.startswith("unix:"):
        try:
            os.unlink(listen[5:])
        except OSError:
            pass
    with open(API_LOG, "ab") as logf:
        p = subprocess.Popen(["setsid", os.path.join(BUILD_DIR, "ideaforge-api"), "--config",
                              CONF], stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
    # setsid (the program) execs in place when it is not a group leader: same pid
    with open(API_PID_FILE, "w") as f:
        f.write("%d\n" % p.pid)
    wait_for(_live_ok, timeout=20, interval=0.1, message="API back after restart")


def _live_ok():
    try:
        return new_http().get("/health/live", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_ready_is_503_while_the_schema_is_older_than_the_build():
    """A new version takes no traffic before its migrations ran (issue 15 item 3): readiness
    names the missing migration; liveness is unaffected."""
    top = psql_one("SELECT max(version) FROM schema_migrations")
    # the one before it (migration numbers may have gaps while branches are reconciled)
    prev = psql_one("SELECT max(version) FROM schema_migrations WHERE version < $1", top)
    row = psql("SELECT version, name, checksum, applied_at FROM schema_migrations "
               "WHERE version = $1", top)[0]
    psql("DELETE FROM schema_migrations WHERE version = $1", top)
    try:
        r = new_http().get("/health/ready")
        assert r.status_code == 503, r.text
        j = r.json()
        assert j["status"] == "not_ready"
        assert j["schema_required"] == int(top)
        assert j["schema_version"] == int(prev)
        assert "run ideaforgectl migrate" in j["detail"]
        assert r.headers.get("Retry-After")
        assert new_http().get("/health/live").status_code == 200
    finally:
        psql("INSERT INTO schema_migrations (version, name, checksum, applied_at) "
             "VALUES ($1, $2, $3, $4)", *row)
    assert new_http().get("/health/ready").status_code == 200


def test_graceful_stop_finishes_inflight_request(restarts_api):
    """Last in this file on purpose: SIGTERM stops the API (the fixture restarts it)."""
    from auth_helpers import _reload
    # the request must wait on the lock until it is released (no lock_timeout); the fixture
    # restarts the API with the original configuration
    with open(CONF) as f:
        original = f.read()
    with open(CONF, "w") as f:
        f.write(original + "\ndb_lock_timeout_ms = 0\n")
    try:
        _reload()
    finally:
        with open(CONF, "w") as f:
            f.write(original)
    master, workers = api_pids()
    assert master and workers
    log = ApiLog()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    with TableLock("product_lifecycle_phases") as lock:
        fut = pool.submit(_get, PHASES, 60)
        # the request is inside a worker, blocked on the lock
        wait_for(lambda: psql_one(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE '%product_lifecycle_phases%'") != "0",
            timeout=5, message="the slow request to reach PostgreSQL")
        os.kill(master, signal.SIGTERM)
        log.wait_for(r"stopping", timeout=5)
        time.sleep(1.0)
        assert not fut.done(), "the in-flight request ended before its query could finish"
        # the workers have not gone away under it
        assert api_pids()[0] == master
        lock.release()
        r, took = fut.result(timeout=30)
    pool.shutdown()
    assert r.status_code == 200, r.text
    assert len(r.json()["phases"]) == 6
    # then the master exits
    wait_for(lambda: api_pids()[0] is None, timeout=15, message="the master to exit")
    text = log.text()
    assert "killed by signal 9" not in text
    assert 'status=200' in text

