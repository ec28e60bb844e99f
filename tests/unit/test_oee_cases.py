"""OEE regression cases as data: ``tests/cases/oee/<case>/`` holds

- ``input.json``: ``window`` [start, end]; optional ``buckets`` (boundaries), ``planned``
  and ``breaks`` ([[start, end]]; no ``planned`` = 24/7), ``states`` ([start, end|null,
  state, reason_code?]), ``runs`` ([start, end|null, product_id, ideal_cycle_time_s]),
  ``counts`` ([time, good, scrap, product_id?]), ``ideal_cycle_time_by_product_s`` and
  ``settings`` (OeeSettings fields; ``classification`` maps state -> class name);
- ``expected.json``: ``result`` (the window's ``OeeResult.to_dict()``), or ``buckets``
  ([{start, end, result}]) and ``total`` (the rollup of the buckets). Only the keys
  given are compared; numbers to 1e-12 relative, lists element by element.

Times are ``HH:MM[:SS]`` on 2026-01-05 UTC or full ISO 8601. Keys starting with ``#``
are comments.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from collector.oee import (
    CountRecord,
    OeeInputs,
    OeeSettings,
    ProductionRun,
    StateClass,
    StateInterval,
    TimeSpan,
    compute_oee,
    compute_oee_buckets,
    rollup,
)

CASES_DIR = Path(__file__).parent.parent / "cases" / "oee"
CASES = sorted(p for p in CASES_DIR.iterdir() if p.is_dir())
DAY = "2026-01-05"


def parse_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    if "T" not in text:
        text = f"{DAY}T{text}" + (":00" if text.count(":") == 1 else "") + "+00:00"
    return datetime.fromisoformat(text).astimezone(UTC)


def spans(rows: list[list[str]]) -> list[TimeSpan]:
    return [TimeSpan(parse_time(s), parse_time(e)) for s, e in rows]


def inputs_from_json(data: dict[str, Any]) -> OeeInputs:
    return OeeInputs(
        states=[
            StateInterval(parse_time(r[0]), parse_time(r[1]), r[2], r[3] if len(r) > 3 else None)
            for r in data.get("states", [])
        ],
        counts=[
            CountRecord(parse_time(r[0]), r[1], r[2], r[3] if len(r) > 3 else None)
            for r in data.get("counts", [])
        ],
        runs=[
            ProductionRun(parse_time(r[0]), parse_time(r[1]), r[2], r[3])
            for r in data.get("runs", [])
        ],
        planned=spans(data["planned"]) if "planned" in data else None,
        breaks=spans(data.get("breaks", [])),
        ideal_cycle_time_by_product_s=data.get("ideal_cycle_time_by_product_s", {}),
    )


def settings_from_json(data: dict[str, Any]) -> OeeSettings:
    raw = dict(data)
    if "classification" in raw:
        raw["classification"] = {k: StateClass(v) for k, v in raw["classification"].items()}
    for key in ("micro_stop_states", "setup_states"):
        if key in raw:
            raw[key] = frozenset(raw[key])
    return OeeSettings(**raw)


def assert_matches(actual: Any, expected: Any, where: str) -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        for key, value in expected.items():
            if key.startswith("#"):
                continue
            assert key in actual, f"{where}.{key} missing"
            assert_matches(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), where
        assert len(actual) == len(expected), f"{where}: {actual!r}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_matches(a, e, f"{where}[{i}]")
    elif isinstance(expected, (int, float)) and not isinstance(expected, bool):
        assert actual == pytest.approx(expected, rel=1e-12, abs=1e-12), f"{where}: {actual!r}"
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


@pytest.mark.parametrize("case", CASES, ids=[p.name for p in CASES])
def test_case(case: Path) -> None:
    data = json.loads((case / "input.json").read_text())
    expected = json.loads((case / "expected.json").read_text())
    inputs = inputs_from_json(data)
    settings = settings_from_json(data.get("settings", {}))
    start, end = (parse_time(t) for t in data["window"])
    if "result" in expected:
        result = compute_oee(inputs, start, end, settings)
        assert_matches(result.to_dict(), expected["result"], "result")
    if "buckets" in expected:
        bounds = [parse_time(t) for t in data["buckets"]]
        buckets = compute_oee_buckets(inputs, bounds, settings)
        actual = [{"start": b.start, "end": b.end, "result": b.result.to_dict()} for b in buckets]
        want = [
            {**b, "start": parse_time(b["start"]), "end": parse_time(b["end"])}
            for b in expected["buckets"]
        ]
        assert_matches(actual, want, "buckets")
        total = rollup(b.result for b in buckets)
        assert_matches(total.to_dict(), expected["total"], "total")
        # The buckets' rollup is the whole window's result.
        assert total.components == compute_oee(inputs, start, end, settings).components


def test_every_case_has_input_and_expected() -> None:
    assert CASES, "no cases found"
    for case in CASES:
        assert (case / "input.json").is_file(), case
        assert (case / "expected.json").is_file(), case
