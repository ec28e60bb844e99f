"""Versioned SQL migrations: ``migrations/NNNN_name.sql`` applied once each, in order.

Applied migrations are recorded in ``ops.schema_migrations`` with a SHA-256 of the file.
A run holds ``pg_advisory_xact_lock`` for its whole transaction, so collectors starting
at the same time apply each migration exactly once: the others wait, then find nothing
left to do. All pending migrations are applied in one transaction (PostgreSQL DDL is
transactional), so a failing migration leaves the database as it was.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

import psycopg

from ._tx import LOCK_CLASS, LOCK_MIGRATIONS, own_transaction
from .errors import MigrationError

log = logging.getLogger(__name__)

_NAME = re.compile(r"^\d{4}_[a-z0-9_]+\.sql$")

_BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.schema_migrations (
    name        text PRIMARY KEY,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    """One migration file: its name (``0001_schemas.sql``), SQL text and SHA-256."""

    name: str
    sql: str
    checksum: str

    @classmethod
    def from_text(cls, name: str, sql: str) -> Migration:
        """A migration from its file name and text (the checksum is computed here)."""
        # CRLF checkouts (git autocrlf) must not look like edited migrations
        normalized = sql.replace("\r\n", "\n")
        return cls(name, sql, hashlib.sha256(normalized.encode()).hexdigest())


def load_migrations() -> list[Migration]:
    """The migrations shipped in ``collector/store/migrations``, ordered by name."""
    folder = resources.files(__package__).joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        if not _NAME.match(entry.name):
            raise MigrationError(
                f"migration file {entry.name!r}: name must look like 0005_what_it_does.sql "
                "(four digits, underscore, lower-case words); rename it"
            )
        found.append(Migration.from_text(entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.name)
    _check_unique_numbers(found)
    return found


def _check_unique_numbers(migrations: list[Migration]) -> None:
    seen: dict[str, str] = {}
    for migration in migrations:
        number = migration.name[:4]
        if number in seen:
            raise MigrationError(
                f"migrations {seen[number]} and {migration.name} share the number {number}; "
                "give the newer one the next free number"
            )
        seen[number] = migration.name


def apply_migrations(
    conn: psycopg.Connection, migrations: list[Migration] | None = None
) -> list[str]:
    """Apply the migrations not applied yet; return their names (empty when up to date).

    ``conn`` must be idle (autocommit recommended); this function commits. Raises
    :class:`MigrationError` when an applied migration's file changed since (naming the
    file), and rolls back everything when a migration fails.
    """
    pending = load_migrations() if migrations is None else sorted(migrations, key=_by_name)
    applied_now: list[str] = []
    with own_transaction(conn, "apply_migrations()"):
        # the lock comes first: even CREATE TABLE IF NOT EXISTS races with itself
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, LOCK_MIGRATIONS))
        conn.execute(_BOOTSTRAP)
        recorded = dict(conn.execute("SELECT name, checksum FROM ops.schema_migrations").fetchall())
        for migration in pending:
            checksum = recorded.pop(migration.name, None)
            if checksum is not None:
                if checksum != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.name} was changed after it was applied "
                        f"(recorded sha256 {checksum[:12]}..., file {migration.checksum[:12]}...); "
                        "restore the file as it was and put the change in a new migration"
                    )
                continue
            try:
                conn.execute(migration.sql.encode())
            except psycopg.Error as exc:
                raise MigrationError(
                    f"migration {migration.name} failed: {exc}; nothing was applied"
                ) from exc
            conn.execute(
                "INSERT INTO ops.schema_migrations (name, checksum) VALUES (%s, %s)",
                (migration.name, migration.checksum),
            )
            applied_now.append(migration.name)
    if recorded:
        # a newer collector migrated this database: fine for additive changes, worth a note
        log.warning(
            "event=unknown_migrations_applied names=%s hint=this collector is older than "
            "the database schema",
            ",".join(sorted(recorded)),
        )
    if applied_now:
        log.info("event=migrations_applied names=%s", ",".join(applied_now))
    return applied_now


def _by_name(migration: Migration) -> str:
    return migration.name
