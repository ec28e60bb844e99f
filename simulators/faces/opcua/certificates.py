"""Self-signed OPC UA application certificates, generated once and reused.

The server's certificate must carry the server's ApplicationUri as a URI in its
SubjectAltName (OPC 10000-4 6.1); clients reject it otherwise. The files are kept
in ``cert_dir`` so that clients which pinned (trusted) the certificate keep trusting
it across simulator runs. A certificate is regenerated only when it is missing,
expired, expiring within a week, or names another ApplicationUri.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asyncua.crypto.cert_gen import (
    dump_private_key_as_pem,
    generate_private_key,
    generate_self_signed_app_certificate,
)
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

log = logging.getLogger("lineside.sim.opcua")

CERT_FILE = "server_cert.der"
KEY_FILE = "server_key.pem"
_RENEW_BEFORE = timedelta(days=7)


@dataclass(frozen=True)
class CertificateFiles:
    """Where an application certificate (DER) and its private key (PEM) live."""

    cert_path: Path
    key_path: Path


def ensure_server_certificate(
    cert_dir: Path, application_uri: str, hostnames: list[str]
) -> CertificateFiles:
    """Reuse the server certificate in ``cert_dir`` or create it (first run).

    ``hostnames`` go into the SubjectAltName as DNS names or IP addresses.
    """
    cert_dir.mkdir(parents=True, exist_ok=True)
    files = CertificateFiles(cert_dir / CERT_FILE, cert_dir / KEY_FILE)
    problem = _reuse_problem(files, application_uri)
    if problem is None:
        log.info("event=opcua_certificate_reused path=%s", files.cert_path)
        return files
    log.info("event=opcua_certificate_generated path=%s reason=%s", files.cert_path, problem)
    write_self_signed_certificate(
        files, application_uri, hostnames, ExtendedKeyUsageOID.SERVER_AUTH, "Lineside PLC simulator"
    )
    return files


def write_self_signed_certificate(
    files: CertificateFiles,
    application_uri: str,
    hostnames: list[str],
    usage: x509.ObjectIdentifier,
    common_name: str,
    days: int = 3650,
) -> None:
    """Generate a 2048-bit RSA key and a self-signed OPC UA certificate for it.

    ``usage`` is ExtendedKeyUsageOID.SERVER_AUTH or CLIENT_AUTH (tests make client
    certificates with this too).
    """
    key = generate_private_key()
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri)]
    for host in dict.fromkeys(hostnames):  # unique, order kept
        names.append(_general_name(host))
    cert = generate_self_signed_app_certificate(
        key, common_name, {"organizationName": "Lineside"}, names, extended=[usage], days=days
    )
    files.key_path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(files.key_path, dump_private_key_as_pem(key))
    files.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))


def default_hostnames(host: str) -> list[str]:
    """The names a client may use to reach ``host``: itself, localhost, this machine."""
    names = [host, "localhost", "127.0.0.1", socket.gethostname()]
    return [n for n in dict.fromkeys(names) if n and n not in ("0.0.0.0", "::")]


def certificate_uris(cert_path: Path) -> list[str]:
    """The URIs in a DER certificate's SubjectAltName (empty if it has none)."""
    cert = x509.load_der_x509_certificate(cert_path.read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(san.value.get_values_for_type(x509.UniformResourceIdentifier))


def _reuse_problem(files: CertificateFiles, application_uri: str) -> str | None:
    """Why the stored certificate cannot be reused, or None when it can."""
    if not files.cert_path.is_file() or not files.key_path.is_file():
        return "missing"
    try:
        cert = x509.load_der_x509_certificate(files.cert_path.read_bytes())
        key = serialization.load_pem_private_key(files.key_path.read_bytes(), password=None)
    except ValueError as exc:
        return f"unreadable ({exc})"
    if cert.public_key().public_numbers() != key.public_key().public_numbers():  # type: ignore[union-attr]
        return "key_does_not_match"
    if cert.not_valid_after_utc - _RENEW_BEFORE < datetime.now(UTC):
        return "expired"
    if application_uri not in certificate_uris(files.cert_path):
        return "application_uri_changed"
    return None


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _write_private(path: Path, data: bytes) -> None:
    """Write a private key readable by the owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
