#!/usr/bin/env python3
"""bench/capacity/run.py - the capacity report of issue 5 against a running IdeaForge stack.

Two scenarios, one after the other:

1. the seed's load test (spec/scalability-and-performance.md, "Testing Scalability"):
   200 concurrent POST /api/auth/login as admin@ideaforge.ai;
2. a mixed 200-user workload for 60 s: every user logs in as its own account
   (bench-NNN@ideaforge.test, created by --create-users), creates one product, then loops over a
   weighted mix of reads and writes with a random think time, over one keep-alive connection,
   as a browser would.

Every second it records, from the client: requests finished, requests/s, p50/p95/p99 latency,
errors (transport failures and any 5xx, 429 or unexpected status); and from the server's
/status: workers, busy threads, database connections in use, total RSS and PSS of the API
processes. Writes results.json, table.md and plot.svg to --out (no plotting library needed).

The client is asyncio over raw sockets (HTTP/1.1 keep-alive), so one Python process can drive
thousands of requests per second; it runs on the same machine as the server, so the figures
include the client's own CPU use. All traffic goes to the --base URL on loopback.

    python3 bench/capacity/run.py --create-users --pghost /tmp/ideaforge-pg-dev-XXXX
    python3 bench/capacity/run.py --base http://127.0.0.1:8080 --out bench/capacity/out
"""

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from urllib.parse import urlparse

PASSWORD = "password123"


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


# ---------------------------------------------------------------------------------------------
# A minimal HTTP/1.1 keep-alive client


class Conn:
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.r = self.w = None

    async def open(self):
        self.r, self.w = await asyncio.open_connection(self.host, self.port)

    def close(self):
        if self.w:
            self.w.close()
        self.r = self.w = None

    async def request(self, method, path, body=None, headers=None):
        """(status, body bytes); reconnects once when a kept connection was closed."""
        for attempt in (0, 1):
            if self.w is None:
                await self.open()
            data = json.dumps(body).encode() if body is not None else b""
            h = ["%s %s HTTP/1.1" % (method, path), "Host: %s" % self.host,
                 "Content-Length: %d" % len(data)]
            if body is not None:
                h.append("Content-Type: application/json")
            for k, v in (headers or {}).items():
                h.append("%s: %s" % (k, v))
            try:
                self.w.write(("\r\n".join(h) + "\r\n\r\n").encode() + data)
                await self.w.drain()
                return await self._response()
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt:
                    raise
        raise ConnectionError("unreachable")

    async def _response(self):
        head = await self.r.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        hdr = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                hdr[k.strip().lower()] = v.strip()
        if hdr.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await self.r.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await self.r.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            body = await self.r.readexactly(int(hdr.get("content-length", "0")))
        if hdr.get("connection", "").lower() == "close":
            self.close()
        return status, body


# ---------------------------------------------------------------------------------------------
# Scenarios


class Stats:
    def __init__(self, t0):
        self.t0 = t0
        self.sec = {}  # second -> {"lat": [...], "err": n, "n": n}
        self.errors = {}
        self.login_lat = []  # logins, also reported apart (argon2 is meant to be slow)

    def add(self, t_end, lat_ms, ok, what):
        s = self.sec.setdefault(int(t_end - self.t0), {"lat": [], "err": 0, "n": 0})
        s["n"] += 1
        s["lat"].append(lat_ms)
        if "/api/auth/login" in what:
            self.login_lat.append(lat_ms)
        if not ok:
            s["err"] += 1
            self.errors[what] = self.errors.get(what, 0) + 1


async def timed(conn, stats, method, path, body=None, token=None, expect=(200,)):
    hdrs = {"Authorization": "Bearer " + token} if token else None
    t = time.monotonic()
    try:
        status, data = await conn.request(method, path, body, hdrs)
        ok = status in expect
        what = "%s %s -> %d" % (method, path.split("?")[0], status)
    except Exception as e:  # noqa: BLE001 - a transport failure is an error of the run
        status, data, ok, what = 0, b"", False, "%s %s -> %s" % (method, path, type(e).__name__)
    end = time.monotonic()
    stats.add(end, (end - t) * 1000.0, ok, what)
    return status, data


def norm(path):
    """Product ids replaced, so that error keys group by route."""
    parts = path.split("/")
    return "/".join("{id}" if len(p) == 36 and p.count("-") == 4 else p for p in parts)


async def seed_logins(host, port, n):
    """The seed's test: n concurrent logins of the one demo account."""
    t0 = time.monotonic()
    stats = Stats(t0)
    conns = [Conn(host, port) for _ in range(n)]

    async def one(c):
        await timed(c, stats, "POST", "/api/auth/login",
                    {"email": "admin@ideaforge.ai", "password": PASSWORD})
        c.close()

    await asyncio.gather(*(one(c) for c in conns))
    wall = time.monotonic() - t0
    lat = [x for s in stats.sec.values() for x in s["lat"]]
    errs = sum(s["err"] for s in stats.sec.values())
    return {"logins": n, "wall_s": round(wall, 3), "errors": errs, "error_kinds": stats.errors,
            "p50_ms": round(pct(lat, 50), 1), "p95_ms": round(pct(lat, 95), 1),
            "p99_ms": round(pct(lat, 99), 1), "max_ms": round(max(lat), 1),
            "logins_per_s": round(n / wall, 1)}


# (weight, method, path template, body maker, expected statuses)
MIX = [
    (30, "GET", "/api/products", None, (200,)),
    (20, "GET", "/api/products/{pid}", None, (200,)),
    (10, "GET", "/api/db/phases", None, (200,)),
    (10, "GET", "/api/auth/me", None, (200,)),
    (10, "GET", "/api/db/phase-submissions?product_id={pid}", None, (200,)),
    (8, "PUT", "/api/products/{pid}", lambda u, i: {"description": "rev %d by %s" % (i, u)},
     (200,)),
    (7, "GET", "/api/db/knowledge-articles?product_id={pid}", None, (200,)),
    (5, "GET", "/api/products/portfolio", None, (200,)),
]


async def user(idx, host, port, stats, stop_at, think_ms, ready, delay):
    email = "bench-%03d@ideaforge.test" % idx
    await asyncio.sleep(delay)  # users arrive over the ramp-up
    c = Conn(host, port)
    st, body = await timed(c, stats, "POST", "/api/auth/login",
                           {"email": email, "password": PASSWORD})
    if st != 200:
        ready.append(False)
        return
    token = json.loads(body).get("token")
    st, body = await timed(c, stats, "POST", "/api/products", {"name": "bench %s" % email},
                           token=token, expect=(200, 201))
    pid = json.loads(body).get("id") if st in (200, 201) else None
    ready.append(bool(pid))
    if not pid:
        return
    weights = [m[0] for m in MIX]
    i = 0
    while time.monotonic() < stop_at:
        _, method, path, mk, expect = random.choices(MIX, weights)[0]
        i += 1
        await timed(c, stats, method, path.format(pid=pid),
                    mk(email, i) if mk else None, token=token, expect=expect)
        if think_ms:
            await asyncio.sleep(random.uniform(0, 2 * think_ms) / 1000.0)
    c.close()


async def sampler(host, port, stats, stop_at, samples):
    c = Conn(host, port)
    nxt = stats.t0 + 1
    while time.monotonic() < stop_at + 1:
        await asyncio.sleep(max(0, nxt - time.monotonic()))
        sec = int(nxt - stats.t0) - 1
        nxt += 1
        try:
            st, body = await c.request("GET", "/status")
            s = json.loads(body) if st == 200 else {}
        except Exception:  # noqa: BLE001
            c.close()
            s = {}
        samples[sec] = {
            "workers": s.get("workers", {}).get("current"),
            "busy_threads": s.get("threads", {}).get("busy"),
            "busy_avg": s.get("threads", {}).get("busy_average"),
            "db_in_use": s.get("db_pool", {}).get("in_use"),
            "db_open": s.get("db_pool", {}).get("open"),
            "rss_mib": round(s.get("memory", {}).get("rss_bytes", 0) / 2**20, 1),
            "pss_mib": round(s.get("memory", {}).get("pss_bytes", 0) / 2**20, 1),
        }
    c.close()


async def mixed(host, port, users, duration, think_ms, ramp_s):
    t0 = time.monotonic()
    stats = Stats(t0)
    stop_at = t0 + duration
    samples, ready = {}, []
    tasks = [user(i, host, port, stats, stop_at, think_ms, ready, ramp_s * (i - 1) / users)
             for i in range(1, users + 1)]
    await asyncio.gather(sampler(host, port, stats, stop_at, samples), *tasks)
    rows = []
    for sec in range(duration):
        s = stats.sec.get(sec, {"lat": [], "err": 0, "n": 0})
        row = {"t": sec + 1, "rps": s["n"], "errors": s["err"],
               "p50_ms": pct(s["lat"], 50), "p95_ms": pct(s["lat"], 95),
               "p99_ms": pct(s["lat"], 99)}
        row.update(samples.get(sec, {}))
        rows.append(row)
    lat = [x for s in stats.sec.values() for x in s["lat"]]
    total = sum(s["n"] for s in stats.sec.values())
    nl = list(lat)
    for x in stats.login_lat:
        nl.remove(x)
    summary = {
        "users": users, "users_ready": sum(ready), "duration_s": duration,
        "think_ms_mean": think_ms, "ramp_s": ramp_s, "requests": total,
        "p99_ms_without_logins": round(pct(nl, 99), 2),
        "p95_ms_without_logins": round(pct(nl, 95), 2),
        "login_p50_ms": round(pct(stats.login_lat, 50), 1),
        "login_p99_ms": round(pct(stats.login_lat, 99), 1),
        "errors": sum(s["err"] for s in stats.sec.values()), "error_kinds": stats.errors,
        "rps_mean": round(total / duration, 1),
        "p50_ms": round(pct(lat, 50), 2), "p95_ms": round(pct(lat, 95), 2),
        "p99_ms": round(pct(lat, 99), 2), "max_ms": round(max(lat), 1),
        "workers_max_seen": max((r.get("workers") or 0) for r in rows),
        "rss_mib_max": max((r.get("rss_mib") or 0) for r in rows),
        "pss_mib_max": max((r.get("pss_mib") or 0) for r in rows),
        "db_in_use_max": max((r.get("db_in_use") or 0) for r in rows),
    }
    return summary, rows


# ---------------------------------------------------------------------------------------------
# Output


def table(rows):
    cols = ["t", "rps", "p50_ms", "p95_ms", "p99_ms", "errors", "workers", "busy_threads",
            "db_in_use", "rss_mib", "pss_mib"]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        vals = []
        for c in cols:
            v = r.get(c)
            vals.append("" if v is None else ("%.1f" % v if isinstance(v, float) else str(v)))
        out.append("| " + " | ".join(vals) + " |")
    return "\n".join(out) + "\n"


def svg_plot(rows, title):
    """Four stacked panels over time: rps, latency percentiles, workers/busy/pool, memory."""
    W, PH, L, R, T = 900, 170, 70, 150, 40
    panels = [
        ("requests/s", [("rps", "#1f77b4")]),
        ("latency ms", [("p50_ms", "#2ca02c"), ("p95_ms", "#ff7f0e"), ("p99_ms", "#d62728")]),
        ("processes", [("workers", "#9467bd"), ("busy_threads", "#8c564b"),
                       ("db_in_use", "#17becf"), ("errors", "#d62728")]),
        ("memory MiB", [("rss_mib", "#7f7f7f"), ("pss_mib", "#bcbd22")]),
    ]
    H = T + len(panels) * (PH + 30) + 20
    n = max(1, len(rows))
    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
         'font-family="sans-serif" font-size="11">' % (W, H),
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="%d" y="22" font-size="14">%s</text>' % (L, title)]
    for i, (label, series) in enumerate(panels):
        y0 = T + i * (PH + 30)
        vals = [r.get(k) for k, _ in series for r in rows if r.get(k) is not None]
        top = max(vals) if vals else 1
        top = top * 1.1 if top > 0 else 1
        pw = W - L - R
        o.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>'
                 % (L, y0, pw, PH))
        o.append('<text x="5" y="%d">%s</text>' % (y0 + PH // 2, label))
        for f in (0, 0.5, 1):
            y = y0 + PH - f * PH
            o.append('<text x="%d" y="%.0f" text-anchor="end" fill="#555">%s</text>'
                     % (L - 4, y + 4, ("%.0f" % (top * f)) if top * f >= 10 else
                        ("%.1f" % (top * f))))
            o.append('<line x1="%d" x2="%d" y1="%.0f" y2="%.0f" stroke="#eee"/>'
                     % (L, L + pw, y, y))
        for j, (k, color) in enumerate(series):
            pts = ["%.1f,%.1f" % (L + (r["t"] - 0.5) / n * pw,
                                  y0 + PH - (r.get(k) or 0) / top * PH)
                   for r in rows if r.get(k) is not None]
            if pts:
                o.append('<polyline fill="none" stroke="%s" stroke-width="1.8" points="%s"/>'
                         % (color, " ".join(pts)))
            o.append('<rect x="%d" y="%d" width="10" height="10" fill="%s"/>'
                     % (W - R + 10, y0 + 8 + j * 16, color))
            o.append('<text x="%d" y="%d">%s</text>' % (W - R + 25, y0 + 17 + j * 16, k))
        o.append('<text x="%d" y="%d" fill="#555">0 s</text>' % (L, y0 + PH + 14))
        o.append('<text x="%d" y="%d" text-anchor="end" fill="#555">%d s</text>'
                 % (L + pw, y0 + PH + 14, n))
    o.append("</svg>")
    return "\n".join(o) + "\n"


def create_users(args):
    """bench-001..N@ideaforge.test in the demo tenant, with the demo password's hash."""
    sql = ("INSERT INTO user_profiles (email, full_name, password_hash, tenant_id) "
           "SELECT format('bench-%%s@ideaforge.test', lpad(i::text, 3, '0')), 'Bench ' || i, "
           "a.password_hash, a.tenant_id FROM generate_series(1, %d) i, "
           "(SELECT password_hash, tenant_id FROM user_profiles "
           "WHERE email = 'admin@ideaforge.ai') a ON CONFLICT (email) DO NOTHING" % args.users)
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", args.pghost, "-U",
                    args.pguser, "-d", args.pgdb, "-c", sql], check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="http://127.0.0.1:8080")
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--duration", type=int, default=60)
    ap.add_argument("--think-ms", type=int, default=500,
                    help="mean think time between a user's requests (uniform 0..2x)")
    ap.add_argument("--ramp-s", type=float, default=10.0,
                    help="users arrive evenly over this many seconds")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "out"))
    ap.add_argument("--label", default="")
    ap.add_argument("--skip-logins", action="store_true")
    ap.add_argument("--create-users", action="store_true")
    ap.add_argument("--pghost", default="/var/run/postgresql")
    ap.add_argument("--pguser", default="ideaforge")
    ap.add_argument("--pgdb", default="ideaforge")
    args = ap.parse_args()
    if args.create_users:
        create_users(args)
        return 0
    u = urlparse(args.base)
    host, port = u.hostname, u.port or 80
    os.makedirs(args.out, exist_ok=True)
    result = {"base": args.base, "label": args.label}
    if not args.skip_logins:
        result["seed_logins"] = asyncio.run(seed_logins(host, port, 200))
        print("seed test, 200 concurrent logins:", json.dumps(result["seed_logins"]))
        time.sleep(2)
    summary, rows = asyncio.run(mixed(host, port, args.users, args.duration, args.think_ms,
                                        args.ramp_s))
    result["mixed"] = summary
    result["per_second"] = rows
    print("mixed workload:", json.dumps(summary))
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(result, f, indent=1)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(table(rows))
    with open(os.path.join(args.out, "plot.svg"), "w") as f:
        f.write(svg_plot(rows, "IdeaForge, %d users, %d s, think %d ms %s" % (
            args.users, args.duration, args.think_ms, args.label)))
    return 0 if summary["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
