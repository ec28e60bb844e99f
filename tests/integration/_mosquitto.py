"""A private Mosquitto broker for a test: own config, free port, started and killed here.

Also makes what a TLS test needs: a CA, a server certificate for 127.0.0.1/localhost and
a client certificate (``cryptography``), and a password file (``mosquitto_passwd``); and
:class:`MqttPeer`, a paho MQTT 5 client that records what the broker answers.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


class Mosquitto:
    """``mosquitto -c <conf>`` on a free loopback port; ``extra`` lines go into the config.

    Anonymous access is allowed unless ``password_file`` or ``tls`` say otherwise. Unless
    ``persistent``, a restart loses sessions and queued messages (the harder case for the
    agent).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        extra: str = "",
        tls: TlsFiles | None = None,
        password_file: Path | None = None,
        port: int | None = None,
        lines: list[str] | None = None,
        persistent: bool = False,
        config_text: str | None = None,
        extra_ports: tuple[int, ...] = (),
    ) -> None:
        """``lines`` replaces the generated listener section (then ``port`` is the port
        the caller's first listener uses, and ``tls``/``password_file`` are ignored).

        ``config_text`` is a complete configuration written as it is (every other option
        but ``port`` is ignored); ``port`` must then name one of its listeners, the one
        :meth:`start` waits for.

        ``extra_ports`` are further listeners :meth:`start` waits for: Mosquitto opens its
        listeners one after the other, so the first one answering says nothing about the
        others."""
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.extra_ports = extra_ports
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None
        if config_text is not None:
            if port is None:
                raise ValueError("config_text needs the port of one of its listeners")
            self.conf.write_text(config_text)
            return
        if lines is None:
            lines = [
                f"listener {self.port} 127.0.0.1",
                f"allow_anonymous {'false' if password_file else 'true'}",
            ]
            if password_file is not None:
                lines.append(f"password_file {password_file}")
            if tls is not None:
                lines += tls_listener_lines(tls)
        common = ["user root"]  # keep reading files in the test's private tmp dir
        if persistent:  # sessions and queued messages survive a graceful restart
            common += ["persistence true", f"persistence_location {workdir}/"]
        else:
            common.append("persistence false")
        self.conf.write_text("\n".join(common + lines) + "\n" + extra + "\n")

    def start(self, timeout_s: float = 10.0) -> Mosquitto:
        """Start the broker and wait until each of its ports accepts TCP connections."""
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        for port in (self.port, *self.extra_ports):
            self._wait_listening(port, deadline, timeout_s)
        return self

    def _wait_listening(self, port: int, deadline: float, timeout_s: float) -> None:
        assert self.proc is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited at start: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen on {port} within {timeout_s} s")

    def stop(self, graceful: bool = False) -> None:
        """Stop the broker: SIGKILL (connections drop at once, nothing is saved) or, with
        ``graceful``, SIGTERM (a persistent broker saves its sessions)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def tls_listener_lines(tls: TlsFiles) -> list[str]:
    """Config lines that make the preceding listener mutual TLS (TLS 1.2+)."""
    return [
        f"cafile {tls.ca_cert}",
        f"certfile {tls.server_cert}",
        f"keyfile {tls.server_key}",
        "require_certificate true",
        "tls_version tlsv1.2",
    ]


def write_password_file(path: Path, users: dict[str, str]) -> Path:
    """A Mosquitto password file made with ``mosquitto_passwd -b``."""
    if MOSQUITTO_PASSWD is None:
        raise RuntimeError("mosquitto_passwd is not installed")
    path.unlink(missing_ok=True)
    path.touch()
    for user, password in users.items():
        done = subprocess.run(
            [MOSQUITTO_PASSWD, "-b", str(path), user, password], capture_output=True, check=False
        )
        if done.returncode != 0:  # not CalledProcessError: its message would show the password
            raise RuntimeError(
                f"mosquitto_passwd could not add user {user!r} to {path}: "
                f"{done.stderr.decode(errors='replace').strip()}"
            )
    return path


def make_tls_files(directory: Path, client_name: str = "agent-7") -> TlsFiles:
    """A CA, a server certificate (127.0.0.1, localhost) and a client certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lineside test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(name: str, server: bool) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        return builder.sign(ca_key, hashes.SHA256()), key

    def write(
        cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, stem: str
    ) -> tuple[Path, Path]:
        cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        key_path.chmod(0o600)
        return cert_path, key_path

    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    server_cert, server_key = write(*leaf("127.0.0.1", True), "server")
    client_cert, client_key = write(*leaf(client_name, False), "client")
    return TlsFiles(ca_path, server_cert, server_key, client_cert, client_key)


class MqttPeer:
    """One paho MQTT 5 client on its own network thread; what it receives is recorded.

    Made for asserting on a broker's behaviour: every call waits (with a deadline) for the
    broker's answer and returns its reason code, and a refused client stays refused
    (no automatic reconnect).
    """

    def __init__(
        self,
        port: int,
        user: str | None,
        password: str | None = None,
        *,
        client_id: str | None = None,
        tls: TlsFiles | None = None,
        client_cert: bool = False,
        timeout_s: float = 5.0,
    ) -> None:
        """``tls`` makes it verify the broker against ``tls.ca_cert``; ``client_cert``
        also presents ``tls.client_cert``."""
        self.client_id = client_id or f"{user or 'anonymous'}-{secrets.token_hex(3)}"
        self.timeout_s = timeout_s
        self._port = port
        self._lock = threading.Lock()
        self.connack: ReasonCode | None = None
        self.session_present = False
        self.disconnected: ReasonCode | None = None
        self.connect_error: str | None = None
        self.received: list[tuple[str, bytes]] = []
        self._pubacks: dict[int, ReasonCode] = {}
        self._subacks: dict[int, ReasonCode] = {}
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            reconnect_on_failure=False,
        )
        if user is not None:
            client.username_pw_set(user, password)
        if tls is not None:
            cert = (str(tls.client_cert), str(tls.client_key)) if client_cert else (None, None)
            client.tls_set(ca_certs=str(tls.ca_cert), certfile=cert[0], keyfile=cert[1])
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        self.client = client

    def _on_connect(
        self, _c: object, _u: object, flags: mqtt.ConnectFlags, rc: ReasonCode, _p: object
    ) -> None:
        self.session_present = flags.session_present
        self.connack = rc

    def _on_disconnect(
        self, _c: object, _u: object, _f: object, rc: ReasonCode, _p: object
    ) -> None:
        self.disconnected = rc

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append((message.topic, message.payload))

    def _on_publish(self, _c: object, _u: object, mid: int, rc: ReasonCode, _p: object) -> None:
        self._pubacks[mid] = rc

    def _on_subscribe(
        self, _c: object, _u: object, mid: int, rcs: list[ReasonCode], _p: object
    ) -> None:
        self._subacks[mid] = rcs[0]

    def wait_until(self, predicate: Callable[[], object], what: str) -> None:
        """Poll ``predicate`` until true; fail naming ``what`` after ``timeout_s``."""
        wait_until(predicate, self.timeout_s, f"{self.client_id}: {what}")

    def connect(self, clean_start: bool = True, session_expiry_s: int = 0) -> ReasonCode | None:
        """Connect and wait for CONNACK; ``None`` when the connection failed or dropped
        before a CONNACK (``connect_error``, ``disconnected`` say how)."""
        properties = Properties(PacketTypes.CONNECT)
        if session_expiry_s:
            properties.SessionExpiryInterval = session_expiry_s
        try:
            self.client.connect(
                "127.0.0.1", self._port, clean_start=clean_start, properties=properties
            )
        except (OSError, ssl.SSLError) as exc:  # e.g. the TLS handshake refused
            self.connect_error = repr(exc)
            return None
        self.client.loop_start()
        self.wait_until(
            lambda: self.connack is not None or self.disconnected is not None, "CONNACK"
        )
        return self.connack

    def connected(self, clean_start: bool = True, session_expiry_s: int = 0) -> MqttPeer:
        """Connect and require success."""
        rc = self.connect(clean_start, session_expiry_s)
        assert rc is not None, (
            f"{self.client_id}: no CONNACK ({self.connect_error or self.disconnected})"
        )
        assert not rc.is_failure, f"{self.client_id}: connect gave {rc}"
        return self

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> ReasonCode:
        """QoS 1 publish; the PUBACK's reason code."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"{self.client_id}: publish gave {info.rc}"
        self.wait_until(lambda: info.mid in self._pubacks, f"PUBACK on {topic}")
        return self._pubacks[info.mid]

    def subscribe(self, topic_filter: str) -> ReasonCode:
        """QoS 1 subscription; the SUBACK's reason code."""
        _rc, mid = self.client.subscribe(topic_filter, qos=1)
        self.wait_until(lambda: mid in self._subacks, f"SUBACK for {topic_filter}")
        return self._subacks[mid]

    def payloads(self, topic: str | None = None) -> list[bytes]:
        """What arrived so far (on ``topic``, or on any), in order."""
        with self._lock:
            return [payload for t, payload in self.received if topic in (None, t)]

    def wait_for(self, topic: str, payload: bytes) -> None:
        """Wait until ``payload`` arrived on ``topic``."""
        self.wait_until(lambda: payload in self.payloads(topic), f"{payload[:40]!r} on {topic}")

    def close(self) -> None:
        """Disconnect cleanly (a persistent session stays on the broker)."""
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> MqttPeer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def wait_until(predicate: Callable[[], object], timeout_s: float, what: str) -> None:
    """Poll ``predicate`` until true; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.01)
