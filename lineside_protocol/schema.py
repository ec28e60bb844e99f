"""JSON Schema export of the wire models, for third-party senders and documentation.

``python -m lineside_protocol.schema OUTDIR`` writes one ``<Model>.schema.json`` per model.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .alerts import AlertEvent
from .envelope import BatchAck, EventBatch
from .events import EVENT_ADAPTER, SCHEMA_VERSION

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE_ID = f"urn:lineside:protocol:v{SCHEMA_VERSION}"  # a name, not a download URL


def _finish(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{SCHEMA_BASE_ID}:{name}",
        "title": name,
        **{key: value for key, value in schema.items() if key != "title"},
    }


def export_schemas() -> dict[str, dict[str, Any]]:
    """Model name -> JSON Schema (draft 2020-12) of what a receiver accepts."""
    return {
        "Event": _finish(EVENT_ADAPTER.json_schema(), "Event"),
        "EventBatch": _finish(EventBatch.model_json_schema(), "EventBatch"),
        "BatchAck": _finish(BatchAck.model_json_schema(), "BatchAck"),
        "AlertEvent": _finish(AlertEvent.model_json_schema(), "AlertEvent"),
    }


def write_schemas(outdir: Path) -> list[Path]:
    """Write every schema to ``outdir/<Model>.schema.json``; returns the paths written."""
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in export_schemas().items():
        path = outdir / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """CLI entry: ``python -m lineside_protocol.schema OUTDIR``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python -m lineside_protocol.schema OUTDIR", file=sys.stderr)
        return 2
    for path in write_schemas(Path(args[0])):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
