"""One OPC UA session: connect with security and login, read limits, watch the server.

:func:`open_session` connects an asyncua client as the configuration says, checks the
server certificate before trusting it (see :mod:`.pki`), and reads what every new
session must know afresh: the NamespaceArray (``nsu=`` ids are resolved against it),
the server's operation limits and its StartTime (a change means it restarted).
The session is unusable once :attr:`OpcUaSession.lost` is set; the source then closes
it and opens a new one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from asyncua import Client, ua
from asyncua.crypto import security_policies, uacrypto

from edge_agent.config.models import OpcUaConnection, SecurityMode, SecurityPolicy
from edge_agent.sources.opcua import _publish_decode
from edge_agent.sources.opcua.errors import LoginRejectedError, OpcUaSourceError, SessionLostError
from edge_agent.sources.opcua.pki import (
    application_uri,
    check_server_trust,
    ensure_client_certificate,
    fingerprint,
    first_certificate,
)

log = logging.getLogger("lineside.agent.opcua")

DEFAULT_MAX_NODES_PER_READ = 500
DEFAULT_MAX_ITEMS_PER_CALL = 1000
READS_IN_FLIGHT = 4
# asyncua's own supervisor only has to report a lost transport; liveness is checked by
# our watchdog (the client's default 1 s probe declares busy servers dead).
_CLIENT_WATCHDOG_S = 3600.0
_SESSION_TIMEOUT_MS = 60_000  # how long a server keeps a session we lost track of

_POLICIES: dict[SecurityPolicy, type[security_policies.SecurityPolicy]] = {
    SecurityPolicy.BASIC256SHA256: security_policies.SecurityPolicyBasic256Sha256,
    SecurityPolicy.AES256_SHA256_RSAPSS: security_policies.SecurityPolicyAes256Sha256RsaPss,
}
_MODES = {
    SecurityMode.SIGN: ua.MessageSecurityMode.Sign,
    SecurityMode.SIGN_AND_ENCRYPT: ua.MessageSecurityMode.SignAndEncrypt,
}
_STATUS_NODES = [
    ua.NodeId(ua.ObjectIds.Server_NamespaceArray),
    ua.NodeId(ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead),
    ua.NodeId(ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall),
    ua.NodeId(ua.ObjectIds.Server_ServerStatus_StartTime),
]
# ActivateSession answers that mean "this user may not log in" (not a network problem).
_LOGIN_REFUSED = frozenset(
    {
        ua.StatusCodes.BadUserAccessDenied,
        ua.StatusCodes.BadIdentityTokenRejected,
        ua.StatusCodes.BadIdentityTokenInvalid,
    }
)
_WATCHDOG_NODES = [
    ua.NodeId(ua.ObjectIds.Server_ServerStatus_StartTime),
    ua.NodeId(ua.ObjectIds.Server_ServerStatus_CurrentTime),
]


class _QuietPublishLoopFilter(logging.Filter):
    """Drop asyncua's traceback when its publish loop sees the connection go away.

    The loss is reported (once, as a key=value line) by the source itself; asyncua
    logs each such failure at ERROR with a traceback, which reads like a crash.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        lost = isinstance(exc, ConnectionError | TimeoutError | ua.UaStatusCodeError)
        return not (lost and str(record.msg).startswith("Publish iteration crashed"))


logging.getLogger("asyncua.client.ua_session.UaSession").addFilter(_QuietPublishLoopFilter())


class OpcUaSession:
    """A connected, activated session and what was learned about the server."""

    def __init__(
        self,
        client: Client,
        connection_id: str,
        config: OpcUaConnection,
        namespaces: list[str],
        max_nodes_per_read: int,
        max_items_per_call: int,
        start_time: datetime | None,
    ) -> None:
        self.client = client
        self.connection_id = connection_id
        self.config = config
        self.namespaces = namespaces
        self.max_nodes_per_read = max_nodes_per_read
        self.max_items_per_call = max_items_per_call
        self.start_time = start_time
        self.lost = asyncio.Event()
        self.lost_reason = ""
        self.read_gate = asyncio.Semaphore(READS_IN_FLIGHT)
        client.connection_lost_callback = self._on_connection_lost

    def mark_lost(self, reason: str) -> None:
        """Declare the session unusable (first reason wins)."""
        if not self.lost.is_set():
            self.lost_reason = reason
            self.lost.set()

    async def _on_connection_lost(self, exc: Exception) -> None:
        self.mark_lost(f"connection lost: {exc!r}")

    async def read_values(
        self, node_ids: Sequence[ua.NodeId], *, gated: bool = True
    ) -> list[ua.DataValue]:
        """One Read of the Value attribute (callers chunk to ``max_nodes_per_read``).

        ``gated`` reads wait for one of READS_IN_FLIGHT slots; the watchdog's read does
        not, so that a busy poll cannot make a healthy server look silent.
        """
        return await self.read(read_parameters(node_ids), gated=gated)

    async def read(self, params: ua.ReadParameters, *, gated: bool = True) -> list[ua.DataValue]:
        """One Read with prepared ``params`` (a poll group reuses them every poll)."""
        if not gated:
            return await self.client.uaclient.read(params)
        async with self.read_gate:
            return await self.client.uaclient.read(params)

    async def read_namespaces(self) -> list[str]:
        """Re-read the NamespaceArray (it may change while a session lives)."""
        (data,) = await self.read_values([ua.NodeId(ua.ObjectIds.Server_NamespaceArray)])
        self.namespaces = list(data.Value.Value) if data.Value is not None else []
        return self.namespaces

    async def check_alive(self, timeout_s: float) -> None:
        """Read the server's StartTime and CurrentTime within ``timeout_s``.

        Raises SessionLostError when the read fails or times out, or when StartTime
        changed (the server restarted behind an open connection).
        """
        try:
            start, _current = await asyncio.wait_for(
                self.read_values(_WATCHDOG_NODES, gated=False), timeout_s
            )
        except (TimeoutError, OSError, ua.UaError) as exc:
            raise SessionLostError(f"watchdog read failed: {exc!r}") from None
        if not start.StatusCode.is_good():
            raise SessionLostError(f"watchdog read returned {start.StatusCode.name}")
        value = start.Value.Value if start.Value is not None else None
        if self.start_time is not None and value != self.start_time:
            raise SessionLostError(f"server restarted (StartTime {self.start_time} -> {value})")

    async def close(self, *, graceful: bool) -> None:
        """Close the session (and its subscriptions); never blocks for long."""
        timeout_s = min(self.config.timeout_s, 2.0) if graceful else 0.5
        try:
            await asyncio.wait_for(self.client.disconnect(), timeout_s)
        except Exception as exc:  # a dead peer: only the socket is left to close
            log.debug(
                "event=opcua_disconnect_incomplete connection=%s error=%r", self.connection_id, exc
            )
        finally:
            self.client.disconnect_socket()


async def open_session(
    connection_id: str, config: OpcUaConnection, agent_id: str, data_dir: Path
) -> OpcUaSession:
    """Connect, secure, log in and read the server's namespaces, limits and StartTime."""
    client = Client(
        config.endpoint, timeout=config.timeout_s, watchdog_intervall=_CLIENT_WATCHDOG_S
    )
    client.application_uri = application_uri(agent_id)
    client.product_uri = "urn:lineside:edge-agent"
    client.name = client.description = f"Lineside edge agent {agent_id}"
    client.session_timeout = _SESSION_TIMEOUT_MS
    _publish_decode.install(client.uaclient.session)  # this client only, not the simulators
    try:
        await _configure_security(client, connection_id, config, data_dir)
        await _configure_login(client, config)
        await _connect(client, connection_id, config)
    except BaseException:
        client.disconnect_socket()
        raise
    session = OpcUaSession(
        client,
        connection_id,
        config,
        [],
        DEFAULT_MAX_NODES_PER_READ,
        DEFAULT_MAX_ITEMS_PER_CALL,
        None,
    )
    try:
        await asyncio.wait_for(_read_server_facts(session), config.timeout_s)
    except BaseException:
        await session.close(graceful=False)
        raise
    log.info(
        "event=opcua_session_opened connection=%s endpoint=%s policy=%s mode=%s auth=%s "
        "namespaces=%d max_nodes_per_read=%d",
        connection_id,
        config.endpoint,
        config.security.policy.value,
        config.security.mode.value,
        config.auth.type,
        len(session.namespaces),
        session.max_nodes_per_read,
    )
    return session


async def _read_server_facts(session: OpcUaSession) -> None:
    namespaces, max_read, max_items, start = await session.read_values(_STATUS_NODES)
    if not namespaces.StatusCode.is_good() or namespaces.Value is None:
        raise OpcUaSourceError(f"cannot read the NamespaceArray: {namespaces.StatusCode.name}")
    session.namespaces = list(namespaces.Value.Value)
    # The server's limit is a ceiling, not a target: smaller Reads with several in
    # flight let the server encode one while the agent decodes another (a 10,700-node
    # poll: 18k values/s in two Reads of 5,350, more in chunks of 500).
    server_max = _limit(max_read, 0)
    wanted = session.config.max_nodes_per_read or DEFAULT_MAX_NODES_PER_READ
    session.max_nodes_per_read = min(wanted, server_max) if server_max else wanted
    session.max_items_per_call = _limit(max_items, DEFAULT_MAX_ITEMS_PER_CALL)
    if start.StatusCode.is_good() and start.Value is not None:
        session.start_time = start.Value.Value


def read_parameters(node_ids: Sequence[ua.NodeId]) -> ua.ReadParameters:
    """A Read of the Value attribute of ``node_ids`` with source and server timestamps."""
    params = ua.ReadParameters()
    params.TimestampsToReturn = ua.TimestampsToReturn.Both
    params.NodesToRead = [
        ua.ReadValueId(NodeId=node_id, AttributeId=ua.AttributeIds.Value) for node_id in node_ids
    ]
    return params


def _limit(data: ua.DataValue, default: int) -> int:
    """An OperationLimits value; 0 or unreadable means "no limit given": use ``default``."""
    if data.StatusCode.is_good() and data.Value is not None and data.Value.Value:
        return int(data.Value.Value)
    return default


async def _configure_security(
    client: Client, connection_id: str, config: OpcUaConnection, data_dir: Path
) -> None:
    security = config.security
    if security.policy is SecurityPolicy.NONE:
        return
    policy = _POLICIES[security.policy]
    mode = _MODES[security.mode]
    if security.client_certificate is not None and security.client_key is not None:
        cert_path, key_path = security.client_certificate, security.client_key
    else:
        pair = await asyncio.to_thread(
            ensure_client_certificate, data_dir / "pki", client.application_uri
        )
        cert_path, key_path = pair.cert_path, pair.key_path
    endpoints = await asyncio.wait_for(client.connect_and_get_server_endpoints(), config.timeout_s)
    chosen = [e for e in endpoints if e.SecurityPolicyUri == policy.URI and e.SecurityMode == mode]
    if not chosen:
        offered = sorted(
            {f"{e.SecurityPolicyUri.rsplit('#', 1)[-1]}/{e.SecurityMode.name}" for e in endpoints}
        )
        raise OpcUaSourceError(
            f"connection {connection_id!r}: the server offers no endpoint with security "
            f"{security.policy.value}/{security.mode.value}; it offers {', '.join(offered)}"
        )
    server_der = first_certificate(chosen[0].ServerCertificate)
    await asyncio.to_thread(
        check_server_trust,
        server_der,
        pin_sha256=security.server_certificate_sha256,
        trust_dir=security.trusted_server_certificates,
        remembered_path=data_dir / "pki" / "servers" / f"{connection_id}.der",
    )
    await client.set_security(
        policy, str(cert_path), str(key_path), server_certificate=server_der, mode=mode
    )


async def _connect(client: Client, connection_id: str, config: OpcUaConnection) -> None:
    """Open the channel and the session; a refused login becomes LoginRejectedError."""
    try:
        await asyncio.wait_for(client.connect(), 4 * config.timeout_s)
    except ua.UaStatusCodeError as exc:
        if exc.code not in _LOGIN_REFUSED:
            raise
        status = ua.StatusCode(exc.code).name
        auth = config.auth
        if auth.type == "certificate" and client.user_certificate is not None:
            sha256 = fingerprint(uacrypto.der_from_x509(client.user_certificate))
            who = f"the login with user certificate {auth.user_certificate} (SHA-256 {sha256})"
            fix = "the server must trust this user certificate"
        elif auth.type == "username":
            who = f"the login of user {auth.username!r}"
            fix = "check the user name and password"
        else:
            who = "an anonymous login"
            fix = "configure auth type username or certificate"
        if exc.code == ua.StatusCodes.BadIdentityTokenRejected:
            fix = f"the endpoint does not offer {auth.type} logins"
        elif exc.code == ua.StatusCodes.BadIdentityTokenInvalid and auth.type == "certificate":
            fix = "check that user_key is the private key of user_certificate"
        raise LoginRejectedError(
            f"connection {connection_id!r}: the server refused {who} with {status}; {fix}"
        ) from None


async def _configure_login(client: Client, config: OpcUaConnection) -> None:
    auth = config.auth
    if auth.type == "username" and auth.username is not None and auth.password is not None:
        client.set_user(auth.username)
        client.set_password(auth.password.get_secret_value())
    elif auth.type == "certificate" and auth.user_certificate and auth.user_key:
        await client.load_client_certificate(str(auth.user_certificate))
        await client.load_private_key(auth.user_key)
