"""The Argo CD ApplicationSets, and the Applications they generate per environment, against Argo CD's schemas.

The schemas are Argo CD's CRD schemas as published in datreeio/CRDs-catalog
(vendored under environments/schemas/). Generation is checked by rendering
each ApplicationSet's Go template with a registered cluster's metadata, as the
cluster generator does; then every values file an Application names must exist.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "environments" / "schemas" / "argoproj.io"
APPSETS = list(yaml.safe_load_all((ROOT / "environments" / "applicationsets.yaml").read_text()))
CLUSTER = {  # what a cluster registration carries (labels and annotations), as Argo CD exposes it
    "server": "https://cluster.example.invalid",
    "annotations": {
        "platform/registry": "europe-docker.pkg.dev/example-project/platform",
        "platform/gcp-project": "example-project",
        "platform/git-repo": "https://github.com/example/platform.git",
        "platform/viewer-host": "airflow.example.invalid",
        "platform/viewer-admin-host": "airflow-admin.example.invalid",
        "platform/bi-host": "bi.example.invalid",
        "platform/bi-admin-host": "bi-admin.example.invalid",
        "platform/dashboard-bucket": "example-dashboards",
        "platform/kubernetes-api-cidr": "172.16.0.2/32",
        "platform/metadata-db-cidr": "10.90.0.3/32",
        "platform/metadata-db-host": "10.90.0.3",
        "platform/bi-cache-cidr": "10.90.1.0/29",
    },
}
EXPRESSION = re.compile(r"\{\{\s*(?P<expr>[^}]+?)\s*\}\}")


pytestmark = pytest.mark.platform  # configuration checked by its tools, no pipeline run


def check(schema: str, document: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / f"{document['metadata']['name']}.yaml"
    path.write_text(yaml.safe_dump(document))
    return subprocess.run(
        [
            Path(sys.executable).with_name("check-jsonschema"),
            "--schemafile",
            str(SCHEMAS / schema),
            str(path),
        ],
        capture_output=True,
        text=True,
    )


def generate(template: Any, env: str) -> Any:
    """Evaluate the Go template expressions the ApplicationSets use for one cluster."""
    if isinstance(template, dict):
        return {key: generate(value, env) for key, value in template.items()}
    if isinstance(template, list):
        return [generate(value, env) for value in template]
    if not isinstance(template, str):
        return template

    def value(match: re.Match[str]) -> str:
        expr = match["expr"]
        if expr == ".server":
            return CLUSTER["server"]
        found = re.fullmatch(r'index \.metadata\.(labels|annotations) "([^"]+)"', expr)
        assert found, f"unexpected template expression {expr!r}"
        kind, key = found.groups()
        source = {"platform/environment": env} if kind == "labels" else CLUSTER["annotations"]
        return source[key]  # missingkey=error, as the ApplicationSets ask

    return EXPRESSION.sub(value, template)


@pytest.mark.parametrize("appset", APPSETS, ids=lambda a: a["metadata"]["name"])
def test_applicationsets_match_argo_cds_schema(appset: dict[str, Any], tmp_path: Path) -> None:
    result = check("applicationset_v1alpha1.json", appset, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert appset["spec"]["goTemplate"] is True
    assert appset["spec"]["template"]["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}


@pytest.mark.parametrize("env", ["sandbox", "staging", "prod"])
@pytest.mark.parametrize("appset", APPSETS, ids=lambda a: a["metadata"]["name"])
def test_generated_applications_are_valid_and_name_files_that_exist(
    appset: dict[str, Any], env: str, tmp_path: Path
) -> None:
    application = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        **generate(appset["spec"]["template"], env),
    }
    result = check("application_v1alpha1.json", application, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert application["metadata"]["name"] == f"{appset['metadata']['name']}-{env}"
    spec = application["spec"]
    for source in spec.get("sources") or [spec["source"]]:
        base = ROOT / source.get("path", "")
        for values_file in source.get("helm", {}).get("valueFiles", []):
            path = (
                ROOT / values_file.removeprefix("$values/")
                if values_file.startswith("$values/")
                else base / values_file
            )
            assert path.resolve().is_file(), (
                f"{application['metadata']['name']}: {values_file} does not exist"
            )
        if source.get("chart") == "airflow":
            assert source["targetRevision"] == "1.22.0"  # the official chart, pinned
            names = {p["name"] for p in source["helm"]["parameters"]}
            assert "images.airflow.repository" in names  # the registry comes from the cluster, not git
        if source.get("chart") == "superset":
            assert source["targetRevision"] == "0.21.1"  # the official chart, pinned; CI renders it
            assert "--version 0.21.1" in (ROOT / ".github" / "workflows" / "ci-platform.yaml").read_text()
            names = {p["name"] for p in source["helm"]["parameters"]}
            assert "image.repository" in names and "image.tag" not in names  # the tag: bi-image.yaml
    rendered = yaml.safe_dump(application)
    assert "example-project" not in (ROOT / "environments" / "applicationsets.yaml").read_text()
    assert f"environments/{env}/" in rendered
