"""TLS settings of an MQTT client (agent and collector) and the context they make."""

from __future__ import annotations

import ssl
from pathlib import Path

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
