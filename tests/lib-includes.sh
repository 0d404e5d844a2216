#!/usr/bin/env bash
# tests/lib-includes.sh - the include rule of the kit (README, architecture): lib/ never
# includes anything of app/, and the includes between lib's modules (a module is lib/<name>.c
# with lib/<name>.h) form a graph without cycles. Run by `make check`; prints the offending
# include or the cycle.
set -euo pipefail
src=${top_srcdir:-.}
cd "$src/lib"

fail=0
# 1. nothing of app/: no path into it, no header that only app/ has
for f in *.c *.h; do
	while IFS= read -r inc; do
		if [[ $inc == *app/* ]] || { [ ! -e "$inc" ] && [ -e "../app/$(basename "$inc")" ]; }; then
			echo "FAIL: lib/$f includes \"$inc\" of app/"
			fail=1
		fi
	done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
done

# 2. the module graph: edges "from to", then a depth-first search for a cycle
edges=$(for f in *.c *.h; do
	m=${f%.*}
	sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" |
		while IFS= read -r inc; do
			t=$(basename "$inc")
			t=${t%.*}
			[ "$t" != "$m" ] && [ -e "$t.h" ] && echo "$m $t"
		done
done | sort -u)
cycle=$(printf '%s\n' "$edges" | python3 -c '
import sys
g = {}
for line in sys.stdin:
    if line.strip():
        a, b = line.split()
        g.setdefault(a, []).append(b)
state, stack = {}, []
def dfs(n):
    state[n] = 1
    stack.append(n)
    for m in g.get(n, []):
        if state.get(m) == 1:
            return stack[stack.index(m):] + [m]
        if not state.get(m):
            c = dfs(m)
            if c:
                return c
    stack.pop()
    state[n] = 2
    return None
for n in sorted(g):
    if not state.get(n):
        c = dfs(n)
        if c:
            print(" -> ".join(c))
            break
')
if [ -n "$cycle" ]; then
	echo "FAIL: the includes of lib have a cycle: $cycle"
	fail=1
fi
[ $fail -eq 0 ] && echo "lib includes: no app header, no cycle ($(printf '%s\n' "$edges" | wc -l) edges)"
exit $fail
