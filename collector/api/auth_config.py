"""Configuration of the HTTP API's bearer tokens and rate limits (pydantic v2).

Every field has a description: these models become the ``api`` section of the collector's
configuration schema. The HS256 secret is a ``SecretStr`` and validation errors never echo
their input (``hide_input_in_errors``), so it cannot leak through ``repr`` or an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import limits
from limits.storage import SCHEMES, MovingWindowSupport
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

MIN_HS256_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key at least as long as the hash output
RATE_LIMIT_SYNTAX = (
    "write limits like '50/second;1500/minute' (amount/unit, unit second, minute, hour or "
    "day; several joined by ';')"
)


class _Section(BaseModel):
    # hide_input_in_errors: a refused value may be (or contain) the secret
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class AuthConfig(_Section):
    """How the API checks bearer tokens (JWT) and how ``oee-collector token create`` signs."""

    issuer: str = Field(
        "lineside", min_length=1, description="Required 'iss' claim; also set on created tokens"
    )
    audience: str = Field(
        "lineside-api",
        min_length=1,
        description="Required 'aud' claim (the token must name this API); also set on "
        "created tokens",
    )
    algorithm: Literal["HS256", "RS256"] = Field(
        "HS256",
        description="The only signature algorithm accepted: HS256 (shared secret) or RS256 "
        "(public key file or JWKS). Tokens signed otherwise, or unsigned, are refused",
    )
    hs256_secret: SecretStr | None = Field(
        None,
        description="HS256 shared secret, at least 32 bytes of random "
        "(openssl rand -base64 48); use ${credential:NAME} or ${NAME}. Never logged",
    )
    rs256_public_key_file: Path | None = Field(
        None, description="RS256: PEM file with the public key that verifies tokens"
    )
    rs256_private_key_file: Path | None = Field(
        None,
        description="RS256: PEM file (unencrypted PKCS#8 or PKCS#1) with the private key; "
        "only `oee-collector token create` reads it, the API never does",
    )
    jwks_url: str | None = Field(
        None,
        pattern=r"^https?://",
        description="RS256: http(s) URL of a JWKS document (e.g. your identity provider's); "
        "keys are cached and chosen by the token's 'kid' header",
    )
    jwks_cache_s: float = Field(
        300.0, gt=0, le=86_400, description="How long a fetched JWKS document is reused"
    )
    leeway_s: float = Field(
        30.0,
        ge=0,
        le=600,
        description="Clock difference tolerated when checking exp, nbf and iat",
    )
    max_ttl_s: int = Field(
        30 * 86_400,
        ge=60,
        description="Longest lifetime `oee-collector token create` grants, in seconds",
    )

    @model_validator(mode="after")
    def _keys_match_algorithm(self) -> AuthConfig:
        if self.algorithm == "HS256":
            if self.hs256_secret is None:
                raise ValueError(
                    "algorithm HS256 needs hs256_secret (at least 32 random bytes, e.g. "
                    "${credential:api-hs256-secret}); or set algorithm: RS256 with a key"
                )
            secret_bytes = len(self.hs256_secret.get_secret_value().encode("utf-8"))
            if secret_bytes < MIN_HS256_SECRET_BYTES:
                # the message names neither the secret nor its length
                raise ValueError(
                    f"hs256_secret is shorter than {MIN_HS256_SECRET_BYTES} bytes; generate "
                    "one with: openssl rand -base64 48"
                )
        else:
            if self.rs256_public_key_file is None and self.jwks_url is None:
                raise ValueError(
                    "algorithm RS256 needs rs256_public_key_file or jwks_url to verify tokens"
                )
            if self.rs256_public_key_file is not None and self.jwks_url is not None:
                raise ValueError(
                    "set only one of rs256_public_key_file and jwks_url (which key would win?)"
                )
        return self


class RateLimitConfig(_Section):
    """Requests allowed per token and per client address before the API answers 429."""

    enabled: bool = Field(True, description="Apply the limits below; false turns them off")
    per_token: str = Field(
        "50/second;1500/minute",
        description="Limits per token (its 'jti', else its subject), in the `limits` syntax: "
        "'50/second;1500/minute'",
    )
    per_client: str = Field(
        "100/second;3000/minute",
        description="Limits per client address, counted before the token is checked (so "
        "token guessing is slowed down too); higher than per_token because several users "
        "may share an address (NAT, proxy)",
    )
    storage_url: SecretStr = Field(
        SecretStr("memory://"),
        json_schema_extra={"default": "memory://"},  # else the schema shows "**********"
        description="Where the counters live: memory:// (per process: each worker counts "
        "alone) or redis://[:password@]host:port/db (shared by every worker and "
        "collector). Secret because a Redis URL may carry a password",
    )
    storage_timeout_s: float = Field(
        0.25,
        gt=0,
        le=10,
        description="Redis connect and command timeout; when the storage fails the API lets "
        "requests through unchecked (fail open) and counts them",
    )

    @field_validator("per_token", "per_client")
    @classmethod
    def _parses(cls, value: str) -> str:
        try:
            limits.parse_many(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate limit: {RATE_LIMIT_SYNTAX}") from None
        return value

    @field_validator("storage_url")
    @classmethod
    def _supported_storage(cls, value: SecretStr) -> SecretStr:
        scheme = urlsplit(value.get_secret_value()).scheme
        storage = SCHEMES.get(scheme)
        if storage is None or not issubclass(storage, MovingWindowSupport):
            # the scheme only: the rest of the URL may hold a password
            raise ValueError(
                f"storage_url scheme {scheme!r} is not supported; use memory:// or "
                "redis://host:port/db"
            )
        return value
