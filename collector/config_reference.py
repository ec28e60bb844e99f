"""Render the collector's configuration reference and the master data reference.

    python -m collector.config_reference --write docs/collector-configuration.md
    python -m collector.config_reference --write docs/masterdata-reference.md
    python -m collector.config_reference [--masterdata]     # print the reference

``--write`` rewrites the part of each file between the ``generated`` markers (which
reference goes into a file is chosen by its name); a test fails when a file is out of
date. The tables come from the JSON Schemas (``oee-collector schema [--masterdata]``),
with examples taken from config/collector.example.yaml and config/masterdata.example.yaml.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from collector.config import CollectorConfig
from collector.masterdata import MasterDataFile
from lineside_common.schema_reference import (
    DETAILED,
    render_reference,
    schema_with_factory_defaults,
    splice,
)
from lineside_common.yamlconfig import load_yaml_fast

ROOT = Path(__file__).resolve().parent.parent
BEGIN = "<!-- generated:begin (python -m collector.config_reference --write) -->"
END = "<!-- generated:end -->"
COLLECTOR_DOC = "collector-configuration.md"
MASTERDATA_DOC = "masterdata-reference.md"


def _example(name: str) -> object:
    """The parsed example file config/<name>, or None when it is not there (an installed
    package without the repository's config folder renders without examples)."""
    path = ROOT / "config" / name
    if not path.is_file():
        return None
    return load_yaml_fast(path.read_text(encoding="utf-8"))


def render_collector_reference() -> str:
    """The generated part of docs/collector-configuration.md."""
    return render_reference(
        schema_with_factory_defaults(CollectorConfig),
        columns=DETAILED,
        example=_example("collector.example.yaml"),
    )


def render_masterdata_reference() -> str:
    """The generated part of docs/masterdata-reference.md."""
    return render_reference(
        schema_with_factory_defaults(MasterDataFile),
        columns=DETAILED,
        example=_example("masterdata.example.yaml"),
    )


RENDERERS: dict[str, Callable[[], str]] = {
    COLLECTOR_DOC: render_collector_reference,
    MASTERDATA_DOC: render_masterdata_reference,
}


def update_document(document: str, file_name: str) -> str:
    """``document`` (the file called ``file_name``) with its generated part renewed."""
    render = RENDERERS.get(file_name)
    if render is None:
        raise ValueError(
            f"no reference is generated into {file_name!r}; known: {', '.join(RENDERERS)}"
        )
    return splice(document, render(), BEGIN, END)


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "--write":
        for name in argv[1:]:
            path = Path(name)
            try:
                text = update_document(path.read_text(encoding="utf-8"), path.name)
            except (OSError, ValueError) as exc:
                sys.stderr.write(f"{path}: {exc}\n")
                return 2
            path.write_text(text, encoding="utf-8")
        return 0
    if argv not in ([], ["--masterdata"]):
        sys.stderr.write(
            "usage: python -m collector.config_reference [--masterdata | --write FILE...]\n"
        )
        return 2
    render = render_masterdata_reference if argv else render_collector_reference
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
