"""Rollups: equipment -> line -> area -> site.

Components are added up (times, ideal times, counts) and the ratios recomputed from the
sums; percentages are never averaged, so a machine planned for 8 hours weighs eight
times one planned for 1 hour.
"""

from __future__ import annotations

from collections.abc import Iterable

from collector.oee.components import sum_components
from collector.oee.result import OeeResult, result_from_components


def rollup(results: Iterable[OeeResult]) -> OeeResult:
    """The result of a group of equipment (or of consecutive windows of one).

    An empty group gives a result whose ratios are all undefined (``None`` with reasons).
    """
    return result_from_components(sum_components([r.components for r in results]))
