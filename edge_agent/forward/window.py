"""Batches published and not yet confirmed: the forwarder's bounded window (pure).

A batch enters the window when it is first published and leaves when it is confirmed
(the collector's ack, or the broker's PUBACK in ``ack_mode: broker``). While paho still
waits for the PUBACK of its latest publish, paho itself re-sends it after a reconnect;
once PUBACKed, the batch waits for the collector until its deadline and is then
published again with the same ``batch_id``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class InflightBatch:
    """One published batch, kept (with its bytes, for resending) until confirmed."""

    batch_id: str
    topic: str
    payload: bytes
    rowids: list[int]
    historical: bool
    deadline: float
    """Monotonic time at which the batch is published again if still unconfirmed."""
    mid: int | None = None
    """paho message id of the latest publish while its PUBACK is outstanding."""
    broker_acked: bool = False
    sends: int = 0


class Window:
    """Unconfirmed batches, by batch id and by paho message id, with their total size.

    The bounds (``max_batches``, ``max_bytes``) are applied by the publisher, which may
    give a lane less of them; the window only keeps the counts.
    """

    def __init__(self, max_batches: int, max_bytes: int) -> None:
        self.max_batches = max_batches
        self.max_bytes = max_bytes
        self.bytes = 0
        """Payload bytes of the unconfirmed batches."""
        self._by_id: dict[str, InflightBatch] = {}
        self._by_mid: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    @property
    def awaiting_puback(self) -> int:
        """Publishes the broker has not acknowledged yet (MQTT's own inflight count)."""
        return len(self._by_mid)

    @property
    def events(self) -> int:
        """Events in unconfirmed batches."""
        return sum(len(batch.rowids) for batch in self._by_id.values())

    def sent(self, batch: InflightBatch, mid: int | None, deadline: float) -> None:
        """Record a (re)publish: ``mid`` is None when paho did not take the message."""
        if batch.mid is not None:
            self._by_mid.pop(batch.mid, None)
        if batch.batch_id not in self._by_id:
            self._by_id[batch.batch_id] = batch
            self.bytes += len(batch.payload)
        batch.mid = mid
        batch.broker_acked = False
        batch.deadline = deadline
        batch.sends += 1
        if mid is not None:
            self._by_mid[mid] = batch.batch_id

    def on_puback(self, mid: int) -> InflightBatch | None:
        """The batch whose latest publish this PUBACK confirms, or None (not ours/stale)."""
        batch_id = self._by_mid.pop(mid, None)
        batch = self._by_id.get(batch_id) if batch_id is not None else None
        if batch is None or batch.mid != mid:
            return None
        batch.mid = None
        batch.broker_acked = True
        return batch

    def puback_failed(self, batch: InflightBatch, retry_at: float) -> None:
        """The broker refused the publish (MQTT 5 reason >= 0x80): publish again later."""
        batch.broker_acked = False
        batch.deadline = retry_at

    def pop(self, batch_id: str) -> InflightBatch | None:
        """Remove a confirmed batch; None when unknown (already confirmed, or not ours)."""
        batch = self._by_id.pop(batch_id, None)
        if batch is None:
            return None
        self.bytes -= len(batch.payload)
        if batch.mid is not None:
            self._by_mid.pop(batch.mid, None)
        return batch

    def due(self, now: float) -> list[InflightBatch]:
        """Batches to publish again: deadline passed and no PUBACK outstanding."""
        return [
            batch for batch in self._by_id.values() if batch.mid is None and batch.deadline <= now
        ]

    def next_deadline(self) -> float | None:
        """Earliest deadline among batches that are not waiting for a PUBACK."""
        return min(
            (batch.deadline for batch in self._by_id.values() if batch.mid is None),
            default=None,
        )

    def expire_all(self, now: float) -> None:
        """Make every broker-acked batch due now (the broker lost the session: no ack will
        come for them)."""
        for batch in self._by_id.values():
            if batch.mid is None:
                batch.deadline = now
