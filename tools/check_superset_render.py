"""Fail when the official Superset chart, rendered with our values, does not do what they ask.

The chart cannot be downloaded on the development machines, so CI renders
it (.github/workflows/ci-platform.yaml) and this reads the result. A values
key the pinned chart version does not know is silently ignored by Helm; this
catches the ones the platform relies on:

- every Superset container runs the promoted bi image (`--image`), as the
  account `platform-bi`, not as root, with its environment from the Secret
  `superset-env`, in a pod labelled `app.kubernetes.io/name: superset` (what
  the platform chart's network policies select);
- the deploy job runs `bi-assets deploy` as an Argo CD Sync hook (not a Helm
  hook, which Argo CD would run after the web pods);
- no Celery worker runs, and the chart rendered no Secret of its own holding
  what belongs in `superset-env`;
- the Service `superset` answers on 8088, where the platform chart's viewer
  proxies Superset's sites (`superset.service`, `superset.port`).

Usage: check_superset_render.py RENDERED.yaml --image REPOSITORY:TAG
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ENV_SECRET = "superset-env"  # noqa: S105  # pragma: allowlist secret (a Secret name)
ACCOUNT = "platform-bi"
SERVICE, PORT = "superset", 8088
DEPLOY = ["bi-assets", "deploy"]
# What the chart would put in a Secret it renders from values: each belongs in superset-env.
SECRET_KEYS = frozenset(
    {"SUPERSET_SECRET_KEY", "SECRET_KEY", "DB_PASS", "REDIS_PASSWORD", "SUPERSET_METADATA_URL"}
)
WORKLOADS = frozenset({"Deployment", "StatefulSet", "Job", "CronJob"})


def workloads(documents: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Each workload's name, document and pod template."""
    for document in documents:
        if document.get("kind") in WORKLOADS:
            spec = document.get("spec") or {}
            if document["kind"] == "CronJob":
                spec = spec["jobTemplate"]["spec"]
            yield f"{document['kind']}/{document['metadata']['name']}", document, spec["template"]


def problems(rendered: str, image: str) -> list[str]:
    documents = [d for d in yaml.safe_load_all(rendered) if isinstance(d, dict)]
    found: list[str] = []
    deploy_jobs = []
    for name, document, template in workloads(documents):
        spec = template["spec"]
        replicas = (document.get("spec") or {}).get("replicas")
        if "worker" in name and document["kind"] == "Deployment" and replicas != 0:
            found.append(f"{name}: {replicas} Celery workers; nothing runs on Celery")
        labels = (template.get("metadata") or {}).get("labels") or {}
        if labels.get("app.kubernetes.io/name") != "superset":
            found.append(f"{name}: its pods are not labelled app.kubernetes.io/name=superset ({labels})")
        if spec.get("serviceAccountName") != ACCOUNT:
            found.append(f"{name}: runs as {spec.get('serviceAccountName')!r}, not {ACCOUNT}")
        pod_context = spec.get("securityContext") or {}
        for container in spec.get("containers") or []:
            where = f"{name} container {container['name']}"
            if container.get("image") != image:
                found.append(f"{where}: image {container.get('image')!r}, not the promoted {image}")
            context = {**pod_context, **(container.get("securityContext") or {})}
            if context.get("runAsUser", 0) == 0 and not context.get("runAsNonRoot"):
                found.append(f"{where}: may run as root")
            sources = [s.get("secretRef", {}).get("name") for s in container.get("envFrom") or []]
            if ENV_SECRET not in sources:
                found.append(f"{where}: its environment is not from the Secret {ENV_SECRET}")
            command = [*(container.get("command") or []), *(container.get("args") or [])]
            if document["kind"] == "Job" and command == DEPLOY:
                deploy_jobs.append((name, document))
    if len(deploy_jobs) != 1:
        found.append(f"{len(deploy_jobs)} Jobs run {' '.join(DEPLOY)}; one must, on every sync")
    for name, job in deploy_jobs:
        annotations = job["metadata"].get("annotations") or {}
        if annotations.get("argocd.argoproj.io/hook") != "Sync":
            found.append(f"{name}: not an Argo CD Sync hook ({annotations})")
        if any(key.startswith("helm.sh/hook") for key in annotations):
            found.append(f"{name}: still a Helm hook, which Argo CD runs after the web pods")
    services = {
        d["metadata"]["name"]: {p.get("port") for p in (d.get("spec") or {}).get("ports") or []}
        for d in documents
        if d.get("kind") == "Service"
    }
    if PORT not in services.get(SERVICE, set()):
        found.append(f"no Service {SERVICE} on port {PORT} for the viewer to proxy to ({services})")
    for document in documents:
        if document.get("kind") == "Secret":
            keys = SECRET_KEYS & {*(document.get("data") or {}), *(document.get("stringData") or {})}
            if keys:
                name = document["metadata"]["name"]
                found.append(f"Secret/{name} rendered by the chart holds {sorted(keys)}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rendered", type=Path)
    parser.add_argument("--image", required=True, help="the image every Superset container must run")
    args = parser.parse_args(argv)
    found = problems(args.rendered.read_text(), args.image)
    for line in found:
        print(f"superset render: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
