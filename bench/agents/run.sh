#!/usr/bin/env bash
# bench/agents/run.sh - agent streams through nginx (issue 11) and the multi-agent run (issue 12).
#
#   bench/agents/run.sh [RUN_DIR]
#
# RUN_DIR is the run directory of a running stack (default: run/dev, started by
# `scripts/dev run`): its PostgreSQL cluster and Redis are used, nothing of the stack is changed.
# The script
#   1. creates a database of its own in that cluster (ideaforge_bench_agents, dropped and
#      recreated: the stack's agentd never sees the bench's jobs), migrates it and loads
#      bench/agents/seed.sql: 100 users of tenant bench-agents, a product with a knowledge
#      article each;
#   2. starts its own fake provider (tests/fakes/fake_llm.py --exact-pace: 20 tokens/s, 300 ms
#      first-token delay, TOKENS-token answers), ideaforge-api, ideaforge-agentd and nginx (the
#      stack's site on BENCH_PORT), from a config of its own with the limits out of the way of
#      the bench users: rl_ai_per_min and rl_default_per_min 1000000, max_inflight_per_user
#      1000, agent_max_concurrent_per_user 100, agent_max_concurrent 2000 (the limiters still
#      run);
#   3. logs the users in, each storing its own provider key (sk-bench-agents-NNNN), so every
#      provider call names its user; each question carries a marker ([bench s0042]) that the
#      fake's request log shows, so every stream is matched to its provider call;
#   4. scenario 1 (issue 11): USERS1 x PER_USER concurrent streams (50 x 10 = 500), primary
#      agent only, opened at OPEN_RATE per second, answers long enough (TOKENS at 20/s) that all
#      of them are open together for seconds, with a GET /api/products loop (PRODUCTS_CONNS
#      connections, one request every PRODUCTS_INTERVAL_MS each) and samplers of agentd's RSS,
#      the API's GET /status and the CPU time of every process;
#   5. scenario 2 (issue 12): USERS2 users x 3 questions in enhanced_collaborative mode, the
#      fake scripted per key like a fast hosted model (800 ms first token, 60 tokens/s, 300
#      tokens); supporting_agents SUPPORTING, the primary chosen by the coordinator;
#   6. writes the figures into bench/agents/RESULTS.md (between its markers, with the load
#      average before and after and the machine) and prints them.
# Exit status 0 when every target is met, 1 when one is missed, 2 on a setup error.
#
# Environment: USERS1 (50), PER_USER (10), TOKENS (200), OPEN_RATE (100 streams/s; 0: all at
# once), PRODUCTS_CONNS (20), PRODUCTS_INTERVAL_MS (50), USERS2 (100), RAMP_S (30), GAP_S (1),
# SUPPORTING (rag,strategy,validation; empty: the coordinator chooses), SCENARIOS ("1 2"),
# BENCH_PORT (18095), IDEAFORGE_BUILD_DIR (build), RESULTS (bench/agents/RESULTS.md),
# KEEP_TMP (set: keep the logs and the per-stream JSON in /tmp).
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here=$top/bench/agents
RUN=${1:-$top/run/dev}
RUN=$(cd "$RUN" 2>/dev/null && pwd) || { echo "bench: no run directory ${1:-$top/run/dev}" >&2; exit 2; }
USERS1=${USERS1:-50}
PER_USER=${PER_USER:-10}
TOKENS=${TOKENS:-200}
OPEN_RATE=${OPEN_RATE:-100}
PRODUCTS_CONNS=${PRODUCTS_CONNS:-20}
PRODUCTS_INTERVAL_MS=${PRODUCTS_INTERVAL_MS:-50}
USERS2=${USERS2:-100}
RAMP_S=${RAMP_S:-30}
GAP_S=${GAP_S:-1}
SUPPORTING=${SUPPORTING-rag,strategy,validation}
SCENARIOS=${SCENARIOS:-1 2}
BENCH_PORT=${BENCH_PORT:-18095}
BUILD=${IDEAFORGE_BUILD_DIR:-$top/build}
RESULTS=${RESULTS:-$here/RESULTS.md}
DB=ideaforge_bench_agents

die() { echo "bench: $*" >&2; exit 2; }

for f in nginx.conf site.conf ideaforge.conf; do
	[ -f "$RUN/$f" ] || die "$RUN/$f is missing: is the stack running (scripts/dev run)?"
done
for c in nginx curl python3; do
	command -v $c >/dev/null || die "$c is not installed"
done
for b in ideaforge-api ideaforge-agentd ideaforgectl; do
	[ -x "$BUILD/$b" ] || die "$BUILD/$b is not built"
done
users_all=$((USERS1 > USERS2 ? USERS1 : USERS2))
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
PSQL="$PG_BIN/psql"

# A key of the stack's config, the whole value (database_url has spaces).
conf() { sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$RUN/ideaforge.conf" | tail -n 1; }
STACK_DBURL=$(conf database_url)
PGHOST=$(printf '%s' "$STACK_DBURL" | sed -n 's/.*host=\([^ ]*\).*/\1/p')
[ -n "$PGHOST" ] || die "no host= in the stack's database_url"
DBURL="host=$PGHOST dbname=$DB user=ideaforge"
sql() { "$PSQL" "$DBURL" -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
pgadmin() { PGOPTIONS="-c client_min_messages=warning" "$PSQL" -h "$PGHOST" -U postgres -d postgres -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }

tmp=$(mktemp -d /tmp/ideaforge-bench-agents.XXXXXX)
api_pid='' agentd_pid='' fake_pid=''
cleanup() {
	if [ -f "$tmp/nginx.pid" ]; then
		kill -QUIT "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
		for _ in $(seq 50); do [ -f "$tmp/nginx.pid" ] || break; sleep 0.1; done
	fi
	for p in $agentd_pid $api_pid $fake_pid; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in $agentd_pid $api_pid $fake_pid; do
		wait "$p" 2>/dev/null || true
	done
	if [ -n "${KEEP_TMP:-}" ]; then echo "bench: logs kept in $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

# --- 1. database ---------------------------------------------------------------------------
echo "bench: database $DB in $PGHOST"
pgadmin -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB OWNER ideaforge" ||
	die "cannot create the database $DB"

# --- 2. config and servers -----------------------------------------------------------------
python3 "$top/tests/fakes/fake_llm.py" --listen 127.0.0.1:0 --port-file "$tmp/fake.port" \
	--first-token-ms 300 --tokens-per-s 20 --tokens "$TOKENS" --quiet --exact-pace \
	</dev/null >"$tmp/fake.log" 2>&1 &
fake_pid=$!
for _ in $(seq 100); do [ -s "$tmp/fake.port" ] && break; sleep 0.1; done
[ -s "$tmp/fake.port" ] || { cat "$tmp/fake.log" >&2; die "the fake provider did not start"; }
FAKE=http://127.0.0.1:$(tr -dc '0-9' <"$tmp/fake.port")

cat >"$tmp/ideaforge.conf" <<EOF
# bench/agents/run.sh: the stack's database cluster and Redis, a database and servers of its own
listen = unix:$tmp/api.sock
ops_listen = unix:$tmp/ops.sock
database_url = $DBURL
redis_url = $(conf redis_url)
jwt_secret_file = $(conf jwt_secret_file)
secrets_key_file = $(conf secrets_key_file)
sql_dir = $top/sql
workers = $(conf workers || true)
threads = $(conf threads || true)
log_level = info
agentd_listen = unix:$tmp/agentd.sock
openai_base_url = $FAKE/v1
anthropic_base_url = $FAKE
gemini_base_url = $FAKE
openai_api_key = fake-server-key
# the bench users' limits out of the way (the limiters still run on every request)
rl_ai_per_min = 1000000
rl_default_per_min = 1000000
max_inflight_per_user = 1000
agent_max_concurrent_per_user = 100
agent_max_concurrent = 2000
EOF
sed -i -e 's/^workers = $/workers = 2/' -e 's/^threads = $/threads = 8/' "$tmp/ideaforge.conf"
ctl() { "$BUILD/ideaforgectl" --config "$tmp/ideaforge.conf" "$@"; }
ctl migrate >"$tmp/migrate.log" 2>&1 || { cat "$tmp/migrate.log" >&2; die "migrate failed"; }
ctl seed-demo >/dev/null || die "cannot load the demo seed (for the password hash)"
hash=$(sql -c "SELECT password_hash FROM user_profiles WHERE email = 'admin@ideaforge.ai'")
[ -n "$hash" ] || die "no password hash in the demo seed"
echo "bench: seeding $users_all users"
sql -v hash="$hash" -v users="$users_all" -f "$here/seed.sql" >/dev/null

"$BUILD/ideaforge-api" --config "$tmp/ideaforge.conf" </dev/null >"$tmp/api.log" 2>&1 &
api_pid=$!
"$BUILD/ideaforge-agentd" --config "$tmp/ideaforge.conf" </dev/null >"$tmp/agentd.log" 2>&1 &
agentd_pid=$!
for _ in $(seq 100); do
	[ -S "$tmp/api.sock" ] && [ -S "$tmp/agentd.sock" ] && break
	sleep 0.1
done
[ -S "$tmp/api.sock" ] || { tail "$tmp/api.log" >&2; die "ideaforge-api did not start"; }
[ -S "$tmp/agentd.sock" ] || { tail "$tmp/agentd.log" >&2; die "ideaforge-agentd did not start"; }

# nginx: the stack's site and nginx.conf with every path of RUN moved to ours, on BENCH_PORT
sed -e "s|$RUN/|$tmp/|g" -e "s|^\([[:space:]]*listen[[:space:]]\).*;|\1127.0.0.1:$BENCH_PORT;|" \
	"$RUN/site.conf" >"$tmp/site.conf"
sed -e "s|$RUN/|$tmp/|g" -e "s|access_log [^;]*;|access_log off;|" "$RUN/nginx.conf" >"$tmp/nginx.conf"
cp "$RUN/fastcgi_params" "$tmp/fastcgi_params" 2>/dev/null || cp /etc/nginx/fastcgi_params "$tmp/"
mkdir -p "$tmp/nginx-tmp"
nginx -p "$tmp/" -e "$tmp/nginx-error.log" -c "$tmp/nginx.conf" -t -q || die "nginx rejected $tmp/nginx.conf"
nginx -p "$tmp/" -e "$tmp/nginx-error.log" -c "$tmp/nginx.conf" || die "nginx did not start"
base=http://127.0.0.1:$BENCH_PORT
for _ in $(seq 100); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/health/live")" = 200 ] && break
	sleep 0.1
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/health/live")" = 200 ] || die "the bench stack does not answer"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/status")" = 200 ] || die "GET /status does not answer"

# --- 3. sessions and keys ------------------------------------------------------------------
python3 "$here/streams.py" setup --base "$base" --users "$users_all" --out "$tmp/users.json" ||
	die "setup failed"

# --- 4., 5. the scenarios ------------------------------------------------------------------
workers=$(sed -n 's/^workers = //p' "$tmp/ideaforge.conf") threads=$(sed -n 's/^threads = //p' "$tmp/ideaforge.conf")
machine="$(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), \
$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, \
$(. /etc/os-release && echo "$PRETTY_NAME"), nginx $(nginx -v 2>&1 | sed 's|.*/||'), \
PostgreSQL $("$PG_BIN/postgres" --version | awk '{ print $3 }'); ideaforge-api $workers workers x $threads threads; \
everything (client, fake, nginx, API, agentd, PostgreSQL, Redis) on the same machine"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench: $machine"
echo "bench: load average before: $load_before"
s1='' s2=''
pg_pid=$(head -n 1 "$PGHOST/postmaster.pid" 2>/dev/null || true)
cpu="fake:$fake_pid agentd:$agentd_pid api:$api_pid+ nginx:$(cat "$tmp/nginx.pid")+${pg_pid:+ postgres:$pg_pid+}"
for s in $SCENARIOS; do
	case $s in
	1)
		echo "bench: scenario 1: $USERS1 users x $PER_USER streams, fake 20 tokens/s, 300 ms, $TOKENS tokens"
		python3 "$here/streams.py" streams --base "$base" --users-file "$tmp/users.json" \
			--fake "$FAKE" --agentd-pid "$agentd_pid" --cpu "$cpu" --users "$USERS1" --per-user "$PER_USER" \
			--tokens "$TOKENS" --open-rate "$OPEN_RATE" --products-conns "$PRODUCTS_CONNS" \
			--products-interval "$(awk -v m="$PRODUCTS_INTERVAL_MS" 'BEGIN { print m / 1000 }')" \
			--out "$tmp/s1.json" || die "scenario 1 did not run"
		s1=$tmp/s1.json
		sleep 2
		;;
	2)
		echo "bench: scenario 2: $USERS2 users x 3 questions, enhanced_collaborative, fake 800 ms, 60 tokens/s, 300 tokens"
		python3 "$here/streams.py" multi --base "$base" --users-file "$tmp/users.json" \
			--fake "$FAKE" --agentd-pid "$agentd_pid" --cpu "$cpu" --users "$USERS2" --ramp "$RAMP_S" \
			--gap "$GAP_S" --supporting "$SUPPORTING" --out "$tmp/s2.json" || die "scenario 2 did not run"
		s2=$tmp/s2.json
		;;
	*) die "unknown scenario $s" ;;
	esac
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench: load average after: $load_after"
kill -0 "$agentd_pid" 2>/dev/null || die "ideaforge-agentd died during the run"
if grep -qiE 'crit|alert|emerg' "$tmp/agentd.log" "$tmp/api.log"; then
	echo "bench: agentd/API logged errors:" >&2
	grep -iE 'crit|alert|emerg' "$tmp/agentd.log" "$tmp/api.log" | head -n 5 >&2
fi

# --- 6. RESULTS.md -------------------------------------------------------------------------
python3 "$here/streams.py" report --s1 "$s1" --s2 "$s2" --results "$RESULTS" \
	--when "$(date -u '+%Y-%m-%d %H:%M UTC')" --machine "$machine" \
	--load-before "$load_before" --load-after "$load_after" \
	--command "bench/agents/run.sh (USERS1=$USERS1 PER_USER=$PER_USER TOKENS=$TOKENS OPEN_RATE=$OPEN_RATE PRODUCTS_CONNS=$PRODUCTS_CONNS PRODUCTS_INTERVAL_MS=$PRODUCTS_INTERVAL_MS USERS2=$USERS2 RAMP_S=$RAMP_S GAP_S=$GAP_S SUPPORTING=$SUPPORTING)"
