"""Render the configuration reference (docs/configuration.md) from the JSON Schema.

    python -m edge_agent.config.reference --write docs/configuration.md

rewrites the part of the file between the ``generated`` markers; a test fails when
the file is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from edge_agent.config.models import AgentConfig
from lineside_common.schema_reference import COMPACT
from lineside_common.schema_reference import render_reference as render_schema_reference
from lineside_common.schema_reference import splice as splice_markers

BEGIN = "<!-- generated:begin (python -m edge_agent.config.reference --write) -->"
END = "<!-- generated:end -->"

# Sections in reading order (headings by model name; lineside_common.schema_reference
# renders them).
TITLES = {
    "AgentConfig": "Top level",
    "Agent": "agent",
    "Location": "agent.location",
    "Connection": "connections[]",
    "OpcUaConnection": "connections[].opcua",
    "OpcUaSecurity": "connections[].opcua.security",
    "OpcUaAuth": "connections[].opcua.auth",
    "ModbusConnection": "connections[].modbus",
    "ModbusTcp": "connections[].modbus.tcp",
    "ModbusRtu": "connections[].modbus.rtu",
    "Equipment": "equipment[]",
    "Tag": "equipment[].tags[]",
    "ModbusAddress": "equipment[].tags[].address (Modbus)",
    "PollSampling": "equipment[].tags[].sampling (mode: poll)",
    "SubscribeSampling": "equipment[].tags[].sampling (mode: subscribe)",
    "Deadband": "equipment[].tags[].deadband",
    "ServerDeadband": "equipment[].tags[].sampling.deadband (OPC UA, server-side)",
    "StateMap": "equipment[].tags[].state_map",
    "BufferConfig": "buffer",
    "MqttConfig": "mqtt",
    "TlsConfig": "mqtt.tls",
    "BatchConfig": "mqtt.batch",
    "ReconnectConfig": "mqtt.reconnect",
    "HealthConfig": "health",
}


def render_reference() -> str:
    """The generated part of docs/configuration.md."""
    return render_schema_reference(AgentConfig.model_json_schema(), columns=COMPACT, titles=TITLES)


def splice(document: str, reference: str) -> str:
    """Replace the generated part of ``document`` with ``reference``."""
    return splice_markers(document, reference, BEGIN, END)


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--write":
        path = Path(argv[1])
        path.write_text(
            splice(path.read_text(encoding="utf-8"), render_reference()), encoding="utf-8"
        )
        return 0
    sys.stdout.write(render_reference())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
