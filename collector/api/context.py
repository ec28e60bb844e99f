"""What every API route needs, built once per process by ``create_app``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from collector.api.cache import AnswerCache
from collector.api.security import ApiSecurity
from collector.service.masterdata_source import MasterDataSource


@dataclass
class ApiContext:
    """Database pool, master data, cache and security of one API process."""

    pool: ConnectionPool
    """Blocking queries (run in the thread pool): computing answers."""
    async_pool: AsyncConnectionPool
    """Queries on the event loop: the cache's revision check."""
    masterdata: MasterDataSource
    cache: AnswerCache
    security: ApiSecurity

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A pooled autocommit connection (read-only queries)."""
        with self.pool.connection() as conn:
            yield conn
