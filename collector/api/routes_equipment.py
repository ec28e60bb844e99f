"""Equipment hierarchy, current states, state timelines and process-value history."""

# No "from __future__ import annotations": FastAPI must see the Annotated[..., Depends]
# of the routes defined inside build_router (closures) as objects, not strings.

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from collector.api.auth import Principal, Role
from collector.api.context import ApiContext
from collector.api.errors import query_error_response
from collector.api.render import dumps, iso
from collector.api.schemas import CurrentStates, EquipmentTree, History, Timeline
from collector.api.security import ensure_site
from collector.queries import EquipmentRef, QueryError, Scope, equipment_in_scope, list_equipment
from collector.queries.oee import check_window
from collector.queries.timeline import (
    current_states,
    equipment_tags,
    process_values,
    state_timeline,
)

_EQUIPMENT_PATH = "/equipment/{site}/{area}/{line}/{equipment}"


def _sites(principal: Principal) -> list[str] | None:
    return None if principal.sites is None else sorted(principal.sites)


def _json(body: object) -> Response:
    return Response(dumps(body), media_type="application/json")


def build_router(ctx: ApiContext) -> APIRouter:
    """The equipment routes of one API process."""
    router = APIRouter(prefix="/api/v1", tags=["equipment"])
    viewer = Depends(ctx.security.requires(Role.VIEWER))

    def one(principal: Principal, site: str, area: str, line: str, equipment: str) -> EquipmentRef:
        ensure_site(principal, site)
        with ctx.connection() as conn:
            return equipment_in_scope(conn, Scope.EQUIPMENT, f"{site}/{area}/{line}/{equipment}")[0]

    @router.get("/equipment", response_model=EquipmentTree, summary="Equipment hierarchy")
    def get_equipment(principal: Annotated[Principal, viewer]) -> Response:
        """Sites, areas, lines and equipment that have stored events (of the caller's sites)."""
        with ctx.connection() as conn:
            refs = list_equipment(conn, _sites(principal))
        sites: dict[str, dict[str, dict[str, list[dict]]]] = {}
        for ref in refs:
            p = ref.path
            node = {"id": ref.key, **p._asdict()}
            sites.setdefault(p.site, {}).setdefault(p.area, {}).setdefault(p.line, []).append(node)
        return _json(
            {
                "sites": [
                    {
                        "id": site,
                        "areas": [
                            {
                                "id": f"{site}/{area}",
                                "lines": [
                                    {"id": f"{site}/{area}/{line}", "equipment": nodes}
                                    for line, nodes in lines.items()
                                ],
                            }
                            for area, lines in areas.items()
                        ],
                    }
                    for site, areas in sites.items()
                ]
            }
        )

    @router.get("/states/current", response_model=CurrentStates, summary="Current states")
    def get_current_states(principal: Annotated[Principal, viewer]) -> Response:
        """The state every machine is in now, since when, and when it was last heard of."""
        with ctx.connection() as conn:
            states = current_states(conn, _sites(principal))
        return _json(
            {
                "equipment": [
                    {
                        "id": s.equipment.key,
                        "state": s.state,
                        "since": iso(s.since),
                        "reason_code": s.reason_code,
                        "last_seen": iso(s.last_seen),
                    }
                    for s in states
                ]
            }
        )

    @router.get(_EQUIPMENT_PATH + "/timeline", response_model=Timeline, summary="State timeline")
    def get_timeline(
        principal: Annotated[Principal, viewer],
        site: str,
        area: str,
        line: str,
        equipment: str,
        start: datetime,
        end: datetime,
    ) -> Response:
        """States over ``[start, end)`` clipped to the window (end clipped to now)."""
        try:
            ref = one(principal, site, area, line, equipment)
            end = check_window(start, end, datetime.now(UTC))
            with ctx.connection() as conn:
                spans, truncated = state_timeline(conn, ref, start, end)
        except QueryError as exc:
            return query_error_response(exc)
        return _json(
            {
                "id": ref.key,
                "start": iso(start),
                "end": iso(end),
                "states": [
                    {
                        "start": iso(s.start),
                        "end": iso(s.end),
                        "state": s.state,
                        "reason_code": s.reason_code,
                        "open": s.open,
                    }
                    for s in spans
                ],
                "truncated": truncated,
            }
        )

    @router.get(_EQUIPMENT_PATH + "/history", response_model=History, summary="Tag history")
    def get_history(
        principal: Annotated[Principal, viewer],
        site: str,
        area: str,
        line: str,
        equipment: str,
        tag: Annotated[str, Query(min_length=1, max_length=200)],
        start: datetime,
        end: datetime,
        limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    ) -> Response:
        """Process values of one tag over ``[start, end)`` in time order (historian)."""
        try:
            ref = one(principal, site, area, line, equipment)
            end = check_window(start, end, datetime.now(UTC))
            with ctx.connection() as conn:
                samples, truncated = process_values(conn, ref, tag, start, end, limit)
        except QueryError as exc:
            return query_error_response(exc)
        return _json(
            {
                "id": ref.key,
                "tag": tag,
                "start": iso(start),
                "end": iso(end),
                "samples": [
                    {"time": iso(s.time), "value": s.value, "unit": s.unit, "quality": s.quality}
                    for s in samples
                ],
                "truncated": truncated,
            }
        )

    @router.get(_EQUIPMENT_PATH + "/tags", summary="Tags with history")
    def get_tags(
        principal: Annotated[Principal, viewer],
        site: str,
        area: str,
        line: str,
        equipment: str,
        days: Annotated[int, Query(ge=1, le=366)] = 7,
    ) -> Response:
        """Tags of the equipment with samples in the last ``days`` days."""
        try:
            ref = one(principal, site, area, line, equipment)
        except QueryError as exc:
            return query_error_response(exc)
        with ctx.connection() as conn:
            tags = equipment_tags(conn, ref, datetime.now(UTC) - timedelta(days=days))
        return _json({"id": ref.key, "tags": tags})

    return router
