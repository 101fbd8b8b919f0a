"""Configuration that has no runtime of its own here is checked by the tools that real CI would run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yaml"))
RELEASES = sorted((ROOT / "environments").glob("*/release.yaml"))


def run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_workflows_pass_actionlint() -> None:
    assert WORKFLOWS
    result = run(BIN / "actionlint", *WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_match_githubs_schema() -> None:
    result = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_environment_release_matches_its_schema() -> None:
    assert {p.parent.name for p in RELEASES} == {"sandbox", "staging", "prod"}
    result = run(
        BIN / "check-jsonschema", "--schemafile", ROOT / "environments" / "release.schema.json", *RELEASES
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_rejects_a_mutable_tag(tmp_path: Path) -> None:
    bad = tmp_path / "release.yaml"
    text = RELEASES[0].read_text().replace("digest: null", "digest: latest", 1)
    bad.write_text(text)
    result = run(BIN / "check-jsonschema", "--schemafile", ROOT / "environments" / "release.schema.json", bad)
    assert result.returncode == 1


@pytest.mark.parametrize("env", ["sandbox", "staging", "prod"])
def test_release_files_are_what_the_promotion_tool_writes(env: str) -> None:
    """A hand edit that the tool would not produce shows up here (format drift included)."""
    sys.path.insert(0, str(ROOT / "tools"))
    from promote import read_release, render_release

    path = ROOT / "environments" / env / "release.yaml"
    assert render_release(env, read_release(path.read_text())) == path.read_text()


@pytest.mark.parametrize("env", ["sandbox", "staging", "prod"])
def test_the_airflow_chart_image_is_the_release_files(env: str) -> None:
    import yaml

    release = yaml.safe_load((ROOT / "environments" / env / "release.yaml").read_text())
    image = yaml.safe_load((ROOT / "environments" / env / "airflow-image.yaml").read_text())
    assert image["images"]["airflow"]["digest"] == release["components"]["airflow"]["digest"]


def _leaves(tree: object, prefix: tuple = ()) -> dict[tuple, object]:
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in _leaves(sub, (*prefix, key)).items()}
    return {prefix: tree}


@pytest.mark.parametrize("env", ["sandbox", "staging", "prod"])
def test_airflow_overlays_only_say_what_differs(env: str) -> None:
    import yaml

    base = _leaves(yaml.safe_load((ROOT / "helm_config" / "airflow" / "values.yaml").read_text()))
    overlay = _leaves(yaml.safe_load((ROOT / "environments" / env / "airflow-values.yaml").read_text()))
    assert overlay, env
    assert not {path for path, value in overlay.items() if base.get(path) == value}, f"{env} repeats the base"
    # What runs is the promotion tool's digest and the cluster's registry, never an overlay's.
    assert not any(path[:2] == ("images", "airflow") for path in overlay)
