#!/usr/bin/env python3
"""bench/auth/logins.py - the seed's login storm: N concurrent logins of one account from one
address, each on its own connection, all released at the same instant.

    logins.py BASE_URL [N] [EMAIL] [PASSWORD]

Prints one line: "logins ok=<2xx> failed=<others> total_s=<s> per_s=<ok/total> p50_ms=..
p99_ms=.. max_ms=.. statuses=<status:count,...>".
"""

import http.client
import sys
import threading
import time
from urllib.parse import urlsplit


def main():
    base = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    email = sys.argv[3] if len(sys.argv) > 3 else "admin@ideaforge.ai"
    password = sys.argv[4] if len(sys.argv) > 4 else "password123"
    u = urlsplit(base)
    body = ('{"email": "%s", "password": "%s"}' % (email, password)).encode()
    start = threading.Barrier(n + 1)
    results = [None] * n

    def one(i):
        c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=300)
        c.connect()
        start.wait()
        t0 = time.monotonic()
        try:
            c.request("POST", "/api/auth/login", body=body,
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            results[i] = (r.status, time.monotonic() - t0)
        except Exception as e:  # noqa: BLE001 - counted as a failure
            results[i] = ("error:" + type(e).__name__, time.monotonic() - t0)
        finally:
            c.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join()
    total = time.monotonic() - t0
    lat = sorted(x[1] for x in results)
    ok = sum(1 for x in results if x[0] == 200)
    statuses = {}
    for s, _ in results:
        statuses[s] = statuses.get(s, 0) + 1

    def pct(p):
        return lat[min(len(lat) - 1, int(round(p / 100.0 * len(lat) + 0.5)) - 1)] * 1000

    print("logins ok=%d failed=%d total_s=%.3f per_s=%.1f p50_ms=%.1f p99_ms=%.1f max_ms=%.1f "
          "statuses=%s" % (ok, n - ok, total, ok / total, pct(50), pct(99), lat[-1] * 1000,
                           ",".join("%s:%d" % kv for kv in sorted(statuses.items(),
                                                                   key=str))))
    return 0 if ok == n else 1


if __name__ == "__main__":
    sys.exit(main())
