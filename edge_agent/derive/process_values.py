"""Process value tags -> ``tag.sampled``, thinned by deadbands and a heartbeat.

A good or uncertain sample is reported when it is the tag's first, when its quality
differs from the last reported one, when it differs from the last *reported* value by
more than the deadband (see ``ProcessValueRole``; comparing with the last reported
value keeps a slow drift from hiding under the deadband), or when ``max_interval_s``
has passed since the last report. Non-numeric values (text, booleans) are reported on
any change.

Bad samples (quality bad, no value, or a NaN/infinite value, which the wire cannot
carry) are not reported one by one: the first after a good one reports a single
``tag.sampled`` with quality ``bad``, the sample's status and the last good value
(the wire requires a value). A tag that was never good reports no bad sample. The
next usable sample is reported whatever the deadband.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edge_agent.derive._json import from_iso, iso
from edge_agent.derive.drafts import EventDraft, EventType
from edge_agent.derive.roles import ProcessValueRole
from edge_agent.samples import Quality, Sample


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def usable_value(sample: Sample) -> bool:
    """True when the sample has a value the wire can carry and the quality is not bad."""
    if sample.quality is Quality.BAD or sample.value is None:
        return False
    return not (isinstance(sample.value, float) and not math.isfinite(sample.value))


def beyond_deadband(role: ProcessValueRole, reported: Any, value: Any) -> bool:
    """True when ``value`` differs from the ``reported`` one by more than the deadband."""
    if not (_number(reported) and _number(value)):
        return type(value) is not type(reported) or value != reported
    threshold = max(role.deadband_abs or 0.0, (role.deadband_pct or 0.0) / 100 * abs(reported))
    return abs(value - reported) > threshold


@dataclass(slots=True)
class _Tag:
    reported_value: Any = None
    reported_quality: str | None = None  # None: never reported
    reported_at: datetime | None = None
    last_good: Any = None
    has_good: bool = False
    # The previous sample, for the fast path (not persisted: a restart takes the slow path).
    seen_value: Any = None
    seen_quality: Quality | None = None


class ProcessValueTracker:
    """Reporting state of the process value tags of one equipment."""

    def __init__(self, equipment: str, roles: dict[str, ProcessValueRole]) -> None:
        self._equipment = equipment
        self._roles = roles
        self._tags: dict[str, _Tag] = {tag: _Tag() for tag in roles}

    def on_sample(self, sample: Sample, order: str | None) -> list[EventDraft]:
        """A tag.sampled draft when ``sample`` should be reported."""
        role, state = self._roles[sample.tag], self._tags[sample.tag]
        value, quality = sample.value, sample.quality
        # Fast path: most polls return what the previous poll did. The same value and
        # quality as the previous sample cannot cross a deadband or change quality
        # (whether or not that sample was reported); only a heartbeat could be due.
        if (
            quality is state.seen_quality
            and value == state.seen_value
            and type(value) is type(state.seen_value)
            and role.max_interval_s is None
        ):
            return []
        state.seen_value, state.seen_quality = value, quality
        if not usable_value(sample):
            if state.reported_quality == Quality.BAD or not state.has_good:
                return []
            return [self._report(sample, state, state.last_good, Quality.BAD, order)]
        state.last_good, state.has_good = value, True
        due = (
            state.reported_quality != quality
            or beyond_deadband(role, state.reported_value, sample.value)
            or self._heartbeat_due(role, state, sample.event_time)
        )
        if not due:
            return []
        return [self._report(sample, state, sample.value, quality, order)]

    @staticmethod
    def _heartbeat_due(role: ProcessValueRole, state: _Tag, at: datetime) -> bool:
        if role.max_interval_s is None or state.reported_at is None:
            return False
        return (at - state.reported_at).total_seconds() >= role.max_interval_s

    def _report(
        self, sample: Sample, state: _Tag, value: Any, quality: Quality, order: str | None
    ) -> EventDraft:
        state.reported_value, state.reported_quality = value, quality.value
        state.reported_at = sample.event_time
        payload = {
            "tag": sample.tag,
            "value": value,
            "unit": self._roles[sample.tag].unit,
            "quality": quality.value,
            "status": sample.status,
        }
        return EventDraft(
            EventType.TAG_SAMPLED,
            self._equipment,
            sample.event_time,
            sample.received_ts,
            payload,
            order,
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            tag: {
                "reported_value": s.reported_value,
                "reported_quality": s.reported_quality,
                "reported_at": iso(s.reported_at),
                "last_good": s.last_good,
                "has_good": s.has_good,
            }
            for tag, s in self._tags.items()
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Take a snapshot; tags no longer configured are dropped, new ones start fresh."""
        for tag, s in data.items():
            if tag in self._tags:
                self._tags[tag] = _Tag(
                    s["reported_value"],
                    s["reported_quality"],
                    from_iso(s["reported_at"]),
                    s["last_good"],
                    bool(s["has_good"]),
                )
