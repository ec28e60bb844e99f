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
import socket
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from edge_agent.sources.opcua.errors import ServerTrustError
from lineside_common.opcua_certs import CertificateFiles, certificate_uris, ensure_certificate

__all__ = ["CertificatePair", "certificate_uris", "check_server_trust", "ensure_client_certificate"]

log = logging.getLogger("lineside.agent.opcua")

CLIENT_CERT_FILE = "client_cert.der"
CLIENT_KEY_FILE = "client_key.pem"


def application_uri(agent_id: str) -> str:
    """The agent's OPC UA ApplicationUri."""
    return f"urn:lineside:edge-agent:{agent_id}"


CertificatePair = CertificateFiles


def ensure_client_certificate(pki_dir: Path, app_uri: str) -> CertificatePair:
    """Reuse the client certificate in ``pki_dir`` or create it (blocking: key generation).

    Regenerated only when missing, unreadable, expiring within a week or naming another
    ApplicationUri (the agent id changed).
    """
    pair = CertificatePair(pki_dir / CLIENT_CERT_FILE, pki_dir / CLIENT_KEY_FILE)
    problem = ensure_certificate(
        pair,
        app_uri,
        [socket.gethostname()],
        ExtendedKeyUsageOID.CLIENT_AUTH,
        "Lineside edge agent",
    )
    if problem is not None:
        log.info(
            "event=opcua_client_certificate_created path=%s reason=%s", pair.cert_path, problem
        )
    return pair


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
