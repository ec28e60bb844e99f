"""Generated configuration references: up to date, complete, and the renderer's shapes."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from collector.config import CollectorConfig
from collector.config_reference import (
    COLLECTOR_DOC,
    MASTERDATA_DOC,
    main,
    update_document,
)
from collector.masterdata import MasterDataFile
from lineside_common.schema_reference import (
    COMPACT,
    DETAILED,
    render_reference,
    splice,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", [COLLECTOR_DOC, MASTERDATA_DOC])
def test_reference_is_up_to_date(name: str) -> None:
    doc = (ROOT / "docs" / name).read_text(encoding="utf-8")
    assert update_document(doc, name) == doc, (
        f"docs/{name} is stale: run python -m collector.config_reference --write docs/{name}"
    )


# -- every leaf field is documented -------------------------------------------------------


def _leaf_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted paths of every field that is not itself a model, walking the models (not the
    schema): list entries are ``[]``, map values ``.<name>``, union members all visited."""
    paths: list[str] = []
    for name, field in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        nested = list(_models_in(field.annotation, path))
        if not nested:
            paths.append(path)
        for sub_model, sub_path in nested:
            paths.extend(_leaf_paths(sub_model, sub_path))
    return paths


def _models_in(annotation: Any, path: str) -> list[tuple[type[BaseModel], str]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, path)]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is list:
        return _models_in(args[0], f"{path}[]")
    if origin is dict:
        return _models_in(args[1], f"{path}.<name>")
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        found: list[tuple[type[BaseModel], str]] = []
        for arg in args if origin is not typing.Annotated else args[:1]:
            found.extend(_models_in(arg, path))
        return found
    return []


@pytest.mark.parametrize(
    ("model", "name"), [(CollectorConfig, COLLECTOR_DOC), (MasterDataFile, MASTERDATA_DOC)]
)
def test_every_leaf_field_is_in_its_reference(model: type[BaseModel], name: str) -> None:
    doc = (ROOT / "docs" / name).read_text(encoding="utf-8")
    paths = _leaf_paths(model)
    assert len(paths) > 20  # the walk really went into the sections
    missing = [path for path in paths if f"| `{path}` |" not in doc]
    assert not missing, f"docs/{name} lacks {missing}"


def test_leaf_walk_reaches_every_rule_kind_and_map_value() -> None:
    collector = _leaf_paths(CollectorConfig)
    assert {"alerts.rules[].threshold", "alerts.rules[].min_duration_s"} <= set(collector)
    assert "alerts.webhooks[].headers" in collector
    masterdata = _leaf_paths(MasterDataFile)
    assert "calendars.<name>.shifts[].breaks[].start" in masterdata


# -- the renderer on small schemas --------------------------------------------------------

SECRET = {"type": "string", "format": "password", "writeOnly": True}
RULE_A = {
    "type": "object",
    "description": "Rule A.",
    "properties": {"kind": {"const": "a", "type": "string"}, "limit": {"type": "number"}},
    "required": ["kind"],
}
RULE_B = {
    "type": "object",
    "properties": {"kind": {"const": "b", "type": "string"}, "states": {"type": "array"}},
    "required": ["kind"],
}
UNION_SCHEMA = {
    "title": "Root",
    "type": "object",
    "properties": {
        "rules": {
            "type": "array",
            "items": {
                "discriminator": {"propertyName": "kind", "mapping": {}},
                "oneOf": [{"$ref": "#/$defs/RuleA"}, {"$ref": "#/$defs/RuleB"}],
            },
            "default": [],
        }
    },
    "$defs": {"RuleA": RULE_A, "RuleB": RULE_B},
}

CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "discriminated union: one section per kind, linked from the list",
        UNION_SCHEMA,
        [
            "| `rules` | list of [rules[] (kind: a)](#rules-kind-a) or "
            "[rules[] (kind: b)](#rules-kind-b) | `[]` |  |  |",
            "### rules[] (kind: a)\n\nRule A.\n",
            "### rules[] (kind: b)\n",
            "| `rules[].kind` | `a` | required |  |  |",
            "| `rules[].limit` | number |  |  |  |",
        ],
    ),
    (
        "secret, also nullable and as map values",
        {
            "type": "object",
            "properties": {
                "password": {"anyOf": [SECRET, {"type": "null"}], "default": None},
                "headers": {"type": "object", "additionalProperties": SECRET, "default": {}},
            },
        },
        [
            "| `password` | secret string or null | `null` | secret: use `${credential:NAME}` |",
            "| `headers` | map of secret string | `{}` | secret: use `${credential:NAME}` |",
        ],
    ),
    (
        "map of models: a .<name> section, escaped in headings and links",
        {
            "type": "object",
            "properties": {
                "calendars": {
                    "type": "object",
                    "additionalProperties": {"$ref": "#/$defs/Cal"},
                    "propertyNames": {"minLength": 1, "maxLength": 100},
                }
            },
            "$defs": {
                "Cal": {"type": "object", "properties": {"tz": {"type": "string"}}},
            },
        },
        [
            "| `calendars` | map of [calendars.\\<name>](#calendarsname) |  | key length 1-100 |",
            "### calendars.\\<name>\n",
            "| `calendars.<name>.tz` | string |  |  |  |",
        ],
    ),
    (
        "nullable number with bounds; nullable section default",
        {
            "type": "object",
            "properties": {
                "port": {
                    "anyOf": [
                        {"type": "integer", "minimum": 1, "maximum": 65535},
                        {"type": "null"},
                    ],
                    "default": None,
                },
                "tls": {"anyOf": [{"$ref": "#/$defs/Tls"}, {"type": "null"}], "default": None},
                "sub": {"$ref": "#/$defs/Tls", "default": {"ca": "x"}},
            },
            "$defs": {"Tls": {"type": "object", "properties": {"ca": {"type": "string"}}}},
        },
        [
            "| `port` | int or null | `null` | >= 1, <= 65535 |",
            "| `tls` | [tls](#tls) or null | `null` |  |",
            "| `sub` | [tls](#tls) | see its section |  |",
        ],
    ),
    (
        "enum inline, enum by $ref, Literal constant",
        {
            "type": "object",
            "properties": {
                "backend": {"enum": ["memory", "redis"], "type": "string", "default": "memory"},
                "state": {"$ref": "#/$defs/State"},
                "window": {"const": "current_shift", "type": "string"},
            },
            "required": ["state"],
            "$defs": {"State": {"enum": ["running", "idle"], "type": "string"}},
        },
        [
            '| `backend` | `memory` / `redis` | `"memory"` |  |',
            "| `state` | `running` / `idle` | required |  |",
            "| `window` | `current_shift` |  |  |",
        ],
    ),
    (
        "strings: length, pattern with pipes, format; lists: item counts; tags escaped",
        {
            "type": "object",
            "properties": {
                "id": {"type": "string", "minLength": 1, "maxLength": 64},
                "day": {"type": "string", "pattern": "^(mon|tue)$"},
                "holidays": {"type": "array", "items": {"type": "string", "format": "date"}},
                "ids": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "client": {"type": "string", "description": "default lineside-<host name>"},
            },
        },
        [
            "| `id` | string |  | length 1-64 |",
            "| `day` | string |  | pattern `^(mon\\|tue)$` |",
            "| `holidays` | list of string |  | format: date |",
            "| `ids` | list of string |  | at least 1 item |",
            "| `client` | string |  |  | default lineside-\\<host name> |",
        ],
    ),
]


@pytest.mark.parametrize(("schema", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_renderer_shapes(schema: dict[str, Any], expected: list[str]) -> None:
    text = render_reference(schema, columns=DETAILED)
    for fragment in expected:
        assert fragment in text, f"{fragment!r} not in:\n{text}"


def test_examples_come_from_the_document_by_path_and_kind_unless_default() -> None:
    document = {"rules": [{"kind": "b", "limit": 9}, {"kind": "a", "limit": 0.5}]}
    text = render_reference(UNION_SCHEMA, columns=DETAILED, example=document)
    assert "| `rules[].limit` | number |  |  |  | `0.5` |" in text  # kind a's, not kind b's
    assert "| example |" in text.split("### rules[] (kind: a)")[1].split("###")[0]
    schema = {
        "type": "object",
        "properties": {
            "port": {"type": "integer", "default": 30},
            "host": {"type": "string", "examples": ["broker.example"]},
        },
    }
    text = render_reference(schema, columns=DETAILED, example={"port": 30})
    assert "| `port` | int | `30` |  |  |  |" in text  # equal to the default: no example
    assert "| `host` | string |  |  |  | `broker.example` |" in text


def test_compact_layout_folds_bounds_into_the_type_and_titles_fix_order() -> None:
    schema = {
        "title": "Root",
        "type": "object",
        "properties": {"b": {"$ref": "#/$defs/B"}, "a": {"$ref": "#/$defs/A"}},
        "$defs": {
            "A": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}},
            "B": {"type": "object", "properties": {"m": {"type": "string"}}},
        },
    }
    text = render_reference(schema, columns=COMPACT, titles={"Root": "Top", "A": "a", "B": "b"})
    assert text.index("### a") < text.index("### b")
    assert "| key | type | default | description |" in text
    assert "| `n` | int (>= 1) |  |  |" in text
    with pytest.raises(RuntimeError, match="no reference section for B"):
        render_reference(schema, columns=COMPACT, titles={"Root": "Top", "A": "a"})


def test_splice_needs_the_markers_and_the_cli_names_known_files(tmp_path: Path) -> None:
    assert splice("a\n<b>\nold\n<e>\nz", "new\n", "<b>", "<e>") == "a\n<b>\n\nnew\n\n<e>\nz"
    with pytest.raises(ValueError, match="no marker"):
        splice("nothing here", "new\n", "<b>", "<e>")
    other = tmp_path / "other.md"
    other.write_text("x", encoding="utf-8")
    assert main(["--write", str(other)]) == 2
    assert other.read_text(encoding="utf-8") == "x"
