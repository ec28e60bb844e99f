"""One read of one tag, for ``edge-agent read`` (a technician's first check)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from edge_agent.config.models import AgentConfig, PollSampling
from edge_agent.config.roles import tags_by_connection
from edge_agent.samples import ConnectionChange, Sample
from edge_agent.sources.factory import build_source


@dataclass(frozen=True)
class ReadResult:
    sample: Sample | None
    connection_problem: str | None


def find_tag(config: AgentConfig, tag_id: str) -> tuple[str, list[str]]:
    """The connection of ``equipment.tag``; raise KeyError listing the known tags."""
    for connection, tags in tags_by_connection(config).items():
        if any(full_id == tag_id for full_id, _ in tags):
            return connection, []
    known = sorted(full_id for tags in tags_by_connection(config).values() for full_id, _ in tags)
    raise KeyError(tag_id, known)


async def read_once(config: AgentConfig, tag_id: str, timeout_s: float) -> ReadResult:
    """Poll ``tag_id`` until one sample arrives, the connection fails, or the timeout."""
    connection_id, _ = find_tag(config, tag_id)
    tag = next(t for full_id, t in tags_by_connection(config)[connection_id] if full_id == tag_id)
    poll = PollSampling(interval_s=0.2)
    source = build_source(
        config,
        config.connection(connection_id),
        [(tag_id, tag.model_copy(update={"sampling": poll}))],
    )
    stop = asyncio.Event()
    found: list[Sample] = []
    problems: list[str] = []

    def emit(items: list[Sample | ConnectionChange]) -> None:
        for item in items:
            if isinstance(item, Sample) and item.tag == tag_id:
                found.append(item)
                stop.set()
            elif isinstance(item, ConnectionChange) and not item.connected:
                problems.append(item.detail or "connection lost")

    task = asyncio.create_task(source.run(emit, stop))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout_s)
    stop.set()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        await asyncio.wait_for(task, 10)
    if not task.done():
        task.cancel()
    problem = problems[-1] if problems else (None if found else f"no answer within {timeout_s} s")
    return ReadResult(found[0] if found else None, problem)
