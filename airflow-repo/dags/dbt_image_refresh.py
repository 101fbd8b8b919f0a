"""Adopt a new dbt build only after it has proved itself against this environment's warehouse.

Every day: take the newest dbt build this environment allows (on Kubernetes
the dbt image digest that git promoted into `environments/<env>/release.yaml`;
locally the dbt venv built from the lock, `PLATFORM_DBT_CMD`), then run
`dbt debug --connection` (profile and connection), `dbt parse` (the project compiles with
this dbt) and `dbt test` (today's data passes its tests with it). Only when
all three are green is it recorded in the Variable `dbt_image`, which is the
image `dbt_transform`'s pods start from. When one fails, the Variable keeps
the previous build and the failure alert says which check broke.

The Variable only chooses among builds the release file names (its digest,
and the `previous_digest` a forward promotion replaced): a value typed into
it, or the build a rollback fled, is ignored (`dbt_project.image_template`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
from airflow.sdk import Variable, dag, get_current_context, task

from pipeline_runtime.dbt_checks import check
from pipeline_runtime.dbt_project import IMAGE_VARIABLE
from pipeline_runtime.defaults import DEFAULT_ARGS
from pipeline_runtime.intervals import LOCAL_TZ
from pipeline_runtime.release import load_release, with_registry, without_registry
from pipeline_runtime.settings import settings


@dag(
    dag_id="dbt_image_refresh",
    description="Validate the newest allowed dbt build (debug, parse, test) before dbt_transform uses it",
    schedule="0 4 * * *",
    start_date=pendulum.datetime(2025, 1, 1, tz=LOCAL_TZ),
    catchup=False,
    max_active_runs=1,
    # A failed check is a verdict, not a glitch: one quick retry for a flaky connection, no more.
    default_args={
        **DEFAULT_ARGS,
        "retries": 1,
        "retry_delay": dt.timedelta(seconds=10),
        "retry_exponential_backoff": False,
        "execution_timeout": dt.timedelta(minutes=20),
    },
    tags=["dbt", "build"],
    doc_md=__doc__,
)
def dbt_image_refresh() -> None:
    @task
    def find_candidate() -> dict[str, Any]:
        """The newest dbt build the environment allows, and the one in use now.

        What it returns is XCom, which the public viewer shows: images are
        named without their registry (it names the project); each task adds
        it back from its environment.
        """
        current_settings = settings()
        candidate = (
            load_release().image_name("dbt")
            if current_settings.runs_images
            else current_settings.command("dbt", "dbt")
        )
        current = Variable.get(IMAGE_VARIABLE, None)
        return {
            "candidate": candidate,
            "current": without_registry(current),
            "changed": _runnable(candidate) != current,
        }

    @task(pool="warehouse")
    def dbt_debug(found: dict[str, Any]) -> dict[str, Any]:
        """The profile resolves and the warehouse answers.

        `--connection` only: a full `dbt debug` also requires `git`, which the
        dbt image does not ship (the project has no packages to fetch), so it
        failed every image build for a reason that says nothing about it.
        """
        check(_runnable(found["candidate"]), "debug", "--connection")
        return found

    @task
    def dbt_parse(found: dict[str, Any]) -> dict[str, Any]:
        """The project compiles with this dbt and its adapters."""
        check(_runnable(found["candidate"]), "parse")
        return found

    @task(pool="warehouse")
    def dbt_test(found: dict[str, Any]) -> dict[str, Any]:
        """Today's data passes every data test when this dbt runs them."""
        check(_runnable(found["candidate"]), "test")
        return found

    @task
    def record(found: dict[str, Any]) -> dict[str, Any]:
        """Reached only when all three checks passed (the default all_success trigger rule)."""
        if found["changed"]:
            Variable.set(
                IMAGE_VARIABLE,
                _runnable(found["candidate"]),
                description=f"dbt build validated by {get_current_context()['run_id']}",
            )
        return {**found, "recorded": found["candidate"]}

    record(dbt_test(dbt_parse(dbt_debug(find_candidate()))))  # type: ignore[arg-type]  # XComArgs at parse time


def _runnable(candidate: str) -> str:
    """The candidate as a pod, a container or the local runner takes it (an image with its registry)."""
    return with_registry(candidate) if settings().runs_images else candidate


dbt_image_refresh()
