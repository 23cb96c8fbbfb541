"""Relay throughput: events/s from the store to the broker, next to a raw kafka-python producer.

    .venv/bin/python bench/relay_throughput.py [--events 20000] [--rounds 3] [--postgres URL]

One run, on this machine, against a Tansu broker on 127.0.0.1 (6 partitions):

  - raw: a KafkaProducer with the relay's settings (idempotent, acks=all, same linger and batch
    size) sends the very messages the relay sends — same keys, values, headers, partitions,
    prepared in memory beforehand — then flushes. Nothing is read, nothing recorded.
  - relay: `Relay.run(once=True)` over the same store: reads the log a page at a time, builds
    each message and sends it, the next page read while up to four earlier ones await their
    acknowledgement, and records each page's position once it and those before it are
    acknowledged.

Each round uses fresh topics and alternates which goes first. Printed: events/s of each per
round, the medians and relay/raw. Target (issue 19): relay >= 0.8 of raw. The machine's other
load moves both figures a lot from round to round: take several rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

from kafka import KafkaProducer
from rich.progress import track
from scratch import running_broker, scratch_store

from infra.bootstrap import build_app
from infra.config import Settings
from infra.kafka.cloudevent import previous_position
from infra.kafka.relay import Relay
from infra.kafka.relay_pages import message_of, producer_settings
from infra.kafka.topics import ensure_topics
from services.dto import RegisterCandidate

PARTITIONS = 6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", help="PostgreSQL URL (default: embedded SQLite)")
    args = parser.parse_args()

    raw_rates: list[float] = []
    relay_rates: list[float] = []
    with scratch_store("relay-", args.postgres) as settings:
        app = build_app(settings)
        try:
            for n in track(range(args.events), description="filling the store", transient=True):
                app.register_candidate(RegisterCandidate(name=f"Candidate {n}", actor="ats:bench"))
            page = app.recorder.select_notifications(start=1, limit=1000)
            size = sum(len(n.state) for n in page) // len(page)
            with running_broker(settings.data_dir) as broker:
                for round_ in range(args.rounds):
                    first = round_ % 2 == 0
                    for run in (raw_round, relay_round) if first else (relay_round, raw_round):
                        rate = run(app, settings, broker.bootstrap, args.events)
                        (raw_rates if run is raw_round else relay_rates).append(rate)
                        print(f"round {round_ + 1} {run.__name__[:-6]:>5}: {rate:,.0f} events/s")
        finally:
            app.close()

    raw, relay = statistics.median(raw_rates), statistics.median(relay_rates)
    print(f"store: {settings.describe()}; {args.events} events of ~{size} bytes")
    print(f"raw kafka-python producer: {raw:,.0f} events/s (median of {args.rounds})")
    print(f"relay:                     {relay:,.0f} events/s (median of {args.rounds})")
    print(f"relay / raw: {relay / raw:.2f} (target >= 0.8)")


def raw_round(app: object, settings: Settings, bootstrap: str, events: int) -> float:
    topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, PARTITIONS, topic)
    relay = Relay(app, settings, topic=topic, bootstrap=bootstrap, partitions=PARTITIONS)  # type: ignore[arg-type]
    try:
        relay.connect()  # for its partitioner: the same partitions as the relay's
        messages = []
        last: dict[int, int] = {}
        for notification in app.recorder.select_notifications(start=1, limit=events):  # type: ignore[attr-defined]
            message = message_of(notification)
            partition = relay.partition(message.key)
            message.headers.append(previous_position(last.get(partition, 0)))
            last[partition] = notification.id
            messages.append((message, partition))
    finally:
        relay.close()
    producer = KafkaProducer(**producer_settings(bootstrap))
    producer.partitions_for(topic)
    started = time.perf_counter()
    for message, partition in messages:
        producer.send(
            topic,
            key=message.key,
            value=message.value,
            headers=message.headers,
            partition=partition,
        )
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    return len(messages) / elapsed


def relay_round(app: object, settings: Settings, bootstrap: str, events: int) -> float:
    topic = f"bench.relay.{uuid.uuid4().hex[:8]}"
    relay = Relay(app, settings, topic=topic, bootstrap=bootstrap, partitions=PARTITIONS)  # type: ignore[arg-type]
    try:
        relay.connect()
        started = time.perf_counter()
        sent = relay.run(once=True)
        elapsed = time.perf_counter() - started
    finally:
        relay.close()
    assert sent == events, (sent, events)
    return sent / elapsed


if __name__ == "__main__":
    main()
