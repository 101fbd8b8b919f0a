"""Build a subproject's image with its Cloud Build trigger, from the Airflow UI or an API call.

Trigger it with `{"component": "dbt", "ref": "dbt/v1.4.0"}`. The trigger to
start is looked up in the Airflow Variable `cloud_build_triggers` (a JSON
object: component -> trigger id), and the Google Cloud project and
credentials come from the `google_cloud_default` connection (Workload
Identity on GKE): none of them is in the code. The build runs the
subproject's `cloudbuild.yaml` on the tag, pushes the image to Artifact
Registry and reports its digest; promotion then writes that digest into
`environments/<env>/release.yaml`.

Tags normally start these triggers by themselves; this DAG is for rebuilding
a tag (a base image security fix) without a new release.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.providers.google.cloud.operators.cloud_build import CloudBuildRunBuildTriggerOperator
from airflow.sdk import Param, dag

from pipeline_runtime.defaults import DEFAULT_ARGS


@dag(
    dag_id="cloud_build",
    description="Start a subproject's Cloud Build trigger on a tag and wait for the image",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=2,
    default_args={**DEFAULT_ARGS, "retries": 1, "execution_timeout": dt.timedelta(hours=1)},
    params={
        "component": Param("dbt", enum=["scripts", "dbt", "airflow"], description="Which subproject"),
        "ref": Param(
            "dbt/v0.1.0",
            type="string",
            pattern=r"^(scripts|dbt|airflow)/v\d+\.\d+\.\d+(-rc\.\d+)?$",
            description="The release tag to build",
        ),
    },
    render_template_as_native_obj=True,
    tags=["build"],
    doc_md=__doc__,
)
def cloud_build() -> None:
    CloudBuildRunBuildTriggerOperator(
        task_id="run_build_trigger",
        trigger_id="{{ var.json.cloud_build_triggers[params.component] }}",
        source={"tag_name": "{{ params.ref }}"},
        location="{{ var.value.get('cloud_build_location', 'global') }}",
        gcp_conn_id="google_cloud_default",
        wait=True,
    )


cloud_build()
