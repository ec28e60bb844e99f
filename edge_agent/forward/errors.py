"""Exceptions of the forwarder: one hierarchy; messages name the broker and the fix."""

from __future__ import annotations


class ForwardError(Exception):
    """Base of every error the MQTT forwarder raises."""


class BrokerConnectError(ForwardError):
    """Connecting to the broker failed (network, TLS, refused, or no CONNACK in time)."""


class BrokerRefusedError(BrokerConnectError):
    """The broker answered the CONNECT with a failure reason (credentials, client id, ...)."""

    def __init__(self, broker: str, reason: str, hint: str) -> None:
        self.broker = broker
        self.reason = reason
        super().__init__(f"broker {broker} refused the connection: {reason}; {hint}")
