"""Read models over the stored facts: equipment scopes, OEE reports, timelines.

The shell between the store (PostgreSQL) and its readers (the HTTP API, the CLI, the
alert rules): SQL in, plain data out, the pure OEE engine in between. Nothing here knows
about HTTP.
"""

from __future__ import annotations

from collector.queries.errors import QueryError
from collector.queries.oee import Bucket, BucketReport, OeeReport, OeeRequest, oee_report
from collector.queries.scope import EquipmentRef, Scope, equipment_in_scope, list_equipment

__all__ = [
    "Bucket",
    "BucketReport",
    "EquipmentRef",
    "OeeReport",
    "OeeRequest",
    "QueryError",
    "Scope",
    "equipment_in_scope",
    "list_equipment",
    "oee_report",
]
