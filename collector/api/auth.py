"""Bearer tokens (JWT) for the HTTP API: roles, principals, verification and creation.

Pure of FastAPI: ``TokenVerifier.verify`` turns a token into a :class:`Principal` or raises
an :class:`AuthError` whose ``detail`` tells the caller what is wrong; ``security.py`` maps
that onto HTTP. Only the configured algorithm is accepted, so an unsigned ("none") token or
an HS256 token signed with an RS256 public key as its secret is refused before any key is
touched.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from collector.api.auth_config import AuthConfig
from lineside_protocol.topics import LEVEL_PATTERN

ALL_SITES = "*"
_REQUIRED_CLAIMS = ["exp", "iat", "sub"]
_SHOWN_CHARS = 64  # claims echoed in errors are the caller's own, but keep them short


class Role(StrEnum):
    """What a token may do; each role includes everything the roles below it may do."""

    VIEWER = "viewer"
    ENGINEER = "engineer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """0 for viewer, 1 for engineer, 2 for admin."""
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        """True if this role may call an endpoint that needs ``needed``."""
        return self.rank >= needed.rank


_RANKS = {Role.VIEWER: 0, Role.ENGINEER: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the verified claims of a token.

    ``sites`` is None for every site (claim ``sites: ["*"]``), else the sites allowed.
    """

    subject: str
    role: Role
    sites: frozenset[str] | None
    token_id: str | None

    def can_access_site(self, site: str) -> bool:
        """True if the token's ``sites`` claim covers ``site``."""
        return self.sites is None or site in self.sites


class AuthError(Exception):
    """A request's credentials are refused; ``detail`` is safe to send to the caller."""

    status_code = 401

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ForbiddenError(AuthError):
    """The token is valid but does not allow this request."""

    status_code = 403


class KeysUnavailableError(AuthError):
    """The JWKS endpoint cannot be reached or has no usable keys: not the caller's fault."""

    status_code = 503


class AuthSetupError(ValueError):
    """A key file or a token request is unusable; the message names the thing and the fix."""


_VERIFIED_MAX = 10_000


class TokenVerifier:
    """Checks signature, algorithm, issuer, audience, expiry and the Lineside claims."""

    def __init__(self, config: AuthConfig, *, jwks_timeout_s: float = 5.0) -> None:
        self._config = config
        self._verified: dict[str, tuple[Principal, float]] = {}
        self._jwks: jwt.PyJWKClient | None = None
        self._key: Any = None
        if config.algorithm == "HS256":
            assert config.hs256_secret is not None  # the config validator ensures it
            self._key = config.hs256_secret.get_secret_value().encode("utf-8")
        elif config.jwks_url is not None:
            self._jwks = jwt.PyJWKClient(
                config.jwks_url, lifespan=config.jwks_cache_s, timeout=jwks_timeout_s
            )
        else:
            assert config.rs256_public_key_file is not None
            self._key = load_public_key(config.rs256_public_key_file)

    def __repr__(self) -> str:
        return f"TokenVerifier(algorithm={self._config.algorithm}, issuer={self._config.issuer})"

    @property
    def may_block(self) -> bool:
        """True when verifying can wait on the network (keys from a JWKS endpoint)."""
        return self._jwks is not None

    def verify(self, token: str) -> Principal:
        """The principal of a valid ``token``; AuthError (401/503) says why it is not.

        A verified token is remembered until it expires (checking a signature and the
        claims is a tenth of the cost of a cached answer; dashboards send the same token
        all day). Only successes are remembered, each until its own ``exp`` + leeway.
        """
        now = time.time()
        known = self._verified.get(token)
        if known is not None:
            principal, valid_until = known
            if now < valid_until:
                return principal
            del self._verified[token]
        principal, exp = self._verify(token)
        if len(self._verified) >= _VERIFIED_MAX:
            self._verified.clear()  # crude but bounded: refilled by the next requests
        self._verified[token] = (principal, exp + self._config.leeway_s)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        algorithm = self._config.algorithm
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError(
                "token is malformed (expected a JWT: header.payload.signature)"
            ) from None
        if header.get("alg") != algorithm:
            raise AuthError(
                f"token algorithm {_shown(header.get('alg'))} is not accepted "
                f"(this API takes {algorithm})"
            )
        key = self._key if self._jwks is None else self._jwks_key(header)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._config.audience,
                issuer=self._config.issuer,
                leeway=self._config.leeway_s,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(_decode_error_detail(exc, token)) from None
        return _principal(claims), float(claims["exp"])

    def _jwks_key(self, header: dict[str, Any]) -> Any:
        assert self._jwks is not None
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("token header has no 'kid' (needed to pick a key from the JWKS)")
        try:
            # raises on an unreachable endpoint or a set without keys: our problem, not theirs
            self._jwks.get_signing_keys()
        except jwt.PyJWTError:
            raise KeysUnavailableError(
                "signing keys are unavailable (JWKS endpoint); try again later"
            ) from None
        try:
            return self._jwks.get_signing_key(kid).key
        except jwt.PyJWKClientConnectionError:
            raise KeysUnavailableError(
                "signing keys are unavailable (JWKS endpoint); try again later"
            ) from None
        except jwt.PyJWTError:
            raise AuthError(f"token key id {_shown(kid)} is not in the JWKS") from None


def create_token(
    config: AuthConfig,
    *,
    subject: str,
    role: Role,
    sites: list[str] | frozenset[str],
    ttl_s: float,
    now: datetime | None = None,
) -> str:
    """A signed token for ``subject``; AuthSetupError for a bad request or an unusable key.

    ``sites`` is a list of site ids or ``["*"]`` for every site. The token carries iss, aud,
    iat, nbf, exp, a random jti and, for RS256, the key's RFC 7638 thumbprint as ``kid``
    (what a JWKS built from the same key would name it).
    """
    if not subject.strip():
        raise AuthSetupError("subject is empty: name who the token is for")
    if ttl_s <= 0:
        raise AuthSetupError("ttl must be more than 0 seconds")
    if ttl_s > config.max_ttl_s:
        raise AuthSetupError(
            f"ttl {ttl_s:.0f} s is longer than max_ttl_s ({config.max_ttl_s} s); ask for less "
            "or raise api.auth.max_ttl_s"
        )
    site_list = _checked_sites(sites)
    issued = now if now is not None else datetime.now(UTC)
    if issued.tzinfo is None:
        raise AuthSetupError("now must be timezone-aware (UTC)")
    claims = {
        "iss": config.issuer,
        "aud": config.audience,
        "sub": subject,
        "role": Role(role).value,
        "sites": site_list,
        "iat": int(issued.timestamp()),
        "nbf": int(issued.timestamp()),
        "exp": int((issued + timedelta(seconds=ttl_s)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    if config.algorithm == "HS256":
        assert config.hs256_secret is not None
        return jwt.encode(claims, config.hs256_secret.get_secret_value(), algorithm="HS256")
    if config.rs256_private_key_file is None:
        raise AuthSetupError(
            "algorithm RS256: set api.auth.rs256_private_key_file to create tokens"
        )
    private_key = load_private_key(config.rs256_private_key_file)
    headers = {"kid": key_id(private_key.public_key())}
    return jwt.encode(claims, private_key, algorithm="RS256", headers=headers)


def key_id(public_key: RSAPublicKey) -> str:
    """The RFC 7638 JWK thumbprint of an RSA public key (base64url SHA-256)."""
    numbers = public_key.public_numbers()
    canonical = {"e": _b64_uint(numbers.e), "kty": "RSA", "n": _b64_uint(numbers.n)}
    digest = hashlib.sha256(json.dumps(canonical, separators=(",", ":")).encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def load_public_key(path: Path) -> RSAPublicKey:
    """The RSA public key in a PEM file; AuthSetupError names the file and the problem."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise AuthSetupError(f"rs256_public_key_file {path}: cannot read: {exc.strerror}") from None
    except ValueError:
        raise AuthSetupError(
            f"rs256_public_key_file {path}: not a PEM public key (-----BEGIN PUBLIC KEY-----)"
        ) from None
    if not isinstance(key, RSAPublicKey):
        raise AuthSetupError(f"rs256_public_key_file {path}: not an RSA key")
    return key


def load_private_key(path: Path) -> RSAPrivateKey:
    """The RSA private key in an unencrypted PEM file (the error never shows its content)."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise AuthSetupError(
            f"rs256_private_key_file {path}: cannot read: {exc.strerror}"
        ) from None
    except (ValueError, TypeError):
        raise AuthSetupError(
            f"rs256_private_key_file {path}: not an unencrypted PEM private key"
        ) from None
    if not isinstance(key, RSAPrivateKey):
        raise AuthSetupError(f"rs256_private_key_file {path}: not an RSA key")
    return key


def _principal(claims: dict[str, Any]) -> Principal:
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject:
        raise AuthError("token 'sub' claim is empty")
    if "role" not in claims:
        raise AuthError("token has no 'role' claim")
    try:
        role = Role(claims["role"])
    except ValueError:
        raise AuthError(
            f"token role {_shown(claims['role'])} is not viewer, engineer or admin"
        ) from None
    if "sites" not in claims:
        raise AuthError("token has no 'sites' claim (site ids, or [\"*\"] for every site)")
    sites = claims["sites"]
    if not isinstance(sites, list) or not all(isinstance(s, str) and s for s in sites):
        raise AuthError("token 'sites' claim must be a list of site ids, or [\"*\"]")
    if ALL_SITES in sites and len(sites) > 1:
        raise AuthError("token 'sites' claim mixes \"*\" with site ids")
    token_id = claims.get("jti")
    return Principal(
        subject=subject,
        role=role,
        sites=None if sites == [ALL_SITES] else frozenset(sites),
        token_id=token_id if isinstance(token_id, str) and token_id else None,
    )


def _decode_error_detail(exc: jwt.PyJWTError, token: str) -> str:
    # most specific classes first: InvalidSignatureError is a DecodeError
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "token expired"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "token not yet valid (nbf or iat in the future; check the clocks)"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "token signature is invalid"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"token has no '{exc.claim}' claim"
    if isinstance(exc, jwt.InvalidIssuerError):
        # the signature was checked before the claims, so these claims are genuine
        issuer = _unverified_claims(token).get("iss")
        return f"token issuer {_shown(issuer)} is not the configured issuer"
    if isinstance(exc, jwt.InvalidAudienceError):
        audience = _unverified_claims(token).get("aud")
        return f"token audience {_shown(audience)} does not include this API's audience"
    if isinstance(exc, jwt.InvalidIssuedAtError):
        return "token 'iat' claim is not a number"
    if isinstance(exc, jwt.exceptions.InvalidSubjectError):
        return "token 'sub' claim is not a string"
    if isinstance(exc, jwt.exceptions.InvalidJTIError):
        return "token 'jti' claim is not a string"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "token algorithm is not accepted"
    if isinstance(exc, jwt.DecodeError):
        return "token is malformed (expected a JWT: header.payload.signature)"
    return "token is invalid"


def _unverified_claims(token: str) -> dict[str, Any]:
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims if isinstance(claims, dict) else {}


def _checked_sites(sites: list[str] | frozenset[str]) -> list[str]:
    site_list = sorted(set(sites))
    if not site_list:
        raise AuthSetupError("no site: pass at least one site id, or '*' for every site")
    if ALL_SITES in site_list:
        if len(site_list) > 1:
            raise AuthSetupError("'*' already means every site; do not list other sites")
        return [ALL_SITES]
    for site in site_list:
        if not re.fullmatch(LEVEL_PATTERN, site):
            raise AuthSetupError(
                f"site {site!r} is not a site id: use 1-64 characters from A-Z a-z 0-9 '_' '-'"
            )
    return site_list


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def _b64_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
