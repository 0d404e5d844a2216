#!/usr/bin/env bash
# bench/memory/run.sh - does a worker grow? Worker RSS after 100 000 requests vs after 1 000.
#
#   bench/memory/run.sh [RUN_DIR] [BASE_URL]
#
# Against a running stack (default run/dev of scripts/dev run, http://127.0.0.1:8080): logs the
# demo admin in, sends 1 000 authenticated GET /api/products with wrk (2 threads, 20
# connections, stopped once the API's request counter in /metrics has grown by as many; the
# counter is sampled twice a second, so the counts are approximate), reads VmRSS of every
# worker (the children of the master in RUN_DIR/api.pid), sends 99 000 more, reads again, and
# prints both with the growth in percent. Target (issue 14 item 6): within 10 %. Exit status 0
# when met. Knobs: PATH_UNDER_TEST (default /api/products), EMAIL, PASSWORD.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
run=${1:-$top/run/dev}
base=${2:-http://127.0.0.1:8080}
path=${PATH_UNDER_TEST:-/api/products}
email=${EMAIL:-admin@ideaforge.ai}
password=${PASSWORD:-password123}
command -v wrk >/dev/null || { echo "bench/memory: needs wrk (apt install wrk)" >&2; exit 2; }

master=$(cat "$run/api.pid")
token=$(curl -fsS -H 'Content-Type: application/json' \
	-d "{\"email\":\"$email\",\"password\":\"$password\"}" "$base/api/auth/login" |
	sed -n 's/.*"token" *: *"\([^"]*\)".*/\1/p')
[ -n "$token" ] || { echo "bench/memory: login failed" >&2; exit 2; }

workers() { cat /proc/"$master"/task/*/children 2>/dev/null | tr ' ' '\n' | sed '/^$/d' | sort -u; }
rss_kib() {
	local total=0 pid v
	for pid in $(workers); do
		v=$(awk '/^VmRSS:/ { print $2 }' /proc/"$pid"/status 2>/dev/null || echo 0)
		total=$((total + ${v:-0}))
	done
	echo "$total"
}
# requests the API has answered so far (its own counter, all workers)
served() {
	curl -fsS "$base/metrics" | awk '/^ideaforge_http_requests_total/ { n += $2 } END { printf "%d", n }'
}
send() { # about N more requests: wrk runs until the API's counter says so
	local until=$(($(served) + $1)) pid
	BENCH_PATH=$path BENCH_TOKEN=$token \
		wrk -t2 -c20 -d600s -s "$top/bench/memory/count.lua" "$base" >/dev/null &
	pid=$!
	while [ "$(served)" -lt "$until" ]; do
		sleep 0.05
	done
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

before_pids=$(workers | tr '\n' ' ')
send 1000
sleep 2 # the argon2/arena memory given back after a second idle
r1=$(rss_kib)
send 99000
sleep 2
r2=$(rss_kib)
after_pids=$(workers | tr '\n' ' ')
[ "$before_pids" = "$after_pids" ] || echo "note: the workers changed during the run ($before_pids -> $after_pids)"
growth=$(awk -v a="$r1" -v b="$r2" 'BEGIN { printf "%.1f", (b - a) * 100 / a }')
printf 'workers: %s\nRSS after ~1 000 requests:   %d KiB\nRSS after ~100 000 requests: %d KiB\ngrowth: %s %% (target within 10 %%); requests counted: %s\n' \
	"$after_pids" "$r1" "$r2" "$growth" "$(served)"
awk -v g="$growth" 'BEGIN { exit (g <= 10 && g >= -10) ? 0 : 1 }'
