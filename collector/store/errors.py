"""Exceptions of ``collector.store``: one hierarchy, messages name the thing and the fix."""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error raised on purpose by ``collector.store``."""


class MigrationError(StoreError):
    """A migration file or the recorded migration history is not usable."""


class PartitionError(StoreError):
    """Partition maintenance could not be done (bad arguments, a lock not obtained)."""


class ConnectionStateError(StoreError):
    """The connection handed in is not in a state the function can work with."""


class UnstorableBatchError(StoreError):
    """A batch holds a value PostgreSQL cannot store (for example a count above 2**63-1).

    Nothing was written. The caller should store that batch as a dead letter (reason
    ``invalid_event``, ``detail`` = ``str(error)``) and write the other batches again.
    """

    def __init__(self, batch_index: int, batch_id: str, detail: str) -> None:
        super().__init__(f"batch {batch_id} (index {batch_index}): {detail}")
        self.batch_index = batch_index
        self.batch_id = batch_id
        self.detail = detail
