"""The machine model: states, orders, parts and counters over simulated time.

Pure and deterministic: ``advance_to(t)`` processes every scheduled change and
every completed part up to ``t`` in time order and returns the ground-truth
records. How often it is called does not change what happens.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from simulators.model.behaviour import Behaviour, Change, round_ms
from simulators.model.counters import Counters
from simulators.model.process_values import (
    Channel,
    channels_for,
    wave_constants,
    wave_values,
)
from simulators.model.states import MachineState, encode_state
from simulators.model.truth import TruthRecord
from simulators.scenario.models import Machine, Product


class SignalValue(NamedTuple):
    """A value as the PLC holds it, with the (simulated) time it last changed.

    A NamedTuple, not a dataclass: ~10k are made every simulated second under load.
    """

    value: Any
    changed_at: datetime


class MachineModel:
    def __init__(self, config: Machine, behaviour: Behaviour, start: datetime, seed: int) -> None:
        self.config = config
        self.name = config.name
        self._behaviour = behaviour
        self._products: dict[str, Product] = {p.id: p for p in config.products}
        self._rng = random.Random(f"{seed}:{config.name}:parts")
        self._channels: list[Channel] = channels_for(config, seed)
        self._waves = wave_constants(self._channels)
        self._wave_signals = [c.signal for c, _, _ in self._waves]
        self._rates = [c for c in self._channels if c.source == "rate"]
        start = round_ms(start.astimezone(UTC))
        self.now = start
        self.state = MachineState.IDLE
        self.reason = 0
        self.product: str = ""
        self.order: str = ""
        self.counters = Counters()
        self.ended = False
        # Bumped whenever anything served changes (except process values, which are
        # functions of time): lets the runtime skip machines with nothing new.
        self.version = 0
        self._channel_cache: tuple[tuple[int, bool, float], dict[str, SignalValue]] | None = None
        self._order_seq = 0
        self._next_part_at: datetime | None = None
        self._remaining_cycle_s: float | None = None
        self._changed_at: dict[str, datetime] = dict.fromkeys(
            ("state", "reason", "order", "product", "counters"), start
        )
        # Counter values that a reset replaced since the runtime last looked: a PLC shows
        # a counter's last value before it resets it, however soon after the last part.
        self._before_resets: list[dict[str, SignalValue]] = []

    @property
    def channels(self) -> list[Channel]:
        return self._channels

    @property
    def ideal_cycle_time_s(self) -> float:
        product = self._products.get(self.product)
        return product.ideal_cycle_time_s if product else 0.0

    # -- time --------------------------------------------------------------------------

    def advance_to(self, until: datetime) -> list[TruthRecord]:
        """Play everything that happens up to ``until`` (inclusive)."""
        records: list[TruthRecord] = []
        while True:
            change = self._behaviour.peek()
            change_at = max(change.at, self.now) if change else None
            part_at = self._next_part_at
            if (
                part_at is not None
                and part_at <= until
                and (change_at is None or part_at < change_at)
            ):
                self.now = part_at
                records.append(self._complete_part(part_at))
                continue
            if change_at is not None and change_at <= until:
                self._behaviour.pop()
                self.now = change_at
                records.extend(self._apply(change, change_at))
                continue
            break
        if until > self.now:
            self.now = until
        if records:
            self.version += 1
        return records

    def reset_counters(self, at: datetime, cause: str = "command") -> list[TruthRecord]:
        """Operator or fault reset of all three counters at ``at`` (advance first)."""
        records = self.advance_to(at)
        records.append(self._reset(self.now, cause))
        self.version += 1
        return records

    # -- what the PLC shows ------------------------------------------------------------

    def take_counters_before_resets(self) -> list[dict[str, SignalValue]]:
        """The counter signals (total, good, scrap) as they were just before each reset
        since the last call, oldest first: served before the current values, so that a
        client that sees every change (an OPC UA subscription) sees them too."""
        taken, self._before_resets = self._before_resets, []
        return taken

    def _counter_signals(self) -> dict[str, SignalValue]:
        at = self._changed_at["counters"]
        return {
            "total": SignalValue(self.counters.total, at),
            "good": SignalValue(self.counters.good, at),
            "scrap": SignalValue(self.counters.scrap, at),
        }

    def signals(self, now: datetime | None = None) -> dict[str, SignalValue]:
        """Every served signal with its value and change time at ``now``."""
        now = now or self.now
        c = self._changed_at
        running = self.state is MachineState.RUNNING
        out: dict[str, SignalValue] = {
            "state": SignalValue(encode_state(self.state, self.config.state_encoding), c["state"]),
            "state_name": SignalValue(self.state.value, c["state"]),
            "reason": SignalValue(self.reason, c["reason"]),
            **self._counter_signals(),
            "order": SignalValue(self.order, c["order"]),
            "product": SignalValue(self.product, c["product"]),
            "ideal_cycle_time_s": SignalValue(self.ideal_cycle_time_s, c["product"]),
        }
        if self._channels:
            out.update(self._channel_signals(now.timestamp(), running))
        return out

    def value_second(self, epoch_s: float) -> int:
        """The whole second whose process values are served at ``epoch_s``: they change
        once per simulated second, ``value_offset_s`` after the whole second."""
        return int((epoch_s - self.config.value_offset_s) // 1)

    def _channel_signals(self, epoch_s: float, running: bool) -> dict[str, SignalValue]:
        # Process values change once per simulated second: compute them once per second.
        rate = self._rate_ppm() if running else 0.0
        key = (self.value_second(epoch_s), running, rate)
        if self._channel_cache is not None and self._channel_cache[0] == key:
            return self._channel_cache[1]
        second = datetime.fromtimestamp(key[0] + self.config.value_offset_s, UTC)
        # A start or stop within the second changes the values then (running_offset),
        # not at the second: they must not claim to be older than the change.
        second = max(second, self._changed_at["state"])
        state_changed = max(self._changed_at["state"], self._changed_at["product"])
        values = dict(
            zip(
                self._wave_signals,
                [SignalValue(v, second) for v in wave_values(self._waves, key[0], running)],
                strict=True,
            )
        )
        for channel in self._rates:
            values[channel.signal] = SignalValue(rate, state_changed)
        self._channel_cache = (key, values)
        return values

    def _rate_ppm(self) -> float:
        product = self._products.get(self.product)
        if product is None:
            return 0.0
        return 60.0 / (product.ideal_cycle_time_s * product.cycle_time_factor)

    # -- internals ---------------------------------------------------------------------

    def _apply(self, change: Change, at: datetime) -> list[TruthRecord]:
        records: list[TruthRecord] = []
        if change.reset_counters:
            records.append(self._reset(at, "command"))
        new_product = change.product
        if change.state is MachineState.RUNNING and not self.product and new_product is None:
            new_product = self.config.products[0].id
        product_changes = new_product is not None and new_product != self.product
        order_changes = change.order is not None and change.order != self.order
        if product_changes or order_changes:
            records.extend(self._change_order(at, new_product or self.product, change.order))
        if change.state is not None:
            records.extend(self._set_state(at, change.state, change.reason))
        if change.end and not self.ended:
            self.ended = True
            records.append(TruthRecord(at, "end", self.name))
        if change.state is not None:
            self._behaviour.entered(change.state, at)
        return records

    def _change_order(self, at: datetime, product: str, order: str | None) -> list[TruthRecord]:
        self._order_seq += 1
        previous = self.order
        self.product = product
        self.order = order if order is not None else f"{self.name}-{self._order_seq:04d}"
        self._changed_at["product"] = at
        self._changed_at["order"] = at
        self._remaining_cycle_s = None
        if self.state is MachineState.RUNNING:
            self._next_part_at = self._draw_next_part(at)
        records = [
            TruthRecord(
                at,
                "order",
                self.name,
                {
                    "order": self.order,
                    "product": self.product,
                    "ideal_cycle_time_s": self.ideal_cycle_time_s,
                    "previous_order": previous,
                },
            )
        ]
        if self.config.reset_counters_on_order_change:
            records.append(self._reset(at, "order_change"))
        return records

    def _set_state(self, at: datetime, state: MachineState, reason: int) -> list[TruthRecord]:
        if state is self.state and reason == self.reason:
            return []
        previous = self.state
        if previous is MachineState.RUNNING and state is not MachineState.RUNNING:
            if self._next_part_at is not None:
                self._remaining_cycle_s = (self._next_part_at - at).total_seconds()
            self._next_part_at = None
        elif state is MachineState.RUNNING and previous is not MachineState.RUNNING:
            if self._remaining_cycle_s is not None:
                self._next_part_at = round_ms(at + timedelta(seconds=self._remaining_cycle_s))
                self._remaining_cycle_s = None
            else:
                self._next_part_at = self._draw_next_part(at)
        self.state = state
        if previous is not state:
            self._changed_at["state"] = at
        if reason != self.reason:
            self._changed_at["reason"] = at
        self.reason = reason
        return [
            TruthRecord(
                at,
                "state",
                self.name,
                {
                    "from": previous.value,
                    "to": state.value,
                    "reason": reason,
                    "code": encode_state(state, self.config.state_encoding),
                },
            )
        ]

    def _draw_next_part(self, at: datetime) -> datetime:
        product = self._products[self.product]
        cycle = product.ideal_cycle_time_s * product.cycle_time_factor
        cycle *= 1.0 + self._rng.uniform(0.0, product.jitter)
        return round_ms(at + timedelta(seconds=max(cycle, 0.001)))

    def _complete_part(self, at: datetime) -> TruthRecord:
        product = self._products[self.product]
        scrap_rate = (
            product.scrap_rate if product.scrap_rate is not None else self.config.scrap_rate
        )
        good = self._rng.random() >= scrap_rate
        self.counters = self.counters.add_part(good, self.config.counter_width)
        self._changed_at["counters"] = at
        self._next_part_at = self._draw_next_part(at)
        return TruthRecord(
            at,
            "part",
            self.name,
            {
                "good": good,
                "product": self.product,
                "order": self.order,
                "total": self.counters.total,
                "good_count": self.counters.good,
                "scrap_count": self.counters.scrap,
            },
        )

    def _reset(self, at: datetime, cause: str) -> TruthRecord:
        if self.counters != Counters():
            self._before_resets.append(self._counter_signals())
        self.counters = Counters()
        self._changed_at["counters"] = at
        return TruthRecord(at, "counter_reset", self.name, {"cause": cause})
