"""Analog process values as pure functions of simulated time.

A value changes once per simulated second (the noise term is keyed on the whole
second), so a face serving it sees exactly 1 Hz changes at speed 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulators.scenario.models import Machine, ProcessValue, ValueType

_MASK64 = (1 << 64) - 1


def unit_noise(key: int, second: int) -> float:
    """Deterministic noise in [-1, 1) from a 64-bit key and a whole second (splitmix64)."""
    z = (key * 0x9E3779B97F4A7C15 + second * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    z ^= z >> 31
    return (z >> 11) / float(1 << 52) - 1.0


def stable_key(*parts: object) -> int:
    """A process-independent 64-bit key (Python's hash() is salted per process)."""
    h = 0xCBF29CE484222325
    for byte in ":".join(str(p) for p in parts).encode():
        h = ((h ^ byte) * 0x100000001B3) & _MASK64
    return h


@dataclass(frozen=True)
class Channel:
    """One process value of one machine, ready to evaluate."""

    signal: str  # "pv.temperature" or "ai.007"
    name: str
    unit: str
    type: ValueType
    source: str
    base: float
    running_offset: float
    amplitude: float
    period_s: float
    noise: float
    key: int

    def value(self, epoch_s: float, running: bool, rate_ppm: float) -> float:
        if self.source == "rate":
            return rate_ppm if running else 0.0
        second = math.floor(epoch_s)
        wave = self.amplitude * math.sin(2 * math.pi * second / self.period_s)
        offset = self.running_offset if running else 0.0
        return self.base + offset + wave + self.noise * unit_noise(self.key, second)


def channels_for(machine: Machine, seed: int) -> list[Channel]:
    """Every process value the machine exposes, declared and generated."""
    out = [_declared(machine.name, pv, seed) for pv in machine.process_values]
    if machine.analog_channels is not None:
        ac = machine.analog_channels
        for index in range(ac.count):
            name = f"ai_{index:03d}"
            out.append(
                Channel(
                    signal=f"ai.{name}",
                    name=name,
                    unit="",
                    type=ac.type,
                    source="wave",
                    base=10.0 * (index % 10),
                    running_offset=5.0,
                    amplitude=2.0,
                    period_s=60.0 + index,
                    noise=ac.noise,
                    key=stable_key(seed, machine.name, name),
                )
            )
    return out


def _declared(machine: str, pv: ProcessValue, seed: int) -> Channel:
    return Channel(
        signal=f"pv.{pv.name}",
        name=pv.name,
        unit=pv.unit,
        type=pv.type,
        source=pv.source,
        base=pv.base,
        running_offset=pv.running_offset,
        amplitude=pv.amplitude,
        period_s=pv.period_s,
        noise=pv.noise,
        key=stable_key(seed, machine, pv.name),
    )
