#!/usr/bin/env bash
# bench/products/run.sh - the product API under 200 distinct users (issue 4 item 8).
#
#   bench/products/run.sh [RUN_DIR]
#
# RUN_DIR is the run directory of a running stack (default: run/dev, started by
# `scripts/dev run`): its PostgreSQL and Redis are used, its config read; nothing in it is
# changed. The script
#   1. loads bench/products/seed.sql into the stack's database: tenant bench-products, USERS
#      users each owning 9 products with 2 shares received (so each list has 11 products), a
#      submission, 3 articles and a chat session per product (rerun-safe: replaces its data);
#   2. starts its own ideaforge-api from the stack's config on a private socket, with the
#      per-user rate limit raised out of the way (the limiter still runs on every request) and
#      db_pool_size = threads (DB_POOL_SIZE overrides), and
#      bench/hello/hello.c with the same workers x threads;
#   3. starts a temporary nginx: the stack's site on BENCH_PORT pointing at that API, plus
#      `location = /bench/hello` for hello - both targets behind the same nginx;
#   4. logs the USERS users in through POST /api/auth/login (real sessions and tokens);
#   5. runs wrk -c CONNECTIONS: /bench/hello, then GET /api/products rotating the users'
#      tokens over the requests (list.lua), ROUNDS times, alternating; then the mixed workload
#      (mixed.lua) for MIXED_DURATION;
#   6. prints requests/s and p99 of each, the ratio list/hello (target >= 40 %, p99 < 25 ms),
#      PostgreSQL transactions per list request (target: 1, one round trip; counted from
#      pg_stat_database, minus what happened during the same time of the hello run), and the mixed
#      workload's errors and p99 (targets: 0 errors, p99 < 50 ms).
# Exit status 0 when every target is met, 1 when one is missed, 2 on a setup error.
#
# Environment: USERS (200), CONNECTIONS (200), WRK_THREADS (2), DURATION (30s), WARMUP (5s),
# ROUNDS (1), MIXED_DURATION (60s; 0 skips the mixed workload), BENCH_PORT (18090),
# DB_POOL_SIZE (threads), IDEAFORGE_BUILD_DIR (build), KEEPALIVE (the site as it is; 1 adds
# persistent FastCGI connections to the API: an upstream keepalive pool and fastcgi_keep_conn;
# 0 removes them), PERF_OUT (a file: a system-wide perf record of the list run; PERF_RUN=mixed
# records the mixed run instead). Each run also prints the CPU time per request of every
# process class (api, nginx, postgres, redis, hello, wrk) from /proc, for the mixed run too.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$top/bench/lib.sh"
here=$top/bench/products
RUN=${1:-$top/run/dev}
RUN=$(cd "$RUN" 2>/dev/null && pwd) || { echo "bench: no run directory ${1:-$top/run/dev}" >&2; exit 2; }
USERS=${USERS:-200}
CONNECTIONS=${CONNECTIONS:-200}
WRK_THREADS=${WRK_THREADS:-2}
DURATION=${DURATION:-30s}
WARMUP=${WARMUP:-5s}
ROUNDS=${ROUNDS:-1}
MIXED_DURATION=${MIXED_DURATION:-60s}
BENCH_PORT=${BENCH_PORT:-18090}
BUILD=${IDEAFORGE_BUILD_DIR:-$top/build}
PASSWORD=password123

die() { echo "bench: $*" >&2; exit 2; }

for f in nginx.conf site.conf ideaforge.conf; do
	[ -f "$RUN/$f" ] || die "$RUN/$f is missing: is the stack running (scripts/dev run)?"
done
for c in wrk nginx curl; do
	command -v $c >/dev/null || die "$c is not installed"
done
[ -x "$BUILD/ideaforge-api" ] || die "$BUILD/ideaforge-api is not built"
[ "$USERS" -ge 3 ] || die "USERS must be at least 3"
CC=${CC:-cc}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
PSQL="$PG_BIN/psql"

# A key of the stack's config, the whole value (database_url has spaces).
conf() { sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$RUN/ideaforge.conf" | tail -n 1; }
DBURL=$(conf database_url)
WORKERS=$(conf workers)
THREADS=$(conf threads)
WORKERS=${WORKERS:-2}
THREADS=${THREADS:-8}
[ -n "$DBURL" ] || die "no database_url in $RUN/ideaforge.conf"
sql() { "$PSQL" "$DBURL" -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }

tmp=$(mktemp -d /tmp/ideaforge-bench-products.XXXXXX)
api_pid= hello_pid=
cleanup() {
	if [ -f "$tmp/nginx.pid" ]; then
		kill -QUIT "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
		for _ in $(seq 50); do [ -f "$tmp/nginx.pid" ] || break; sleep 0.1; done
	fi
	[ -n "$api_pid" ] && kill -TERM "$api_pid" 2>/dev/null || true
	[ -n "$hello_pid" ] && kill -KILL -- "-$hello_pid" 2>/dev/null || true
	for p in $api_pid $hello_pid; do
		wait "$p" 2>/dev/null || true
	done
	[ -n "${KEEP_TMP:-}" ] && echo "bench: kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT

# --- 1. data -------------------------------------------------------------------------------
hash=$(sql -c "SELECT password_hash FROM user_profiles WHERE email = 'admin@ideaforge.ai'")
if [ -z "$hash" ]; then
	"$BUILD/ideaforgectl" --config "$RUN/ideaforge.conf" seed-demo >/dev/null ||
		die "cannot load the demo seed (for the password hash)"
	hash=$(sql -c "SELECT password_hash FROM user_profiles WHERE email = 'admin@ideaforge.ai'")
fi
echo "bench: seeding $USERS users x 9 products"
sql -v hash="$hash" -v users="$USERS" -f "$here/seed.sql" >/dev/null

# --- 2. our API and hello ------------------------------------------------------------------
# db_pool_size = threads: lib/db.c closes an overflow connection as soon as it is returned, so a
# pool smaller than the thread count reconnects to PostgreSQL on most requests under load
# (about 300 req/s instead of thousands); see RESULTS.md.
"$BUILD/ideaforge-api" --config "$RUN/ideaforge.conf" --listen "unix:$tmp/api.sock" --ops_listen= \
	--rl_default_per_min=10000000 --db_pool_size="${DB_POOL_SIZE:-$THREADS}" \
	</dev/null >"$tmp/api.log" 2>&1 &
api_pid=$!
"$CC" -O2 -o "$tmp/hello" "$top/bench/hello/hello.c" -lfcgi -lpthread ||
	die "cannot build bench/hello/hello.c"
# its own process group, so that its workers go with it whatever happens
setsid "$tmp/hello" "unix:$tmp/hello.sock" "$WORKERS" "$THREADS" </dev/null >"$tmp/hello.log" 2>&1 &
hello_pid=$!
for _ in $(seq 100); do
	[ -S "$tmp/api.sock" ] && [ -S "$tmp/hello.sock" ] && break
	sleep 0.1
done
[ -S "$tmp/api.sock" ] || { tail "$tmp/api.log" >&2; die "ideaforge-api did not start"; }
[ -S "$tmp/hello.sock" ] || die "hello did not start"

# --- 3. nginx ------------------------------------------------------------------------------
api_sock=$(sed -n 's/^[[:space:]]*server unix:\(.*\);/\1/p' "$RUN/site.conf" | head -n 1)
[ -n "$api_sock" ] || die "no API upstream in $RUN/site.conf"
bench_site "$RUN/site.conf" "$BENCH_PORT" "$tmp/hello.sock" "$tmp/api.sock" >"$tmp/site.conf"
# KEEPALIVE=0: nginx opens a connection to the API per request; KEEPALIVE=1: it keeps them
# (a pool of 256 per nginx worker); unset: as the stack's site says. For A/B runs.
if [ -n "${KEEPALIVE:-}" ]; then
	sed -i -e '/^[[:space:]]*keepalive [0-9]*;/d' -e '/^[[:space:]]*fastcgi_keep_conn on;/d' "$tmp/site.conf"
fi
if [ "${KEEPALIVE:-}" = 1 ]; then
	sed -i -e '/^upstream ideaforge_api {/a\	keepalive 256;' \
		-e '/^[[:space:]]*include fastcgi_params;/a\	fastcgi_keep_conn on;' "$tmp/site.conf"
fi
echo "bench: persistent FastCGI connections to the API:" \
	"$(grep -q '^[[:space:]]*fastcgi_keep_conn on;' "$tmp/site.conf" && echo on || echo off)"
sed -e "s|$RUN|$tmp|g" "$RUN/nginx.conf" >"$tmp/nginx.conf"
cp "$RUN/fastcgi_params" "$tmp/fastcgi_params" 2>/dev/null || cp /etc/nginx/fastcgi_params "$tmp/"
mkdir -p "$tmp/nginx-tmp"
nginx -p "$tmp/" -e "$tmp/nginx-error.log" -c "$tmp/nginx.conf" -t -q || die "nginx rejected $tmp/nginx.conf"
nginx -p "$tmp/" -e "$tmp/nginx-error.log" -c "$tmp/nginx.conf" || die "nginx did not start"
base=http://127.0.0.1:$BENCH_PORT
for _ in $(seq 50); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/health/live")" = 200 ] && break
	sleep 0.1
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/bench/hello")" = 200 ] || die "hello does not answer"

# --- 4. sessions ---------------------------------------------------------------------------
echo "bench: logging in $USERS users"
sql -c "SELECT u.email || ' ' || string_agg(p.id || ':' || md5('bench-session-' || p.id)::uuid,
		' ' ORDER BY p.created_at DESC)
	FROM user_profiles u JOIN products p ON p.user_id = u.id
	WHERE u.tenant_id = 'bbbbbbbb-0000-0000-0000-000000000001'
	GROUP BY u.email ORDER BY u.email" >"$tmp/users.txt"
login() {
	local email=$1 rest=$2 tok
	tok=$(curl -s -X POST "$base/api/auth/login" -H 'Content-Type: application/json' \
		-d "{\"email\":\"$email\",\"password\":\"$PASSWORD\"}" |
		sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
	[ -n "$tok" ] && echo "$tok $rest"
}
while read -r email rest; do
	login "$email" "$rest" || die "login of $email failed"
done <"$tmp/users.txt" >"$tmp/tokens.txt"
[ "$(wc -l <"$tmp/tokens.txt")" -eq "$USERS" ] || die "not every user could log in"
first=$(head -n 1 "$tmp/tokens.txt" | cut -d' ' -f1)
count=$(curl -s "$base/api/products" -H "Authorization: Bearer $first" | grep -o '"access_level"' | wc -l)
[ "$count" -eq 11 ] || die "a bench user sees $count products, expected 11"

# --- 5. wrk --------------------------------------------------------------------------------
# run_wrk NAME DURATION PATH [SCRIPT] -> "rps p99_ms non2xx socket_errors"; report in $tmp/NAME.out
run_wrk() {
	local name=$1 dur=$2 path=$3 script=${4:-}
	local args=(-t"$WRK_THREADS" -c"$CONNECTIONS" -d"$dur" --latency)
	[ -n "$script" ] && args+=(-s "$script")
	args+=("$base$path")
	[ -n "$script" ] && args+=(-- "$tmp/tokens.txt")
	cpu_snap >"$tmp/$name.cpu0"
	# PERF_OUT=FILE: a system-wide `perf record -g` (cpu-clock) over the list run (PERF_RUN: another)
	if [ -n "${PERF_OUT:-}" ] && [ "$name" = "${PERF_RUN:-list}" ]; then
		perf record -q -a -g -F 499 -e cpu-clock -o "$PERF_OUT" -- sleep "${dur%s}" \
			>/dev/null 2>&1 &
	fi
	/usr/bin/time -f 'cpu %U %S' wrk "${args[@]}" >"$tmp/$name.out" 2>&1 ||
		{ cat "$tmp/$name.out" >&2; die "wrk failed"; }
	cpu_snap >"$tmp/$name.cpu1"
	local w_rps w_p99 w_bad w_err
	read -r w_rps w_p99 w_bad w_err _ < <(wrk_summary "$tmp/$name.out")
	echo "$w_rps $w_p99 $w_bad $w_err"
}
# CPU accounting: clock ticks (user + system) of each process class, from /proc/<pid>/stat;
# a class is a process and its descendants (api: our ideaforge-api master and workers, nginx:
# the temporary nginx, postgres: the stack's postmaster and its backends, redis: the stack's
# Redis, hello). cpu_snap prints "class ticks" lines; wrk's own CPU comes from /usr/bin/time.
PGHOST_DIR=$(printf '%s\n' "$DBURL" | sed -n 's/.*host=\([^ ]*\).*/\1/p')
tree_ticks() {
	local pids=$1 all=" $1 " kids p
	while [ -n "$pids" ]; do
		kids=
		for p in $pids; do
			kids="$kids $(cat /proc/"$p"/task/*/children 2>/dev/null)"
		done
		pids=$(echo $kids)
		all="$all $pids "
	done
	local t=0
	for p in $all; do
		[ -r /proc/"$p"/stat ] || continue
		t=$((t + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' /proc/"$p"/stat)))
	done
	echo "$t"
}
cpu_snap() {
	echo "api $(tree_ticks "$api_pid")"
	echo "nginx $(tree_ticks "$(cat "$tmp/nginx.pid" 2>/dev/null)")"
	echo "postgres $(tree_ticks "$(head -n 1 "$PGHOST_DIR/postmaster.pid" 2>/dev/null)")"
	echo "redis $(tree_ticks "$(cat "$RUN/redis.pid" 2>/dev/null)")"
	echo "hello $(tree_ticks "$hello_pid")"
}
# cpu_report NAME BEFORE_FILE AFTER_FILE REQUESTS: microseconds of CPU per request per class
cpu_report() {
	local wrk_s
	wrk_s=$(awk '/^cpu / { print $2 + $3 }' "$tmp/$1.out")
	awk -v name="$1" -v n="$4" -v hz="$(getconf CLK_TCK)" -v wrk="${wrk_s:-0}" '
		FNR == NR { b[$1] = $2; next }
		{ d = ($2 - b[$1]) * 1e6 / hz / n; tot += d; s = s sprintf("  %s %.0f", $1, d) }
		END { w = wrk * 1e6 / n; printf "  cpu us/request %s:%s  wrk %.0f  total %.0f\n", name, s, w, tot + w }' \
		"$2" "$3"
}
xacts() { sql -c "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"; }
requests_of() { awk '/requests in/ { print $1 }' "$tmp/$1.out"; }

echo "bench: ideaforge-api ${WORKERS} workers x ${THREADS} threads, $USERS users;" \
	"wrk -t$WRK_THREADS -c$CONNECTIONS -d$DURATION --latency, $ROUNDS round(s), $(nproc) CPUs"
echo "bench: load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
run_wrk warm-hello "$WARMUP" /bench/hello >/dev/null
run_wrk warm-list "$WARMUP" / "$here/list.lua" >/dev/null
declare -A sum_rps sum_p99 bad
for t in hello list; do sum_rps[$t]=0 sum_p99[$t]=0 bad[$t]=0; done
tx_total=0 req_total=0 bg_total=0
for round in $(seq "$ROUNDS"); do
	hx0=$(xacts)
	read -r rps p99 non2xx errs < <(run_wrk hello "$DURATION" /bench/hello)
	sleep 2
	hx1=$(xacts)
	# transactions nobody asked for during hello (other clients, autovacuum): subtracted below
	bg_total=$((bg_total + hx1 - hx0 - 1))
	printf '  round %d hello GET /bench/hello   %9.0f req/s  p99 %7.2f ms  non-2xx %s  socket errors %s\n' \
		"$round" "$rps" "$p99" "$non2xx" "$errs"
	cpu_report hello "$tmp/hello.cpu0" "$tmp/hello.cpu1" "$(requests_of hello)"
	sum_rps[hello]=$(awk -v a="${sum_rps[hello]}" -v b="$rps" 'BEGIN { print a + b }')
	sum_p99[hello]=$(awk -v a="${sum_p99[hello]}" -v b="$p99" 'BEGIN { print a + b }')
	bad[hello]=$((bad[hello] + non2xx + errs))
	sleep 1
	tx0=$(xacts)
	read -r rps p99 non2xx errs < <(run_wrk list "$DURATION" / "$here/list.lua")
	sleep 2 # statistics reach pg_stat_database within a second
	tx1=$(xacts)
	tx_total=$((tx_total + tx1 - tx0 - 1)) # minus our own reading
	req_total=$((req_total + $(requests_of list)))
	printf '  round %d list  GET /api/products  %9.0f req/s  p99 %7.2f ms  non-2xx %s  socket errors %s\n' \
		"$round" "$rps" "$p99" "$non2xx" "$errs"
	cpu_report list "$tmp/list.cpu0" "$tmp/list.cpu1" "$(requests_of list)"
	sum_rps[list]=$(awk -v a="${sum_rps[list]}" -v b="$rps" 'BEGIN { print a + b }')
	sum_p99[list]=$(awk -v a="${sum_p99[list]}" -v b="$p99" 'BEGIN { print a + b }')
	bad[list]=$((bad[list] + non2xx + errs))
done

m_rps=0 m_p99=0 m_non2xx=0 m_errs=0
if [ "$MIXED_DURATION" != 0 ]; then
	echo "bench: mixed workload, $USERS users, $MIXED_DURATION"
	read -r m_rps m_p99 m_non2xx m_errs < <(run_wrk mixed "$MIXED_DURATION" / "$here/mixed.lua")
	grep '^mixed:' "$tmp/mixed.out" | sed 's/^/  /'
	cpu_report mixed "$tmp/mixed.cpu0" "$tmp/mixed.cpu1" "$(requests_of mixed)"
fi

echo "bench: load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- 6. figures ----------------------------------------------------------------------------
avg() { awk -v s="$1" -v n="$ROUNDS" 'BEGIN { printf "%.0f", s / n }'; }
avg2() { awk -v s="$1" -v n="$ROUNDS" 'BEGIN { printf "%.2f", s / n }'; }
h_rps=$(avg "${sum_rps[hello]}") l_rps=$(avg "${sum_rps[list]}")
h_p99=$(avg2 "${sum_p99[hello]}") l_p99=$(avg2 "${sum_p99[list]}")
ratio=$(awk -v o="$l_rps" -v h="$h_rps" 'BEGIN { printf "%.1f", (h > 0) ? (100 * o / h) : 0 }')
tpr=$(awk -v t="$tx_total" -v b="$bg_total" -v r="$req_total" \
	'BEGIN { t -= (b > 0 ? b : 0); printf "%.2f", (r > 0) ? t / r : 0 }')
verdict() { [ "$1" = 1 ] && echo PASS || echo MISS; }
ok_ratio=$(awk -v r="$ratio" 'BEGIN { print (r >= 40) ? 1 : 0 }')
ok_p99=$(awk -v p="$l_p99" 'BEGIN { print (p < 25) ? 1 : 0 }')
ok_tx=$(awk -v t="$tpr" 'BEGIN { print (t <= 1.05) ? 1 : 0 }')
ok_list_err=$([ "${bad[list]}" -eq 0 ] && echo 1 || echo 0)
ok_m_err=$([ "$((m_non2xx + m_errs))" -eq 0 ] && echo 1 || echo 0)
ok_m_p99=$(awk -v p="$m_p99" 'BEGIN { print (p < 50) ? 1 : 0 }')

echo
printf '%-40s %9s req/s   p99 %7s ms\n' "bare libfcgi hello   GET /bench/hello" "$h_rps" "$h_p99"
printf '%-40s %9s req/s   p99 %7s ms\n' "ideaforge-api        GET /api/products" "$l_rps" "$l_p99"
printf 'list/hello: %s %% (target >= 40 %%)  %s\n' "$ratio" "$(verdict "$ok_ratio")"
printf 'list p99: %s ms (target < 25 ms)  %s\n' "$l_p99" "$(verdict "$ok_p99")"
printf 'list errors (non-2xx + socket): %s  %s\n' "${bad[list]}" "$(verdict "$ok_list_err")"
printf 'PostgreSQL transactions per list request: %s (target: 1)  %s\n' "$tpr" "$(verdict "$ok_tx")"
printf 'mixed: %s req/s, errors %s (target 0)  %s, p99 %s ms (target < 50 ms)  %s\n' \
	"$m_rps" "$((m_non2xx + m_errs))" "$(verdict "$ok_m_err")" "$m_p99" "$(verdict "$ok_m_p99")"

[ "$ok_ratio$ok_p99$ok_tx$ok_list_err$ok_m_err$ok_m_p99" = 111111 ]
