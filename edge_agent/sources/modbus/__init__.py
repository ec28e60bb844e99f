"""Modbus TCP/RTU source: plan reads, poll them, decode registers into samples.

``planner`` (pure) turns tags into read requests per unit id and table, ``decode``
(pure) turns registers and bits into values, ``source`` is the asyncio shell that
polls a connection and emits :class:`~edge_agent.samples.Sample` and
:class:`~edge_agent.samples.ConnectionChange` lists.
"""

from edge_agent.sources.modbus.decode import (
    DecodeError,
    ModbusSourceError,
    Slot,
    decode_value,
    span_decoder,
    value_width,
)
from edge_agent.sources.modbus.planner import (
    PlanError,
    PlannedTag,
    PollGroup,
    ReadLimits,
    ReadRequest,
    next_tick,
    plan_reads,
)
from edge_agent.sources.modbus.source import ModbusSource, ModbusStats

__all__ = [
    "DecodeError",
    "ModbusSource",
    "ModbusSourceError",
    "ModbusStats",
    "PlanError",
    "PlannedTag",
    "PollGroup",
    "ReadLimits",
    "ReadRequest",
    "Slot",
    "decode_value",
    "next_tick",
    "plan_reads",
    "span_decoder",
    "value_width",
]
