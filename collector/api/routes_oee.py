"""``/api/v1/oee`` and ``/api/v1/pareto``: OEE of a scope and window, cached by revision."""

# No "from __future__ import annotations": FastAPI must see the Annotated[..., Depends]
# of the routes defined inside build_router (closures) as objects, not strings.

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from starlette.concurrency import run_in_threadpool

from collector.api.auth import Principal, Role
from collector.api.context import ApiContext
from collector.api.errors import query_error_response
from collector.api.render import dumps, iso, oee_report_body
from collector.api.schemas import OeeAnswer, Pareto
from collector.api.security import ensure_site
from collector.masterdata import MasterData
from collector.queries import Bucket, OeeRequest, QueryError, Scope, oee_report
from collector.queries.oee import check_window
from collector.queries.revisions import scope_revision
from collector.queries.scope import parse_scope_id

_ID_HELP = (
    "site, site/area, site/area/line or site/area/line/equipment (as the scope says), "
    "e.g. s1/assembly/line1"
)
_TIME_HELP = "ISO 8601 with a UTC offset, e.g. 2026-11-27T06:00:00+01:00"


def build_router(ctx: ApiContext) -> APIRouter:
    """The OEE routes of one API process."""
    router = APIRouter(prefix="/api/v1", tags=["oee"])
    viewer = Depends(ctx.security.requires(Role.VIEWER))

    async def answer(principal: Principal, request: OeeRequest) -> tuple[bytes, str]:
        ensure_site(principal, request.ident.split("/")[0])
        masterdata = ctx.masterdata.current()
        # answers are "as of" a whole second, so repeated asks within it share one entry
        as_of = datetime.now(UTC).replace(microsecond=0)
        end = check_window(request.start, request.end, as_of)
        if not ctx.cache.enabled:
            body = await run_in_threadpool(compute, masterdata, request, as_of)
            return body, "off"
        # the cached path stays on the event loop (async connection, in-memory cache): a
        # thread-pool round trip costs more than the check itself
        levels = parse_scope_id(request.scope, request.ident)
        async with ctx.async_pool.connection() as aconn:
            count, revision = await scope_revision(aconn, levels, request.start, end)
        key = "|".join(
            (
                "oee",
                str(count),  # a machine added to the scope changes the answer
                request.scope.value,
                request.ident,
                request.start.astimezone(UTC).isoformat(),
                end.isoformat(),
                request.bucket.value,
                request.tz or "",
                masterdata.fingerprint,
            )
        )
        if ctx.cache.may_block:
            body = await run_in_threadpool(ctx.cache.get, key, revision)
        else:
            body = ctx.cache.get(key, revision)
        if body is not None:
            return body, "hit"
        # read the revision before computing: should facts change meanwhile, the answer
        # is newer than its revision and the next ask simply computes again
        body = await run_in_threadpool(compute, masterdata, request, as_of)
        await run_in_threadpool(ctx.cache.put, key, revision, body)
        return body, "miss"

    def compute(masterdata: MasterData, request: OeeRequest, as_of: datetime) -> bytes:
        with ctx.connection() as conn:
            return dumps(oee_report_body(oee_report(conn, masterdata, request, as_of)))

    @router.get("/oee", response_model=OeeAnswer, summary="OEE of a scope over a window")
    async def get_oee(
        principal: Annotated[Principal, viewer],
        scope: Annotated[Scope, Query(description="equipment, line, area or site")],
        id: Annotated[str, Query(min_length=1, max_length=400, description=_ID_HELP)],
        start: Annotated[datetime, Query(description=_TIME_HELP)],
        end: Annotated[datetime, Query(description=_TIME_HELP + "; clipped to now")],
        bucket: Annotated[Bucket, Query(description="none, hour, shift or day")] = Bucket.NONE,
        tz: Annotated[
            str | None,
            Query(description="IANA timezone of hour/day buckets; default the calendar's"),
        ] = None,
    ) -> Response:
        """A, P, Q and OEE with the time elements, counts, six losses and stop Pareto, in
        total, per bucket and per equipment. Ratios are unrounded; null with a reason
        when undefined."""
        try:
            request = OeeRequest(scope, id, start, end, bucket, _zone(tz))
            body, cache = await answer(principal, request)
        except QueryError as exc:
            return query_error_response(exc)
        return Response(body, media_type="application/json", headers={"X-Cache": cache})

    @router.get("/pareto", response_model=Pareto, summary="Unplanned stop time by reason")
    def get_pareto(
        principal: Annotated[Principal, viewer],
        scope: Annotated[Scope, Query()],
        id: Annotated[str, Query(min_length=1, max_length=400, description=_ID_HELP)],
        start: Annotated[datetime, Query(description=_TIME_HELP)],
        end: Annotated[datetime, Query(description=_TIME_HELP)],
    ) -> Response:
        """Downtime and micro-stop time by (state, reason code), largest first, with
        shares and cumulative shares."""
        ensure_site(principal, id.split("/")[0])
        try:
            with ctx.connection() as conn:
                report = oee_report(
                    conn, ctx.masterdata.current(), OeeRequest(scope, id, start, end)
                )
        except QueryError as exc:
            return query_error_response(exc)
        total = report.total
        body = {
            "scope": scope.value,
            "id": id,
            "start": iso(start),
            "end": iso(report.end),
            "total_stop_time_s": float(sum((e.time_s for e in total.pareto), start=0)),
            "reasons": total.to_dict()["pareto"],
        }
        return Response(dumps(body), media_type="application/json")

    return router


def _zone(tz: str | None) -> str | None:
    if tz is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise QueryError("tz", f"{tz!r} is not an IANA timezone such as 'Europe/Berlin'") from None
    return tz
