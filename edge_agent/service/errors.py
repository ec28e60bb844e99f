"""Errors of the service shell (health endpoint, systemd integration)."""

from __future__ import annotations


class ServiceError(Exception):
    """Base class for errors of ``edge_agent.service``."""


class HealthServerError(ServiceError):
    """The health endpoint cannot start (address in use, bad address, no permission)."""
