#!/usr/bin/env bash
# tests/format.sh - the C sources follow the checked-in .clang-format (issue 10): run by `make
# check`, prints every file clang-format would change and how. SQL statements whose string
# literals are concatenated with macros (SQL_CAN_VIEW(...), SUB_JSON(...)) are kept as written
# between /* clang-format off */ and /* clang-format on */: clang-format 14 cannot know that
# those macros expand to string literals. To reformat: clang-format -i lib/*.[ch] app/*.[ch]
# tests/unit/*.c tests/fuzz/*.c (then look at any SQL statement it re-indented and fence it).
# Exits 77 (automake's SKIP, counted as a failure by tests/run-suites) without clang-format.
set -uo pipefail
src=${top_srcdir:-.}
cd "$src" || exit 1
command -v clang-format >/dev/null || { echo "clang-format is not installed"; exit 77; }
files=(lib/*.[ch] app/*.[ch] tests/unit/*.c tests/fuzz/*.c)
fail=0
for f in "${files[@]}"; do
	[ -f "$f" ] || continue
	if ! out=$(clang-format --dry-run --Werror "$f" 2>&1); then
		echo "FAIL: $f differs from .clang-format:"
		printf '%s\n' "$out" | head -n 12 | sed 's/^/    /'
		fail=1
	fi
done
[ $fail -eq 0 ] && echo "ok: ${#files[@]} files follow .clang-format"
exit $fail
