"""Self-signed OPC UA application certificates: create once, reuse while valid.

Shared by the simulator's server certificate and the agent's client certificate. A
stored pair is reused unless it is missing, unreadable, mismatched, expiring within a
week or issued for another ApplicationUri.
"""

from __future__ import annotations

import ipaddress
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

RENEW_BEFORE = timedelta(days=7)


@dataclass(frozen=True)
class CertificateFiles:
    """Where an application certificate (DER) and its private key (PEM) live."""

    cert_path: Path
    key_path: Path


def ensure_certificate(
    files: CertificateFiles,
    application_uri: str,
    hostnames: list[str],
    usage: x509.ObjectIdentifier,
    common_name: str,
) -> str | None:
    """Create the pair unless the stored one can be reused; returns why it was (re)made."""
    problem = reuse_problem(files, application_uri)
    if problem is not None:
        write_self_signed_certificate(files, application_uri, hostnames, usage, common_name)
    return problem


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


def certificate_uris(cert: x509.Certificate | Path) -> list[str]:
    """The URIs in a certificate's SubjectAltName (a DER file or a loaded certificate)."""
    if isinstance(cert, Path):
        cert = x509.load_der_x509_certificate(cert.read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(san.value.get_values_for_type(x509.UniformResourceIdentifier))


def reuse_problem(files: CertificateFiles, application_uri: str) -> str | None:
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
    if cert.not_valid_after_utc - RENEW_BEFORE < datetime.now(UTC):
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
