"""Make a loaded configuration smaller in memory without changing what it says.

A 10,700-tag configuration took about 16 MB as pydantic models: every model instance
carries its own ``__pydantic_fields_set__`` set (about 220 bytes) and thousands of tags
carry equal sampling settings as separate instances. The models are frozen, so equal
sub-models can be one shared instance, and equal fields-set sets one shared set (pydantic
only ever mutates a copy: ``model_copy`` copies the set before updating it, and frozen
models refuse attribute assignment).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def share_equal_parts(config: BaseModel) -> BaseModel:
    """Share equal frozen sub-models and equal fields-set sets across ``config``; returns it.

    Only frozen models are merged (an unfrozen one could be changed through one of its
    users). Works in place: the top-level object stays the same.
    """
    _Sharer().visit(config)
    return config


class _Sharer:
    def __init__(self) -> None:
        self.fields_sets: dict[frozenset[str], set[str]] = {}
        self.models: dict[BaseModel, BaseModel] = {}

    def visit(self, model: BaseModel) -> None:
        fields_set = model.__pydantic_fields_set__
        shared = self.fields_sets.setdefault(frozenset(fields_set), fields_set)
        object.__setattr__(model, "__pydantic_fields_set__", shared)
        values = model.__dict__
        for name, value in values.items():
            replacement = self.share(value)
            if replacement is not value:
                values[name] = replacement

    def share(self, value: Any) -> Any:
        if isinstance(value, BaseModel):
            self.visit(value)
            if not value.model_config.get("frozen"):
                return value
            try:
                return self.models.setdefault(value, value)
            except TypeError:  # a field holds a list or dict: not hashable, keep it
                return value
        if isinstance(value, list):
            for index, item in enumerate(value):
                replacement = self.share(item)
                if replacement is not item:
                    value[index] = replacement
        elif isinstance(value, tuple):
            return tuple(self.share(item) for item in value)
        elif isinstance(value, dict):
            for key, item in value.items():
                replacement = self.share(item)
                if replacement is not item:
                    value[key] = replacement
        return value
