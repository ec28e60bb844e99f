"""TLS 1.2+ with a client certificate (mutual TLS) plus user name and password."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from _buffer_helpers import events_for, open_buffer
from _confirming_consumer import ConfirmingConsumer
from _forward_helpers import eventually, eventually_empty, forwarder, mqtt_config, running
from _mosquitto import (
    MOSQUITTO_PASSWD,
    Mosquitto,
    TlsFiles,
    free_port,
    make_tls_files,
    tls_listener_lines,
    write_password_file,
)

from edge_agent.buffer import EventBuffer

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(MOSQUITTO_PASSWD is None, reason="mosquitto_passwd is not installed"),
]

PASSWORD = "s3cret-Agent-pw"


@dataclass
class SecureBroker:
    plain_port: int
    """Anonymous, for the test's consumer."""
    tls_port: int
    """Mutual TLS and a password, for the agent."""
    tls: TlsFiles


@pytest.fixture
def secure_broker(tmp_path: Path) -> Iterator[SecureBroker]:
    tls = make_tls_files(tmp_path / "pki")
    passwords = write_password_file(tmp_path / "passwords", {"agent-7": PASSWORD})
    plain_port, tls_port = free_port(), free_port()
    lines = [
        "per_listener_settings true",
        f"listener {plain_port} 127.0.0.1",
        "allow_anonymous true",
        f"listener {tls_port} 127.0.0.1",
        *tls_listener_lines(tls),
        f"password_file {passwords}",
        "allow_anonymous false",
    ]
    with Mosquitto(tmp_path / "broker", lines=lines, port=plain_port):
        yield SecureBroker(plain_port, tls_port, tls)


@pytest.fixture
def buffer(tmp_path: Path) -> Iterator[EventBuffer]:
    buffer = open_buffer(tmp_path / "buffer.db")
    yield buffer
    buffer.close()


def tls_config(broker: SecureBroker, password: str, **tls: object) -> dict:
    files = {
        "ca_file": broker.tls.ca_cert,
        "cert_file": broker.tls.client_cert,
        "key_file": broker.tls.client_key,
        **tls,
    }
    return {"username": "agent-7", "password": password, "tls": files}


async def test_mutual_tls_with_password_delivers(
    secure_broker: SecureBroker, buffer: EventBuffer
) -> None:
    events = events_for({"press-1": 200, "press-2": 100})
    buffer.submit(events)
    config = mqtt_config(secure_broker.tls_port, **tls_config(secure_broker, PASSWORD))
    with ConfirmingConsumer(secure_broker.plain_port) as consumer:
        async with running(forwarder(config, buffer)) as fwd:
            await eventually_empty(buffer, 15)
            status = fwd.status()
    assert consumer.event_ids() == {event["event_id"] for event in events}
    assert status.broker == f"127.0.0.1:{secure_broker.tls_port}"
    assert status.last_error is None


async def test_wrong_password_is_a_clear_error_without_the_password(
    secure_broker: SecureBroker, buffer: EventBuffer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-Pw-4711"
    config = mqtt_config(secure_broker.tls_port, **tls_config(secure_broker, wrong))
    caplog.set_level(logging.DEBUG)
    async with running(forwarder(config, buffer), stop_within_s=5) as fwd:
        await eventually(lambda: fwd.status().last_error, 10, "the error")
        await eventually(lambda: "attempt=2" in caplog.text, 10, "a retry")
        status = fwd.status()
    error = status.last_error or ""
    assert not status.connected
    assert f"broker 127.0.0.1:{secure_broker.tls_port} refused the connection" in error
    assert "check mqtt.username and mqtt.password" in error
    for text in (error, caplog.text, repr(config), str(config.model_dump()), str(status)):
        assert wrong not in text


async def test_tls_without_a_client_certificate_fails_clearly(
    secure_broker: SecureBroker, buffer: EventBuffer
) -> None:
    settings = tls_config(secure_broker, PASSWORD)
    settings["tls"] = {"ca_file": secure_broker.tls.ca_cert}  # no client certificate
    config = mqtt_config(secure_broker.tls_port, **settings)
    async with running(forwarder(config, buffer), stop_within_s=5) as fwd:
        await eventually(lambda: fwd.status().last_error, 10, "the error")
        error = fwd.status().last_error or ""
    assert error.startswith(
        f"broker 127.0.0.1:{secure_broker.tls_port} closed the connection before its CONNACK"
    )
    assert "mqtt.tls.cert_file" in error
    assert PASSWORD not in error


async def test_tls_with_an_untrusted_broker_certificate_fails_clearly(
    secure_broker: SecureBroker, buffer: EventBuffer
) -> None:
    # the client certificate is not a CA: the broker's certificate cannot be verified
    config = mqtt_config(
        secure_broker.tls_port,
        **tls_config(secure_broker, PASSWORD, ca_file=secure_broker.tls.client_cert),
    )
    async with running(forwarder(config, buffer), stop_within_s=5) as fwd:
        await eventually(lambda: fwd.status().last_error, 10, "the error")
        error = fwd.status().last_error or ""
    assert "TLS handshake failed" in error
    assert "CERTIFICATE_VERIFY_FAILED" in error
    assert "check mqtt.tls.ca_file" in error
