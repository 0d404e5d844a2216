#!/usr/bin/env bash
# bench/platform.sh - what the platform costs per request: ideaforge-api's trivial route
# against the smallest possible libfcgi program, both behind the same nginx, driven by wrk.
#
#   bench/platform.sh [RUN_DIR]
#
# RUN_DIR is the run directory of a running stack (default: run/dev of this checkout, started
# by `scripts/dev run`); the script reads its nginx.conf, site.conf, ideaforge.conf and
# api.pid and changes nothing in it. It then
#   1. builds bench/hello/hello.c and starts it with the API's workers x threads on its own
#      unix socket,
#   2. starts a temporary nginx: the stack's own configuration, on port BENCH_PORT, plus one
#      `location = /bench/hello` passing to hello - so both targets see the same nginx with the
#      same settings (headers, gzip, logging, FastCGI params),
#   3. runs `wrk -t2 -c200 -d15s --latency` against /bench/hello and /health/live (after a
#      short warm-up of each), ROUNDS times, alternating,
#   4. prints requests/s and p99 of each, their ratio (target: ours >= 80 % of hello), and the
#      RSS of the API's workers while idle, before and after the load (target: < 8 MiB).
# Exit status 0 when both targets are met, 1 when one is missed, 2 on a setup error.
#
# Environment: DURATION (15s), CONNECTIONS (200), WRK_THREADS (2), WARMUP (3s), ROUNDS (1),
# BENCH_PORT (18089), MIN_RATIO (80), MAX_RSS_KIB (8192).
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$top/bench/lib.sh"
RUN=${1:-$top/run/dev}
RUN=$(cd "$RUN" 2>/dev/null && pwd) || {
	echo "bench: no run directory ${1:-$top/run/dev}" >&2
	exit 2
}
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-200}
WRK_THREADS=${WRK_THREADS:-2}
WARMUP=${WARMUP:-3s}
ROUNDS=${ROUNDS:-1}
BENCH_PORT=${BENCH_PORT:-18089}
MIN_RATIO=${MIN_RATIO:-80}
MAX_RSS_KIB=${MAX_RSS_KIB:-8192}

die() { echo "bench: $*" >&2; exit 2; }

for f in nginx.conf site.conf ideaforge.conf api.pid; do
	[ -f "$RUN/$f" ] || die "$RUN/$f is missing: is the stack running (scripts/dev run)?"
done
command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
command -v nginx >/dev/null || die "nginx is not installed"
CC=${CC:-cc}

master=$(tr -dc '0-9' <"$RUN/api.pid")
[ -n "$master" ] && tr '\0' ' ' <"/proc/$master/cmdline" 2>/dev/null | grep -q ideaforge-api \
	|| die "ideaforge-api (pid file $RUN/api.pid) is not running"

# The API's process shape, which hello copies.
conf() {
	sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*\([^[:space:]#]*\).*/\1/p" \
		"$RUN/ideaforge.conf" | tail -n 1
}
WORKERS=$(conf workers)
THREADS=$(conf threads)
WORKERS=${WORKERS:-2}
THREADS=${THREADS:-8}

tmp=$(mktemp -d /tmp/ideaforge-bench.XXXXXX)
hello_pid=
cleanup() {
	if [ -f "$tmp/nginx.pid" ]; then
		kill -QUIT "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
		for _ in $(seq 50); do [ -f "$tmp/nginx.pid" ] || break; sleep 0.1; done
	fi
	if [ -n "$hello_pid" ]; then
		kill -TERM "$hello_pid" 2>/dev/null || true
		wait "$hello_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# --- 1. hello ------------------------------------------------------------------------------
"$CC" -O2 -o "$tmp/hello" "$top/bench/hello/hello.c" -lfcgi -lpthread \
	|| die "cannot build bench/hello/hello.c (libfcgi-dev installed?)"
"$tmp/hello" "unix:$tmp/hello.sock" "$WORKERS" "$THREADS" &
hello_pid=$!
for _ in $(seq 50); do [ -S "$tmp/hello.sock" ] && break; sleep 0.1; done
[ -S "$tmp/hello.sock" ] || die "hello did not create $tmp/hello.sock"

# --- 2. the temporary nginx ----------------------------------------------------------------
# The stack's site on another port, with the hello location added at the end of its server{}.
bench_site "$RUN/site.conf" "$BENCH_PORT" "$tmp/hello.sock" >"$tmp/site.conf"
grep -q "location = /bench/hello" "$tmp/site.conf" || die "could not add the hello location"
# Every path of the stack's nginx.conf (pid, logs, temp dirs, the site) moves to $tmp.
sed -e "s|$RUN|$tmp|g" "$RUN/nginx.conf" >"$tmp/nginx.conf"
cp "$RUN/fastcgi_params" "$tmp/fastcgi_params" 2>/dev/null || cp /etc/nginx/fastcgi_params "$tmp/"
mkdir -p "$tmp/nginx-tmp"
nginx -p "$tmp/" -e "$tmp/nginx-error.log" -c "$tmp/nginx.conf" -t -q \
	|| die "nginx rejected the temporary configuration $tmp/nginx.conf"
nginx -p "$tmp/" -e "$tmp/nginx-error.log" -c "$tmp/nginx.conf" || die "nginx did not start"

base=http://127.0.0.1:$BENCH_PORT
for path in /bench/hello /health/live; do
	ok=
	for _ in $(seq 50); do
		if [ "$(curl -s -o "$tmp/body" -w '%{http_code}' "$base$path")" = 200 ]; then
			ok=1
			break
		fi
		sleep 0.1
	done
	[ -n "$ok" ] || die "$base$path does not answer 200"
done
[ "$(curl -s "$base/bench/hello")" = "$(curl -s "$base/health/live")" ] \
	|| die "hello and /health/live do not answer the same body"

# --- 3. RSS and wrk ------------------------------------------------------------------------
# worker_rss: "MAX_KIB pid P RSS KiB (PSS KiB), ..." for the API workers (children of the
# master): VmRSS, the target, counts shared library pages in full; PSS divides them among the
# processes that map them, which is closer to what one more worker costs.
worker_rss() {
	local kids k max=0 v p all=""
	kids=$(cat /proc/"$master"/task/*/children 2>/dev/null)
	for k in $kids; do
		v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$k/status" 2>/dev/null) || continue
		[ -n "$v" ] || continue
		p=$(awk '/^Pss:/ { print $2 }' "/proc/$k/smaps_rollup" 2>/dev/null || true)
		all="$all pid $k ${v} KiB (PSS ${p:-?} KiB),"
		[ "$v" -gt "$max" ] && max=$v
	done
	echo "$max$all"
}

rss_before=$(worker_rss)

# cpu_ticks PID: CPU time (user + system, clock ticks) of PID's children, all their threads.
# Per request, it is what the application itself costs, whatever else loads the machine.
cpu_ticks() {
	local k t=0 v
	for k in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		v=$(awk '{ print $14 + $15 }' "/proc/$k/stat" 2>/dev/null) || continue
		t=$((t + ${v:-0}))
	done
	echo "$t"
}
HZ=$(getconf CLK_TCK)

# run_wrk PATH DURATION PID -> "rps p99_ms non2xx errors cpu_us_per_request" on stdout, wrk's
# report in $tmp/wrk.out; PID is the parent of the workers serving PATH.
run_wrk() {
	local c0 c1
	c0=$(cpu_ticks "$3")
	wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$2" --latency "$base$1" >"$tmp/wrk.out" 2>&1 \
		|| { cat "$tmp/wrk.out" >&2; die "wrk failed"; }
	c1=$(cpu_ticks "$3")
	local rps p99 bad err n
	read -r rps p99 bad err n < <(wrk_summary "$tmp/wrk.out")
	awk -v r="$rps" -v p="$p99" -v b="$bad" -v e="$err" -v n="$n" -v ticks=$((c1 - c0)) -v hz="$HZ" \
		'BEGIN { printf "%s %s %s %s %.1f\n", r, p, b, e, n ? ticks * 1e6 / hz / n : 0 }'
}

# pct A B: 100 * A / B with one decimal
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b > 0) ? (100 * a / b) : 0 }'; }

declare -A sum_rps sum_p99 sum_cpu bad
for t in hello ours; do sum_rps[$t]=0 sum_p99[$t]=0 sum_cpu[$t]=0 bad[$t]=0; done
path_of() { [ "$1" = hello ] && echo /bench/hello || echo /health/live; }
parent_of() { [ "$1" = hello ] && echo "$hello_pid" || echo "$master"; }

echo "bench: ideaforge-api ${WORKERS} workers x ${THREADS} threads vs hello (same shape);" \
	"wrk -t$WRK_THREADS -c$CONNECTIONS -d$DURATION --latency, $ROUNDS round(s), $(nproc) CPUs"
for t in hello ours; do
	run_wrk "$(path_of $t)" "$WARMUP" "$(parent_of $t)" >/dev/null
done
ratios=()
for round in $(seq "$ROUNDS"); do
	for t in hello ours; do
		read -r rps p99 non2xx errs cpu < <(run_wrk "$(path_of $t)" "$DURATION" "$(parent_of $t)")
		printf '  round %d %-5s %-13s %8.0f req/s  p99 %7.2f ms  %6.1f us CPU/req' \
			"$round" "$t" "$(path_of $t)" "$rps" "$p99" "$cpu"
		printf '  non-2xx %s  socket errors %s\n' "$non2xx" "$errs"
		sum_cpu[$t]=$(awk -v a="${sum_cpu[$t]}" -v b="$cpu" 'BEGIN { print a + b }')
		sum_rps[$t]=$(awk -v a="${sum_rps[$t]}" -v b="$rps" 'BEGIN { print a + b }')
		sum_p99[$t]=$(awk -v a="${sum_p99[$t]}" -v b="$p99" 'BEGIN { print a + b }')
		bad[$t]=$((bad[$t] + non2xx + errs))
		[ "$t" = hello ] && round_hello=$rps
	done
	# the two targets of one round ran back to back: their ratio is the least disturbed by
	# whatever else the machine was doing meanwhile
	ratios+=("$(pct "$rps" "$round_hello")")
done

sleep 2 # idle again
rss_after=$(worker_rss)

# --- 4. the figures ------------------------------------------------------------------------
avg() { awk -v s="$1" -v n="$ROUNDS" 'BEGIN { printf "%.0f", s / n }'; }
avg2() { awk -v s="$1" -v n="$ROUNDS" 'BEGIN { printf "%.2f", s / n }'; }
h_rps=$(avg "${sum_rps[hello]}") o_rps=$(avg "${sum_rps[ours]}")
h_p99=$(avg2 "${sum_p99[hello]}") o_p99=$(avg2 "${sum_p99[ours]}")
h_cpu=$(avg2 "${sum_cpu[hello]}") o_cpu=$(avg2 "${sum_cpu[ours]}")
ratio=$(pct "$o_rps" "$h_rps")
rss_max_before=${rss_before%% *} rss_max_after=${rss_after%% *}
rss_max=$((rss_max_before > rss_max_after ? rss_max_before : rss_max_after))

verdict() { [ "$1" = 1 ] && echo PASS || echo MISS; }
ratio_ok=$(awk -v r="$ratio" -v m="$MIN_RATIO" 'BEGIN { print (r >= m) ? 1 : 0 }')
rss_ok=$([ "$rss_max" -lt "$MAX_RSS_KIB" ] && echo 1 || echo 0)
errors_ok=$([ "${bad[hello]}" -eq 0 ] && [ "${bad[ours]}" -eq 0 ] && echo 1 || echo 0)

echo
printf '%-34s %8s req/s   p99 %7s ms   %6s us app CPU/request\n' \
	"bare libfcgi hello  /bench/hello" "$h_rps" "$h_p99" "$h_cpu"
printf '%-34s %8s req/s   p99 %7s ms   %6s us app CPU/request\n' \
	"ideaforge-api       /health/live" "$o_rps" "$o_p99" "$o_cpu"
printf 'ratio ours/hello: %s %% (target >= %s %%)  %s\n' "$ratio" "$MIN_RATIO" \
	"$(verdict "$ratio_ok")"
median=$(printf '%s\n' "${ratios[@]}" | sort -n |
	awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
printf 'per-round ratios: %s %%; median %s %%\n' "${ratios[*]}" "$median"
printf 'idle worker RSS (VmRSS): before the load: %s after: %s\n' "${rss_before#* }" \
	"${rss_after#* }"
printf 'largest idle worker RSS: %.1f MiB (target < %.0f MiB)  %s\n' \
	"$(awk -v k="$rss_max" 'BEGIN { print k / 1024 }')" \
	"$(awk -v k="$MAX_RSS_KIB" 'BEGIN { print k / 1024 }')" "$(verdict "$rss_ok")"
[ "$errors_ok" = 1 ] \
	|| echo "errors: hello ${bad[hello]}, ours ${bad[ours]} (non-2xx or socket errors)"

[ "$ratio_ok" = 1 ] && [ "$rss_ok" = 1 ] && [ "$errors_ok" = 1 ]
