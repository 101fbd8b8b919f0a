"""Run inside the Airflow image: load every DAG and render each task's pod, sending nothing.

tests/test_images.py mounts this file into the image and runs it after
`airflow db migrate`, with PLATFORM_RUNNER=kubernetes, a release file and a
kubeconfig that points nowhere. It stops each KubernetesPodOperator at the
request it would send to the API server (as airflow-repo's render test does
on a venv) and prints one JSON document: the DAG ids, the import errors and
every rendered pod's task, image, command, arguments and environment sources.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pendulum
from airflow.dag_processing.dagbag import BundleDagBag
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

pods: list[dict[str, Any]] = []
running = {"dag": ""}  # the DAG under test (a pod operator inside a task has a DAG of its own)


def render_instead_of_send(self: KubernetesPodOperator, context: Any) -> list[dict[str, Any]]:
    pod = self.build_pod_request_obj(context)
    container = pod.spec.containers[0]
    pods.append(
        {
            "dag": running["dag"],
            "task": self.task_id,
            "image": container.image,
            "command": container.command,
            "args": container.args,
            "env": sorted(e.name for e in container.env or []),
            "config_maps": sorted(
                s.config_map_ref.name for s in container.env_from or [] if s.config_map_ref
            ),
            "secrets": sorted(s.secret_ref.name for s in container.env_from or [] if s.secret_ref),
            "run_as_non_root": bool(pod.spec.security_context and pod.spec.security_context.run_as_non_root),
            "run_as_user": pod.spec.security_context.run_as_user if pod.spec.security_context else None,
        }
    )
    command = (container.args or ["publish"])[0]
    # What the pod's CLI would have written for XCom.
    return {
        "extract": [{"rows": 1}],
        "load": [{"rows_in": 1, "loaded": 1, "quarantined": 0}],
        "dbt": [],
    }.get(command, [{"dashboard": "/dashboard/index.html", "weeks": 1}])


def main() -> int:
    KubernetesPodOperator.execute = render_instead_of_send  # type: ignore[method-assign]
    # As the DAG processor and `airflow dags test` read them: the bundle's folder is on sys.path.
    dags = Path(os.environ.get("AIRFLOW__CORE__DAGS_FOLDER", "/opt/airflow/dags"))
    bag = BundleDagBag(dag_folder=str(dags), bundle_path=dags)
    states = {}
    if not bag.import_errors:
        running["dag"] = "events_ingest"
        ingest = bag.dags["events_ingest"].test(
            logical_date=pendulum.datetime(2025, 3, 5, tz="UTC"),
            run_conf={"start": "2025-03-04", "end": "2025-03-05", "days_per_task": 1},
        )
        running["dag"] = "dbt_transform"
        transform = bag.dags["dbt_transform"].test(logical_date=pendulum.datetime(2025, 3, 5, tz="UTC"))
        states = {"events_ingest": str(ingest.state), "dbt_transform": str(transform.state)}
    print(
        json.dumps(
            {
                "dags": sorted(bag.dag_ids),
                "import_errors": {str(k): str(v)[-500:] for k, v in bag.import_errors.items()},
                "states": states,
                "pods": pods,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
