"""The platform namespace's NetworkPolicies, rendered for every environment and evaluated, not just parsed.

Kubernetes cannot run here, so the rendered policies are evaluated with the
NetworkPolicy semantics (a pod selected by any policy of a type is isolated for
it; traffic passes only if the source's egress and the destination's ingress
both allow it; ipBlock matches addresses outside the cluster, as on GKE
Dataplane V2) against the pods the platform runs, labelled as the charts and
the DAGs' pod factory label them. What only a cluster verifies (the network
plugin enforcing them, the control plane's and Cloud SQL's real addresses) is
in helm_config/README.md.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from test_platform_chart import ALL_BUILT, argo_parameters, render

pytestmark = pytest.mark.platform

NAMESPACE = "platform-prod"  # render()'s namespace for prod


@dataclass(frozen=True)
class Pod:
    name: str
    labels: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)
    namespace: str = NAMESPACE
    namespace_labels: dict[str, str] = field(default_factory=dict)

    def ns_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace, **self.namespace_labels}


Endpoint = Pod | str  # a pod, or an address outside the cluster


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    if selector is None:
        return False
    if not (selector.get("matchLabels") or {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if (operator == "Exists" and not present) or (operator == "DoesNotExist" and present):
            return False
    return True


def peer_matches(peer: dict[str, Any], endpoint: Endpoint, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        if not isinstance(endpoint, str):
            return False  # Dataplane V2: a pod is never matched by its address
        address = ipaddress.ip_address(endpoint)
        block = peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(e) for e in block.get("except", [])
        )
    if not isinstance(endpoint, Pod):
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], endpoint.ns_labels()):
            return False
    elif endpoint.namespace != policy_namespace:
        return False
    return "podSelector" not in peer or selects(peer["podSelector"], endpoint.labels)


def port_matches(ports: list[dict[str, Any]] | None, port: int, protocol: str, target: Endpoint) -> bool:
    if not ports:
        return True
    for entry in ports:
        number = entry.get("port")
        if isinstance(number, str):
            number = target.ports.get(number) if isinstance(target, Pod) else None
        if entry.get("protocol", "TCP") == protocol and (("port" not in entry) or number == port):
            return True
    return False


def side_allows(
    policies: list[dict[str, Any]], kind: str, pod: Pod, peer: Endpoint, port: int, protocol: str
) -> bool:
    """Does `pod`'s `kind` (Ingress from / Egress to `peer`) side let the connection through?"""
    mine = [
        p
        for p in policies
        if kind in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], pod.labels)
    ]
    if not mine:
        return True  # not isolated for this direction
    rules_key, peers_key = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
    target = pod if kind == "Ingress" else peer
    for policy in mine:
        for rule in policy["spec"].get(rules_key) or []:
            peers = rule.get(peers_key)
            if (peers is None or any(peer_matches(p, peer, pod.namespace) for p in peers)) and port_matches(
                rule.get("ports"), port, protocol, target
            ):
                return True
    return False


def allowed(
    policies: list[dict[str, Any]], source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP"
) -> bool:
    out = (
        not isinstance(source, Pod)
        or source.namespace != NAMESPACE
        or side_allows(policies, "Egress", source, destination, port, protocol)
    )
    into = (
        not isinstance(destination, Pod)
        or destination.namespace != NAMESPACE
        or side_allows(policies, "Ingress", destination, source, port, protocol)
    )
    return out and into


def airflow(component: str) -> Pod:
    """A pod of the official Airflow chart (release `airflow`), labelled as the chart labels them."""
    return Pod(f"airflow-{component}", {"tier": "airflow", "component": component, "release": "airflow"})


def superset(component: str = "web") -> Pod:
    """A pod of the official Superset chart (release `superset`, helm_config/bi/values.yaml)."""
    return Pod(
        f"superset-{component}",
        {
            "app.kubernetes.io/name": "superset",
            "app.kubernetes.io/instance": "superset",
            "app.kubernetes.io/component": component,
        },
    )


def task_pod(component: str) -> Pod:
    """A pod the DAGs start (pipeline_runtime.kubernetes.component_labels)."""
    return Pod(
        component, {"app.kubernetes.io/part-of": "data-platform", "app.kubernetes.io/component": component}
    )


@pytest.fixture(scope="module")
def world() -> dict[str, Any]:
    objects = render("prod", ALL_BUILT)
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]

    def chart_pod(kind: str, name: str) -> Pod:
        workload = next(o for o in objects if (o["kind"], o["metadata"]["name"]) == (kind, name))
        spec = workload["spec"].get("jobTemplate", {}).get("spec") or workload["spec"]
        template = spec["template"]
        ports = {
            p["name"]: p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])
        }
        return Pod(name, template["metadata"]["labels"], ports)

    parameters = {p["name"]: p["value"] for p in argo_parameters("prod")}
    return {
        "policies": policies,
        "viewer": chart_pod("Deployment", "viewer"),
        "statsd": chart_pod("Deployment", "statsd-exporter"),
        "data_health": chart_pod("Deployment", "data-health"),
        "bootstrap": chart_pod("Job", "airflow-bootstrap"),
        "smoke_dbt": chart_pod("Job", "smoke-check-dbt"),
        "db_clean": chart_pod("CronJob", "airflow-db-clean"),
        "prometheus": Pod("prometheus", {"app.kubernetes.io/name": "prometheus"}, namespace="monitoring"),
        "stranger": Pod("stranger", {"app": "something-else"}, namespace="default"),
        "kube_api": parameters["networkPolicies.kubernetesApiCidrs"].split("/")[0],
        "cloud_sql": parameters["networkPolicies.metadataDbCidrs"].split("/")[0],
        "superset_cache": parameters["networkPolicies.supersetCacheCidrs"].split("/")[0],
    }


GOOGLE_API = "142.250.4.95"  # an address of storage.googleapis.com
INTERNET_CLIENT = "203.0.113.7"
ADMIN_CLIENT = "10.20.30.40"  # inside the admin networks (the VPC)


def test_every_environment_renders_a_default_deny_for_the_whole_namespace() -> None:
    for env in ("sandbox", "staging", "prod"):
        policies = {o["metadata"]["name"]: o for o in render(env, ALL_BUILT) if o["kind"] == "NetworkPolicy"}
        deny = policies["default-deny"]["spec"]
        assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_what_the_platform_needs_is_allowed(world: dict[str, Any]) -> None:
    p, viewer, statsd = world["policies"], world["viewer"], world["statsd"]
    api, worker, scheduler = airflow("api-server"), airflow("worker"), airflow("scheduler")
    pgbouncer, scripts, dbt = airflow("pgbouncer"), task_pod("scripts"), task_pod("dbt")
    needed = [
        (INTERNET_CLIENT, viewer, viewer.ports["public"], "TCP"),  # the public viewer
        (ADMIN_CLIENT, viewer, viewer.ports["admin"], "TCP"),  # the admin entrance, from the VPC
        (viewer, api, 8080, "TCP"),  # its proxied routes
        (viewer, GOOGLE_API, 443, "TCP"),  # the published dashboard
        (worker, api, 8080, "TCP"),  # the Execution API
        (airflow("triggerer"), api, 8080, "TCP"),
        (airflow("dag-processor"), api, 8080, "TCP"),
        (api, worker, 8793, "TCP"),  # a running task's log
        (worker, world["kube_api"], 443, "TCP"),  # tasks start the component pods
        (scheduler, world["kube_api"], 443, "TCP"),  # the executor starts the workers
        (worker, GOOGLE_API, 443, "TCP"),  # remote logs
        (worker, statsd, 9125, "UDP"),
        (scheduler, statsd, 9125, "UDP"),
        (scheduler, pgbouncer, 6543, "TCP"),
        (airflow("run-airflow-migrations"), world["cloud_sql"], 5432, "TCP"),
        (pgbouncer, world["cloud_sql"], 5432, "TCP"),
        (world["bootstrap"], pgbouncer, 6543, "TCP"),
        (world["db_clean"], pgbouncer, 6543, "TCP"),
        (world["bootstrap"], api, 8080, "TCP"),  # the smoke check's health call (same pod labels)
        (scripts, GOOGLE_API, 443, "TCP"),  # the bucket, and REST sources
        (scripts, statsd, 9125, "UDP"),  # each run's metrics
        (dbt, GOOGLE_API, 443, "TCP"),  # BigQuery
        (world["smoke_dbt"], GOOGLE_API, 443, "TCP"),
        (dbt, "169.254.169.254", 80, "TCP"),  # Workload Identity's tokens
        (world["prometheus"], statsd, 9102, "TCP"),
        (world["prometheus"], world["data_health"], 9464, "TCP"),
        (world["data_health"], GOOGLE_API, 443, "TCP"),
        (worker, superset(), 8088, "TCP"),  # refresh_bi_cache after each build
        (INTERNET_CLIENT, viewer, viewer.ports["bi-public"], "TCP"),  # Superset's public site
        (ADMIN_CLIENT, viewer, viewer.ports["bi-admin"], "TCP"),  # ... and its admin entrance
        (viewer, superset(), 8088, "TCP"),  # which the viewer proxies to Superset
        (superset(), world["cloud_sql"], 5432, "TCP"),  # its metadata DB
        (superset("init"), world["cloud_sql"], 5432, "TCP"),  # the deploy job's migrations
        (superset(), world["superset_cache"], 6379, "TCP"),  # chart results cached
        (superset(), GOOGLE_API, 443, "TCP"),  # BigQuery
        (superset(), "169.254.169.254", 80, "TCP"),  # Workload Identity's tokens
    ]
    refused = [(s, d, port) for s, d, port, proto in needed if not allowed(p, s, d, port, proto)]
    assert refused == []


def test_what_no_one_needs_is_refused(world: dict[str, Any]) -> None:
    """The issue's attacks: any pod at the admin entrance, the api-server, the DB, the exporters."""
    p, viewer, statsd = world["policies"], world["viewer"], world["statsd"]
    api, pgbouncer, worker = airflow("api-server"), airflow("pgbouncer"), airflow("worker")
    scripts, dbt = task_pod("scripts"), task_pod("dbt")
    forbidden = [
        (scripts, viewer, viewer.ports["admin"], "TCP"),  # an extract pod at the admin entrance
        (scripts, api, 8080, "TCP"),  # ... at the api-server
        (scripts, pgbouncer, 6543, "TCP"),  # ... at the metadata DB
        (scripts, world["cloud_sql"], 5432, "TCP"),
        (scripts, world["kube_api"], 443, "TCP"),
        (scripts, worker, 8793, "TCP"),
        (dbt, api, 8080, "TCP"),
        (dbt, statsd, 9102, "TCP"),
        (worker, pgbouncer, 6543, "TCP"),  # Airflow 3 keeps the DB from tasks
        (worker, world["cloud_sql"], 5432, "TCP"),
        (viewer, pgbouncer, 6543, "TCP"),
        (viewer, statsd, 9125, "UDP"),  # the public-facing pod cannot forge alert metrics
        (viewer, world["kube_api"], 443, "TCP"),
        (INTERNET_CLIENT, viewer, viewer.ports["admin"], "TCP"),
        (INTERNET_CLIENT, api, 8080, "TCP"),
        (world["stranger"], api, 8080, "TCP"),  # another namespace's pod
        (world["stranger"], viewer, viewer.ports["admin"], "TCP"),
        (world["stranger"], statsd, 9125, "UDP"),
        (world["data_health"], pgbouncer, 6543, "TCP"),
        (statsd, GOOGLE_API, 443, "TCP"),  # the exporter talks to no one
        (world["prometheus"], api, 8080, "TCP"),
        (scripts, "10.1.2.3", 443, "TCP"),  # nothing inside the VPC over "external" HTTPS
        (scripts, superset(), 8088, "TCP"),  # an extract pod at Superset's admin API
        (INTERNET_CLIENT, viewer, viewer.ports["bi-admin"], "TCP"),  # Superset's admin entrance
        (scripts, viewer, viewer.ports["bi-admin"], "TCP"),
        (dbt, superset(), 8088, "TCP"),
        (api, superset(), 8088, "TCP"),  # of Airflow's pods, only the workers (the refresh)
        (world["stranger"], superset(), 8088, "TCP"),
        (superset(), pgbouncer, 6543, "TCP"),  # Airflow's metadata, through its PgBouncer
        (superset(), api, 8080, "TCP"),
        (superset(), world["kube_api"], 443, "TCP"),
        (superset(), statsd, 9125, "UDP"),
        (superset(), "10.1.2.3", 5432, "TCP"),  # no database but its own
    ]
    let_through = [(s, d, port) for s, d, port, proto in forbidden if allowed(p, s, d, port, proto)]
    assert let_through == []


def test_every_allow_says_why() -> None:
    """Each policy in the template is preceded by a comment saying what it allows and why."""
    from test_platform_chart import CHART

    text = (CHART / "templates" / "network-policies.yaml").read_text()
    blocks = text.split("\n---\n")
    for block in blocks:
        if "kind: NetworkPolicy" in block:
            name = block.split("name: ", 1)[1].split("\n", 1)[0]
            before = block.split("apiVersion:", 1)[0]
            assert "#" in before, f"{name}: no comment says what it allows and why"


def test_the_ci_check_finds_an_airflow_chart_whose_pod_labels_changed() -> None:
    """The Airflow chart's labels are its own: CI checks each render carries the ones selected here."""
    import sys

    from test_platform_chart import ROOT

    sys.path.insert(0, str(ROOT / "tools"))
    from check_airflow_pod_labels import SELECTED, missing

    def deployment(component: str, tier: str = "airflow") -> str:
        labels = {"tier": tier, "component": component, "release": "airflow"}
        return yaml.safe_dump({"kind": "Deployment", "spec": {"template": {"metadata": {"labels": labels}}}})

    worker_labels = {"tier": "airflow", "component": "worker", "release": "airflow"}
    template = yaml.safe_dump({"kind": "Pod", "metadata": {"labels": worker_labels}})
    worker = yaml.safe_dump({"kind": "ConfigMap", "data": {"pod_template_file.yaml": template}})
    complete = "---\n".join([*(deployment(c) for c in SELECTED), worker])
    assert missing(complete) == []
    renamed = complete.replace("component: api-server", "component: apiserver")
    assert missing(renamed) == ["api-server"]
    assert missing(complete, release="other") == [*SELECTED, "worker"]
    # Every component the rendered policies select is one the CI check requires.
    selected = {
        labels["component"]
        for policy in render("prod", ALL_BUILT)
        if policy["kind"] == "NetworkPolicy"
        for selector in _selectors(policy["spec"])
        for labels in [selector.get("matchLabels") or {}]
        if labels.get("tier") == "airflow" and "component" in labels
    }
    assert selected and selected <= {*SELECTED, "worker"}


def _selectors(tree: Any) -> list[dict[str, Any]]:
    if isinstance(tree, dict):
        found = [v for k, v in tree.items() if k == "podSelector" and isinstance(v, dict)]
        return found + [s for value in tree.values() for s in _selectors(value)]
    if isinstance(tree, list):
        return [s for value in tree for s in _selectors(value)]
    return []
