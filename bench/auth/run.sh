#!/usr/bin/env bash
# bench/auth/run.sh - what authentication costs: the seed's login storm next to the argon2id
# limit of the machine, and GET /api/auth/me at 200 connections next to the bare libfcgi hello.
#
#   bench/auth/run.sh [RUN_DIR]
#
# RUN_DIR is the run directory of a running stack (default: run/dev of this checkout, started by
# `scripts/dev run`, which loads the demo account admin@ideaforge.ai / password123). The stack
# itself is left alone; the script
#   1. builds bench/auth/hashtime.c and times one argon2id hash at the stack's configured
#      parameters: the login rate this machine can sustain is at most CPUs / that time;
#   2. starts its own ideaforge-api from the stack's configuration (same PostgreSQL, Redis,
#      secret, workers and threads) on a private socket, with the per-user default rate limit
#      raised so that 200 connections of one user measure the server rather than the limiter
#      (the limiter's Redis script still runs on every request), and bench/hello/hello.c with
#      the same process shape;
#   3. starts a temporary nginx: the stack's site on BENCH_PORT, its API upstream pointed at the
#      private API, plus `location = /bench/hello`;
#   4. fires LOGINS (200) concurrent logins of the demo account from one address, all released
#      at once (bench/auth/logins.py): successes, total time, logins/s, p50/p99 - next to the
#      argon2id limit (target: all succeed, >= 80 % of the limit);
#   5. runs `wrk -t2 -c200 -d15s --latency` against /bench/hello, /health/live and
#      /api/auth/me (with the token as Bearer), ROUNDS times, alternating: requests/s and p99
#      (target for /me: >= 50 % of hello's requests/s, p99 < 20 ms).
# Exit status 0 when every target is met, 1 when one is missed, 2 on a setup error.
#
# Environment: DURATION (15s), CONNECTIONS (200), WRK_THREADS (2), WARMUP (3s), ROUNDS (2),
# LOGINS (200), BENCH_PORT (18189), EMAIL, PASSWORD.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$top/bench/lib.sh"
RUN=${1:-$top/run/dev}
RUN=$(cd "$RUN" 2>/dev/null && pwd) || { echo "bench: no run directory ${1:-$top/run/dev}" >&2; exit 2; }
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-200}
WRK_THREADS=${WRK_THREADS:-2}
WARMUP=${WARMUP:-3s}
ROUNDS=${ROUNDS:-2}
LOGINS=${LOGINS:-200}
BENCH_PORT=${BENCH_PORT:-18189}
EMAIL=${EMAIL:-admin@ideaforge.ai}
PASSWORD=${PASSWORD:-password123}
CC=${CC:-cc}

die() { echo "bench: $*" >&2; exit 2; }

for f in nginx.conf site.conf ideaforge.conf; do
	[ -f "$RUN/$f" ] || die "$RUN/$f is missing: is the stack running (scripts/dev run)?"
done
command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
command -v nginx >/dev/null || die "nginx is not installed"
command -v python3 >/dev/null || die "python3 is not installed"
API_BIN=${API_BIN:-$top/build/ideaforge-api}
[ -x "$API_BIN" ] || die "$API_BIN is not built (scripts/dev run builds it)"
[ -f "$top/bench/hello/hello.c" ] || die "bench/hello/hello.c is missing (the platform baseline)"

conf() { sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*\([^[:space:]#]*\).*/\1/p" "$RUN/ideaforge.conf" | tail -n 1; }
WORKERS=$(conf workers)
THREADS=$(conf threads)
WORKERS=${WORKERS:-2}
THREADS=${THREADS:-8}
M_KIB=$(conf argon2_memory_kib)
T_COST=$(conf argon2_iterations)
P_LANES=$(conf argon2_parallelism)
M_KIB=${M_KIB:-19456}
T_COST=${T_COST:-2}
P_LANES=${P_LANES:-1}
CPUS=$(nproc)

tmp=$(mktemp -d /tmp/ideaforge-bench-auth.XXXXXX)
hello_pid=
api_pid=
cleanup() {
	if [ -f "$tmp/nginx.pid" ]; then
		kill -QUIT "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
		for _ in $(seq 50); do [ -f "$tmp/nginx.pid" ] || break; sleep 0.1; done
	fi
	for p in $hello_pid $api_pid; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

# --- 1. the argon2id limit -----------------------------------------------------------------
"$CC" -O2 -o "$tmp/hashtime" "$top/bench/auth/hashtime.c" -largon2 -lpthread \
	|| die "cannot build bench/auth/hashtime.c (libargon2-dev installed?)"
read -r _ hash_ms hash_min hash_max < <("$tmp/hashtime" "$M_KIB" "$T_COST" "$P_LANES" 15)
limit=$(awk -v c="$CPUS" -v ms="$hash_ms" 'BEGIN { printf "%.1f", c * 1000 / ms }')
# what CPUS threads hashing at once really sustain (memory bandwidth is shared)
read -r _ par_rate < <("$tmp/hashtime" "$M_KIB" "$T_COST" "$P_LANES" 10 "$CPUS")

# --- 2. the private API and hello ----------------------------------------------------------
setsid "$API_BIN" --config "$RUN/ideaforge.conf" --listen "unix:$tmp/api.sock" --ops_listen= \
	--rl_default_per_min=10000000 </dev/null >"$tmp/api.log" 2>&1 &
api_pid=$!
"$CC" -O2 -o "$tmp/hello" "$top/bench/hello/hello.c" -lfcgi -lpthread \
	|| die "cannot build bench/hello/hello.c (libfcgi-dev installed?)"
"$tmp/hello" "unix:$tmp/hello.sock" "$WORKERS" "$THREADS" &
hello_pid=$!
for _ in $(seq 100); do [ -S "$tmp/api.sock" ] && [ -S "$tmp/hello.sock" ] && break; sleep 0.1; done
[ -S "$tmp/api.sock" ] || { cat "$tmp/api.log" >&2; die "the private ideaforge-api did not start"; }
[ -S "$tmp/hello.sock" ] || die "hello did not create $tmp/hello.sock"

# --- 3. the temporary nginx ----------------------------------------------------------------
bench_site "$RUN/site.conf" "$BENCH_PORT" "$tmp/hello.sock" "$tmp/api.sock" >"$tmp/site.conf"
grep -q "server unix:$tmp/api.sock;" "$tmp/site.conf" || die "could not point the site at the private API"
sed -e "s|$RUN|$tmp|g" -e "s|access_log [^;]*;|access_log off;|" "$RUN/nginx.conf" >"$tmp/nginx.conf"
cp "$RUN/fastcgi_params" "$tmp/fastcgi_params" 2>/dev/null || cp /etc/nginx/fastcgi_params "$tmp/"
mkdir -p "$tmp/nginx-tmp"
nginx -p "$tmp/" -e "$tmp/nginx-error.log" -c "$tmp/nginx.conf" -t -q \
	|| die "nginx rejected the temporary configuration $tmp/nginx.conf"
nginx -p "$tmp/" -e "$tmp/nginx-error.log" -c "$tmp/nginx.conf" || die "nginx did not start"
base=http://127.0.0.1:$BENCH_PORT
for path in /bench/hello /health/live; do
	for _ in $(seq 50); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$base$path")" = 200 ] && break
		sleep 0.1
	done
done

# CPU time (ms) used so far by a process tree (the private API's or hello's workers): the
# figures per request below do not depend on what else the machine is doing.
HZ=$(getconf CLK_TCK)
tree_cpu_ms() {
	local t=0 p kids
	kids=$(cat /proc/"$1"/task/*/children 2>/dev/null || true)
	for p in "$1" $kids; do
		[ -r "/proc/$p/stat" ] || continue
		t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
	done
	echo $((t * 1000 / HZ))
}

# --- 4. the login storm ----------------------------------------------------------------------
echo "bench: $CPUS CPUs; ideaforge-api $WORKERS workers x $THREADS threads;" \
	"argon2id m=$M_KIB KiB t=$T_COST p=$P_LANES"
printf '  one argon2id hash: %s ms (median of 15; min %s, max %s) -> limit %s logins/s\n' \
	"$hash_ms" "$hash_min" "$hash_max" "$limit"
printf '  %s threads hashing at once: %s hashes/s\n' "$CPUS" "$par_rate"
c0=$(tree_cpu_ms "$api_pid")
storm=$(python3 "$top/bench/auth/logins.py" "$base" "$LOGINS" "$EMAIL" "$PASSWORD") || true
c1=$(tree_cpu_ms "$api_pid")
login_cpu_ms=$(awk -v a="$c0" -v b="$c1" -v n="$LOGINS" 'BEGIN { printf "%.1f", (b - a) / n }')
echo "  $storm"
echo "  server CPU per login: $login_cpu_ms ms (one hash: $hash_ms ms)"
val() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$storm"; }
ok=$(val ok) per_s=$(val per_s) total_s=$(val total_s) lp50=$(val p50_ms) lp99=$(val p99_ms)
[ -n "$ok" ] || die "the login storm did not report (is the demo account there? scripts/dev run)"
login_ratio=$(awk -v a="$per_s" -v b="$limit" 'BEGIN { printf "%.0f", (b > 0) ? 100 * a / b : 0 }')

# --- 5. /api/auth/me against hello ---------------------------------------------------------
token=$(curl -s -H 'Content-Type: application/json' \
	-d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" "$base/api/auth/login" |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])') || die "no token"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$base/api/auth/me")" = 200 ] \
	|| die "/api/auth/me does not answer 200 with the token"

# run_wrk PATH DURATION [HEADER] -> "rps p99_ms non2xx errors"
run_wrk() {
	local args=(-t"$WRK_THREADS" -c"$CONNECTIONS" -d"$2" --latency)
	[ -n "${3:-}" ] && args+=(-H "$3")
	wrk "${args[@]}" "$base$1" >"$tmp/wrk.out" 2>&1 || { cat "$tmp/wrk.out" >&2; die "wrk failed"; }
	local w_rps w_p99 w_bad w_err
	read -r w_rps w_p99 w_bad w_err _ < <(wrk_summary "$tmp/wrk.out")
	echo "$w_rps $w_p99 $w_bad $w_err"
}

declare -A path hdr sum_rps sum_p99 bad cpu_us reqs
owner_of() { [ "$1" = hello ] && echo "$hello_pid" || echo "$api_pid"; }
path[hello]=/bench/hello path[live]=/health/live path[me]=/api/auth/me
hdr[hello]= hdr[live]= hdr[me]="Authorization: Bearer $token"
targets="hello live me"
for t in $targets; do sum_rps[$t]=0 sum_p99[$t]=0 bad[$t]=0 cpu_us[$t]=0 reqs[$t]=0; done
for t in $targets; do run_wrk "${path[$t]}" "$WARMUP" "${hdr[$t]}" >/dev/null; done
for round in $(seq "$ROUNDS"); do
	for t in $targets; do
		c0=$(tree_cpu_ms "$(owner_of $t)")
		read -r rps p99 non2xx errs < <(run_wrk "${path[$t]}" "$DURATION" "${hdr[$t]}")
		c1=$(tree_cpu_ms "$(owner_of $t)")
		n=$(awk '/requests in/ { print $1 }' "$tmp/wrk.out")
		cpu_us[$t]=$((cpu_us[$t] + (c1 - c0) * 1000))
		reqs[$t]=$((reqs[$t] + n))
		printf '  round %d %-5s %-13s %10.0f req/s  p99 %7.2f ms  non-2xx %s  socket errors %s\n' \
			"$round" "$t" "${path[$t]}" "$rps" "$p99" "$non2xx" "$errs"
		sum_rps[$t]=$(awk -v a="${sum_rps[$t]}" -v b="$rps" 'BEGIN { print a + b }')
		sum_p99[$t]=$(awk -v a="${sum_p99[$t]}" -v b="$p99" 'BEGIN { print a + b }')
		bad[$t]=$((bad[$t] + non2xx + errs))
	done
done
avg() { awk -v s="$1" -v n="$ROUNDS" 'BEGIN { printf "%.0f", s / n }'; }
avg2() { awk -v s="$1" -v n="$ROUNDS" 'BEGIN { printf "%.2f", s / n }'; }
h_rps=$(avg "${sum_rps[hello]}") l_rps=$(avg "${sum_rps[live]}") m_rps=$(avg "${sum_rps[me]}")
h_p99=$(avg2 "${sum_p99[hello]}") l_p99=$(avg2 "${sum_p99[live]}") m_p99=$(avg2 "${sum_p99[me]}")
me_ratio=$(awk -v a="$m_rps" -v b="$h_rps" 'BEGIN { printf "%.0f", (b > 0) ? 100 * a / b : 0 }')
per_req() { awk -v c="${cpu_us[$1]}" -v n="${reqs[$1]}" 'BEGIN { printf "%.0f", (n > 0) ? c / n : 0 }'; }
h_cpu=$(per_req hello) l_cpu=$(per_req live) m_cpu=$(per_req me)

verdict() { [ "$1" = 1 ] && echo PASS || echo MISS; }
logins_ok=$([ "$ok" = "$LOGINS" ] && echo 1 || echo 0)
lrate_ok=$(awk -v r="$login_ratio" 'BEGIN { print (r >= 80) ? 1 : 0 }')
mrate_ok=$(awk -v r="$me_ratio" 'BEGIN { print (r >= 50) ? 1 : 0 }')
mp99_ok=$(awk -v p="$m_p99" 'BEGIN { print (p < 20) ? 1 : 0 }')
errors_ok=$([ $((bad[hello] + bad[live] + bad[me])) -eq 0 ] && echo 1 || echo 0)

echo
echo "| measure | result | target | |"
echo "|---|---|---|---|"
printf '| %d concurrent logins of one account | %s/%s succeeded in %s s | all | %s |\n' \
	"$LOGINS" "$ok" "$LOGINS" "$total_s" "$(verdict "$logins_ok")"
printf '| login rate | %s logins/s (p50 %s ms, p99 %s ms) = %s %% of the argon2id limit %s/s (%d CPUs / %s ms) | >= 80 %% | %s |\n' \
	"$per_s" "$lp50" "$lp99" "$login_ratio" "$limit" "$CPUS" "$hash_ms" "$(verdict "$lrate_ok")"
printf '| server CPU per login | %s ms (one argon2id hash alone: %s ms) | | |\n' "$login_cpu_ms" "$hash_ms"
par_ratio=$(awk -v a="$per_s" -v b="$par_rate" 'BEGIN { printf "%.0f", (b > 0) ? 100 * a / b : 0 }')
printf '| argon2id with every CPU hashing (hashtime, %d threads) | %s hashes/s: logins reach %s %% of it | | |\n' \
	"$CPUS" "$par_rate" "$par_ratio"
printf '| bare libfcgi hello /bench/hello | %s req/s, p99 %s ms, %s us CPU/req (hello) | baseline | |\n' \
	"$h_rps" "$h_p99" "$h_cpu"
printf '| /health/live (no auth, no Redis) | %s req/s, p99 %s ms, %s us CPU/req (API) | reference | |\n' \
	"$l_rps" "$l_p99" "$l_cpu"
printf '| GET /api/auth/me, Bearer, c%s | %s req/s (%s %% of hello), p99 %s ms, %s us CPU/req (API) | >= 50 %%, p99 < 20 ms | %s / %s |\n' \
	"$CONNECTIONS" "$m_rps" "$me_ratio" "$m_p99" "$m_cpu" "$(verdict "$mrate_ok")" "$(verdict "$mp99_ok")"
echo "(CPU/req counts the FastCGI process only: nginx, Redis and wrk share the same CPUs)"
[ "$errors_ok" = 1 ] || echo "errors: hello ${bad[hello]}, live ${bad[live]}, me ${bad[me]} (non-2xx or socket errors)"

[ "$logins_ok" = 1 ] && [ "$lrate_ok" = 1 ] && [ "$mrate_ok" = 1 ] && [ "$mp99_ok" = 1 ] \
	&& [ "$errors_ok" = 1 ]
