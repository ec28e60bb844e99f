"""``Deriver``: the samples of one equipment -> event drafts (pure: no I/O, no clock).

Samples are taken in batches (``on_samples``): a batch is sorted by event time and
samples sharing an event time form a group, applied in this order, each giving at
most one draft of its kind: order/product (``production.ended`` then
``production.started``), state and reason (``equipment.state_changed``), counters
(``production.counted``), then process values (one ``tag.sampled`` each). So an order
change and the counter reset it causes, or a stop and its reason, read in one poll,
are one change each. Samples of tags without a role are ignored.

Bad-quality samples (or values of the wrong kind) of state, reason, order, product
and counter tags change nothing: nothing is derived from them. Uncertain samples are
used like good ones.

Connections: losing one that the equipment depends on reports state ``offline``
(previous_state = the last reported state) at the time of the loss; the first state
read once every connection is back reports the real state again, no earlier than the
reconnect. Counters keep their baselines across the outage (parts made meanwhile are
counted once at the next reading, interval_start = the last reading before it).
Connection status is not part of the snapshot: after ``restore`` the equipment is
taken as connected, and a state reported ``offline`` before is re-reported on the
next state read.

``correlation_id`` is the current order id (after the group's order change); a
``production.ended`` carries the order it ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import groupby
from typing import Any

from edge_agent.derive.counters import CounterTracker
from edge_agent.derive.drafts import EventDraft, EventType
from edge_agent.derive.errors import SnapshotError
from edge_agent.derive.orders import OrderTracker
from edge_agent.derive.process_values import ProcessValueTracker
from edge_agent.derive.roles import (
    CounterRole,
    EquipmentRoles,
    OrderRole,
    ProcessValueRole,
    ProductRole,
    ReasonRole,
    StateRole,
    validate_roles,
)
from edge_agent.derive.states import StateTracker
from edge_agent.samples import ConnectionChange, Quality, Sample

SNAPSHOT_VERSION = 1


def _single(roles: EquipmentRoles, role_type: type) -> Any:
    tags = roles.tags_with(role_type)
    return roles.tags[tags[0]] if tags else None


class Deriver:
    """Derives the domain events of one equipment from its samples and connections."""

    def __init__(self, roles: EquipmentRoles) -> None:
        validate_roles(roles)
        self.roles = roles
        equipment = roles.equipment
        self._state = StateTracker(equipment, _single(roles, StateRole), _single(roles, ReasonRole))
        self._orders = OrderTracker(equipment, _single(roles, ProductRole))
        self._counters = CounterTracker(roles)
        self._values = ProcessValueTracker(
            equipment,
            {t: r for t, r in roles.tags.items() if isinstance(r, ProcessValueRole)},
        )
        self._kind: dict[str, type] = {tag: type(role) for tag, role in roles.tags.items()}

    def on_sample(self, sample: Sample) -> list[EventDraft]:
        """Drafts caused by one sample (a batch of one)."""
        return self.on_samples([sample])

    def on_samples(self, samples: Iterable[Sample]) -> list[EventDraft]:
        """Drafts caused by a batch of samples (one poll, one subscription publish)."""
        kind = self._kind
        known = [s for s in samples if s.tag in kind]
        if not known:
            return []
        times = [s.source_ts or s.received_ts for s in known]  # Sample.event_time, inlined
        if times.count(times[0]) == len(times):  # one read, one time: the common case
            return self._on_group(known)
        order = sorted(range(len(known)), key=times.__getitem__)  # stable within a time
        drafts: list[EventDraft] = []
        for _, group in groupby(order, key=times.__getitem__):
            drafts.extend(self._on_group([known[i] for i in group]))
        return drafts

    def on_connection(self, change: ConnectionChange) -> list[EventDraft]:
        """Drafts caused by a source losing or regaining a connection."""
        if change.connection not in self.roles.connections:
            return []
        return self._state.on_connection(change, self._orders.order_id)

    def _on_group(self, group: list[Sample]) -> list[EventDraft]:
        by_role: dict[type, list[Sample]] = {}
        kind = self._kind
        for sample in group:
            by_role.setdefault(kind[sample.tag], []).append(sample)
        drafts: list[EventDraft] = []
        drafts += self._on_orders(by_role.get(OrderRole, []), by_role.get(ProductRole, []))
        drafts += self._on_state(by_role.get(StateRole, []), by_role.get(ReasonRole, []))
        counted = self._counters.on_group(by_role.get(CounterRole, []))
        if counted is not None:
            payload = {
                "good": counted.good,
                "scrap": counted.scrap,
                "total": counted.good + counted.scrap,
                "product_id": self._orders.product_id,
                "order_id": self._orders.order_id,
                "counter_reset": counted.counter_reset,
                "interval_start": counted.interval_start,
            }
            drafts.append(
                EventDraft(
                    EventType.PRODUCTION_COUNTED,
                    self.roles.equipment,
                    counted.event_time,
                    counted.received_time,
                    payload,
                    self._orders.order_id,
                )
            )
        on_value, order_id = self._values.on_sample, self._orders.order_id
        for sample in by_role.get(ProcessValueRole, ()):
            drafts += on_value(sample, order_id)
        return drafts

    def _on_orders(self, orders: list[Sample], products: list[Sample]) -> list[EventDraft]:
        orders, products = _usable(orders), _usable(products)
        if not orders and not products:
            return []
        newest = (orders + products)[-1]
        drafts = self._orders.on_change(
            orders[-1].value if orders else None,
            products[-1].value if products else None,
            bool(orders),
            bool(products),
            newest.event_time,
            max(s.received_ts for s in orders + products),
        )
        if drafts:
            self._counters.order_changed()
        return drafts

    def _on_state(self, states: list[Sample], reasons: list[Sample]) -> list[EventDraft]:
        states, reasons = _usable(states), _usable(reasons)
        if not states and not reasons:
            return []
        for sample in reasons:
            self._state.observe_reason(sample.value)
        for sample in states:
            self._state.observe_state(sample.value)
        newest = (states + reasons)[-1]
        received = max(s.received_ts for s in states + reasons)
        return self._state.report(newest.event_time, received, self._orders.order_id)

    def snapshot(self, *, process_values: bool = True) -> dict[str, Any]:
        """The deriver's state as a plain JSON-able dict (persist it; see ``restore``).

        ``process_values=False`` leaves out the process values' reporting state: it is
        most of the snapshot's size, and losing it only re-reports the next values.
        State, order and counter baselines are what keep counts exact across restarts.
        """
        snapshot = {
            "version": SNAPSHOT_VERSION,
            "equipment": self.roles.equipment,
            "state": self._state.snapshot(),
            "orders": self._orders.snapshot(),
            "counters": self._counters.snapshot(),
        }
        if process_values:
            snapshot["process_values"] = self._values.snapshot()
        return snapshot

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Continue from ``snapshot`` (taken by ``snapshot()``, possibly by an older run)."""
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise SnapshotError(
                f"equipment {self.roles.equipment!r}: snapshot version "
                f"{snapshot.get('version')!r} is not supported (expected {SNAPSHOT_VERSION}); "
                "delete it to start from fresh baselines"
            )
        if snapshot.get("equipment") != self.roles.equipment:
            raise SnapshotError(
                f"equipment {self.roles.equipment!r}: the snapshot belongs to equipment "
                f"{snapshot.get('equipment')!r}"
            )
        try:
            self._state.restore(snapshot["state"])
            self._orders.restore(snapshot["orders"])
            self._counters.restore(snapshot["counters"])
            self._values.restore(snapshot.get("process_values", {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise SnapshotError(
                f"equipment {self.roles.equipment!r}: damaged snapshot ({exc!r}); "
                "delete it to start from fresh baselines"
            ) from exc


def _usable(samples: list[Sample]) -> list[Sample]:
    return [s for s in samples if s.quality is not Quality.BAD and s.value is not None]
