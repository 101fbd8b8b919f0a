#!/usr/bin/env bash
# `make up` / `make down`: a local Airflow with the UI, for people who want to
# click around. api-server, scheduler, dag-processor and triggerer run in one
# process group started with setsid, so `down` stops every one of them (and
# their task subprocesses) with one signal.
#
# The metadata DB is the local PostgreSQL when one answers (database
# `$STACK_DB_NAME`, created if missing), otherwise SQLite. The UI is on
# http://127.0.0.1:${STACK_PORT:-8080}; logins are admin and viewer, with
# passwords generated into $STACK_DIR/passwords.json (never committed).
#
# Settings: STACK_DIR (default .stack), STACK_PORT (8080), STACK_POSTGRES_URL
# (a libpq URL of a server where the database may be created), STACK_DB_NAME
# (airflow_local).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="$(mkdir -p "${STACK_DIR:-$ROOT/.stack}" && cd "${STACK_DIR:-$ROOT/.stack}" && pwd)"
STACK_PORT="${STACK_PORT:-8080}"
STACK_DB_NAME="${STACK_DB_NAME:-airflow_local}"
AIRFLOW="$ROOT/airflow-repo/.venv/bin"
PGID_FILE="$STACK_DIR/stack.pgid"

STATE_DIR="$STACK_DIR"
# shellcheck source=tools/local-env.sh
source "$ROOT/tools/local-env.sh"
export PATH="$AIRFLOW:$PATH"
# Tasks call back into the api-server: it must know where it is (TOOLCHAIN.md).
export AIRFLOW__API__BASE_URL="http://127.0.0.1:$STACK_PORT"
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="$STACK_PORT"
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin,viewer:viewer"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$STACK_DIR/passwords.json"

healthy() {
  "$AIRFLOW/python" -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode())' \
    "http://127.0.0.1:$STACK_PORT/api/v2/monitor/health" 2>/dev/null
}

running() {
  [[ -s "$PGID_FILE" ]] && kill -0 -- "-$(cat "$PGID_FILE")" 2>/dev/null
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
  mkdir -p "$AIRFLOW_HOME" "$STACK_DIR/logs"
  AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="$(metadata_db)"
  export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
  echo "==> metadata DB: ${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN%%://*}"
  if [[ ! -s "$STACK_DIR/passwords.json" ]]; then
    "$AIRFLOW/python" - "$STACK_DIR/passwords.json" <<'PY'
import json, secrets, sys
with open(sys.argv[1], "w") as handle:
    json.dump({"admin": secrets.token_urlsafe(12), "viewer": secrets.token_urlsafe(12)}, handle)
PY
    chmod 600 "$STACK_DIR/passwords.json"
  fi
  airflow db migrate >"$STACK_DIR/logs/db-migrate.log" 2>&1
  airflow pools set warehouse 1 "one writer at a time for the warehouse" >/dev/null
  airflow pools set extract 2 "concurrent extracts from the sources" >/dev/null

  # One new session and process group holding every component.
  setsid bash -c '
    airflow api-server -H 127.0.0.1 -p "$AIRFLOW__API__PORT" >"$0/logs/api-server.log" 2>&1 &
    airflow scheduler >"$0/logs/scheduler.log" 2>&1 &
    airflow dag-processor >"$0/logs/dag-processor.log" 2>&1 &
    airflow triggerer >"$0/logs/triggerer.log" 2>&1 &
    wait
  ' "$STACK_DIR" </dev/null >/dev/null 2>&1 &
  echo $! >"$PGID_FILE"

  echo "==> waiting for the api-server on 127.0.0.1:$STACK_PORT"
  for _ in $(seq 1 120); do
    if healthy >/dev/null; then
      echo "    up: http://127.0.0.1:$STACK_PORT (logins admin / viewer, passwords in $STACK_DIR/passwords.json)"
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
