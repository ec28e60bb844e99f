"""Who may open a session on the OPC UA face: user names/passwords, user certificates.

asyncua calls :meth:`UserManager.get_user` after checking the token type against the
endpoints' user token policies and, for an X509IdentityToken, the token's signature
(made with the certificate's private key over the server certificate and nonce). A
rejection is logged without secrets; the client gets BadUserAccessDenied.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping, Sequence

from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.internal_server import InternalServer
from cryptography import x509

log = logging.getLogger("lineside.sim.opcua")


class UserManager:
    """Accepts the configured user name / password pairs and user certificates.

    For an X509IdentityToken asyncua passes only the token's certificate data (user
    name and password None); user certificates are compared by SHA-256 fingerprint.
    """

    def __init__(self, users: Mapping[str, str], user_certificates: Sequence[bytes]) -> None:
        self._users = {name: password.encode() for name, password in users.items()}
        self._certificates = {_sha256(der) for der in user_certificates}

    def get_user(
        self,
        iserver: InternalServer,
        username: str | None = None,
        password: str | None = None,
        certificate: bytes | None = None,
    ) -> User | None:
        if username is None and password is None and certificate:
            return self._certificate_user(certificate)
        expected = self._users.get(username or "")
        given = (password or "").encode()
        if expected is None or not hmac.compare_digest(expected, given):
            log.warning("event=opcua_login_rejected token=username user=%s", username)
            return None
        return User(role=UserRole.User, name=username)

    def _certificate_user(self, token_data: bytes) -> User | None:
        leaf = first_der_certificate(token_data)
        fingerprint = _sha256(leaf)
        subject = _subject(leaf)
        if fingerprint not in self._certificates:
            log.warning(
                "event=opcua_login_rejected token=certificate subject=%r sha256=%s "
                "reason=untrusted_user_certificate",
                subject,
                fingerprint,
            )
            return None
        return User(role=UserRole.User, name=subject)


def first_der_certificate(data: bytes) -> bytes:
    """The first certificate of a DER chain (certificates simply concatenated)."""
    if len(data) < 2 or data[0] != 0x30:
        return data
    length, header = data[1], 2
    if length & 0x80:  # long form: the next (length & 0x7F) bytes hold the length
        count = length & 0x7F
        length, header = int.from_bytes(data[2 : 2 + count], "big"), 2 + count
    return data[: header + length]


def _sha256(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def _subject(der: bytes) -> str:
    try:
        return x509.load_der_x509_certificate(der).subject.rfc4514_string()
    except ValueError:
        return "(not a certificate)"
