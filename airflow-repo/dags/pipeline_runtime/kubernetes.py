"""The same Command as a pod: the component's image by digest, the same arguments.

On Kubernetes a task does not run the subproject itself: it starts a pod from
that subproject's image (pinned by digest in the environment's release file)
with the very arguments the local runner would pass. Settings and secrets the
component needs (bucket, warehouse, API token) reach the pod from the
component's ConfigMap and Secret, which the platform chart manages, so no
secret value is ever part of a pod spec or a rendered template.

The pod leaves its JSON results in `/airflow/xcom/return.json` (the CLIs write
there when `RESULTS_FILE` is set), so the task gets the same results locally
and on Kubernetes.
"""

from __future__ import annotations

import contextlib
import logging
import re
import signal
import threading
from collections.abc import Iterator
from typing import Any

from pipeline_runtime.commands import Command
from pipeline_runtime.release import IMAGE_OF_COMPONENT, Release, load_release
from pipeline_runtime.settings import settings

log = logging.getLogger(__name__)

XCOM_RESULTS_FILE = "/airflow/xcom/return.json"

# What each component's pod asks for; the task pod template can override per environment.
RESOURCES = {
    "scripts": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "3Gi"}},
    "dbt": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "4Gi"}},
}


# The images' user (their Dockerfiles' USER 50000), by number, so the kubelet can check it.
IMAGE_USER = 50000


def hardened() -> dict[str, Any]:
    """The security settings of every task pod (ours and Cosmos's): non-root, no privilege, no capability.

    The images already run as uid 50000; saying so in the pod lets the kubelet
    refuse an image that would run as root, and the rest is what the
    Kubernetes "restricted" Pod Security Standard asks of every container,
    the XCom sidecar included.
    """
    from kubernetes.client import models as k8s

    def container() -> Any:
        return k8s.V1SecurityContext(
            allow_privilege_escalation=False, capabilities=k8s.V1Capabilities(drop=["ALL"])
        )

    return {
        "security_context": k8s.V1PodSecurityContext(
            run_as_non_root=True,
            run_as_user=IMAGE_USER,
            seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
        ),
        "container_security_context": container(),
        "xcom_sidecar_container_security_context": container(),
    }


def namespace() -> str:
    return settings().pod_namespace


def _pod_name(task_id: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", task_id.lower()).strip("-")[:50] or "task"


def component_labels(component: str, version: str | None = None) -> dict[str, str]:
    """The labels of every pod or container a component runs in (network policies select on them)."""
    labels = {"app.kubernetes.io/part-of": "data-platform", "app.kubernetes.io/component": component}
    if version:
        labels["app.kubernetes.io/version"] = version
    return labels


def component_pod_args(component: str, version: str | None = None) -> dict[str, Any]:
    """What every pod of a component shares, ours and Cosmos's: one place for all of it.

    Its ConfigMap and Secret (`platform-<component>`, managed by the platform
    chart) as the environment, its service account (Workload Identity), its
    resources, the labels the network policies and dashboards select on, and
    the hardened security settings. Succeeded pods are deleted; failed ones
    stay for a post-mortem.
    """
    from kubernetes.client import models as k8s

    config = f"platform-{component}"
    return {
        "namespace": namespace(),
        "image_pull_policy": "IfNotPresent",  # a digest never changes
        # Settings from the component's ConfigMap, secrets (e.g. EVENTS_API_TOKEN) from its Secret.
        "env_from": [
            k8s.V1EnvFromSource(config_map_ref=k8s.V1ConfigMapEnvSource(name=config, optional=True)),
            k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=config, optional=True)),
        ],
        "service_account_name": settings().pod_service_account or config,  # Workload Identity
        "container_resources": k8s.V1ResourceRequirements(**RESOURCES.get(component, RESOURCES["scripts"])),
        "labels": component_labels(component, version),
        "get_logs": True,
        "on_finish_action": "delete_succeeded_pod",  # failed pods stay for a post-mortem
        **hardened(),
    }


def pod_operator(command: Command, task_id: str, release: Release | None = None) -> Any:
    """A KubernetesPodOperator for `command`; built when the task runs, never at parse time."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    release = release or load_release()
    image_component = IMAGE_OF_COMPONENT.get(command.component, command.component)
    program, *arguments = command.in_image
    env_vars = {key: value for key, value in command.env.items() if key not in command.secret_env}
    env_vars["RESULTS_FILE"] = XCOM_RESULTS_FILE
    return KubernetesPodOperator(
        task_id=task_id,
        name=_pod_name(task_id),
        image=command.image or release.image_ref(command.component),
        cmds=[program],
        arguments=arguments,
        env_vars=env_vars,
        do_xcom_push=True,
        startup_timeout_seconds=600,
        # In a cluster the pod's service account; elsewhere the kubeconfig named when the task runs
        # (the client library reads KUBECONFIG once, at import).
        config_file=settings().kubeconfig,
        retries=0,  # the wrapping task owns retries
        **component_pod_args(image_component, release.component(image_component).version),
    )


def run_in_pod(command: Command) -> list[dict[str, Any]]:
    """Run `command` as a pod and return its results; the pod never outlives the task.

    The pod operator runs inside this task, so Airflow's kill paths reach the
    task, not the pod: a timeout raises here, and SIGTERM (the run marked
    failed, the worker drained) calls the task's own on_kill, which for a
    TaskFlow task does nothing. Left running, the pod would go on writing the
    interval while the retry starts a second one. So any way the task ends
    without success deletes a pod still running (a pod that already failed
    stays for a post-mortem).
    """
    from airflow.sdk import get_current_context

    context = get_current_context()
    operator = pod_operator(command, task_id=context["ti"].task_id)
    with _deleted_unless_done(operator):
        result = operator.execute(context)
    return list(result) if isinstance(result, list) else []


@contextlib.contextmanager
def _deleted_unless_done(operator: Any) -> Iterator[None]:
    previous = signal.getsignal(signal.SIGTERM)
    main = threading.current_thread() is threading.main_thread()

    def on_term(signum: int, frame: Any) -> None:
        _stop(operator)
        if callable(previous):
            previous(signum, frame)

    if main:
        signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    except BaseException:
        _stop(operator)
        raise
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def _stop(operator: Any) -> None:
    """Delete the operator's pod unless it has finished (the operator's own on_kill does the call)."""
    pod = getattr(operator, "pod", None)
    if pod is None:
        return
    try:
        phase = operator.pod_manager.read_pod(pod).status.phase
    except Exception:  # unknown: better a deleted pod than two on one interval
        log.warning("cannot read pod %s; deleting it", pod.metadata.name, exc_info=True)
        phase = None
    if phase not in ("Succeeded", "Failed"):
        try:
            operator.on_kill()
        except Exception:  # the task's own error is the one to report
            log.exception("could not delete pod %s: delete it by hand before the retry", pod.metadata.name)
