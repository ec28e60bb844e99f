"""Collector faults: PostgreSQL down for a while, and three collectors sharing the load
with duplicated deliveries. Real Mosquitto and real PostgreSQL, each owned by the test."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from _collector_helpers import (
    CollectorProcess,
    Equipment,
    FakeAgent,
    collector_config,
    running_collector,
    wait_until,
)
from _mosquitto import Mosquitto
from _pg_helpers import PrivateCluster, fresh_database

from collector.store import apply_migrations

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

OUTAGE_S = 35.0
RESUME_WITHIN_S = 15.0
"""Ingest resumes this soon after the database is back (pool window 4 s, retries 2 s)."""


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "mosquitto") as started:
        yield started


def readyz(url: str) -> int:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.slow(45)
def test_database_outage_loses_nothing_and_doubles_nothing(broker: Mosquitto) -> None:
    cluster = PrivateCluster()
    cluster.start()
    try:
        agent = FakeAgent(broker.port)
        press = Equipment("press-1")
        config = collector_config(
            broker.port,
            ingest={"breaker_fail_max": 2, "breaker_reset_s": 1.0, "retry_max_s": 2.0},
            database={"connect_timeout_s": 2.0, "reconnect_window_s": 4.0},
        )
        with running_collector(config, cluster.dsn) as service:
            before = [press.batch([press.counted(2), press.sampled(1.0)]) for _ in range(10)]
            for topic, _batch_id, payload in before:
                agent.publish(topic, payload)
            wait_until(lambda: len(agent.acks) == 10, 30, "confirmations before the outage")
            assert service.health is not None
            health_url = service.health.url
            assert health_url is not None
            assert readyz(health_url) == 200

            cluster.stop()
            stopped_at = time.monotonic()
            during = [press.batch([press.counted(3), press.sampled(2.0)]) for _ in range(20)]
            for topic, _batch_id, payload in during:
                agent.publish(topic, payload)
            errors = service.metrics.db_errors
            wait_until(lambda: errors._value.get() >= 2, 60, "failed writes during the outage")
            wait_until(lambda: readyz(health_url) == 503, 30, "/readyz to report the outage")
            # the outage lasts OUTAGE_S: long enough for the pool's doubling reconnect
            # delays to pass 16 s if nothing bounded them; nothing may be confirmed meanwhile
            while time.monotonic() - stopped_at < OUTAGE_S:
                assert len(agent.acks) == 10  # nothing confirmed while nothing is stored
                time.sleep(0.5)
            cluster.start()
            started_at = time.monotonic()
            wait_until(lambda: len(agent.acks) == 30, 60, "every batch confirmed after the outage")
            assert time.monotonic() - started_at < RESUME_WITHIN_S
            wait_until(lambda: readyz(health_url) == 200, 30, "/readyz to recover")
        agent.close()
        with psycopg.connect(cluster.dsn) as conn:
            events, unique, good = conn.execute(
                "SELECT count(*), count(DISTINCT event_id), "
                "(SELECT sum(good) FROM lineside.production_counts) FROM audit.events"
            ).fetchone()
        assert (events, unique) == (60, 60)
        assert good == 10 * 2 + 20 * 3
    finally:
        cluster.stop()
        cluster.cleanup()


def test_three_collectors_split_the_load_and_duplicates_never_double_count(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """Three ``oee-collector run`` processes on one shared subscription; every batch is
    delivered two or three times: the facts come out exact."""
    machines = [Equipment(f"cell-{index}") for index in range(4)]
    agent = FakeAgent(broker.port)
    with fresh_database("three") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            apply_migrations(conn)  # once, before three processes start at the same time
        collectors = [
            CollectorProcess(tmp_path, broker.port, url, f"collector-{i}") for i in range(3)
        ]
        try:
            wait_until(lambda: all(c.subscribed() for c in collectors), 60, "3 subscribed")
            batch_ids: set[str] = set()
            expected_good = 0
            for round_number in range(25):
                for machine in machines:
                    events = [machine.counted(round_number % 5 + 1, 1), machine.sampled(1.0)]
                    if round_number % 6 == 0:
                        events.insert(0, machine.state("running" if round_number % 12 else "idle"))
                    expected_good += round_number % 5 + 1
                    topic, batch_id, payload = machine.batch(events)
                    batch_ids.add(batch_id)
                    copies = 3 if round_number % 7 == 0 else 2  # every batch 2-3 times
                    for _ in range(copies):
                        agent.publish(topic, payload)
            wait_until(lambda: set(agent.acks) == batch_ids, 60, "a confirmation per batch")
            wait_until(
                lambda: all(c.status()["ingest"]["inbox_messages"] == 0 for c in collectors),
                20,
                "empty inboxes",
            )
            handled = [c.status()["mqtt"]["messages_received"] for c in collectors]
        finally:
            for collector in collectors:
                collector.stop()
        with psycopg.connect(url) as conn:
            events, unique = conn.execute(
                "SELECT count(*), count(DISTINCT event_id) FROM audit.events"
            ).fetchone()
            good, scrap = conn.execute(
                "SELECT sum(good), sum(scrap) FROM lineside.production_counts"
            ).fetchone()
            intervals = conn.execute("SELECT count(*) FROM lineside.state_intervals").fetchone()[0]
    agent.close()
    assert sum(1 for count in handled if count > 0) >= 2, handled  # the load was shared
    expected_events = sum(machine.seq for machine in machines)
    assert (events, unique) == (expected_events, expected_events)
    assert good == expected_good
    assert scrap == 25 * 4
    assert intervals == 4 * 5  # rounds 0, 6, 12, 18, 24: five state changes per machine


def test_a_schema_problem_holds_the_batches_instead_of_dead_lettering_them(
    broker: Mosquitto,
) -> None:
    """A table missing (a botched upgrade) is not the data's fault: nothing is confirmed,
    nothing becomes a dead letter, and ingest goes on once the schema is back."""
    agent = FakeAgent(broker.port)
    press = Equipment("press-1")
    with fresh_database("schema") as url:
        config = collector_config(broker.port, ingest={"retry_max_s": 0.5})
        with running_collector(config, url) as service:
            topic, first, payload = press.batch([press.sampled(1.0)])
            agent.publish(topic, payload)
            wait_until(lambda: first in agent.acks, 30, "the first confirmation")
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("ALTER TABLE lineside.process_values RENAME TO process_values_away")
            topic, held, payload = press.batch([press.sampled(2.0)])
            agent.publish(topic, payload)
            errors = service.metrics.db_errors
            wait_until(lambda: errors._value.get() >= 2, 30, "failed writes")
            assert held not in agent.acks
            with psycopg.connect(url, autocommit=True) as conn:
                assert conn.execute("SELECT count(*) FROM ops.dead_letters").fetchone()[0] == 0
                conn.execute("ALTER TABLE lineside.process_values_away RENAME TO process_values")
            wait_until(lambda: held in agent.acks, 30, "the held batch confirmed")
        agent.close()
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM lineside.process_values").fetchone()[0] == 2
            assert conn.execute("SELECT count(*) FROM ops.dead_letters").fetchone()[0] == 0
    assert agent.acks[held]["status"] == "committed"
