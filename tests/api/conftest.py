"""Fixtures and helpers for the black-box API tests (tests/api/).

The tests talk HTTP to nginx in front of ideaforge-api, against the real PostgreSQL and Redis of
the test stack that `scripts/dev test` starts. Everything is located through environment
variables that scripts/dev and tests/run-suites export; the defaults are that same test stack
in this checkout, so `python3 -m pytest tests/api` works against a stack left running.

    IDEAFORGE_BASE_URL      http://127.0.0.1:18080
    IDEAFORGE_RUN_DIR       run/test (configs, logs, redis.conf, redis.pid, api.pid)
    IDEAFORGE_PGHOST        /tmp/ideaforge-pg-test-<hash>: PostgreSQL data dir and socket dir
    IDEAFORGE_REDIS_PORT    16390
    IDEAFORGE_BUILD_DIR     build (ideaforgectl, ideaforge-api)
    IDEAFORGE_CONF          run/test/ideaforge.conf
    IDEAFORGE_API_PID_FILE  run/test/api.pid
    IDEAFORGE_PG_BIN        /usr/lib/postgresql/<newest>/bin

Helpers that stop or freeze a service always bring it back in a `finally`, so a failing test
never leaves the stack broken for the tests after it.
"""

import contextlib
import glob
import hashlib
import os
import re
import signal
import subprocess
import time
from urllib.parse import urljoin

import pytest
import requests

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _pg_bin():
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda d: [int(x) if x.isdigit() else x
                                 for x in re.split(r"(\d+)", d)])
    return dirs[-1] if dirs else "/usr/lib/postgresql/15/bin"


BASE_URL = os.environ.get("IDEAFORGE_BASE_URL", "http://127.0.0.1:18080").rstrip("/")
RUN_DIR = os.environ.get("IDEAFORGE_RUN_DIR", os.path.join(TOP, "run", "test"))
PGHOST = os.environ.get(
    "IDEAFORGE_PGHOST",
    "/tmp/ideaforge-pg-test-" + hashlib.sha256(TOP.encode()).hexdigest()[:8])
REDIS_PORT = int(os.environ.get("IDEAFORGE_REDIS_PORT", "16390"))
BUILD_DIR = os.environ.get("IDEAFORGE_BUILD_DIR", os.path.join(TOP, "build"))
CONF = os.environ.get("IDEAFORGE_CONF", os.path.join(RUN_DIR, "ideaforge.conf"))
API_PID_FILE = os.environ.get("IDEAFORGE_API_PID_FILE", os.path.join(RUN_DIR, "api.pid"))
PG_BIN = os.environ.get("IDEAFORGE_PG_BIN", _pg_bin())

API_LOG = os.path.join(RUN_DIR, "api.log")
REDIS_CONF = os.path.join(RUN_DIR, "redis.conf")
REDIS_PID_FILE = os.path.join(RUN_DIR, "redis.pid")

DEMO_EMAIL = "admin@ideaforge.ai"
DEMO_PASSWORD = "password123"

# psql output framing: unit/record separators, and a NULL marker that no text value contains.
_FS = "\x1f"
_RS = "\x1e"
_NULL = "\x02NULL\x02"

# ---------------------------------------------------------------------------------------------
# HTTP


class Http(requests.Session):
    """requests.Session with the stack's base URL and a default timeout.

    http.get("/api/products") goes to BASE_URL + path; absolute URLs pass through unchanged.
    """

    def __init__(self, base_url, timeout=30):
        super().__init__()
        self.base_url = base_url
        self.default_timeout = timeout

    def request(self, method, url, *args, **kwargs):
        if url.startswith("/"):
            url = urljoin(self.base_url + "/", url.lstrip("/"))
        kwargs.setdefault("timeout", self.default_timeout)
        return super().request(method, url, *args, **kwargs)


@pytest.fixture(scope="session")
def base_url():
    """Base URL of the stack under test, without a trailing slash."""
    return BASE_URL


@pytest.fixture
def http(base_url):
    """A fresh session (no cookies) per test; relative paths are joined to base_url."""
    s = Http(base_url)
    yield s
    s.close()


def new_http():
    """Another independent session, for tests that need two clients at once."""
    return Http(BASE_URL)


def login(session, email=DEMO_EMAIL, password=DEMO_PASSWORD):
    """POST /api/auth/login on session; returns the response (cookie kept by the session)."""
    return session.post("/api/auth/login", json={"email": email, "password": password})


# ---------------------------------------------------------------------------------------------
# PostgreSQL


def psql(sql, *params):
    """Runs sql on the test database as role ideaforge; returns the rows as tuples of str.

    Parameters are written $1, $2, ... in sql and passed as psql variables, which psql quotes
    as literals (:'p1'), so values never need escaping. None becomes SQL NULL; NULL values in
    the result come back as None. Raises RuntimeError (with psql's message) on any SQL error.
    """
    argv = [os.path.join(PG_BIN, "psql"), "-X", "-q", "-At",
            "-h", PGHOST, "-U", "ideaforge", "-d", "ideaforge",
            "-v", "ON_ERROR_STOP=1", "-F", _FS, "-R", _RS, "-P", "null=" + _NULL]

    def sub(m):
        i = int(m.group(1))
        if i < 1 or i > len(params):
            raise IndexError("psql: $%d has no parameter" % i)
        return "NULL" if params[i - 1] is None else ":'p%d'" % i

    text = re.sub(r"\$(\d+)\b", sub, sql)
    for i, v in enumerate(params, 1):
        if v is not None:
            if isinstance(v, bool):
                v = "true" if v else "false"
            argv += ["-v", "p%d=%s" % (i, v)]
    p = subprocess.run(argv, input=text + "\n", capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("psql failed (%d): %s" % (p.returncode, p.stderr.strip()))
    out = p.stdout
    if out.endswith("\n"):
        out = out[:-1]
    if out == "":
        return []
    rows = []
    for rec in out.split(_RS):
        rec = rec.lstrip("\n")
        if rec == "":
            continue
        rows.append(tuple(None if v == _NULL else v for v in rec.split(_FS)))
    return rows


def psql_one(sql, *params):
    """The first column of the first row, or None when there is no row."""
    rows = psql(sql, *params)
    return rows[0][0] if rows else None


def _as_postgres(*argv, timeout=60):
    return subprocess.run(["runuser", "-u", "postgres", "--", *argv], cwd="/",
                          capture_output=True, text=True, timeout=timeout)


def pg_stop():
    """Stops PostgreSQL (fast shutdown: sessions are cut, as in a crash of the server)."""
    p = _as_postgres(os.path.join(PG_BIN, "pg_ctl"), "-D", PGHOST, "-w", "-t", "30",
                     "stop", "-m", "fast")
    if p.returncode != 0 and "is the server running" not in p.stderr:
        raise RuntimeError("pg_ctl stop: " + p.stderr.strip())


def pg_start():
    """Starts PostgreSQL and waits until it accepts connections."""
    p = _as_postgres(os.path.join(PG_BIN, "pg_ctl"), "-D", PGHOST, "-l",
                     os.path.join(PGHOST, "postgres.log"), "-w", "-t", "30", "start")
    if p.returncode != 0 and "another server might be running" not in p.stderr:
        raise RuntimeError("pg_ctl start: " + (p.stderr or p.stdout).strip())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if subprocess.run([os.path.join(PG_BIN, "pg_isready"), "-q", "-h", PGHOST]).returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError("PostgreSQL did not come back within 30 s")


@contextlib.contextmanager
def pg_down():
    """`with pg_down():` runs the block with PostgreSQL stopped; it is always restarted."""
    pg_stop()
    try:
        yield
    finally:
        pg_start()


# ---------------------------------------------------------------------------------------------
# Redis


def _redis_cli(*args, timeout=5):
    return subprocess.run(["redis-cli", "-p", str(REDIS_PORT), *args],
                          capture_output=True, text=True, timeout=timeout)


def redis_cmd(*args):
    """Runs one Redis command with redis-cli; returns its stdout stripped."""
    p = _redis_cli(*args)
    if p.returncode != 0:
        raise RuntimeError("redis-cli %s: %s" % (" ".join(args), p.stderr.strip()))
    return p.stdout.strip()


def redis_pid():
    """Pid of the test Redis from its pid file, or None when it is not running."""
    return _live_pid(REDIS_PID_FILE, "redis-server")


def redis_up():
    try:
        return _redis_cli("ping", timeout=2).stdout.strip() == "PONG"
    except subprocess.TimeoutExpired:
        return False


def redis_stop():
    """Stops Redis (its data is lost: the test stack runs it without persistence)."""
    pid = redis_pid()
    if pid is None:
        return
    os.kill(pid, signal.SIGCONT)
    os.kill(pid, signal.SIGTERM)
    _wait_gone(pid, 10)


def redis_start():
    """Starts Redis from the stack's redis.conf and waits for PONG."""
    if redis_pid() is None:
        subprocess.run(["redis-server", REDIS_CONF], check=True, timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if redis_up():
            return
        time.sleep(0.05)
    raise RuntimeError("Redis did not come back within 10 s")


def redis_pause():
    """SIGSTOPs Redis: connections stay open but nothing answers (a hung server)."""
    pid = redis_pid()
    if pid is None:
        raise RuntimeError("Redis is not running")
    os.kill(pid, signal.SIGSTOP)


def redis_resume():
    pid = redis_pid()
    if pid is not None:
        os.kill(pid, signal.SIGCONT)


@contextlib.contextmanager
def redis_down():
    """`with redis_down():` runs the block with Redis stopped; it is always restarted."""
    redis_stop()
    try:
        yield
    finally:
        redis_start()


@contextlib.contextmanager
def redis_hung():
    """`with redis_hung():` runs the block with Redis frozen (SIGSTOP); always resumed."""
    redis_pause()
    try:
        yield
    finally:
        redis_resume()


# ---------------------------------------------------------------------------------------------
# ideaforge-api processes and log


def _live_pid(pid_file, name):
    try:
        with open(pid_file) as f:
            pid = int(f.read().strip())
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, ValueError):
        return None
    return pid if name in cmdline else None


def _wait_gone(pid, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/status" % pid) as f:
                if re.search(r"^State:\s+Z", f.read(), re.M):
                    return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


def _children(pid):
    kids = []
    for path in glob.glob("/proc/%d/task/*/children" % pid):
        try:
            with open(path) as f:
                kids += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return sorted(set(kids))


def api_pids():
    """(master pid, [worker pids]) of the running ideaforge-api; (None, []) when it is down."""
    master = _live_pid(API_PID_FILE, "ideaforge-api")
    if master is None:
        return None, []
    return master, _children(master)


def wait_for(predicate, timeout=10.0, interval=0.05, message="condition"):
    """Polls predicate() until it returns a true value (returned) or timeout (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, message))
        time.sleep(interval)


class ApiLog:
    """The API's log from the moment the fixture was created: .text() returns what was added
    since, .wait_for(regex) polls for a matching line and returns the match."""

    def __init__(self, path=API_LOG):
        self.path = path
        try:
            self.start = os.path.getsize(path)
        except OSError:
            self.start = 0

    def text(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.start)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def wait_for(self, pattern, timeout=5.0):
        rx = re.compile(pattern, re.M)
        return wait_for(lambda: rx.search(self.text()), timeout=timeout,
                        message="log line /%s/ in %s" % (pattern, self.path))


@pytest.fixture
def api_log():
    """ApiLog positioned at the end of run/test/api.log when the test starts."""
    return ApiLog()


# ---------------------------------------------------------------------------------------------
# ideaforgectl


def ctl(*args, check=True, timeout=60):
    """Runs build/ideaforgectl --config CONF args...; returns the CompletedProcess."""
    p = subprocess.run([os.path.join(BUILD_DIR, "ideaforgectl"), "--config", CONF, *args],
                       capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError("ideaforgectl %s failed (%d): %s"
                           % (" ".join(args), p.returncode, p.stderr.strip()))
    return p


@pytest.fixture(scope="session")
def demo_seed(stack):
    """The demo tenant and user (admin@ideaforge.ai / password123), seeded once per session."""
    ctl("migrate")
    ctl("seed-demo")
    return {"email": DEMO_EMAIL, "password": DEMO_PASSWORD}


# ---------------------------------------------------------------------------------------------
# The stack must be up before any test runs.


@pytest.fixture(scope="session", autouse=True)
def stack():
    """Fails the whole session at once, naming the URL, when the stack does not answer."""
    url = BASE_URL + "/health/live"
    deadline = time.monotonic() + 10
    err = None
    while time.monotonic() < deadline:
        try:
            r = requests.get(url, timeout=2)
            if r.status_code == 200:
                return BASE_URL
            err = "HTTP %d" % r.status_code
        except requests.RequestException as e:
            err = str(e)
        time.sleep(0.2)
    pytest.exit("the stack under test is not up: GET %s: %s (start it with scripts/dev test)"
                % (url, err), returncode=3)


# ---------------------------------------------------------------------------------------------
# The helpers above as fixtures too: `def test_x(psql, redis, pg, api_pids): ...`.


class _Ns:
    def __init__(self, **kw):
        self.__dict__.update(kw)


@pytest.fixture(name="psql")
def _psql_fixture():
    return psql


@pytest.fixture(name="psql_one")
def _psql_one_fixture():
    return psql_one


@pytest.fixture(name="ctl")
def _ctl_fixture():
    return ctl


@pytest.fixture(name="api_pids")
def _api_pids_fixture():
    return api_pids


@pytest.fixture
def pg():
    """pg.stop(), pg.start(), `with pg.down():`; PostgreSQL is up again after the test."""
    yield _Ns(stop=pg_stop, start=pg_start, down=pg_down)
    pg_start()


@pytest.fixture
def redis():
    """redis.cmd(...), .pid(), .stop(), .start(), .pause(), .resume(), `with redis.down():`,
    `with redis.hung():`; Redis is running and responsive again after the test."""
    yield _Ns(cmd=redis_cmd, pid=redis_pid, up=redis_up, stop=redis_stop, start=redis_start,
              pause=redis_pause, resume=redis_resume, down=redis_down, hung=redis_hung)
    redis_resume()
    redis_start()


# ---------------------------------------------------------------------------------------------
# /metrics: counters instead of stopwatches (issue 14: no wall-clock comparison in the suites)


def metric(name, base=None):
    """The sum of every sample of metric `name` in GET /metrics (0 when absent). The workers
    copy their counters to the scoreboard twice a second: poll (wait_for) for an increment."""
    r = requests.get((base or BASE_URL) + "/metrics", timeout=30)
    assert r.status_code == 200, r.text
    total = 0.0
    for line in r.text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})? (\S+)$", line)
        if m and m.group(1) == name:
            total += float(m.group(2))
    return total


def redis_skipped(base=None):
    """Redis calls that the API skipped because it already knew Redis was down (the fallbacks
    that did not try: ideaforge_redis_fallbacks_total - ideaforge_redis_failures_total)."""
    return metric("ideaforge_redis_fallbacks_total", base) - \
        metric("ideaforge_redis_failures_total", base)
