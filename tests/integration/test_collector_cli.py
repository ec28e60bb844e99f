"""``oee-collector`` as a person runs it: migrate, run (SIGTERM), partitions, dead letters."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from _collector_helpers import Equipment, FakeAgent, wait_until
from _mosquitto import Mosquitto, free_port
from _pg_helpers import fresh_database

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

CLI = Path(sys.executable).parent / "oee-collector"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def database_url() -> Iterator[str]:
    with fresh_database("cli") as url:
        yield url


def test_migrate_is_idempotent_and_finds_the_database_by_env(database_url: str) -> None:
    first = cli("migrate", "--dsn", database_url)
    assert first.returncode == 0, first.stderr
    assert "applied 0001_" in first.stdout
    again = cli("migrate", env={"LINESIDE_DATABASE_URL": database_url})
    assert again.returncode == 0, again.stderr
    assert "schema is up to date" in again.stdout


def test_commands_without_a_database_say_where_to_put_one() -> None:
    result = cli("migrate", env={"LINESIDE_DATABASE_URL": ""})
    assert result.returncode == 2
    assert "--dsn" in result.stderr
    assert "LINESIDE_DATABASE_URL" in result.stderr


def test_an_unreachable_database_is_reported_without_the_password() -> None:
    port = free_port()
    result = cli("migrate", "--dsn", f"postgresql://lineside:hunter2@127.0.0.1:{port}/x")
    assert result.returncode == 3
    assert "cannot connect" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_run_stores_confirms_and_stops_cleanly_on_sigterm(
    database_url: str, tmp_path: Path
) -> None:
    health_port = free_port()
    with Mosquitto(tmp_path / "mosquitto") as broker:
        config = tmp_path / "collector.yaml"
        config.write_text(
            f"mqtt:\n  port: {broker.port}\nhealth:\n  listen: 127.0.0.1:{health_port}\n"
        )
        assert cli("check-config", str(config)).returncode == 0
        process = subprocess.Popen(
            [str(CLI), "run", str(config), "--dsn", database_url, "--client-id", "cli-test"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:

            def status() -> dict:
                url = f"http://127.0.0.1:{health_port}/status"
                with urllib.request.urlopen(url, timeout=2) as answer:
                    return json.loads(answer.read())

            def subscribed() -> bool:
                try:
                    return bool(status()["mqtt"]["connected"])
                except OSError:
                    return False

            wait_until(subscribed, 60, "the collector to subscribe")
            agent = FakeAgent(broker.port)
            press = Equipment("press-1")
            topic, batch_id, payload = press.batch([press.counted(4), press.sampled(2.5)])
            agent.publish(topic, payload)
            agent.publish(topic, b"\x00 not json")
            wait_until(lambda: batch_id in agent.acks, 30, "the confirmation")
            wait_until(lambda: status()["ingest"]["events_committed"] == 2, 10, "the count")
            with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/metrics") as answer:
                metrics = answer.read().decode()
            assert 'lineside_collector_events_total{outcome="inserted"} 2.0' in metrics
            assert 'lineside_collector_dead_letters_total{reason="not_json"} 1.0' in metrics
            agent.close()
        finally:
            process.send_signal(signal.SIGTERM)
            _out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        assert "event=collector_stopped" in err

    listed = cli("dead-letters", "list", "--dsn", database_url)
    assert listed.returncode == 0, listed.stderr
    assert "not_json" in listed.stdout
    shown = cli("dead-letters", "show", "1", "--dsn", database_url)
    assert "not JSON" in shown.stdout
    replayed = cli("dead-letters", "replay", "1", "--dsn", database_url)
    assert replayed.returncode == 1  # still not JSON: refused again, kept
    assert "still refused: not_json" in replayed.stdout
    partitions = cli("partitions", "list", "--dsn", database_url)
    assert partitions.returncode == 0, partitions.stderr
    assert "events_p" in partitions.stdout
    dry = cli("partitions", "drop", "--older-than-days", "1", "--dry-run", "--dsn", database_url)
    assert dry.returncode == 0, dry.stderr
