"""OEE master data: shift calendars and where they apply, products, state classification.

Plant IT keeps these in one YAML file (docs/masterdata.md). :func:`load_masterdata`
checks it and reports every problem as ``file:line:column: path: message``; the result
is plain, read-only :class:`MasterData` that the OEE shell asks per site, line and
equipment.
"""

from __future__ import annotations

from collector.masterdata.loader import (
    load_masterdata,
    masterdata_schema_json,
    parse_masterdata,
)
from collector.masterdata.models import MasterDataFile
from collector.masterdata.resolve import EquipmentKey, IdealCycleTimes, MasterData, Product

__all__ = [
    "EquipmentKey",
    "IdealCycleTimes",
    "MasterData",
    "MasterDataFile",
    "Product",
    "load_masterdata",
    "masterdata_schema_json",
    "parse_masterdata",
]
