#!/usr/bin/env bash
# bench/products/explain.sh - the read statements' plans and times at demo size and at large size
# (issue 17 item 3).
#
#   bench/products/explain.sh [RUN_DIR] [OUT_DIR]
#
# Against the stack of RUN_DIR (default run/dev): loads bench/products/seed.sql (the 200-user
# tenant of run.sh, "small") unless it is there, and bench/products/seed-large.sql ("large",
# SCALE, default 1) unless LARGE=skip or it is there, then runs bench/products/explain.sql
# (EXPLAIN (ANALYZE, BUFFERS) of each statement, warmed once; REPEAT times, default 5, the
# least time counts) for a middle user of each tenant.
# Prints one line per statement: execution ms and shared buffers (hit + read) small vs large,
# the ratio, and any sequential scan, twice: with the API's default limits (each tenant's
# answer as it comes: the large tenant's are longer), then with answers of the same size (every
# limit set to the row count of the small tenant's answer). The full plans go to OUT_DIR
# (default /tmp).
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here=$top/bench/products
RUN=${1:-$top/run/dev}
OUT=${2:-/tmp}
conf() { sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$RUN/ideaforge.conf" | tail -n 1; }
DBURL=$(conf database_url)
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
sql() { "$PG_BIN/psql" "$DBURL" -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
hash=$(sql -c "SELECT password_hash FROM user_profiles WHERE email = 'admin@ideaforge.ai'")
[ -n "$hash" ] || { echo "explain: load the demo seed first (scripts/dev run)" >&2; exit 2; }
if [ "$(sql -c "SELECT count(*) FROM products WHERE tenant_id = 'bbbbbbbb-0000-0000-0000-000000000001'")" = 0 ]; then
	sql -v hash="$hash" -v users=200 -f "$here/seed.sql" >/dev/null
fi
if [ "${LARGE:-}" != skip ] &&
	[ "$(sql -c "SELECT count(*) FROM products WHERE tenant_id = 'cccccccc-0000-0000-0000-000000000001'")" = 0 ]; then
	start=$(date +%s)
	sql -v hash="$hash" -v scale="${SCALE:-1}" -f "$here/seed-large.sql" >/dev/null
	echo "explain: large tenant seeded in $(($(date +%s) - start)) s"
fi
sql -c "SELECT 'rows: products ' || (SELECT count(*) FROM products) || ', users ' ||
	(SELECT count(*) FROM user_profiles) || ', conversation_history ' ||
	(SELECT count(*) FROM conversation_history) || ', knowledge_articles ' ||
	(SELECT count(*) FROM knowledge_articles) || ', user_sessions ' ||
	(SELECT count(*) FROM user_sessions)"

# run NAME TENANT USER_NAME PRODUCT_NAME EMAIL [PSQL_ARGS...]
run() {
	local name=$1 tid=$2 uid pid sid
	uid=$(sql -c "SELECT md5('$3')::uuid")
	pid=$(sql -c "SELECT md5('$4')::uuid")
	sid=$(sql -c "SELECT coalesce((SELECT id FROM user_sessions WHERE user_id = '$uid' LIMIT 1),
		gen_random_uuid())")
	for _ in $(seq "${REPEAT:-5}"); do
		sql -v tid="$tid" -v uid="$uid" -v pid="$pid" -v sid="$sid" -v email="$5" "${@:6}" \
			-f "$here/explain.sql"
	done >"$OUT/explain-$name.txt"
}
small=(bbbbbbbb-0000-0000-0000-000000000001 bench-user-100 bench-product-100-1 bench0100@bench.example)
large=(cccccccc-0000-0000-0000-000000000001 large-user-500 large-product-500-1 large0500@bench.example)
run small "${small[@]}"
run large "${large[@]}"
# statement -> "exec_ms buffers seqscans" per file: the least execution time of its REPEAT
# runs (a sub-millisecond time moves with whatever else the machine does), the buffers of the
# first (they are the same every time)
summ() {
	awk '/^=== / { n = $2 } /Buffers: shared/ && !(n in b) { v = 0; for (i = 1; i <= NF; i++)
		if ($i ~ /^(hit|read)=/) { split($i, kv, "="); v += kv[2] } b[n] = v }
		/Seq Scan/ { s[n] = s[n] " " $0 }
		/Execution Time/ { if (!(n in t) || $3 + 0 < t[n]) t[n] = $3 + 0 }
		END { for (n in t) print n, t[n], b[n] + 0, (n in s) ? "SEQ" : "-" }' "$1"
}
# statement -> "rows" of its outermost Limit: how many rows the answer had
rows_of() {
	awk '/^=== / { n = $2 } /Limit .*actual time=/ && !(n in r) {
		if (match($0, /actual time=[^ ]* rows=[0-9]+/)) { v = substr($0, RSTART, RLENGTH)
			sub(/.*rows=/, "", v); r[n] = v; print n, v } }' "$1"
}
table() {
	printf '%-22s %10s %10s %7s %10s %10s %s\n' statement small_ms large_ms ratio small_buf large_buf seqscan
	join <(summ "$OUT/explain-$1.txt" | sort) <(summ "$OUT/explain-$2.txt" | sort) |
		awk '{ printf "%-22s %10.3f %10.3f %7.2f %10d %10d %s/%s\n", $1, $2, $5, ($2 > 0) ? $5 / $2 : 0, $3, $6, $4, $7 }'
}
echo "== the API's default limits (history 100, the others 50): each tenant's answers as they come"
table small large
# The same statements with answers of the same size: the limit of each is the row count of the
# small tenant's answer above (the large tenant has at least as many rows for its user), so a
# ratio compares the cost of reaching the rows, not the number of rows.
eq=()
while read -r n v; do
	case $n in history_* | conversations_* | articles_* | search_*) eq+=(-v "lim_$n=$v") ;; esac
done < <(rows_of "$OUT/explain-small.txt")
echo "== answers of the same size: ${eq[*]//-v /}"
run small-eq "${small[@]}" "${eq[@]}"
run large-eq "${large[@]}" "${eq[@]}"
table small-eq large-eq
echo "plans: $OUT/explain-{small,large}{,-eq}.txt"
