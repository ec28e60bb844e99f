"""``edge-agent run``: PLC sources -> pipeline -> SQLite buffer -> MQTT forwarder.

The buffer, the health endpoint and the systemd notifier live as long as the process;
everything a configuration describes (sources, derivers, forwarder) is a *generation*
that a SIGHUP replaces. A reload that fails validation is logged and the running
generation carries on untouched.

Restart safety: each pipeline flush submits its events to the buffer together with the
snapshots of the derivers whose state, order or counters moved (without process
values, the bulk of a snapshot), so that what the buffer holds after a crash is
consistent: counters resume from the baseline of the last committed count and are
never counted twice. Sequence numbers continue from the buffer (see
``edge_agent.sequences``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from edge_agent.buffer import DroppedRange, EventBuffer, overflow_draft
from edge_agent.config.loader import load_config, load_config_in_child
from edge_agent.config.models import AgentConfig
from edge_agent.config.roles import tags_by_connection
from edge_agent.derive import SnapshotError
from edge_agent.forward import Forwarder
from edge_agent.pipeline import CoalescingIntake, EventPipeline
from edge_agent.sequences import SequenceCounter
from edge_agent.service import HealthServer, LoopHeartbeat, SystemdNotifier
from edge_agent.sources import Source
from edge_agent.sources.factory import build_source
from edge_agent.stamp import WireEvent
from edge_agent.status import AgentStatus
from lineside_common.gctune import settle_long_lived_objects
from lineside_common.yamlconfig import ConfigFileError

log = logging.getLogger("lineside.agent")

SAMPLED = "tag.sampled"


def agent_version() -> str:
    try:
        return metadata.version("lineside")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


def config_hash(path: Path) -> str:
    """First 12 hex digits of the file's SHA-256: which configuration is running."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


@dataclass
class Generation:
    """The parts one configuration describes, started and stopped together."""

    config: AgentConfig
    buffer: EventBuffer
    sequences: SequenceCounter
    config_hash: str
    version: str
    sources: list[Source] = field(default_factory=list)
    forwarder: Forwarder | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pipeline = EventPipeline(self.config, self.sequences, self._submit)
        self.intake = CoalescingIntake(self.pipeline)
        for connection_id, tags in tags_by_connection(self.config).items():
            connection = self.config.connection(connection_id)
            self.sources.append(build_source(self.config, connection, tags))
        if self.config.mqtt is not None:
            location = self.config.agent.location
            self.forwarder = Forwarder(
                self.config.mqtt,
                self.buffer,
                self.config.agent.id,
                location,
                self.version,
                self.config_hash,
            )

    def restore(self, snapshots: dict[str, dict]) -> None:
        """Continue each deriver from its snapshot; a bad one starts fresh (logged)."""
        for equipment, snapshot in snapshots.items():
            deriver = self.pipeline.derivers.get(equipment)
            if deriver is None:
                continue  # equipment no longer configured
            try:
                deriver.restore(snapshot)
            except SnapshotError as error:
                log.warning("event=snapshot_ignored equipment=%s reason=%r", equipment, str(error))

    def _submit(self, events: list[WireEvent]) -> None:
        moved = {e["equipment"]["equipment"] for e in events if e["type"] != SAMPLED}
        derivers = self.pipeline.derivers
        snapshots = {
            name: derivers[name].snapshot(process_values=False)
            for name in moved
            if name in derivers
        }
        self.buffer.submit(events, snapshots)

    def start(self) -> None:
        emit = self.intake.emit
        for source in self.sources:
            self._tasks.append(asyncio.create_task(source.run(emit, self._stop)))
        self._tasks.append(asyncio.create_task(self.intake.run(self._stop)))
        if self.forwarder is not None:
            self._tasks.append(asyncio.create_task(self.forwarder.run(self._stop)))

    async def stop(self) -> None:
        """Stop reading, flush the last samples, save full snapshots, stop forwarding."""
        self._stop.set()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.error("event=task_failed error=%r", result)
        self.buffer.submit([], self.pipeline.snapshots())

    def on_dropped(self, ranges: list[DroppedRange]) -> None:
        """Buffer overflow (on the loop): a ``buffer.overflowed`` event per equipment."""
        now = datetime.now(UTC)
        drafts: dict[str, list] = {}
        for dropped in ranges:
            drafts.setdefault(dropped.equipment, []).append(overflow_draft(dropped, now))
            log.error(
                "event=buffer_overflowed equipment=%s dropped_events=%d reason=%s",
                dropped.equipment,
                dropped.dropped_events,
                dropped.reason,
            )
        self.pipeline.on_drafts(drafts)

    def status(self, started_at: str) -> AgentStatus:
        return AgentStatus(
            agent_id=self.config.agent.id,
            version=self.version,
            config_hash=self.config_hash,
            started_at=started_at,
            devices=[device for source in self.sources for device in source.status()],
            buffer=self.buffer.status(),
            forwarder=self.forwarder.status() if self.forwarder is not None else None,
        )


class AgentService:
    """The process: one buffer, health endpoint and notifier; generations come and go."""

    def __init__(self, config_path: Path, config: AgentConfig) -> None:
        self.config_path = config_path
        self.config = config
        self.version = agent_version()
        self.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.generation: Generation | None = None
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        self._buffer: EventBuffer | None = None

    def status(self) -> AgentStatus:
        """For the health server's threads: the running generation's status."""
        generation = self.generation
        if generation is None:  # starting: the buffer is open, the sources not yet
            buffer = self._buffer.status() if self._buffer is not None else None
            return AgentStatus(
                self.config.agent.id, self.version, "", self.started_at, buffer=buffer
            )
        return generation.status(self.started_at)

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload.set)
        buffer = EventBuffer.open(self.config.buffer, self.config.agent.data_dir / "buffer.db")
        self._buffer = buffer
        heartbeat = LoopHeartbeat()
        heartbeat.start()
        health = HealthServer(self.config.health, self.status, heartbeat)
        notifier = SystemdNotifier()
        try:
            if self.config.health.enabled:
                health.start()
            notifier.start_watchdog()
            generation = self._new_generation(self.config, buffer, buffer.next_sequences())
            generation.restore(buffer.load_snapshots())
            self._start(generation, buffer)
            settle_long_lived_objects()  # configuration, derivers, clients: built to last
            notifier.ready(self._summary(generation))
            await self._serve(buffer, notifier)
        finally:
            notifier.stopping()
            if self.generation is not None:
                await self.generation.stop()
            await asyncio.to_thread(buffer.close)
            await notifier.stop_watchdog()
            await asyncio.to_thread(health.stop)
            await heartbeat.stop()
            notifier.close()
            log.info("event=agent_stopped")

    async def _serve(self, buffer: EventBuffer, notifier: SystemdNotifier) -> None:
        stop, reload = asyncio.create_task(self._stop.wait()), None
        try:
            while not self._stop.is_set():
                reload = asyncio.create_task(self._reload.wait())
                await asyncio.wait({stop, reload}, return_when=asyncio.FIRST_COMPLETED)
                if self._reload.is_set() and not self._stop.is_set():
                    self._reload.clear()
                    with notifier.reloading():
                        await self._reload_config(buffer)
        finally:
            for task in (stop, reload):
                if task is not None:
                    task.cancel()

    async def _reload_config(self, buffer: EventBuffer) -> None:
        try:
            # In-process: forking now would copy a process with running threads.
            new_config = await asyncio.to_thread(load_config, self.config_path)
        except ConfigFileError as error:
            log.error(
                "event=reload_rejected config=%s problems=%d detail=%r",
                self.config_path,
                len(error.issues),
                error.report("new configuration rejected, the running one stays"),
            )
            return
        if new_config.buffer != self.config.buffer or new_config.health != self.config.health:
            log.warning("event=reload_partial detail='buffer and health settings apply on restart'")
        old = self.generation
        assert old is not None
        await old.stop()
        generation = self._new_generation(new_config, buffer, old.sequences.next_numbers())
        generation.restore(old.pipeline.snapshots())
        self.config = new_config
        self._start(generation, buffer)
        log.info(
            "event=config_reloaded config=%s hash=%s", self.config_path, generation.config_hash
        )

    def _new_generation(
        self, config: AgentConfig, buffer: EventBuffer, next_numbers: dict[str, int]
    ) -> Generation:
        return Generation(
            config,
            buffer,
            SequenceCounter(next_numbers),
            config_hash(self.config_path),
            self.version,
        )

    def _start(self, generation: Generation, buffer: EventBuffer) -> None:
        loop = asyncio.get_running_loop()
        self.generation = generation
        buffer.on_dropped = lambda ranges: loop.call_soon_threadsafe(generation.on_dropped, ranges)
        generation.start()
        log.info("event=agent_started %s", self._summary(generation))

    def _summary(self, generation: Generation) -> str:
        mqtt = generation.config.mqtt
        broker = f"{mqtt.host}:{mqtt.port or ''}".rstrip(":") if mqtt else "none (buffer only)"
        return (
            f"agent={generation.config.agent.id} version={self.version} "
            f"config_hash={generation.config_hash} connections={len(generation.sources)} "
            f"equipment={len(generation.config.equipment)} broker={broker}"
        )


def run_agent(config_path: Path) -> None:
    """Load the configuration (in a child process, see ``load_config_in_child``), run."""
    config = load_config_in_child(config_path)
    if config.mqtt is None:
        log.warning("event=no_broker detail='no mqtt section: events stay in the buffer'")
    service = AgentService(config_path, config)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(service.run())
