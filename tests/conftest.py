"""Suite-wide test ordering: the slowest tests first.

``./lineside test`` runs the suite on two pytest-xdist workers with ``--dist loadfile
--no-loadscope-reorder``: each test file is handed whole to whichever worker is free (so
module fixtures, such as the end-to-end runs, are made once), in the order the files
first appear in the collection. Starting the files of the few long tests (whole
pipelines, outages of a minute, mostly waiting on the wall clock) first lets the many
short ones fill in around them, so the suite takes about its longest chain of files
instead of the sum. ``@pytest.mark.slow(seconds)`` declares a test's usual duration;
serial runs use the same order. (Not ``--dist loadgroup``: with pytest 9.2,
pytest-xdist 3.8's ``xdist_group`` no longer changes node ids, so groups were split.)
"""

from __future__ import annotations

import pytest


def _declared_seconds(item: pytest.Item) -> float:
    marker = item.get_closest_marker("slow")
    if marker is None:
        return 0.0
    return float(marker.args[0]) if marker.args else 30.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # sorted() is stable: equal estimates (0 for most tests) keep pytest's order
    items[:] = sorted(items, key=lambda item: -_declared_seconds(item))
