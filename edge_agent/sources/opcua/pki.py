"""The agent's OPC UA application certificate and the trust decision on servers.

The client certificate is created on first run in ``data_dir/pki`` and reused after
that, so that a server operator trusts it once. It names the agent's ApplicationUri
(``urn:lineside:edge-agent:<agent id>``) in its SubjectAltName, as OPC 10000-4 6.1
requires. A server certificate is trusted when it matches the configured SHA-256 pin,
else when it is in the trust folder; with neither configured, the first certificate
seen is remembered in ``data_dir/pki/servers/`` and must not change afterwards
(trust on first use, like SSH).
"""

from __future__ import annotations

import hashlib
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

from edge_agent.sources.opcua.errors import ServerTrustError

log = logging.getLogger("lineside.agent.opcua")

CLIENT_CERT_FILE = "client_cert.der"
CLIENT_KEY_FILE = "client_key.pem"
_RENEW_BEFORE = timedelta(days=7)


def application_uri(agent_id: str) -> str:
    """The agent's OPC UA ApplicationUri."""
    return f"urn:lineside:edge-agent:{agent_id}"


@dataclass(frozen=True, slots=True)
class CertificatePair:
    """An application certificate (DER or PEM) and its private key (PEM)."""

    cert_path: Path
    key_path: Path


def ensure_client_certificate(pki_dir: Path, app_uri: str) -> CertificatePair:
    """Reuse the client certificate in ``pki_dir`` or create it (blocking: key generation).

    Regenerated only when missing, unreadable, expiring within a week or naming another
    ApplicationUri (the agent id changed).
    """
    pair = CertificatePair(pki_dir / CLIENT_CERT_FILE, pki_dir / CLIENT_KEY_FILE)
    problem = _reuse_problem(pair, app_uri)
    if problem is None:
        return pair
    log.info("event=opcua_client_certificate_created path=%s reason=%s", pair.cert_path, problem)
    key = generate_private_key()
    names: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(app_uri),
        x509.DNSName(socket.gethostname()),
    ]
    cert = generate_self_signed_app_certificate(
        key,
        "Lineside edge agent",
        {"organizationName": "Lineside"},
        names,
        extended=[ExtendedKeyUsageOID.CLIENT_AUTH],
        days=3650,
    )
    pki_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(pair.key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(dump_private_key_as_pem(key))
    pair.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    return pair


def _reuse_problem(pair: CertificatePair, app_uri: str) -> str | None:
    if not pair.cert_path.is_file() or not pair.key_path.is_file():
        return "missing"
    try:
        cert = x509.load_der_x509_certificate(pair.cert_path.read_bytes())
        key = serialization.load_pem_private_key(pair.key_path.read_bytes(), password=None)
    except ValueError as exc:
        return f"unreadable ({exc})"
    if cert.public_key().public_numbers() != key.public_key().public_numbers():  # type: ignore[union-attr]
        return "key_does_not_match"
    if cert.not_valid_after_utc - _RENEW_BEFORE < datetime.now(UTC):
        return "expired"
    if app_uri not in certificate_uris(cert):
        return "application_uri_changed"
    return None


def certificate_uris(cert: x509.Certificate) -> list[str]:
    """The URIs in a certificate's SubjectAltName."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(san.value.get_values_for_type(x509.UniformResourceIdentifier))


def fingerprint(der: bytes) -> str:
    """Lower-case hex SHA-256 of a DER certificate (the form the config pins)."""
    return hashlib.sha256(der).hexdigest()


def first_certificate(der: bytes) -> bytes:
    """The leaf of a DER chain (servers may send their chain in one ByteString)."""
    if len(der) < 4 or der[0] != 0x30 or der[1] != 0x82:
        return der
    return der[: int.from_bytes(der[2:4], "big") + 4]


def check_server_trust(
    server_der: bytes,
    *,
    pin_sha256: str | None,
    trust_dir: Path | None,
    remembered_path: Path,
) -> None:
    """Raise ServerTrustError unless the server certificate is trusted (see module doc)."""
    actual = fingerprint(server_der)
    if pin_sha256 is not None:
        if actual != pin_sha256:
            raise ServerTrustError(
                f"server certificate SHA-256 fingerprint {actual} does not match the pinned "
                f"server_certificate_sha256 {pin_sha256}; if the server's certificate was "
                "replaced on purpose, update the pin"
            )
        return
    if trust_dir is not None:
        trusted = _trusted_fingerprints(trust_dir)
        if actual not in trusted:
            raise ServerTrustError(
                f"server certificate (SHA-256 {actual}) is not in the trust folder "
                f"{trust_dir} ({len(trusted)} certificates); copy the server's certificate "
                "there or pin it with server_certificate_sha256"
            )
        return
    if remembered_path.is_file():
        remembered = remembered_path.read_bytes()
        if fingerprint(remembered) != actual:
            raise ServerTrustError(
                f"server certificate changed: SHA-256 {actual}, first seen "
                f"{fingerprint(remembered)} (stored in {remembered_path}); if the change is "
                "expected, delete that file or pin the new fingerprint"
            )
        return
    remembered_path.parent.mkdir(parents=True, exist_ok=True)
    remembered_path.write_bytes(server_der)
    log.warning(
        "event=opcua_server_trusted_on_first_use sha256=%s path=%s", actual, remembered_path
    )


def _trusted_fingerprints(trust_dir: Path) -> set[str]:
    found: set[str] = set()
    if not trust_dir.is_dir():
        return found
    for path in sorted(trust_dir.iterdir()):
        if not path.is_file():
            continue
        data = path.read_bytes()
        try:
            if b"-----BEGIN CERTIFICATE-----" in data:
                cert = x509.load_pem_x509_certificate(data)
                data = cert.public_bytes(serialization.Encoding.DER)
            else:
                x509.load_der_x509_certificate(data)
        except ValueError:
            log.warning("event=opcua_trust_file_ignored path=%s reason=not_a_certificate", path)
            continue
        found.add(fingerprint(data))
    return found
