"""Garbage-collector settings for long-running services with large, long-lived state.

Both the simulator (a 10k-node address space) and the agent (10k tags of configuration,
derivers and client objects) build most of their objects at start and then churn many
short-lived ones (samples, events, protocol messages). Call
:func:`settle_long_lived_objects` once startup is done.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000


def settle_long_lived_objects() -> None:
    """Freeze what exists now and collect young objects less often.

    ``gc.freeze()`` keeps the collector from walking the startup objects on every full
    collection (full collections paused the simulator 0.2-0.5 s with 10k OPC UA nodes);
    a higher young-generation threshold trades a little memory for about 10% less CPU
    (measured on the simulator's 100-machine scenario).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 50, 100)
