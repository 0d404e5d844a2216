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
