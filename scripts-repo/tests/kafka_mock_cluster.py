"""A Kafka cluster for tests: librdkafka's mock broker, served over real TCP.

Run as a separate process: it starts the cluster inside a producer, creates the
topic, prints the bootstrap address, produces the JSON lines it reads from the
file given (one message each, keyed by its first characters), and keeps the cluster up until
its stdin closes.
"""

from __future__ import annotations

import sys

from confluent_kafka import Producer


def main() -> None:
    topic, events_file, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3])
    producer = Producer({"test.mock.num.brokers": 1, "log_level": 0})
    broker = next(iter(producer.list_topics(timeout=10).brokers.values()))
    bootstrap = f"{broker.host}:{broker.port}"
    del partitions  # the mock cluster creates topics on first use, with its default partition count
    with open(events_file, encoding="utf-8") as handle:
        for line in handle:
            while True:
                try:
                    producer.produce(topic, value=line.rstrip("\n").encode(), key=line[:40].encode())
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    producer.poll(0.1)
    producer.flush(30)
    partitions = len(producer.list_topics(topic, timeout=10).topics[topic].partitions)
    print(bootstrap, partitions, flush=True)
    sys.stdin.read()  # the cluster lives as long as this process


if __name__ == "__main__":
    main()
