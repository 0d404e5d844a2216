"""The load generator of the chaos scenarios (tests/chaos/test_chaos.py).

Simulated users (one thread and one keep-alive session each) run a mixed workload against a
base URL: reads, product creations, phase submissions (upserts), conversation messages and
the occasional login. Every request is recorded with its outcome; every acknowledged write (a
2xx with the row's id) is kept with the exact content the client sent, so that the scenario
can check afterwards, in PostgreSQL, that nothing acknowledged was lost.

The workload is reproducible: each user draws its actions from random.Random(seed + index).
"""

import collections
import json
import random
import threading
import time
import uuid

import requests

# What a request may end as.
OK, UNAVAILABLE, UNAVAILABLE_NO_RETRY, SERVER_ERROR, OTHER, HUNG, RESET = (
    "2xx", "503", "503-no-retry-after", "5xx", "other", "hung", "reset")

PHASES = ("00000000-0000-0000-0001-000000000001", "00000000-0000-0000-0001-000000000002",
          "00000000-0000-0000-0001-000000000003", "00000000-0000-0000-0001-000000000004",
          "00000000-0000-0000-0001-000000000005", "00000000-0000-0000-0001-000000000006")


class SimUser:
    """One simulated user: credentials, its token, its own product and conversation."""

    def __init__(self, email, password, token, product_id):
        self.email = email
        self.password = password
        self.token = token
        self.product_id = product_id
        self.session_id = str(uuid.uuid4())


class Recorder:
    """Outcomes of every request and every acknowledged write, shared by the users' threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.outcomes = collections.Counter()
        self.bad = []            # (what, method, path, detail) of every request that ended badly
        self.products = {}       # id -> (name, description) acknowledged
        self.messages = {}       # id -> content acknowledged
        # (product_id, phase_id) -> [(value, acknowledged)] in the order the user sent them: the
        # database must hold the last acknowledged value or one sent after it
        self.submissions = collections.defaultdict(list)
        self.requests = 0
        self.max_latency = 0.0

    def outcome(self, kind, method, path, detail="", latency=0.0):
        with self.lock:
            self.requests += 1
            self.outcomes[kind] += 1
            self.max_latency = max(self.max_latency, latency)
            if kind not in (OK, UNAVAILABLE):
                self.bad.append((kind, method, path, detail[:300]))

    def figures(self):
        with self.lock:
            o = self.outcomes
            return {"requests": self.requests, "2xx": o[OK], "503": o[UNAVAILABLE],
                    "other": self.requests - o[OK] - o[UNAVAILABLE]}


def classify(r):
    if 200 <= r.status_code < 300:
        return OK
    if r.status_code == 503:
        return UNAVAILABLE if r.headers.get("Retry-After") else UNAVAILABLE_NO_RETRY
    if r.status_code >= 500:
        return SERVER_ERROR
    return OTHER


class Load:
    """n users hammering base_url until stop(); `timeout` is the client's bound on one request
    (far above every server-side timeout of the stack: a request that reaches it hung)."""

    def __init__(self, base_url, users, recorder, seed=14, timeout=20.0, think=(0.02, 0.06),
                 login_password=None):
        self.base = base_url.rstrip("/")
        self.users = users
        self.rec = recorder
        self.seed = seed
        self.timeout = timeout
        self.think = think
        self.stopping = threading.Event()
        self.threads = []
        self.pause_writes = threading.Event()

    def start(self):
        for i, u in enumerate(self.users):
            t = threading.Thread(target=self._run, args=(i, u), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(self.timeout + 10)
        alive = [t for t in self.threads if t.is_alive()]
        assert not alive, "%d load threads did not finish" % len(alive)

    # -- one user

    def _request(self, s, method, path, **kw):
        t0 = time.monotonic()
        try:
            r = s.request(method, self.base + path, timeout=self.timeout, **kw)
        except requests.Timeout as e:
            self.rec.outcome(HUNG, method, path, repr(e), time.monotonic() - t0)
            return None
        except requests.ConnectionError as e:
            self.rec.outcome(RESET, method, path, repr(e), time.monotonic() - t0)
            return None
        kind = classify(r)
        self.rec.outcome(kind, method, path, "%d %s" % (r.status_code, r.text[:200]),
                         time.monotonic() - t0)
        return r if kind == OK else None

    def _run(self, i, u):
        rnd = random.Random(self.seed * 1000 + i)
        s = requests.Session()
        s.headers["Authorization"] = "Bearer " + u.token
        n = 0
        try:
            while not self.stopping.is_set():
                n += 1
                tag = "u%d-%d-%s" % (i, n, uuid.uuid4().hex[:8])
                x = rnd.random()
                if x < 0.30:
                    path = rnd.choice(["/api/products", "/api/products/" + u.product_id,
                                       "/api/db/phases",
                                       "/api/db/phase-submissions?product_id=" + u.product_id,
                                       "/api/auth/me"])
                    self._request(s, "GET", path)
                elif x < 0.45:
                    body = {"name": "chaos " + tag, "description": "desc " + tag}
                    r = self._request(s, "POST", "/api/products", json=body)
                    if r is not None:
                        with self.rec.lock:
                            self.rec.products[r.json()["id"]] = (body["name"],
                                                                 body["description"])
                elif x < 0.68:
                    key = (u.product_id, rnd.choice(PHASES))
                    body = {"product_id": key[0], "phase_id": key[1],
                            "form_data": {"v": tag}, "status": "in_progress"}
                    with self.rec.lock:
                        self.rec.submissions[key].append([tag, False])
                        entry = self.rec.submissions[key][-1]
                    r = self._request(s, "POST", "/api/db/phase-submissions", json=body)
                    if r is not None:
                        with self.rec.lock:
                            entry[1] = True
                elif x < 0.98:
                    body = {"session_id": u.session_id, "product_id": u.product_id,
                            "message_type": "user", "content": "msg " + tag}
                    r = self._request(s, "POST", "/api/db/conversation-history", json=body)
                    if r is not None:
                        with self.rec.lock:
                            self.rec.messages[r.json()["id"]] = body["content"]
                else:
                    # a login of its own (argon2id: the expensive request of the mix); the
                    # new session is not used, the user keeps its token
                    ls = requests.Session()
                    r = self._request(ls, "POST", "/api/auth/login",
                                      json={"email": u.email, "password": u.password})
                    ls.close()
                time.sleep(rnd.uniform(*self.think))
        finally:
            s.close()


def lost_writes(rec, psql):
    """Every acknowledged write that is not in the database with its acknowledged content:
    a list of (kind, id, expected, found)."""
    lost = []
    with rec.lock:
        products = dict(rec.products)
        messages = dict(rec.messages)
        subs = {k: list(v) for k, v in rec.submissions.items()}

    def fetch(sql, ids):
        out = {}
        ids = list(ids)
        for i in range(0, len(ids), 500):
            arr = "{" + ",".join(ids[i:i + 500]) + "}"
            for row in psql(sql, arr):
                out[row[0]] = row[1:]
        return out

    got = fetch("SELECT id, name, description FROM products WHERE id = ANY($1::uuid[])",
                products)
    for pid, (name, desc) in products.items():
        if got.get(pid) != (name, desc):
            lost.append(("product", pid, (name, desc), got.get(pid)))
    got = fetch("SELECT id, content FROM conversation_history WHERE id = ANY($1::uuid[])",
                messages)
    for mid, content in messages.items():
        if got.get(mid) != (content,):
            lost.append(("message", mid, content, got.get(mid)))
    rows = {}
    pids = {k[0] for k in subs}
    if pids:
        arr = "{" + ",".join(pids) + "}"
        for row in psql("SELECT product_id, phase_id, form_data->>'v' FROM phase_submissions "
                        "WHERE product_id = ANY($1::uuid[])", arr):
            rows[(row[0], row[1])] = row[2]
    for key, attempts in subs.items():
        acked = [j for j, (_, ok) in enumerate(attempts) if ok]
        if not acked:
            continue
        allowed = {v for v, _ in attempts[acked[-1]:]}
        if rows.get(key) not in allowed:
            lost.append(("submission", "%s/%s" % key, attempts[acked[-1]][0], rows.get(key)))
    return lost


def summary_counts(rec):
    with rec.lock:
        return (len(rec.products), len(rec.messages),
                sum(1 for v in rec.submissions.values() for _, ok in v if ok))


def dump_bad(rec, limit=15):
    with rec.lock:
        c = collections.Counter((k, m, p.split("?")[0], d[:80]) for k, m, p, d in rec.bad)
    return "\n".join("%5d x %s %s %s: %s" % (n, k, m, p, d) for (k, m, p, d), n in
                     c.most_common(limit))


def jdump(v):
    return json.dumps(v, sort_keys=True)
