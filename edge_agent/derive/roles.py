"""Tag roles: what each tag of an equipment means to the deriver.

Plain frozen dataclasses that the config layer builds (one ``EquipmentRoles`` per
equipment); ``validate_roles`` checks them and reports every problem at once.

Roles: ``state`` (``StateRole``), ``good_count`` / ``scrap_count`` / ``total_count``
(``CounterRole`` with ``kind``), ``order``, ``product``, ``reason`` and
``process_value``. An equipment reads none or exactly two of the three counters; the
third is derived (total = good + scrap).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from edge_agent.derive.errors import RolesError
from lineside_protocol.states import OFFLINE, CanonicalState

__all__ = ["OFFLINE", "CanonicalState"]  # re-exported: the derive package's public face


class StatePreset(StrEnum):
    """Built-in raw value -> state tables (see ``edge_agent.derive.states``)."""

    CANONICAL = "canonical"
    PACKML = "packml"
    NONE = "none"


RawKey = int | bool | str
"""A raw state value as written in a custom mapping (JSON keys arrive as strings)."""


@dataclass(frozen=True, slots=True)
class StateRole:
    """The state tag: a preset table, overridden/extended entry by entry by ``mapping``.

    A raw value that neither maps to a state is reported as ``unmapped_state``; the
    draft keeps the raw value so the gap in the mapping can be diagnosed.
    """

    preset: StatePreset | str = StatePreset.CANONICAL
    mapping: Mapping[RawKey, CanonicalState | str] = field(default_factory=dict)
    unmapped_state: CanonicalState | str = CanonicalState.UNPLANNED_STOP


class CounterKind(StrEnum):
    GOOD = "good"
    SCRAP = "scrap"
    TOTAL = "total"


@dataclass(frozen=True, slots=True)
class CounterRole:
    """A cumulative part counter that wraps at ``width_bits``.

    ``max_increment`` is the largest plausible increase between two readings
    (default half the counter range); a decrease whose wrap-around delta would exceed
    it is a reset, an increase beyond it is discarded as implausible.
    """

    kind: CounterKind | str
    width_bits: int = 32
    max_increment: int | None = None

    @property
    def modulus(self) -> int:
        return 1 << self.width_bits

    @property
    def plausible_increment(self) -> int:
        if self.max_increment is not None:
            return self.max_increment
        return 1 << (self.width_bits - 1)


@dataclass(frozen=True, slots=True)
class ReasonRole:
    """The stop reason code tag; ``no_reason_code`` (default 0) is reported as None."""

    no_reason_code: int | None = 0


@dataclass(frozen=True, slots=True)
class OrderRole:
    """The current order id; an empty string means no order."""


@dataclass(frozen=True, slots=True)
class ProductRole:
    """The current product id, with the ideal cycle time of each known product."""

    ideal_cycle_time_s: Mapping[str, float] | None = None


@dataclass(frozen=True, slots=True)
class ProcessValueRole:
    """An analog or other value reported as ``tag.sampled``.

    A sample is reported when it differs from the last *reported* value by more than
    every configured deadband: ``deadband_abs`` in the tag's unit and ``deadband_pct``
    percent of the last reported value's magnitude (no range is configured, so the
    percent is relative to the value itself). With both set the larger threshold
    applies, so the absolute one keeps the percent one from reporting noise near zero.
    ``max_interval_s`` reports an unchanged value at least that often (a heartbeat);
    it rides on incoming samples, so it needs a polled tag or the shell's timer.
    """

    unit: str | None = None
    deadband_abs: float | None = None
    deadband_pct: float | None = None
    max_interval_s: float | None = None


Role = StateRole | CounterRole | ReasonRole | OrderRole | ProductRole | ProcessValueRole


@dataclass(frozen=True, slots=True)
class EquipmentRoles:
    """One equipment: its id, the connections it depends on and tag id -> role."""

    equipment: str
    connections: tuple[str, ...]
    tags: Mapping[str, Role]

    def tags_with(self, role_type: type) -> list[str]:
        """Tag ids whose role is an instance of ``role_type``, in configuration order."""
        return [tag for tag, role in self.tags.items() if isinstance(role, role_type)]


_STATES = ", ".join(s.value for s in CanonicalState)
_ROLE_TYPES = "StateRole, CounterRole, ReasonRole, OrderRole, ProductRole, ProcessValueRole"
_SINGLE_ROLES: tuple[tuple[type, str], ...] = (
    (StateRole, "state"),
    (ReasonRole, "reason"),
    (OrderRole, "order"),
    (ProductRole, "product"),
)


def validate_roles(roles: EquipmentRoles) -> None:
    """Raise ``RolesError`` listing every inconsistency in ``roles``; return None if none."""
    problems: list[str] = []
    if not roles.equipment:
        problems.append("the equipment id is empty")
    if not roles.connections:
        problems.append("no connections: list the connection ids its tags are read over")
    for tag, role in roles.tags.items():
        if not tag:
            problems.append("a tag id is empty")
        problems.extend(f"tag {tag!r}: {p}" for p in _role_problems(role))
    for role_type, name in _SINGLE_ROLES:
        tags = roles.tags_with(role_type)
        if len(tags) > 1:
            problems.append(f"only one tag may have role {name}; found {tags}")
    counters = {
        str(role.kind): tag for tag, role in roles.tags.items() if isinstance(role, CounterRole)
    }
    kinds = [str(r.kind) for r in roles.tags.values() if isinstance(r, CounterRole)]
    for kind in sorted(set(kinds)):
        if kinds.count(kind) > 1:
            problems.append(f"only one tag may have role {kind}_count")
    if len(set(kinds)) in (1, 3):
        problems.append(
            "counters: read exactly two of good_count, scrap_count and total_count (the "
            f"third is derived: total = good + scrap); configured: {sorted(counters)}"
        )
    if roles.tags_with(ReasonRole) and not roles.tags_with(StateRole):
        problems.append("a reason tag needs a state tag (the reason refines the state)")
    if problems:
        raise RolesError(roles.equipment, problems)


def _role_problems(role: Role) -> list[str]:
    if isinstance(role, StateRole):
        return _state_problems(role)
    if isinstance(role, CounterRole):
        return _counter_problems(role)
    if isinstance(role, ProductRole):
        return [
            f"ideal_cycle_time_s of product {product!r} is {seconds}; use a number > 0"
            for product, seconds in (role.ideal_cycle_time_s or {}).items()
            if not _positive(seconds)
        ]
    if isinstance(role, ProcessValueRole):
        problems = [
            f"{name} is {value}; use a number >= 0"
            for name, value in (
                ("deadband_abs", role.deadband_abs),
                ("deadband_pct", role.deadband_pct),
            )
            if value is not None and not (_finite(value) and value >= 0)
        ]
        if role.max_interval_s is not None and not _positive(role.max_interval_s):
            problems.append(f"max_interval_s is {role.max_interval_s}; use a number > 0")
        return problems
    if isinstance(role, ReasonRole | OrderRole):
        return []
    return [f"{type(role).__name__} is not a role; use one of {_ROLE_TYPES}"]


def _state_problems(role: StateRole) -> list[str]:
    problems = []
    if str(role.preset) not in {p.value for p in StatePreset}:
        problems.append(f"unknown state preset {role.preset!r}; use canonical, packml or none")
    for raw, state in role.mapping.items():
        if str(state) not in {s.value for s in CanonicalState}:
            problems.append(f"mapping {raw!r} -> {state!r} is not a state; use one of {_STATES}")
    if str(role.unmapped_state) not in {s.value for s in CanonicalState}:
        problems.append(
            f"unmapped_state {role.unmapped_state!r} is not a state; use one of {_STATES}"
        )
    return problems


def _counter_problems(role: CounterRole) -> list[str]:
    problems = []
    if str(role.kind) not in {k.value for k in CounterKind}:
        problems.append(f"unknown counter kind {role.kind!r}; use good, scrap or total")
    if role.width_bits not in (16, 32, 64):
        problems.append(f"width_bits {role.width_bits} is not supported; use 16, 32 or 64")
    elif role.max_increment is not None and not 1 <= role.max_increment < role.modulus:
        problems.append(
            f"max_increment {role.max_increment} is out of range; use 1 to {role.modulus - 1}"
        )
    return problems


def _finite(value: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value: float) -> bool:
    return _finite(value) and value > 0
