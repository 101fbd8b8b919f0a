#!/usr/bin/env bash
# Superset for `make up` (tools/stack.sh runs it in the stack's process group):
# prepares its metadata DB, the admin and the assets, then serves on
# 127.0.0.1:$STACK_BI_PORT behind the stack's nginx (nginx/templates/superset.conf.template).
#
# What a cluster's Superset chart and its import job do, on this machine:
# - its secret key is generated once into $STACK_DIR/superset/secrets.env (0600),
#   the admin's password into $STACK_DIR/superset/admin.json (0600); never in git;
# - metadata in SQLite under $STACK_DIR/superset (PostgreSQL in clusters);
# - `superset db upgrade` and `superset init` (idempotent), then `bi-assets import`:
#   the dashboards, datasets and the public role exactly as git holds them;
# - it reads the analytics tables from WAREHOUSE_SNAPSHOT_PATH, the copy dbt_transform
#   publishes after each build (a DuckDB file dbt is writing cannot be opened).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
: "${STACK_DIR:?}" "${STACK_BI_PORT:?}" "${WAREHOUSE_SNAPSHOT_PATH:?}"
BIN="$ROOT/bi-repo/.venv/bin"
HOME_DIR="$STACK_DIR/superset"
mkdir -p "$HOME_DIR"

if [[ ! -s "$HOME_DIR/secrets.env" ]]; then
  (umask 077 && "$BIN/python" - "$HOME_DIR" <<'PY'
import json, secrets, sys
from pathlib import Path
home = Path(sys.argv[1])
(home / "secrets.env").write_text(f"SUPERSET_SECRET_KEY={secrets.token_hex(32)}\n")
(home / "admin.json").write_text(json.dumps({"username": "admin", "password": secrets.token_urlsafe(12)}, indent=2))
PY
  )
fi
set -a
# shellcheck source=/dev/null
source "$HOME_DIR/secrets.env"
set +a
export SUPERSET_HOME="$HOME_DIR"
export SUPERSET_METADATA_URL="sqlite:///$HOME_DIR/superset.db"
export SUPERSET_CONFIG_PATH="$ROOT/bi-repo/src/bi/superset_config.py"
export DBT_TARGET="${DBT_TARGET:-duckdb}"

started=$(date +%s)
echo "==> superset db upgrade"
"$BIN/superset" db upgrade
echo "==> superset init"
"$BIN/superset" init
password="$("$BIN/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["password"])' "$HOME_DIR/admin.json")"
if ! "$BIN/superset" fab list-users 2>/dev/null | grep -q "username:admin "; then
  echo "==> superset fab create-admin"
  "$BIN/superset" fab create-admin --username admin --firstname Platform --lastname Admin \
    --email admin@example.org --password "$password"
fi
echo "==> bi-assets import"
"$BIN/bi-assets" import
echo "==> prepared in $(( $(date +%s) - started )) s; serving on 127.0.0.1:$STACK_BI_PORT"
exec "$BIN/gunicorn" -k gthread -w 1 --threads 8 -b "127.0.0.1:$STACK_BI_PORT" --timeout 120 \
  --limit-request-line 8190 "superset.app:create_app()"
