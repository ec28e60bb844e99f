"""The agent status message (lineside_protocol.status) and its documented example."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from lineside_protocol import (
    AgentStatusMessage,
    ProtocolError,
    RejectReason,
    decode_status,
    encode_status,
)

ROOT = Path(__file__).resolve().parents[2]


def message(**changes: object) -> AgentStatusMessage:
    fields: dict[str, object] = {
        "agent_id": "agent-7",
        "status": "online",
        "version": "0.1.0",
        "config_hash": "sha256:9f2c1e7b",
        "at": datetime(2026, 1, 5, 6, 0, 1, 250_000, tzinfo=UTC),
    }
    fields.update(changes)
    return AgentStatusMessage.model_validate(fields)


def test_round_trip_is_compact_json() -> None:
    original = message(status="offline")
    data = encode_status(original)
    assert data == (
        b'{"schema_version":1,"agent_id":"agent-7","status":"offline","version":"0.1.0",'
        b'"config_hash":"sha256:9f2c1e7b","at":"2026-01-05T06:00:01.250Z"}'
    )
    assert decode_status(data) == original


def test_unknown_fields_are_ignored() -> None:
    data = encode_status(message())[:-1] + b',"uptime_s":12}'
    assert decode_status(data).status == "online"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"not json", ProtocolError),
        (b'{"schema_version":1}', ValidationError),
        (encode_status(message()).replace(b'"online"', b'"sleeping"'), ValidationError),
        (encode_status(message()).replace(b'"agent-7"', b'"agent/7"'), ValidationError),
        (
            encode_status(message()).replace(b'"schema_version":1', b'"schema_version":2'),
            ValueError,
        ),
    ],
)
def test_bad_messages_are_refused(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_status(data)


def test_too_large_is_refused_before_parsing() -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_status(b" " * 5000)
    assert caught.value.reason is RejectReason.TOO_LARGE


def test_documented_example_is_accepted() -> None:
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- status example -->\s*```json\n(.*?)```", text, re.DOTALL)
    assert found, "docs/protocol.md has no status example"
    example = decode_status(found.group(1).encode())
    assert example == message()
