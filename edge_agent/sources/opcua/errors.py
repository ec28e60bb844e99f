"""Exceptions of the OPC UA source: one hierarchy, messages that name the fix."""

from __future__ import annotations

from asyncua import ua


class OpcUaSourceError(Exception):
    """Base class of every error the OPC UA source raises."""


class NodeIdError(OpcUaSourceError, ValueError):
    """A configured node id cannot be parsed."""


class NamespaceUnknownError(OpcUaSourceError):
    """A ``nsu=`` node id names a namespace URI the server does not have."""

    status = "BadNodeIdUnknown"


class ServerTrustError(OpcUaSourceError):
    """The server's certificate is not trusted (pin mismatch, not in the trust folder)."""


class LoginRejectedError(OpcUaSourceError):
    """The server refused the session's user identity (anonymous, password or certificate)."""


class SessionLostError(OpcUaSourceError):
    """The session is unusable: watchdog silence, restart, lost transport, bad session."""


# Failures that mean "the server or the network is in trouble", not a bug of ours.
EXPECTED_FAILURES = (OpcUaSourceError, OSError, TimeoutError, ua.UaError)


def describe(exc: BaseException) -> str:
    """A one-line description of an exception for logs and ConnectionChange.detail."""
    if isinstance(exc, OpcUaSourceError):
        return str(exc)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
