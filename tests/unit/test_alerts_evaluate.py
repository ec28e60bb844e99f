"""The pure core of alerting: when a condition breaches and resolves, and what is sent.

Cases are tables of observations of one rule and subject over time, fed through
``evaluate`` the way the service does it: the episodes it opened are handed back as the
open episodes of the next evaluation (the database's part, simulated here).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.alerts.config import OeeBelowRule, OfflineRule, StopLongerThanRule
from collector.alerts.evaluate import (
    Breach,
    Observation,
    OpenEpisode,
    Resolve,
    RuleTiming,
    Subject,
    breach_event,
    evaluate,
    resolve_event,
    timing_of,
)
from lineside_protocol import alert_topic, decode_alert, encode_alert
from lineside_protocol.alerts import ALERTS_SUBSCRIPTIONS

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
PRESS = Subject("acme", "plant-1", "pressing", "line-3", "press-1")
LINE = Subject("acme", "plant-1", "pressing", "line-3")
RULE = "r"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@dataclass
class Step:
    """One evaluation at ``t``: the condition (None: no observation of the subject)."""

    t: float
    condition: bool | None
    since: float | None = None
    evaluated: bool = True


@dataclass
class Simulation:
    """``evaluate`` over steps, with the open episodes kept as the database would."""

    timing: RuleTiming
    subject: Subject = PRESS

    def __post_init__(self) -> None:
        self.open: dict[tuple[str, str], OpenEpisode] = {}
        self.pending: dict[tuple[str, str], datetime] = {}
        self.log: list[tuple[Any, ...]] = []
        self.episodes = 0

    def step(self, step: Step) -> None:
        now = at(step.t)
        observations = []
        if step.condition is not None:
            since = None if step.since is None else at(step.since)
            observations.append(Observation(RULE, self.subject, step.condition, now, 1.0, since))
        timings = {RULE: self.timing} if step.evaluated else {}
        result = evaluate(observations, timings, self.open, self.pending, now)
        self.pending = result.pending
        for decision in result.decisions:
            key = (RULE, self.subject.key)
            if isinstance(decision, Breach):
                assert key not in self.open, "breach of an open episode"
                self.episodes += 1
                self.open[key] = OpenEpisode(
                    f"e{self.episodes}", RULE, self.subject, decision.since, now
                )
                self.log.append(("breach", step.t, (decision.since - T0).total_seconds()))
            else:
                assert isinstance(decision, Resolve)
                assert self.open.get(key) == decision.episode, "resolve of no open episode"
                del self.open[key]
                self.log.append(("resolve", step.t, decision.reason))

    def run(self, steps: list[Step]) -> list[tuple[Any, ...]]:
        for step in steps:
            self.step(step)
        return self.log


# hold_s, per-since episodes, steps, expected (kind, t, since-or-reason)
CASES = {
    "below-for-less-than-hold-never-fires": (
        10,
        False,
        [Step(0, True), Step(5, True), Step(9.9, True), Step(12, False)],
        [],
    ),
    "below-for-hold-fires-once": (
        10,
        False,
        [Step(0, True), Step(5, True), Step(10, True), Step(12, True), Step(30, True)],
        [("breach", 10, 0.0)],
    ),
    "a-dip-restarts-the-timer": (
        10,
        False,
        [Step(0, True), Step(8, False), Step(9, True), Step(15, True), Step(19, True)],
        [("breach", 19, 9.0)],
    ),
    "breach-then-clear-resolves": (
        0,
        False,
        [Step(0, True), Step(2, True), Step(4, False), Step(6, False)],
        [("breach", 0, 0.0), ("resolve", 4, "cleared")],
    ),
    "hold-zero-fires-at-first-sight": (0, False, [Step(3, True)], [("breach", 3, 3.0)]),
    "a-stop-older-than-the-limit-fires-at-once": (
        300,
        True,
        [Step(400, True, since=0), Step(402, True, since=0)],
        [("breach", 400, 0.0)],
    ),
    "a-stop-fires-when-it-is-min-duration-old": (
        5,
        True,
        [Step(0, True, since=0), Step(4, True, since=0), Step(5, True, since=0)],
        [("breach", 5, 0.0)],
    ),
    "a-new-stop-is-a-new-episode": (
        5,
        True,
        [
            Step(6, True, since=0),
            Step(12, True, since=11),  # ran briefly between two evaluations
            Step(15, True, since=11),
            Step(16, True, since=11),
        ],
        [("breach", 6, 0.0), ("resolve", 12, "cleared"), ("breach", 16, 11.0)],
    ),
    "a-later-since-does-not-split-offline-episodes": (
        5,
        False,
        [Step(10, True, since=0), Step(20, True, since=15)],
        [("breach", 10, 0.0)],
    ),
    "an-unobserved-subject-resolves-out-of-scope": (
        0,
        False,
        [Step(0, True), Step(2, None)],
        [("breach", 0, 0.0), ("resolve", 2, "out_of_scope")],
    ),
    "a-rule-not-evaluated-keeps-its-episode-and-timer": (
        10,
        False,
        [Step(0, True), Step(5, None, evaluated=False), Step(10, True)],
        [("breach", 10, 0.0)],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_breach_and_resolve_table(case: str) -> None:
    hold_s, per_since, steps, expected = CASES[case]
    assert Simulation(RuleTiming(hold_s, per_since)).run(steps) == expected


def test_an_episode_opened_by_another_process_is_left_alone_while_it_holds() -> None:
    episode = OpenEpisode("theirs", RULE, PRESS, at(0), at(10))
    open_ = {(RULE, PRESS.key): episode}
    obs = Observation(RULE, PRESS, True, at(20))
    result = evaluate([obs], {RULE: RuleTiming(10)}, open_, {}, at(20))
    assert result.decisions == ()
    assert result.pending == {}
    cleared = Observation(RULE, PRESS, False, at(22))
    result = evaluate([cleared], {RULE: RuleTiming(10)}, open_, {}, at(22))
    assert result.decisions == (Resolve(episode, at(22), "cleared", cleared),)


def test_rule_timings() -> None:
    stop = StopLongerThanRule(kind="stop_longer_than", name="s", min_duration_s=120)
    offline = OfflineRule(kind="offline", name="o", for_s=30)
    oee = OeeBelowRule(kind="oee_below", name="x", threshold=0.5, for_s=600)
    assert timing_of(stop) == RuleTiming(120, new_episode_per_since=True)
    assert timing_of(offline) == RuleTiming(30)
    assert timing_of(oee) == RuleTiming(600)


steps_strategy = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=20, allow_nan=False),  # time since the last step
        st.sampled_from([True, True, False, None]),  # condition (None: not observed)
        st.booleans(),  # a new since (a new stop) at this step
        st.booleans(),  # the rule was evaluated
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(
    hold_s=st.floats(min_value=0, max_value=30, allow_nan=False),
    per_since=st.booleans(),
    with_since=st.booleans(),
    raw=steps_strategy,
)
def test_episodes_alternate_and_open_exactly_when_the_condition_held_long_enough(
    hold_s: float, per_since: bool, with_since: bool, raw: list[tuple[float, Any, bool, bool]]
) -> None:
    sim = Simulation(RuleTiming(hold_s, per_since))
    t, since, true_from = 0.0, 0.0, None
    for dt, observed, new_since, evaluated in raw:
        t += dt
        condition = observed if evaluated else None  # a failed rule observes nothing
        if condition is not True or new_since:
            since = t
        if condition is False or (condition is None and evaluated):
            true_from = None  # cleared, or out of scope: any episode resolves
        elif condition is True and true_from is None:
            true_from = t
        before, open_before = len(sim.log), sim.open.get((RULE, PRESS.key))
        sim.step(Step(t, condition, since if with_since else None, evaluated))
        for kind, when, detail in sim.log[before:]:
            if kind == "breach":
                assert when - detail >= hold_s - 1e-5, "breached before the hold time"
                if not with_since:
                    assert true_from is not None
                    assert detail >= true_from - 1e-5, "the condition did not hold throughout"
            elif detail == "cleared":
                assert open_before is not None
                restarted = per_since and with_since and at(since) > open_before.since
                assert condition is False or restarted, "resolved while the condition held"
            else:
                assert condition is None, "out of scope while observed"
                assert evaluated
        if condition is True:
            start = since if with_since else true_from
            assert start is not None
            if t - start >= hold_s + 1e-5:
                assert (RULE, PRESS.key) in sim.open, "held long enough but no episode open"
    kinds = [entry[0] for entry in sim.log]
    # never two breaches without a resolve in between; a resolve only after a breach
    assert kinds == ["breach", "resolve"] * (len(kinds) // 2) + ["breach"] * (len(kinds) % 2)


# -- events --------------------------------------------------------------------------------


def stop_rule() -> StopLongerThanRule:
    return StopLongerThanRule(
        kind="stop_longer_than", name="long-stop", min_duration_s=300, severity="critical"
    )


def test_a_breach_and_its_resolve_as_events() -> None:
    rule = stop_rule()
    obs = Observation(
        rule.name,
        PRESS,
        True,
        at(330),
        330.0,
        at(0),
        {"state": "unplanned_stop", "reason_code": 17},
    )
    breach = breach_event(
        Breach(obs, at(0)),
        rule,
        "0190a000-0000-7000-8000-000000000001",
        "0190a000-0000-7000-8000-000000000002",
    )
    assert breach.type == "oee.threshold_breached"
    assert (breach.rule_kind, breach.severity, breach.scope) == (
        "stop_longer_than",
        "critical",
        "equipment",
    )
    assert breach.subject.id == "plant-1/pressing/line-3/press-1"
    assert (breach.value, breach.threshold, breach.unit) == (330.0, 300, "s")
    assert breach.message == (
        "long-stop: equipment plant-1/pressing/line-3/press-1 in unplanned_stop for 5 min "
        "(limit 5 min), reason code 17"
    )
    episode = OpenEpisode(breach.episode_id, rule.name, PRESS, at(0), at(330))
    cleared = Observation(rule.name, PRESS, False, at(900), None, None, {"state": "running"})
    resolved = resolve_event(
        Resolve(episode, at(900), "cleared", cleared), rule, "0190a000-0000-7000-8000-000000000003"
    )
    assert resolved.type == "oee.threshold_resolved"
    assert resolved.episode_id == breach.episode_id
    assert (resolved.breached_at, resolved.resolved_at) == (at(330), at(900))
    assert resolved.resolve_reason == "cleared"
    assert (
        resolved.message == "long-stop: plant-1/pressing/line-3/press-1 back to normal after 15 min"
    )
    assert decode_alert(encode_alert(resolved)) == resolved


def test_an_oee_breach_names_the_shift_and_the_line() -> None:
    rule = OeeBelowRule(kind="oee_below", name="oee-low", threshold=0.65, for_s=600)
    obs = Observation(
        rule.name, LINE, True, at(600), 0.523, None, {"window": {"label": "early 2026-03-02"}}
    )
    event = breach_event(
        Breach(obs, at(0)),
        rule,
        "0190a000-0000-7000-8000-000000000004",
        "0190a000-0000-7000-8000-000000000005",
    )
    assert (event.scope, event.unit) == ("line", "ratio")
    assert event.message == (
        "oee-low: OEE of line plant-1/pressing/line-3 is 52.3% in early 2026-03-02, "
        "below 65.0% for 10 min"
    )


def test_topics_sit_under_the_subjects_subtree() -> None:
    rule = stop_rule()
    obs = Observation(rule.name, PRESS, True, at(1), 1.0, at(0))
    event = breach_event(
        Breach(obs, at(0)),
        rule,
        "0190a000-0000-7000-8000-000000000006",
        "0190a000-0000-7000-8000-000000000007",
    )
    assert alert_topic(event.subject) == "lineside/v1/acme/plant-1/pressing/line-3/press-1/alerts"
    line_event = event.model_copy(
        update={"subject": event.subject.model_copy(update={"equipment": None})}
    )
    assert alert_topic(line_event.subject) == "lineside/v1/acme/plant-1/pressing/line-3/alerts"
    assert ALERTS_SUBSCRIPTIONS == (
        "lineside/v1/+/+/+/+/alerts",
        "lineside/v1/+/+/+/+/+/alerts",
    )


# -- the window of oee_below ---------------------------------------------------------------


def test_without_a_calendar_the_window_is_the_hosts_local_day(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    from collector.masterdata import MasterData
    from collector.queries.scope import EquipmentRef
    from collector.queries.shifts import current_window
    from collector.records import Equipment

    ref = EquipmentRef(1, Equipment("acme", "plant-1", "pressing", "line-3", "press-1"))
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        # 03:30 UTC on 2026-03-09 is still the 8th in New York (EDT began on the 8th)
        window = current_window(MasterData.empty(), [ref], datetime(2026, 3, 9, 3, 30, tzinfo=UTC))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert window is not None
    assert (window.start, window.end) == (
        datetime(2026, 3, 8, 5, 0, tzinfo=UTC),  # midnight EST
        datetime(2026, 3, 9, 4, 0, tzinfo=UTC),  # midnight EDT: a 23-hour day
    )
    assert (window.label, window.from_calendar) == ("day 2026-03-08", False)
