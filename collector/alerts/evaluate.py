"""The pure core of alerting: observations + open episodes + pending timers -> decisions.

Per rule and subject (a line or an equipment) the shell observes whether the rule's
condition holds now. A condition must hold for the rule's ``hold_s`` before it breaches:

* with ``since`` (the facts say when the condition began: a stop's start, the time of
  the last stored event), the hold is measured from it, so a stop breaches as soon as
  it is ``min_duration_s`` old, even if the collector only just started;
* without it (OEE below a threshold), from the first evaluation that saw it hold; that
  start is the "pending" timer, which the shell keeps in the database between
  evaluations (``pending``), so restarts and other collector processes share it.

Open episodes are not remembered here: the database is the authority (several
collector processes evaluate the same rules), so every evaluation gets the episodes open
now and decides against them. Deciding to breach a subject that another process opened
meanwhile is harmless: the store lets one insert win.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from lineside_protocol.alerts import ALERT_BREACHED, ALERT_RESOLVED, AlertEvent, AlertSubject

from .config import OeeBelowRule, OfflineRule, StopLongerThanRule

AnyRule = OeeBelowRule | StopLongerThanRule | OfflineRule


class Subject(NamedTuple):
    """A line (``equipment`` None) or an equipment, by its ISA-95 levels."""

    enterprise: str
    site: str
    area: str
    line: str
    equipment: str | None = None

    @property
    def key(self) -> str:
        """``site/area/line[/equipment]``: the id in the API and in the episode table."""
        levels = (self.site, self.area, self.line, self.equipment)
        return "/".join(level for level in levels if level is not None)

    @property
    def scope(self) -> str:
        return "line" if self.equipment is None else "equipment"


Key = tuple[str, str]
"""(rule name, subject key)."""


@dataclass(frozen=True, slots=True)
class Observation:
    """Whether ``rule``'s condition holds for ``subject`` at ``observed_at``."""

    rule: str
    subject: Subject
    condition: bool
    observed_at: datetime
    value: float | None = None
    """What was measured (OEE ratio, seconds stopped or silent); None if undefined."""
    since: datetime | None = None
    """When the condition began, when the facts say so (else the pending timer)."""
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> Key:
        return (self.rule, self.subject.key)


@dataclass(frozen=True, slots=True)
class RuleTiming:
    """How long a condition must hold, and whether a new ``since`` is a new episode."""

    hold_s: float
    new_episode_per_since: bool = False
    """True for stops: a later start is a new stop, so the old episode resolves."""


@dataclass(frozen=True, slots=True)
class OpenEpisode:
    """An episode open in the database."""

    episode_id: str
    rule: str
    subject: Subject
    since: datetime
    breached_at: datetime


@dataclass(frozen=True, slots=True)
class Breach:
    """Open an episode: the condition has held since ``since`` for long enough."""

    observation: Observation
    since: datetime


@dataclass(frozen=True, slots=True)
class Resolve:
    """Close ``episode``: cleared, or the rule no longer covers its subject."""

    episode: OpenEpisode
    resolved_at: datetime
    reason: str
    observation: Observation | None


Decision = Breach | Resolve


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The decisions of one evaluation (resolves of a key before its breach) and the
    pending timers to keep for the next one."""

    decisions: tuple[Decision, ...]
    pending: dict[Key, datetime]


def evaluate(
    observations: Iterable[Observation],
    timings: Mapping[str, RuleTiming],
    open_episodes: Mapping[Key, OpenEpisode],
    pending: Mapping[Key, datetime],
    now: datetime,
) -> Evaluation:
    """Decide breaches and resolves.

    ``timings`` holds the rules evaluated this time: open episodes of those rules without
    an observation resolve (``out_of_scope``); episodes and timers of other rules (not
    configured here, or their observation failed) are left as they are.
    """
    decisions: list[Decision] = []
    next_pending = {key: start for key, start in pending.items() if key[0] not in timings}
    seen: set[Key] = set()
    for obs in observations:
        timing = timings.get(obs.rule)
        if timing is None or obs.key in seen:
            continue
        seen.add(obs.key)
        episode = open_episodes.get(obs.key)
        if not obs.condition:
            if episode is not None:
                decisions.append(Resolve(episode, obs.observed_at, "cleared", obs))
            continue
        if episode is not None:
            restarted = (
                timing.new_episode_per_since and obs.since is not None and obs.since > episode.since
            )
            if not restarted:
                continue
            decisions.append(Resolve(episode, obs.observed_at, "cleared", obs))
        start = obs.since if obs.since is not None else pending.get(obs.key, obs.observed_at)
        if obs.observed_at - start >= timedelta(seconds=timing.hold_s):
            decisions.append(Breach(obs, start))
        elif obs.since is None:
            next_pending[obs.key] = start
    for key, episode in open_episodes.items():
        if key[0] in timings and key not in seen:
            decisions.append(Resolve(episode, now, "out_of_scope", None))
    return Evaluation(tuple(decisions), next_pending)


def timing_of(rule: AnyRule) -> RuleTiming:
    """The hold time of a rule (stops: their own length; one stop, one episode)."""
    if isinstance(rule, StopLongerThanRule):
        return RuleTiming(rule.min_duration_s, new_episode_per_since=True)
    return RuleTiming(rule.for_s)


# -- the events a decision sends -----------------------------------------------------------


def breach_event(breach: Breach, rule: AnyRule, event_id: str, episode_id: str) -> AlertEvent:
    """The ``oee.threshold_breached`` event of ``breach`` (opens ``episode_id``)."""
    obs = breach.observation
    at = obs.observed_at
    return AlertEvent(
        event_id=event_id,
        type=ALERT_BREACHED,
        occurred_at=at,
        episode_id=episode_id,
        rule=rule.name,
        rule_kind=rule.kind,
        severity=rule.severity,
        scope="line" if obs.subject.equipment is None else "equipment",
        subject=_wire_subject(obs.subject),
        value=obs.value,
        threshold=_threshold(rule),
        unit="ratio" if isinstance(rule, OeeBelowRule) else "s",
        condition_since=breach.since,
        breached_at=at,
        message=_breach_message(rule, obs, breach.since),
        details=dict(obs.details),
    )


def resolve_event(resolve: Resolve, rule: AnyRule, event_id: str) -> AlertEvent:
    """The ``oee.threshold_resolved`` event of ``resolve`` (closes its episode)."""
    episode, obs = resolve.episode, resolve.observation
    lasted = _duration(resolve.resolved_at - episode.since)
    if resolve.reason == "cleared":
        message = f"{rule.name}: {episode.subject.key} back to normal after {lasted}"
    else:
        message = f"{rule.name}: {episode.subject.key} is no longer covered by the rule"
    return AlertEvent(
        event_id=event_id,
        type=ALERT_RESOLVED,
        occurred_at=resolve.resolved_at,
        episode_id=episode.episode_id,
        rule=rule.name,
        rule_kind=rule.kind,
        severity=rule.severity,
        scope="line" if episode.subject.equipment is None else "equipment",
        subject=_wire_subject(episode.subject),
        value=None if obs is None else obs.value,
        threshold=_threshold(rule),
        unit="ratio" if isinstance(rule, OeeBelowRule) else "s",
        condition_since=episode.since,
        breached_at=episode.breached_at,
        resolved_at=resolve.resolved_at,
        resolve_reason="cleared" if resolve.reason == "cleared" else "out_of_scope",
        message=message,
        details={} if obs is None else dict(obs.details),
    )


def _wire_subject(subject: Subject) -> AlertSubject:
    return AlertSubject(
        enterprise=subject.enterprise,
        site=subject.site,
        area=subject.area,
        line=subject.line,
        equipment=subject.equipment,
    )


def _threshold(rule: AnyRule) -> float:
    if isinstance(rule, OeeBelowRule):
        return rule.threshold
    if isinstance(rule, StopLongerThanRule):
        return rule.min_duration_s
    return rule.for_s


def _breach_message(rule: AnyRule, obs: Observation, since: datetime) -> str:
    who = f"{obs.subject.scope} {obs.subject.key}"
    lasted = _duration(obs.observed_at - since)
    if isinstance(rule, OeeBelowRule):
        value = "undefined" if obs.value is None else f"{obs.value:.1%}"
        window = (obs.details.get("window") or {}).get("label", "the current shift")
        return (
            f"{rule.name}: OEE of {who} is {value} in {window}, below {rule.threshold:.1%} "
            f"for {lasted}"
        )
    if isinstance(rule, StopLongerThanRule):
        state = obs.details.get("state", "stopped")
        reason = obs.details.get("reason_code")
        tail = "" if reason is None else f", reason code {reason}"
        limit = _duration(timedelta(seconds=rule.min_duration_s))
        return f"{rule.name}: {who} in {state} for {lasted} (limit {limit}){tail}"
    if obs.details.get("state") == "offline":
        return f"{rule.name}: {who} offline for {lasted}"
    return f"{rule.name}: no event from {who} for {lasted}"


def _duration(span: timedelta) -> str:
    seconds = max(0, round(span.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
