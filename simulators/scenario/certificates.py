"""X.509 certificate files named by a scenario (PEM or DER), read as DER bytes.

Only ``cryptography`` is imported here: ``plc-sim validate`` checks the files without
loading asyncua.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization


def read_certificate_der(path: Path) -> bytes:
    """The certificate in ``path`` (PEM or DER) as DER bytes.

    Raises ValueError naming the file and what is wrong with it.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            cert = x509.load_pem_x509_certificate(data)
        else:
            cert = x509.load_der_x509_certificate(data)
    except ValueError:
        raise ValueError(
            f"{path} is not an X.509 certificate (PEM or DER); give the user's "
            "certificate, not its private key"
        ) from None
    return cert.public_bytes(serialization.Encoding.DER)
