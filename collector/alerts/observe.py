"""Observations for the alert rules from the stored facts (the shell around ``evaluate``).

* ``stop_longer_than`` and ``offline`` read every equipment's current state once per
  evaluation (``collector.queries.timeline.current_states``);
* ``oee_below`` computes the current shift's OEE with the API's read model
  (``collector.queries.oee.oee_report``), one report per line: a line's total, or each
  equipment's own figure from the same report.

A rule whose observation fails (a query error) is left out of the evaluation, so its
open episodes are neither resolved nor re-raised; database errors propagate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg

from collector.masterdata import MasterData
from collector.oee import OeeError, OeeResult
from collector.queries import (
    EquipmentRef,
    OeeRequest,
    QueryError,
    Scope,
    list_equipment,
    oee_report,
)
from collector.queries.shifts import current_window
from collector.queries.timeline import CurrentState, current_states
from lineside_protocol.states import OFFLINE

from .config import OeeBelowRule, OfflineRule, StopLongerThanRule
from .evaluate import AnyRule, Observation, RuleTiming, Subject, timing_of


@dataclass
class Observed:
    """One round of observations: what was seen, and which rules were evaluated."""

    observations: list[Observation] = field(default_factory=list)
    timings: dict[str, RuleTiming] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def observe(
    conn: psycopg.Connection, masterdata: MasterData, rules: Sequence[AnyRule], now: datetime
) -> Observed:
    """Observe every rule at ``now`` (timezone-aware UTC)."""
    observed = Observed()
    states: list[CurrentState] | None = None
    for rule in rules:
        try:
            if isinstance(rule, OeeBelowRule):
                found = oee_observations(conn, masterdata, rule, now)
            else:
                if states is None:
                    states = current_states(conn)
                covered = [s for s in states if covers(rule.ids, s.equipment.key)]
                if isinstance(rule, StopLongerThanRule):
                    found = [stop_observation(rule, state, now) for state in covered]
                else:
                    found = [offline_observation(rule, state, now) for state in covered]
        except (QueryError, OeeError) as exc:
            observed.errors[rule.name] = str(exc)
            continue
        observed.observations.extend(found)
        observed.timings[rule.name] = timing_of(rule)
    return observed


def covers(ids: Sequence[str] | None, key: str) -> bool:
    """True when ``key`` (``site/area/line[/equipment]``) is one of ``ids`` or below one."""
    if ids is None:
        return True
    return any(key == i or key.startswith(i + "/") for i in ids)


def subject_of(ref: EquipmentRef, *, line_only: bool = False) -> Subject:
    """The subject of an equipment, or of its line."""
    p = ref.path
    return Subject(p.enterprise, p.site, p.area, p.line, None if line_only else p.equipment)


def stop_observation(rule: StopLongerThanRule, state: CurrentState, now: datetime) -> Observation:
    """In one of the rule's states: the stop's own age is the value; held since its start."""
    stopped = state.state in rule.states and state.since is not None
    return Observation(
        rule=rule.name,
        subject=subject_of(state.equipment),
        condition=stopped,
        observed_at=now,
        value=_age_s(now, state.since) if stopped else None,
        since=state.since if stopped else None,
        details=_state_details(state),
    )


def offline_observation(rule: OfflineRule, state: CurrentState, now: datetime) -> Observation:
    """In state offline (held since that state began), or silent: no event stored for
    ``for_s`` (held since the last one, so it breaches at once)."""
    silent = _age_s(now, state.last_seen) >= rule.for_s
    offline = state.state == OFFLINE and state.since is not None
    since = state.since if offline else state.last_seen if silent else None
    return Observation(
        rule=rule.name,
        subject=subject_of(state.equipment),
        condition=since is not None,
        observed_at=now,
        value=None if since is None else _age_s(now, since),
        since=since,
        details=_state_details(state) | {"silent": silent},
    )


def oee_observations(
    conn: psycopg.Connection, masterdata: MasterData, rule: OeeBelowRule, now: datetime
) -> list[Observation]:
    """Current-shift OEE of each line (or equipment) the rule covers, one report per line.

    Outside shifts, and while OEE is not defined (no planned time yet, no ideal cycle
    times), the condition does not hold: such a subject never breaches, and an open
    episode resolves (at the end of the shift, say).
    """
    lines: dict[Subject, list[EquipmentRef]] = {}
    for ref in list_equipment(conn):
        line = subject_of(ref, line_only=True)
        key = line.key if rule.scope == "line" else ref.key
        if covers(rule.ids, key):
            lines.setdefault(line, []).append(ref)
    observations: list[Observation] = []
    for line, refs in lines.items():
        subjects = [line] if rule.scope == "line" else [subject_of(ref) for ref in refs]
        window = current_window(masterdata, refs, now)
        if window is None or window.start >= now:
            details: dict[str, object] = {"window": None}
            observations.extend(_oee_observation(rule, s, now, None, details) for s in subjects)
            continue
        report = oee_report(
            conn, masterdata, OeeRequest(Scope.LINE, line.key, window.start, window.end), now
        )
        details = {
            "window": {
                "start": _wire_time(window.start),
                "end": _wire_time(window.end),
                "label": window.label,
                "from_calendar": window.from_calendar,
            },
        }
        if rule.scope == "line":
            result = report.total
            observations.append(
                _oee_observation(rule, line, now, result, details | _figures(result))
            )
            continue
        by_key = {ref.key: result for ref, result in report.by_equipment}
        for subject in subjects:
            result = by_key.get(subject.key)
            extra = {} if result is None else _figures(result)
            observations.append(_oee_observation(rule, subject, now, result, details | extra))
    return observations


def _oee_observation(
    rule: OeeBelowRule,
    subject: Subject,
    now: datetime,
    result: OeeResult | None,
    details: dict[str, object],
) -> Observation:
    oee = None if result is None else result.oee.as_float()
    return Observation(
        rule=rule.name,
        subject=subject,
        condition=oee is not None and oee < rule.threshold,
        observed_at=now,
        value=oee,
        details=details,
    )


def _figures(result: OeeResult) -> dict[str, float | None]:
    return {
        "oee": result.oee.as_float(),
        "availability": result.availability.as_float(),
        "performance": result.performance.as_float(),
        "quality": result.quality.as_float(),
    }


def _state_details(state: CurrentState) -> dict[str, object]:
    return {
        "state": state.state,
        "state_since": None if state.since is None else _wire_time(state.since),
        "reason_code": state.reason_code,
        "last_seen": _wire_time(state.last_seen),
    }


def _age_s(now: datetime, then: datetime) -> float:
    return round((now - then).total_seconds(), 3)


def _wire_time(moment: datetime) -> str:
    """As timestamps are on the wire: UTC, milliseconds, ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
