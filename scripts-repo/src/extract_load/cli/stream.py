"""`stream`: a Kafka topic into the bucket in micro-batches; offsets move only after the data is durable."""

from __future__ import annotations

import click

from extract_load.cli import options
from extract_load.cli.errors import exit_codes
from extract_load.cli.output import emit, metrics
from extract_load.landing.bucket import open_bucket


@click.command()
@click.option(
    "--source",
    default="events_stream",
    show_default=True,
    help="Source name (bucket prefix, raw table); not one the sources file declares as a batch source.",
    callback=options.name,
)
@click.option("--topic", envvar="KAFKA_TOPIC", required=True)
@click.option("--bootstrap-servers", envvar="KAFKA_BOOTSTRAP_SERVERS", required=True)
@click.option("--group", envvar="KAFKA_GROUP_ID", default="extract-load", show_default=True)
@options.bucket_option
@click.option("--max-batch", type=click.IntRange(1), default=10_000, show_default=True)
@click.option("--max-wait", type=float, default=30.0, show_default=True, help="Seconds to fill a batch.")
@click.option("--until-idle", type=float, default=None, help="Stop after this many seconds without messages.")
@click.option("--max-batches", type=click.IntRange(1), default=None, help="Stop after this many batches.")
@click.option(
    "--max-messages",
    type=click.IntRange(1),
    default=None,
    help="Stop after the batch that reaches this many messages (a bounded run for a scheduler).",
)
@click.option("--config", "extra_config", multiple=True, help="librdkafka setting KEY=VALUE (repeatable).")
def stream(
    source: str,
    topic: str,
    bootstrap_servers: str,
    group: str,
    bucket_url: str,
    max_batch: int,
    max_wait: float,
    until_idle: float | None,
    max_batches: int | None,
    max_messages: int | None,
    extra_config: tuple[str, ...],
) -> None:
    """Consume a Kafka topic in micro-batches into the bucket; offsets move after the data is durable."""
    from extract_load.contract import EVENTS
    from extract_load.sources.kafka import client_config, consume
    from extract_load.sources.registry import load_sources

    declared = load_sources().get(source)
    if declared is not None and declared.kind != "kafka":
        # Its days are replaced whole by `extract`, which would delete the stream's committed batches.
        raise click.BadParameter(
            f"{source!r} is a {declared.kind} source in the sources file: a source is fed either by "
            "extracts or by a stream, never both; stream into another name (a kafka source)",
            param_hint="--source",
        )
    contract = declared.contract if declared is not None else EVENTS  # an undeclared name: the events
    if contract.time_column is None:
        raise click.BadParameter(
            f"{source!r} has a snapshot contract (no time column): a stream has no snapshot to land",
            param_hint="--source",
        )
    try:
        config = client_config(bootstrap_servers, group, extra_config)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--config") from exc
    with exit_codes():  # a batch not in a manifest (exit 4) has not moved its offsets
        stats = consume(
            open_bucket(bucket_url),
            source,
            config,
            topic,
            max_batch,
            max_wait,
            until_idle,
            max_batches,
            max_messages,
            contract.time_column,
        )
    run_metrics = metrics()
    if run_metrics is not None:
        for (lag_topic, partition), lag in stats.lag.items():
            run_metrics.consumer_lag(source, lag_topic, partition, lag)
    emit({"source": source, "topic": topic, **stats.as_dict()})
