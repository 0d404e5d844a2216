#!/usr/bin/env python3
"""bench/agents/streams.py - the client side of the agent benchmark (bench/agents/run.sh).

Standard library only: raw HTTP/1.1 over asyncio streams to nginx (keep-alive, chunked
bodies), server-sent events parsed as they arrive, time.monotonic() on arrival (the same
CLOCK_MONOTONIC as the fake provider's first_token_mono: one machine).

    streams.py setup   --base URL --users N --out users.json
    streams.py streams --base URL --users-file users.json --fake URL --agentd-pid PID ... --out s1.json
    streams.py multi   --base URL --users-file users.json --fake URL ... --out s2.json
    streams.py report  --s1 s1.json --s2 s2.json --results RESULTS.md [--machine ...]

`streams` (issue 11): U users x S concurrent streams through POST /api/streaming/multi-agent/stream,
primary agent only; per stream the delay from the provider's first token (fake log) to the first
agent_chunk at this client; every stream must end with `complete` carrying the whole answer;
agentd RSS sampled; a GET /api/products loop and GET /status samples while the streams run.
`multi` (issue 12): users each asking 3 questions in enhanced_collaborative mode against a
fake paced like a fast hosted model; whole answer and first event per question, and the
provider time on the critical path measured from the fake's log.
Each prints a one-line summary and writes its figures (and its verdicts) as JSON.
"""

import argparse
import asyncio
import json
import math
import os
import random
import re
import sys
import time
from urllib.parse import urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "fakes"))
from fake_llm import default_tokens  # noqa: E402  (the fake's deterministic default answer)

PASSWORD = "password123"


# ---------------------------------------------------------------------------------------------
# HTTP/1.1


class HTTPError(Exception):
    pass


class Conn:
    """One keep-alive HTTP/1.1 connection to host:port."""

    def __init__(self, base):
        u = urlsplit(base)
        self.host, self.port = u.hostname, u.port or 80
        self.r = self.w = None

    async def open(self):
        self.r, self.w = await asyncio.open_connection(self.host, self.port, limit=1 << 20)

    def close(self):
        if self.w:
            self.w.close()
        self.r = self.w = None

    async def send(self, method, path, headers=None, body=None):
        if self.w is None:
            await self.open()
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = dict(headers or {}, **{"Content-Type": "application/json"})
        lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s:%d" % (self.host, self.port)]
        lines += ["%s: %s" % kv for kv in (headers or {}).items()]
        if body is not None:
            lines.append("Content-Length: %d" % len(body))
        self.w.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        await self.w.drain()

    async def head(self):
        """(status, headers with lower-case names)."""
        raw = await self.r.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise HTTPError("bad status line %r" % lines[0])
        hs = {}
        for line in lines[1:]:
            if line:
                k, _, v = line.partition(":")
                hs[k.strip().lower()] = v.strip()
        return int(parts[1]), hs

    async def pieces(self, hs):
        """The body as it arrives: chunked, Content-Length or until close."""
        if "chunked" in hs.get("transfer-encoding", "").lower():
            # decoded from whatever the socket has (one read may hold many chunks: fewer
            # wake-ups of this client under load than a read per chunk)
            buf, need = b"", None  # need: bytes of the current chunk still to come (+ CRLF)
            while True:
                out = []
                while True:
                    if need is None:
                        i = buf.find(b"\r\n")
                        if i < 0:
                            break
                        size = int(buf[:i].split(b";")[0].strip(), 16)
                        buf = buf[i + 2:]
                        if size == 0:  # nginx sends no trailers: the final CRLF
                            if len(buf) < 2:
                                await self.r.readexactly(2 - len(buf))
                            if out:
                                yield b"".join(out)
                            return
                        need = size + 2
                    if len(buf) < need:
                        break
                    out.append(buf[:need - 2])
                    buf, need = buf[need:], None
                if out:
                    yield b"".join(out)
                data = await self.r.read(65536)
                if not data:
                    raise asyncio.IncompleteReadError(buf, None)
                buf += data
        elif "content-length" in hs:
            n = int(hs["content-length"])
            if n:
                yield await self.r.readexactly(n)
        else:
            while True:
                data = await self.r.read(65536)
                if not data:
                    return
                yield data

    async def request(self, method, path, headers=None, body=None):
        """(status, headers, body bytes); reconnects once if the kept-alive connection died."""
        for attempt in (0, 1):
            try:
                await self.send(method, path, headers, body)
                st, hs = await self.head()
                break
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt:
                    raise
        out = b"".join([p async for p in self.pieces(hs)])
        if hs.get("connection", "").lower() == "close":
            self.close()
        return st, hs, out


def auth(token):
    return {"Authorization": "Bearer " + token}


# ---------------------------------------------------------------------------------------------
# Figures


def pct(xs, q):
    """Nearest-rank percentile (q in 0..100) of xs; None when empty."""
    if not xs:
        return None
    s = sorted(xs)
    return s[max(0, min(len(s) - 1, math.ceil(q / 100.0 * len(s)) - 1))]


def ms(x):
    return None if x is None else round(x * 1000.0, 2)


class LoopLag:
    """How late this client's own loop wakes up (its timestamps are that late at worst)."""

    def __init__(self, period=0.01):
        self.period, self.lags, self.stop = period, [], False

    async def run(self):
        while not self.stop:
            t = time.monotonic()
            await asyncio.sleep(self.period)
            self.lags.append(time.monotonic() - t - self.period)

    def figures(self):
        return {"p50_ms": ms(pct(self.lags, 50)), "p99_ms": ms(pct(self.lags, 99)),
                "max_ms": ms(max(self.lags) if self.lags else None)}


def rss_kib(pid, field="VmRSS"):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _cpu_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            f = f.read().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12]), int(f[1])  # utime + stime, ppid
    except (OSError, ValueError, IndexError):
        return None, None


class CPU:
    """CPU time of named process groups between start() and stop(): "name:pid" or "name:pid+"
    (the process and its children: nginx and API workers, PostgreSQL backends), "client" this
    process; and the whole machine's busy share from /proc/stat."""

    HZ = os.sysconf("SC_CLK_TCK")

    def __init__(self, spec):
        self.groups = [("client", os.getpid(), False)]
        for item in (spec or "").split():
            name, _, pid = item.partition(":")
            self.groups.append((name, int(pid.rstrip("+")), pid.endswith("+")))

    def _pids(self, pid, kids):
        out = {pid}
        if kids:
            for d in os.listdir("/proc"):
                if d.isdigit():
                    _, pp = _cpu_ticks(int(d))
                    if pp == pid:
                        out.add(int(d))
        return out

    def _snap(self):
        snap = {}
        for name, pid, kids in self.groups:
            snap[name] = {p: _cpu_ticks(p)[0] for p in self._pids(pid, kids)}
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return snap, sum(v), v[3] + v[4]  # total, idle + iowait

    def start(self):
        self.t0, self.s0 = time.monotonic(), self._snap()

    def stop(self):
        s1, dt = self._snap(), time.monotonic() - self.t0
        out = {}
        for name in s1[0]:
            ticks = sum((t or 0) - (self.s0[0][name].get(p) or 0)
                        for p, t in s1[0][name].items())
            out[name] = round(100.0 * ticks / self.HZ / dt, 1)  # % of one CPU
        total, idle = s1[1] - self.s0[1], s1[2] - self.s0[2]
        return {"percent_of_one_cpu": out, "seconds": round(dt, 2),
                "machine_busy_percent": round(100.0 * (total - idle) / total, 1) if total else None}


async def sample_rss(pid, out, stop, period=0.05):
    while not stop.is_set():
        v = rss_kib(pid)
        if v is not None:
            out.append((time.monotonic(), v))
        await asyncio.sleep(period)


async def sample_status(base, out, stop, period=0.1, inflight=None):
    """GET /status (the API's ops socket, from 127.0.0.1): busy and total request threads, and
    the products loop's requests in flight at this client when the sample was asked for (the
    threads those can occupy; the rest are the streams' and anybody else's)."""
    c = Conn(base)
    while not stop.is_set():
        t = time.monotonic()
        mine = inflight[0] if inflight else 0
        try:
            st, _, body = await c.request("GET", "/status")
            if st == 200:
                th = json.loads(body)["threads"]
                out.append((t, th["busy"], th["total"], mine))
        except (OSError, HTTPError, ValueError, KeyError, asyncio.IncompleteReadError):
            c.close()
        await asyncio.sleep(period)
    c.close()


async def sample_fake(fake, out, stop, period=0.25):
    """The fake's open provider streams (the streams really in flight at once)."""
    c = Conn(fake)
    while not stop.is_set():
        try:
            st, _, body = await c.request("GET", "/_control/health")
            if st == 200:
                out.append((time.monotonic(), json.loads(body)["active_streams"]))
        except (OSError, HTTPError, ValueError, asyncio.IncompleteReadError):
            c.close()
        await asyncio.sleep(period)
    c.close()


async def products_loop(base, token, out, stop, interval, inflight):
    """GET /api/products on one keep-alive connection, one request per `interval` s (closed
    loop: the next waits for the answer): (start, latency s, status or error text). Each
    connection starts at a random phase, so they do not all ask at the same instant."""
    c = Conn(base)
    await asyncio.sleep(random.uniform(0, interval))
    while not stop.is_set():
        t = time.monotonic()
        inflight[0] += 1
        try:
            st, _, _ = await c.request("GET", "/api/products", auth(token))
        except (OSError, HTTPError, asyncio.IncompleteReadError) as e:
            st = type(e).__name__
            c.close()
        finally:
            inflight[0] -= 1
        dt = time.monotonic() - t
        out.append((t, dt, st))
        await asyncio.sleep(max(0.0, interval - dt))
    c.close()


async def fake_call(fake, method, path, body=None):
    c = Conn(fake)
    try:
        st, _, out = await c.request(method, path, None, body)
    finally:
        c.close()
    if st != 200:
        raise HTTPError("fake %s %s -> %d %s" % (method, path, st, out[:200]))
    return json.loads(out)


# ---------------------------------------------------------------------------------------------
# One stream


class Stream:
    """One POST /api/streaming/multi-agent/stream read to its end."""

    def __init__(self, base, user, body, tag):
        self.base, self.user, self.body, self.tag = base, user, body, tag
        self.status = None
        self.t_sent = self.t_first_event = self.t_first_chunk = self.t_complete = None
        self.job_id = None
        self.chunks = {}  # agent -> [chunk, ...]
        self.complete = None
        self.errors = []  # `error` events and transport errors
        self.events = 0
        self.missing_id = 0

    async def run(self, live=None):
        c = Conn(self.base)
        try:
            await c.open()
            self.t_sent = time.monotonic()
            await c.send("POST", "/api/streaming/multi-agent/stream",
                         dict(auth(self.user["token"]), Accept="text/event-stream"), self.body)
            self.status, hs = await c.head()
            if live is not None:
                live[0] += 1
                live[1] = max(live[1], live[0])
            try:
                if self.status != 200:
                    body = b"".join([p async for p in c.pieces(hs)])
                    self.errors.append("HTTP %d %s" % (self.status, body[:200].decode("utf-8", "replace")))
                    return
                buf = b""
                async for data in c.pieces(hs):
                    now = time.monotonic()
                    buf += data.replace(b"\r\n", b"\n") if b"\r" in data else data
                    while True:
                        i = buf.find(b"\n\n")
                        if i < 0:
                            break
                        raw, buf = buf[:i], buf[i + 2:]
                        self.event(raw, now)
            finally:
                if live is not None:
                    live[0] -= 1
        except (OSError, HTTPError, ValueError, asyncio.IncompleteReadError) as e:
            self.errors.append("%s: %s" % (type(e).__name__, e))
        finally:
            c.close()

    def event(self, raw, now):
        name = data = eid = None
        for line in raw.split(b"\n"):
            if not line or line.startswith(b":"):
                continue  # heartbeat comments
            k, _, v = line.partition(b":")
            v = v[1:] if v.startswith(b" ") else v
            if k == b"event":
                name = v.decode()
            elif k == b"data":
                data = v if data is None else data + b"\n" + v
            elif k == b"id":
                eid = v
        if name is None and data is None:
            return
        self.events += 1
        if eid is None:
            self.missing_id += 1
        if self.t_first_event is None:
            self.t_first_event = now
        d = json.loads(data) if data else {}
        if name == "agent_chunk":
            if self.t_first_chunk is None:
                self.t_first_chunk = now
            self.chunks.setdefault(d.get("agent"), []).append(d.get("chunk") or "")
        elif name == "progress":
            self.job_id = self.job_id or d.get("job_id")
        elif name == "complete":
            self.complete = d
            self.t_complete = now
        elif name == "error":
            self.errors.append("error event: %s" % (d.get("error"),))


def tag_re(prefix):
    return re.compile(r"\[bench " + prefix + r"(\d+)(?:-(\d+))?\]")


async def fake_log(fake):
    return await fake_call(fake, "GET", "/_control/requests")


# ---------------------------------------------------------------------------------------------
# setup: sessions and stored provider keys


async def cmd_setup(a):
    users = []
    sem = asyncio.Semaphore(4)  # logins hash a password (argon2id): a few at a time

    async def one(i):
        email = "agent%04d@bench.example" % i
        async with sem:
            c = Conn(a.base)
            try:
                st, _, body = await c.request("POST", "/api/auth/login", None,
                                              {"email": email, "password": PASSWORD})
                if st != 200:
                    raise HTTPError("login %s -> %d %s" % (email, st, body[:200]))
                j = json.loads(body)
                key = "sk-bench-agents-%04d" % i  # each user's own provider key
                st, _, body = await c.request("POST", "/api/api-keys", auth(j["token"]),
                                              {"provider": "openai", "api_key": key})
                if st != 200:
                    raise HTTPError("api-keys %s -> %d %s" % (email, st, body[:200]))
                st, _, body = await c.request("GET", "/api/products", auth(j["token"]))
                prods = json.loads(body) if st == 200 else None
                if isinstance(prods, dict):
                    prods = prods.get("products") or prods.get("items") or []
                pid = prods[0]["id"] if prods else None
            finally:
                c.close()
        users.append({"i": i, "email": email, "token": j["token"], "user_id": j["user_id"],
                      "key": key, "product_id": pid})

    await asyncio.gather(*(one(i) for i in range(a.users)))
    users.sort(key=lambda u: u["i"])
    missing = [u["email"] for u in users if not u["product_id"]]
    if missing:
        raise SystemExit("setup: no product for %s" % ", ".join(missing[:3]))
    with open(a.out, "w") as f:
        json.dump(users, f)
    print("setup: %d users logged in, each with its own stored provider key" % len(users))


# ---------------------------------------------------------------------------------------------
# streams: issue 11, 500 concurrent streams


async def cmd_streams(a):
    users = json.load(open(a.users_file))[:a.users]
    if len(users) < a.users:
        raise SystemExit("streams: only %d users in %s" % (len(users), a.users_file))
    await fake_call(a.fake, "POST", "/_control/reset")
    n = a.users * a.per_user
    streams = []
    for k in range(n):
        u = users[k % a.users]
        # primary only: supporting_agents naming the primary itself adds none (an empty list
        # would mean "choose for me": rag + the keyword agent, app/agents.c agent_plan_for)
        body = {"query": "[bench s%04d] How big is the market for this product?" % k,
                "primary_agent": "research", "supporting_agents": ["research"],
                "coordination_mode": "enhanced_collaborative"}
        streams.append(Stream(a.base, u, body, k))

    lag = LoopLag()
    stop = asyncio.Event()
    rss, status, active, prods, inflight = [], [], [], [], [0]
    bg = [asyncio.ensure_future(lag.run()),
          asyncio.ensure_future(sample_rss(a.agentd_pid, rss, stop)),
          asyncio.ensure_future(sample_status(a.base, status, stop, inflight=inflight)),
          asyncio.ensure_future(sample_fake(a.fake, active, stop))]
    bg += [asyncio.ensure_future(products_loop(a.base, users[0]["token"], prods, stop,
                                               a.products_interval, inflight))
           for _ in range(a.products_conns)]
    rss0 = rss_kib(a.agentd_pid)
    await asyncio.sleep(1.0)  # the products loop and the samplers settle first
    live = [0, 0]
    cpu = CPU(a.cpu)
    cpu.start()
    t0 = time.monotonic()

    async def opened(k, s):
        if a.open_rate > 0:  # stream k opens at t0 + k / rate
            await asyncio.sleep(max(0.0, t0 + k / a.open_rate - time.monotonic()))
        await s.run(live)

    await asyncio.gather(*(opened(k, s) for k, s in enumerate(streams)))
    t1 = time.monotonic()
    cpu_use = cpu.stop()
    await asyncio.sleep(0.3)
    stop.set()
    lag.stop = True
    await asyncio.gather(*bg, return_exceptions=True)
    hwm = rss_kib(a.agentd_pid, "VmHWM")

    log = await fake_log(a.fake)
    tre = tag_re("s")
    calls = {}
    for rec in log:
        m = tre.search(rec.get("prompt") or "")
        if m:
            calls.setdefault(int(m.group(1)), []).append(rec)

    delays, bad, wrong_key, extra_calls = [], [], 0, 0
    for s in streams:
        why = []
        cs = calls.get(s.tag, [])
        if len(cs) != 1:
            extra_calls += max(0, len(cs) - 1)
            why.append("%d provider calls" % len(cs))
        rec = cs[-1] if cs else None
        if rec and rec["key"] != s.user["key"]:
            wrong_key += 1
            why.append("provider call with another key")
        if s.status != 200:
            why.append("HTTP %s" % s.status)
        why += s.errors
        if s.complete is None:
            why.append("no complete event")
        primary = "".join(s.chunks.get("research", []))
        if rec is not None and rec.get("tokens_sent"):
            expect = "".join(default_tokens("openai", rec["model"], rec["tokens_sent"]))
            if rec["tokens_sent"] != a.tokens:
                why.append("provider sent %d tokens, not %d" % (rec["tokens_sent"], a.tokens))
        else:
            expect = None
            why.append("no provider tokens")
        if s.complete is not None and (s.complete.get("response") != primary or primary != expect):
            why.append("answer differs (%d chars streamed, %d in complete, %d expected)"
                       % (len(primary), len(s.complete.get("response") or ""), len(expect or "")))
        if s.missing_id:
            why.append("%d events without id" % s.missing_id)
        if rec and rec.get("first_token_mono") and s.t_first_chunk:
            delays.append(s.t_first_chunk - rec["first_token_mono"])
        else:
            why.append("no first-token / first-chunk time")
        if why:
            bad.append({"stream": s.tag, "why": why[:4]})

    # the window where every stream is open and streaming: after the last first agent_chunk,
    # before the first complete
    t_all_open = max((s.t_first_chunk for s in streams if s.t_first_chunk), default=t1)
    t_first_done = min((s.t_complete for s in streams if s.t_complete), default=t0)
    steady = (t_all_open, t_first_done) if t_all_open < t_first_done else None
    in_steady = lambda t: steady is not None and steady[0] <= t <= steady[1]  # noqa: E731
    sp_lat = [dt for t, dt, st in prods if in_steady(t)]
    s_busy = [b / tot for t, b, tot, _ in status if in_steady(t)]
    in_run = lambda t: t0 <= t <= t1  # noqa: E731
    p_lat = [dt for t, dt, st in prods if in_run(t)]
    p_err = [st for t, dt, st in prods if in_run(t) and st != 200]
    busy = [(b, tot) for t, b, tot, _ in status if in_run(t)]
    others = [max(0, b - mine) for t, b, tot, mine in status if in_run(t)]
    busy_frac = max((b / tot for b, tot in busy), default=None)
    res = {
        "scenario": "streams", "users": a.users, "per_user": a.per_user, "streams": n,
        "fake": {"first_token_ms": a.first_token_ms, "tokens_per_s": a.tokens_per_s,
                 "tokens": a.tokens},
        "duration_s": round(t1 - t0, 2),
        "client_streams_open_max": live[1],
        "fake_active_streams_max": max((v for _, v in active), default=None),
        "first_chunk_delay_ms": {"n": len(delays), "min": ms(min(delays, default=None)),
                                 "p50": ms(pct(delays, 50)), "p90": ms(pct(delays, 90)),
                                 "p99": ms(pct(delays, 99)),
                                 "max": ms(max(delays, default=None))},
        "stream_open_to_first_chunk_ms": {
            "p50": ms(pct([s.t_first_chunk - s.t_sent for s in streams if s.t_first_chunk], 50)),
            "p99": ms(pct([s.t_first_chunk - s.t_sent for s in streams if s.t_first_chunk], 99))},
        "completed_ok": n - len(bad), "failed": len(bad), "failures": bad[:10],
        "wrong_key": wrong_key, "extra_provider_calls": extra_calls,
        "agentd_rss_kib": {"before": rss0, "max_sampled": max((v for _, v in rss), default=None),
                           "vmhwm_after": hwm, "samples": len(rss)},
        "products": {"connections": a.products_conns, "interval_ms": a.products_interval * 1000,
                     "requests": len(p_lat), "errors": len(p_err),
                     "error_kinds": sorted({str(e) for e in p_err})[:5],
                     "p50_ms": ms(pct(p_lat, 50)), "p99_ms": ms(pct(p_lat, 99)),
                     "max_ms": ms(max(p_lat, default=None)),
                     "rps": round(len(p_lat) / (t1 - t0), 1) if t1 > t0 else None},
        "api_threads": {"samples": len(busy), "total": busy[0][1] if busy else None,
                        "busy_max": max((b for b, _ in busy), default=None),
                        "busy_mean": round(sum(b for b, _ in busy) / len(busy), 2) if busy else None,
                        "busy_max_fraction": None if busy_frac is None else round(busy_frac, 3),
                        "busy_not_products_max": max(others, default=None),
                        "busy_not_products_mean": round(sum(others) / len(others), 2) if others else None},
        "client_loop_lag": lag.figures(),
        "open_rate": a.open_rate,
        "cpu": cpu_use,
        "all_open_window_s": None if steady is None else
        [round(steady[0] - t0, 2), round(steady[1] - t0, 2)],
        "all_open_window": {"products_requests": len(sp_lat), "products_p99_ms": ms(pct(sp_lat, 99)),
                            "products_p50_ms": ms(pct(sp_lat, 50)),
                            "api_busy_max_fraction": round(max(s_busy), 3) if s_busy else None},
        # per stream: request sent, provider's first token, first agent_chunk (s after t0)
        "per_stream": [[round(s.t_sent - t0, 4) if s.t_sent else None,
                        round(calls[s.tag][-1]["first_token_mono"] - t0, 4)
                        if calls.get(s.tag) and calls[s.tag][-1].get("first_token_mono") else None,
                        round(s.t_first_chunk - t0, 4) if s.t_first_chunk else None]
                       for s in streams],
    }
    d = res["first_chunk_delay_ms"]
    res["targets"] = {
        "first_chunk_p50_le_20ms": d["p50"] is not None and d["p50"] <= 20,
        "first_chunk_p99_le_50ms": d["p99"] is not None and d["p99"] <= 50,
        "every_stream_completes": not bad and len(streams) == n,
        "agentd_rss_lt_100MiB": (res["agentd_rss_kib"]["max_sampled"] or 1 << 30) < 100 * 1024
        and (hwm or 0) < 100 * 1024,
        "products_p99_lt_50ms": res["products"]["p99_ms"] is not None
        and res["products"]["p99_ms"] < 50,
        "products_0_errors": not p_err and bool(p_lat),
        "api_busy_lt_half": busy_frac is not None and busy_frac < 0.5,
    }
    res["met"] = all(res["targets"].values())
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    print("streams: %d streams (%d open at once at the client, %s at the provider) in %.1f s;"
          " first agent_chunk - provider first token: p50 %s ms, p99 %s ms; %d ok, %d failed;"
          " agentd RSS max %s KiB; products p99 %s ms, %d errors; API busy max %s"
          % (n, live[1], res["fake_active_streams_max"], t1 - t0, d["p50"], d["p99"],
             n - len(bad), len(bad), res["agentd_rss_kib"]["max_sampled"],
             res["products"]["p99_ms"], len(p_err), res["api_threads"]["busy_max_fraction"]))
    for b in bad[:5]:
        print("  stream %s: %s" % (b["stream"], "; ".join(b["why"])))


# ---------------------------------------------------------------------------------------------
# multi: issue 12, 100 users x 3 questions, enhanced_collaborative

QUESTIONS = (  # the original's three journeys: ideation, review, chatbot
    "Brainstorm three concepts for this product and the riskiest assumption of each",
    "Review our market notes: what is missing before we write the requirements?",
    "Who are our competitors and how should we price against them?",
)


def critical_path(cs):
    """Provider time on the longest chain of calls, where a call follows another when it
    started after that one ended (supporting agents side by side, then the primary): (seconds,
    calls on the chain)."""
    cs = sorted(cs, key=lambda r: r["started_mono"])
    best = []
    for i, c in enumerate(cs):
        dur = (c["ended_mono"] or c["started_mono"]) - c["started_mono"]
        prev = [best[j] for j in range(i) if cs[j]["ended_mono"] and
                cs[j]["ended_mono"] <= c["started_mono"] + 1e-6]
        p = max(prev, default=(0.0, 0))
        best.append((p[0] + dur, p[1] + 1))
    return max(best, default=(0.0, 0))


async def cmd_multi(a):
    users = json.load(open(a.users_file))[:a.users]
    if len(users) < a.users:
        raise SystemExit("multi: only %d users in %s" % (len(users), a.users_file))
    await fake_call(a.fake, "POST", "/_control/reset")
    # pace every call of these users like a fast hosted model (the fake's per-key scripts);
    # more steps than calls: 1 primary + at most 4 supporting agents per question
    tokens = [" tok%d" % i for i in range(1, a.tokens + 1)]
    step = {"kind": "ok", "tokens": tokens, "first_token_ms": a.first_token_ms,
            "tokens_per_s": a.tokens_per_s}
    for u in users:
        await fake_call(a.fake, "POST", "/_control/script",
                        {"key": u["key"], "steps": [step] * (a.questions * 5)})
    per_call = a.first_token_ms / 1000.0 + (a.tokens - 1) / a.tokens_per_s

    qs = []
    lag = LoopLag()
    stop = asyncio.Event()
    rss = []
    bg = [asyncio.ensure_future(lag.run())]
    if a.agentd_pid:
        bg.append(asyncio.ensure_future(sample_rss(a.agentd_pid, rss, stop)))

    async def user(k, u):
        await asyncio.sleep(a.ramp * k / max(1, len(users)))
        for q in range(a.questions):
            body = {"query": "[bench q%04d-%d] %s" % (k, q, QUESTIONS[q % len(QUESTIONS)]),
                    "product_id": u["product_id"],
                    "coordination_mode": "enhanced_collaborative"}
            if a.supporting:  # else the coordinator chooses (rag + the keyword agent)
                body["supporting_agents"] = a.supporting.split(",")
            s = Stream(a.base, u, body, (k, q))
            qs.append(s)
            await s.run()
            if q + 1 < a.questions:
                await asyncio.sleep(a.gap)

    cpu = CPU(a.cpu)
    cpu.start()
    t0 = time.monotonic()
    await asyncio.gather(*(user(k, u) for k, u in enumerate(users)))
    t1 = time.monotonic()
    cpu_use = cpu.stop()
    stop.set()
    lag.stop = True
    await asyncio.gather(*bg, return_exceptions=True)
    log = await fake_log(a.fake)
    await fake_call(a.fake, "POST", "/_control/reset")  # leftover script steps

    tre = tag_re("q")
    calls = {}
    for rec in log:
        m = tre.search(rec.get("prompt") or "")
        if m:
            calls.setdefault((int(m.group(1)), int(m.group(2))), []).append(rec)
    whole, first, cps, ratios, chain_calls, sup_counts, bad = [], [], [], [], {}, {}, []
    for s in qs:
        why = list(s.errors)
        if s.status != 200:
            why.append("HTTP %s" % s.status)
        if s.complete is None:
            why.append("no complete event")
        cs = calls.get(s.tag, [])
        if not cs or any(c.get("status") != 200 or not c.get("ended_mono") for c in cs):
            why.append("provider calls not all answered (%d)" % len(cs))
        prim = (s.complete or {}).get("metadata", {}) or {}
        pa = prim.get("primary_agent") if isinstance(prim, dict) else None
        if s.complete is not None:
            text = "".join(s.chunks.get(pa, [])) if pa else None
            if not s.complete.get("response") or (text is not None and text != s.complete["response"]):
                why.append("complete.response is not the primary agent's streamed answer")
        if s.t_first_event:
            first.append(s.t_first_event - s.t_sent)
        if s.t_complete:
            whole.append(s.t_complete - s.t_sent)
        if cs and all(c.get("ended_mono") for c in cs):
            cp, nchain = critical_path(cs)
            cps.append(cp)
            chain_calls[nchain] = chain_calls.get(nchain, 0) + 1
            sup_counts[len(cs) - 1] = sup_counts.get(len(cs) - 1, 0) + 1
            if s.t_complete:
                ratios.append((s.t_complete - s.t_sent) / cp if cp else None)
        if why:
            bad.append({"question": "%d-%d" % s.tag, "why": why[:4]})
    main_chain = max(chain_calls, key=chain_calls.get) if chain_calls else 0
    nominal = main_chain * per_call
    p95_whole = pct(whole, 95)
    p95_cp = pct(cps, 95)
    res = {
        "scenario": "multi", "users": len(users), "questions": a.questions,
        "mode": "enhanced_collaborative", "ramp_s": a.ramp, "gap_s": a.gap,
        "supporting_asked": a.supporting or None,
        "fake": {"first_token_ms": a.first_token_ms, "tokens_per_s": a.tokens_per_s,
                 "tokens": a.tokens, "per_call_s": round(per_call, 3)},
        "duration_s": round(t1 - t0, 2), "asked": len(qs), "errors": len(bad),
        "failures": bad[:10],
        "provider_calls_per_question": {str(k + 1): v for k, v in sorted(sup_counts.items())},
        "calls_on_critical_path": {str(k): v for k, v in sorted(chain_calls.items())},
        "critical_path_nominal_s": round(nominal, 3),
        "critical_path_measured_s": {"p50": round(pct(cps, 50) or 0, 3),
                                     "p95": round(p95_cp or 0, 3)},
        "whole_answer_s": {"p50": round(pct(whole, 50) or 0, 3), "p95": round(p95_whole or 0, 3),
                           "max": round(max(whole, default=0), 3)},
        "whole_over_critical_path": {
            "p95_whole_over_p95_path": round(p95_whole / p95_cp, 4) if p95_whole and p95_cp else None,
            "p95_whole_over_nominal": round(p95_whole / nominal, 4) if p95_whole and nominal else None,
            "per_question_p50": round(pct([r for r in ratios if r], 50) or 0, 4),
            "per_question_p95": round(pct([r for r in ratios if r], 95) or 0, 4)},
        "first_event_ms": {"p50": ms(pct(first, 50)), "p95": ms(pct(first, 95)),
                           "max": ms(max(first, default=None))},
        "agentd_rss_kib_max": max((v for _, v in rss), default=None),
        "cpu": cpu_use,
        "client_loop_lag": lag.figures(),
    }
    w = res["whole_over_critical_path"]["p95_whole_over_p95_path"]
    res["targets"] = {
        "whole_p95_lt_15s": p95_whole is not None and p95_whole < 15,
        "whole_p95_within_10pct_of_critical_path": w is not None and w <= 1.10,
        "first_event_p95_lt_300ms": res["first_event_ms"]["p95"] is not None
        and res["first_event_ms"]["p95"] < 300,
        "zero_errors": not bad and len(qs) == len(users) * a.questions,
    }
    res["met"] = all(res["targets"].values())
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    print("multi: %d questions in %.1f s; whole answer p50 %.2f s, p95 %.2f s; critical path"
          " (provider) p95 %.2f s, nominal %.2f s; p95 ratio %s; first event p95 %s ms; %d errors"
          % (len(qs), t1 - t0, pct(whole, 50) or 0, p95_whole or 0, p95_cp or 0, nominal, w,
             res["first_event_ms"]["p95"], len(bad)))
    for b in bad[:5]:
        print("  question %s: %s" % (b["question"], "; ".join(b["why"])))


# ---------------------------------------------------------------------------------------------
# report: RESULTS.md (the part between the markers; the text around it is kept)

BEGIN, END = "<!-- bench/agents/run.sh: begin -->", "<!-- bench/agents/run.sh: end -->"


def verdict(ok):
    return "PASS" if ok else "**MISS**"


def cmd_report(a):
    s1 = json.load(open(a.s1)) if a.s1 and os.path.exists(a.s1) else None
    s2 = json.load(open(a.s2)) if a.s2 and os.path.exists(a.s2) else None
    L = ["## Latest run (%s)" % a.when, "",
         "Machine: %s. Load average (1/5/15 min) before: %s; after: %s." % (a.machine, a.load_before, a.load_after),
         "Command: `%s`." % a.command, ""]
    if s1:
        t, d, p, th, r = s1["targets"], s1["first_chunk_delay_ms"], s1["products"], \
            s1["api_threads"], s1["agentd_rss_kib"]
        f = s1["fake"]
        L += ["### 1. %d concurrent streams (issue 11)" % s1["streams"], "",
              "%d users x %d streams (%s), primary agent only, fake provider at %g tokens/s with %g ms "
              "first-token delay and %d-token answers; %d streams open at once at the client, %s "
              "at the provider (max sampled); %.1f s from the first request to the last `complete`; "
              "every stream open and streaming from %s s to %s s."
              % (s1["users"], s1["per_user"],
                 "opened at %g per second" % s1["open_rate"] if s1.get("open_rate") else "all opened at once",
                 f["tokens_per_s"], f["first_token_ms"], f["tokens"],
                 s1["client_streams_open_max"], s1["fake_active_streams_max"], s1["duration_s"],
                 *(s1.get("all_open_window_s") or ["-", "-"])), "",
              "| measure | result | target | |", "|---|---|---|---|",
              "| first `agent_chunk` at the client - provider's first token, median | %s ms | <= 20 ms | %s |"
              % (d["p50"], verdict(t["first_chunk_p50_le_20ms"])),
              "| same, p99 (max) | %s ms (%s ms) | <= 50 ms | %s |"
              % (d["p99"], d["max"], verdict(t["first_chunk_p99_le_50ms"])),
              "| streams ending in `complete` with the whole answer, own key | %d of %d | all | %s |"
              % (s1["completed_ok"], s1["streams"], verdict(t["every_stream_completes"])),
              "| agentd RSS, max sampled (VmHWM after; before the run) | %.1f MiB (%.1f; %.1f) | < 100 MiB | %s |"
              % ((r["max_sampled"] or 0) / 1024, (r["vmhwm_after"] or 0) / 1024, (r["before"] or 0) / 1024,
                 verdict(t["agentd_rss_lt_100MiB"])),
              "| `GET /api/products` during the streams, %d conn. x 1 req / %g ms: p99 (p50) | %s ms (%s ms), %d requests, %.0f req/s | p99 < 50 ms | %s |"
              % (p["connections"], p["interval_ms"], p["p99_ms"], p["p50_ms"], p["requests"], p["rps"] or 0,
                 verdict(t["products_p99_lt_50ms"])),
              "| `GET /api/products` errors | %d | 0 | %s |" % (p["errors"], verdict(t["products_0_errors"])),
              "| API busy request threads, max sampled (`GET /status` every 100 ms, %d samples; mean) | %s of %s (%s; mean %s) | < half | %s |"
              % (th["samples"], th["busy_max"], th["total"], th["busy_max_fraction"], th.get("busy_mean"),
                 verdict(t["api_busy_lt_half"])),
              "",
              "API threads busy beyond the products loop's requests in flight at this client when "
              "each sample was asked for (so: stream requests and anything else): max %s, mean %s."
              % (th.get("busy_not_products_max"), th.get("busy_not_products_mean")),
              "",
              "While every stream was open (the window above): `GET /api/products` p99 %s ms (p50 %s ms, "
              "%s requests), API busy threads max %s of all." % (
                  s1["all_open_window"]["products_p99_ms"], s1["all_open_window"]["products_p50_ms"],
                  s1["all_open_window"]["products_requests"], s1["all_open_window"]["api_busy_max_fraction"]),
              "",
              "CPU during the run, %% of one CPU: %s; the machine's %d CPUs were %s %% busy (other "
              "engineers' work included)." % (
                  ", ".join("%s %s" % kv for kv in s1["cpu"]["percent_of_one_cpu"].items()),
                  os.cpu_count(), s1["cpu"]["machine_busy_percent"]),
              "",
              "Also measured: stream request sent -> first `agent_chunk` p50 %s ms / p99 %s ms (includes "
              "the 300 ms first-token delay); this client's own event-loop lag p99 %s ms, max %s ms (an "
              "upper bound of what it adds to its arrival times); provider calls with another user's "
              "key: %d; extra provider calls: %d."
              % (s1["stream_open_to_first_chunk_ms"]["p50"], s1["stream_open_to_first_chunk_ms"]["p99"],
                 s1["client_loop_lag"]["p99_ms"], s1["client_loop_lag"]["max_ms"], s1["wrong_key"],
                 s1["extra_provider_calls"]), ""]
        if s1["failures"]:
            L += ["Failures (first ones): " + "; ".join(
                "stream %s: %s" % (x["stream"], ", ".join(x["why"])) for x in s1["failures"][:3]), ""]
    if s2:
        t, f = s2["targets"], s2["fake"]
        w = s2["whole_over_critical_path"]
        L += ["### 2. Multi-agent, %s (issue 12)" % s2["mode"], "",
              "%d users, each asking %d questions one after another (%g s apart, users started over "
              "%g s, as the original's scripts/performance-test.py), about their product, "
              "supporting_agents %s, the primary agent chosen by the coordinator (the keyword agent "
              "of the question; it is dropped from the supporting agents); fake provider like a fast hosted model: %g ms first "
              "token, %g tokens/s, %d-token answers (%.2f s per call). Provider calls per question: %s; "
              "calls on the critical path: %s. %.1f s in all."
              % (s2["users"], s2["questions"], s2["gap_s"], s2["ramp_s"],
                 "`%s`" % json.dumps(s2["supporting_asked"].split(",")) if s2.get("supporting_asked")
                 else "not given (the coordinator chooses: rag + the keyword agent)", f["first_token_ms"],
                 f["tokens_per_s"], f["tokens"], f["per_call_s"],
                 ", ".join("%s calls: %s questions" % kv for kv in s2["provider_calls_per_question"].items()),
                 ", ".join("%s: %s questions" % kv for kv in s2["calls_on_critical_path"].items()),
                 s2["duration_s"]), "",
              "| measure | result | target | |", "|---|---|---|---|",
              "| whole answer (request sent -> `complete`), p95 (p50, max) | %.2f s (%.2f, %.2f) | < 15 s | %s |"
              % (s2["whole_answer_s"]["p95"], s2["whole_answer_s"]["p50"], s2["whole_answer_s"]["max"],
                 verdict(t["whole_p95_lt_15s"])),
              "| provider time on the critical path, measured at the fake: p95 (p50); nominal | %.2f s (%.2f); %.2f s | | |"
              % (s2["critical_path_measured_s"]["p95"], s2["critical_path_measured_s"]["p50"],
                 s2["critical_path_nominal_s"]),
              "| whole answer p95 / critical path p95 (/ nominal; per question p50, p95) | %s (%s; %s, %s) | <= 1.10 | %s |"
              % (w["p95_whole_over_p95_path"], w["p95_whole_over_nominal"], w["per_question_p50"],
                 w["per_question_p95"], verdict(t["whole_p95_within_10pct_of_critical_path"])),
              "| first event (progress or agent_start), p95 (p50, max) | %s ms (%s, %s) | < 300 ms | %s |"
              % (s2["first_event_ms"]["p95"], s2["first_event_ms"]["p50"], s2["first_event_ms"]["max"],
                 verdict(t["first_event_p95_lt_300ms"])),
              "| questions with an error | %d of %d | 0 | %s |" % (s2["errors"], s2["asked"], verdict(t["zero_errors"])),
              "", "agentd RSS max %.1f MiB; client loop lag p99 %s ms. CPU, %% of one CPU: %s; "
              "the machine %s %% busy."
              % ((s2["agentd_rss_kib_max"] or 0) / 1024, s2["client_loop_lag"]["p99_ms"],
                 ", ".join("%s %s" % kv for kv in s2["cpu"]["percent_of_one_cpu"].items()),
                 s2["cpu"]["machine_busy_percent"]), ""]
        if s2["failures"]:
            L += ["Failures (first ones): " + "; ".join(
                "question %s: %s" % (x["question"], ", ".join(x["why"])) for x in s2["failures"][:3]), ""]
    block = BEGIN + "\n" + "\n".join(L).rstrip() + "\n" + END
    old = open(a.results).read() if os.path.exists(a.results) else BEGIN + "\n" + END + "\n"
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + block + old[old.index(END) + len(END):]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    with open(a.results, "w") as f:
        f.write(new)
    met = (s1 is None or s1["met"]) and (s2 is None or s2["met"])
    print("report: %s updated; targets %s" % (a.results, "met" if met else "MISSED"))
    return 0 if met else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("setup")
    p.add_argument("--base", required=True)
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--out", required=True)
    for name in ("streams", "multi"):
        p = sub.add_parser(name)
        p.add_argument("--base", required=True)
        p.add_argument("--users-file", required=True)
        p.add_argument("--fake", required=True)
        p.add_argument("--agentd-pid", type=int)
        p.add_argument("--cpu", help='CPU accounting: "name:pid name:pid+ ..." (+: and children)')
        p.add_argument("--out", required=True)
        if name == "streams":
            p.add_argument("--users", type=int, default=50)
            p.add_argument("--per-user", type=int, default=10)
            p.add_argument("--tokens", type=int, required=True, help="the fake's --tokens")
            p.add_argument("--first-token-ms", type=float, default=300)
            p.add_argument("--tokens-per-s", type=float, default=20)
            p.add_argument("--products-conns", type=int, default=20)
            p.add_argument("--products-interval", type=float, default=0.05)
            p.add_argument("--open-rate", type=float, default=100,
                           help="streams opened per second; 0: all at once")
        else:
            p.add_argument("--users", type=int, default=100)
            p.add_argument("--questions", type=int, default=3)
            p.add_argument("--tokens", type=int, default=300)
            p.add_argument("--first-token-ms", type=float, default=800)
            p.add_argument("--tokens-per-s", type=float, default=60)
            p.add_argument("--ramp", type=float, default=30)
            p.add_argument("--gap", type=float, default=1)
            p.add_argument("--supporting", default="rag,strategy,validation",
                           help="supporting_agents of every question, comma-separated; "
                                "empty: the coordinator chooses")
    p = sub.add_parser("report")
    for k in ("s1", "s2", "when", "machine", "load-before", "load-after", "command"):
        p.add_argument("--" + k, default="")
    p.add_argument("--results", required=True)
    a = ap.parse_args()
    if a.cmd == "report":
        return cmd_report(a)
    if a.cmd == "streams" and not a.agentd_pid:
        ap.error("streams needs --agentd-pid")
    asyncio.run({"setup": cmd_setup, "streams": cmd_streams, "multi": cmd_multi}[a.cmd](a))
    return 0


if __name__ == "__main__":
    sys.exit(main())
