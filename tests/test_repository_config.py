"""Configuration that has no runtime of its own here is checked by the tools that real CI would run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yaml"))
RELEASES = sorted((ROOT / "environments").glob("*/release.yaml"))


pytestmark = pytest.mark.platform  # configuration checked by its tools, no pipeline run


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


@pytest.mark.parametrize("env", ["sandbox", "staging", "prod"])
def test_the_superset_chart_image_is_the_release_files(env: str) -> None:
    import yaml

    release = yaml.safe_load((ROOT / "environments" / env / "release.yaml").read_text())["components"]["bi"]
    image = yaml.safe_load((ROOT / "environments" / env / "bi-image.yaml").read_text())
    pinned = f"{release['version']}@{release['digest']}" if release["digest"] else None
    assert image == {"image": {"tag": pinned}}


def superset_values(env: str) -> dict:
    import yaml

    sys.path.insert(0, str(ROOT / "tools"))
    from container_env import deep_merge

    layers = [
        ROOT / "helm_config" / "bi" / "values.yaml",
        ROOT / "environments" / env / "bi-values.yaml",
        ROOT / "environments" / env / "bi-image.yaml",
    ]
    merged: dict = {}
    for layer in layers:
        merged = deep_merge(merged, yaml.safe_load(layer.read_text()) or {})
    return merged


@pytest.mark.parametrize("env", ["sandbox", "staging", "prod"])
def test_superset_overlays_only_say_what_differs(env: str) -> None:
    import yaml

    base = _leaves(yaml.safe_load((ROOT / "helm_config" / "bi" / "values.yaml").read_text()))
    overlay = _leaves(yaml.safe_load((ROOT / "environments" / env / "bi-values.yaml").read_text()))
    assert overlay, env
    # (A null the base lacks unsets a chart default: the budget takes minAvailable or maxUnavailable.)
    repeated = {p for p, value in overlay.items() if p in base and base[p] == value}
    assert not repeated, f"{env} repeats the base"
    # What runs is the promotion tool's digest and the cluster's registry, never an overlay's.
    assert not any(path[0] == "image" for path in overlay)


SECRET_WORDS = ("password", "secret", "key", "token", "uri", "url")
SECRET_NAMES = {"envFromSecret", "existingSecret", "existingSecretKey"}  # names of a Secret, not secrets


@pytest.mark.parametrize("env", ["sandbox", "staging", "prod"])
def test_supersets_secrets_come_from_a_secret_never_from_the_chart(env: str) -> None:
    """Left to the chart, Superset's env Secret is rendered from values: a password in git and a SECRET_KEY
    that changes with them. Every environment names the Secret made outside git instead, gives the chart
    nothing secret, and the deploy job makes the users from it (tools/check_superset_render.py checks the
    render in CI)."""
    values = superset_values(env)
    assert values["secretEnv"] == {"create": False}
    assert values["envFromSecret"] == values["database"]["existingSecret"] == "superset-env"
    leaked = {
        path: value
        for path, value in _leaves(values).items()
        if value not in (None, "", False)
        and path[-1] not in SECRET_NAMES
        and any(word in str(path[-1]).lower() for word in SECRET_WORDS)
    }
    assert leaked == {}
    assert not {"extraSecretEnv", "configOverrides", "configOverridesFiles"} & set(values)
    assert values["init"]["createAdmin"] is False and values["init"]["loadExamples"] is False


def test_the_superset_deploy_job_runs_the_images_deploy_command_as_an_argo_cd_hook() -> None:
    values = superset_values("prod")
    init = values["init"]
    assert init["command"] == ["bi-assets", "deploy"]
    assert 'sub.add_parser("deploy"' in (ROOT / "bi-repo" / "src" / "bi" / "cli.py").read_text()
    hooks = {key: value for key, value in init["jobAnnotations"].items() if value is not None}
    assert hooks["argocd.argoproj.io/hook"] == "Sync" and int(hooks["argocd.argoproj.io/sync-wave"]) < 0
    assert not [key for key in hooks if key.startswith("helm.sh/")]
    assert init["upgradeJob"] == {"enabled": False}  # the deploy job migrates
    # The account it runs as is the platform chart's, made before either chart syncs.
    platform = yaml_load(ROOT / "helm_config" / "platform" / "values.yaml")
    assert values["serviceAccount"]["name"] == "platform-bi" and "bi" in platform["componentServiceAccounts"]


def yaml_load(path: Path) -> Any:
    import yaml

    return yaml.safe_load(path.read_text())


def test_the_superset_render_check_finds_what_a_chart_would_silently_ignore() -> None:
    """CI renders the official chart (ci-platform.yaml); a values key the pinned version does not know is
    ignored by Helm without a word. The check finds each way that shows in the render."""
    sys.path.insert(0, str(ROOT / "tools"))
    from check_superset_render import problems

    image = "example.invalid/platform/bi:0.1.0@sha256:" + "0" * 64

    def workload(
        kind: str, name: str, command: list[str], image: str = image, replicas: int | None = None
    ) -> dict[str, Any]:
        container = {
            "name": name,
            "image": image,
            "command": command,
            "envFrom": [{"secretRef": {"name": "superset-env"}}],
            "securityContext": {"allowPrivilegeEscalation": False},
        }
        pod = {
            "metadata": {"labels": {"app.kubernetes.io/name": "superset"}},
            "spec": {
                "serviceAccountName": "platform-bi",
                "securityContext": {"runAsUser": 50000, "runAsNonRoot": True},
                "containers": [container],
            },
        }
        spec: dict[str, Any] = {"template": pod}
        if replicas is not None:
            spec["replicas"] = replicas
        return {"kind": kind, "metadata": {"name": name}, "spec": spec}

    def render(documents: list[dict[str, Any]]) -> str:
        import yaml

        return yaml.safe_dump_all(documents)

    deploy = workload("Job", "superset-init-db", ["bi-assets", "deploy"])
    deploy["metadata"]["annotations"] = {"argocd.argoproj.io/hook": "Sync"}
    web = workload("Deployment", "superset", ["gunicorn"], replicas=1)
    worker = workload("Deployment", "superset-worker", ["celery"], replicas=0)
    service = {"kind": "Service", "metadata": {"name": "superset"}, "spec": {"ports": [{"port": 8088}]}}
    assert problems(render([web, worker, deploy, service]), image) == []
    upstream = workload("Deployment", "superset", ["run-server.sh"], image="apache/superset:6.1.0")
    helm_hook = workload("Job", "superset-init-db", ["bi-assets", "deploy"])
    helm_hook["metadata"]["annotations"] = {"helm.sh/hook": "post-install"}
    placeholder = "c3VwZXJzZXQ="  # pragma: allowlist secret (base64 of a placeholder)
    generated = {"kind": "Secret", "metadata": {"name": "superset-env"}, "data": {"DB_PASS": placeholder}}
    root = workload("Deployment", "superset", ["gunicorn"])
    root["spec"]["template"]["spec"]["securityContext"] = {}
    unlabelled = workload("Deployment", "superset", ["gunicorn"])
    unlabelled["spec"]["template"]["metadata"]["labels"] = {"app": "superset"}
    workers = workload("Deployment", "superset-worker", ["celery"], replicas=1)
    for broken, expected in [
        ([upstream, worker, deploy, service], "not the promoted"),
        ([web, worker, helm_hook, service], "not an Argo CD Sync hook"),
        ([web, worker, deploy, service, generated], "rendered by the chart holds ['DB_PASS']"),
        ([root, worker, deploy, service], "may run as root"),
        ([unlabelled, worker, deploy, service], "not labelled app.kubernetes.io/name=superset"),
        ([web, workers, deploy, service], "Celery workers"),
        ([web, worker, service], "0 Jobs run bi-assets deploy"),
        ([web, worker, deploy], "no Service superset on port 8088"),
    ]:
        found = problems(render(broken), image)
        assert any(expected in line for line in found), (expected, found)


def test_the_source_time_zone_is_one_offset_wherever_it_must_be_repeated() -> None:
    """The export's local time (GMT+8) is declared once per subproject, which cannot import each other.

    dbt converts local to UTC with a var, the loader dates records with a
    constant, Airflow cuts data intervals in a time zone: if one changed alone,
    days would be loaded under one date and modelled under another.
    """
    import ast
    import datetime as dt
    from zoneinfo import ZoneInfo

    import yaml

    dbt_offset = yaml.safe_load((ROOT / "dbt-repo" / "dbt_project.yml").read_text())["vars"][
        "source_utc_offset_hours"
    ]

    def constant(path: Path, name: str) -> object:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
                return ast.literal_eval(node.value)
        raise AssertionError(f"{name} is not assigned in {path}")

    loader_offset = constant(
        ROOT / "scripts-repo" / "src" / "extract_load" / "contract.py", "SOURCE_UTC_OFFSET_HOURS"
    )
    zone = ZoneInfo(
        str(constant(ROOT / "airflow-repo" / "dags" / "pipeline_runtime" / "intervals.py", "LOCAL_TZ"))
    )
    # A fixed offset all year (a zone with daylight saving could not be one dbt var).
    offsets = {dt.datetime(2025, month, 1, tzinfo=zone).utcoffset() for month in range(1, 13)}
    assert offsets == {dt.timedelta(hours=dbt_offset)} and loader_offset == dbt_offset


def test_the_exit_codes_airflow_acts_on_are_the_ones_extract_load_declares() -> None:
    """Subprojects meet through command lines (ADR 0001): the codes are a contract, checked here."""
    import ast

    def constants(path: Path) -> dict[str, object]:
        return {
            target.id: ast.literal_eval(node.value)
            for node in ast.parse(path.read_text()).body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            for target in node.targets
            if isinstance(target, ast.Name) and target.id.startswith("EXIT_")
        }

    declared = constants(ROOT / "scripts-repo" / "src" / "extract_load" / "cli" / "errors.py")
    acted_on = constants(ROOT / "airflow-repo" / "dags" / "pipeline_runtime" / "runner.py")
    assert acted_on and all(declared.get(name) == code for name, code in acted_on.items()), (
        declared,
        acted_on,
    )


def test_airflows_default_sources_are_declared_with_the_kind_that_feeds_them() -> None:
    """`extract-load stream` refuses a name the sources file gives a batch source (issue 20):
    the stream Airflow runs by default must be a kafka source, the batch default a batch one."""
    import ast

    import yaml

    declared = yaml.safe_load(
        (ROOT / "scripts-repo" / "src" / "extract_load" / "config" / "sources.yaml").read_text()
    )["sources"]
    tree = ast.parse((ROOT / "airflow-repo" / "dags" / "pipeline_runtime" / "settings.py").read_text())
    defaults = {
        node.target.id: ast.literal_eval(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None
        if isinstance(node.value, ast.Constant)
    }
    assert declared[defaults["stream_source"]]["kind"] == "kafka"
    assert all(declared[name]["kind"] != "kafka" for name in defaults["sources"].split(","))


def test_dbts_raw_tables_declare_what_their_sources_contracts_say() -> None:
    """The contracts are declared once, in scripts-repo; dbt's raw-table declarations must not drift
    from them (issue 22): every contract column is declared, in the contract's order, and nothing
    else but the loader's own columns."""
    import re

    import yaml

    config = ROOT / "scripts-repo" / "src" / "extract_load" / "config"
    sources = yaml.safe_load((config / "sources.yaml").read_text())["sources"]
    loader_columns = set(
        re.findall(
            r'Column\("(_\w+)"',
            (ROOT / "scripts-repo" / "src" / "extract_load" / "load" / "raw_tables.py").read_text(),
        )
    )
    dbt = yaml.safe_load((ROOT / "dbt-repo" / "models" / "staging" / "__sources.yml").read_text())
    checked = []
    for table in dbt["sources"][0]["tables"]:
        if table["name"] not in sources:
            continue
        contract_name = sources[table["name"]].get("contract", "events")
        contract = yaml.safe_load((config / "contracts" / f"{contract_name}.yaml").read_text())
        expected = [c["name"] for c in contract["columns"]]
        declared = [c["name"] for c in table["columns"]]
        assert [c for c in declared if c in expected] == expected, (table["name"], declared, expected)
        assert set(declared) - set(expected) <= loader_columns, set(declared) - set(expected) - loader_columns
        checked.append(table["name"])
    assert "events" in checked


@pytest.mark.parametrize("env", ["sandbox", "staging", "prod"])
def test_airflows_keys_come_from_a_secret_never_from_the_chart(env: str) -> None:
    """Issue 24: unset, the chart generates the Fernet key, JWT secret and API secret key at render time,
    and Argo CD renders on every sync. Every environment names the Secret, and CI fails on a render that
    still holds a generated one (tools/check_chart_secrets.py, run in ci-platform.yaml)."""
    import yaml

    values = yaml.safe_load((ROOT / "helm_config" / "airflow" / "values.yaml").read_text())
    values |= yaml.safe_load((ROOT / "environments" / env / "airflow-values.yaml").read_text()) or {}
    for key in ("fernetKeySecretName", "apiSecretKeySecretName", "jwtSecretName"):
        assert values.get(key), f"{env}: {key} is not set, so the chart would generate the secret"
    assert values["data"]["metadataSecretName"]
    assert "tools/check_chart_secrets.py" in (ROOT / ".github" / "workflows" / "ci-platform.yaml").read_text()


def test_the_render_check_finds_a_chart_generated_secret() -> None:
    sys.path.insert(0, str(ROOT / "tools"))
    from check_chart_secrets import generated_secrets

    generated = (
        "kind: Secret\nmetadata: {name: airflow-fernet-key}\ndata: {fernet-key: eHg=}\n---\n"
        "kind: Secret\nmetadata: {name: airflow-jwt-secret}\ndata: {jwt-secret: eHg=}\n---\n"
        "kind: ConfigMap\nmetadata: {name: airflow-config}\ndata: {fernet-key: not-a-secret}\n"
    )
    expected = ["airflow-fernet-key: fernet-key", "airflow-jwt-secret: jwt-secret"]
    assert generated_secrets(generated) == expected
    named = "kind: Secret\nmetadata: {name: airflow-pgbouncer-config}\ndata: {pgbouncer.ini: eHg=}\n"
    assert generated_secrets(named) == []


def _dag_references() -> dict[str, set[str]]:
    """Every pool, Variable and connection id the DAGs name, read from their code (not a hand-kept list):
    `pool=` and `*conn_id=` keywords, `Variable.get/set` (literals or module constants), `var.*` templates,
    and the e-mail backend's connection where alerts send e-mail."""
    import ast
    import re

    files = sorted((ROOT / "airflow-repo" / "dags").rglob("*.py"))
    trees = {path: ast.parse(path.read_text()) for path in files}
    constants = {
        target.id: node.value.value
        for tree in trees.values()
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }  # fmt: skip

    def text(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        return constants.get(node.id) if isinstance(node, ast.Name) else None

    found: dict[str, set[str]] = {"pools": set(), "variables": set(), "connections": set()}
    for path, tree in trees.items():
        source = path.read_text()
        found["variables"] |= set(re.findall(r"\bvar\.(?:json|value)\.(\w+)", source)) - {"get"}
        found["variables"] |= set(re.findall(r"\bvar\.(?:json|value)\.get\(\s*'(\w+)'", source))
        if "send_email" in source:
            found["connections"].add("smtp_default")  # Airflow's [email] email_conn_id default
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            for keyword in node.keywords:
                value = text(keyword.value)
                if keyword.arg == "pool" and value:
                    found["pools"].add(value)
                elif keyword.arg and keyword.arg.endswith("conn_id") and value:
                    found["connections"].add(value)
            function = node.func
            if (
                isinstance(function, ast.Attribute) and function.attr in ("get", "set")
                and isinstance(function.value, ast.Name) and function.value.id == "Variable" and node.args
            ):  # fmt: skip
                name = text(node.args[0])
                assert name, f"{path.name}: a Variable whose name the test cannot read"
                found["variables"].add(name)
    found["pools"].discard("default_pool")  # Airflow's own
    return found


@pytest.mark.parametrize("env", ["sandbox", "staging", "prod"])
def test_every_pool_variable_and_connection_a_dag_names_is_declared(env: str) -> None:
    """Issue 24: a pool nothing creates makes every task naming it wait forever, in that environment only."""
    import yaml

    declared = yaml.safe_load((ROOT / "environments" / env / "airflow-runtime.yaml").read_text())
    needed = _dag_references()
    assert needed["pools"] >= {"extract", "warehouse"} and "platform_sources" in needed["variables"]
    for kind, names in needed.items():
        missing = names - set(declared.get(kind) or {})
        assert not missing, f"{env}: the DAGs name {kind} {sorted(missing)} that airflow-runtime.yaml lacks"
    assert all(int(pool["slots"]) >= 1 for pool in declared["pools"].values())
    # By reference only: a connection says where its credentials come from, never holds them.
    for name, connection in declared["connections"].items():
        assert set(connection) <= {"type", "from", "secret", "required_if", "description"}, (
            f"{env}: {name} holds values"
        )
        assert connection["from"] in ("workload-identity", "kubernetes-secret", "secret-manager"), name
