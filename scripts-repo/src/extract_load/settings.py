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
class SnowflakeAuth:
    """Who `extract-load` is on Snowflake (`SNOWFLAKE_*`): a key pair or an OAuth token, never a password.

    The key is the PEM text in `SNOWFLAKE_PRIVATE_KEY` (a Secret's key, as the
    pods' other secrets arrive) or a file (`SNOWFLAKE_PRIVATE_KEY_FILE`), its
    passphrase in `SNOWFLAKE_PRIVATE_KEY_PASSPHRASE`; a token is read from
    `SNOWFLAKE_TOKEN_FILE` at each connection, so a rotated token is picked up.
    The account may also come from the warehouse URL; host, port and protocol
    are for an emulator or a private link, unset against a real account.
    """

    account: str | None = None
    user: str | None = None
    role: str | None = None
    warehouse: str | None = None
    private_key: str | None = field(default=None, repr=False)
    private_key_file: Path | None = None
    private_key_passphrase: str | None = field(default=None, repr=False)
    token_file: Path | None = None
    host: str | None = None
    port: int | None = None
    protocol: str | None = None

    def connect_args(self) -> dict[str, object]:
        """The connector's authentication and endpoint arguments; raises ValueError when none is set."""
        args: dict[str, object] = {}
        if self.private_key:
            from cryptography.hazmat.primitives import serialization

            passphrase = self.private_key_passphrase.encode() if self.private_key_passphrase else None
            key = serialization.load_pem_private_key(self.private_key.encode(), passphrase)
            args["authenticator"] = "SNOWFLAKE_JWT"
            args["private_key"] = key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        elif self.private_key_file is not None:
            args["authenticator"] = "SNOWFLAKE_JWT"
            args["private_key_file"] = str(self.private_key_file)
            if self.private_key_passphrase:
                args["private_key_file_pwd"] = self.private_key_passphrase
        elif self.token_file is not None:
            args["authenticator"] = "oauth"
            args["token"] = self.token_file.read_text(encoding="utf-8").strip()
        else:
            raise ValueError(
                "Snowflake needs a key pair (SNOWFLAKE_PRIVATE_KEY or SNOWFLAKE_PRIVATE_KEY_FILE) "
                "or an OAuth token (SNOWFLAKE_TOKEN_FILE); passwords are not accepted"
            )
        for name in ("user", "role", "warehouse", "host", "port", "protocol"):
            if (value := getattr(self, name)) is not None:
                args[name] = value
        return args


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
    snowflake: SnowflakeAuth = field(default_factory=SnowflakeAuth)
    # A test's failpoint: exit between landing a stream batch and committing its offsets.
    failpoint_before_offset_commit: bool = False
    failpoint_before_warehouse_commit: bool = False
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)

    def declared(self, variable: str | None) -> str | None:
        """The value of a variable the sources file names (a base URL, a token), or None."""
        return (self.environ.get(variable) or None) if variable else None


FAILPOINT_BEFORE_OFFSET_COMMIT = "EXTRACT_LOAD_FAILPOINT_BEFORE_OFFSET_COMMIT"
# A test's failpoint: the Snowflake load kills its own process inside its transaction, before the commit.
FAILPOINT_BEFORE_WAREHOUSE_COMMIT = "EXTRACT_LOAD_FAILPOINT_BEFORE_WAREHOUSE_COMMIT"


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
    try:
        snowflake_port = int(env["SNOWFLAKE_PORT"]) if env.get("SNOWFLAKE_PORT") else None
    except ValueError:
        raise ValueError(f"SNOWFLAKE_PORT={env.get('SNOWFLAKE_PORT')!r}: expected a port number") from None
    snowflake = SnowflakeAuth(
        account=env.get("SNOWFLAKE_ACCOUNT") or None,
        user=env.get("SNOWFLAKE_USER") or None,
        role=env.get("SNOWFLAKE_ROLE") or None,
        warehouse=env.get("SNOWFLAKE_WAREHOUSE") or None,
        private_key=env.get("SNOWFLAKE_PRIVATE_KEY") or None,
        private_key_file=path("SNOWFLAKE_PRIVATE_KEY_FILE"),
        private_key_passphrase=env.get("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE") or None,
        token_file=path("SNOWFLAKE_TOKEN_FILE"),
        host=env.get("SNOWFLAKE_HOST") or None,
        port=snowflake_port,
        protocol=env.get("SNOWFLAKE_PROTOCOL") or None,
    )
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
        snowflake=snowflake,
        failpoint_before_offset_commit=bool(env.get(FAILPOINT_BEFORE_OFFSET_COMMIT)),
        failpoint_before_warehouse_commit=bool(env.get(FAILPOINT_BEFORE_WAREHOUSE_COMMIT)),
        environ=dict(env),
    )
