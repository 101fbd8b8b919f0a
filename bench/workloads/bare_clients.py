"""P4's baselines as programs of their own: what a bare client costs, start-up included.

`extract-load` is timed from outside its process, interpreter start and
imports included; its baselines are too, so at a small size the ratio
compares two programs, not a program with a loop inside the bench. Each
imports only its client library and prints the number of events it got.

    bare_clients.py api <base url> <page size> <start> <end>
    bare_clients.py kafka <bootstrap servers> <topic> <events>
"""

from __future__ import annotations

import sys
import time
import uuid


def raw_pages(url: str, page_size: int, start: str, end: str) -> int:
    """Page through the interval with a bare requests session, decoding each page: the API's own pace."""
    import requests

    rows = 0
    params: dict[str, object] = {"start": start, "end": end, "limit": page_size}
    with requests.Session() as session:
        while True:
            body = session.get(f"{url}/v1/events", params=params, timeout=60).json()
            rows += len(body["data"])
            if not body.get("next_cursor"):
                return rows
            params["cursor"] = body["next_cursor"]


def drain(bootstrap: str, topic: str, events: int) -> int:
    """Consume `events` messages from the start of the topic, reading each value, committing nothing."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bare-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen = 0
    idle_since = time.monotonic()
    try:
        while seen < events and time.monotonic() - idle_since < 15:
            messages = consumer.consume(num_messages=10_000, timeout=1)
            if messages:
                idle_since = time.monotonic()
            for message in messages:
                if message.error() is None:
                    message.value()
                    seen += 1
    finally:
        consumer.close()
    return seen


def main() -> None:
    kind, *args = sys.argv[1:]
    if kind == "api":
        url, page_size, start, end = args
        print(raw_pages(url, int(page_size), start, end))
    elif kind == "kafka":
        bootstrap, topic, events = args
        print(drain(bootstrap, topic, int(events)))
    else:
        raise SystemExit(f"unknown client {kind!r}")


if __name__ == "__main__":
    main()
