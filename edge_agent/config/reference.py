"""Render the configuration reference (docs/configuration.md) from the JSON Schema.

    python -m edge_agent.config.reference --write docs/configuration.md

rewrites the part of the file between the ``generated`` markers; a test fails when
the file is out of date.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from edge_agent.config.models import AgentConfig

BEGIN = "<!-- generated:begin (python -m edge_agent.config.reference --write) -->"
END = "<!-- generated:end -->"

# Sections in reading order: the top level, then each model as it is first referenced.
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
    schema = AgentConfig.model_json_schema()
    defs = schema.get("$defs", {})
    models = {"AgentConfig": schema, **defs}
    out: list[str] = []
    for name, title in TITLES.items():
        model = models.get(name)
        if model is None or "properties" not in model:
            continue
        out.append(f"### {title}\n")
        if model.get("description") and name != "AgentConfig":
            out.append(_one_line(model["description"]) + "\n")
        out.append("| key | type | default | description |")
        out.append("|---|---|---|---|")
        required = set(model.get("required", []))
        for key, prop in model["properties"].items():
            default = "required" if key in required else _default(prop)
            out.append(
                f"| `{key}` | {_type(prop, defs)} | {default} | "
                f"{_one_line(prop.get('description', ''))} |"
            )
        out.append("")
    missing = sorted(set(defs) - set(TITLES) - _ENUMS(defs))
    if missing:  # a new model must get a section title above
        raise RuntimeError(f"no reference section for {', '.join(missing)}")
    return "\n".join(out).rstrip() + "\n"


def _ENUMS(defs: dict[str, Any]) -> set[str]:
    return {name for name, d in defs.items() if "enum" in d}


def _type(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in prop:
        target = prop["$ref"].rsplit("/", 1)[-1]
        resolved = defs.get(target, {})
        if "enum" in resolved:
            return " / ".join(f"`{v}`" for v in resolved["enum"])
        return f"[{TITLES.get(target, target)}](#{_anchor(TITLES.get(target, target))})"
    if "anyOf" in prop or "oneOf" in prop:
        options = [_type(p, defs) for p in prop.get("anyOf", prop.get("oneOf", []))]
        return " or ".join(o for o in options if o != "null") + (
            " or null" if "null" in options else ""
        )
    if "enum" in prop:
        return " / ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}), defs)}"
    if kind == "object":
        extra = prop.get("additionalProperties")
        return f"map of {_type(extra, defs)}" if isinstance(extra, dict) else "map"
    if prop.get("format") == "password":
        return "secret string"
    bounds = [
        f"{sym} {prop[key]}"
        for key, sym in (
            ("minimum", ">="),
            ("exclusiveMinimum", ">"),
            ("maximum", "<="),
            ("exclusiveMaximum", "<"),
        )
        if key in prop
    ]
    text = {
        "integer": "int",
        "number": "number",
        "string": "string",
        "boolean": "bool",
        "null": "null",
    }.get(kind, kind)
    return f"{text} ({', '.join(bounds)})" if bounds else text


def _default(prop: dict[str, Any]) -> str:
    if "default" not in prop:
        return ""
    if isinstance(prop["default"], dict):
        return "see its section"
    return f"`{json.dumps(prop['default'])}`"


def _anchor(title: str) -> str:
    return "".join(c for c in title.lower().replace(" ", "-") if c.isalnum() or c in "-_")


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def splice(document: str, reference: str) -> str:
    """Replace the generated part of ``document`` with ``reference``."""
    head, _, rest = document.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n\n{reference}\n{END}{tail}"


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
