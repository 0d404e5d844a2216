#!/usr/bin/env bash
# tests/schema-version.sh - APP_SCHEMA_VERSION (app/app.h), the migration /health/ready waits
# for, is the highest numbered migration in sql/: adding sql/NNNN_*.sql without raising it
# would let a new version take traffic on an old schema. Run by `make check`.
set -euo pipefail
src=${top_srcdir:-.}
want=$(ls "$src"/sql/[0-9][0-9][0-9][0-9]_*.sql | sed 's|.*/\([0-9]\{4\}\)_.*|\1|' | sort | tail -n 1)
have=$(sed -n 's/^#define APP_SCHEMA_VERSION \([0-9]*\).*/\1/p' "$src/app/app.h")
if [ "$((10#$want))" -ne "$have" ]; then
	echo "FAIL: APP_SCHEMA_VERSION is $have in app/app.h, the highest migration is $want"
	exit 1
fi
echo "schema version $have = highest migration $want"
