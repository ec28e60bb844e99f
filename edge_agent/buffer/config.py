"""``BufferConfig``: the ``buffer:`` section of the agent's YAML (pydantic v2).

The field descriptions become the documented configuration schema, so they say what
an operator needs to choose a value; docs/configuration.md ("Store-and-forward
buffer") explains the trade-offs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MIB = 1024 * 1024
GIB = 1024 * MIB
DAY_S = 24 * 3600.0

Durability = Literal["full", "normal", "off"]


class BufferConfig(BaseModel):
    """Where and how the agent keeps events until the collector has them."""

    model_config = ConfigDict(extra="forbid")

    path: Path | None = Field(
        None,
        description="SQLite buffer file; default: <agent.data_dir>/buffer.db. Keep it on a "
        "local disk (not NFS): SQLite's WAL needs shared memory and working locks",
    )
    durability: Durability = Field(
        "full",
        description="full: every group commit is fsync'd and survives a power cut; normal: "
        "survives an agent crash, a power cut can lose the last seconds of commits; off: no "
        "fsync at all, a power cut can corrupt the file (it is then quarantined at start)",
    )
    commit_interval_ms: int = Field(
        10,
        ge=1,
        le=1000,
        description="Longest time an event waits in memory before its group commit starts "
        "(at most 1000 / commit_interval_ms commits per second at a trickle of events); "
        "events not yet committed are lost by a crash",
    )
    commit_max_events: int = Field(
        500,
        ge=1,
        le=1_000_000,
        description="A group commit starts as soon as this many events are waiting: a burst "
        "of changes is committed (and sent) piece by piece while the rest is still being "
        "derived (the agent derives up to 1,000 samples at a time); larger means fewer "
        "fsyncs, later first events",
    )
    max_bytes: int = Field(
        GIB,
        ge=MIB,
        description="Upper bound of the events' encoded size in bytes (the file is about 25 % "
        "larger, plus the WAL). When exceeded the oldest events are dropped and reported as "
        "buffer.overflowed events",
    )
    max_age_s: float = Field(
        7 * DAY_S,
        gt=0,
        allow_inf_nan=False,
        description="Events older than this (seconds since they were committed) are dropped "
        "and reported as buffer.overflowed events",
    )

    def resolved_path(self, default_path: Path) -> Path:
        """The buffer file: ``path`` or, when unset, ``default_path``."""
        return self.path if self.path is not None else default_path
