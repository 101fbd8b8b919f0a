#!/usr/bin/env bash
# sqlfluff with the dbt templater runs inside the dbt environment; it compiles
# the project against a throwaway DuckDB file, so no warehouse is touched.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
files=()
for f in "$@"; do files+=("$(realpath "$f")"); done
cd "$root/dbt-repo"
DBT_DUCKDB_PATH="$scratch/lint.duckdb" DBT_TARGET_PATH="$scratch/target" DBT_LOG_PATH="$scratch/logs" \
  DBT_SEND_ANONYMOUS_USAGE_STATS=False .venv/bin/sqlfluff lint --disable-progress-bar "${files[@]:-models}"
