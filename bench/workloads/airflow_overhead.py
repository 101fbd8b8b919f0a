"""P5: what Airflow costs on top of the work it runs.

Runs in the airflow-repo environment, configured as `make demo` configures
it (`tools/local-env.sh`: SQLite metadata, local runner, DuckDB warehouse).

- DAG file parse time: each file of `airflow-repo/dags` parsed into a DagBag
  in its own forked process after Airflow itself is imported, as Airflow 3's
  DAG processor does, against a minimal one-task TaskFlow DAG parsed the same
  way (the floor every file pays).
- One daily interval end to end: one generated day served by the events API,
  then `airflow dags test events_ingest` (extract -> bucket -> load) and
  `airflow dags test dbt_transform` (Cosmos: source freshness, the models
  and their tests, the publications), timed from outside, once per way of
  running dbt (PLATFORM_DBT_EXECUTION: a dbt build per model, or one build
  watched by a sensor per model; docs/adr/0018), against the
  same work without Airflow: the very commands the tasks run
  (`pipeline_runtime.commands`), one after the other, with one `dbt build`.
  The difference is Airflow's overhead: start-up, scheduling, a process per
  task, and (per model) Cosmos's dbt start-up per model.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, SCRIPTS_BIN, emit, repeats_again

AIRFLOW_BIN = ROOT / "airflow-repo" / ".venv" / "bin"
RUNTIME_FILE = ROOT / "environments" / "sandbox" / "airflow-runtime.yaml"
DAGS = ROOT / "airflow-repo" / "dags"
DAY = dt.date(2025, 3, 5)
# dbt_transform's two ways of running dbt (PLATFORM_DBT_EXECUTION, docs/adr/0018), both measured.
DBT_EXECUTIONS = {
    "watcher": "dbt watcher mode (one dbt build, a sensor per model)",
    "per_model": "dbt per model (one dbt build per model)",
}
MINIMAL_DAG = """
import datetime as dt

from airflow.sdk import dag, task


@dag(schedule=None, start_date=dt.datetime(2025, 1, 1), catchup=False, tags=["bench"])
def minimal() -> None:
    @task
    def one() -> int:
        return 1

    one()


minimal()
"""


def parse_times(files: list[Path]) -> dict[str, float]:
    """Seconds to parse each file into a DagBag, each in a process forked after Airflow is imported."""
    from airflow.dag_processing.dagbag import DagBag

    sys.path.insert(0, str(DAGS))  # as the DAG processor has its folder importable
    times: dict[str, float] = {}
    for path in files:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child parses one file and reports
            os.close(read)
            started = time.perf_counter()
            bag = DagBag(dag_folder=str(path))
            seconds = time.perf_counter() - started
            os.write(write, json.dumps({"seconds": seconds, "errors": len(bag.import_errors)}).encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            report = json.loads(pipe.read() or "{}")
        os.waitpid(pid, 0)
        if report.get("errors"):
            raise SystemExit(f"{path.name} does not import")
        times[path.name] = float(report["seconds"])
    return times


def local_env(state: Path) -> dict[str, str]:
    """The environment `make demo` runs in, from tools/local-env.sh, with its state in `state`."""
    dump = subprocess.run(
        ["/bin/bash", "-c", 'source "$ROOT/tools/local-env.sh" && env -0'],
        env={**os.environ, "ROOT": str(ROOT), "STATE_DIR": str(state)},
        capture_output=True,
        check=True,
    ).stdout.decode()
    env = dict(item.split("=", 1) for item in dump.split("\0") if "=" in item)
    env["AIRFLOW__METRICS__STATSD_ON"] = "False"  # no exporter listens here
    env["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    return env


def timed(command: list[str], env: dict[str, str], log: Path) -> float:
    started = time.monotonic()
    with log.open("ab") as out:
        code = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise SystemExit(f"{' '.join(command[:4])} failed; see {log}")
    return time.monotonic() - started


def run_state(env: dict[str, str], dag_id: str) -> str:
    listed = subprocess.run(
        [str(AIRFLOW_BIN / "airflow"), "dags", "list-runs", dag_id, "-o", "json"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    runs = json.loads(next((line for line in listed.splitlines() if line.startswith("[")), "[]"))
    return runs[0]["state"] if runs else "missing"


def one_day(events: int, workdir: Path, rep: int) -> float:
    """One daily interval through Airflow and the same commands without it, each from a fresh state.

    Returns the seconds through Airflow, the longer of the two.
    """
    source = workdir / "events.parquet"
    if not source.exists():
        subprocess.run(
            [str(SCRIPTS_BIN / "extract-load"), "generate", "--out", str(source), "--start", DAY.isoformat(),
             "--days", "1", "--events", str(events), "--seed", "7"],
            check=True, capture_output=True,
        )  # fmt: skip
    url_file = workdir / "api.url"
    url_file.unlink(missing_ok=True)
    serve = [
        str(SCRIPTS_BIN / "extract-load"),
        "serve-api",
        "--source",
        str(source),
        "--url-file",
        str(url_file),
    ]
    api = subprocess.Popen(serve, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(240):
            if url_file.exists() and url_file.read_text().strip():
                break
            time.sleep(0.25)
        url = url_file.read_text().strip()
        start, end = DAY.isoformat(), (DAY + dt.timedelta(days=1)).isoformat()
        results: dict[str, float] = {}
        for mode in ("direct", *DBT_EXECUTIONS):
            state = workdir / f"{mode}-{rep}"
            shutil.rmtree(state, ignore_errors=True)
            (state / "logs").mkdir(parents=True)
            env = {**local_env(state), "EVENTS_API_URL": url, "PLATFORM_SOURCES": "events"}
            if mode in DBT_EXECUTIONS:
                env["PLATFORM_DBT_EXECUTION"] = mode
            log = state / "logs" / "bench.log"
            if mode == "direct":
                if str(DAGS) not in sys.path:
                    sys.path.insert(0, str(DAGS))
                os.environ.update({k: v for k, v in env.items() if k.startswith("PLATFORM_")})
                from pipeline_runtime import commands

                steps = [
                    commands.extract_source("events", start, end),
                    commands.load("events", start, end),
                    commands.dbt("source", "freshness"),
                    commands.dbt("build", "--exclude-resource-type", "unit_test"),
                    commands.publish_dashboard(),
                    # What dbt_transform publishes besides (issue 27): the same work on both sides.
                    commands.publish_docs(),
                    commands.publish_data(),
                ]
                results["direct"] = sum(timed(list(step.argv), {**env, **step.env}, log) for step in steps)
            else:
                airflow = str(AIRFLOW_BIN / "airflow")
                subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
                # The pools as sandbox declares them, by the command a cluster's bootstrap runs.
                subprocess.run(
                    [str(AIRFLOW_BIN / "python"), "-m", "ops.apply_runtime", str(RUNTIME_FILE)],
                    cwd=ROOT / "airflow-repo", env=env, check=True, capture_output=True,
                )  # fmt: skip
                conf = json.dumps({"start": start, "end": end, "days_per_task": 1})
                ingest = timed([*dags_test("events_ingest", end), "-c", conf], env, log)
                transform = timed(dags_test("dbt_transform", end), env, log)
                for dag_id in ("events_ingest", "dbt_transform"):
                    if run_state(env, dag_id) != "success":
                        raise SystemExit(f"{dag_id} did not succeed; see {log}")
                results[mode] = ingest + transform
                results[f"{mode}_ingest"], results[f"{mode}_transform"] = ingest, transform
        group = f"one daily interval ({events:,} events)"
        emit("P5", group, "the same commands without Airflow (one dbt build)", results["direct"], "s",
             baseline=True, lower_is_better=True, rep=rep)  # fmt: skip
        for mode, label in DBT_EXECUTIONS.items():
            case = f"airflow dags test: events_ingest + dbt_transform, {label}"
            emit("P5", group, case, results[mode], "s", lower_is_better=True, rep=rep,
                 ingest_seconds=results[f"{mode}_ingest"], transform_seconds=results[f"{mode}_transform"],
                 note=f"Airflow's share {results[mode] - results['direct']:.0f} s")  # fmt: skip
        return max(results[mode] for mode in DBT_EXECUTIONS)
    finally:
        api.terminate()
        api.wait(timeout=30)


def dags_test(dag_id: str, logical_date: str) -> list[str]:
    """`airflow dags test` as `make demo` runs it (tools/demo.sh): only the DAG's file parsed to find it."""
    return [str(AIRFLOW_BIN / "airflow"), "dags", "test", dag_id, logical_date,
            "--bundle-name", "dags-folder", "--dagfile-path", str(DAGS / f"{dag_id}.py")]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--events", type=int, default=50_000, help="events in the day")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--day-reps", type=int, default=None, help="repetitions of the daily interval (default --reps)"
    )
    args = parser.parse_args()
    base = args.workdir or Path(tempfile.mkdtemp(prefix="bench-p5-"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        minimal = base / "minimal_dag.py"
        minimal.write_text(MINIMAL_DAG)
        files = sorted(DAGS.glob("*.py"))
        os.environ.update(local_env(base / "parse"))
        for rep in range(args.reps):
            times = parse_times([minimal, *files])
            floor = times.pop(minimal.name)
            emit("P5", "DAG file parse", "a minimal one-task DAG", floor, "s", baseline=True,
                 lower_is_better=True, rep=rep)  # fmt: skip
            for name, seconds in times.items():
                emit("P5", "DAG file parse", name, seconds, "s", lower_is_better=True, rep=rep)
        for rep in range(args.reps if args.day_reps is None else args.day_reps):
            if not repeats_again(one_day(args.events, base, rep)):
                break
    finally:
        if args.workdir is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
