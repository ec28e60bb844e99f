"""JSON rendering of read models (orjson: rendered bytes are what the cache keeps)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from collector.queries import OeeReport


def iso(moment: datetime | None, zone: ZoneInfo | None = None) -> str | None:
    """ISO 8601 with the UTC offset (in ``zone`` when given)."""
    if moment is None:
        return None
    return (moment.astimezone(zone) if zone else moment).isoformat()


def oee_report_body(report: OeeReport) -> dict[str, Any]:
    """The body of ``GET /api/v1/oee``: request, window, total, buckets, per equipment.

    The stop Pareto comes with the total only (``/api/v1/pareto`` has it for any scope
    and window): per bucket it would multiply the answer's size for little use.
    """
    zone = ZoneInfo(report.timezone)
    request = report.request
    return {
        "scope": request.scope.value,
        "id": request.ident,
        "start": iso(request.start, zone),
        "end": iso(report.end, zone),
        "requested_end": iso(request.end, zone),
        "as_of": iso(report.as_of, zone),
        "bucket": request.bucket.value,
        "timezone": report.timezone,
        "equipment": [ref.key for ref in report.equipment],
        "total": report.total.to_dict(),
        "buckets": [
            {"start": iso(b.start, zone), "end": iso(b.end, zone), "shift": b.shift}
            | b.result.to_dict(pareto=False)
            for b in report.buckets
        ],
        "by_equipment": [
            {"id": ref.key} | result.to_dict(pareto=False) for ref, result in report.by_equipment
        ],
    }


def dumps(body: Any) -> bytes:
    """Compact JSON bytes (datetimes as ISO 8601)."""
    return orjson.dumps(body)
