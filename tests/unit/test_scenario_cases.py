"""Regression cases kept as data: tests/cases/scenario/<case>/{scenario.yaml,expected_error.txt}."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.errors import ScenarioError
from simulators.scenario.loader import parse_scenario
from simulators.scenario.models import Scenario

CASES = sorted((Path(__file__).parent.parent / "cases" / "scenario").iterdir())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_scenario_case(case: Path) -> None:
    text = (case / "scenario.yaml").read_text()
    expected_error = case / "expected_error.txt"
    if expected_error.exists():
        expected = expected_error.read_text().strip()
        if expected.startswith("machine "):  # needs the start date: checked at run time
            from datetime import UTC, datetime

            from simulators.runtime import timeline_problems

            scenario = parse_scenario(text, "scenario.yaml")
            problems = timeline_problems(scenario, datetime(2026, 1, 5, tzinfo=UTC))
            assert any(p.startswith(expected) for p in problems), problems
            return
        with pytest.raises(ScenarioError) as caught:
            parse_scenario(text, "scenario.yaml")
        rendered = [issue.render() for issue in caught.value.issues]
        assert any(line.startswith(expected) for line in rendered), rendered
    else:
        assert isinstance(parse_scenario(text, "scenario.yaml"), Scenario)


def test_every_issue_is_reported_not_just_the_first() -> None:
    text = (
        "scenario: many\n"
        "speeed: 3\n"
        "machines:\n"
        "  - name: press-1\n"
        "    location: {site: s1, area: a1}\n"
        "    products: [{id: A, ideal_cycle_time_s: 0}]\n"
        "    timeline: ['06:00 run A']\n"
    )
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "many.yaml")
    rendered = [issue.render() for issue in caught.value.issues]
    assert rendered == [
        "many.yaml:2:1: speeed: unknown key (check the spelling; see docs/simulators.md for "
        "valid keys); did you mean 'seed'?",
        "many.yaml:5:5: machines[0].location.line: required key is missing",
        "many.yaml:6:24: machines[0].products[0].ideal_cycle_time_s: Input should be greater "
        "than 0",
    ]
