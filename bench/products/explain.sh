#!/usr/bin/env bash
# bench/products/explain.sh - the read statements' plans and times at demo size and at large size
# (issue 17 item 3).
#
#   bench/products/explain.sh [RUN_DIR] [OUT_DIR]
#
# Against the stack of RUN_DIR (default run/dev): loads bench/products/seed.sql (the 200-user
# tenant of run.sh, "small") unless it is there, and bench/products/seed-large.sql ("large",
# SCALE, default 1) unless LARGE=skip or it is there, then runs bench/products/explain.sql
# (EXPLAIN (ANALYZE, BUFFERS) of each statement, warmed once) for a middle user of each tenant.
# Prints one line per statement: execution ms and shared buffers (hit + read) small vs large,
# the ratio, and any sequential scan; the full plans go to OUT_DIR (default /tmp).
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

# run NAME TENANT USER_NAME PRODUCT_NAME EMAIL
run() {
	local name=$1 tid=$2 uid pid sid
	uid=$(sql -c "SELECT md5('$3')::uuid")
	pid=$(sql -c "SELECT md5('$4')::uuid")
	sid=$(sql -c "SELECT coalesce((SELECT id FROM user_sessions WHERE user_id = '$uid' LIMIT 1),
		gen_random_uuid())")
	sql -v tid="$tid" -v uid="$uid" -v pid="$pid" -v sid="$sid" -v email="$5" \
		-f "$here/explain.sql" >"$OUT/explain-$name.txt"
}
run small bbbbbbbb-0000-0000-0000-000000000001 bench-user-100 bench-product-100-1 bench0100@bench.example
run large cccccccc-0000-0000-0000-000000000001 large-user-500 large-product-500-1 large0500@bench.example
# statement -> "exec_ms buffers seqscans" per file
summ() {
	awk '/^=== / { n = $2 } /Buffers: shared/ && !(n in b) { v = 0; for (i = 1; i <= NF; i++)
		if ($i ~ /^(hit|read)=/) { split($i, kv, "="); v += kv[2] } b[n] = v }
		/Seq Scan/ { s[n] = s[n] " " $0 } /Execution Time/ { t[n] = $3; print n, t[n], b[n] + 0,
		(n in s) ? "SEQ" : "-" }' "$1"
}
printf '%-22s %10s %10s %7s %10s %10s %s\n' statement small_ms large_ms ratio small_buf large_buf seqscan
join <(summ "$OUT/explain-small.txt" | sort) <(summ "$OUT/explain-large.txt" | sort) |
	awk '{ printf "%-22s %10.3f %10.3f %7.2f %10d %10d %s/%s\n", $1, $2, $5, ($2 > 0) ? $5 / $2 : 0, $3, $6, $4, $7 }'
echo "plans: $OUT/explain-small.txt $OUT/explain-large.txt"
