"""`container-env`: a component's ConfigMap and Secret as env files, rendered from the platform chart.

On Kubernetes each task pod reads its settings from the ConfigMap
`platform-<component>` (rendered by helm_config/platform from the chart's
defaults and `environments/<env>/platform-values.yaml`) and its secrets from
the Secret of the same name, created outside git. The container runner
(`PLATFORM_RUNNER=container`) gives each container the same settings from
two files per component in `PLATFORM_CONTAINER_ENV_DIR`:

- `platform-<component>.env`: the ConfigMap's data, from the chart rendered
  with the real Helm SDK for that environment, then what a machine without a
  cluster must replace, as one more values layer: `--values` (the chart's
  `local-values.yaml`: DuckDB for BigQuery, loopback for in-cluster
  services) and `--set config.<component>.<KEY>=<value>` (this machine's
  folders);
- `platform-<component>.secret.env` (mode 0600): what the Secret would hold,
  `--secret <component>=KEY[,KEY...]`, each value read from this process's
  environment, so no secret is ever on a command line.

    python tools/container_env.py --env sandbox --out .stack/configmaps \\
        --values helm_config/platform/local-values.yaml \\
        --set config.dbt.DBT_DUCKDB_PATH=/srv/warehouse.duckdb \\
        --secret scripts=BUCKET_URL,WAREHOUSE_URL,EVENTS_API_URL
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm_config" / "platform"
LOCAL_VALUES = CHART / "local-values.yaml"


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        current = merged.get(key)
        merged[key] = (
            deep_merge(current, value)
            if isinstance(value, Mapping) and isinstance(current, Mapping)
            else value
        )
    return merged


def set_value(values: dict[str, Any], name: str, value: str) -> None:
    """`helm --set name=value` as Argo CD passes a parameter: dots separate keys, `\\.` is a dot."""
    keys = [key.replace("\0", ".") for key in name.replace("\\.", "\0").split(".")]
    for key in keys[:-1]:
        values = values.setdefault(key, {})
    values[keys[-1]] = value


def environment_values(environments: Path, env: str) -> dict[str, Any]:
    """What Argo CD layers on the chart's defaults for `env`: its platform values, then its release."""
    values: dict[str, Any] = {}
    for name in ("platform-values.yaml", "release.yaml"):
        path = environments / env / name
        if not path.is_file():
            raise SystemExit(f"{path}: no such file (is {env!r} an environment?)")
        values = deep_merge(values, yaml.safe_load(path.read_text()) or {})
    return values


def config_maps(values: dict[str, Any], namespace: str) -> dict[str, dict[str, str]]:
    """The chart's rendered ConfigMaps named platform-<component>: component -> data."""
    from helm_python import Chart

    rendered = Chart.load(str(CHART)).render(values, name="platform", namespace=namespace)
    found: dict[str, dict[str, str]] = {}
    for text in rendered.values():
        for document in yaml.safe_load_all(text):
            if not document or document.get("kind") != "ConfigMap":
                continue
            name = str(document["metadata"]["name"])
            labels = document["metadata"].get("labels") or {}
            if name.startswith("platform-") and labels.get("app.kubernetes.io/component"):
                found[name.removeprefix("platform-")] = {
                    str(k): str(v) for k, v in (document.get("data") or {}).items()
                }
    return found


def env_line(key: str, value: str) -> str:
    """One line of a podman --env-file: KEY=value, taken verbatim to the line's end."""
    if "\n" in value or "\r" in value:
        raise SystemExit(f"{key}: a value with a line break cannot go in an env file")
    return f"{key}={value}\n"


def write_env(path: Path, data: Mapping[str, str], *, private: bool) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    with os.fdopen(descriptor, "w") as handle:
        handle.writelines(env_line(key, value) for key, value in sorted(data.items()))
    temporary.replace(path)


def render(
    env: str,
    out: Path,
    *,
    environments: Path = ROOT / "environments",
    values_files: Sequence[Path] = (),
    assignments: Sequence[str] = (),
    secrets: Mapping[str, Sequence[str]] | None = None,
    source: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """Write every component's env files into `out`; the files written, by name."""
    values = environment_values(environments, env)
    for path in values_files:
        values = deep_merge(values, yaml.safe_load(path.read_text()) or {})
    for assignment in assignments:
        name, separator, value = assignment.partition("=")
        if not separator or not name:
            raise SystemExit(f"--set {assignment!r}: expected KEY.PATH=value")
        set_value(values, name, value)
    source = os.environ if source is None else source
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for component, data in config_maps(values, f"platform-{env}").items():
        path = out / f"platform-{component}.env"
        write_env(path, data, private=False)
        written[path.name] = path
    for component, keys in (secrets or {}).items():
        missing = [key for key in keys if not source.get(key)]
        if missing:
            raise SystemExit(f"secret of {component}: {', '.join(missing)} not set in the environment")
        path = out / f"platform-{component}.secret.env"
        write_env(path, {key: source[key] for key in keys}, private=True)
        written[path.name] = path
    return written


# What the platform's Secrets hold that a local run has too (the rest of a Secret is cloud-only).
LOCAL_SECRETS = {"scripts": ["BUCKET_URL", "WAREHOUSE_URL", "EVENTS_API_URL"]}


SNAPSHOT_FILE = "warehouse-readers.duckdb"


def render_local(
    env: str,
    out: Path,
    *,
    environments: Path,
    duckdb_path: Path | str,
    dashboard_dir: Path | str,
    artifacts_url: str,
    source: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """`render` for this machine: the local layer, this run's folders, the Secrets' local values."""
    return render(
        env,
        out,
        environments=environments,
        values_files=[LOCAL_VALUES],
        assignments=[
            f"config.dbt.DBT_DUCKDB_PATH={duckdb_path}",
            # What BI tools read, beside the file dbt builds (warehouses.snapshot).
            f"config.dbt.WAREHOUSE_SNAPSHOT_PATH={Path(duckdb_path).with_name(SNAPSHOT_FILE)}",
            f"config.dbt.DASHBOARD_URL={dashboard_dir}",
            # The docs site and the data exports beside the dashboard (the viewer serves all three).
            f"config.dbt.DOCS_URL={Path(dashboard_dir).with_name('docs')}",
            f"config.dbt.DATA_URL={Path(dashboard_dir).with_name('data')}",
            # A bucket's name is the Secret's in production; a local folder is no secret.
            f"config.dbt.DBT_ARTIFACTS_URL={artifacts_url}",
        ],
        secrets=LOCAL_SECRETS,
        source=source,
    )


def parse_secret(text: str) -> tuple[str, list[str]]:
    component, separator, keys = text.partition("=")
    names = [key.strip() for key in keys.split(",") if key.strip()]
    if not separator or not component or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: expected <component>=KEY[,KEY...]")
    return component, names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", required=True, help="sandbox, staging or prod")
    parser.add_argument("--out", type=Path, required=True, help="PLATFORM_CONTAINER_ENV_DIR")
    parser.add_argument("--environments", type=Path, default=ROOT / "environments")
    parser.add_argument("--values", type=Path, action="append", default=[], help="one more values file")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY.PATH=VALUE")
    parser.add_argument("--secret", type=parse_secret, action="append", default=[])
    args = parser.parse_args(argv)
    written = render(
        args.env,
        args.out,
        environments=args.environments,
        values_files=args.values,
        assignments=args.assignments,
        secrets=dict(args.secret),
    )
    for name in sorted(written):
        print(written[name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
