"""Where counts may be summed before the engine sees them (a pure helper for the shell).

The engine attributes a count at time ``t`` by three things: its bucket
``(b_i, b_i+1]``, the production run covering ``t`` (the latest run starting before
``t``, if ``t`` is not after that run's end) and whether ``t`` falls in that run's
startup period. All three change only at bucket boundaries, run starts, run ends and
run start + startup period, each with the same ``(lo, hi]`` convention. So between two
consecutive cut points, counts of one product are attributed alike, and their sum,
placed at the latest of their times, gives the engine exactly the same result: the
store can add them up (in SQL) instead of shipping every count.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from collector.oee.inputs import OeeSettings, ProductionRun


def count_cut_points(
    runs: Sequence[ProductionRun], boundaries: Sequence[datetime], settings: OeeSettings
) -> list[datetime]:
    """Sorted instants inside ``[boundaries[0], boundaries[-1]]`` at which the engine's
    attribution of counts may change (boundaries included)."""
    first, last = boundaries[0], boundaries[-1]
    startup = timedelta(seconds=settings.startup_period_s)
    cuts = set(boundaries)
    for run in runs:
        cuts.add(run.start)
        if run.end is not None:
            cuts.add(run.end)
        if startup:
            cuts.add(run.start + startup)
    return sorted({c.astimezone(UTC) for c in cuts if first <= c <= last})
