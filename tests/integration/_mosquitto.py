"""A private Mosquitto broker for a test: own config, free port, started and killed here.

Also makes what a TLS test needs: a CA, a server certificate for 127.0.0.1/localhost and
a client certificate (``cryptography``), and a password file (``mosquitto_passwd``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

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
    ) -> None:
        """``lines`` replaces the generated listener section (then ``port`` is the port
        the caller's first listener uses, and ``tls``/``password_file`` are ignored)."""
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None
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
        """Start the broker and wait until it accepts TCP connections."""
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited at start: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout_s} s")

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
        subprocess.run([MOSQUITTO_PASSWD, "-b", str(path), user, password], check=True)
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
