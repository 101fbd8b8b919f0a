"""Kafka micro-batches into the bucket every few minutes, then a load of each day they touched.

`extract-load stream` consumes the topic (`KAFKA_TOPIC`,
`KAFKA_BOOTSTRAP_SERVERS`, credentials from the environment) in micro-batches:
each batch is written to `raw/<source>/dt=YYYY-MM-DD/` and its day's manifest
before the consumer commits its offsets, so a crash re-reads a batch rather
than losing it. A run is bounded (a message budget and an idle timeout) so it
ends before the next one starts. Then every day the batches touched is
reloaded from its manifest, which replaces that day in the raw table: late
events and re-runs never duplicate rows.

The source name (`PLATFORM_STREAM_SOURCE`, default `events_stream`, the
sources file's kafka source) is the bucket prefix and raw table. A source is
fed either from Kafka or by batch extracts, never both: the CLI refuses a
stream into a name the sources file gives a batch source, and a day's landing
refuses a second feed. To stream the app's events into `raw.events` instead
of the API, declare `events` as a kafka source in `SOURCES_FILE`, set
`PLATFORM_STREAM_SOURCE=events` and leave it out of `PLATFORM_SOURCES`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from pipeline_runtime import commands, runner
from pipeline_runtime.assets import RAW_TABLES, raw_table
from pipeline_runtime.defaults import DEFAULT_ARGS
from pipeline_runtime.sources import stream_source


@dag(
    dag_id="events_stream",
    description="Consume the events topic in micro-batches into the bucket, then load the days touched",
    schedule="*/5 * * * *",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # one consumer per group at a time; the next run resumes at the committed offsets
    default_args={**DEFAULT_ARGS, "execution_timeout": dt.timedelta(minutes=15)},
    params={
        "max_messages": Param(200_000, type="integer", minimum=1, description="Message budget of one run"),
        "until_idle": Param(15, type="number", minimum=1, description="Stop after this many idle seconds"),
    },
    tags=["events", "streaming", "extract-load"],
    doc_md=__doc__,
)
def events_stream() -> None:
    @task(pool="extract")
    def consume() -> list[str]:
        """Land micro-batches; offsets are committed by the CLI only after each batch is durable."""
        params = get_current_context()["params"]
        source = stream_source()
        results = runner.run(
            commands.stream(source, int(params["max_messages"]), float(params["until_idle"]))
        )
        return sorted({day for result in results for day in result.get("days", [])})

    @task(pool="warehouse", outlets=[RAW_TABLES])
    def load(day: str) -> dict[str, Any]:
        source = stream_source()
        end = (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()
        results = runner.run(commands.load(source, day, end))
        get_current_context()["outlet_events"][RAW_TABLES].add(
            raw_table(source), extra={"start": day, "end": end}
        )
        return {
            "day": day,
            **{k: sum(int(r[k]) for r in results) for k in ("rows_in", "loaded", "quarantined")},
        }

    load.expand(day=consume())


events_stream()
