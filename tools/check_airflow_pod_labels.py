"""Fail when the Airflow chart's pods do not carry the labels the network policies select on.

The platform chart's NetworkPolicies (helm_config/platform/templates/
network-policies.yaml) select Airflow's pods by `tier: airflow`, `release:
<release>` and `component: <name>` (api-server, pgbouncer, worker, ...). Those
labels are the official chart's, not ours: a chart upgrade that renamed one
would silently cut the api-server off, or let the workers reach the DB. CI runs
this on `helm template`'s output for each environment
(.github/workflows/ci-platform.yaml), next to the secrets check.

Usage: check_airflow_pod_labels.py RENDERED.yaml [RELEASE]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

# The components the policies name, each of which must be a pod of the rendered chart.
SELECTED = ("api-server", "scheduler", "dag-processor", "triggerer", "pgbouncer", "run-airflow-migrations")
WORKLOADS = ("Deployment", "StatefulSet", "Job", "DaemonSet")


def pod_labels(rendered: str) -> list[dict[str, str]]:
    found = []
    for document in yaml.safe_load_all(rendered):
        if isinstance(document, dict) and document.get("kind") in WORKLOADS:
            template: dict[str, Any] = document["spec"]["template"]
            found.append(dict(template["metadata"].get("labels") or {}))
    # The executor's worker pods come from the pod template file, a ConfigMap.
    for document in yaml.safe_load_all(rendered):
        if isinstance(document, dict) and document.get("kind") == "ConfigMap":
            for text in (document.get("data") or {}).values():
                if "kind: Pod" in str(text):
                    pod = yaml.safe_load(text)
                    found.append(dict(pod["metadata"].get("labels") or {}))
    return found


def missing(rendered: str, release: str = "airflow") -> list[str]:
    """The components the policies select that no rendered pod carries the labels of."""
    components = {
        labels.get("component")
        for labels in pod_labels(rendered)
        if labels.get("tier") == "airflow" and labels.get("release") == release
    }
    return [name for name in (*SELECTED, "worker") if name not in components]


def main() -> None:
    rendered = Path(sys.argv[1]).read_text()
    release = sys.argv[2] if len(sys.argv) > 2 else "airflow"
    absent = missing(rendered, release)
    if absent:
        print(f"no pod labelled tier=airflow, release={release} for: {', '.join(absent)}", file=sys.stderr)
        sys.exit(1)
    print(f"every Airflow pod the network policies select carries tier, release and component ({release})")


if __name__ == "__main__":
    main()
