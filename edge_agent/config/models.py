"""The edge agent's configuration (pydantic v2): what plant IT writes in YAML.

One file per line PC: the agent's identity and ISA-95 location, the PLC connections
(OPC UA or Modbus), and the equipment with its tags. Each tag has an address, a
sampling mode and a role (what it means for production). Unknown keys are errors.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic import Tag as UnionTag

from edge_agent.buffer.config import BufferConfig
from edge_agent.forward.config import MqttConfig
from edge_agent.service.config import HealthConfig
from lineside_protocol.states import CanonicalStateName

Level = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- agent --------------------------------------------------------------------------------


class Location(_Strict):
    """ISA-95 position of the line this agent serves (MQTT topic levels)."""

    enterprise: Level
    site: Level
    area: Level
    line: Level


class Agent(_Strict):
    id: Ident = Field(description="Unique agent id; names its MQTT client and status topic")
    location: Location
    data_dir: Path = Field(
        Path("/var/lib/lineside/agent"), description="Buffer, sequence numbers, client certificates"
    )
    credentials_dir: Path | None = Field(
        None,
        description="Where ${credential:NAME} files live; default: systemd's "
        "$CREDENTIALS_DIRECTORY (LoadCredential=)",
    )


# -- connections --------------------------------------------------------------------------


class SecurityPolicy(StrEnum):
    NONE = "None"
    BASIC256SHA256 = "Basic256Sha256"
    AES256_SHA256_RSAPSS = "Aes256_Sha256_RsaPss"


class SecurityMode(StrEnum):
    NONE = "None"
    SIGN = "Sign"
    SIGN_AND_ENCRYPT = "SignAndEncrypt"


class OpcUaSecurity(_Strict):
    policy: SecurityPolicy = Field(SecurityPolicy.NONE, description="None needs mode None")
    mode: SecurityMode = Field(SecurityMode.NONE, description="Sign or SignAndEncrypt")
    client_certificate: Path | None = Field(
        None, description="DER/PEM; default: created on first run in data_dir/pki"
    )
    client_key: Path | None = None
    trusted_server_certificates: Path | None = Field(
        None, description="Folder of trusted server certificates (DER or PEM)"
    )
    server_certificate_sha256: str | None = Field(
        None, description="Pin: hex SHA-256 fingerprint of the server certificate"
    )

    @field_validator("server_certificate_sha256")
    @classmethod
    def _fingerprint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        compact = value.replace(":", "").lower()
        if not re.fullmatch(r"[0-9a-f]{64}", compact):
            raise ValueError("a SHA-256 fingerprint is 64 hex digits (colons allowed)")
        return compact

    @model_validator(mode="after")
    def _consistent(self) -> OpcUaSecurity:
        if (self.policy is SecurityPolicy.NONE) != (self.mode is SecurityMode.NONE):
            raise ValueError(
                "policy None goes with mode None; a secure policy needs mode Sign or SignAndEncrypt"
            )
        if (self.client_certificate is None) != (self.client_key is None):
            raise ValueError("give both client_certificate and client_key, or neither")
        return self


class OpcUaAuth(_Strict):
    type: Literal["anonymous", "username", "certificate"] = "anonymous"
    username: str | None = Field(None, description="For type username")
    password: SecretStr | None = Field(None, description="Use ${ENV} or ${credential:NAME}")
    user_certificate: Path | None = Field(None, description="For type certificate")
    user_key: Path | None = None

    @model_validator(mode="after")
    def _consistent(self) -> OpcUaAuth:
        if self.type == "username" and (not self.username or self.password is None):
            raise ValueError("auth type username needs username and password")
        if self.type == "certificate" and (self.user_certificate is None or self.user_key is None):
            raise ValueError("auth type certificate needs user_certificate and user_key")
        return self


class OpcUaConnection(_Strict):
    endpoint: str = Field(description="opc.tcp://host:port[/path]")
    security: OpcUaSecurity = OpcUaSecurity()
    auth: OpcUaAuth = OpcUaAuth()
    timeout_s: float = Field(10.0, gt=0, le=300, description="Per request")
    watchdog_interval_s: float = Field(
        5.0, gt=0, le=60, description="How often the server's CurrentTime is read"
    )
    max_nodes_per_read: int | None = Field(
        None,
        ge=1,
        description="Nodes per Read request (4 in flight); default 500, never more than "
        "the server's MaxNodesPerRead",
    )

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if not re.fullmatch(r"opc\.tcp://[^/\s:]+(:\d{1,5})?(/\S*)?", value):
            raise ValueError("an OPC UA endpoint looks like opc.tcp://host:4840[/path]")
        return value


class ModbusTcp(_Strict):
    host: str = Field(description="PLC or gateway address")
    port: int = Field(502, ge=1, le=65535)


class ModbusRtu(_Strict):
    port: str = Field(description="Serial device, e.g. /dev/ttyUSB0")
    baudrate: int = Field(19200, ge=300, le=921600)
    parity: Literal["N", "E", "O"] = "E"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8


class ModbusConnection(_Strict):
    tcp: ModbusTcp | None = None
    rtu: ModbusRtu | None = None
    timeout_s: float = Field(1.0, gt=0, le=60, description="Per request")
    max_gap_registers: int = Field(
        10, ge=0, le=125, description="Merge reads across gaps up to this many registers"
    )
    max_registers_per_read: int = Field(125, ge=1, le=125)
    max_bits_per_read: int = Field(2000, ge=1, le=2000)
    pause_after_connect_s: float = Field(
        0.0, ge=0, le=60, description="For devices that need time after connect"
    )
    gap_between_requests_s: float = Field(
        0.0, ge=0, le=10, description="For devices that drop fast requests"
    )
    close_after_poll: bool = Field(False, description="Reconnect for every poll")

    @model_validator(mode="after")
    def _one_transport(self) -> ModbusConnection:
        if (self.tcp is None) == (self.rtu is None):
            raise ValueError("give exactly one of 'tcp' or 'rtu'")
        return self


class Connection(_Strict):
    id: Ident = Field(description="Referenced by equipment and tags")
    opcua: OpcUaConnection | None = Field(None, description="Exactly one of opcua / modbus")
    modbus: ModbusConnection | None = None

    @model_validator(mode="after")
    def _one_protocol(self) -> Connection:
        if (self.opcua is None) == (self.modbus is None):
            raise ValueError("give exactly one of 'opcua' or 'modbus'")
        return self

    @property
    def protocol(self) -> Literal["opcua", "modbus"]:
        return "opcua" if self.opcua is not None else "modbus"


# -- tags ---------------------------------------------------------------------------------


class Role(StrEnum):
    STATE = "state"
    GOOD_COUNT = "good_count"
    SCRAP_COUNT = "scrap_count"
    TOTAL_COUNT = "total_count"
    ORDER = "order"
    PRODUCT = "product"
    REASON = "reason"
    PROCESS_VALUE = "process_value"


COUNTER_ROLES = (Role.GOOD_COUNT, Role.SCRAP_COUNT, Role.TOTAL_COUNT)


class ModbusTable(StrEnum):
    COIL = "coil"
    DISCRETE_INPUT = "discrete_input"
    HOLDING_REGISTER = "holding_register"
    INPUT_REGISTER = "input_register"


class ModbusType(StrEnum):
    BOOL = "bool"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"


class Order(StrEnum):
    BIG = "big"
    LITTLE = "little"


class ModbusAddress(_Strict):
    table: ModbusTable = Field(description="coil, discrete_input, holding_register, input_register")
    address: int = Field(ge=0, le=65535, description="0-based protocol address")
    unit_id: int = Field(1, ge=0, le=255)
    type: ModbusType = Field(ModbusType.UINT16, description="Value type; bool for bit tables")
    byte_order: Order = Field(Order.BIG, description="Bytes inside a register: big = AB")
    word_order: Order = Field(Order.BIG, description="Registers of a 32/64-bit value: big = first")
    length: int | None = Field(None, ge=1, le=123, description="Registers of a string")
    scale: float = Field(1.0, description="value = raw x scale + offset")
    offset: float = 0.0

    @model_validator(mode="after")
    def _consistent(self) -> ModbusAddress:
        bit_table = self.table in (ModbusTable.COIL, ModbusTable.DISCRETE_INPUT)
        if bit_table and self.type is not ModbusType.BOOL:
            raise ValueError(f"{self.table.value}s hold bits: type must be bool")
        if self.type is ModbusType.STRING and self.length is None:
            raise ValueError("a string needs 'length' (registers, 2 characters each)")
        if self.type is not ModbusType.STRING and self.length is not None:
            raise ValueError("'length' applies to strings only")
        return self


def _address_kind(value: object) -> str:
    return "opcua" if isinstance(value, str) else "modbus"


Address = Annotated[
    Annotated[str, UnionTag("opcua")] | Annotated[ModbusAddress, UnionTag("modbus")],
    Discriminator(_address_kind),
]


class Deadband(_Strict):
    """The agent's own deadband for a process value (applied in derivation)."""

    type: Literal["absolute", "percent"] = Field(description="percent: of the last reported value")
    value: float = Field(ge=0)


class ServerDeadband(_Strict):
    """An OPC UA DataChangeFilter the server applies before notifying the agent."""

    type: Literal["absolute", "percent"] = Field(
        description="percent: of the node's EURange (OPC UA PercentDeadband); a server "
        "refuses it for a node without EURange, and the agent then subscribes without a "
        "filter (logged once per tag) and relies on the tag's own deadband"
    )
    value: float = Field(ge=0)


class PollSampling(_Strict):
    mode: Literal["poll"] = "poll"
    interval_s: float = Field(1.0, gt=0, le=86400, description="Read every interval_s")


class SubscribeSampling(_Strict):
    mode: Literal["subscribe"]
    sampling_interval_s: float = Field(1.0, ge=0, le=86400)
    publishing_interval_s: float = Field(1.0, gt=0, le=3600)
    queue_size: int = Field(1, ge=1, le=10000, description="Server-side queue per item")
    deadband: ServerDeadband | None = Field(
        None, description="Server-side filter; see also the tag's own deadband"
    )


def _sampling_mode(value: object) -> str:
    # `mode` may be left out for polling (its default), as in `sampling: {interval_s: 5}`.
    if isinstance(value, dict):
        return str(value.get("mode", "poll"))
    return str(getattr(value, "mode", "poll"))


Sampling = Annotated[
    Annotated[PollSampling, UnionTag("poll")] | Annotated[SubscribeSampling, UnionTag("subscribe")],
    Discriminator(_sampling_mode),
]


class StateMap(_Strict):
    """Raw PLC value -> canonical state: a preset, optionally overridden entry by entry."""

    preset: Literal["canonical", "packml", "none"] = Field(
        "canonical", description="canonical: 1 running ... 7 changeover; packml: StateCurrent"
    )
    map: dict[str, CanonicalStateName] = Field(
        default_factory=dict, description="Raw value (as text) -> state; overrides the preset"
    )
    unmapped: CanonicalStateName = Field(
        "unplanned_stop", description="State for raw values the map does not know"
    )


class Tag(_Strict):
    id: Ident = Field(description="Unique within its equipment")
    role: Role = Field(description="What the value means for production (see Roles)")
    address: Address = Field(
        description="OPC UA node id (ns=2;s=..., nsu=URI;s=..., i=...) or a Modbus mapping"
    )
    connection: Ident | None = Field(None, description="Default: the equipment's connection")
    sampling: Sampling = Field(PollSampling(), description="poll (default, 1 s) or subscribe")
    state_map: StateMap | None = None
    counter_width: Literal[16, 32, 64] | None = Field(
        None, description="Counter roles: bits at which the PLC counter wraps"
    )
    unit: str | None = Field(None, description="process_value: engineering unit")
    deadband: Deadband | None = Field(None, description="process_value: report changes beyond")
    max_interval_s: float | None = Field(
        None, gt=0, description="process_value: report at least this often"
    )
    ideal_cycle_times_s: dict[str, float] | None = Field(
        None, description="product role: product id -> ideal cycle time (s)"
    )

    @model_validator(mode="after")
    def _role_options(self) -> Tag:
        role = self.role
        if self.state_map is not None and role is not Role.STATE:
            raise ValueError("'state_map' applies to role state only")
        if self.counter_width is not None and role not in COUNTER_ROLES:
            raise ValueError("'counter_width' applies to counter roles only")
        if role in COUNTER_ROLES and self.counter_width is None and isinstance(self.address, str):
            raise ValueError("counters read over OPC UA need 'counter_width' (16, 32 or 64)")
        pv_only = {
            "unit": self.unit,
            "deadband": self.deadband,
            "max_interval_s": self.max_interval_s,
        }
        for name, value in pv_only.items():
            if value is not None and role is not Role.PROCESS_VALUE:
                raise ValueError(f"'{name}' applies to role process_value only")
        if self.ideal_cycle_times_s is not None and role is not Role.PRODUCT:
            raise ValueError("'ideal_cycle_times_s' applies to role product only")
        if isinstance(self.address, str):
            check_node_id(self.address)
        return self


_NODE_ID = re.compile(r"^(?:(?:ns=\d+|nsu=[^;]+);)?(?:i=\d+|s=.+|g=[0-9a-fA-F-]{36}|b=\S+)$")


def check_node_id(text: str) -> str:
    """Accept ns=2;s=..., nsu=URI;s=..., i=85, g=GUID, b=base64; explain otherwise."""
    if not _NODE_ID.match(text):
        raise ValueError(
            f"{text!r} is not an OPC UA node id; use e.g. 'ns=2;s=Line1.Press.State', "
            "'nsu=urn:vendor:plc;s=State' or 'ns=3;i=1001'"
        )
    return text


class Equipment(_Strict):
    id: Level = Field(description="MQTT topic level: letters, digits, '-', '_'")
    connection: Ident | None = Field(None, description="Default connection of its tags")
    tags: list[Tag] = Field(min_length=1, description="At least one")

    @model_validator(mode="after")
    def _tags(self) -> Equipment:
        ids = [t.id for t in self.tags]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"tag ids must be unique within the equipment; repeated: {dupes}")
        roles = [t.role for t in self.tags]
        for single in (Role.STATE, Role.REASON, Role.ORDER, Role.PRODUCT, *COUNTER_ROLES):
            if roles.count(single) > 1:
                raise ValueError(f"only one tag may have role {single.value}")
        counters = [r for r in roles if r in COUNTER_ROLES]
        if len(counters) == 1:
            raise ValueError(
                "counters: read two of good_count, scrap_count and total_count (the third is "
                f"derived); only {counters[0].value} is configured"
            )
        if len(counters) == 3:
            raise ValueError(
                "counters: read exactly two of good_count, scrap_count and "
                "total_count; the third is derived"
            )
        return self


class AgentConfig(_Strict):
    agent: Agent
    connections: list[Connection] = Field(min_length=1)
    equipment: list[Equipment] = Field(min_length=1)
    buffer: BufferConfig = Field(
        default_factory=BufferConfig,
        description="Store-and-forward buffer (SQLite) every event is committed to first",
    )
    mqtt: MqttConfig | None = Field(
        None,
        description="Broker the events are forwarded to; without it they stay in the buffer",
    )
    health: HealthConfig = Field(
        default_factory=HealthConfig,
        description="Local HTTP endpoint: /healthz, /readyz, /status, /metrics",
    )

    @model_validator(mode="after")
    def _unique(self) -> AgentConfig:
        for name, ids in (
            ("connection", [c.id for c in self.connections]),
            ("equipment", [e.id for e in self.equipment]),
        ):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"{name} ids must be unique; repeated: {', '.join(dupes)}")
        return self

    def connection(self, connection_id: str) -> Connection:
        return next(c for c in self.connections if c.id == connection_id)


def reference_problems(config: AgentConfig) -> list[tuple[list[str | int], str]]:
    """Tags whose connection is missing or does not fit the address: (location, message)."""
    by_id = {c.id: c for c in config.connections}
    problems: list[tuple[list[str | int], str]] = []
    for e, eq in enumerate(config.equipment):
        for t, tag in enumerate(eq.tags):
            loc: list[str | int] = ["equipment", e, "tags", t]
            conn_id = tag.connection or eq.connection
            if conn_id is None:
                problems.append((loc, "no connection: set equipment.connection or tag.connection"))
                continue
            conn = by_id.get(conn_id)
            if conn is None:
                where = [*loc, "connection"] if tag.connection else ["equipment", e, "connection"]
                problems.append(
                    (where, f"unknown connection {conn_id!r}; defined: {', '.join(sorted(by_id))}")
                )
            elif conn.protocol == "opcua" and not isinstance(tag.address, str):
                problems.append(
                    (
                        [*loc, "address"],
                        f"connection {conn_id!r} is OPC UA: the "
                        "address is a node id string such as 'ns=2;s=Press.State'",
                    )
                )
            elif conn.protocol == "modbus" and isinstance(tag.address, str):
                problems.append(
                    (
                        [*loc, "address"],
                        f"connection {conn_id!r} is Modbus: the "
                        "address is a mapping (table, address, unit_id, type...)",
                    )
                )
            elif conn.protocol == "modbus" and isinstance(tag.sampling, SubscribeSampling):
                problems.append(([*loc, "sampling"], "Modbus tags are polled: use mode poll"))
    return problems
