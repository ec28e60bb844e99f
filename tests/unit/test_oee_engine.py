"""OEE engine against the standard definitions and published worked examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from collector.oee import (
    CountRecord,
    OeeInputError,
    OeeInputs,
    OeeSettings,
    ProductionRun,
    StateClass,
    StateInterval,
    TimeSpan,
    compute_oee,
    rollup,
)

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def machine(
    planned_min: float,
    running_min: float,
    ideal_cycle_time_s: float,
    total: int,
    good: int,
) -> OeeInputs:
    """A machine planned for ``planned_min`` that runs ``running_min`` then stops."""
    states = [StateInterval(at(0), at(running_min), "running")]
    if running_min < planned_min:
        states.append(StateInterval(at(running_min), None, "unplanned_stop", 1))
    return OeeInputs(
        states=states,
        counts=[CountRecord(at(1), good, total - good)],
        runs=[ProductionRun(at(-1), None, "p", ideal_cycle_time_s)],
        planned=[TimeSpan(at(0), at(planned_min))],
    )


# (name, planned min, running min, ideal cycle s, total, good, A, P, Q)
WORKED = [
    # oee.com / Vorne "Fast Guide to OEE": 420 min planned (480 - 60 breaks), 47 down.
    ("oee.com", 420, 373, 1.0, 19271, 18848, (373, 420), (19271, 22380), (18848, 19271)),
    # Nakajima-style textbook case: 460 min loading, 60 min down, 0.5 min cycle,
    # 400 parts, 98 % good: A 86.96 %, P 50 %, Q 98 %.
    ("textbook", 460, 400, 30.0, 400, 392, (40, 46), (1, 2), (98, 100)),
    # The `oee` package README's machines m1 and m2 (units are minutes there).
    ("m1", 100, 90, 60.0, 80, 80, (9, 10), (8, 9), (1, 1)),
    ("m2", 300, 150, 60.0, 150, 135, (1, 2), (1, 1), (9, 10)),
]


@pytest.mark.parametrize(
    ("planned", "running", "ict", "total", "good", "a", "p", "q"),
    [w[1:] for w in WORKED],
    ids=[w[0] for w in WORKED],
)
def test_worked_examples(planned, running, ict, total, good, a, p, q) -> None:
    result = compute_oee(machine(planned, running, ict, total, good), at(0), at(planned))
    assert result.availability.value == Fraction(*a)
    assert result.performance.value == Fraction(*p)
    assert result.quality.value == Fraction(*q)
    assert result.oee.value == Fraction(*a) * Fraction(*p) * Fraction(*q)
    assert result.flags == ()


def test_oee_com_example_percentages() -> None:
    result = compute_oee(machine(420, 373, 1.0, 19271, 18848), at(0), at(420))
    shown = [
        round(100 * float(r.value), 2)
        for r in (result.availability, result.performance, result.quality, result.oee)
    ]
    assert shown == [88.81, 86.11, 97.8, 74.79]


def test_rollup_adds_components_instead_of_averaging() -> None:
    # The `oee` README: line OEE 0.5375, not the 0.625 average of 0.80 and 0.45.
    m1 = compute_oee(machine(100, 90, 60.0, 80, 80), at(0), at(100))
    m2 = compute_oee(machine(300, 150, 60.0, 150, 135), at(0), at(300))
    assert m1.oee.value == Fraction(8, 10)
    assert m2.oee.value == Fraction(45, 100)
    line = rollup([m1, m2])
    assert line.oee.value == Fraction(5375, 10000)
    assert line.availability.value == Fraction(240, 400)
    assert line.quality.value == Fraction(215, 230)


def test_rollup_quality_is_good_over_total_across_cycle_times() -> None:
    # The `oee` package weights quality by ideal time in its aggregate (0.8 here); ISO
    # 22400 quality is good / total parts: 35 / 40.
    a = compute_oee(machine(100, 50, 120.0, 10, 5), at(0), at(100))
    b = compute_oee(machine(100, 50, 60.0, 30, 30), at(0), at(100))
    assert rollup([a, b]).quality.value == Fraction(35, 40)


def test_empty_rollup_is_undefined_not_nan() -> None:
    result = rollup([])
    assert result.oee.value is None
    assert result.availability.reason == "no planned busy time in the window"


def test_broken_down_all_shift_has_zero_oee() -> None:
    inputs = OeeInputs(states=[StateInterval(at(-5), None, "unplanned_stop", 4)])
    result = compute_oee(inputs, at(0), at(60))
    assert result.availability.value == 0
    assert result.performance.value is None
    assert result.quality.value is None
    assert result.oee.value == 0


def test_six_losses_add_up_to_planned_busy_time_minus_good_ideal_time() -> None:
    inputs = OeeInputs(
        states=[
            StateInterval(at(0), at(20), "changeover"),
            StateInterval(at(20), at(21), "unplanned_stop", 2),  # micro-stop
            StateInterval(at(21), at(50), "running"),
            StateInterval(at(50), at(60), "unplanned_stop", 7),
            StateInterval(at(60), None, "running"),
        ],
        counts=[CountRecord(at(30), 100, 30), CountRecord(at(90), 400, 20)],
        runs=[ProductionRun(at(20), None, "p", 4.0)],
    )
    result = compute_oee(inputs, at(0), at(90), OeeSettings(startup_period_s=600))
    losses = result.six_losses
    total = sum(Fraction(getattr(losses, n)) for n in type(losses).__slots__)
    c = result.components
    assert total == Fraction(c.planned_busy_time_us, 10**6) - c.good_ideal_time_s
    assert losses.setup_changeover_s == 1200
    assert losses.small_stops_s == 60
    assert losses.breakdowns_s == 600
    assert losses.startup_rejects_s == 30 * 4  # scrap counted within 10 min of run start
    assert losses.production_rejects_s == 20 * 4


def test_ideal_cycle_time_comes_from_the_run_covering_the_count() -> None:
    # A count at the instant a run ends belongs to it: its parts were made before.
    inputs = OeeInputs(
        states=[StateInterval(at(0), None, "running")],
        counts=[CountRecord(at(30), 100, 0), CountRecord(at(60), 100, 0)],
        runs=[ProductionRun(at(0), at(30), "a", 6.0), ProductionRun(at(30), None, "b", 12.0)],
    )
    result = compute_oee(inputs, at(0), at(60))
    assert result.components.ideal_time_s == 100 * 6 + 100 * 12


def test_open_stop_is_not_a_micro_stop() -> None:
    inputs = OeeInputs(
        states=[
            StateInterval(at(0), at(59), "running"),
            StateInterval(at(59), None, "unplanned_stop"),
        ]
    )
    result = compute_oee(inputs, at(0), at(60))
    assert result.components.micro_stop_us == 0
    assert result.components.downtime_us == 60 * 10**6


def test_states_configured_as_performance_loss_stay_in_production_time() -> None:
    inputs = OeeInputs(
        states=[
            StateInterval(at(0), at(30), "running"),
            StateInterval(at(30), at(40), "starved"),
            StateInterval(at(40), None, "running"),
        ],
        counts=[CountRecord(at(60), 50, 0)],
        runs=[ProductionRun(at(0), None, "p", 60.0)],
    )
    settings = OeeSettings(classification={"starved": StateClass.PERFORMANCE_LOSS})
    result = compute_oee(inputs, at(0), at(60), settings)
    assert result.availability.value == 1
    assert result.performance.value == Fraction(50, 60)
    assert result.six_losses.small_stops_s == 600


def test_unknown_state_is_downtime_and_flagged() -> None:
    inputs = OeeInputs(states=[StateInterval(at(0), None, "exploded")])
    result = compute_oee(inputs, at(0), at(10))
    assert result.components.downtime_by_state_us == {"exploded": 600 * 10**6}
    assert "unknown_state" in result.flag_codes()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: compute_oee(OeeInputs(), datetime(2026, 1, 5), at(1)), "has no timezone"),
        (lambda: compute_oee(OeeInputs(), at(1), at(1)), "strictly increasing"),
        (
            lambda: compute_oee(OeeInputs(counts=[CountRecord(at(1), -1, 0)]), at(0), at(2)),
            "good must be an integer >= 0",
        ),
        (
            lambda: OeeSettings(classification={"idle": StateClass.PRODUCTION}),
            "only 'running' can be production time",
        ),
        (lambda: OeeSettings(micro_stop_threshold_s=float("nan")), "micro_stop_threshold_s"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(make, message) -> None:
    with pytest.raises(OeeInputError, match=message):
        make()
