"""The OPC UA face of the PLC simulator: an asyncua server over the machine models.

What a client sees is described in :mod:`.address_space` (the node tree), :mod:`.values`
(values, timestamps and bad-status faults) and :mod:`.transport` (hang and slow
faults). Wire it to a simulation with ``sim.subscribe(face.apply)``.

Faults as a client sees them:

* hang: connections stay open, nothing is answered until it ends; requests time out.
* slow: every response (and publish response) arrives ``response_delay_s()`` late.
* bad tag: reads of that variable return the status code, with no value; subscribers
  get a notification with it; the value returns when the fault ends.
* ``drop_connections()``: every TCP connection is closed by the server.
* ``restart()``: the server stops (connections closed, sessions and subscriptions
  gone), stays down ``downtime_s``, and starts on the same port with the current
  values. ``shift_namespace=True`` registers ``urn:lineside:simulator:shift`` first, so
  the scenario's namespace gets the next index (2 -> 3) until the next plain restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from asyncua import ua

from simulators.faces.opcua.address_space import (
    AddressSpaceIndex,
    MethodCallback,
    build_address_space,
)
from simulators.faces.opcua.certificates import default_hostnames, ensure_server_certificate
from simulators.faces.opcua.errors import OpcUaFaceError
from simulators.faces.opcua.logins import UserManager
from simulators.faces.opcua.monitoring import keep_scalar_values_uncopied
from simulators.faces.opcua.transport import FaultGate, SimulatorServer
from simulators.faces.opcua.values import ValueWriter
from simulators.faults.state import FaceName, FaultState
from simulators.runtime import Simulation, TagUpdate
from simulators.tags import opcua_path, value_of

log = logging.getLogger("lineside.sim.opcua")

DEFAULT_APPLICATION_URI = "urn:lineside:plc-sim:opcua"
SHIFT_NAMESPACE_URI = "urn:lineside:simulator:shift"
FAULT_POLL_S = 0.2  # how soon timed bad-status faults start/end without any request


def default_cert_dir() -> Path:
    """$XDG_STATE_HOME/lineside/opcua (default ~/.local/state/lineside/opcua)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "lineside" / "opcua"


class SecurityPolicy(StrEnum):
    """Endpoints the server offers (policy and message security mode)."""

    NONE = "None"
    BASIC256SHA256_SIGN = "Basic256Sha256_Sign"
    BASIC256SHA256_SIGN_AND_ENCRYPT = "Basic256Sha256_SignAndEncrypt"
    AES256_SHA256_RSAPSS_SIGN = "Aes256_Sha256_RsaPss_Sign"
    AES256_SHA256_RSAPSS_SIGN_AND_ENCRYPT = "Aes256_Sha256_RsaPss_SignAndEncrypt"

    @property
    def asyncua_type(self) -> ua.SecurityPolicyType:
        return _POLICY_TYPES[self]


_POLICY_TYPES = {
    SecurityPolicy.NONE: ua.SecurityPolicyType.NoSecurity,
    SecurityPolicy.BASIC256SHA256_SIGN: ua.SecurityPolicyType.Basic256Sha256_Sign,
    SecurityPolicy.BASIC256SHA256_SIGN_AND_ENCRYPT: (
        ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt
    ),
    SecurityPolicy.AES256_SHA256_RSAPSS_SIGN: ua.SecurityPolicyType.Aes256Sha256RsaPss_Sign,
    SecurityPolicy.AES256_SHA256_RSAPSS_SIGN_AND_ENCRYPT: (
        ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt
    ),
}


@dataclass(frozen=True)
class OpcUaSecurity:
    """Which endpoints to offer and who may log in.

    ``users`` maps user name -> password; ``user_certificates`` are the DER bytes of the
    X.509 user certificates that may log in (X509IdentityToken). With either, anonymous
    sessions are refused. Passwords are never logged (excluded from repr).
    """

    policies: Sequence[SecurityPolicy | str] = tuple(SecurityPolicy)
    users: Mapping[str, str] = field(default_factory=dict, repr=False)
    user_certificates: Sequence[bytes] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "policies", parse_policies(self.policies))
        object.__setattr__(self, "users", dict(self.users))
        object.__setattr__(self, "user_certificates", tuple(self.user_certificates))
        if self.user_certificates and all(p is SecurityPolicy.NONE for p in self.endpoints):
            # The client signs the token with the policy of a secure endpoint.
            raise ValueError(
                "OPC UA user certificates need a secure endpoint to sign the login with; "
                "offer basic256sha256 or aes256sha256rsapss as well"
            )

    @property
    def needs_certificate(self) -> bool:
        """Secure endpoints need one; so do passwords (encrypted with it)."""
        return bool(self.users) or any(p is not SecurityPolicy.NONE for p in self.endpoints)

    @property
    def endpoints(self) -> tuple[SecurityPolicy, ...]:
        """The policies, parsed (``policies`` holds them so after __post_init__)."""
        return tuple(SecurityPolicy(p) for p in self.policies)

    @property
    def identity_tokens(self) -> list[type]:
        """The asyncua identity token types the endpoints advertise."""
        tokens: list[type] = []
        if self.users:
            tokens.append(ua.UserNameIdentityToken)
        if self.user_certificates:
            tokens.append(ua.X509IdentityToken)
        return tokens or [ua.AnonymousIdentityToken]

    @property
    def login(self) -> str:
        """How clients log in, for humans."""
        kinds = ["user/password"] if self.users else []
        kinds += ["user certificate"] if self.user_certificates else []
        return " or ".join(kinds) or "anonymous"


def parse_policies(names: Sequence[SecurityPolicy | str]) -> tuple[SecurityPolicy, ...]:
    """Policies from names, case and '_'/'-' insensitive.

    A policy name without a mode (``basic256sha256``, ``aes256sha256rsapss``) means
    both Sign and SignAndEncrypt; ``none`` is the unsecured endpoint.
    """
    by_key: dict[str, list[SecurityPolicy]] = {_key(p.value): [p] for p in SecurityPolicy}
    for base in ("Basic256Sha256", "Aes256_Sha256_RsaPss"):
        by_key[_key(base)] = [p for p in SecurityPolicy if p.value.startswith(base + "_")]
    chosen: list[SecurityPolicy] = []
    for name in names:
        found = by_key.get(_key(str(name)))
        if found is None:
            valid = ", ".join(["none", "basic256sha256", "aes256sha256rsapss"])
            raise ValueError(
                f"OPC UA security policy {name!r} is unknown; use {valid} "
                "(optionally with _Sign or _SignAndEncrypt)"
            )
        chosen += found
    if not chosen:
        raise ValueError("OPC UA security: give at least one security policy")
    return tuple(dict.fromkeys(chosen))


def _key(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


class OpcUaFace:
    """Serves a :class:`Simulation` over OPC UA (asyncua), with injectable faults."""

    name: FaceName = FaceName.OPCUA

    def __init__(
        self,
        sim: Simulation,
        host: str = "127.0.0.1",
        port: int = 4840,
        faults: FaultState | None = None,
        security: OpcUaSecurity | None = None,
        cert_dir: Path | None = None,
        application_uri: str = DEFAULT_APPLICATION_URI,
        source_time: Callable[[datetime], datetime] | None = None,
    ) -> None:
        """``source_time`` maps simulated time to the SourceTimestamp served (default:
        the simulated time itself)."""
        self.sim = sim
        self.source_time = source_time
        self.host = host
        self.port = port
        self.faults = faults if faults is not None else FaultState()
        self.security = security if security is not None else OpcUaSecurity()
        self.cert_dir = cert_dir if cert_dir is not None else default_cert_dir()
        self.application_uri = application_uri
        self.namespace_uri = sim.scenario.namespace_uri
        self.namespace_index: int | None = None
        self.build_s = 0.0  # seconds the last address space took to build
        self._server: SimulatorServer | None = None
        self._writer: ValueWriter | None = None
        self._index: AddressSpaceIndex | None = None
        self._watcher: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def connection_count(self) -> int:
        """Open client connections (TCP) right now."""
        return self._server.connection_count() if self._server is not None else 0

    async def start(self) -> None:
        if self._server is None:
            await self._start_server(shift_namespace=False)

    async def stop(self) -> None:
        await self._stop_server()

    def apply(self, updates: list[TagUpdate]) -> None:
        """Serve changed values (sync; ignored while the server is down)."""
        if self._writer is not None:
            self._writer.apply(updates)

    async def drop_connections(self) -> int:
        if self._server is None:
            return 0
        count = self._server.close_connections()
        log.info("event=opcua_connections_dropped count=%d", count)
        return count

    async def restart(self, *, shift_namespace: bool = False, downtime_s: float = 0.0) -> None:
        await self._stop_server()
        if downtime_s > 0:
            await asyncio.sleep(downtime_s)
        await self._start_server(shift_namespace=shift_namespace)

    def endpoints(self) -> list[str]:
        """The server URL with a note of its security policies and login."""
        policies = ", ".join(p.value for p in self.security.endpoints)
        return [f"{self.url} (security: {policies}; login: {self.security.login})"]

    # -- internals ---------------------------------------------------------------------

    async def _start_server(self, *, shift_namespace: bool) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        security = self.security
        gate = FaultGate(lambda: self.faults, self._on_request)
        logins = security.users or security.user_certificates
        users = UserManager(security.users, security.user_certificates) if logins else None
        keep_scalar_values_uncopied()
        server = SimulatorServer(gate, users)
        await server.init()
        server.set_endpoint(self.url)
        server.set_server_name(f"Lineside PLC simulator ({self.sim.scenario.scenario})")
        server.product_uri = "urn:lineside:plc-sim"
        await server.set_application_uri(self.application_uri)
        server.allow_remote_admin(False)
        server.set_security_policy([p.asyncua_type for p in self.security.endpoints])
        server.set_identity_tokens(self.security.identity_tokens)
        if self.security.needs_certificate:  # key generation: off the event loop
            files = await asyncio.to_thread(
                ensure_server_certificate,
                self.cert_dir,
                self.application_uri,
                default_hostnames(self.host),
            )
            await server.load_certificate(str(files.cert_path))
            await server.load_private_key(str(files.key_path))
        if shift_namespace:
            await server.register_namespace(SHIFT_NAMESPACE_URI)
        ns = await server.register_namespace(self.namespace_uri)
        # Seconds of CPU for big scenarios: in a thread so that the other face and the
        # simulation keep running during a restart. Only the new, not yet listening
        # server's own address space is touched there.
        configs = self.sim.machine_configs
        self._index = await asyncio.to_thread(
            build_address_space,
            server.iserver,
            ns,
            {name: opcua_path(cfg) for name, cfg in configs.items()},
            self.sim.tags,
            self._reset_counters_method,
        )
        self._writer = ValueWriter(
            self._index.variables, lambda: self.faults, self.sim.clock.now, loop, self.source_time
        )
        self._writer.apply([u for u in self.sim.current_values() if not u.tag.is_command])
        self.build_s = loop.time() - started
        try:
            await server.start()
        except OSError as exc:
            self._writer.close()
            self._writer = None
            raise OpcUaFaceError(
                f"OPC UA face cannot listen on {self.host}:{self.port}: {exc}; "
                "is another simulator running? choose another OPC UA port"
            ) from None
        except BaseException:
            self._writer.close()
            self._writer = None
            raise
        if self.port == 0 and server.bserver is not None:
            self.port = server.bserver.port  # keep the same port over restarts
        self._server = server
        self.namespace_index = ns
        self._watcher = loop.create_task(self._watch_faults())
        log.info(
            "event=opcua_started url=%s namespace=%s ns_index=%d variables=%d build_s=%.2f",
            self.url,
            self.namespace_uri,
            ns,
            len(self._index.variables),
            self.build_s,
        )

    async def _stop_server(self) -> None:
        server, self._server = self._server, None
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.wait([self._watcher])
            self._watcher = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if server is None:
            return
        await server.stop()
        log.info("event=opcua_stopped url=%s", self.url)

    def _on_request(self) -> None:
        if self._writer is not None:
            self._writer.sync_faults()

    async def _watch_faults(self) -> None:
        """Start/end bad-status faults even when no client request comes in."""
        while True:
            await asyncio.sleep(FAULT_POLL_S)
            if self._writer is not None:
                self._writer.sync_faults()

    def _reset_counters_method(self, machine: str) -> MethodCallback:
        async def reset_counters(parent: ua.NodeId) -> list[ua.Variant]:
            log.info("event=opcua_reset_counters machine=%s", machine)
            self.sim.reset_counters(machine, cause="command")
            self.sim.step()  # every subscribed face serves the zeroed counters now
            # ...and this one even when nobody wired sim.subscribe(face.apply).
            signals = self.sim.machines[machine].signals(self.sim.clock.now())
            tags = [t for t in self.sim.tags[machine] if not t.is_command]
            self.apply([TagUpdate(t, value_of(t, signals)) for t in tags])
            return []

        return reset_counters
