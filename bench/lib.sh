# shellcheck shell=bash
# bench/lib.sh - helpers shared by the benchmark scripts (sourced, not run).

# bench_site SITE PORT HELLO_SOCK [API_SOCK]
# Prints the stack's nginx site SITE moved to 127.0.0.1:PORT, with `location = /bench/hello`
# (the bare libfcgi baseline on HELLO_SOCK) added at the end of its server{} block and, when
# API_SOCK is given, its FastCGI upstream pointed at API_SOCK: both targets then go through the
# same nginx with the same settings.
bench_site() {
	local site=$1 port=$2 hello=$3 api=${4:-}
	local upstream="s|^\$||" # no change
	[ -z "$api" ] || upstream="s|server unix:[^;]*;|server unix:$api;|"
	sed -e "s|^\([[:space:]]*listen[[:space:]]\).*;|\1127.0.0.1:$port;|" -e "$upstream" "$site" |
		awk -v sock="$hello" '
			{ lines[NR] = $0 }
			/^}/ { last = NR }
			END {
				for (i = 1; i <= NR; i++) {
					if (i == last) {
						print "\t# bench: the bare libfcgi baseline"
						print "\tlocation = /bench/hello {"
						print "\t\tfastcgi_split_path_info ^()(/.*)$;"
						print "\t\tfastcgi_pass unix:" sock ";"
						print "\t}"
					}
					print lines[i]
				}
			}'
}

# wrk_summary FILE
# Reads a `wrk --latency` report and prints "rps p99_ms non2xx socket_errors requests".
wrk_summary() {
	awk '
		function ms(v) {
			if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
			if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
			if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000 }
			return v + 0
		}
		/Requests\/sec:/ { rps = $2 }
		/requests in / { n = $1 }
		$1 == "99%" { p99 = ms($2) }
		/Non-2xx or 3xx responses:/ { bad = $NF }
		/Socket errors:/ { gsub(/,/, ""); err = $4 + $6 + $8 + $10 }
		END { printf "%s %.2f %d %d %d\n", rps, p99, bad, err, n }' "$1"
}
