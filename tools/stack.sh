#!/usr/bin/env bash
# `make up` / `make down`: a local Airflow with the UI behind the same nginx
# viewer production runs, for people who want to click around. api-server,
# scheduler, dag-processor, triggerer and nginx run in one process group
# started with setsid, so `down` stops every one of them (and their task
# subprocesses) with one signal.
#
# - https://127.0.0.1:${STACK_VIEWER_PORT:-8443}: the public read-only viewer
#   (anyone is Airflow's Viewer; GET only) and /dashboard/;
# - https://127.0.0.1:${STACK_ADMIN_PORT:-8444}: the admin entrance (loopback
#   only, Airflow login); the certificate is a throwaway self-signed one;
# - http://127.0.0.1:${STACK_PORT:-8080}: the api-server itself;
# - https://127.0.0.1:${STACK_BI_VIEWER_PORT:-8445}: Superset's public dashboard
#   (the anonymous Public role: the dashboard and its data; GET and chart-data
#   reads only), https://127.0.0.1:${STACK_BI_ADMIN_PORT:-8446}: Superset's admin
#   entrance (loopback only; login admin, password in $STACK_DIR/superset/admin.json).
# Auth is the FAB auth manager (docs/adr/0014); users admin and viewer get
# passwords generated into $STACK_DIR/users.json (never committed).
#
# The metadata DB is the local PostgreSQL when one answers (database
# `$STACK_DB_NAME`, created if missing), otherwise SQLite.
#
# A stack shows a working platform, not an empty one: the first `up` generates
# demo events ending yesterday (local time), serves them over HTTP as the
# `events` source (a process of the group), triggers `events_ingest` over that
# period and unpauses the scheduled DAGs, so the scheduler loads every day,
# `dbt_transform` follows on the raw tables' Assets and publishes the
# dashboard, and each new day is loaded when it ends. Until the first publish,
# /dashboard/ answers a page that says so. `events_stream` (it needs Kafka),
# `cloud_build` and `dbt_image_refresh` (deployed environments) stay paused.
#
# Settings: STACK_DIR (default .stack), STACK_PORT (8080), STACK_VIEWER_PORT
# (8443), STACK_ADMIN_PORT (8444), STACK_LOG_PORT and STACK_TRIGGER_LOG_PORT
# (8793, 8794: the components' log servers), STACK_EVENTS_API_PORT (8795: the
# demo's events API), STACK_POSTGRES_URL (a libpq URL of a server
# where the database may be created), STACK_DB_NAME (airflow_local),
# STACK_DEMO (1; 0: no demo source, no first run, nothing unpaused),
# STACK_DEMO_DAYS (28), STACK_DEMO_EVENTS (40000), STACK_DEMO_SEED (42),
# STACK_BI (1; 0: no Superset), STACK_BI_PORT (8088: Superset itself),
# STACK_BI_VIEWER_PORT (8445), STACK_BI_ADMIN_PORT (8446).
#
# STACK_ENV=<env> (`make up ENV=sandbox`) runs that environment from what it
# pins: every task's command in a container of its component's image, pulled by
# the digest `environments/<env>/release.yaml` names in the scratch clone that
# `make release-local` promoted, from the registry on its storage
# (STACK_RELEASE_DIR, default .release-local; the registry on
# STACK_REGISTRY_PORT, 5055, and podman's Docker API for Cosmos's dbt
# containers run in the group). Each container gets its component's ConfigMap,
# rendered from the platform chart for that environment, and Secret as files
# (tools/container_env.py). Superset is the pinned bi image too (tools/superset.sh). The bucket and warehouse are in $STACK_DIR/data,
# mounted at the same path. Airflow itself runs from its venv here.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="$(mkdir -p "${STACK_DIR:-$ROOT/.stack}" && cd "${STACK_DIR:-$ROOT/.stack}" && pwd)"
export STACK_DIR  # tools/superset.sh reads it
STACK_PORT="${STACK_PORT:-8080}"
STACK_VIEWER_PORT="${STACK_VIEWER_PORT:-8443}"
STACK_ADMIN_PORT="${STACK_ADMIN_PORT:-8444}"
STACK_DB_NAME="${STACK_DB_NAME:-airflow_local}"
STACK_EVENTS_API_PORT="${STACK_EVENTS_API_PORT:-8795}"
STACK_DEMO="${STACK_DEMO:-1}"
STACK_DEMO_DAYS="${STACK_DEMO_DAYS:-28}"
STACK_DEMO_EVENTS="${STACK_DEMO_EVENTS:-40000}"
STACK_DEMO_SEED="${STACK_DEMO_SEED:-42}"
STACK_ENV="${STACK_ENV:-}"
STACK_REGISTRY_PORT="${STACK_REGISTRY_PORT:-5055}"
STACK_RELEASE_DIR="${STACK_RELEASE_DIR:-$ROOT/.release-local}"
export STACK_ENV STACK_REGISTRY_PORT STACK_RELEASE_DIR  # tools/superset.sh runs the pinned bi image
STACK_BI="${STACK_BI:-1}"
export STACK_BI_PORT="${STACK_BI_PORT:-8088}"
export STACK_BI_VIEWER_PORT="${STACK_BI_VIEWER_PORT:-8445}"
export STACK_BI_ADMIN_PORT="${STACK_BI_ADMIN_PORT:-8446}"
# The scheduled DAGs a local stack runs (the others need Kafka or a deployed environment).
SCHEDULED_DAGS=(events_ingest dbt_transform platform_maintenance)
AIRFLOW="$ROOT/airflow-repo/.venv/bin"
PGID_FILE="$STACK_DIR/stack.pgid"

STATE_DIR="$STACK_DIR"
# shellcheck source=tools/local-env.sh
source "$ROOT/tools/local-env.sh"
export PATH="$AIRFLOW:$PATH"
# Links and logins point at the admin entrance; tasks call the execution API
# on the api-server directly (TOOLCHAIN.md).
export AIRFLOW__API__BASE_URL="https://127.0.0.1:$STACK_ADMIN_PORT"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$STACK_PORT/execution/"
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="$STACK_PORT"
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
# The scheduler's and triggerer's log servers (two stacks side by side need their own).
export AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT="${STACK_LOG_PORT:-8793}"
export AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT="${STACK_TRIGGER_LOG_PORT:-8794}"
# The same auth as production (helm_config/airflow/values.yaml).
export AIRFLOW__CORE__AUTH_MANAGER=airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager
export AIRFLOW__FAB__AUTH_ROLE_PUBLIC=Viewer
NGINX_PREFIX="$STACK_DIR/nginx"
# shellcheck source=nginx/local/viewer.env
source "$ROOT/nginx/local/viewer.env"

healthy() {
  "$AIRFLOW/python" -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode())' \
    "http://127.0.0.1:$STACK_PORT/api/v2/monitor/health" 2>/dev/null
}

running() {
  [[ -s "$PGID_FILE" ]] && kill -0 -- "-$(cat "$PGID_FILE")" 2>/dev/null
}

# nginx workers run as nobody when the master is root; the state folder may
# not be theirs to read (a test's temporary folder is 0700).
nginx_user() {
  if [[ "$(id -u)" == 0 ]]; then echo "user root;"; fi
}

# The viewer's nginx prefix: the main context, the site rendered from the one
# template every environment uses, and a throwaway self-signed certificate.
viewer_config() {
  command -v nginx >/dev/null || { echo "nginx is not installed: make system-packages" >&2; exit 1; }
  mkdir -p "$NGINX_PREFIX"/{conf.d,logs,tls,tmp}
  cp "$ROOT/nginx/local/nginx.conf" "$NGINX_PREFIX/nginx.conf"
  if [[ ! -s "$NGINX_PREFIX/tls/tls.crt" ]]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=localhost" \
      -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
      -keyout "$NGINX_PREFIX/tls/tls.key" -out "$NGINX_PREFIX/tls/tls.crt" 2>/dev/null
    chmod 600 "$NGINX_PREFIX/tls/tls.key"
  fi
  mkdir -p "$DASHBOARD_DIR" "$DOCS_DIR" "$DATA_DIR"
  "$ROOT/.venv/bin/python" "$ROOT/nginx/render.py" "$ROOT/nginx/templates/airflow-viewer.conf.template" \
    --out "$NGINX_PREFIX/conf.d/airflow-viewer.conf"
  rm -f "$NGINX_PREFIX/conf.d/superset.conf"
  if [[ "$STACK_BI" == 1 ]]; then
    # shellcheck source=nginx/local/superset.env
    source "$ROOT/nginx/local/superset.env"
    "$ROOT/.venv/bin/python" "$ROOT/nginx/render.py" "$ROOT/nginx/templates/superset.conf.template" \
      --out "$NGINX_PREFIX/conf.d/superset.conf"
  fi
  local global
  global="$(nginx_user)"
  nginx -p "$NGINX_PREFIX" -c "$NGINX_PREFIX/nginx.conf" ${global:+-g "$global"} -t 2>"$STACK_DIR/logs/nginx-t.log" \
    || { cat "$STACK_DIR/logs/nginx-t.log" >&2; exit 1; }
}

metadata_db() {
  local url="${STACK_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
  if "$AIRFLOW/python" - "$url" "$STACK_DB_NAME" <<'PY' 2>/dev/null; then
import sys
import psycopg
from psycopg import sql

url, name = sys.argv[1], sys.argv[2]
with psycopg.connect(url, connect_timeout=3, autocommit=True) as con:
    if not con.execute("select 1 from pg_database where datname = %s", [name]).fetchone():
        con.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
PY
    local base="${url%/*}"
    echo "postgresql+psycopg2://${base#postgresql://}/$STACK_DB_NAME"
  else
    echo "sqlite:///$STACK_DIR/airflow/airflow.db"
  fi
}

# The demo source: events generated once for this stack, ending yesterday in the
# platform's time zone, so the daily schedule finds each new day's interval.
demo_events() {
  local today start
  if [[ ! -s "$STACK_DIR/events.parquet" ]]; then
    today="$(TZ=Asia/Singapore date +%F)"
    start="$(date -d "$today - $STACK_DEMO_DAYS days" +%F)"
    echo "==> generating ~$STACK_DEMO_EVENTS demo events, $start to $today (exclusive)"
    "$ROOT/scripts-repo/.venv/bin/extract-load" generate --out "$STACK_DIR/events.parquet.tmp" \
      --start "$start" --days "$STACK_DEMO_DAYS" --events "$STACK_DEMO_EVENTS" --seed "$STACK_DEMO_SEED" \
      >"$STACK_DIR/logs/generate.log" 2>&1 || { cat "$STACK_DIR/logs/generate.log" >&2; exit 1; }
    mv "$STACK_DIR/events.parquet.tmp" "$STACK_DIR/events.parquet"
    echo "$start $today" >"$STACK_DIR/events.period"
  fi
  export EVENTS_API_URL="http://127.0.0.1:$STACK_EVENTS_API_PORT"
}

# Container mode: the data folders the images' user (uid 50000) writes, the
# registry and podman's configuration, each component's env files and the
# pinned Airflow image's dbt manifest (tools/stack_pins.py).
container_mode() {
  local data="$STACK_DIR/data"
  mkdir -p "$data"/{bucket,dbt-artifacts,dashboard,docs,data,metrics}
  chmod 0777 "$data" "$data"/{bucket,dbt-artifacts,dashboard,docs,data,metrics}
  export BUCKET_URL="$data/bucket" WAREHOUSE_URL="duckdb://$data/warehouse.duckdb"
  export DBT_DUCKDB_PATH="$data/warehouse.duckdb" DBT_ARTIFACTS_URL="file://$data/dbt-artifacts"
  export WAREHOUSE_SNAPSHOT_PATH="$data/warehouse-readers.duckdb"
  export DASHBOARD_DIR="$data/dashboard" PLATFORM_METRICS_DIR="$data/metrics" EXTRACT_LOAD_METRICS_DIR="$data/metrics"
  export DOCS_DIR="$data/docs" DATA_DIR="$data/data" DOCS_URL="$data/docs" DATA_URL="$data/data"
  export NGINX_DASHBOARD_DIR="$DASHBOARD_DIR"  # the viewer serves what the dbt containers publish
  export NGINX_DOCS_DIR="$DOCS_DIR" NGINX_DATA_DIR="$DATA_DIR"
  export CONTAINERS_CONF="$ROOT/tools/podman/containers.conf"
  export CONTAINERS_REGISTRIES_CONF="$STACK_DIR/registries.conf"
  printf '[[registry]]\nlocation = "127.0.0.1:%s"\ninsecure = true\n' "$STACK_REGISTRY_PORT" >"$CONTAINERS_REGISTRIES_CONF"
  cat >"$STACK_DIR/registry.yml" <<YAML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $STACK_RELEASE_DIR/registry}
http: {addr: '127.0.0.1:$STACK_REGISTRY_PORT'}
YAML
  echo "==> $STACK_ENV runs what it pins ($STACK_RELEASE_DIR/repository/environments/$STACK_ENV/release.yaml)"
  "$ROOT/.venv/bin/python" "$ROOT/tools/stack_pins.py" --env "$STACK_ENV" --release-dir "$STACK_RELEASE_DIR" \
    --state-dir "$data" --env-dir "$STACK_DIR/configmaps" --registry-port "$STACK_REGISTRY_PORT" \
    --manifest "$STACK_DIR/manifest.json" 2>"$STACK_DIR/logs/stack-pins.log" \
    || { cat "$STACK_DIR/logs/stack-pins.log" >&2; exit 1; }
  export PLATFORM_RUNNER=container PLATFORM_ENVIRONMENT="$STACK_ENV"
  export PLATFORM_ENVIRONMENTS_DIR="$STACK_RELEASE_DIR/repository/environments"
  export PLATFORM_IMAGE_REGISTRY="127.0.0.1:$STACK_REGISTRY_PORT" PLATFORM_CONTAINER_TLS_VERIFY=false
  export PLATFORM_CONTAINER_ENV_DIR="$STACK_DIR/configmaps" PLATFORM_CONTAINER_MOUNTS="$data"
  export PLATFORM_CONTAINER_DOCKER_URL="unix://$STACK_DIR/podman.sock"
  # The project inside the dbt image; the scheduler renders it from the Airflow image's manifest.
  export DBT_PROJECT_DIR=/opt/dbt DBT_MANIFEST_PATH="$STACK_DIR/manifest.json"
}

unpause() {
  local dag
  for dag in "$@"; do
    [[ -z "$dag" ]] || airflow dags unpause "$dag" >/dev/null 2>>"$STACK_DIR/logs/first-runs.log"
  done
}

# After the DAG processor has parsed the DAGs: the first run over the demo period
# (once per generated period), then the schedule takes over.
first_runs() {
  local found start end runs days
  for _ in $(seq 1 180); do
    found="$(airflow dags list -o plain 2>/dev/null | awk '{print $1}' || true)"
    if grep -qx events_ingest <<<"$found" && grep -qx dbt_transform <<<"$found"; then
      break
    fi
    sleep 1
  done
  grep -qx events_ingest <<<"$found" || { echo "the DAG processor did not parse the DAGs; logs in $STACK_DIR/logs" >&2; exit 1; }
  read -r start end <"$STACK_DIR/events.period"
  # The whole period in one extract and one load (31 days at most, events_ingest's largest chunk).
  days=$(( ($(date -d "$end" +%s) - $(date -d "$start" +%s)) / 86400 ))
  if (( days > 31 )); then days=31; fi
  # Once per generated period: a restart finds its run; new data (a new period) gets its own.
  runs="$(airflow dags list-runs events_ingest -o plain 2>/dev/null || true)"
  if grep -q "demo__${start}_${end}" <<<"$runs"; then
    unpause "${SCHEDULED_DAGS[@]}"
    echo "==> unpaused ${SCHEDULED_DAGS[*]}: dbt_transform follows each load and publishes the dashboard"
    return
  fi
  # With a logical date (now): Airflow's calendar view fails on a run without one.
  airflow dags trigger events_ingest --run-id "demo__${start}_${end}" -l "$(date -u +%Y-%m-%dT%H:%M:%S+00:00)" \
    --conf "{\"start\": \"$start\", \"end\": \"$end\", \"days_per_task\": $days}" >/dev/null 2>>"$STACK_DIR/logs/first-runs.log"
  echo "==> triggered events_ingest over the demo period, $start to $end (exclusive)"
  unpause "${SCHEDULED_DAGS[@]/dbt_transform}"  # all but dbt_transform (its entry emptied)
  # dbt_transform stays paused while the first loads run (a paused DAG queues no Asset
  # events), then builds once over all of them: following each load would build the
  # models once per load, minutes each, before the dashboard shows the whole period.
  echo "==> loading the demo period (and the latest scheduled day) before the first dbt_transform"
  if ! "$AIRFLOW/python" - "http://127.0.0.1:$STACK_PORT" "demo__${start}_${end}" <<'PY'
import json, sys, time, urllib.request

from datetime import datetime, timezone

api, demo_run = sys.argv[1], sys.argv[2]


def get(path):
    with urllib.request.urlopen(f"{api}/api/v2/dags/events_ingest{path}", timeout=10) as response:  # noqa: S310 (loopback)
        return json.load(response)


def settled():
    """The demo run ended, no run is queued or running, and the scheduler has nothing due.

    With max_active_runs=1 the scheduler does not even create the latest scheduled run
    while the demo run is active (next_dagrun_run_after is null then), so "nothing
    running" alone can end this wait just before that run appears and loads.
    """
    runs = get("/dagRuns?limit=100")["dag_runs"]
    demo = [run for run in runs if run["dag_run_id"] == demo_run]
    if not demo or demo[0]["state"] not in ("success", "failed"):
        return False
    if any(run["state"] in ("queued", "running") for run in runs):
        return False
    due = get("")["next_dagrun_run_after"]
    return due is not None and datetime.fromisoformat(due) > datetime.now(timezone.utc)


deadline = time.monotonic() + 900
while time.monotonic() < deadline:
    try:
        if settled():
            sys.exit(0)
    except (OSError, ValueError, KeyError):
        pass
    time.sleep(3)
sys.exit(1)
PY
  then
    echo "    the loads are still running after 15 minutes: dbt_transform starts now and follows each load"
  fi
  unpause dbt_transform
  airflow dags trigger dbt_transform --run-id "demo__${start}_${end}" -l "$(date -u +%Y-%m-%dT%H:%M:%S+00:00)" \
    >/dev/null 2>>"$STACK_DIR/logs/first-runs.log"
  echo "==> triggered dbt_transform over what loaded, and unpaused ${SCHEDULED_DAGS[*]}: dbt_transform follows each load"
}

# Airflow's connection to Superset (superset_api): dbt_transform's refresh_bi_cache drops the
# cached chart results after each build, as the user tools/superset.sh creates with the role
# CacheRefresher. Its password is generated with Superset's other secrets, before either starts.
bi_connection() {
  "$ROOT/tools/superset.sh" secrets
  AIRFLOW_CONN_SUPERSET_API="$("$AIRFLOW/python" - "$STACK_DIR/superset/refresher.json" "http://127.0.0.1:$STACK_BI_PORT" <<'PY'
import json, sys
user = json.load(open(sys.argv[1]))
print(json.dumps({"conn_type": "http", "host": sys.argv[2], "login": user["username"], "password": user["password"]}))
PY
  )"
  export AIRFLOW_CONN_SUPERSET_API PLATFORM_BI_CACHE_REFRESH=true
}

# The post-deploy smoke check a cluster runs as Argo CD's PostSync hook, on this stack:
# health and heartbeats, the declared pools/Variables/connections, and in containers the
# pinned dbt image's `dbt debug` and `dbt parse`. A failure stops `up`, saying what is missing.
smoke_check() {
  local dbt=()
  if [[ -n "$STACK_ENV" ]]; then dbt=(--dbt); fi
  echo "==> smoke check (ops.smoke_check${dbt:+ --dbt}): logs/smoke-check.log"
  if ! (cd "$ROOT/airflow-repo" && "$AIRFLOW/python" -m ops.smoke_check "${dbt[@]}" \
    "$ROOT/environments/${STACK_ENV:-sandbox}/airflow-runtime.yaml" --api-url "http://127.0.0.1:$STACK_PORT") \
    >"$STACK_DIR/logs/smoke-check.log" 2>&1; then
    grep -E '^FAIL|^smoke check' "$STACK_DIR/logs/smoke-check.log" >&2 || tail -20 "$STACK_DIR/logs/smoke-check.log" >&2
    down
    exit 1
  fi
  tail -1 "$STACK_DIR/logs/smoke-check.log"
}

# Superset prepares its metadata DB and imports the assets inside the group
# (tools/superset.sh) while Airflow starts; `up` returns once it answers.
superset_ready() {
  local started=$SECONDS
  for _ in $(seq 1 300); do
    if curl -fsS "http://127.0.0.1:$STACK_BI_PORT/health" >/dev/null 2>&1; then
      echo "==> Superset answers ($(grep -o 'prepared in [0-9]* s' "$STACK_DIR/logs/superset.log" || true), beside Airflow; waited $((SECONDS - started)) s more)"
      return
    fi
    running || break
    sleep 1
  done
  echo "Superset did not come up; logs in $STACK_DIR/logs/superset.log" >&2
  tail -20 "$STACK_DIR/logs/superset.log" >&2
  down
  exit 1
}

up() {
  if running; then
    echo "already running (process group $(cat "$PGID_FILE")): http://127.0.0.1:$STACK_PORT"
    return
  fi
  local port
  local ports=("$STACK_PORT" "$STACK_VIEWER_PORT" "$STACK_ADMIN_PORT"
    "$AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT" "$AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT")
  if [[ "$STACK_DEMO" == 1 ]]; then ports+=("$STACK_EVENTS_API_PORT"); fi
  if [[ -n "$STACK_ENV" ]]; then ports+=("$STACK_REGISTRY_PORT"); fi
  if [[ "$STACK_BI" == 1 ]]; then ports+=("$STACK_BI_PORT" "$STACK_BI_VIEWER_PORT" "$STACK_BI_ADMIN_PORT"); fi
  for port in "${ports[@]}"; do
    if "$AIRFLOW/python" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$port" 2>/dev/null; then
      echo "port $port on 127.0.0.1 is taken by another program; choose others with the STACK_*PORT settings" >&2
      exit 1
    fi
  done
  mkdir -p "$AIRFLOW_HOME" "$STACK_DIR/logs"
  if [[ "$STACK_DEMO" == 1 ]]; then demo_events; fi
  if [[ -n "$STACK_ENV" ]]; then container_mode; fi
  AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="$(metadata_db)"
  export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
  export PLATFORM_METADATA_DB_URL="$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
  echo "==> metadata DB: ${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN%%://*}"
  if [[ ! -s "$STACK_DIR/users.json" ]]; then
    (umask 077 && "$AIRFLOW/python" - "$STACK_DIR/users.json" <<'PY'
import json, secrets, sys
users = {name: {"role": role, "password": secrets.token_urlsafe(12)} for name, role in (("admin", "Admin"), ("viewer", "Viewer"))}
with open(sys.argv[1], "w") as handle:
    json.dump(users, handle, indent=2)
PY
    )
  fi
  airflow db migrate >"$STACK_DIR/logs/db-migrate.log" 2>&1
  (cd "$ROOT/airflow-repo" && "$AIRFLOW/python" -m ops.sync_users "$STACK_DIR/users.json") \
    >"$STACK_DIR/logs/sync-users.log" 2>&1 || { cat "$STACK_DIR/logs/sync-users.log" >&2; exit 1; }
  viewer_config
  # Pools (and Variables) as the environment declares them, by the command a cluster's bootstrap runs.
  (cd "$ROOT/airflow-repo" && "$AIRFLOW/python" -m ops.apply_runtime "$ROOT/environments/${STACK_ENV:-sandbox}/airflow-runtime.yaml") \
    >"$STACK_DIR/logs/airflow-runtime.log" 2>&1 || { cat "$STACK_DIR/logs/airflow-runtime.log" >&2; exit 1; }

  if [[ "$STACK_BI" == 1 ]]; then bi_connection; fi

  # One new session and process group holding every component.
  setsid bash -c '
    if [[ -n "$5" ]]; then
      docker-registry serve "$0/registry.yml" >"$0/logs/registry.log" 2>&1 &
      podman system service --time=0 "unix://$0/podman.sock" >"$0/logs/podman-api.log" 2>&1 &
    fi
    if [[ -n "$3" ]]; then
      "$4" serve-api --source "$0/events.parquet" --port "$3" >"$0/logs/events-api.log" 2>&1 &
    fi
    airflow api-server -H 127.0.0.1 -p "$AIRFLOW__API__PORT" >"$0/logs/api-server.log" 2>&1 &
    airflow scheduler >"$0/logs/scheduler.log" 2>&1 &
    airflow dag-processor >"$0/logs/dag-processor.log" 2>&1 &
    airflow triggerer >"$0/logs/triggerer.log" 2>&1 &
    nginx -p "$1" -c "$1/nginx.conf" ${2:+-g "$2"} >"$0/logs/nginx.log" 2>&1 &
    if [[ -n "$6" ]]; then
      "$6" >"$0/logs/superset.log" 2>&1 &
    fi
    wait
  ' "$STACK_DIR" "$NGINX_PREFIX" "$(nginx_user)" "$([[ "$STACK_DEMO" == 1 ]] && echo "$STACK_EVENTS_API_PORT")" \
    "$ROOT/scripts-repo/.venv/bin/extract-load" "$STACK_ENV" "$([[ "$STACK_BI" == 1 ]] && echo "$ROOT/tools/superset.sh")" \
    </dev/null >/dev/null 2>&1 &
  echo $! >"$PGID_FILE"

  echo "==> waiting for the api-server on 127.0.0.1:$STACK_PORT"
  for _ in $(seq 1 120); do
    if healthy >/dev/null; then
      smoke_check
      if [[ "$STACK_DEMO" == 1 ]]; then first_runs; fi
      if [[ "$STACK_BI" == 1 ]]; then superset_ready; fi
      echo "    public viewer: https://127.0.0.1:$STACK_VIEWER_PORT (read-only, no login; dashboard at /dashboard/)"
      echo "    admin entrance: https://127.0.0.1:$STACK_ADMIN_PORT (logins admin / viewer, passwords in $STACK_DIR/users.json)"
      echo "    api-server: http://127.0.0.1:$STACK_PORT (self-signed certificate: your browser will ask)"
      if [[ "$STACK_BI" == 1 ]]; then
        echo "    Superset, public dashboard: https://127.0.0.1:$STACK_BI_VIEWER_PORT (read-only, no login)"
        echo "    Superset, admin entrance: https://127.0.0.1:$STACK_BI_ADMIN_PORT (login admin, password in $STACK_DIR/superset/admin.json)"
      fi
      echo "    stop with: make down"
      return
    fi
    running || break
    sleep 1
  done
  echo "the stack did not come up; logs in $STACK_DIR/logs" >&2
  down
  exit 1
}

down() {
  if ! running; then
    echo "not running"
    rm -f "$PGID_FILE"
    return
  fi
  local pgid
  pgid="$(cat "$PGID_FILE")"
  kill -TERM -- "-$pgid" 2>/dev/null || true
  for _ in $(seq 1 30); do
    kill -0 -- "-$pgid" 2>/dev/null || break
    sleep 1
  done
  kill -KILL -- "-$pgid" 2>/dev/null || true
  # Superset's container, where the stack ran the pinned bi image (tools/superset.sh), even if
  # its podman client was killed before it could stop it.
  if command -v podman >/dev/null; then
    CONTAINERS_CONF="$ROOT/tools/podman/containers.conf" podman rm --force --ignore \
      "$("$ROOT/tools/superset.sh" container-name)" >/dev/null 2>&1 || true
  fi
  rm -f "$PGID_FILE"
  echo "stopped process group $pgid"
}

status() {
  if running; then
    healthy
  else
    echo "not running"
    return 1
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
