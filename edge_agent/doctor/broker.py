"""Broker checks: TCP, TLS handshake (certificate problems explained), MQTT CONNECT.

Harmless to production: the doctor connects under its own client id
(``<client id>-doctor``; MQTT 5: a session that expires at disconnect) so it never
takes over the running agent's connection or session, publishes and subscribes
nothing, and disconnects at once. The CONNECT is the agent's own (:class:`MqttLink`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time

from edge_agent.doctor._net import tcp_check
from edge_agent.doctor.results import Check, Status, fail, ok, warn
from edge_agent.forward.config import MqttConfig
from edge_agent.forward.errors import BrokerConnectError, BrokerRefusedError
from lineside_common.mqtt_tls import client_tls_context

DOCTOR_SUFFIX = "-doctor"
EXPIRY_WARNING_DAYS = 14

# OpenSSL X509_V_ERR_* codes -> (what is wrong, what to do)
_VERIFY_ERRORS: dict[int, tuple[str, str]] = {
    9: ("the broker's certificate is not valid yet", "check this PC's clock (see clock)"),
    10: (
        "the broker's certificate has expired",
        "renew the broker's certificate (or check this PC's clock if the date is wrong)",
    ),
    18: (
        "the broker's certificate is self-signed and not trusted",
        "set mqtt.tls.ca_file to that certificate or to the CA that should sign it",
    ),
    19: (
        "the broker's certificate is signed by an unknown CA (its chain ends in a CA this PC "
        "does not trust)",
        "set mqtt.tls.ca_file to the PEM file of the CA that signed the broker's certificate",
    ),
    20: (
        "the broker's certificate is signed by an unknown CA",
        "set mqtt.tls.ca_file to the PEM file of the CA that signed the broker's certificate",
    ),
    21: (
        "the broker's certificate is signed by an unknown CA",
        "set mqtt.tls.ca_file to the PEM file of the CA that signed the broker's certificate",
    ),
    62: (
        "the broker's certificate does not name the configured host",
        "set mqtt.host to a name the certificate contains (its subjectAltName), or reissue "
        "the certificate with this host name",
    ),
    64: (
        "the broker's certificate does not name the configured IP address",
        "set mqtt.host to the host name in the certificate, or reissue it with this IP address",
    ),
}
# CONNACK reasons about the login (MQTT 5: 134, 135; MQTT 3.1.1: 4, 5), as paho names them
_CREDENTIAL_WORDS = ("user name or password", "username or password", "authori")


def explain_verify_error(verify_code: int, verify_message: str) -> tuple[str, str]:
    """An ``SSLCertVerificationError``'s code -> (detail, fix)."""
    detail, fix = _VERIFY_ERRORS.get(
        verify_code,
        ("certificate verification failed", "check mqtt.tls.ca_file and the broker's certificate"),
    )
    return f"{detail} ({verify_message})", fix


def explain_tls_error(exc: ssl.SSLError) -> tuple[str, str]:
    """Any other TLS failure -> (detail, fix)."""
    text = str(exc)
    if "WRONG_VERSION_NUMBER" in text.upper() or "record layer failure" in text:
        return (
            f"the port does not speak TLS ({exc.reason or text})",
            "use the broker's TLS port (usually 8883), or remove mqtt.tls for a plain port",
        )
    if "CERTIFICATE_REQUIRED" in text.upper() or "certificate required" in text:
        return (
            "the broker requires a client certificate",
            "set mqtt.tls.cert_file and mqtt.tls.key_file (mutual TLS)",
        )
    if "UNKNOWN_CA" in text.upper() or "BAD_CERTIFICATE" in text.upper():
        return (
            f"the broker refused the client certificate ({exc.reason or text})",
            "the broker must trust the CA that signed mqtt.tls.cert_file",
        )
    return f"TLS handshake failed: {text}", "see the broker's log for the reason"


def days_left(not_after: str, now_s: float) -> float:
    """Days until an ``ssl`` certificate's ``notAfter`` text (negative when past)."""
    return (ssl.cert_time_to_seconds(not_after) - now_s) / 86400


async def check_broker(config: MqttConfig | None, agent_id: str, timeout_s: float) -> list[Check]:
    """TCP, then TLS when configured, then an MQTT CONNECT/DISCONNECT with the credentials."""
    if config is None:
        return [
            warn(
                "broker",
                "no mqtt section: events stay in the buffer, nothing is forwarded",
                "add an mqtt section (host, port, tls, username, password) to forward events",
            )
        ]
    reach = await tcp_check("broker tcp", config.host, config.resolved_port, timeout_s, "broker")
    if reach.status is Status.FAIL:
        return [reach]
    checks = [reach]
    if config.tls is not None:
        checks.append(await _check_tls(config, timeout_s))
        if checks[-1].status is Status.FAIL:
            return checks
    checks.append(await _check_connect(config, agent_id, timeout_s))
    return checks


async def _check_tls(config: MqttConfig, timeout_s: float) -> Check:
    name = "broker tls"
    assert config.tls is not None
    try:
        context = client_tls_context(config.tls)
    except (OSError, ssl.SSLError) as exc:
        return fail(
            name,
            f"cannot load the CA, certificate or key: {exc}",
            "check the files named in mqtt.tls (path, PEM format, readable by this user)",
        )
    try:
        _reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                config.host, config.resolved_port, ssl=context, server_hostname=config.host
            ),
            timeout_s,
        )
    except ssl.SSLCertVerificationError as exc:
        return fail(name, *explain_verify_error(exc.verify_code, exc.verify_message))
    except ssl.SSLError as exc:
        return fail(name, *explain_tls_error(exc))
    except (TimeoutError, OSError) as exc:
        return fail(
            name,
            f"no TLS handshake within {timeout_s:g} s ({exc!r})",
            "check that the port is the broker's TLS port (usually 8883)",
        )
    ssl_object = writer.get_extra_info("ssl_object")
    version = ssl_object.version() if ssl_object is not None else "?"
    peer = ssl_object.getpeercert() if ssl_object is not None else None
    writer.close()
    with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
        await asyncio.wait_for(writer.wait_closed(), timeout_s)
    not_after = peer.get("notAfter") if peer else None
    if isinstance(not_after, str):
        left = days_left(not_after, time.time())
        if left < EXPIRY_WARNING_DAYS:
            return warn(
                name,
                f"{version}, certificate trusted, but it expires in {left:.1f} days ({not_after})",
                "have the broker's certificate renewed before it expires",
            )
        return ok(name, f"{version}, certificate trusted, valid until {not_after}")
    return ok(name, f"{version}, certificate trusted")


async def _check_connect(config: MqttConfig, agent_id: str, timeout_s: float) -> Check:
    from edge_agent.forward._link import MqttLink  # deferred: paho only for this check

    name = "broker mqtt"
    client_id = (config.client_id or agent_id)[: 64 - len(DOCTOR_SUFFIX)] + DOCTOR_SUFFIX
    probe = config.model_copy(
        update={
            "session_expiry_s": 0,
            "connect_timeout_s": min(config.connect_timeout_s, timeout_s),
        }
    )
    lost = asyncio.Event()
    link = MqttLink(
        probe,
        client_id,
        on_message=lambda _topic, _payload: None,
        on_puback=lambda _mid, _failed, _reason: None,
        on_lost=lambda _reason, _expected: lost.set(),
    )
    login = f"user {config.username!r}" if config.username else "anonymously"
    try:
        await asyncio.wait_for(link.connect(), timeout_s + 1)
    except BrokerRefusedError as exc:
        return _refused(name, exc, login)
    except BrokerConnectError as exc:
        return fail(name, str(exc), "see the broker's log (journalctl -u mosquitto)")
    except TimeoutError:
        return fail(
            name,
            f"no CONNACK within {timeout_s:g} s",
            "is this port an MQTT broker, and does mqtt.tls match the port (8883 TLS, 1883 plain)?",
        )
    link.disconnect()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(lost.wait(), timeout_s)
    link.close()
    return ok(name, f"MQTT {config.protocol} CONNECT accepted ({login}, client id {client_id})")


def _refused(name: str, exc: BrokerRefusedError, login: str) -> Check:
    reason = exc.reason.lower()
    if any(word in reason for word in _CREDENTIAL_WORDS):
        return fail(
            name,
            f"authentication refused: the broker answered {exc.reason!r} to the login {login}",
            "check mqtt.username and the password (its credential file or variable) against "
            "the broker's password file and ACL; with mutual TLS, the client certificate",
        )
    return fail(name, str(exc), "see the broker's log for the reason")
