"""Analog process values as pure functions of simulated time.

A value changes once per simulated second (the noise term is keyed on the whole
second), so a face serving it sees exactly 1 Hz changes at speed 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulators.scenario.models import Machine, ProcessValue, ValueType

_MASK64 = (1 << 64) - 1


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

    @property
    def omega(self) -> float:
        return 2 * math.pi / self.period_s

    @property
    def noise_rate(self) -> float:
        """Per-channel frequency of the noise hash, from the key: in [1, 2)."""
        return 1.0 + (self.key >> 11) / float(1 << 53)

    def value(self, epoch_s: float, running: bool, rate_ppm: float) -> float:
        if self.source == "rate":
            return rate_ppm if running else 0.0
        second = math.floor(epoch_s)
        wave = self.amplitude * math.sin(self.omega * second)
        offset = self.running_offset if running else 0.0
        return self.base + offset + wave + self.noise * float_noise(self.noise_rate, second)


def float_noise(rate: float, second: int) -> float:
    """Cheap deterministic noise in [-1, 1): the fractional part of a scaled sine."""
    x = math.sin(second * rate * 12.9898) * 43758.5453
    return 2.0 * (x - math.floor(x)) - 1.0


WaveConstants = tuple[Channel, float, float]  # channel, omega, noise rate


def wave_constants(channels: list[Channel]) -> list[WaveConstants]:
    """Per-channel constants for :func:`wave_values`, computed once per machine."""
    return [(ch, ch.omega, ch.noise_rate) for ch in channels if ch.source == "wave"]


def wave_values(constants: list[WaveConstants], second: int, running: bool) -> list[float]:
    """Values of many wave channels at one whole second (the hot path under load).

    Same result as ``Channel.value`` for each channel: ~10k values are computed every
    simulated second under load, so the constants are looked up once.
    """
    sin, floor = math.sin, math.floor
    out = []
    for ch, omega, rate in constants:
        x = sin(second * rate * 12.9898) * 43758.5453
        noise = 2.0 * (x - floor(x)) - 1.0
        offset = ch.running_offset if running else 0.0
        out.append(ch.base + offset + ch.amplitude * sin(omega * second) + ch.noise * noise)
    return out


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
