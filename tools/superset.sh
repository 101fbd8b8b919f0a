#!/usr/bin/env bash
# Superset for `make up` (tools/stack.sh runs it in the stack's process group):
# prepares its metadata DB, the admin and the assets, then serves on
# 127.0.0.1:$STACK_BI_PORT behind the stack's nginx (nginx/templates/superset.conf.template).
#
# What a cluster's Superset chart and its import job do, on this machine:
# - its secret key is generated once into $STACK_DIR/superset/secrets.env (0600),
#   the admin's password into $STACK_DIR/superset/admin.json (0600); never in git;
# - metadata in SQLite under $STACK_DIR/superset (PostgreSQL in clusters);
# - `bi-assets deploy`, the chart's post-deploy job: `superset db upgrade` and `init`
#   (idempotent), the admin and Airflow's cache refresher with those passwords, then the
#   dashboards, datasets and roles exactly as git holds them;
# - it reads the analytics tables from WAREHOUSE_SNAPSHOT_PATH, the copy dbt_transform
#   publishes after each build (a DuckDB file dbt is writing cannot be opened).
#
# With STACK_ENV (`make up ENV=<env>`), Superset is the environment's own bi image, pulled
# by the digest its release.yaml pins from the stack's registry, as a cluster's chart runs
# it: `bi-assets deploy` then gunicorn, in one container on the host's network. Otherwise
# it is this checkout's bi-repo.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
: "${STACK_DIR:?}"
# The name of this stack's Superset container (stack.sh's `down` removes it).
CONTAINER="stack-superset-$(printf %s "$STACK_DIR" | sha256sum | cut -c1-12)"
if [[ "${1:-}" == container-name ]]; then echo "$CONTAINER"; exit 0; fi
: "${STACK_BI_PORT:?}" "${WAREHOUSE_SNAPSHOT_PATH:?}"
BIN="$ROOT/bi-repo/.venv/bin"
HOME_DIR="$STACK_DIR/superset"
mkdir -p "$HOME_DIR"

# The secrets, generated once: Superset's key, the admin's password and the cache refresher's
# (Airflow's connection superset_api logs in as it). `superset.sh secrets` only writes them:
# stack.sh runs it first, as Airflow needs the refresher's password too.
if [[ ! -s "$HOME_DIR/refresher.json" ]]; then
  (umask 077 && "$BIN/python" - "$HOME_DIR" <<'PY'
import json, secrets, sys
from pathlib import Path
home = Path(sys.argv[1])
if not (home / "secrets.env").exists():
    (home / "secrets.env").write_text(f"SUPERSET_SECRET_KEY={secrets.token_hex(32)}\n")
for name, user in (("admin.json", "admin"), ("refresher.json", "airflow-cache-refresher")):
    if not (home / name).exists():
        (home / name).write_text(json.dumps({"username": user, "password": secrets.token_urlsafe(12)}, indent=2))
PY
  )
fi
if [[ "${1:-}" == secrets ]]; then exit 0; fi
set -a
# shellcheck source=/dev/null
source "$HOME_DIR/secrets.env"
set +a
export SUPERSET_HOME="$HOME_DIR"
export SUPERSET_METADATA_URL="sqlite:///$HOME_DIR/superset.db"
export SUPERSET_CONFIG_PATH="$ROOT/bi-repo/src/bi/superset_config.py"
export DBT_TARGET="${DBT_TARGET:-duckdb}"
# Chart results cached in Redis (the machine's, or STACK_REDIS_URL), under this stack's own prefix
# (from its folder: two stacks on one Redis never serve each other's numbers).
export SUPERSET_CACHE_REDIS_URL="${STACK_REDIS_URL:-redis://127.0.0.1:6379/0}"
SUPERSET_CACHE_KEY_PREFIX="superset-$(printf %s "$STACK_DIR" | sha256sum | cut -c1-12)_"
export SUPERSET_CACHE_KEY_PREFIX

# What the chart's post-deploy job runs in clusters (bi.deploy): migrations, the admin and the
# cache refresher with the passwords generated above, then the assets and roles of git.
read -r BI_ADMIN_PASSWORD BI_CACHE_REFRESHER BI_CACHE_REFRESHER_PASSWORD < <("$BIN/python" -c '
import json, sys
admin, refresher = (json.load(open(path)) for path in sys.argv[1:])
print(admin["password"], refresher["username"], refresher["password"])' "$HOME_DIR/admin.json" "$HOME_DIR/refresher.json")
export BI_ADMIN_PASSWORD BI_CACHE_REFRESHER BI_CACHE_REFRESHER_PASSWORD
SERVE=(gunicorn -k gthread -w 1 --threads 8 -b "127.0.0.1:$STACK_BI_PORT" --timeout 120
  --limit-request-line 8190 "superset.app:create_app()")
# The deploy job, then the web server (its port $0, its command "$@"): in the pinned image's
# container or from this checkout's venv, the same steps.
# shellcheck disable=SC2016 # expanded by the bash that runs it
DEPLOY_THEN_SERVE='
  started=$(date +%s)
  echo "==> bi-assets deploy"
  bi-assets deploy
  unset BI_ADMIN_PASSWORD BI_CACHE_REFRESHER_PASSWORD
  echo "==> prepared in $(( $(date +%s) - started )) s; serving on 127.0.0.1:$0"
  exec "$@"'

if [[ -n "${STACK_ENV:-}" ]]; then
  : "${STACK_RELEASE_DIR:?}" "${STACK_REGISTRY_PORT:?}"
  release="$STACK_RELEASE_DIR/repository/environments/$STACK_ENV/release.yaml"
  digest="$("$ROOT/.venv/bin/python" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["components"]["bi"]["digest"] or "")' "$release")"
  if [[ -z "$digest" ]]; then
    echo "$STACK_ENV pins no bi image in $release: promote a build there first" >&2
    exit 1
  fi
  image="127.0.0.1:$STACK_REGISTRY_PORT/bi@$digest"
  echo "==> Superset: the pinned bi image $image"
  # The stack's registry starts beside this script.
  for _ in $(seq 1 60); do
    curl -fsS -o /dev/null "http://127.0.0.1:$STACK_REGISTRY_PORT/v2/" && break
    sleep 1
  done
  # The image's user (uid 50000) writes the metadata DB; it reads the snapshot.
  mkdir -p "$HOME_DIR/metadata" && chmod 0777 "$HOME_DIR/metadata"
  export SUPERSET_HOME="$HOME_DIR/metadata" SUPERSET_METADATA_URL="sqlite:///$HOME_DIR/metadata/superset.db"
  snapshots="$(dirname "$WAREHOUSE_SNAPSHOT_PATH")"
  podman rm --force --ignore "$CONTAINER" >/dev/null
  exec podman run --rm --name "$CONTAINER" --network host --tls-verify=false --pull missing \
    --label app.kubernetes.io/part-of=data-platform --label app.kubernetes.io/component=bi \
    -v "$HOME_DIR/metadata:$HOME_DIR/metadata" -v "$snapshots:$snapshots:ro" \
    -e SUPERSET_SECRET_KEY -e SUPERSET_METADATA_URL -e SUPERSET_HOME -e DBT_TARGET -e WAREHOUSE_SNAPSHOT_PATH \
    -e SUPERSET_CACHE_REDIS_URL -e SUPERSET_CACHE_KEY_PREFIX \
    -e BI_ADMIN_PASSWORD -e BI_CACHE_REFRESHER -e BI_CACHE_REFRESHER_PASSWORD \
    --entrypoint bash "$image" -c "$DEPLOY_THEN_SERVE" "$STACK_BI_PORT" "${SERVE[@]}"
fi

PATH="$BIN:$PATH" exec bash -c "$DEPLOY_THEN_SERVE" "$STACK_BI_PORT" "${SERVE[@]}"
