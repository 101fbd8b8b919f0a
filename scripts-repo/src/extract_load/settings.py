"""Everything `extract-load` reads from its environment, in one frozen object.

The command runs unchanged on a laptop, in Airflow's worker and in a pod;
only its environment differs (the chart's ConfigMap and Secret on Kubernetes).
Reading it here means one name, one default and one validation per setting,
and a newcomer finds every knob in one file. Command-line options that may
also come from the environment (`--bucket` from `BUCKET_URL`, ...) are
click's `envvar`s and documented in `--help`; this object holds the rest.

Two kinds of variable are named by configuration, not here: those a source
in the sources file declares (`base_url_env`, `auth.secret_env`), read
through `Settings.declared`, and the secrets redaction looks for, which is
every variable (see `redaction`). Secret values are kept out of `repr`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MEMORY_LIMIT = "1536MB"  # with Python and the client, a process stays under 2 GiB


@dataclass(frozen=True)
class KafkaAuth:
    """SASL credentials for the brokers (`KAFKA_SASL_*`); none means a plaintext local broker."""

    username: str
    password: str = field(repr=False)
    security_protocol: str = "SASL_SSL"
    mechanism: str = "PLAIN"

    def client_config(self) -> dict[str, object]:
        return {
            "security.protocol": self.security_protocol,
            "sasl.mechanisms": self.mechanism,
            "sasl.username": self.username,
            "sasl.password": self.password,
        }


@dataclass(frozen=True)
class Settings:
    # Where the results of a pod's run go besides stdout (KubernetesPodOperator's XCom file).
    results_file: Path | None = None
    # The sources file (default: the packaged one).
    sources_file: Path | None = None
    # DuckDB's budget: memory limit and where it spills.
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    temp_dir: Path | None = None
    # How long an extract's hold on an interval lasts without a renewal (a crashed holder's wait).
    lease_seconds: float = 60.0
    # Metrics: a folder the exporter serves locally, a StatsD exporter on Kubernetes.
    metrics_dir: Path | None = None
    statsd_host: str | None = None
    statsd_port: int = 9125
    # The GCS client talks to this emulator anonymously (tests), else to Google with ADC.
    storage_emulator_host: str | None = None
    google_cloud_project: str | None = None
    # Google APIs at another endpoint (a recorded replay in tests), anonymously when asked.
    google_api_endpoints: Mapping[str, str] = field(default_factory=dict)
    google_api_anonymous: bool = False
    # The demo events API's bearer token.
    events_api_token: str | None = field(default=None, repr=False)
    kafka_auth: KafkaAuth | None = None
    # A test's failpoint: exit between landing a stream batch and committing its offsets.
    failpoint_before_offset_commit: bool = False
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)

    def declared(self, variable: str | None) -> str | None:
        """The value of a variable the sources file names (a base URL, a token), or None."""
        return (self.environ.get(variable) or None) if variable else None


FAILPOINT_BEFORE_OFFSET_COMMIT = "EXTRACT_LOAD_FAILPOINT_BEFORE_OFFSET_COMMIT"


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected a number of seconds") from None
    if value <= 0:
        raise ValueError(f"{name}={raw!r}: expected a positive number of seconds")
    return value


def settings(env: Mapping[str, str] | None = None) -> Settings:
    """The settings of this process, from `env` (default: the environment), validated."""
    env = os.environ if env is None else env

    def path(name: str) -> Path | None:
        return Path(env[name]) if env.get(name) else None

    kafka_auth = None
    if env.get("KAFKA_SASL_USERNAME"):
        kafka_auth = KafkaAuth(
            username=env["KAFKA_SASL_USERNAME"],
            password=env.get("KAFKA_SASL_PASSWORD", ""),
            security_protocol=env.get("KAFKA_SECURITY_PROTOCOL") or "SASL_SSL",
            mechanism=env.get("KAFKA_SASL_MECHANISM") or "PLAIN",
        )
    try:
        statsd_port = int(env.get("STATSD_PORT") or 9125)
    except ValueError:
        raise ValueError(f"STATSD_PORT={env.get('STATSD_PORT')!r}: expected a port number") from None
    return Settings(
        results_file=path("RESULTS_FILE"),
        sources_file=path("SOURCES_FILE"),
        memory_limit=env.get("EXTRACT_LOAD_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT,
        temp_dir=path("EXTRACT_LOAD_TEMP_DIR"),
        lease_seconds=_positive(env, "EXTRACT_LOAD_LEASE_SECONDS", 60.0),
        metrics_dir=path("EXTRACT_LOAD_METRICS_DIR"),
        statsd_host=env.get("STATSD_HOST") or None,
        statsd_port=statsd_port,
        storage_emulator_host=env.get("STORAGE_EMULATOR_HOST") or None,
        google_cloud_project=env.get("GOOGLE_CLOUD_PROJECT") or None,
        google_api_endpoints={
            api: value
            for api in ("sheets", "drive")
            if (value := env.get(f"GOOGLE_{api.upper()}_API_ENDPOINT"))
        },
        google_api_anonymous=bool(env.get("GOOGLE_API_ANONYMOUS")),
        events_api_token=env.get("EVENTS_API_TOKEN") or None,
        kafka_auth=kafka_auth,
        failpoint_before_offset_commit=bool(env.get(FAILPOINT_BEFORE_OFFSET_COMMIT)),
        environ=dict(env),
    )
