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
# - http://127.0.0.1:${STACK_PORT:-8080}: the api-server itself.
# Auth is the FAB auth manager (docs/adr/0014); users admin and viewer get
# passwords generated into $STACK_DIR/users.json (never committed).
#
# The metadata DB is the local PostgreSQL when one answers (database
# `$STACK_DB_NAME`, created if missing), otherwise SQLite.
#
# Settings: STACK_DIR (default .stack), STACK_PORT (8080), STACK_VIEWER_PORT
# (8443), STACK_ADMIN_PORT (8444), STACK_LOG_PORT and STACK_TRIGGER_LOG_PORT
# (8793, 8794: the components' log servers), STACK_POSTGRES_URL (a libpq URL of a server
# where the database may be created), STACK_DB_NAME (airflow_local).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="$(mkdir -p "${STACK_DIR:-$ROOT/.stack}" && cd "${STACK_DIR:-$ROOT/.stack}" && pwd)"
STACK_PORT="${STACK_PORT:-8080}"
STACK_VIEWER_PORT="${STACK_VIEWER_PORT:-8443}"
STACK_ADMIN_PORT="${STACK_ADMIN_PORT:-8444}"
STACK_DB_NAME="${STACK_DB_NAME:-airflow_local}"
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
  mkdir -p "$DASHBOARD_DIR"
  "$ROOT/.venv/bin/python" "$ROOT/nginx/render.py" "$ROOT/nginx/templates/airflow-viewer.conf.template" \
    --out "$NGINX_PREFIX/conf.d/airflow-viewer.conf"
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

up() {
  if running; then
    echo "already running (process group $(cat "$PGID_FILE")): http://127.0.0.1:$STACK_PORT"
    return
  fi
  local port
  for port in "$STACK_PORT" "$STACK_VIEWER_PORT" "$STACK_ADMIN_PORT" \
    "$AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT" "$AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"; do
    if "$AIRFLOW/python" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$port" 2>/dev/null; then
      echo "port $port on 127.0.0.1 is taken by another program; choose others with the STACK_*PORT settings" >&2
      exit 1
    fi
  done
  mkdir -p "$AIRFLOW_HOME" "$STACK_DIR/logs"
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
  airflow pools set warehouse 1 "one writer at a time for the warehouse" >/dev/null
  airflow pools set extract 2 "concurrent extracts from the sources" >/dev/null

  # One new session and process group holding every component.
  setsid bash -c '
    airflow api-server -H 127.0.0.1 -p "$AIRFLOW__API__PORT" >"$0/logs/api-server.log" 2>&1 &
    airflow scheduler >"$0/logs/scheduler.log" 2>&1 &
    airflow dag-processor >"$0/logs/dag-processor.log" 2>&1 &
    airflow triggerer >"$0/logs/triggerer.log" 2>&1 &
    nginx -p "$1" -c "$1/nginx.conf" ${2:+-g "$2"} >"$0/logs/nginx.log" 2>&1 &
    wait
  ' "$STACK_DIR" "$NGINX_PREFIX" "$(nginx_user)" </dev/null >/dev/null 2>&1 &
  echo $! >"$PGID_FILE"

  echo "==> waiting for the api-server on 127.0.0.1:$STACK_PORT"
  for _ in $(seq 1 120); do
    if healthy >/dev/null; then
      echo "    public viewer: https://127.0.0.1:$STACK_VIEWER_PORT (read-only, no login; dashboard at /dashboard/)"
      echo "    admin entrance: https://127.0.0.1:$STACK_ADMIN_PORT (logins admin / viewer, passwords in $STACK_DIR/users.json)"
      echo "    api-server: http://127.0.0.1:$STACK_PORT (self-signed certificate: your browser will ask)"
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
