#!/usr/bin/env bash
# The main job on the embedded default: generate (or take) events, serve them
# over HTTP, and run the production DAGs over the whole period: `events_ingest`
# (extract -> bucket -> load, mapped per source and week) then `dbt_transform`
# (source freshness, one dbt build watched by a task per model and its tests, the dashboard).
# Then summarise.
#
# Settings (environment): EVENTS_CSV (an app export to use instead of the
# generator; it is served over HTTP and extracted as a file drop), DEMO_DIR, DEMO_START, DEMO_DAYS, DEMO_EVENTS, DEMO_SEED,
# DAYS_PER_TASK (days each mapped extract/load task covers, default 7).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEMO_DIR="$(mkdir -p "${DEMO_DIR:-$ROOT/.demo}" && cd "${DEMO_DIR:-$ROOT/.demo}" && pwd)"
DEMO_START="${DEMO_START:-2025-01-06}"
DEMO_DAYS="${DEMO_DAYS:-91}"
DEMO_EVENTS="${DEMO_EVENTS:-120000}"
DEMO_SEED="${DEMO_SEED:-42}"
EVENTS_CSV="${EVENTS_CSV:-}"

SCRIPTS="$ROOT/scripts-repo/.venv/bin"
DBT="$ROOT/dbt-repo/.venv/bin"
AIRFLOW="$ROOT/airflow-repo/.venv/bin"
TOOLS="$ROOT/.venv/bin"

step() { printf '\n==> [%s/6] %s\n' "$1" "$2"; }
started=$(date +%s)

# A demo run starts from nothing, so what it shows is what this run did.
rm -rf "$DEMO_DIR"/{airflow,bucket,dashboard,docs,data,logs,dbt-artifacts,warehouse.duckdb,warehouse.duckdb.wal,events.parquet,api.url,export,sources.yaml}
mkdir -p "$DEMO_DIR/logs"

# --- configuration: the same variables a deployment sets -----------------------
STATE_DIR="$DEMO_DIR"
# shellcheck source=tools/local-env.sh
source "$ROOT/tools/local-env.sh"

# --- 1. events -------------------------------------------------------------------
if [[ -n "$EVENTS_CSV" ]]; then
  step 1 "using the export $EVENTS_CSV"
  [[ -f "$EVENTS_CSV" ]] || { echo "EVENTS_CSV=$EVENTS_CSV: no such file" >&2; exit 2; }
  SOURCE_FILE="$(cd "$(dirname "$EVENTS_CSV")" && pwd)/$(basename "$EVENTS_CSV")"
else
  step 1 "generating ~$DEMO_EVENTS events over $DEMO_DAYS days from $DEMO_START (seed $DEMO_SEED)"
  SOURCE_FILE="$DEMO_DIR/events.parquet"
  "$SCRIPTS/extract-load" generate --out "$SOURCE_FILE" --start "$DEMO_START" --days "$DEMO_DAYS" \
    --events "$DEMO_EVENTS" --seed "$DEMO_SEED"
fi

# --- 2. the source, over HTTP ---------------------------------------------------------
if [[ -n "$EVENTS_CSV" ]]; then
  # An export is a file drop, and is extracted as one: downloaded over HTTP by the
  # file source, every record judged before anything lands, undatable records
  # quarantined by the extract (an API filtered by time cannot serve them). Only
  # configuration differs from the generated run: `events` is a file source here.
  step 2 "serving the export over HTTP as a file drop"
  # Its range and what it holds; refused (with the reason) when a stray date would span years.
  described=$("$SCRIPTS/extract-load" describe-file --path "$SOURCE_FILE")
  read -r FIRST_DAY END_DAY ROWS UNDATABLE < <(printf '%s' "$described" \
    | "$TOOLS/python" -c 'import json, sys; d = json.load(sys.stdin); print(d["first_day"], d["end_day"], d["rows"], d["undatable"])')
  [[ -n "$FIRST_DAY" && "$FIRST_DAY" != None ]] || { echo "EVENTS_CSV=$EVENTS_CSV: no record has a usable event_time" >&2; exit 2; }
  mkdir -p "$DEMO_DIR/export" && ln -sf "$SOURCE_FILE" "$DEMO_DIR/export/$(basename "$SOURCE_FILE")"
  "$TOOLS/python" -u -m http.server 0 --bind 127.0.0.1 --directory "$DEMO_DIR/export" \
    >"$DEMO_DIR/logs/export-server.log" 2>&1 &
  api_pid=$!
  trap 'kill $api_pid 2>/dev/null || true' EXIT
  port=""
  for _ in $(seq 1 60); do
    port=$(sed -n 's/^Serving HTTP on .* port \([0-9]*\).*/\1/p' "$DEMO_DIR/logs/export-server.log")
    [[ -n "$port" ]] && break
    kill -0 $api_pid 2>/dev/null || { cat "$DEMO_DIR/logs/export-server.log" >&2; exit 1; }
    sleep 0.5
  done
  EVENTS_EXPORT_LOCATION="http://127.0.0.1:$port/$("$TOOLS/python" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$(basename "$SOURCE_FILE")")"
  export EVENTS_EXPORT_LOCATION
  cat >"$DEMO_DIR/sources.yaml" <<'YAML'
sources:
  events:
    kind: file
    description: An app export, downloaded over HTTP as a file drop (make demo EVENTS_CSV=...).
    location_env: EVENTS_EXPORT_LOCATION
YAML
  export SOURCES_FILE="$DEMO_DIR/sources.yaml"
  echo "    $EVENTS_EXPORT_LOCATION holds $ROWS records, $FIRST_DAY to $END_DAY (exclusive), $UNDATABLE without a usable event_time"
else
  step 2 "starting the events API (real HTTP, paginated)"
  "$SCRIPTS/extract-load" serve-api --source "$SOURCE_FILE" --url-file "$DEMO_DIR/api.url" \
    >"$DEMO_DIR/logs/events-api.log" 2>&1 &
  api_pid=$!
  trap 'kill $api_pid 2>/dev/null || true' EXIT
  for _ in $(seq 1 120); do
    [[ -s "$DEMO_DIR/api.url" ]] && break
    kill -0 $api_pid 2>/dev/null || { cat "$DEMO_DIR/logs/events-api.log" >&2; exit 1; }
    sleep 0.5
  done
  API_URL="$(cat "$DEMO_DIR/api.url")"
  read -r FIRST_DAY END_DAY ROWS < <("$TOOLS/python" - "$API_URL" <<'PY'
import datetime as dt, json, sys, urllib.request
health = json.load(urllib.request.urlopen(sys.argv[1] + "/healthz", timeout=30))
first = dt.date.fromisoformat(health["first_event_time"][:10])
last = dt.date.fromisoformat(health["last_event_time"][:10])
print(first, last + dt.timedelta(days=1), health["rows"])
PY
)
  echo "    $API_URL serves $ROWS events, $FIRST_DAY to $END_DAY (exclusive)"
  # The `events` source of the extract & load sources file reads its API from here.
  export EVENTS_API_URL="$API_URL"
fi
export PLATFORM_SOURCES=events

# --- 3. Airflow ----------------------------------------------------------------------
step 3 "preparing Airflow (SQLite metadata in $AIRFLOW_HOME)"
"$AIRFLOW/airflow" db migrate >"$DEMO_DIR/logs/airflow-db-migrate.log" 2>&1
# Pools (and Variables) as the sandbox declares them, by the command a cluster's bootstrap runs.
(cd "$ROOT/airflow-repo" && "$AIRFLOW/python" -m ops.apply_runtime "$ROOT/environments/sandbox/airflow-runtime.yaml") \
  >"$DEMO_DIR/logs/airflow-runtime.log" 2>&1 || { cat "$DEMO_DIR/logs/airflow-runtime.log" >&2; exit 1; }

# --- 4. the DAG runs ----------------------------------------------------------------
days=$(( ( $(date -d "$END_DAY" +%s) - $(date -d "$FIRST_DAY" +%s) ) / 86400 ))
# Each day is its own interval (manifest, idempotent replace); a task takes a
# week of them so the run is not mostly task start-up.
DAYS_PER_TASK="${DAYS_PER_TASK:-7}"
tasks=$(( (days + DAYS_PER_TASK - 1) / DAYS_PER_TASK ))
conf=$(printf '{"start": "%s", "end": "%s", "days_per_task": %s}' "$FIRST_DAY" "$END_DAY" "$DAYS_PER_TASK")

run_dag() {  # dag_id, expected mapped tasks, [conf]: one `airflow dags test` run, then its state
  local dag_id=$1 expected=$2
  shift 2
  set +e
  # Only the DAG's own file is parsed to find it (dag.test() then syncs the whole bundle once):
  # without --bundle-name, `dags test` parses and syncs every DAG file first, twice in all.
  "$AIRFLOW/airflow" dags test "$dag_id" "$END_DAY" "$@" \
    --bundle-name dags-folder --dagfile-path "$AIRFLOW__CORE__DAGS_FOLDER/$dag_id.py" 2>&1 \
    | "$TOOLS/python" "$ROOT/tools/dag_progress.py" "$DEMO_DIR/logs/$dag_id.log" "$expected"
  set -e
  local state
  state=$("$AIRFLOW/airflow" dags list-runs "$dag_id" -o json 2>/dev/null \
    | "$TOOLS/python" -c '
import json, sys
# Airflow may print warnings before the JSON document; take the JSON line.
lines = [line for line in sys.stdin if line.startswith("[")]
runs = json.loads(lines[-1]) if lines else []
print(runs[0]["state"] if runs else "missing")')
  echo "    DAG run state: $dag_id $state (full log: $DEMO_DIR/logs/$dag_id.log)"
  if [[ "$state" != "success" ]]; then
    grep -E "ERROR|Error|error" "$DEMO_DIR/logs/$dag_id.log" | tail -20 >&2 || true
    exit 1
  fi
}

step 4 "running DAG events_ingest over $days daily intervals ($tasks tasks of up to $DAYS_PER_TASK days): extract -> bucket -> load"
run_dag events_ingest "$tasks" -c "$conf"

# --- 5. dbt and the dashboard -----------------------------------------------------
step 5 "running DAG dbt_transform: source freshness -> dbt build + tests per model -> dashboard, docs, public data"
run_dag dbt_transform 0

# --- 6. summary ---------------------------------------------------------------------
step 6 "summary"
"$DBT/demo-summary" --run-results "$DEMO_DIR/dbt-artifacts/dbt_transform" --dashboard "$DASHBOARD_DIR/index.html" \
  --source-records "$ROWS"
echo "dbt docs: $DOCS_DIR/index.html; public data: $DATA_DIR/v1/catalog.json (make up serves them at /docs/ and /data/)"
echo "Finished in $(( $(date +%s) - started ))s."
