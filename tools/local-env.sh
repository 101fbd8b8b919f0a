# shellcheck shell=bash
# The local environment's configuration, in one place: `make demo`, `make up`
# and the end-to-end tests source this with STATE_DIR set to where that run
# keeps its state. Deployed environments set the same variables from their
# Helm values (environments/<env>/); only the values differ, never the DAGs.
: "${ROOT:?ROOT must be the repository root}"
: "${STATE_DIR:?STATE_DIR must be the folder this run writes to}"

# Airflow
export AIRFLOW_HOME="$STATE_DIR/airflow"
# platform_maintenance cleans the metadata DB from a task, where Airflow 3
# hides the DB's URL: it is passed on purpose (the chart: from the metadata Secret).
export PLATFORM_METADATA_DB_URL="${PLATFORM_METADATA_DB_URL:-${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db}}"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/airflow-repo/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
export AIRFLOW__COSMOS__ENABLE_TELEMETRY=False
export AIRFLOW__COSMOS__CACHE_DIR="$STATE_DIR/airflow/cosmos"
export AIRFLOW__LOGGING__LOGGING_LEVEL="${AIRFLOW__LOGGING__LOGGING_LEVEL:-INFO}"
# StatsD metrics (apache-airflow[statsd]); a statsd exporter listens here when monitoring runs.
export AIRFLOW__METRICS__STATSD_ON="${AIRFLOW__METRICS__STATSD_ON:-True}"
export AIRFLOW__METRICS__STATSD_HOST="${AIRFLOW__METRICS__STATSD_HOST:-127.0.0.1}"
export AIRFLOW__METRICS__STATSD_PORT="${AIRFLOW__METRICS__STATSD_PORT:-9125}"
export AIRFLOW__METRICS__STATSD_PREFIX=airflow
# Variables (dag_id, task_id, state, pool) as tags, not inside names: the
# exporter's mapping (helm_config/platform/files/statsd-mapping.yaml) expects it.
export AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED=True
export AIRFLOW__METRICS__LEGACY_NAMES_ON=False

# Where each subproject's command runs: its own venv (docs/adr/0002).
export PLATFORM_RUNNER=local
export PLATFORM_SCRIPTS_CMD="$ROOT/scripts-repo/.venv/bin/extract-load"
export PLATFORM_DBT_CMD="$ROOT/dbt-repo/.venv/bin/dbt"
export PLATFORM_DASHBOARD_CMD="$ROOT/dbt-repo/.venv/bin/publish-dashboard"
export PLATFORM_WAREHOUSE_SNAPSHOT_CMD="$ROOT/dbt-repo/.venv/bin/warehouse-snapshot"
export PLATFORM_DOCS_CMD="$ROOT/dbt-repo/.venv/bin/publish-docs"
export PLATFORM_DATA_EXPORT_CMD="$ROOT/dbt-repo/.venv/bin/publish-data"
export PLATFORM_ENVIRONMENTS_DIR="$ROOT/environments"
export PLATFORM_ENVIRONMENT=sandbox
export PLATFORM_SOURCES="${PLATFORM_SOURCES:-events}"

# Bucket and warehouse: a folder and a DuckDB file.
export BUCKET_URL="$STATE_DIR/bucket"
export WAREHOUSE_URL="duckdb://$STATE_DIR/warehouse.duckdb"
export DBT_DUCKDB_PATH="$STATE_DIR/warehouse.duckdb"
# What BI tools (Superset) read: the analytics tables, copied after each build (warehouses.snapshot).
export WAREHOUSE_SNAPSHOT_PATH="$STATE_DIR/warehouse-readers.duckdb"
export DBT_PROJECT_DIR="$ROOT/dbt-repo"
export DBT_PROFILES_DIR="$ROOT/dbt-repo"
export DBT_ARTIFACTS_URL="file://$STATE_DIR/dbt-artifacts"
export DBT_LOG_PATH="$STATE_DIR/logs/dbt"
export DBT_SEND_ANONYMOUS_USAGE_STATS=False
export DASHBOARD_DIR="$STATE_DIR/dashboard"
# Where publish-dashboard publishes: this folder here, gs://<bucket>/dashboard in clusters.
export DASHBOARD_URL="$DASHBOARD_DIR"
# The dbt docs site and the public data exports beside it (publish-docs, publish-data), served
# by the viewer at /docs/ and /data/: gs://<bucket>/docs and gs://<bucket>/data in clusters.
export DOCS_DIR="$STATE_DIR/docs" DATA_DIR="$STATE_DIR/data"
export DOCS_URL="$DOCS_DIR" DATA_URL="$DATA_DIR"

# Metrics: each extract & load run drops a Prometheus text file here; the
# data-health exporter serves the folder with the warehouse's freshness and
# dbt's results (`data-health serve --textfile-dir "$PLATFORM_METRICS_DIR"`).
export PLATFORM_METRICS_DIR="$STATE_DIR/metrics"
export EXTRACT_LOAD_METRICS_DIR="$PLATFORM_METRICS_DIR"
