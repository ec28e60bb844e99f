"""Self-signed OPC UA application certificates, generated once and reused.

The server's certificate must carry the server's ApplicationUri as a URI in its
SubjectAltName (OPC 10000-4 6.1); clients reject it otherwise. The files are kept
in ``cert_dir`` so that clients which pinned (trusted) the certificate keep trusting
it across simulator runs. A certificate is regenerated only when it is missing,
expired, expiring within a week, or names another ApplicationUri.
"""

from __future__ import annotations

import logging
from pathlib import Path

from cryptography.x509.oid import ExtendedKeyUsageOID

from lineside_common.opcua_certs import (
    CertificateFiles,
    certificate_uris,
    default_hostnames,
    ensure_certificate,
    write_self_signed_certificate,
)

__all__ = [
    "CertificateFiles",
    "certificate_uris",
    "default_hostnames",
    "ensure_server_certificate",
    "write_self_signed_certificate",
]

log = logging.getLogger("lineside.sim.opcua")

CERT_FILE = "server_cert.der"
KEY_FILE = "server_key.pem"


def ensure_server_certificate(
    cert_dir: Path, application_uri: str, hostnames: list[str]
) -> CertificateFiles:
    """Reuse the server certificate in ``cert_dir`` or create it (first run).

    ``hostnames`` go into the SubjectAltName as DNS names or IP addresses.
    """
    cert_dir.mkdir(parents=True, exist_ok=True)
    files = CertificateFiles(cert_dir / CERT_FILE, cert_dir / KEY_FILE)
    problem = ensure_certificate(
        files, application_uri, hostnames, ExtendedKeyUsageOID.SERVER_AUTH, "Lineside PLC simulator"
    )
    if problem is None:
        log.info("event=opcua_certificate_reused path=%s", files.cert_path)
    else:
        log.info("event=opcua_certificate_generated path=%s reason=%s", files.cert_path, problem)
    return files
