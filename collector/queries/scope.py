"""Equipment scopes: which stored equipment a site, area, line or equipment id covers.

Ids are ISA-95 paths below the enterprise, levels joined by ``/``:
``s1`` (site), ``s1/assembly`` (area), ``s1/assembly/line1`` (line),
``s1/assembly/line1/press1`` (equipment). Sites are what access is granted to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import psycopg

from collector.queries.errors import QueryError
from collector.records import Equipment


class Scope(StrEnum):
    """The level an OEE figure is asked for."""

    EQUIPMENT = "equipment"
    LINE = "line"
    AREA = "area"
    SITE = "site"


#: Path levels (below the enterprise) an id of each scope has.
LEVELS = {Scope.SITE: 1, Scope.AREA: 2, Scope.LINE: 3, Scope.EQUIPMENT: 4}
_LEVEL_NAMES = ("site", "area", "line", "equipment")


@dataclass(frozen=True, slots=True)
class EquipmentRef:
    """Stored equipment: the store's id and its ISA-95 path."""

    id: int
    path: Equipment

    @property
    def key(self) -> str:
        """``site/area/line/equipment``: the equipment's id in the API."""
        p = self.path
        return f"{p.site}/{p.area}/{p.line}/{p.equipment}"

    def scope_id(self, scope: Scope) -> str:
        """The id of the ``scope`` this equipment belongs to."""
        return "/".join(self.key.split("/")[: LEVELS[scope]])


def parse_scope_id(scope: Scope, ident: str) -> tuple[str, ...]:
    """The path levels of ``ident``; QueryError when it has the wrong number of them."""
    parts = tuple(ident.split("/"))
    want = LEVELS[scope]
    if len(parts) != want or any(not p for p in parts):
        example = "/".join(("s1", "assembly", "line1", "press1")[:want])
        raise QueryError(
            "id",
            f"a {scope.value} id has {want} non-empty level(s) "
            f"({'/'.join(_LEVEL_NAMES[:want])}), e.g. {example!r}; got {ident!r}",
        )
    return parts


_SELECT = (
    "SELECT id, enterprise, site, area, line, equipment FROM lineside.equipment"
    " {where} ORDER BY site, area, line, equipment, enterprise"
)


def equipment_in_scope(conn: psycopg.Connection, scope: Scope, ident: str) -> list[EquipmentRef]:
    """Stored equipment under ``ident``; QueryError (not found) when there is none."""
    parts = parse_scope_id(scope, ident)
    where = " AND ".join(f"{name} = %s" for name in _LEVEL_NAMES[: len(parts)])
    rows = conn.execute(_SELECT.format(where=f"WHERE {where}"), parts).fetchall()
    if not rows:
        raise QueryError("id", f"no stored equipment in {scope.value} {ident!r}", not_found=True)
    return [ref_from_row(row) for row in rows]


def list_equipment(
    conn: psycopg.Connection, sites: Iterable[str] | None = None
) -> list[EquipmentRef]:
    """Every stored equipment (of ``sites`` only, when given), in path order."""
    if sites is None:
        rows = conn.execute(_SELECT.format(where="")).fetchall()
    else:
        rows = conn.execute(_SELECT.format(where="WHERE site = ANY(%s)"), (list(sites),)).fetchall()
    return [ref_from_row(row) for row in rows]


def ref_from_row(row: tuple) -> EquipmentRef:
    return EquipmentRef(int(row[0]), Equipment(row[1], row[2], row[3], row[4], row[5]))
