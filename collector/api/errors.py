"""Errors as HTTP answers, shaped like FastAPI's own 422 details."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from collector.queries import QueryError


def query_error_response(exc: QueryError) -> JSONResponse:
    """422 (404 for an unknown id) naming the query parameter and the problem."""
    status = 404 if exc.not_found else 422
    return JSONResponse(
        {"detail": [{"loc": ["query", exc.field], "msg": exc.message, "type": "value_error"}]},
        status_code=status,
    )
