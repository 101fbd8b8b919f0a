"""Everything the DAGs read from their environment, in one frozen object.

The same DAG code runs in every environment; only this configuration differs
(the chart's `env:` on Kubernetes, `tools/local-env.sh` locally). Reading it in
one place means one default and one validation per setting: a `PLATFORM_RUNNER`
of `k8s` is refused instead of silently running locally, a retention of zero
days is refused instead of deleting everything. Nothing here is read while a
DAG file is parsed unless the DAG's shape depends on it.

Secrets (the metadata DB URL, the Slack webhook) are kept out of `repr`, so a
settings object in a log or a traceback shows none.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# local: a subprocess in a venv; container: the pinned image with podman; kubernetes: a pod of it.
RUNNERS = ("local", "container", "kubernetes")
# How dbt_transform runs dbt (docs/adr/0018).
DBT_EXECUTIONS = ("per_model", "watcher")


@dataclass(frozen=True)
class Settings:
    runner: str = "local"
    # Kubernetes
    pod_namespace: str = "data-platform"
    pod_service_account: str | None = None
    kubeconfig: str | None = None
    image_registry: str = ""
    # Containers (PLATFORM_RUNNER=container): the environment's ConfigMaps and Secrets as env
    # files, host folders mounted at the same path, TLS to the registry (off only for a local one).
    container_env_dir: Path | None = None
    container_mounts: tuple[str, ...] = ()
    container_tls_verify: bool = True
    # podman's Docker API (`podman system service`), which Cosmos's docker mode drives for dbt.
    container_docker_url: str = "unix:///run/podman/podman.sock"
    # Releases
    environment: str = "sandbox"
    environments_dir: Path = Path("/opt/airflow/environments")
    release_file: Path | None = None
    # dbt
    dbt_project_dir: Path = Path("/opt/dbt")
    dbt_manifest_path: Path | None = None
    dbt_profiles_dir: Path | None = None
    dbt_target: str = "duckdb"
    dbt_target_path: Path | None = None
    dbt_artifacts_url: str | None = None
    # per_model: dbt starts once per model (a process, container or pod);
    # watcher: one dbt build, a sensor per model (docs/adr/0018). Unset: watcher for the
    # local runner, per_model for containers and pods (where watcher mode is not measured yet).
    dbt_execution: str = "per_model"
    # Sources (the Airflow Variable `platform_sources` overrides `sources`)
    sources: str = "events"
    stream_source: str = "events_stream"
    # Deadlines, retention, alerts
    data_fresh_by: str | None = None
    retention_days: Mapping[str, str] = field(default_factory=dict)  # as set; checked when used
    alert_email: str | None = None
    alert_slack_webhook: str | None = field(default=None, repr=False)
    metadata_db_url: str | None = field(default=None, repr=False)
    # A BI tool (Superset) serves the analytics tables here: dbt_transform drops its cache after each build.
    bi_cache_refresh: bool = False
    # PLATFORM_<COMPONENT>_CMD: how to run a component's program locally.
    commands: Mapping[str, str] = field(default_factory=dict)

    @property
    def on_kubernetes(self) -> bool:
        return self.runner == "kubernetes"

    @property
    def in_containers(self) -> bool:
        return self.runner == "container"

    @property
    def runs_images(self) -> bool:
        """Commands run in the release's images (containers or pods), not in local venvs."""
        return self.runner in ("container", "kubernetes")

    @property
    def manifest_path(self) -> Path:
        return self.dbt_manifest_path or self.dbt_project_dir / "target" / "manifest.json"

    @property
    def profiles_dir(self) -> Path:
        return self.dbt_profiles_dir or self.dbt_project_dir

    def command(self, component: str, default: str) -> str:
        return self.commands.get(component.lower(), default)

    def retention(self, name: str) -> int:
        """Days platform_maintenance keeps of `name`; a bad value fails that task only."""
        variable, default = RETENTION[name]
        raw = self.retention_days.get(name, str(default))
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{variable}={raw!r}: expected a whole number of days") from None
        if value < 1:
            raise ValueError(f"{variable}={value}: retention must be at least one day")
        return value


# What platform_maintenance keeps, in days, and the variables that change it.
RETENTION = {
    "metadata": ("PLATFORM_METADATA_RETENTION_DAYS", 90),
    "logs": ("PLATFORM_LOG_RETENTION_DAYS", 30),
    "bucket": ("BUCKET_RETENTION_DAYS", 400),
}


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name}={value!r}: expected one of {', '.join(choices)}")
    return value


def _flag(name: str, value: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise ValueError(f"{name}={value!r}: expected true or false")


def settings(env: Mapping[str, str] | None = None) -> Settings:
    """The settings of this process, from `env` (default: the environment), validated."""
    env = os.environ if env is None else env
    runner = _choice("PLATFORM_RUNNER", env.get("PLATFORM_RUNNER", "local"), RUNNERS)
    commands = {
        key[len("PLATFORM_") : -len("_CMD")].lower(): value
        for key, value in env.items()
        if key.startswith("PLATFORM_") and key.endswith("_CMD") and value
    }
    return Settings(
        runner=runner,
        pod_namespace=env.get("PLATFORM_POD_NAMESPACE", "data-platform"),
        pod_service_account=env.get("PLATFORM_POD_SERVICE_ACCOUNT") or None,
        kubeconfig=env.get("KUBECONFIG") or None,
        image_registry=env.get("PLATFORM_IMAGE_REGISTRY", "").rstrip("/"),
        container_env_dir=_path(env.get("PLATFORM_CONTAINER_ENV_DIR")),
        container_mounts=tuple(m for m in env.get("PLATFORM_CONTAINER_MOUNTS", "").split(",") if m),
        container_tls_verify=_flag(
            "PLATFORM_CONTAINER_TLS_VERIFY", env.get("PLATFORM_CONTAINER_TLS_VERIFY", "true")
        ),
        container_docker_url=env.get("PLATFORM_CONTAINER_DOCKER_URL") or "unix:///run/podman/podman.sock",
        environment=env.get("PLATFORM_ENVIRONMENT", "sandbox"),
        environments_dir=Path(env.get("PLATFORM_ENVIRONMENTS_DIR", "/opt/airflow/environments")),
        release_file=_path(env.get("PLATFORM_RELEASE_FILE")),
        dbt_project_dir=Path(env.get("DBT_PROJECT_DIR", "/opt/dbt")),
        dbt_manifest_path=_path(env.get("DBT_MANIFEST_PATH")),
        dbt_profiles_dir=_path(env.get("DBT_PROFILES_DIR")),
        dbt_target=env.get("DBT_TARGET", "duckdb"),
        dbt_target_path=_path(env.get("DBT_TARGET_PATH")),
        dbt_artifacts_url=env.get("DBT_ARTIFACTS_URL") or None,
        dbt_execution=_choice(
            "PLATFORM_DBT_EXECUTION",
            env.get("PLATFORM_DBT_EXECUTION") or ("watcher" if runner == "local" else "per_model"),
            DBT_EXECUTIONS,
        ),
        sources=env.get("PLATFORM_SOURCES", "events"),
        stream_source=env.get("PLATFORM_STREAM_SOURCE", "events_stream"),
        data_fresh_by=env.get("PLATFORM_DATA_FRESH_BY") or None,
        retention_days={name: env[variable] for name, (variable, _) in RETENTION.items() if variable in env},
        alert_email=env.get("PLATFORM_ALERT_EMAIL") or None,
        alert_slack_webhook=env.get("PLATFORM_ALERT_SLACK_WEBHOOK") or None,
        metadata_db_url=env.get("PLATFORM_METADATA_DB_URL") or None,
        bi_cache_refresh=_flag("PLATFORM_BI_CACHE_REFRESH", env.get("PLATFORM_BI_CACHE_REFRESH", "false")),
        commands=commands,
    )
