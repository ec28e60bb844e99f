"""Pieces every Lineside command line shares: logging setup, config JSON Schema output."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from pydantic import BaseModel

LOG_FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


def log_level_or_none(name: str) -> int | None:
    """The logging level called ``name`` (debug, info, ...), or None if there is none."""
    level = getattr(logging, name.upper(), None)
    return level if isinstance(level, int) else None


def configure_logging(level: int, quiet: tuple[str, ...] = ()) -> None:
    """Structured key=value lines on stderr; ``quiet`` loggers only from WARNING up."""
    logging.basicConfig(level=level, stream=sys.stderr, format=LOG_FORMAT)
    for name in quiet:  # libraries whose routine chatter would drown the service's own
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def config_schema_text(model: type[BaseModel], title: str) -> str:
    """The JSON Schema (draft 2020-12) of a configuration model, for editors."""
    document = model.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = title
    return json.dumps(document, indent=2) + "\n"


def write_or_print(text: str, output: Path | None) -> bool:
    """Write ``text`` to ``output``, or to stdout when None; True when written to a file."""
    if output is None:
        sys.stdout.write(text)
        return False
    output.write_text(text, encoding="utf-8")
    return True
