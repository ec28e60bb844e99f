"""The defaults JSON Schema leaves out: pydantic ``default_factory`` fields.

Kept apart from :mod:`lineside_common.schema_reference`, which is pure (dict in,
markdown out); this needs the pydantic model itself.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python


def schema_with_factory_defaults(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON Schema with the defaults of ``default_factory`` fields filled in
    (JSON Schema leaves them out: a reference would show no default for ``rules: []``)."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    for cls in _models_under(model):
        target = schema if cls is model else defs.get(cls.__name__, {})
        properties = target.get("properties", {})
        for name, field in cls.model_fields.items():
            prop = properties.get(field.alias or name)
            if prop is None or field.default_factory is None or "default" in prop:
                continue
            prop["default"] = to_jsonable_python(field.default_factory())  # type: ignore[call-arg]
    return schema


def _models_under(model: type[BaseModel]) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []

    def visit(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation not in found:
                found.append(annotation)
                for field in annotation.model_fields.values():
                    visit(field.annotation)
            return
        for arg in typing.get_args(annotation):
            visit(arg)

    visit(model)
    return found
