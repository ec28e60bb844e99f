"""Markdown reference of a configuration file, rendered from its JSON Schema.

:func:`render_reference` is pure (a schema dict and optionally an example document in,
markdown out): one ``###`` section per object model, in the order a reader meets them
walking the file from the top, with one table row per field. It understands what
pydantic v2 emits: ``$ref``/``$defs``, ``anyOf``/``oneOf`` (discriminated unions get one
section per variant, titled ``path (kind: value)``), arrays (``[]``), maps
(``additionalProperties``, written ``.<name>``), enums and ``Literal`` constants,
``SecretStr`` (``format: password``) and nullable fields.

Two layouts: :data:`COMPACT` (key, type, default, description; numeric bounds folded
into the type) and :data:`DETAILED` (full path, type, default, constraints, description,
example). :func:`splice` replaces the generated part of a hand-written document.

:func:`schema_with_factory_defaults` (in ``_schema_defaults``, re-exported here) asks a
pydantic model for the defaults JSON Schema leaves out (``default_factory``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lineside_common._schema_defaults import (
    schema_with_factory_defaults as schema_with_factory_defaults,  # re-exported
)

COMPACT = ("key", "type", "default", "description")
DETAILED = ("path", "type", "default", "constraints", "description", "example")
SECRET_HINT = "secret: use `${credential:NAME}`"
ROOT_TITLE = "Top level"

_BOUNDS = (
    ("minimum", ">="),
    ("exclusiveMinimum", ">"),
    ("maximum", "<="),
    ("exclusiveMaximum", "<"),
)
_TYPE_NAMES = {"integer": "int", "number": "number", "string": "string", "boolean": "bool"}
_NO_EXAMPLE = object()
# "<" that would open an HTML tag (CommonMark), which renderers swallow: "<host name>"
_TAG_START = re.compile(r"<(?=/?[A-Za-z][A-Za-z0-9-]*[\s/>])")


@dataclass(frozen=True)
class _Step:
    """One level of a path: a ``key``, a list ``item`` or a map ``value``.

    ``variant`` (property, value) narrows the step to one member of a discriminated union.
    """

    kind: str
    name: str = ""
    variant: tuple[str, Any] | None = None


@dataclass(frozen=True)
class _Section:
    name: str  # $defs name, or the root schema's title
    model: dict[str, Any]
    steps: tuple[_Step, ...]
    title: str
    is_root: bool = False


def render_reference(
    schema: Mapping[str, Any],
    *,
    columns: Sequence[str] = DETAILED,
    titles: Mapping[str, str] | None = None,
    example: Any = None,
) -> str:
    """Markdown sections and tables for every model in ``schema``.

    ``titles`` (model name -> heading) replaces the path-based headings and fixes the
    order of the sections; every model must then have one. ``example`` is a parsed
    example file: a field's example is its schema ``examples`` or, failing that, the
    value at the field's path in ``example`` when it differs from the default.
    """
    defs: dict[str, Any] = dict(schema.get("$defs", {}))
    sections = _walk(dict(schema), defs)
    if titles is not None:
        missing = sorted(
            name for name, d in defs.items() if "properties" in d and name not in titles
        )
        if missing:  # a new model must get a section title
            raise RuntimeError(f"no reference section for {', '.join(missing)}")
        by_name = {s.name: s for s in sections}
        sections = [
            _Section(s.name, s.model, s.steps, titles[s.name], s.is_root)
            for name in titles
            if (s := by_name.get(name)) is not None
        ]
    links = {s.name: s.title for s in sections}
    out: list[str] = []
    for section in sections:
        out.extend(_render_section(section, defs, links, columns, example))
    return "\n".join(out).rstrip() + "\n"


def splice(document: str, reference: str, begin: str, end: str) -> str:
    """Replace the part of ``document`` between the ``begin`` and ``end`` markers."""
    head, found, rest = document.partition(begin)
    if not found:
        raise ValueError(f"the document has no marker {begin!r}; add it and {end!r}")
    _, _, tail = rest.partition(end)
    return f"{head}{begin}\n\n{reference}\n{end}{tail}"


def anchor(title: str) -> str:
    """The GitHub anchor of a heading."""
    return "".join(c for c in title.lower().replace(" ", "-") if c.isalnum() or c in "-_")


def path_text(steps: Sequence[_Step]) -> str:
    """``mqtt.tls``, ``alerts.rules[]``, ``calendars.<name>.shifts[]``."""
    text = ""
    for step in steps:
        if step.kind == "key":
            text += f".{step.name}" if text else step.name
        elif step.kind == "item":
            text += "[]"
        else:
            text += ".<name>"
    return text


# -- walking the schema -------------------------------------------------------------------


def _walk(root: dict[str, Any], defs: dict[str, Any]) -> list[_Section]:
    """Sections depth-first, each model at the first path that reaches it."""
    sections: list[_Section] = []
    seen: set[str] = set()

    def visit(name: str, model: dict[str, Any], steps: tuple[_Step, ...], title: str) -> None:
        seen.add(name)
        sections.append(_Section(name, model, steps, title, is_root=not steps))
        for key, prop in model.get("properties", {}).items():
            for target, sub_steps, label in _targets(prop, (*steps, _Step("key", key)), defs):
                if target not in seen and "properties" in defs.get(target, {}):
                    visit(target, defs[target], sub_steps, path_text(sub_steps) + label)

    visit(root.get("title", ""), root, (), ROOT_TITLE)
    return sections


def _targets(
    prop: dict[str, Any], steps: tuple[_Step, ...], defs: dict[str, Any]
) -> Iterator[tuple[str, tuple[_Step, ...], str]]:
    """(model name, its path, title suffix) for every model ``prop`` can hold."""
    if "$ref" in prop:
        yield _ref_name(prop), steps, ""
    options = prop.get("anyOf", prop.get("oneOf", []))
    variants = _discriminator(prop, options, defs)
    for option in options:
        if variants and "$ref" in option:
            name = _ref_name(option)
            value = variants[name]
            last = steps[-1]
            narrowed = (*steps[:-1], _Step(last.kind, last.name, (variants[""], value)))
            yield name, narrowed, f" ({variants['']}: {value})"
        else:
            yield from _targets(option, steps, defs)
    if prop.get("type") == "array" and isinstance(prop.get("items"), dict):
        yield from _targets(prop["items"], (*steps, _Step("item")), defs)
    extra = prop.get("additionalProperties")
    if prop.get("type") == "object" and isinstance(extra, dict):
        yield from _targets(extra, (*steps, _Step("value")), defs)


def _discriminator(
    prop: dict[str, Any], options: list[dict[str, Any]], defs: dict[str, Any]
) -> dict[str, Any]:
    """{"": property, model name: its constant} when ``options`` are told apart by a
    constant property (pydantic's ``discriminator``, or a ``Literal`` every model has)."""
    refs = [_ref_name(o) for o in options if "$ref" in o]
    if len(refs) < 2:
        return {}
    models = [defs.get(r, {}).get("properties", {}) for r in refs]
    named = prop.get("discriminator", {}).get("propertyName")
    candidates = [named] if named else list(models[0])
    for key in candidates:
        values = [_constant(m.get(key, {})) for m in models]
        if all(v is not _NO_EXAMPLE for v in values):
            return {"": key, **dict(zip(refs, values, strict=True))}
    return {}


def _constant(prop: dict[str, Any]) -> Any:
    if "const" in prop:
        return prop["const"]
    if len(prop.get("enum", [])) == 1:
        return prop["enum"][0]
    return _NO_EXAMPLE


def _ref_name(prop: dict[str, Any]) -> str:
    return str(prop["$ref"]).rsplit("/", 1)[-1]


# -- one section --------------------------------------------------------------------------


def _render_section(
    section: _Section,
    defs: dict[str, Any],
    links: dict[str, str],
    columns: Sequence[str],
    example: Any,
) -> list[str]:
    model = section.model
    required = set(model.get("required", []))
    rows: list[dict[str, str]] = []
    for key, prop in model["properties"].items():
        default = "required" if key in required else _default(prop)
        steps = (*section.steps, _Step("key", key))
        rows.append(
            {
                "key": f"`{key}`",
                "path": f"`{path_text(steps)}`",
                "type": _type(prop, defs, links, bounds="constraints" not in columns),
                "default": default,
                "constraints": _code_cell(", ".join(_constraints(prop))),
                "description": _cell(prop.get("description", "")),
                "example": _example(prop, steps, example),
            }
        )
    shown = [c for c in columns if c != "example" or any(r["example"] for r in rows)]
    out = [f"### {_text(section.title)}\n"]
    if model.get("description") and not section.is_root:
        out.append(_cell(model["description"]) + "\n")
    out.append("| " + " | ".join(shown) + " |")
    out.append("|" + "---|" * len(shown))
    out.extend("| " + " | ".join(row[c] for c in shown) + " |" for row in rows)
    out.append("")
    return out


def _type(prop: dict[str, Any], defs: dict[str, Any], links: dict[str, str], bounds: bool) -> str:
    if "$ref" in prop:
        target = _ref_name(prop)
        resolved = defs.get(target, {})
        if "enum" in resolved:
            return _enum(resolved["enum"])
        title = links.get(target, target)
        return f"[{_text(title)}](#{anchor(title)})"
    if "anyOf" in prop or "oneOf" in prop:
        options = [_type(p, defs, links, bounds) for p in prop.get("anyOf", prop.get("oneOf", []))]
        return " or ".join(o for o in options if o != "null") + (
            " or null" if "null" in options else ""
        )
    if "enum" in prop:
        return _enum(prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}), defs, links, bounds)}"
    if kind == "object":
        extra = prop.get("additionalProperties")
        return f"map of {_type(extra, defs, links, bounds)}" if isinstance(extra, dict) else "map"
    if prop.get("format") == "password":
        return "secret string"
    text = _TYPE_NAMES.get(kind, kind)
    limits = _bounds(prop) if bounds else []
    return f"{text} ({', '.join(limits)})" if limits else text


def _enum(values: list[Any]) -> str:
    return " / ".join(f"`{v}`" for v in values)


def _bounds(prop: dict[str, Any]) -> list[str]:
    return [f"{sym} {prop[key]}" for key, sym in _BOUNDS if key in prop]


def _constraints(prop: dict[str, Any]) -> list[str]:
    """What a value must satisfy beyond its type, from ``prop`` and the schemas inside it
    (union options, list items, map values; not other models)."""
    found: list[str] = []

    def add(text: str) -> None:
        if text not in found:
            found.append(text)

    def gather(p: dict[str, Any]) -> None:
        if p.get("format") == "password":
            add(SECRET_HINT)
        elif "format" in p:
            add(f"format: {p['format']}")
        for text in _bounds(p):
            add(text)
        add(_range("length", p.get("minLength"), p.get("maxLength")))
        add(_count(p.get("minItems"), p.get("maxItems")))
        if "pattern" in p:
            add(f"pattern `{p['pattern']}`")
        names = p.get("propertyNames", {})
        add(_range("key length", names.get("minLength"), names.get("maxLength")))
        if "pattern" in names:
            add(f"keys match `{names['pattern']}`")
        for option in p.get("anyOf", p.get("oneOf", [])):
            gather(option)
        for inner in (p.get("items"), p.get("additionalProperties")):
            if isinstance(inner, dict):
                gather(inner)

    gather(prop)
    return [text for text in found if text]


def _range(what: str, low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"{what} {low}-{high}"
    if low is not None:
        return f"{what} >= {low}"
    if high is not None:
        return f"{what} <= {high}"
    return ""


def _count(low: int | None, high: int | None) -> str:
    parts = []
    if low is not None:
        parts.append(f"at least {low} item{'s' if low != 1 else ''}")
    if high is not None:
        parts.append(f"at most {high} item{'s' if high != 1 else ''}")
    return ", ".join(parts)


def _default(prop: dict[str, Any]) -> str:
    if "default" not in prop:
        return ""
    if isinstance(prop["default"], dict) and prop["default"] and _is_section(prop):
        return "see its section"
    return f"`{json.dumps(prop['default'])}`"


def _is_section(prop: dict[str, Any]) -> bool:
    return "$ref" in prop or any("$ref" in o for o in prop.get("anyOf", prop.get("oneOf", [])))


def _cell(text: str) -> str:
    return _text(_code_cell(text))


def _code_cell(text: str) -> str:
    """One line, pipes escaped (GitHub needs that inside code spans too)."""
    return " ".join(text.split()).replace("|", "\\|")


def _text(text: str) -> str:
    return _TAG_START.sub("\\\\<", text)


# -- examples -----------------------------------------------------------------------------


def _example(prop: dict[str, Any], steps: tuple[_Step, ...], document: Any) -> str:
    if _constant(prop) is not _NO_EXAMPLE:  # a Literal: its type says it all
        return ""
    if prop.get("examples"):
        value = prop["examples"][0]
    else:
        value = next(_lookup(document, steps), _NO_EXAMPLE)
        if value is _NO_EXAMPLE or ("default" in prop and value == prop["default"]):
            return ""
    text = _example_text(value)
    return f"`{_code_cell(text)}`" if text is not None else ""


def _lookup(node: Any, steps: Sequence[_Step]) -> Iterator[Any]:
    """Every value at ``steps`` in ``node``, in document order."""
    if not steps:
        yield node
        return
    step, rest = steps[0], steps[1:]
    if step.kind == "key":
        children = [node[step.name]] if isinstance(node, dict) and step.name in node else []
    elif step.kind == "item":
        children = node if isinstance(node, list) else []
    else:
        children = list(node.values()) if isinstance(node, dict) else []
    for child in children:
        if step.variant is None or (
            isinstance(child, dict) and child.get(step.variant[0]) == step.variant[1]
        ):
            yield from _lookup(child, rest)


def _example_text(value: Any) -> str | None:
    """YAML-like text of a scalar or a list of scalars; None for anything bigger."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, list):
        items = [_example_text(v) for v in value]
        if all(i is not None for i in items):
            return "[" + ", ".join(str(i) for i in items) + "]"
    return None
