"""MQTT client settings shared by the agent and the collector: the broker address and
TLS, and the TLS context they make."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TlsConfig(BaseModel):
    """TLS to the broker (TLS 1.2 or newer); a client certificate enables mutual TLS."""

    model_config = ConfigDict(extra="forbid")

    ca_file: Path | None = Field(
        None,
        description="PEM file of the CA(s) that signed the broker's certificate; default: the "
        "system's trusted CAs. The broker's certificate must name the configured host",
    )
    cert_file: Path | None = Field(
        None, description="PEM client certificate for mutual TLS (needs key_file)"
    )
    key_file: Path | None = Field(
        None,
        description="PEM private key of cert_file (unencrypted; keep it readable only by "
        "the service's user)",
    )

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls: cert_file and key_file go together; set both or neither")
        return self


class BrokerAddress:
    """``resolved_port`` and ``broker`` for a settings model with ``host``, ``port`` and
    ``tls`` fields (mixed into the agent's and the collector's MQTT settings)."""

    if TYPE_CHECKING:  # declared by the model it is mixed into (not fields here: pydantic
        host: str  # would take them over and reorder the model's fields)
        port: int | None
        tls: TlsConfig | None

    @property
    def resolved_port(self) -> int:
        """``port``, or the protocol default (8883 with TLS, 1883 without)."""
        if self.port is not None:
            return self.port
        return 8883 if self.tls is not None else 1883

    @property
    def broker(self) -> str:
        """``host:port`` for logs and status (never credentials)."""
        return f"{self.host}:{self.resolved_port}"


def client_tls_context(tls: TlsConfig) -> ssl.SSLContext:
    """A TLS 1.2+ client context with the configured CA and client certificate.

    Raises OSError or ssl.SSLError when a file cannot be loaded (callers name the setting).
    """
    context = ssl.create_default_context(
        cafile=str(tls.ca_file) if tls.ca_file is not None else None
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.cert_file is not None and tls.key_file is not None:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    return context
