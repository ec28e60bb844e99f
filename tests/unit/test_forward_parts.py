"""The forwarder's pure parts: backlog ranges, token bucket, window; and its config."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from edge_agent.buffer import BufferedEvent
from edge_agent.forward import MqttConfig
from edge_agent.forward.lanes import BacklogRanges, TokenBucket
from edge_agent.forward.window import InflightBatch, Window


def rows(*rowids: int) -> list[BufferedEvent]:
    return [BufferedEvent(rowid, "press-1", rowid, 0, b'{"a":1}') for rowid in rowids]


# ---- backlog ranges ---------------------------------------------------------------------


def test_ranges_advance_and_stop_at_their_end() -> None:
    ranges = BacklogRanges()
    ranges.add(0, 10)
    assert ranges.next_read() == 0
    assert [r.rowid for r in ranges.take(rows(1, 2, 3), limit=3)] == [1, 2, 3]
    assert ranges.next_read() == 3
    # a read may run past the end into live rows: those are not backlog
    assert [r.rowid for r in ranges.take(rows(9, 10, 11), limit=3)] == [9, 10]
    assert not ranges


def test_ranges_end_when_a_read_comes_back_short() -> None:
    ranges = BacklogRanges()
    ranges.add(0, 100)  # rows 51..100 were dropped by the buffer meanwhile
    assert [r.rowid for r in ranges.take(rows(1, 2), limit=5)] == [1, 2]
    assert not ranges


def test_ranges_of_several_outages_stay_separate_and_ordered() -> None:
    ranges = BacklogRanges()
    ranges.add(0, 5)
    ranges.add(5, 8)  # adjacent: merged
    ranges.add(20, 30)  # rows 9..20 were read live in between
    ranges.add(40, 40)  # empty: ignored
    assert ranges.remaining_estimate() == 8 + 10
    assert [r.rowid for r in ranges.take(rows(7, 8, 21), limit=3)] == [7, 8]
    assert ranges.next_read() == 20


# ---- token bucket -----------------------------------------------------------------------


def test_token_bucket_paces_and_bursts() -> None:
    bucket = TokenBucket(1000.0, burst=500.0, now=0.0)
    assert bucket.available(0.0) == 500
    bucket.take(500, 0.0)
    assert bucket.available(0.0) == 0
    assert bucket.seconds_until(250, 0.0) == pytest.approx(0.25)
    assert bucket.available(0.1) == pytest.approx(100)
    assert bucket.available(10.0) == 500  # never more than the burst
    bucket.take(800, 10.0)  # a read returned more than available: debt
    assert bucket.seconds_until(100, 10.0) == pytest.approx(0.4)


def test_unlimited_bucket() -> None:
    bucket = TokenBucket(None, burst=1.0, now=0.0)
    bucket.take(10**9, 0.0)
    assert bucket.available(0.0) == float("inf")
    assert bucket.seconds_until(10**6, 0.0) == 0.0


# ---- window -----------------------------------------------------------------------------


def batch(batch_id: str) -> InflightBatch:
    return InflightBatch(batch_id, "t", b"{}", [1, 2], False, deadline=0.0)


def test_window_tracks_pubacks_deadlines_and_confirmations() -> None:
    window = Window(max_batches=4, max_bytes=1 << 20)
    first, second = batch("b1"), batch("b2")
    window.sent(first, mid=7, deadline=30.0)
    window.sent(second, mid=8, deadline=31.0)
    assert len(window) == 2
    assert window.events == 4
    assert window.due(100.0) == []  # waiting for PUBACKs: paho re-sends those itself
    assert window.on_puback(7) is first
    assert window.on_puback(7) is None
    assert window.next_deadline() == 30.0
    assert window.due(29.0) == []
    assert window.due(30.0) == [first]
    window.sent(first, mid=9, deadline=60.0)  # sent again: the old mid is forgotten
    assert first.sends == 2
    assert window.on_puback(9) is first
    assert window.pop("b1") is first
    assert window.pop("b1") is None
    assert window.on_puback(8) is second
    window.expire_all(now=5.0)
    assert window.due(5.0) == [second]


def test_window_counts_the_bytes_of_unconfirmed_batches_once() -> None:
    window = Window(max_batches=4, max_bytes=1 << 20)
    first = InflightBatch("b1", "t", b"x" * 100, [1], False, deadline=0.0)
    second = InflightBatch("b2", "t", b"y" * 30, [2], False, deadline=0.0)
    window.sent(first, mid=1, deadline=1.0)
    window.sent(second, mid=2, deadline=1.0)
    window.sent(first, mid=3, deadline=2.0)  # a resend holds no more memory
    assert window.bytes == 130
    window.pop("b1")
    window.pop("b1")
    assert window.bytes == 30
    window.pop("b2")
    assert window.bytes == 0


def test_window_ignores_a_stale_puback_after_a_resend() -> None:
    window = Window(max_batches=2, max_bytes=1 << 20)
    only = batch("b1")
    window.sent(only, mid=1, deadline=1.0)
    window.on_puback(1)
    window.sent(only, mid=2, deadline=2.0)
    assert window.on_puback(1) is None
    assert only.mid == 2


# ---- config -----------------------------------------------------------------------------


def test_config_defaults() -> None:
    config = MqttConfig(host="broker.plant")
    assert config.resolved_port == 1883
    assert config.protocol == "5"
    assert config.ack_mode == "collector"
    assert config.keepalive_s == 30
    assert (config.batch.max_events, config.batch.max_bytes, config.batch.linger_ms) == (
        500,
        256 * 1024,
        10,
    )
    assert (config.max_inflight_batches, config.max_inflight_bytes) == (256, 8 * 1024 * 1024)
    tls = MqttConfig(host="broker.plant", tls={"ca_file": "/etc/ca.pem"})
    assert tls.resolved_port == 8883
    assert tls.broker == "broker.plant:8883"


def test_config_refuses_unknown_keys_and_half_settings() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        MqttConfig(host="b", qos=2)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="cert_file and key_file go together"):
        MqttConfig(host="b", tls={"cert_file": Path("c.pem")})
    with pytest.raises(ValidationError, match="password is set but username is not"):
        MqttConfig(host="b", password="x")
    with pytest.raises(ValidationError, match="less than or equal to 1048576"):
        MqttConfig(host="b", batch={"max_bytes": 2_000_000})


def test_password_never_shows() -> None:
    config = MqttConfig(host="b", username="agent-7", password="hunter2-secret")
    for text in (repr(config), str(config), config.model_dump_json()):
        assert "hunter2-secret" not in text
    assert config.password is not None
    assert config.password.get_secret_value() == "hunter2-secret"


def _models(model: type[BaseModel]) -> list[type[BaseModel]]:
    found = [model]
    for field in model.model_fields.values():
        for candidate in (field.annotation, *getattr(field.annotation, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                found += _models(candidate)
    return found


def test_every_config_field_is_described() -> None:
    for model in _models(MqttConfig):
        assert model.model_config.get("extra") == "forbid", model
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
