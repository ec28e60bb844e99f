"""DataValues -> Samples, and which statuses mean "this node is broken" (pure)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from asyncua import ua

from edge_agent.samples import Quality, Sample

# A node with one of these read/monitor results is quarantined: reported BAD once,
# left out of reads and subscriptions, and retried now and then.
QUARANTINE_STATUSES = frozenset(
    {
        ua.StatusCodes.BadNodeIdUnknown,
        ua.StatusCodes.BadNodeIdInvalid,
        ua.StatusCodes.BadAttributeIdInvalid,
        ua.StatusCodes.BadNotReadable,
        ua.StatusCodes.BadUserAccessDenied,
    }
)

# A server that refuses a DataChangeFilter answers with one of these.
FILTER_REFUSED_STATUSES = frozenset(
    {
        ua.StatusCodes.BadMonitoredItemFilterUnsupported,
        ua.StatusCodes.BadMonitoredItemFilterInvalid,
        ua.StatusCodes.BadFilterNotAllowed,
        ua.StatusCodes.BadDeadbandFilterInvalid,
    }
)

_SEVERITY_MASK = 0xC0000000
_UNCERTAIN = 0x40000000
_names: dict[int, str] = {}


def quality_of(code: int) -> Quality:
    """Good, uncertain or bad from the severity bits of a status code."""
    severity = code & _SEVERITY_MASK
    if severity == 0:
        return Quality.GOOD
    if severity == _UNCERTAIN:
        return Quality.UNCERTAIN
    return Quality.BAD


def status_name(code: int) -> str:
    """The status code's symbolic name (``Good``, ``BadNodeIdUnknown``...), cached."""
    name = _names.get(code)
    if name is None:
        name = _names[code] = ua.StatusCode(code).name
    return name


def is_quarantine_status(code: int) -> bool:
    """Whether a result with this status means the node itself is unusable."""
    return (code & 0xFFFF0000) in QUARANTINE_STATUSES


def sample_of(tag: str, data: ua.DataValue, received_ts: datetime) -> Sample:
    """A Sample of one DataValue (read result or data change notification)."""
    status = data.StatusCode
    code = status.value if status is not None else 0
    variant = data.Value
    value: Any = variant.Value if variant is not None else None
    quality = quality_of(code)
    if quality is Quality.BAD:
        value = None
    return Sample(
        tag=tag,
        value=value,
        quality=quality,
        status=status_name(code),
        source_ts=data.SourceTimestamp,
        server_ts=data.ServerTimestamp,
        received_ts=received_ts,
    )


def bad_sample(tag: str, status: str, received_ts: datetime) -> Sample:
    """A BAD sample without value, e.g. for a tag entering quarantine."""
    return Sample(tag, None, Quality.BAD, status, None, None, received_ts)
