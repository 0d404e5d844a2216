"""Operations at scale: the process manager, /status, /metrics and /api/metrics/* (issue 5).

Two kinds of tests:

* against the stack under test (nginx + ideaforge-api of scripts/dev test): the shapes of
  /status, /metrics and the authenticated /api/metrics/* views, and that nginx keeps /status
  and /metrics to loopback;
* against private instances that a test starts itself (OpsInstance): their own ideaforge-api
  with the flags the test needs (pm = dynamic with a 4-second window, ondemand, recycling after
  a few requests, ...), on their own unix socket, behind their own nginx on a port of the ops
  range (19310-19329), sharing the stack's PostgreSQL (a private database, ideaforge_ops) and
  Redis (database 3). They never touch the stack's API, so counts are exact.

Load that keeps threads busy for as long as a test wants: a psql session holds an ACCESS
EXCLUSIVE lock on product_lifecycle_phases of the private database, so every
GET /api/db/phases blocks in PostgreSQL until the lock is released - deterministic, and costs
no CPU.
"""

import os
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest
import requests

from conftest import (API_LOG, BASE_URL, BUILD_DIR, CONF, PG_BIN, PGHOST, REDIS_PORT, TOP,
                      ApiLog, api_pids, ctl, login, redis_down, wait_for)

OPS_DB = "ideaforge_ops"
OPS_DB_URL = "host=%s dbname=%s user=ideaforge" % (PGHOST, OPS_DB)

# ---------------------------------------------------------------------------------------------
# Prometheus text exposition (format 0.0.4)

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text):
    """{(name, ((label, value), ...)): float} and {name: type} of an exposition."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            types[name] = typ
            continue
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        labels = tuple(sorted((k, bytes(v, "utf-8").decode("unicode_escape"))
                              for k, v in _LABEL.findall(m.group(2) or "")))
        key = (m.group(1), labels)
        assert key not in samples, "duplicate sample %r" % (key,)
        samples[key] = float(m.group(3))
    return samples, types


def sample(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# ---------------------------------------------------------------------------------------------
# Private instances


def _pg(*sql_args, db="postgres"):
    return subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-At", "-h", PGHOST,
                           "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", *sql_args],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def ops_db():
    """A private database with the schema, for instances that lock tables."""
    _pg("-c", "DROP DATABASE IF EXISTS %s WITH (FORCE)" % OPS_DB)
    p = _pg("-c", "CREATE DATABASE %s OWNER ideaforge" % OPS_DB)
    assert p.returncode == 0, p.stderr
    ctl("--database_url=" + OPS_DB_URL, "migrate")
    yield OPS_DB_URL
    _pg("-c", "DROP DATABASE IF EXISTS %s WITH (FORCE)" % OPS_DB)


def _known_keys():
    p = subprocess.run([os.path.join(BUILD_DIR, "ideaforge-api"), "--config", CONF,
                        "--print-config"], capture_output=True, text=True, timeout=30)
    return set(re.findall(r"^([a-z0-9_]+) =", p.stdout, re.M))


class OpsInstance:
    """ideaforge-api with its own flags, socket and log, behind its own nginx on `port`."""

    def __init__(self, name, port, database_url, **flags):
        self.name = name
        self.port = port
        self.dir = os.path.join(os.environ.get("IDEAFORGE_RUN_DIR", os.path.dirname(API_LOG)),
                                "ops-" + name)
        self.sock = os.path.join(self.dir, "api.sock")
        self.log_path = os.path.join(self.dir, "api.log")
        self.base = "http://127.0.0.1:%d" % port
        self.proc = None
        known = _known_keys()
        self.flags = {"listen": "unix:" + self.sock, "ops_listen": "unix:" + self.sock + ".ops",
                      "database_url": database_url,
                      "redis_url": "redis://127.0.0.1:%d/3" % REDIS_PORT, "log_level": "info"}
        # generous per-client limits: these tests fire many requests from one address
        for k in ("rl_default_per_min", "rl_ai_per_min", "max_inflight_per_address",
                  "max_inflight_per_user"):
            if k in known:
                self.flags[k] = "4096" if k.startswith("max_inflight") else "1000000"
        # requests must wait on TableLock for as long as the test holds it (they keep threads
        # busy to drive the process manager), not fail after the default lock_timeout
        for k in ("db_lock_timeout_ms", "db_statement_timeout_ms"):
            if k in known:
                self.flags[k] = "0"
        self.flags.update({k: str(v) for k, v in flags.items()})

    # -- life cycle

    def start(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(os.path.join(self.dir, "nginx-tmp"))
        argv = [os.path.join(BUILD_DIR, "ideaforge-api"), "--config", CONF]
        argv += ["--%s=%s" % kv for kv in self.flags.items()]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._start_nginx()
            wait_for(lambda: os.path.exists(self.sock) or self.proc.poll() is not None, 10,
                     message="the socket of instance %s" % self.name)
            assert self.proc.poll() is None, "instance %s exited: %s" % (self.name, self.log())
        except BaseException:
            self.stop()
            raise
        return self

    def _start_nginx(self):
        with open(os.path.join(TOP, "nginx", "ideaforge.conf.in")) as f:
            site = f.read()
        for k, v in (("@LISTEN@", "127.0.0.1:%d" % self.port), ("@SERVER_NAME@", "localhost"),
                     ("@WEB_ROOT@", os.path.join(TOP, "web")), ("@API_SOCKET@", self.sock),
                     ("@OPS_SOCKET@", self.sock + ".ops"),
                     ("@AGENTD_SOCKET@", os.path.join(self.dir, "agentd.sock"))):
            site = site.replace(k, v)
        shutil.copy("/etc/nginx/fastcgi_params", os.path.join(self.dir, "fastcgi_params"))
        with open(os.path.join(self.dir, "site.conf"), "w") as f:
            f.write(site)
        d = self.dir
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write("""user root;
worker_processes 1;
daemon on;
pid %(d)s/nginx.pid;
error_log %(d)s/nginx-error.log warn;
events { worker_connections 1024; }
http {
	include /etc/nginx/mime.types;
	access_log off;
	client_body_temp_path %(d)s/nginx-tmp/client_body;
	fastcgi_temp_path %(d)s/nginx-tmp/fastcgi;
	proxy_temp_path %(d)s/nginx-tmp/proxy;
	uwsgi_temp_path %(d)s/nginx-tmp/uwsgi;
	scgi_temp_path %(d)s/nginx-tmp/scgi;
	include %(d)s/site.conf;
}
""" % {"d": d})
        subprocess.run(["nginx", "-p", d + "/", "-e", d + "/nginx-error.log", "-c",
                        d + "/nginx.conf"], check=True, timeout=10)

    def stop(self):
        pid_file = os.path.join(self.dir, "nginx.pid")
        try:
            with open(pid_file) as f:
                npid = int(f.read().strip())
            os.kill(npid, signal.SIGQUIT)
            # gone before the next instance binds the same port
            wait_for(lambda: not os.path.exists("/proc/%d" % npid), timeout=10,
                     message="nginx %d to exit" % npid)
        except (OSError, ValueError):
            pass
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- observation

    def get(self, path, **kw):
        kw.setdefault("timeout", 30)
        return requests.get(self.base + path, **kw)

    def status(self, full=False):
        r = self.get("/status?full" if full else "/status")
        assert r.status_code == 200, r.text
        return r.json()

    def metrics(self):
        r = self.get("/metrics")
        assert r.status_code == 200, r.text
        return parse_prometheus(r.text)[0]

    def children(self):
        kids = []
        for path in ("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid),):
            try:
                with open(path) as f:
                    kids += [int(x) for x in f.read().split()]
            except OSError:
                pass
        return kids

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class TableLock:
    """Holds ACCESS EXCLUSIVE on product_lifecycle_phases of the ops database until released."""

    def __init__(self, db=OPS_DB):
        self.db = db
        self.p = None

    def __enter__(self):
        self.p = subprocess.Popen([os.path.join(PG_BIN, "psql"), "-X", "-q", "-h", PGHOST,
                                   "-U", "ideaforge", "-d", self.db, "-v", "ON_ERROR_STOP=1"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        self.p.stdin.write("BEGIN;\nLOCK TABLE product_lifecycle_phases IN ACCESS EXCLUSIVE "
                           "MODE;\n\\echo locked\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        assert line.strip() == "locked", line
        return self

    def release(self):
        if self.p and self.p.poll() is None:
            self.p.stdin.write("COMMIT;\n")
            self.p.stdin.close()
            self.p.wait(10)

    def __exit__(self, *exc):
        self.release()


def _ts(s):
    """A log line's ts=2026-11-29T19:54:01.123Z as seconds (the server's clock)."""
    import datetime
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def fire(inst, path, n):
    """Starts n concurrent GETs of path; returns (threads, results list)."""
    results = []

    def one():
        try:
            results.append(inst.get(path, timeout=60).status_code)
        except requests.RequestException as e:
            results.append(repr(e))

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    return threads, results


# ---------------------------------------------------------------------------------------------
# The process manager


def test_dynamic_scales_up_within_2s_and_down_after_the_window(ops_db):
    """pm = dynamic: saturated -> up to workers_max within 2 s (max reached is warned and
    counted); after the load, nothing happens for the stabilisation window, then at most
    pm_scale_down_step workers go per pm_scale_down_period_s, down to workers_min."""
    window, period = 4, 2
    with OpsInstance("dynamic", 19310, ops_db, pm="dynamic", workers=1, workers_min=1,
                     workers_max=4, threads=2, pm_scale_down_window_s=window,
                     pm_scale_down_step=2, pm_scale_down_period_s=period,
                     slow_request_ms=1000) as inst:
        st = inst.status()
        assert st["process_manager"] == "dynamic"
        assert st["workers"]["current"] == 1
        assert (st["workers"]["min"], st["workers"]["max"]) == (1, 4)
        m0 = inst.metrics()

        with TableLock() as lock:
            t0 = time.monotonic()
            threads, results = fire(inst, "/api/db/phases", 6)
            # how fast it scales up is the policy's (tests/unit/test-pm.c, with its own clock);
            # here: it does, under a generous bound (issue 14: was "within 2 s")
            seen = wait_for(lambda: inst.status()["workers"]["current"] >= 4, timeout=20,
                            interval=0.05, message="scale-up to 4 workers")
            assert seen
            # 6 requests on 8 threads is 75 % busy: the policy wants 5 > workers_max. On a
            # starved machine the six requests may still be on their way: wait for them too
            st = wait_for(lambda: (lambda s: s if s["workers"]["max_reached"] >= 1
                                   and s["threads"]["busy"] >= 6 else None)(
                inst.status()), timeout=20, message="max_reached and 6 busy threads")
            assert st["workers"]["current"] == 4
            assert st["workers"]["target"] == 4
            assert st["threads"]["busy"] >= 6
            full = inst.status(full=True)
            busy_routes = [t["route"] for p in full["processes"] for t in p["threads"]
                           if t["state"] == "busy"]
            assert busy_routes.count("GET /api/db/phases") == 6, busy_routes
            assert sorted(p["pid"] for p in full["processes"]) == sorted(inst.children())
            time.sleep(max(0.0, 2.5 - (time.monotonic() - t0)))
            # the load cannot end before this moment (the requests wait on the lock); the
            # worker's own access lines may be written later on a starved machine
            released = time.time()
            lock.release()
            for t in threads:
                t.join(30)
        assert results == [200] * 6, results
        assert "workers_max (4) reached" in inst.log()
        assert "scaling up: +3 workers -> 4" in inst.log()

        # down: nothing during the window, then 2, then 1 (2 per period at most). Read from
        # the master's own log lines and their timestamps (issue 14: was sampled by polling
        # /status from here, whose delays under load could merge or shift the steps): every
        # stop is logged with the count it leaves, at the moment the master decides it
        wait_for(lambda: inst.status()["workers"]["current"] == 1,
                 timeout=window + 2 * period + 20, interval=0.2, message="back to 1 worker")
        log = inst.log()
        done = [_ts(m.group(1)) for m in re.finditer(
            r'^ts=(\S+) .*route="/api/db/phases".* status=200', log, re.M)]
        downs = [(_ts(m.group(1)), int(m.group(2))) for m in re.finditer(
            r'^ts=(\S+) .*scaling down: stopping worker \d+ pid \d+ \(.*\), (\d+) workers',
            log, re.M)]
        assert len(done) == 6 and [c for _, c in downs] == [3, 2, 1], (done, downs)
        # the master's clock: nothing before the window after the load ended (it cannot end
        # before the lock was released), and never more than pm_scale_down_step (2) stops
        # within one pm_scale_down_period_s
        assert downs[0][0] - released >= window - 1.0, (released, done, downs)
        assert all(downs[i + 2][0] - downs[i][0] >= period - 0.5
                   for i in range(len(downs) - 2)), downs

        m1 = inst.metrics()
        assert sample(m1, "ideaforge_workers_max_reached_total") >= 1
        assert sample(m1, "ideaforge_worker_scale_downs_total") == 3
        assert sample(m1, "ideaforge_worker_scale_ups_total") == 3
        assert sample(m1, "ideaforge_slow_requests_total") - \
            sample(m0, "ideaforge_slow_requests_total") == 6
        assert sample(m1, "ideaforge_http_requests_total", method="GET",
                      route="/api/db/phases", code="2xx") == 6
        assert len(re.findall(r"slow request: GET /api/db/phases", inst.log())) == 6


def test_ondemand_starts_a_worker_for_the_first_request_and_stops_it_when_idle(ops_db):
    with OpsInstance("ondemand", 19311, ops_db, pm="ondemand", workers_min=0, workers_max=3,
                     threads=2, pm_idle_timeout_s=2) as inst:
        time.sleep(0.5)
        assert inst.children() == []
        # the first request starts a worker and is served by it (issue 14: was "within
        # 1 s"): a client bound far above the start-up, and the master's log shows the worker
        # started for it
        r = inst.get("/health/live", timeout=30)
        assert r.status_code == 200 and r.json() == {"status": "alive"}
        assert len(inst.children()) == 1
        assert re.search(r"started worker \d+ pid %d " % inst.children()[0], inst.log())
        st = inst.status()
        assert st["process_manager"] == "ondemand"
        assert st["workers"]["min"] == 0
        wait_for(lambda: inst.children() == [], timeout=6, message="the idle worker to stop")
        assert re.search(r"stopping worker \d+ pid \d+: idle for \d+s, 0 workers", inst.log())
        # and again
        assert inst.get("/health/live").status_code == 200


def test_crashing_workers_are_replaced_but_throttled_in_a_loop(ops_db):
    with OpsInstance("crash", 19312, ops_db, pm="static", workers=2, threads=1) as inst:
        wait_for(lambda: len(inst.children()) == 2, message="2 workers")
        killed = []
        for _ in range(5):
            victim = inst.children()[0]
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)
            wait_for(lambda: victim not in inst.children(), message="worker %d gone" % victim)
        assert "workers are crashing in a loop" in inst.log()
        st = inst.status()
        assert st["workers"]["crashes"] == 5
        # while throttled, respawns come one per second, not in a tight loop
        wait_for(lambda: len(inst.children()) == 2, timeout=5, message="workers back")
        old = set(inst.children())
        log0 = len(inst.log())
        for pid in old:
            os.kill(pid, signal.SIGKILL)
        # both come back, one per second: read from the master's log lines and their
        # timestamps (issue 14: was sampled by polling /proc from here, which a busy machine
        # delays)
        wait_for(lambda: len(set(inst.children()) - old) == 2, timeout=20,
                 message="both workers respawned")
        text = inst.log()[log0:]
        kills = [_ts(m.group(1)) for m in re.finditer(
            r"^ts=(\S+) .*killed by signal 9", text, re.M)]
        starts = [_ts(m.group(1)) for m in re.finditer(
            r"^ts=(\S+) .*started worker \d+ pid \d+", text, re.M)]
        assert len(kills) == 2 and len(starts) == 2, text
        assert starts[0] - max(kills) >= 0.2, text  # not respawned at once
        assert starts[1] - starts[0] >= 0.8, text   # the second one a second later
        assert inst.get("/health/live").status_code == 200
        assert sample(inst.metrics(), "ideaforge_worker_crashes_total") >= 7


# ---------------------------------------------------------------------------------------------
# Metrics are exact: a test counts its own requests


def test_metrics_count_exactly_our_requests_across_recycled_workers(ops_db):
    """Every request is counted once, by route and status class, in the histogram too, even
    though the workers recycle every 7 requests (their counters fold into the retired totals
    when they are reaped)."""
    with OpsInstance("count", 19313, ops_db, pm="static", workers=2, threads=2,
                     max_requests=7) as inst:
        m0 = inst.metrics()
        plan = [("/health/live", 25, 200), ("/api/db/phases", 6, 200),
                ("/api/ops-test-no-such-route", 9, 404),
                ("/api/metrics/connection-pool", 5, 401)]
        s = requests.Session()
        for path, n, code in plan:
            for _ in range(n):
                assert s.get(inst.base + path, timeout=30).status_code == code
        m1 = inst.metrics()

        def delta(name, **labels):
            return sample(m1, name, **labels) - sample(m0, name, **labels)

        R = "ideaforge_http_requests_total"
        assert delta(R, method="GET", route="/health/live", code="2xx") == 25
        assert delta(R, method="GET", route="/api/db/phases", code="2xx") == 6
        assert delta(R, method="", route="(unmatched)", code="4xx") == 9
        assert delta(R, method="GET", route="/api/metrics/connection-pool", code="4xx") == 5
        assert delta(R, method="GET", route="/metrics", code="2xx") == 1  # the first scrape
        assert delta("ideaforge_http_responses_total", code="4xx") == 14
        assert delta("ideaforge_http_responses_total", code="2xx") == 25 + 6 + 1
        assert delta("ideaforge_http_responses_total", code="5xx") == 0
        H = "ideaforge_http_request_duration_seconds"
        assert delta(H + "_count", method="GET", route="/health/live") == 25
        assert delta(H + "_bucket", method="GET", route="/health/live", le="+Inf") == 25
        # buckets are cumulative and end at the count
        les = sorted({dict(k[1])["le"] for k in m1 if k[0] == H + "_bucket"},
                     key=lambda x: float("inf") if x == "+Inf" else float(x))
        vals = [sample(m1, H + "_bucket", method="GET", route="/health/live", le=le)
                for le in les]
        assert vals == sorted(vals)
        assert vals[-1] == sample(m1, H + "_count", method="GET", route="/health/live")
        # the workers did recycle meanwhile (47 requests, 7 per worker)
        assert delta("ideaforge_worker_spawns_total") >= 5
        assert "recycling" in inst.log()
        # /status agrees with /metrics on the total
        st = inst.status()
        total = sum(v for (n, _), v in inst.metrics().items() if n == R)
        assert st["accepted_requests"] in (total - 1, total)  # the scrape after the status


# ---------------------------------------------------------------------------------------------
# The stack under test: shapes, loopback only, authenticated views


def test_status_shows_this_request_in_full_view(http):
    r = http.get("/status?full")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    s = r.json()
    for k in ("pool", "process_manager", "start_time", "accepted_requests", "workers",
              "threads", "db_pool", "redis", "memory", "processes"):
        assert k in s, k
    w = s["workers"]
    assert w["current"] >= 1 and w["min"] <= w["current"] <= w["max"]
    assert s["threads"]["total"] == s["threads"]["busy"] + s["threads"]["idle"]
    procs = s["processes"]
    assert procs and all(p["pid"] > 0 for p in procs)
    master, workers = api_pids()
    if master is not None:
        assert s["master_pid"] == master
        # every worker the page lists is a child of the master (stopping ones may linger)
        assert {p["pid"] for p in procs} <= set(workers)
        assert len([p for p in procs if p["state"] != "stopping"]) == s["workers"]["current"]
    # this request: on a request thread, or on the ops socket's thread when there is one
    me = [t for p in procs for t in p["threads"] + [p.get("ops_thread") or {}]
          if t.get("state") == "busy" and t.get("route") == "GET /status"]
    assert len(me) >= 1 and me[0]["duration_ms"] >= 0
    assert all(len(p["threads"]) == s["threads"]["per_worker"] for p in procs)
    assert "processes" not in http.get("/status").json()
    assert s["memory"]["rss_bytes"] > 0


def test_metrics_exposition_has_the_families(http):
    r = http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples, types = parse_prometheus(r.text)
    want = {
        "ideaforge_http_requests_total": "counter",
        "ideaforge_http_request_duration_seconds": "histogram",
        "ideaforge_http_responses_total": "counter",
        "ideaforge_workers": "gauge", "ideaforge_workers_min": "gauge",
        "ideaforge_workers_max": "gauge", "ideaforge_workers_max_reached_total": "counter",
        "ideaforge_threads": "gauge", "ideaforge_db_pool_connections": "gauge",
        "ideaforge_db_pool_max_connections": "gauge", "ideaforge_db_pool_waits_total": "counter",
        "ideaforge_db_pool_timeouts_total": "counter", "ideaforge_redis_up": "gauge",
        "ideaforge_redis_fallbacks_total": "counter",
        "ideaforge_session_fallbacks_total": "counter",
        "ideaforge_rate_limit_rejections_total": "counter",
        "ideaforge_slow_requests_total": "counter",
        "ideaforge_resident_memory_bytes": "gauge",
    }
    for name, typ in want.items():
        assert types.get(name) == typ, name
    assert sample(samples, "ideaforge_redis_up") == 1
    assert sample(samples, "ideaforge_workers", state="running") >= 1
    assert sample(samples, "ideaforge_db_pool_max_connections") > 0


def _curl_from(addr, url):
    p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--interface",
                        addr, "--max-time", "10", url], capture_output=True, text=True,
                       timeout=20)
    return p.stdout.strip()


@pytest.mark.parametrize("path", ["/status", "/metrics"])
def test_status_and_metrics_are_loopback_only(path):
    """nginx answers them to 127.0.0.1 only: the same request from another address (127.0.0.2
    on the loopback interface, which nginx sees as a different client) is refused."""
    assert _curl_from("127.0.0.1", BASE_URL + path) == "200"
    assert _curl_from("127.0.0.2", BASE_URL + path) == "403"
    # the health checks stay open to anyone
    assert _curl_from("127.0.0.2", BASE_URL + "/health/live") == "200"


@pytest.mark.parametrize("path", ["connection-pool", "database-health", "cache-stats",
                                  "agent-metrics"])
def test_api_metrics_need_a_session(http, path):
    r = http.get("/api/metrics/" + path)
    assert r.status_code == 401
    assert "detail" in r.json()


@pytest.fixture
def authed(http, demo_seed):
    r = login(http)
    assert r.status_code == 200, r.text
    tok = r.json().get("token") or r.json().get("access_token")
    if tok:
        http.headers["Authorization"] = "Bearer " + tok
    return http


def test_connection_pool_is_the_whole_machine(authed):
    r = authed.get("/api/metrics/connection-pool")
    assert r.status_code == 200
    p = r.json()
    st = authed.get("/status").json()
    assert p["pool_size"] == st["db_pool"]["size"]
    assert p["overflow"] == st["db_pool"]["overflow"]
    assert p["workers"] == st["workers"]["current"] + st["workers"]["stopping"]
    assert p["checked_out"] + p["checked_in"] <= p["pool_size"] + p["overflow"]
    assert p["available_connections"] == p["pool_size"] + p["overflow"] - p["checked_out"]
    util = round(p["checked_out"] / (p["pool_size"] + p["overflow"]) * 100, 2)
    assert p["utilization_percent"] == util
    assert p["status"] in ("healthy", "warning", "critical")
    if p["status"] == "healthy":
        assert p["message"] == "Connection pool operating normally"
    assert p["invalid"] == 0 and "timestamp" in p


def test_database_health(authed):
    d = authed.get("/api/metrics/database-health").json()
    assert d["status"] == "healthy"
    assert d["database_version"].startswith("PostgreSQL ")
    assert "," not in d["database_version"]
    # a measured figure, reported; its size depends on the machine (issue 14: was "< 500")
    assert isinstance(d["query_time_ms"], (int, float)) and d["query_time_ms"] >= 0
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$", d["timestamp"])


def test_cache_stats_reports_redis_memory_against_its_limit(authed):
    c = authed.get("/api/metrics/cache-stats").json()
    assert c["cache_enabled"] is True and c["cache_type"] == "redis"
    for k in ("keyspace_hits", "keyspace_misses", "total_commands_processed", "used_memory"):
        assert isinstance(c[k], int) and c[k] >= 0, k
    hits, misses = c["keyspace_hits"], c["keyspace_misses"]
    assert c["hit_rate_percent"] == (round(hits * 100 / (hits + misses), 2)
                                     if hits + misses else 0)
    # the test stack's Redis runs with maxmemory 64mb allkeys-lru
    assert c["maxmemory"] == 64 * 1024 * 1024
    assert c["maxmemory_policy"] == "allkeys-lru"
    assert c["memory_usage_percent"] == round(c["used_memory"] * 100 / c["maxmemory"], 2)


def test_cache_stats_and_metrics_when_redis_is_down(authed):
    before = parse_prometheus(authed.get("/metrics").text)[0]
    with redis_down():
        c = authed.get("/api/metrics/cache-stats")
        assert c.status_code == 200
        body = c.json()
        assert body["cache_enabled"] is False and body["error"] == "Redis unavailable"
        assert "timestamp" in body
        # every worker notices within a request or two; sample until the scrape says so
        def down():
            for _ in range(4):
                authed.get("/api/metrics/agent-metrics")
            s = parse_prometheus(authed.get("/metrics").text)[0]
            return s if sample(s, "ideaforge_redis_up") == 0 else None
        after = wait_for(down, timeout=10, interval=0.3, message="redis_up 0")
        assert sample(after, "ideaforge_redis_fallbacks_total") > \
            sample(before, "ideaforge_redis_fallbacks_total")


def test_api_and_ctl_without_redis(ops_db):
    """redis_url empty: no Redis at all (issue 10). The API starts and serves as while Redis is
    down - /health "degraded", sessions checked and revoked in PostgreSQL, no cache stats - and
    nothing tries Redis or logs its absence per request; ideaforgectl has no cache to tell."""
    email = "noredis-%d@example.test" % os.getpid()
    pw = "password-noredis"
    add = subprocess.run([os.path.join(BUILD_DIR, "ideaforgectl"), "--config", CONF,
                          "--database_url=" + ops_db, "--redis_url=", "user", "add", "--email",
                          email, "--name", "No Redis", "--password-stdin"], input=pw + "\n",
                         capture_output=True, text=True, timeout=60)
    assert add.returncode == 0 and add.stderr == "", add.stderr
    with OpsInstance("noredis", 19317, ops_db, redis_url="", workers=1, threads=2) as inst:
        h = inst.get("/health")
        assert h.status_code == 200, h.text
        assert h.json()["status"] == "degraded"
        assert h.json()["services"]["redis"] is False and h.json()["services"]["database"]
        s = requests.Session()
        r = s.post(inst.base + "/api/auth/login", json={"email": email, "password": pw},
                   timeout=30)
        assert r.status_code == 200, r.text
        tok = r.json()["token"]
        bearer = {"Authorization": "Bearer " + tok}
        for _ in range(5):
            assert requests.get(inst.base + "/api/auth/me", headers=bearer,
                                timeout=30).status_code == 200
        c = s.get(inst.base + "/api/metrics/cache-stats", timeout=30)
        assert c.status_code == 200 and c.json()["cache_enabled"] is False, c.text
        assert s.post(inst.base + "/api/auth/logout", timeout=30).status_code == 200
        r = requests.get(inst.base + "/api/auth/me", headers=bearer, timeout=30)
        assert r.status_code == 401, r.text
        # a password change from the tool: revoked in PostgreSQL, no Redis note
        r = s.post(inst.base + "/api/auth/login", json={"email": email, "password": pw},
                   timeout=30)
        tok2 = r.json()["token"]
        p = subprocess.run([os.path.join(BUILD_DIR, "ideaforgectl"), "--config", CONF,
                            "--database_url=" + ops_db, "--redis_url=", "user", "passwd",
                            "--email", email, "--password-stdin"], input=pw + "-2\n",
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and p.stderr == "", p.stderr
        assert "1 session(s) revoked" in p.stdout, p.stdout
        r = requests.get(inst.base + "/api/auth/me",
                         headers={"Authorization": "Bearer " + tok2}, timeout=30)
        assert r.status_code == 401, r.text
        log = inst.log()
    assert "redis_url is empty: running without Redis" in log, log[-3000:]
    for line in ("redis unavailable", "tenant version bump failed",
                 "session revocation did not reach redis", "redis refused"):
        assert line not in log, (line, log[-3000:])


def test_agent_metrics_placeholder_shape(authed):
    a = authed.get("/api/metrics/agent-metrics").json()
    assert set(a) == {"timestamp", "agents", "summary"}
    assert a["agents"] == {}
    assert a["summary"] == {"total_calls": 0, "total_time": 0.0, "avg_time": 0.0,
                            "cache_hits": 0, "cache_misses": 0}


# ---------------------------------------------------------------------------------------------
# Binary upgrade without dropping connections (issue 15 item 9)


class ActivatedInstance(OpsInstance):
    """An instance whose listening socket is held by the test, as systemd's socket unit holds
    it, and handed to each ideaforge-api it starts through LISTEN_FDS/LISTEN_PID."""

    def start(self):
        import socket
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(os.path.join(self.dir, "nginx-tmp"))
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.lsock.bind(self.sock)
        self.lsock.listen(1024)
        self.flags["listen"] = ""
        self.masters = []
        self.start_master()
        self._start_nginx()
        return self

    def start_master(self):
        fd = self.lsock.fileno()
        argv = [os.path.join(BUILD_DIR, "ideaforge-api"), "--config", CONF]
        argv += ["--%s=%s" % kv for kv in self.flags.items()]
        script = 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"'
        with open(self.log_path, "ab") as log:
            p = subprocess.Popen(["sh", "-c", script, "sh", *argv], stdin=subprocess.DEVNULL,
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                 pass_fds=(3,), preexec_fn=lambda: os.dup2(fd, 3))
        self.proc = p
        self.masters.append(p)
        wait_for(lambda: self.log().count("workers x") >= len(self.masters), 10,
                 message="master %d ready" % len(self.masters))
        return p

    def stop(self):
        super().stop()
        for p in getattr(self, "masters", []):
            if p.poll() is None:
                p.kill()
                p.wait(10)
        if getattr(self, "lsock", None):
            self.lsock.close()


def test_restart_under_load_with_a_held_socket_refuses_nothing(ops_db):
    """The socket outlives the service (no PartOf= in the socket unit): a new binary replaces
    the running one (SIGTERM: in-flight requests finish; the new master accepts what waited in
    the backlog) while clients keep sending, and not one request fails."""
    results, stop = [], threading.Event()

    with ActivatedInstance("upgrade", 19316, ops_db, workers=2, threads=4) as inst:
        def client():
            s = requests.Session()
            while not stop.is_set():
                try:
                    results.append(s.get(inst.base + "/api/", timeout=30).status_code)
                except requests.RequestException as e:
                    results.append(repr(e))

        threads = [threading.Thread(target=client) for _ in range(6)]
        for t in threads:
            t.start()
        wait_for(lambda: len(results) >= 50, 10, message="traffic")
        old = inst.proc
        old.send_signal(signal.SIGTERM)          # the old binary drains and exits ...
        old.wait(30)
        inst.start_master()                      # ... the new one takes the same socket
        n = len(results)
        wait_for(lambda: len(results) >= n + 50, 10, message="traffic after the upgrade")
        stop.set()
        for t in threads:
            t.join(30)
    bad = [r for r in results if r != 200]
    assert not bad, "%d of %d requests failed: %s" % (len(bad), len(results), bad[:5])
    assert len(results) > 100
