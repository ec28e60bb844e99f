"""OPC UA part of the PLC checks: the session opens as configured, every tag's node reads.

Uses the agent's own session code (:func:`open_session`: security, trust, login) and
node id parsing, so the doctor fails exactly where the agent would.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from asyncua import ua

from edge_agent.config.models import Connection, Tag
from edge_agent.doctor.results import Check, fail, first_few, ok, warn
from edge_agent.sources.opcua import (
    LoginRejectedError,
    NamespaceUnknownError,
    OpcUaSession,
    OpcUaSourceError,
    ServerTrustError,
    open_session,
)
from edge_agent.sources.opcua.nodeids import parse_node_id
from edge_agent.sources.opcua.pki import CLIENT_CERT_FILE
from edge_agent.sources.opcua.session import read_parameters

_MISSING = frozenset({"BadNodeIdUnknown", "BadNodeIdInvalid", "BadNamespaceUnknown"})
_UNTRUSTED_CLIENT = frozenset(
    {
        ua.StatusCodes.BadSecurityChecksFailed,
        ua.StatusCodes.BadCertificateUntrusted,
        ua.StatusCodes.BadCertificateInvalid,
    }
)


async def check_opcua(
    connection: Connection,
    tags: list[tuple[str, Tag]],
    agent_id: str,
    data_dir: Path,
    timeout_s: float,
) -> list[Check]:
    """Open a session (as the agent would) and read every configured node once."""
    assert connection.opcua is not None
    name = f"plc {connection.id} session"
    settings = connection.opcua
    try:
        session = await asyncio.wait_for(
            open_session(connection.id, settings, agent_id, data_dir), timeout_s
        )
    except LoginRejectedError as exc:
        return [fail(name, str(exc), "fix auth (type, username, password) of this connection")]
    except ServerTrustError as exc:
        return [
            fail(
                name,
                str(exc),
                "put the server's certificate into security.trusted_server_certificates, or "
                "pin it with security.server_certificate_sha256",
            )
        ]
    except ua.UaStatusCodeError as exc:
        return [_status_failure(name, exc, data_dir)]
    except TimeoutError:
        return [
            fail(
                name,
                f"{settings.endpoint}: the port answers but no OPC UA session within "
                f"{timeout_s:g} s",
                "check that the port is the PLC's OPC UA server (not another service) and "
                "that the server is not overloaded",
            )
        ]
    except (OpcUaSourceError, OSError, ua.UaError) as exc:
        return [
            fail(name, f"{settings.endpoint}: {exc}", "check the connection's security settings")
        ]
    try:
        security = f"{settings.security.policy.value}/{settings.security.mode.value}"
        opened = ok(name, f"{settings.endpoint}: session open ({security}, {settings.auth.type})")
        return [opened, await _check_nodes(connection.id, session, tags, timeout_s)]
    finally:
        await session.close(graceful=True)


def _status_failure(name: str, exc: ua.UaStatusCodeError, data_dir: Path) -> Check:
    status = ua.StatusCode(exc.code).name
    if exc.code in _UNTRUSTED_CLIENT:
        return fail(
            name,
            f"the server refused the secure channel: {status}",
            "on the PLC's OPC UA server, trust the agent's client certificate "
            f"{data_dir / 'pki' / CLIENT_CERT_FILE} (the server usually lists it as rejected)",
        )
    return fail(name, f"the server answered {status}", "see the OPC UA server's diagnostics")


async def _check_nodes(
    connection_id: str, session: OpcUaSession, tags: list[tuple[str, Tag]], timeout_s: float
) -> Check:
    """One Read of every tag's node: missing nodes fail (named), bad values warn."""
    name = f"plc {connection_id} tags"
    missing: list[str] = []
    resolved: list[tuple[str, ua.NodeId]] = []
    for tag_id, tag in tags:
        assert isinstance(tag.address, str)
        try:
            resolved.append((tag_id, parse_node_id(tag.address).resolve(session.namespaces)))
        except NamespaceUnknownError:
            missing.append(f"{tag_id} ({tag.address}: namespace unknown)")
    unreadable: list[str] = []
    chunk = session.max_nodes_per_read
    try:
        for start in range(0, len(resolved), chunk):
            part = resolved[start : start + chunk]
            params = read_parameters([node for _, node in part])
            values = await asyncio.wait_for(session.read(params), timeout_s)
            for (tag_id, node), value in zip(part, values, strict=True):
                status = value.StatusCode
                if status.is_good():
                    continue
                text = f"{tag_id} ({node.to_string()}: {status.name})"
                (missing if status.name in _MISSING else unreadable).append(text)
    except (TimeoutError, OSError, ua.UaError) as exc:
        return fail(
            name,
            f"reading {len(resolved)} nodes failed: {exc!r}",
            "lower max_nodes_per_read, or see the server's diagnostics",
        )
    if missing:
        return fail(
            name,
            f"{len(missing)} of {len(tags)} tags have no node on the server: {first_few(missing)}",
            "correct these tags' address (node id); list the server's nodes with "
            f"edge-agent discover {session.config.endpoint}",
        )
    if unreadable:
        return warn(
            name,
            f"{len(unreadable)} of {len(tags)} tags read without a good value: "
            f"{first_few(unreadable)}",
            "the nodes exist; check on the PLC why they have no good value (access rights, "
            "not initialised)",
        )
    return ok(name, f"all {len(tags)} tags read")
