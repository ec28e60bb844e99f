"""Alert episodes: open ones, or the latest of all (docs/alerts.md)."""

# No "from __future__ import annotations": FastAPI must see the Annotated[..., Depends]
# of the routes defined inside build_router (closures) as objects, not strings.

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from collector.alerts.store import list_alerts
from collector.api.auth import Principal, Role
from collector.api.context import ApiContext
from collector.api.render import dumps, iso
from collector.api.security import ensure_site


class AlertEpisode(BaseModel):
    """One alert episode: a rule's condition holding for one line or equipment."""

    episode_id: str = Field(description="the episode_id of its MQTT and webhook events")
    rule: str
    kind: Literal["oee_below", "stop_longer_than", "offline"]
    severity: Literal["info", "warning", "critical"]
    id: str = Field(description="site/area/line[/equipment]")
    scope: Literal["line", "equipment"]
    site: str
    open: bool
    condition_since: str
    breached_at: str
    resolved_at: str | None
    resolve_reason: Literal["cleared", "out_of_scope"] | None
    value: float | None = Field(description="at the breach: OEE ratio, or seconds")
    threshold: float


class AlertList(BaseModel):
    """Episodes, newest breach first."""

    alerts: list[AlertEpisode]


def build_router(ctx: ApiContext) -> APIRouter:
    """The alert routes of one API process."""
    router = APIRouter(prefix="/api/v1", tags=["alerts"])
    viewer = Depends(ctx.security.requires(Role.VIEWER))

    @router.get("/alerts", response_model=AlertList, summary="Alert episodes")
    def get_alerts(
        principal: Annotated[Principal, viewer],
        state: Annotated[Literal["open", "all"], Query(description="open or all")] = "open",
        site: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Response:
        """Open episodes (or all, newest first) of the caller's sites (or of ``site``)."""
        if site is not None:
            ensure_site(principal, site)
            sites: list[str] | None = [site]
        else:
            sites = None if principal.sites is None else sorted(principal.sites)
        with ctx.connection() as conn:
            rows = list_alerts(conn, open_only=state == "open", sites=sites, limit=limit)
        body = {
            "alerts": [
                {
                    "episode_id": r.episode_id,
                    "rule": r.rule,
                    "kind": r.rule_kind,
                    "severity": r.severity,
                    "id": r.subject,
                    "scope": r.scope,
                    "site": r.site,
                    "open": r.resolved_at is None,
                    "condition_since": iso(r.condition_since),
                    "breached_at": iso(r.breached_at),
                    "resolved_at": iso(r.resolved_at),
                    "resolve_reason": r.resolve_reason,
                    "value": r.value,
                    "threshold": r.threshold,
                }
                for r in rows
            ]
        }
        return Response(dumps(body), media_type="application/json")

    return router
