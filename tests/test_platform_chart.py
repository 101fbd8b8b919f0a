"""The platform chart rendered with the real Helm SDK for every environment, each object validated strictly.

Values are layered as Argo CD layers them: the chart's defaults, then
`environments/<env>/platform-values.yaml`, then `environments/<env>/release.yaml`,
then the parameters the ApplicationSet fills in from the cluster registration.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from containers import load_tool
from test_argocd import APPSETS, generate

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm_config" / "platform"
# Values layered as the container runner's env files layer them (tools/container_env.py).
CONTAINER_ENV = load_tool("container_env")
KUBERNETES_VERSION = "1.33.0"  # the GKE release channel the platform targets
CUSTOM_RESOURCES = {"ServiceMonitor", "PrometheusRule"}  # no schema offline: checked field by field below


pytestmark = pytest.mark.platform  # configuration checked by its tools, no pipeline run


def argo_helm(env: str) -> dict[str, Any]:
    platform = next(a for a in APPSETS if a["metadata"]["name"] == "platform")
    return generate(platform["spec"]["template"], env)["spec"]["source"]["helm"]


def argo_parameters(env: str) -> list[dict[str, str]]:
    return argo_helm(env).get("parameters", [])


def environment_values(env: str) -> dict[str, Any]:
    values = CONTAINER_ENV.environment_values(ROOT / "environments", env)
    for parameter in argo_parameters(env):
        CONTAINER_ENV.set_value(values, parameter["name"], parameter["value"])
    # File parameters (helm --set-file): the file's text, its path relative to the chart.
    for parameter in argo_helm(env).get("fileParameters", []):
        CONTAINER_ENV.set_value(values, parameter["name"], (CHART / parameter["path"]).resolve().read_text())
    return values


def render(env: str, overrides: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    from helm_python import Chart

    values = CONTAINER_ENV.deep_merge(environment_values(env), overrides or {})
    rendered = Chart.load(str(CHART)).render(values, name="platform", namespace=f"platform-{env}")
    return [doc for text in rendered.values() for doc in yaml.safe_load_all(text) if doc]


def test_the_chart_lints_strictly() -> None:
    import helm_python

    result = helm_python.lint(str(CHART), strict=True)
    assert result["errors"] == [], result
    assert all(m["severity"] <= 1 for m in result["messages"]), result["messages"]  # info only


# A dbt image built and promoted: what a release file says once the promotion tool has run.
DBT_BUILT = {"components": {"dbt": {"digest": "sha256:" + "d" * 64}}}
ALL_BUILT = {
    "components": {name: {"digest": "sha256:" + c * 64} for name, c in (("dbt", "d"), ("airflow", "e"))}
}
AIRFLOW_BUILT = {"components": {"airflow": {"digest": "sha256:" + "e" * 64}}}


@pytest.mark.parametrize(
    ("env", "overrides"),
    [("sandbox", None), ("staging", None), ("prod", None), ("prod", DBT_BUILT), ("prod", ALL_BUILT)],
    ids=["sandbox", "staging", "prod", "prod-with-dbt-image", "prod-with-every-image"],
)
def test_every_rendered_object_is_valid_kubernetes(
    env: str, overrides: dict[str, Any] | None, tmp_path: Path
) -> None:
    objects = render(env, overrides)
    kinds = sorted(o["kind"] for o in objects)
    assert kinds.count("ConfigMap") >= 4 and {"Deployment", "Service", *CUSTOM_RESOURCES} <= set(kinds)
    deployments = {o["metadata"]["name"] for o in objects if o["kind"] == "Deployment"}
    assert ("data-health" in deployments) == bool(overrides)
    core = [o for o in objects if o["kind"] not in CUSTOM_RESOURCES]
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(yaml.safe_dump_all(core))
    validated = subprocess.run(
        [
            Path(sys.executable).with_name("kubernetes-validate"),
            "--strict",
            "-k",
            KUBERNETES_VERSION,
            str(manifest),
        ],
        capture_output=True,
        text=True,
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr
    for resource in (o for o in objects if o["kind"] in CUSTOM_RESOURCES):
        assert resource["apiVersion"] == "monitoring.coreos.com/v1"
        assert set(resource["spec"]) <= {"selector", "endpoints", "groups"}, resource["spec"]


@pytest.mark.parametrize("env", ["sandbox", "staging", "prod"])
def test_the_release_configmap_is_the_environments_release_file(env: str) -> None:
    objects = render(env)
    release = next(
        o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "platform-release"
    )
    assert yaml.safe_load(release["data"]["release.yaml"]) == yaml.safe_load(
        (ROOT / "environments" / env / "release.yaml").read_text()
    )
    dbt = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "platform-dbt")
    assert dbt["data"]["DBT_BIGQUERY_DATASET"] == f"analytics_{env}"
    assert "DBT_BIGQUERY_PROJECT" not in dbt["data"]  # project ids come from the Secret, never git


def test_overlays_only_say_what_differs() -> None:
    """No value is repeated in an environment overlay and in the chart's defaults."""
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())

    def leaves(tree: Any, prefix: tuple = ()) -> dict[tuple, Any]:
        if isinstance(tree, dict):
            return {k: v for key, sub in tree.items() for k, v in leaves(sub, (*prefix, key)).items()}
        return {prefix: tree}

    base = leaves(defaults)
    for env in ("sandbox", "staging", "prod"):
        overlay = leaves(yaml.safe_load((ROOT / "environments" / env / "platform-values.yaml").read_text()))
        repeated = {path for path, value in overlay.items() if base.get(path) == value}
        assert not repeated, f"{env} repeats chart defaults: {repeated}"


def test_data_health_runs_the_release_dbt_image_and_is_scraped() -> None:
    objects = {(o["kind"], o["metadata"]["name"]): o for o in render("prod", DBT_BUILT)}
    pod = objects[("Deployment", "data-health")]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    registry = next(p["value"] for p in argo_parameters("prod") if p["name"] == "dataHealth.imageRegistry")
    assert container["image"] == f"{registry}/dbt@sha256:{'d' * 64}"
    assert container["command"][:2] == ["data-health", "serve"]
    assert {e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e} == {
        "platform-dbt"
    }
    account = objects[("ServiceAccount", pod["serviceAccountName"])]
    assert account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"].startswith("data-health@")
    monitor = objects[("ServiceMonitor", "data-health")]["spec"]
    service = objects[("Service", "data-health")]
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}


# Airflow's own maintenance: the only workloads that may hold the metadata DB's URL.
AIRFLOW_MAINTENANCE = {
    ("CronJob", "airflow-db-clean"),
    ("Job", "airflow-bootstrap"),
    ("Job", "smoke-check-airflow"),
}


def test_only_airflows_maintenance_jobs_are_given_the_metadata_db_url() -> None:
    objects = {(o["kind"], o["metadata"]["name"]): o for o in render("prod", AIRFLOW_BUILT)}
    job = objects[("CronJob", "airflow-db-clean")]["spec"]
    pod = job["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    registry = next(
        p["value"] for p in argo_parameters("prod") if p["name"] == "airflowDbClean.imageRegistry"
    )
    assert container["image"] == f"{registry}/airflow@sha256:{'e' * 64}"
    assert "airflow db clean --yes --skip-archive" in container["args"][0]
    assert job["concurrencyPolicy"] == "Forbid" and pod["automountServiceAccountToken"] is False
    url = next(e for e in container["env"] if e["name"] == "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
    assert url["valueFrom"]["secretKeyRef"] == {"name": "airflow-metadata-db", "key": "connection"}
    # Nothing else in the platform chart names the metadata Secret: no pod that reads data.
    others = [
        k for k, o in objects.items() if k not in AIRFLOW_MAINTENANCE and "airflow-metadata-db" in str(o)
    ]
    assert others == []
    # Nor does anything the Airflow chart adds to its pods: only its own data.metadataSecretName.
    airflow = yaml.safe_load((ROOT / "helm_config" / "airflow" / "values.yaml").read_text())
    assert airflow["data"]["metadataSecretName"] == "airflow-metadata-db"  # pragma: allowlist secret
    given = {k: v for k, v in airflow.items() if k != "data"}
    assert "airflow-metadata-db" not in str(given) and "PLATFORM_METADATA_DB_URL" not in str(given)
    # Until Airflow is built for the environment there is no image to run: no job.
    unbuilt = {"components": {"airflow": {"digest": None}}}
    assert not AIRFLOW_MAINTENANCE & {(o["kind"], o["metadata"]["name"]) for o in render("prod", unbuilt)}


@pytest.mark.parametrize("env", ["sandbox", "staging", "prod"])
def test_the_bootstrap_hook_applies_the_environments_runtime_file_after_the_migration(env: str) -> None:
    """Issue 24: pools, Variables and connections applied in the cluster by the same command
    `make up` runs, from the same file, after Airflow's migration, on every sync."""
    objects = {(o["kind"], o["metadata"]["name"]): o for o in render(env, ALL_BUILT)}
    runtime = objects[("ConfigMap", "airflow-runtime")]
    text = (ROOT / "environments" / env / "airflow-runtime.yaml").read_text()
    assert yaml.safe_load(runtime["data"]["airflow-runtime.yaml"]) == yaml.safe_load(text)
    job = objects[("Job", "airflow-bootstrap")]
    hook = job["metadata"]["annotations"]
    # A Sync hook after the ConfigMap (wave -1), like the chart's migration (wave 0) and users (1) jobs.
    assert hook["argocd.argoproj.io/hook"] == "Sync" and int(hook["argocd.argoproj.io/sync-wave"]) >= 1
    assert int(runtime["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) < 0
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    registry = next(p["value"] for p in argo_parameters(env) if p["name"] == "airflowHooks.imageRegistry")
    assert container["image"] == f"{registry}/airflow@sha256:{'e' * 64}"
    script = container["args"][0]
    assert script.index("airflow db check-migrations") < script.index("python -m ops.apply_runtime")
    mounted = next(m for m in container["volumeMounts"] if m["name"] == "runtime")
    assert script.split()[-1] == f"{mounted['mountPath']}/airflow-runtime.yaml"
    assert {"name": "runtime", "configMap": {"name": "airflow-runtime"}} in pod["volumes"]


def test_the_smoke_check_hooks_run_the_pinned_images_as_the_workloads_they_check() -> None:
    objects = {(o["kind"], o["metadata"]["name"]): o for o in render("prod", ALL_BUILT)}
    registry = next(p["value"] for p in argo_parameters("prod") if p["name"] == "airflowHooks.imageRegistry")
    airflow_job, dbt_job = objects[("Job", "smoke-check-airflow")], objects[("Job", "smoke-check-dbt")]
    for job in (airflow_job, dbt_job):
        assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PostSync"  # fails the sync
    pod = airflow_job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == f"{registry}/airflow@sha256:{'e' * 64}"
    assert container["command"][:3] == ["python", "-m", "ops.smoke_check"]
    # A connection resolves as in a task: the workers' account and environment.
    airflow = yaml.safe_load((ROOT / "helm_config" / "airflow" / "values.yaml").read_text())
    assert pod["serviceAccountName"] == airflow["workers"]["serviceAccount"]["name"]
    assert container["envFrom"] == yaml.safe_load(airflow["extraEnvFrom"])
    api = container["args"][container["args"].index("--api-url") + 1]
    upstream = merged_values("prod")["viewer"]["airflowApiServer"]  # the api-server the viewer proxies to
    assert api == f"http://{upstream['service']}:{upstream['port']}"
    dbt = dbt_job["spec"]["template"]["spec"]
    (container,) = dbt["containers"]
    assert container["image"] == f"{registry}/dbt@sha256:{'d' * 64}"
    assert "dbt debug" in container["args"][0] and "dbt parse" in container["args"][0]
    assert (
        dbt["serviceAccountName"] == "platform-dbt"
        and {"configMapRef": {"name": "platform-dbt"}} in container["envFrom"]
    )


def test_every_service_account_a_pod_runs_as_exists_with_its_own_google_account() -> None:
    """The pods the DAGs start run as platform-<component> (pipeline_runtime.kubernetes), Superset's as
    platform-bi (the official chart's values name it): created here, before either chart syncs."""
    objects = render("prod", ALL_BUILT)
    accounts = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ServiceAccount"}
    project = next(p["value"] for p in argo_parameters("prod") if p["name"] == "gcpProject")
    superset = yaml.safe_load((ROOT / "helm_config" / "bi" / "values.yaml").read_text())
    assert superset["serviceAccount"] == {"create": False, "name": "platform-bi"}
    for component in ("scripts", "dbt", "bi"):
        annotation = accounts[f"platform-{component}"]["metadata"]["annotations"][
            "iam.gke.io/gcp-service-account"
        ]
        assert annotation == f"{component}@{project}.iam.gserviceaccount.com"
    airflow = yaml.safe_load((ROOT / "helm_config" / "airflow" / "values.yaml").read_text())
    from_airflow_chart = {
        airflow[part]["serviceAccount"]["name"] for part in ("workers", "scheduler", "apiServer")
    }
    for workload in (o for o in objects if o["kind"] in ("Deployment", "Job", "CronJob")):
        spec = workload["spec"].get("jobTemplate", {}).get("spec") or workload["spec"]
        pod = spec["template"]["spec"]
        account = pod.get("serviceAccountName", "default")
        assert account in accounts or account in from_airflow_chart or account == "default", account


def merged_values(env: str) -> dict[str, Any]:
    """What Helm validates: the chart's defaults with the environment's values over them."""
    return CONTAINER_ENV.deep_merge(
        yaml.safe_load((CHART / "values.yaml").read_text()), environment_values(env)
    )


@pytest.mark.parametrize("env", ["sandbox", "staging", "prod"])
def test_every_environments_values_match_the_charts_schema(env: str) -> None:
    """Issue 24: values.schema.json, and each environment's layered values (with the cluster's
    parameters) valid against it; Helm checks it too on every template and install."""
    import json

    import jsonschema

    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(merged_values(env), schema)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"config": {"scripts": {"STATSD_PORT": 9125}}}, "is not of type 'string'"),  # ConfigMap data
        ({"viewer": {"replicas": 0}}, "less than the minimum"),
        ({"viewer": {"limits": {"rate": "fast"}}}, "does not match"),
        ({"dataHealth": {"enabled": True, "colour": "red"}}, "Additional properties"),
        ({"environment": "preprod"}, "is not one of"),
    ],
)
def test_the_schema_refuses_a_value_that_would_break_a_render(override: dict[str, Any], message: str) -> None:
    import json

    import jsonschema

    schema = json.loads((CHART / "values.schema.json").read_text())
    with pytest.raises(jsonschema.ValidationError, match=message):
        jsonschema.validate(CONTAINER_ENV.deep_merge(merged_values("prod"), override), schema)


@pytest.mark.parametrize("env", ["sandbox", "staging", "prod"])
def test_the_local_layer_renders_every_environment_once_every_image_is_built(env: str) -> None:
    """`make up ENV=<env>` renders the chart with local-values.yaml in place of a cluster's registration:
    everything a registration would fill in (registries, the cluster's CIDRs) must be there too."""
    from helm_python import Chart

    local = yaml.safe_load((CHART / "local-values.yaml").read_text())
    values = CONTAINER_ENV.deep_merge(CONTAINER_ENV.environment_values(ROOT / "environments", env), local)
    rendered = Chart.load(str(CHART)).render(CONTAINER_ENV.deep_merge(values, ALL_BUILT), name="platform")
    kinds = {doc["kind"] for text in rendered.values() for doc in yaml.safe_load_all(text) if doc}
    assert {"ConfigMap", "Job", "NetworkPolicy"} <= kinds


def test_the_dbt_pods_publish_the_dashboard_where_the_viewer_serves_it() -> None:
    """Issue 24: in clusters publish-dashboard (a dbt pod) writes the bucket prefix the viewer mounts."""
    objects = {(o["kind"], o["metadata"]["name"]): o for o in render("prod", ALL_BUILT)}
    url = objects[("ConfigMap", "platform-dbt")]["data"]["DASHBOARD_URL"]
    bucket = next(p["value"] for p in argo_parameters("prod") if p["name"] == "viewer.dashboard.bucket")
    assert url == f"gs://{bucket}/dashboard"
    viewer = objects[("Deployment", "viewer")]["spec"]["template"]["spec"]
    mount = next(v for v in viewer["volumes"] if v["name"] == "dashboard")["csi"]["volumeAttributes"]
    assert mount["bucketName"] == bucket and f"only-dir={url.rsplit('/', 1)[1]}" in mount["mountOptions"]
    # Locally the container runner's layer names a folder instead, which nginx serves.
    local = CONTAINER_ENV.config_maps(
        CONTAINER_ENV.deep_merge(
            CONTAINER_ENV.deep_merge(
                environment_values("prod"), yaml.safe_load((CHART / "local-values.yaml").read_text())
            ),
            {"config": {"dbt": {"DASHBOARD_URL": "/srv/dashboard"}}},
        ),
        "platform-prod",
    )
    assert local["dbt"]["DASHBOARD_URL"] == "/srv/dashboard"


def test_the_dbt_pods_publish_docs_and_data_where_the_viewer_serves_them() -> None:
    """Issue 27: publish-docs and publish-data write the bucket prefixes the viewer mounts, each its own."""
    objects = {(o["kind"], o["metadata"]["name"]): o for o in render("prod", ALL_BUILT)}
    config = objects[("ConfigMap", "platform-dbt")]["data"]
    bucket = next(p["value"] for p in argo_parameters("prod") if p["name"] == "viewer.dashboard.bucket")
    assert config["DOCS_URL"] == f"gs://{bucket}/docs" and config["DATA_URL"] == f"gs://{bucket}/data"
    viewer = objects[("Deployment", "viewer")]["spec"]["template"]["spec"]
    nginx = viewer["containers"][0]
    env = {e["name"]: e.get("value") for e in nginx["env"]}
    mounts = {m["name"]: m for m in nginx["volumeMounts"]}
    for name in ("docs", "data"):
        volume = next(v for v in viewer["volumes"] if v["name"] == name)["csi"]
        assert volume["readOnly"] is True and volume["volumeAttributes"]["bucketName"] == bucket
        assert f"only-dir={name}" in volume["volumeAttributes"]["mountOptions"]
        assert mounts[name]["readOnly"] is True
        assert env[f"NGINX_{name.upper()}_DIR"] == mounts[name]["mountPath"]
    # The local layer's folders win over the bucket (make up ENV=...).
    local = CONTAINER_ENV.config_maps(
        CONTAINER_ENV.deep_merge(
            CONTAINER_ENV.deep_merge(
                environment_values("prod"), yaml.safe_load((CHART / "local-values.yaml").read_text())
            ),
            {"config": {"dbt": {"DOCS_URL": "/srv/docs", "DATA_URL": "/srv/data"}}},
        ),
        "platform-prod",
    )
    assert local["dbt"]["DOCS_URL"] == "/srv/docs" and local["dbt"]["DATA_URL"] == "/srv/data"


@pytest.mark.parametrize("env", ["sandbox", "staging", "prod"])
def test_airflow_refreshes_supersets_cache_wherever_superset_is_deployed(env: str) -> None:
    """Every environment deploys Superset (the ApplicationSet superset), so dbt_transform must drop its
    cached results after each build there: the flag is on, its connection is declared (and so checked by
    the smoke check), and the viewer serves Superset's sites from the service the official chart makes."""
    objects = {(o["kind"], o["metadata"]["name"]): o for o in render(env, ALL_BUILT)}
    assert objects[("ConfigMap", "platform-airflow")]["data"]["PLATFORM_BI_CACHE_REFRESH"] == "true"
    runtime = yaml.safe_load((ROOT / "environments" / env / "airflow-runtime.yaml").read_text())
    assert runtime["connections"]["superset_api"]["required_if"] == "bi_cache_refresh"
    appsets = list(yaml.safe_load_all((ROOT / "environments" / "applicationsets.yaml").read_text()))
    assert "superset" in {a["metadata"]["name"] for a in appsets}
    superset = yaml.safe_load((ROOT / "helm_config" / "bi" / "values.yaml").read_text())
    viewer = objects[("Deployment", "viewer")]["spec"]["template"]["spec"]["containers"][0]
    upstream = {e["name"]: e["value"] for e in viewer["env"]}["NGINX_SUPERSET_UPSTREAM"]
    assert upstream.startswith(f"http://{superset['fullnameOverride']}.")
    assert upstream.endswith(f":{superset['service']['port']}")
