"""Configuration of the agent's local health endpoint (the ``health:`` section)."""

from __future__ import annotations

import ipaddress
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

# host:port or [ipv6]:port; the host is a name or an IP literal.
_LISTEN = re.compile(r"^(?:\[(?P<ipv6>[^\]]+)\]|(?P<host>[^:\[\]]+)):(?P<port>\d{1,5})$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")


def parse_listen(text: str) -> tuple[str, int]:
    """Split ``host:port`` or ``[ipv6]:port`` into (host, port); raise ValueError if invalid.

    The returned host has no brackets (``"::1"``). Port 0 lets the OS choose.
    """
    match = _LISTEN.match(text.strip())
    if match is None:
        raise ValueError(
            f"{text!r} is not host:port (examples: 127.0.0.1:9108, [::1]:9108, 0.0.0.0:9108)"
        )
    port = int(match.group("port"))
    if port > 65535:
        raise ValueError(f"{text!r}: port {port} is out of range (0-65535)")
    if match.group("ipv6") is not None:
        host = match.group("ipv6")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{text!r}: {host!r} is not an IPv6 address") from None
        return host, port
    host = match.group("host")
    if host.replace(".", "").isdigit():
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"{text!r}: {host!r} is not an IPv4 address") from None
    elif not _HOSTNAME.match(host):
        raise ValueError(f"{text!r}: {host!r} is not a valid host name")
    return host, port


class HealthConfig(BaseModel):
    """The local HTTP endpoint: /healthz, /readyz, /status, /metrics."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        True, description="Serve /healthz, /readyz, /status and /metrics over HTTP"
    )
    listen: str = Field(
        "127.0.0.1:9108",
        description="host:port to listen on ([::1]:9108 for IPv6); no authentication, so "
        "keep it on loopback unless a firewall restricts who can reach it",
    )

    @field_validator("listen")
    @classmethod
    def _valid_listen(cls, value: str) -> str:
        parse_listen(value)
        return value.strip()

    @property
    def host(self) -> str:
        """The host part of ``listen``, without IPv6 brackets."""
        return parse_listen(self.listen)[0]

    @property
    def port(self) -> int:
        """The port part of ``listen``."""
        return parse_listen(self.listen)[1]
