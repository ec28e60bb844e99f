"""The collector against a private Mosquitto and a fresh PostgreSQL database.

Batches published by a fake agent are stored once, confirmed to the agent and
acknowledged to the broker; bad messages of every kind become dead letters (with a
``rejected`` confirmation when they name their batch) and never stop ingest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import orjson
import psycopg
import pytest
from _collector_helpers import (
    Equipment,
    FakeAgent,
    collector_config,
    running_collector,
    wait_until,
)
from _mosquitto import Mosquitto
from _pg_helpers import fresh_database

from lineside_protocol import new_event_ids

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "mosquitto") as started:
        yield started


@pytest.fixture
def database_url() -> Iterator[str]:
    with fresh_database("ingest") as url:
        yield url


def count(url: str, query: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchone()[0]


def test_batches_are_stored_once_confirmed_and_acknowledged(
    broker: Mosquitto, database_url: str
) -> None:
    agent = FakeAgent(broker.port)
    press, oven = Equipment("press-1"), Equipment("oven-2")
    sent: list[str] = []
    payloads: list[tuple[str, bytes]] = []
    with running_collector(collector_config(broker.port), database_url) as service:
        for _ in range(10):
            for machine in (press, oven):
                events = [machine.state("running"), machine.counted(10, 1)]
                events += [machine.sampled(100.0 + i) for i in range(5)]
                topic, batch_id, payload = machine.batch(events)
                agent.publish(topic, payload)
                sent.append(batch_id)
                payloads.append((topic, payload))
        wait_until(lambda: len(agent.acks) == len(sent), 30, "a confirmation per batch")
        assert {ack["status"] for ack in agent.acks.values()} == {"committed"}
        # the same batches again (an agent that missed the acks): stored once, confirmed again
        for topic, payload in payloads[:5]:
            agent.publish(topic, payload)
        wait_until(lambda: agent.ack_count == len(sent) + 5, 30, "confirmations of the resends")
        wait_until(lambda: len(service.inbox) == 0, 10, "an empty inbox")
        metrics = service.metrics
        assert metrics.events.labels("inserted")._value.get() == 140
        assert metrics.events.labels("duplicate")._value.get() == 5 * 7
    agent.close()
    assert count(database_url, "SELECT count(*) FROM audit.events") == 140
    assert count(database_url, "SELECT count(DISTINCT event_id) FROM audit.events") == 140
    good = count(database_url, "SELECT sum(good) FROM lineside.production_counts")
    assert good == 20 * 10  # 20 counted events of 10 good each, none counted twice
    assert count(database_url, "SELECT count(*) FROM lineside.process_values") == 100
    assert count(database_url, "SELECT count(*) FROM ops.dead_letters") == 0
    assert count(database_url, "SELECT count(*) FROM lineside.equipment") == 2


def _document(payload: bytes) -> dict:
    return orjson.loads(payload)


def _bad_messages(machine: Equipment) -> list[tuple[str, str, bytes, bool]]:
    """(name, topic, payload, acked) for each kind of bad input; reason follows the name."""
    topic, _batch_id, good = machine.batch([machine.counted(1)])
    cases: list[tuple[str, str, bytes, bool]] = []

    def mutated(change: object) -> bytes:
        document = _document(good)
        document["batch_id"] = new_event_ids(1)[0]  # each case is its own batch
        change(document)  # type: ignore[operator]
        return json.dumps(document).encode()  # json: it writes lone surrogates as escapes

    cases.append(("not_json", topic, b"{not json", False))
    cases.append(("invalid_utf8", topic, b'{"a": "\xff\xfe"}', False))
    cases.append(("too_large", topic, b" " * (1_048_576 + 1), False))
    cases.append(("non_finite_number", topic, good.replace(b'"good":1', b'"good":NaN'), True))

    def version(doc: dict) -> None:
        doc["schema_version"] = 2

    cases.append(("unsupported_schema_version", topic, mutated(version), True))

    def unknown_type(doc: dict) -> None:
        doc["events"][0]["type"] = "machine.exploded"

    cases.append(("unknown_event_type", topic, mutated(unknown_type), True))

    def missing(doc: dict) -> None:
        del doc["events"][0]["seq"]

    cases.append(("invalid_event", topic, mutated(missing), True))

    def negative(doc: dict) -> None:
        doc["events"][0]["payload"].update(good=-1, total=-1)

    cases.append(("invalid_event", topic, mutated(negative), True))

    def mistyped(doc: dict) -> None:
        doc["events"][0]["payload"]["good"] = "1"

    cases.append(("invalid_event", topic, mutated(mistyped), True))

    def future(doc: dict) -> None:
        doc["events"][0]["event_time"] = "2099-01-01T00:00:00.000Z"

    cases.append(("invalid_event", topic, mutated(future), True))

    def ancient(doc: dict) -> None:
        doc["events"][0]["event_time"] = "1999-12-31T23:59:59.000Z"

    cases.append(("invalid_event", topic, mutated(ancient), True))

    def lone_surrogate(doc: dict) -> None:  # valid JSON, accepted by the contract,
        doc["events"][0]["payload"]["product_id"] = "\ud800"  # but not storable as UTF-8

    cases.append(("invalid_event", topic, mutated(lone_surrogate), True))
    other_topic = topic.replace("press-1", "press-9")
    cases.append(("bad_topic", other_topic, mutated(lambda doc: None), True))
    return cases


def test_bad_input_becomes_dead_letters_and_ingest_goes_on(
    broker: Mosquitto, database_url: str
) -> None:
    agent = FakeAgent(broker.port)
    press = Equipment("press-1")
    cases = _bad_messages(press)
    with running_collector(collector_config(broker.port), database_url) as service:
        for _name, topic, payload, _acked in cases:
            agent.publish(topic, payload)
        topic, good_id, payload = press.batch([press.counted(3)])
        agent.publish(topic, payload)  # a good batch after all the bad ones
        wait_until(lambda: good_id in agent.acks, 30, "the good batch's confirmation")
        expected_acks = sum(1 for case in cases if case[3]) + 1
        wait_until(lambda: len(agent.acks) >= expected_acks, 10, "rejected confirmations")
        wait_until(
            lambda: count(database_url, "SELECT count(*) FROM ops.dead_letters") == len(cases),
            10,
            "a dead letter per bad message",
        )
        assert service.ingest_thread is not None
        assert service.ingest_thread.is_alive()
    agent.close()
    assert agent.acks[good_id]["status"] == "committed"
    rejected = [ack for ack in agent.acks.values() if ack["status"] == "rejected"]
    assert len(rejected) == expected_acks - 1
    assert all(ack["detail"] for ack in rejected)
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT reason, detail, payload_bytes, octet_length(payload) FROM ops.dead_letters "
            "ORDER BY id"
        ).fetchall()
    assert sorted(row[0] for row in stored) == sorted(case[0] for case in cases)
    assert all(row[1] for row in stored)  # every dead letter says what was wrong
    (too_large,) = [row for row in stored if row[0] == "too_large"]
    assert too_large[2] == 1_048_577  # the size as received is kept
    assert too_large[3] == 65_536  # the payload is capped
    details = " | ".join(row[1] for row in stored)
    for expected in ("the database refused", "2099-01-01", "1999-12-31", "press-9"):
        assert expected in details
    assert count(database_url, "SELECT sum(good) FROM lineside.production_counts") == 3


def test_a_restarted_collector_gets_what_was_queued_while_it_was_down(
    broker: Mosquitto, database_url: str
) -> None:
    """Persistent session: batches published while the collector is stopped wait at the
    broker for its client id and are stored when it comes back."""
    agent = FakeAgent(broker.port)
    press = Equipment("press-1")
    config = collector_config(broker.port)
    with running_collector(config, database_url, client_id="collector-persistent"):
        topic, first, payload = press.batch([press.counted(1)])
        agent.publish(topic, payload)
        wait_until(lambda: first in agent.acks, 30, "the first confirmation")
    queued = []
    for _ in range(5):  # the collector is down now
        topic, batch_id, payload = press.batch([press.counted(2), press.sampled(3.0)])
        agent.publish(topic, payload)
        queued.append(batch_id)
    assert not any(batch_id in agent.acks for batch_id in queued)
    with running_collector(config, database_url, client_id="collector-persistent"):
        wait_until(lambda: all(b in agent.acks for b in queued), 30, "the queued batches")
    agent.close()
    assert count(database_url, "SELECT sum(good) FROM lineside.production_counts") == 1 + 5 * 2
