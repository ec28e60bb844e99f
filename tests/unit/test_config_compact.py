"""Sharing equal parts of a loaded configuration changes its memory, not its meaning."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from edge_agent.config.compact import share_equal_parts


class Sampling(BaseModel):
    model_config = ConfigDict(frozen=True)
    interval_ms: int = 1000


class Loose(BaseModel):  # not frozen: never merged
    note: str = "x"


class Tag(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    sampling: Sampling
    loose: Loose
    labels: list[str] = []


class Config(BaseModel):
    model_config = ConfigDict(frozen=True)
    tags: list[Tag]


def make() -> Config:
    return Config(
        tags=[
            Tag(name=f"t{i}", sampling=Sampling(interval_ms=500 * (i % 2)), loose=Loose())
            for i in range(6)
        ]
    )


def test_equal_frozen_parts_become_one_instance_and_the_config_stays_equal() -> None:
    config = share_equal_parts(make())
    assert config == make()
    assert config.model_dump() == make().model_dump()
    samplings = {id(tag.sampling) for tag in config.tags}
    assert len(samplings) == 2  # two distinct settings, one instance each
    assert len({id(tag.loose) for tag in config.tags}) == 6  # unfrozen: left alone
    field_sets = {id(tag.__pydantic_fields_set__) for tag in config.tags}
    assert len(field_sets) == 1


def test_copies_with_updates_do_not_leak_into_the_shared_parts() -> None:
    config = share_equal_parts(make())
    first = config.tags[0]
    changed = first.model_copy(update={"labels": ["a"]})
    assert changed.labels == ["a"]
    assert "labels" in changed.model_fields_set
    assert all("labels" not in tag.model_fields_set for tag in config.tags)  # shared set intact
