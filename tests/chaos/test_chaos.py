"""Fault injection under load (issue 14 item 2): nothing acknowledged is lost.

Each scenario runs 50 simulated users (tests/chaos/chaos_load.py: reads, product creations,
phase submissions, conversation messages, logins) against the test stack of `scripts/dev
test`, injects one fault while they run, ends it, and then checks:

* every acknowledged write (a 2xx with its id) is in PostgreSQL with the acknowledged content;
* no request hung: each has a client timeout of 20 s, far above the stack's fail-fast bounds
  (db_pool_timeout_s, the Redis command timeout, nginx's fastcgi_connect_timeout), and none
  reached it;
* the only errors were 503 with Retry-After: no 500, no other status, no connection reset;
* the service recovered by itself after the fault ended (a probe write succeeds again, polled
  with a generous bound; the time it took is reported, not compared), and the API master is
  the same process as before (no restart);
* sessions revoked during the outage (a logout acknowledged with a 2xx) stay revoked.

Each scenario prints one line of figures, also written to run/test/chaos-results.tsv:
requests, 2xx, 503, other, lost writes, recovery time. The scenario list is decided when the
module is collected: the agentd scenario exists only when build/ideaforge-agentd exists and
the stack runs it (run/test/agentd.pid); otherwise it is reported as not applicable, not as
a skipped test.

Environment: that of tests/api/conftest.py (IDEAFORGE_BASE_URL, IDEAFORGE_RUN_DIR, ...), plus
IDEAFORGE_CHAOS_USERS (default 50).
"""

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "api"))

from conftest import (BASE_URL, BUILD_DIR, CONF, PG_BIN, PGHOST, RUN_DIR, api_pids,  # noqa: E402
                      pg_start, pg_stop, psql, psql_one, redis_pause, redis_pid,
                      redis_resume, redis_start, redis_up, wait_for, _live_pid, _wait_gone)
from product_helpers import make_tenant, make_user  # noqa: E402

import chaos_load as cl  # noqa: E402

USERS = int(os.environ.get("IDEAFORGE_CHAOS_USERS", "50"))
PASSWORD = "password123"  # make_user gives every user the demo password's hash
RECOVERY_BOUND_S = 15     # generous bound of the recovery poll (the figure is reported)
RESULTS = os.path.join(RUN_DIR, "chaos-results.tsv")
AGENTD = os.path.join(BUILD_DIR, "ideaforge-agentd")
AGENTD_PID_FILE = os.path.join(RUN_DIR, "agentd.pid")

_lines = []


def _agentd_applicable():
    if not os.path.exists(AGENTD):
        return False, "no %s in this build" % os.path.relpath(AGENTD)
    if _live_pid(AGENTD_PID_FILE, "ideaforge-agentd") is None:
        return False, "the test stack does not run ideaforge-agentd (%s)" % AGENTD_PID_FILE
    return True, ""


# ---------------------------------------------------------------------------------------------
# The cast: users with a product each, logged in once for the whole module


def _login(email, base=BASE_URL):
    r = requests.post(base + "/api/auth/login", json={"email": email, "password": PASSWORD},
                      timeout=30)
    assert r.status_code == 200, "login %s: %d %s" % (email, r.status_code, r.text)
    return r.json()["token"]


@pytest.fixture(scope="module")
def cast():
    tenant = make_tenant("chaos")
    made = [make_user(tenant, "chaos%d" % i) for i in range(USERS + 1)]
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        tokens = list(pool.map(lambda m: _login(m[1]), made))
    users = []
    for (uid_, email), tok in zip(made, tokens):
        r = requests.post(BASE_URL + "/api/products", json={"name": "chaos home"},
                          headers={"Authorization": "Bearer " + tok}, timeout=30)
        assert r.status_code == 200, r.text
        users.append(cl.SimUser(email, PASSWORD, tok, r.json()["id"]))
    probe = users.pop()
    return {"tenant": tenant, "users": users, "probe": probe}


@pytest.fixture(scope="module", autouse=True)
def report(request):
    yield
    tr = request.config.pluginmanager.getplugin("terminalreporter")
    ok, why = _agentd_applicable()
    lines = list(_lines)
    if not ok:
        lines.append("agentd-kill: not applicable (%s)" % why)
    cap = request.config.pluginmanager.getplugin("capturemanager")
    if tr:
        # outside pytest's capture, so that the figures show in the suite's output
        with cap.global_and_fixture_disabled() if cap else _nothing():
            tr.write_line("")
            for line in lines:
                tr.write_line("chaos " + line)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# ---------------------------------------------------------------------------------------------
# Running one scenario


class Scenario:
    def __init__(self, base, users, probe):
        self.base = base
        self.users = users
        self.probe = probe
        self.rec = cl.Recorder()
        self.revoked = []      # tokens whose logout was acknowledged during the fault
        self.unrevoked = []    # tokens whose logout was refused (503) during the fault
        self.fault_end = None

    def revoke_during_fault(self, users):
        """Logs each user in again (a fresh session) before the fault; returns a function that,
        called during the fault, logs those sessions out and records which were acknowledged."""
        tokens = [_login(u.email, self.base) for u in users]

        def revoke():
            for tok in tokens:
                try:
                    r = requests.post(self.base + "/api/auth/logout",
                                      headers={"Authorization": "Bearer " + tok}, timeout=20)
                except requests.RequestException:
                    self.unrevoked.append(tok)
                    continue
                (self.revoked if r.status_code == 200 else self.unrevoked).append(tok)
        return revoke

    def probe_write(self):
        desc = uuid.uuid4().hex
        try:
            r = requests.post(self.base + "/api/products",
                              json={"name": "probe", "description": desc},
                              headers={"Authorization": "Bearer " + self.probe.token},
                              timeout=5)
        except requests.RequestException:
            return False
        if r.status_code == 200:
            with self.rec.lock:
                self.rec.products[r.json()["id"]] = ("probe", desc)
            return True
        return False


def run_scenario(name, inject, base=BASE_URL, master_pid=None, warmup=2.0, tail=2.0,
                 users=None, probe=None, revokers=()):
    """Load, inject() (returns once the fault has ended), recovery, tail, checks."""
    sc = Scenario(base, users, probe)
    revoke = sc.revoke_during_fault(revokers) if revokers else None
    # the probe's writes are recorded like the others'
    load = cl.Load(base, users, sc.rec).start()
    try:
        time.sleep(warmup)
        inject(sc, revoke)
        sc.fault_end = time.monotonic()
        wait_for(lambda: sc.probe_write(), timeout=RECOVERY_BOUND_S, interval=0.05,
                 message="%s: a write to succeed again after the fault ended" % name)
        recovery = time.monotonic() - sc.fault_end
        time.sleep(tail)
    finally:
        load.stop()
    # revocations that the outage refused are retried now: the client would
    for tok in list(sc.unrevoked):
        r = requests.post(base + "/api/auth/logout", headers={"Authorization": "Bearer " + tok},
                          timeout=20)
        if r.status_code == 200:
            sc.revoked.append(tok)
    # -- checks
    lost = cl.lost_writes(sc.rec, psql)
    f = sc.rec.figures()
    np_, nm, ns = cl.summary_counts(sc.rec)
    line = ("%-16s requests %6d  2xx %6d  503 %5d  other %3d  lost writes %d  recovery %.2f s"
            "  (acked: %d products, %d messages, %d submissions; revoked %d)"
            % (name, f["requests"], f["2xx"], f["503"], f["other"], len(lost), recovery,
               np_, nm, ns, len(sc.revoked)))
    _lines.append(line)
    print(line)
    try:
        with open(RESULTS, "a") as out:
            out.write("%s\t%d\t%d\t%d\t%d\t%d\t%.2f\n" % (name, f["requests"], f["2xx"],
                                                           f["503"], f["other"], len(lost),
                                                           recovery))
    except OSError:
        pass
    assert not lost, "%s: %d acknowledged writes lost, e.g. %s" % (name, len(lost), lost[:5])
    assert f["other"] == 0, "%s: responses other than 2xx and 503+Retry-After:\n%s" % (
        name, cl.dump_bad(sc.rec))
    assert f["2xx"] > 0
    for tok in sc.revoked:
        r = requests.get(base + "/api/auth/me", headers={"Authorization": "Bearer " + tok},
                         timeout=20)
        assert r.status_code == 401, "%s: a session revoked during the fault came back: %d" % (
            name, r.status_code)
    if master_pid is not None:
        assert api_pids()[0] == master_pid, "%s: the API master was restarted" % name
    return sc


# ---------------------------------------------------------------------------------------------
# The faults


def _redis_pause(sc, revoke):
    redis_pause()
    try:
        time.sleep(1)
        revoke()
        time.sleep(19)
    finally:
        redis_resume()


def _redis_kill(sc, revoke):
    pid = redis_pid()
    assert pid
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pid, 10)
    try:
        time.sleep(1)
        revoke()
        time.sleep(4)
    finally:
        redis_start()


def _pg_restart(sc, revoke):
    t = threading.Thread(target=lambda: (time.sleep(0.3), revoke()))
    pg_stop()
    try:
        t.start()
        time.sleep(1.0)
    finally:
        pg_start()
        t.join()


def _pg_unreachable(sc, revoke):
    """PostgreSQL stays up, but the API cannot reach it for 10 s: its socket is moved away
    (new connections fail) and the API's open connections are cut (pg_terminate_backend)."""
    sock = os.path.join(PGHOST, ".s.PGSQL.5432")
    alt = os.path.join(RUN_DIR, "pg-alt")
    shutil.rmtree(alt, ignore_errors=True)
    os.makedirs(alt)
    os.chmod(alt, 0o777)
    os.link(sock, os.path.join(alt, ".s.PGSQL.5432"))
    os.rename(sock, sock + ".away")
    try:
        subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-At", "-h", alt,
                        "-U", "postgres", "-d", "postgres", "-c",
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = 'ideaforge' AND pid <> pg_backend_pid()"],
                       check=True, capture_output=True, timeout=30)
        time.sleep(1)
        revoke()
        time.sleep(9)
    finally:
        os.rename(sock + ".away", sock)
        shutil.rmtree(alt, ignore_errors=True)


def _worker_kill(sc, revoke):
    rnd = random.Random(14)
    for i in range(5):
        _, workers = api_pids()
        if workers:
            try:
                os.kill(rnd.choice(workers), signal.SIGKILL)
            except ProcessLookupError:
                pass
        if i == 1:
            revoke()
        time.sleep(3)


def _master_hup(sc, revoke):
    master, _ = api_pids()
    for i in range(6):
        os.kill(master, signal.SIGHUP)
        if i == 1:
            revoke()
        time.sleep(2)


SCENARIOS = [
    ("redis-pause", _redis_pause, "Redis paused (SIGSTOP 20 s, then SIGCONT)"),
    ("redis-kill", _redis_kill, "Redis killed (SIGKILL), restarted after 5 s"),
    ("pg-restart", _pg_restart, "PostgreSQL restarted (fast shutdown)"),
    ("pg-unreachable", _pg_unreachable, "PostgreSQL unreachable for 10 s"),
    ("worker-kill", _worker_kill, "a worker SIGKILLed every 3 s (5 times)"),
    ("master-hup", _master_hup, "the master sent SIGHUP every 2 s (6 times)"),
]


@pytest.mark.parametrize("name,inject,what", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_fault_under_load_loses_nothing(cast, name, inject, what):
    master, _ = api_pids()
    assert master, "ideaforge-api is not running"
    revokers = cast["users"][:3]
    try:
        run_scenario(name, inject, master_pid=master, users=cast["users"][3:],
                     probe=cast["probe"], revokers=revokers)
    finally:
        # whatever happened, the stack is whole again for the next scenario
        redis_resume()
        if not redis_up():
            redis_start()
        pg_start()
        wait_for(lambda: requests.get(BASE_URL + "/health/ready", timeout=5).status_code == 200,
                 timeout=30, message="the stack ready again")


# ---------------------------------------------------------------------------------------------
# Disk full under the log directory: a separate instance whose log is on a small tmpfs


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_log_disk_full_under_load_loses_nothing(cast):
    from test_ops import OpsInstance
    mnt = os.path.join(RUN_DIR, "chaos-logfs")
    os.makedirs(mnt, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", mnt], check=True)
    inst = None
    try:
        inst = OpsInstance("chaos-diskfull", _free_port(),
                           "host=%s dbname=ideaforge user=ideaforge" % PGHOST,
                           max_inflight_per_user="1000", max_inflight_per_address="1000")
        inst.log_path = os.path.join(mnt, "api.log")
        inst.start()
        wait_for(lambda: inst.get("/health/ready", timeout=5).status_code == 200, timeout=20,
                 message="the disk-full instance ready")
        master = inst.proc.pid
        filler = os.path.join(mnt, "filler")

        def fill(sc, revoke):
            # fill the file system to the last byte (unbuffered: each write is one syscall)
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                for chunk in (1 << 16, 1 << 10, 1):
                    try:
                        while True:
                            os.write(fd, b"\0" * chunk)
                    except OSError:
                        pass
            finally:
                os.close(fd)
            time.sleep(1)  # the log's last, partly used page fills up
            size_before = os.path.getsize(inst.log_path)
            revoke()
            time.sleep(7)
            # the log could not grow while the disk was full
            assert os.path.getsize(inst.log_path) == size_before
            os.unlink(filler)

        run_scenario("log-disk-full", fill, base=inst.base, users=cast["users"][3:],
                     probe=cast["probe"], revokers=cast["users"][:3])
        assert inst.proc.poll() is None and inst.proc.pid == master
        # and it logs again once there is room
        size = os.path.getsize(inst.log_path)
        requests.get(inst.base + "/api/db/phases", timeout=10)
        wait_for(lambda: os.path.getsize(inst.log_path) > size, timeout=10,
                 message="the API to log again once the disk had room")
    finally:
        if inst:
            inst.stop()
        subprocess.run(["umount", "-l", mnt])


# ---------------------------------------------------------------------------------------------
# agentd SIGKILLed mid-job: only when the stack runs agentd (decided at collection)

_AGENTD_OK, _AGENTD_WHY = _agentd_applicable()
if _AGENTD_OK:
    def test_agentd_kill_mid_job_loses_no_job(cast):
        """Jobs submitted under load while agentd is SIGKILLed every 3 s (and started again
        with its own command line): every job acknowledged (2xx with its id) exists and
        reaches a final state once agentd runs again; nothing else of the scenario changes."""
        pid = _live_pid(AGENTD_PID_FILE, "ideaforge-agentd")
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = [a.decode() for a in f.read().split(b"\0") if a]
        jobs = []
        users = cast["users"][3:]

        def submit_jobs():
            s = requests.Session()
            for u in users[:10]:
                r = s.post(BASE_URL + "/api/multi-agent/submit",
                           json={"request": {"query": "chaos " + uuid.uuid4().hex}},
                           headers={"Authorization": "Bearer " + u.token}, timeout=20)
                if r.status_code in (200, 201, 202):
                    jobs.append(r.json().get("job_id") or r.json().get("id"))

        def kill(sc, revoke):
            nonlocal pid
            for i in range(4):
                submit_jobs()
                os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, 10)
                if i == 1:
                    revoke()
                time.sleep(1)
                p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
                with open(AGENTD_PID_FILE, "w") as f:
                    f.write("%d\n" % p.pid)
                pid = p.pid
                time.sleep(2)

        run_scenario("agentd-kill", kill, master_pid=api_pids()[0], users=users,
                     probe=cast["probe"], revokers=cast["users"][:3])
        jobs = [j for j in jobs if j]
        assert jobs, "no job was acknowledged"
        final = ("completed", "failed", "cancelled")
        wait_for(lambda: all(psql_one("SELECT state FROM agent_jobs WHERE id = $1", j) in final
                             for j in jobs), timeout=120,
                 message="every acknowledged job to reach a final state")
