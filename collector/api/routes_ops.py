"""Operations: dead letters (engineer), master data status and reload (admin)."""

# No "from __future__ import annotations": FastAPI must see the Annotated[..., Depends]
# of the routes defined inside build_router (closures) as objects, not strings.

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response

from collector.api.auth import Principal, Role
from collector.api.context import ApiContext
from collector.api.render import dumps, iso
from collector.store.dead_letters import list_dead_letters
from lineside_common.yamlconfig import ConfigFileError


def _topic_site(topic: str) -> str | None:
    parts = topic.split("/")  # lineside/v1/<enterprise>/<site>/...
    return parts[3] if len(parts) > 3 else None


def build_router(ctx: ApiContext) -> APIRouter:
    """The operations routes of one API process."""
    router = APIRouter(prefix="/api/v1", tags=["operations"])
    engineer = Depends(ctx.security.requires(Role.ENGINEER))
    admin = Depends(ctx.security.requires(Role.ADMIN))

    @router.get("/dead-letters", summary="Refused messages (engineer)")
    def get_dead_letters(
        principal: Annotated[Principal, engineer],
        reason: str | None = None,
        include_replayed: bool = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> Response:
        """Newest first, of the caller's sites (payloads are left out: use the CLI)."""
        with ctx.connection() as conn:
            rows = list_dead_letters(
                conn, reason=reason, include_replayed=include_replayed, limit=limit
            )
        visible = [
            r for r in rows if principal.sites is None or _topic_site(r.topic) in principal.sites
        ]
        body = {
            "dead_letters": [
                {
                    "id": r.id,
                    "received_at": iso(r.received_at),
                    "topic": r.topic,
                    "reason": r.reason,
                    "detail": r.detail,
                    "agent_id": r.agent_id,
                    "batch_id": r.batch_id,
                    "payload_bytes": r.payload_bytes,
                    "replayed_at": iso(r.replayed_at),
                }
                for r in visible
            ]
        }
        return Response(dumps(body), media_type="application/json")

    @router.get("/masterdata", summary="Master data in force (engineer)")
    def get_masterdata(principal: Annotated[Principal, engineer]) -> Response:
        """Which master data file is in force and its fingerprint."""
        data = ctx.masterdata.current()
        path = ctx.masterdata.path
        body = {"path": None if path is None else str(path), "fingerprint": data.fingerprint}
        return Response(dumps(body), media_type="application/json")

    @router.post("/masterdata/reload", summary="Reload the master data file now (admin)")
    def reload_masterdata(principal: Annotated[Principal, admin]) -> Response:
        """Reload now (it is also reloaded by itself within a second of a change);
        422 with every problem when the file does not validate (the old data stays)."""
        if ctx.masterdata.path is None:
            raise HTTPException(409, "no master data file is configured (masterdata_file)")
        try:
            data = ctx.masterdata.reload()
        except ConfigFileError as exc:
            raise HTTPException(422, [issue.render() for issue in exc.issues]) from None
        return Response(dumps({"fingerprint": data.fingerprint}), media_type="application/json")

    return router
