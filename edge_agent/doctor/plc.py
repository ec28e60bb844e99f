"""PLC checks, per configured connection: reachable, then the protocol's own checks.

OPC UA: TCP, session (security and login as configured), every tag's node reads.
Modbus TCP: TCP, one read per equipment. Modbus RTU: the serial device is usable,
one read per equipment. A connection that is not reachable is not probed further.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from edge_agent.config.models import AgentConfig, Connection
from edge_agent.config.roles import tags_by_connection
from edge_agent.doctor._net import tcp_check
from edge_agent.doctor.results import Check, Status, fail, ok

OPCUA_DEFAULT_PORT = 4840


def opcua_host_port(endpoint: str) -> tuple[str, int]:
    """``opc.tcp://host:port/path`` -> (host, port); port 4840 when not given."""
    parts = urlsplit(endpoint)
    return parts.hostname or "", parts.port or OPCUA_DEFAULT_PORT


async def check_connection(
    config: AgentConfig, connection: Connection, timeout_s: float
) -> list[Check]:
    """Every check of one connection, in order; stops at the first step that failed."""
    tags = tags_by_connection(config).get(connection.id, [])
    if connection.opcua is not None:
        host, port = opcua_host_port(connection.opcua.endpoint)
        reach = await tcp_check(f"plc {connection.id} tcp", host, port, timeout_s, "OPC UA server")
        if reach.status is Status.FAIL:
            return [reach]
        from edge_agent.doctor._plc_opcua import check_opcua  # deferred: asyncua is heavy

        data_dir = config.agent.data_dir
        return [reach, *await check_opcua(connection, tags, config.agent.id, data_dir, timeout_s)]
    assert connection.modbus is not None
    from edge_agent.doctor._plc_modbus import check_modbus

    if connection.modbus.tcp is not None:
        tcp = connection.modbus.tcp
        reach = await tcp_check(f"plc {connection.id} tcp", tcp.host, tcp.port, timeout_s, "PLC")
    else:
        assert connection.modbus.rtu is not None
        reach = serial_check(f"plc {connection.id} serial", Path(connection.modbus.rtu.port))
    if reach.status is Status.FAIL:
        return [reach]
    return [reach, *await check_modbus(connection, tags, timeout_s)]


def serial_check(name: str, device: Path) -> Check:
    """The serial device exists and this user may open it for reading and writing."""
    if not device.exists():
        return fail(
            name,
            f"{device} does not exist",
            "plug in the adapter and check its name: ls -l /dev/ttyUSB* /dev/ttyACM* "
            "/dev/serial/by-id/",
        )
    if not os.access(device, os.R_OK | os.W_OK):
        return fail(
            name,
            f"{device}: no read/write permission for this user",
            "the service user needs the dialout group (the unit sets it); for a manual run: "
            "sudo -u lineside edge-agent doctor ...",
        )
    return ok(name, f"{device} present and writable")
