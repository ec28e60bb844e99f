"""Threshold alerts end to end: facts in real PostgreSQL, AlertService evaluating them,
events through the shared Mosquitto (127.0.0.1:1883) and to local webhook receivers.

Every test has a database of its own and a line name of its own, so its MQTT topics are
unique per run; subscribers subscribe before anything is triggered. Waiting is polling
against deadlines.
"""

from __future__ import annotations

import http.server
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from _mosquitto import MqttPeer
from _pg_helpers import StreamBuilder, migrated_database
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from collector.alerts.config import AlertsConfig, StopLongerThanRule
from collector.alerts.evaluate import (
    Breach,
    Observation,
    OpenEpisode,
    Resolve,
    Subject,
    breach_event,
    resolve_event,
)
from collector.alerts.pending import load_pending, prune_stale_pending, save_pending
from collector.alerts.service import AlertService
from collector.alerts.store import (
    abandon_expired,
    mark_delivered,
    prune_finished,
    store_breach,
    store_resolve,
)
from collector.api import routes_alerts
from collector.api.app import create_app
from collector.api.auth import Role, create_token
from collector.config import CollectorConfig
from collector.service.masterdata_source import MasterDataSource
from collector.store import write
from lineside_protocol import decode_alert, new_event_id

pytestmark = pytest.mark.integration

BROKER_PORT = 1883
COLLECTOR = CollectorConfig.model_validate({"mqtt": {"host": "127.0.0.1", "port": BROKER_PORT}})
LATENCY_S = 10.0
BREACHED, RESOLVED = "oee.threshold_breached", "oee.threshold_resolved"


# -- helpers -------------------------------------------------------------------------------


def wait_for(check: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


class Receiver:
    """A webhook receiver (http.server in a thread): answers 500 to the first
    ``fail_first`` requests, then 200; records every request."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.requests: list[tuple[int, dict[str, str], dict[str, Any]]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    status = 500 if len(receiver.requests) < receiver.fail_first else 200
                    receiver.requests.append((status, dict(self.headers), json.loads(body)))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def taken(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Events answered with 200 (of type ``kind``)."""
        with self.lock:
            return [e for s, _h, e in self.requests if s == 200 and kind in (None, e["type"])]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def receiver(fail_first: int = 0) -> Iterator[Receiver]:
    r = Receiver(fail_first)
    try:
        yield r
    finally:
        r.close()


@contextmanager
def hanging_port() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel does) but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


@contextmanager
def subscriber(line: str) -> Iterator[MqttPeer]:
    peer = MqttPeer(BROKER_PORT, None, client_id=f"alerts-sub-{secrets.token_hex(4)}")
    peer.timeout_s = 10
    peer.connected()
    try:
        rc = peer.subscribe(f"lineside/v1/acme/plant-1/pressing/{line}/#")
        assert not rc.is_failure
        yield peer
    finally:
        peer.close()


def mqtt_events(peer: MqttPeer, kind: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    with peer._lock:
        received = list(peer.received)
    events = [(topic, json.loads(payload)) for topic, payload in received]
    return [(t, e) for t, e in events if kind in (None, e["type"])]


@contextmanager
def running(
    alerts: dict[str, Any], dsn: str, masterdata_file: Path | None = None
) -> Iterator[AlertService]:
    service = AlertService(
        COLLECTOR,
        AlertsConfig.model_validate({"enabled": True, **alerts}),
        dsn,
        MasterDataSource(masterdata_file, registry=CollectorRegistry()),
        CollectorRegistry(),
        client_id=f"alerts-test-{secrets.token_hex(4)}",
    )
    service.start()
    try:
        yield service
    finally:
        started = time.monotonic()
        service.stop()
        assert time.monotonic() - started < 5, "AlertService.stop() took too long"


def store(dsn: str, stream: StreamBuilder, events: list) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        write(conn, [stream.batch(events)], [])


def query(dsn: str, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def undelivered(dsn: str) -> int:
    return query(dsn, "SELECT count(*) FROM ops.alert_outbox WHERE delivered_at IS NULL")[0][0]


@pytest.fixture
def dsn() -> Iterator[str]:
    with migrated_database("alerts") as url:
        yield url


@pytest.fixture
def line() -> str:
    return f"line-{secrets.token_hex(4)}"


def stop_rule(line: str, min_duration_s: float = 2) -> dict[str, Any]:
    return {
        "kind": "stop_longer_than",
        "name": "long-stop",
        "min_duration_s": min_duration_s,
        "ids": [f"plant-1/pressing/{line}"],
        "severity": "critical",
    }


# -- tests ---------------------------------------------------------------------------------


def test_a_long_stop_alerts_on_mqtt_and_webhook_within_10_s_and_resolves(
    dsn: str, line: str
) -> None:
    press = StreamBuilder("press-1", line=line)
    topic = f"lineside/v1/acme/plant-1/pressing/{line}/press-1/alerts"
    with subscriber(line) as peer, receiver() as hook:
        alerts = {
            "rules": [stop_rule(line)],
            "webhooks": [{"name": "ops", "url": hook.url, "headers": {"X-Token": "t0k3n"}}],
        }
        with running(alerts, dsn):
            stop_at = datetime.now(UTC)
            store(
                dsn,
                press,
                [
                    press.state("running", stop_at - timedelta(minutes=1)),
                    press.state("unplanned_stop", stop_at, reason_code=17),
                ],
            )
            due = stop_at.timestamp() + 2
            wait_for(lambda: mqtt_events(peer, BREACHED), 15, "the breach on MQTT")
            mqtt_late_s = time.time() - due
            wait_for(lambda: hook.taken(BREACHED), 15, "the breach on the webhook")
            hook_late_s = time.time() - due
            assert mqtt_late_s <= LATENCY_S
            assert hook_late_s <= LATENCY_S

            running_at = datetime.now(UTC)
            store(dsn, press, [press.state("running", running_at)])
            wait_for(lambda: mqtt_events(peer, RESOLVED), 15, "the resolve on MQTT")
            wait_for(lambda: hook.taken(RESOLVED), 15, "the resolve on the webhook")
            wait_for(lambda: undelivered(dsn) == 0, 15, "the outbox to empty")

        [(breach_topic, breach)] = mqtt_events(peer, BREACHED)
        [(resolve_topic, resolve)] = mqtt_events(peer, RESOLVED)
        assert breach_topic == resolve_topic == topic
        assert hook.taken(BREACHED) == [breach]
        assert hook.taken(RESOLVED) == [resolve]
        event = decode_alert(json.dumps(breach).encode())
        assert (event.rule, event.rule_kind, event.severity) == (
            "long-stop",
            "stop_longer_than",
            "critical",
        )
        assert event.subject.id == f"plant-1/pressing/{line}/press-1"
        assert event.condition_since == stop_at.replace(
            microsecond=stop_at.microsecond // 1000 * 1000
        )
        assert event.details["reason_code"] == 17
        assert event.value is not None
        assert event.value >= 2
        assert resolve["episode_id"] == breach["episode_id"]
        assert resolve["resolve_reason"] == "cleared"
        headers = [h for s, h, _e in hook.requests if s == 200]
        assert headers[0]["X-Token"] == "t0k3n"
        assert headers[0]["X-Lineside-Event-Id"] == breach["event_id"]

    rows = query(
        dsn, "SELECT event_id::text, type, episode_id::text FROM audit.alert_events ORDER BY type"
    )
    assert rows == [
        (breach["event_id"], BREACHED, breach["episode_id"]),
        (resolve["event_id"], RESOLVED, breach["episode_id"]),
    ]
    assert query(dsn, "SELECT count(*) FROM ops.alert_episodes WHERE resolved_at IS NULL") == [(0,)]


def test_two_collector_processes_send_one_breach_and_one_resolve_per_episode(
    dsn: str, line: str
) -> None:
    presses = [StreamBuilder(f"press-{i}", line=line) for i in range(3)]
    now = datetime.now(UTC)
    for press in presses:  # stopped long enough before either service starts: a race
        store(dsn, press, [press.state("unplanned_stop", now - timedelta(seconds=30))])
    with subscriber(line) as peer, receiver() as hook:
        alerts = {"rules": [stop_rule(line)], "webhooks": [{"name": "ops", "url": hook.url}]}
        with running(alerts, dsn) as one, running(alerts, dsn) as two:
            wait_for(lambda: len(mqtt_events(peer, BREACHED)) >= 3, 15, "three breaches")
            for press in presses:
                store(dsn, press, [press.state("running", datetime.now(UTC))])
            wait_for(lambda: len(hook.taken(RESOLVED)) >= 3, 15, "three resolves")
            wait_for(lambda: undelivered(dsn) == 0, 15, "the outbox to empty")
            assert one.events_stored + two.events_stored == 6

        for kind in (BREACHED, RESOLVED):
            on_mqtt = sorted(e["event_id"] for _t, e in mqtt_events(peer, kind))
            on_hook = sorted(e["event_id"] for e in hook.taken(kind))
            assert len(on_mqtt) == 3
            assert on_mqtt == on_hook
    episodes = query(dsn, "SELECT subject, resolved_at IS NOT NULL FROM ops.alert_episodes")
    assert sorted(episodes) == [(f"plant-1/pressing/{line}/press-{i}", True) for i in range(3)]
    assert query(dsn, "SELECT count(*) FROM audit.alert_events") == [(6,)]
    assert query(dsn, "SELECT max(attempts) FROM ops.alert_outbox") == [(1,)]


def test_a_failing_webhook_gets_the_alert_later_and_a_hanging_one_blocks_nothing(
    dsn: str, line: str
) -> None:
    press = StreamBuilder("press-1", line=line)
    with subscriber(line) as peer, receiver(fail_first=3) as flaky, hanging_port() as port:
        alerts = {
            "rules": [stop_rule(line)],
            "webhooks": [
                # 500, 500 in the first attempt; 500, 200 in the second (outbox backoff)
                {"name": "flaky", "url": flaky.url, "retries": 1},
                {"name": "hanging", "url": f"http://127.0.0.1:{port}/", "timeout_s": 1},
            ],
        }
        with running(alerts, dsn):
            stop_at = datetime.now(UTC)
            store(dsn, press, [press.state("unplanned_stop", stop_at)])
            wait_for(lambda: mqtt_events(peer, BREACHED), 15, "the breach on MQTT")
            assert time.time() - (stop_at.timestamp() + 2) <= LATENCY_S
            wait_for(lambda: flaky.taken(BREACHED), 20, "the breach on the flaky webhook")

            def hanging_error() -> str | None:
                [(error,)] = query(
                    dsn,
                    "SELECT last_error FROM ops.alert_outbox WHERE destination = 'webhook:hanging'",
                )
                return error

            wait_for(hanging_error, 15, "the hanging webhook's first attempt to fail")
        assert [status for status, _h, _e in flaky.requests] == [500, 500, 500, 200]
        assert len({e["event_id"] for _s, _h, e in flaky.requests}) == 1
        [(attempts,)] = query(
            dsn, "SELECT attempts FROM ops.alert_outbox WHERE destination = 'webhook:flaky'"
        )
        assert attempts == 2
        assert hanging_error() == "webhook hanging: no answer within 1.0 s"
    assert query(
        dsn, "SELECT delivered_at FROM ops.alert_outbox WHERE destination = %s", "webhook:hanging"
    ) == [(None,)]


def low_oee_line(dsn: str, line: str, tmp_path: Path) -> tuple[Path, datetime]:
    """A shift that began an hour ago on ``line``; press-1 ran it making 10 parts of an
    ideal 2.5 s (OEE far below 0.65). Returns the master data file with its calendar and
    the shift's start."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    shift_start = now - timedelta(hours=1)
    shift_end = shift_start + timedelta(hours=3)
    weekday = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[shift_start.weekday()]
    masterdata = tmp_path / "masterdata.yaml"
    masterdata.write_text(
        "calendars:\n"
        "  test:\n"
        "    timezone: UTC\n"
        "    shifts:\n"
        f'      - {{name: early, days: [{weekday}], start: "{shift_start:%H:%M}",'
        f' end: "{shift_end:%H:%M}"}}\n'
        "assign:\n"
        "  - {calendar: test}\n"
    )
    press = StreamBuilder("press-1", line=line)
    run_from = shift_start + timedelta(minutes=1)
    store(
        dsn,
        press,
        [
            press.started("order-1", run_from, ideal_cycle_time_s=2.5),
            press.state("running", run_from),
            press.counted(10, 0, datetime.now(UTC) - timedelta(seconds=5)),
        ],
    )
    return masterdata, shift_start


def test_current_shift_oee_below_the_threshold_fires(dsn: str, line: str, tmp_path: Path) -> None:
    masterdata, shift_start = low_oee_line(dsn, line, tmp_path)
    ids = [f"plant-1/pressing/{line}"]
    rules = [
        {"kind": "oee_below", "name": "line-oee", "threshold": 0.65, "for_s": 2, "ids": ids},
        {
            "kind": "oee_below",
            "name": "press-oee",
            "scope": "equipment",
            "threshold": 0.65,
            "for_s": 2,
            "ids": ids,
        },
    ]
    with subscriber(line) as peer, running({"rules": rules}, dsn, masterdata):
        wait_for(lambda: len(mqtt_events(peer, BREACHED)) >= 2, 15, "two OEE breaches")
    by_rule = {e["rule"]: (t, e) for t, e in mqtt_events(peer, BREACHED)}
    line_topic, line_event = by_rule["line-oee"]
    press_topic, press_event = by_rule["press-oee"]
    assert line_topic == f"lineside/v1/acme/plant-1/pressing/{line}/alerts"
    assert press_topic == f"lineside/v1/acme/plant-1/pressing/{line}/press-1/alerts"
    for event in (line_event, press_event):
        assert 0 < event["value"] < 0.65
        assert event["unit"] == "ratio"
        assert event["details"]["window"]["label"] == f"early {shift_start.date().isoformat()}"
        held = datetime.fromisoformat(event["breached_at"]) - datetime.fromisoformat(
            event["condition_since"]
        )
        assert held >= timedelta(seconds=2)
    assert line_event["scope"] == "line"
    assert line_event["subject"]["equipment"] is None


def test_an_oee_timer_survives_a_collector_restart(dsn: str, line: str, tmp_path: Path) -> None:
    masterdata, _ = low_oee_line(dsn, line, tmp_path)
    subject = f"plant-1/pressing/{line}"
    rule = {"kind": "oee_below", "name": "line-oee", "threshold": 0.65, "for_s": 600}
    rules = {"rules": [{**rule, "ids": [subject]}], "evaluate_every_s": 0.2}

    def timers() -> list[tuple]:
        return query(dsn, "SELECT rule, subject, since FROM ops.alert_pending")

    with running(rules, dsn, masterdata):
        wait_for(timers, 10, "the timer of the first collector")
    ((name, where, since),) = timers()
    assert (name, where) == ("line-oee", subject)

    # A new process (a restart) counts from the same start: 600 s after it, it fires,
    # though this process has seen OEE below the threshold only for a moment.
    with running(rules, dsn, masterdata) as restarted:
        wait_for(lambda: restarted.last_evaluation is not None, 10, "an evaluation")
        assert timers() == [("line-oee", subject, since)]
        assert restarted.evaluate_once(now=since + timedelta(seconds=599)) == []
        (fired,) = restarted.evaluate_once(now=since + timedelta(seconds=600))
    # (alert events carry milliseconds)
    assert fired.condition_since == since.replace(microsecond=since.microsecond // 1000 * 1000)
    assert fired.breached_at - fired.condition_since == timedelta(seconds=600)
    assert timers() == []  # fired: the timer has ended


def test_pending_timers_are_saved_as_changes_and_the_first_start_wins(dsn: str) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    a, b, c = ("oee", "s/a/l1"), ("oee", "s/a/l2"), ("other", "s/a/l1")
    with psycopg.connect(dsn, autocommit=True) as conn:
        save_pending(conn, {}, {a: t0, b: t0})
        assert load_pending(conn) == {a: t0, b: t0}
        # another process started c meanwhile, and b at a later time: both kept as stored
        save_pending(conn, {}, {c: t0})
        loaded = load_pending(conn)
        save_pending(conn, {a: t0}, {a: t0, b: t0 + timedelta(minutes=5)})
        assert load_pending(conn) == loaded
        # a ended (cleared or fired); b and c stay
        save_pending(conn, loaded, {b: t0, c: t0})
        assert load_pending(conn) == {b: t0, c: t0}
        assert prune_stale_pending(conn, older_than_s=4 * 86_400) == 0
        assert prune_stale_pending(conn) == 2  # t0 is three days ago, beyond any for_s
        assert load_pending(conn) == {}


def test_offline_by_state_and_by_silence(dsn: str, line: str) -> None:
    quiet = StreamBuilder("press-quiet", line=line)
    lost = StreamBuilder("press-lost", line=line)
    fine = StreamBuilder("press-fine", line=line)
    now = datetime.now(UTC)
    store(dsn, quiet, [quiet.state("running", now - timedelta(seconds=90))])
    # the agent still reports (a heartbeat sample), but its PLC is lost
    lost_events = [lost.state("offline", now - timedelta(seconds=40)), lost.sample("t", 1.0, now)]
    store(dsn, lost, lost_events)
    store(dsn, fine, [fine.state("running", now)])
    rule = {"kind": "offline", "name": "offline", "for_s": 30, "ids": [f"plant-1/pressing/{line}"]}
    with running({"rules": [rule], "mqtt": False}, dsn) as service:
        wait_for(lambda: service.events_stored >= 2, 15, "two offline breaches")
        store(dsn, quiet, [quiet.state("running", datetime.now(UTC))])
        wait_for(lambda: service.events_stored >= 3, 15, "the quiet press to resolve")
    rows = query(
        dsn,
        "SELECT subject, type, payload->'details' FROM audit.alert_events ORDER BY occurred_at",
    )
    events = {(subject, kind): details for subject, kind, details in rows}
    assert len(rows) == 3
    assert set(events) == {
        (f"plant-1/pressing/{line}/press-quiet", BREACHED),
        (f"plant-1/pressing/{line}/press-lost", BREACHED),
        (f"plant-1/pressing/{line}/press-quiet", RESOLVED),
    }
    quiet_breach = events[(f"plant-1/pressing/{line}/press-quiet", BREACHED)]
    assert (quiet_breach["state"], quiet_breach["silent"]) == ("running", True)
    lost_breach = events[(f"plant-1/pressing/{line}/press-lost", BREACHED)]
    assert (lost_breach["state"], lost_breach["silent"]) == ("offline", False)
    assert query(dsn, "SELECT count(*) FROM ops.alert_outbox") == [(0,)]


def test_the_api_lists_episodes_of_the_callers_sites(dsn: str) -> None:
    rule = StopLongerThanRule(kind="stop_longer_than", name="long-stop", min_duration_s=60)
    now = datetime.now(UTC)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for site, resolved in (("s1", True), ("s1", False), ("s2", False)):
            subject = Subject("acme", site, "a", "l", "m")
            obs = Observation(rule.name, subject, True, now, 90.0, now - timedelta(seconds=90))
            breach = breach_event(Breach(obs, obs.since), rule, new_event_id(), new_event_id())
            assert store_breach(conn, breach, [])
            assert not store_breach(
                conn, breach.model_copy(update={"episode_id": new_event_id()}), []
            )
            if resolved:
                episode = OpenEpisode(breach.episode_id, rule.name, subject, obs.since, now)
                event = resolve_event(Resolve(episode, now, "cleared", None), rule, new_event_id())
                assert store_resolve(conn, event, [])
                assert not store_resolve(conn, event, [])

    # the real application (its context, security and pools), with the alerts router
    secret = "alerts-api-test-secret-0123456789abcdef"
    config = CollectorConfig.model_validate({"api": {"auth": {"hs256_secret": secret}}})
    assert config.api.auth is not None
    auth = config.api.auth
    app = create_app(config, dsn, registry=CollectorRegistry())
    app.include_router(routes_alerts.build_router(app.state.ctx))
    with TestClient(app) as client:

        def get(sites: list[str], **params: str) -> Any:
            token = create_token(auth, subject="t", role=Role.VIEWER, sites=sites, ttl_s=60)
            return client.get(
                "/api/v1/alerts", params=params, headers={"Authorization": f"Bearer {token}"}
            )

        assert [a["site"] for a in get(["s1"]).json()["alerts"]] == ["s1"]
        every = get(["s1"], state="all").json()["alerts"]
        assert sorted(a["open"] for a in every) == [False, True]
        assert every[0]["id"] == "s1/a/l/m"
        assert every[0]["kind"] == "stop_longer_than"
        assert len(get(["*"], state="all").json()["alerts"]) == 3
        assert [a["site"] for a in get(["*"], site="s2").json()["alerts"]] == ["s2"]
        assert get(["s1"], site="s2").status_code == 403
        assert get(["s1"], state="closed").status_code == 422
        assert client.get("/api/v1/alerts").status_code == 401


def test_finished_outbox_rows_are_pruned_after_the_retention_and_events_stay(dsn: str) -> None:
    rule = StopLongerThanRule(kind="stop_longer_than", name="long-stop", min_duration_s=60)
    now = datetime.now(UTC)
    destinations = ["mqtt", "webhook:ops"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        for machine in ("delivered-long-ago", "delivered-now", "abandoned-long-ago", "pending"):
            subject = Subject("acme", "s1", "a", "l", machine)
            obs = Observation(rule.name, subject, True, now, 90.0, now - timedelta(seconds=90))
            breach = breach_event(Breach(obs, obs.since), rule, new_event_id(), new_event_id())
            assert store_breach(conn, breach, destinations)
        rows = {
            (machine, destination): item_id
            for item_id, machine, destination in conn.execute(
                "SELECT o.id, e.payload->'subject'->>'equipment', o.destination"
                " FROM ops.alert_outbox o JOIN audit.alert_events e USING (event_id)"
            ).fetchall()
        }
        assert len(rows) == 8, rows
        for (machine, _destination), item_id in rows.items():
            if machine.startswith("delivered"):
                mark_delivered(conn, item_id)
        conn.execute(
            "UPDATE ops.alert_outbox SET created_at = now() - interval '9 days' WHERE id = ANY(%s)",
            ([i for (m, _), i in rows.items() if m == "abandoned-long-ago"],),
        )
        assert sum(abandon_expired(conn, 8 * 86_400).values()) == 2
        conn.execute(
            "UPDATE ops.alert_outbox SET delivered_at = now() - interval '8 days',"
            " abandoned_at = CASE WHEN abandoned_at IS NULL THEN NULL"
            " ELSE now() - interval '8 days' END"
            " WHERE id = ANY(%s)",
            ([i for (m, _), i in rows.items() if m.endswith("long-ago")],),
        )
        conn.execute(
            "UPDATE ops.alert_outbox SET delivered_at = NULL WHERE id = ANY(%s)",
            ([i for (m, _), i in rows.items() if m == "abandoned-long-ago"],),
        )
        assert prune_finished(conn, 7 * 86_400) == 4
        left = conn.execute(
            "SELECT e.payload->'subject'->>'equipment', count(*) FROM ops.alert_outbox o"
            " JOIN audit.alert_events e USING (event_id) GROUP BY 1 ORDER BY 1"
        ).fetchall()
        assert left == [("delivered-now", 2), ("pending", 2)]
        assert conn.execute("SELECT count(*) FROM audit.alert_events").fetchone() == (4,)
        assert prune_finished(conn, 7 * 86_400) == 0
