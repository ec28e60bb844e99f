"""Errors of the read models: a request that cannot be answered as asked."""

from __future__ import annotations


class QueryError(ValueError):
    """A query parameter is wrong (unknown scope id, window in the future, ...).

    ``field`` names the parameter, so an HTTP layer can answer 422 pointing at it;
    ``not_found`` marks an unknown id (404 rather than 422).
    """

    def __init__(self, field: str, message: str, *, not_found: bool = False) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.not_found = not_found
