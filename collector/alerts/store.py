"""Alert episodes, events and the outbox in PostgreSQL (migration 0006_alerts.sql).

Connections are autocommit; each write here is one transaction of its own. Opening and
closing an episode decide between collector processes (see the migration): the
functions return whether this process won, and only the winner's event is stored and
queued for its destinations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from lineside_protocol.alerts import AlertEvent, encode_alert

from .evaluate import Key, OpenEpisode, Subject

MQTT_DESTINATION = "mqtt"
WEBHOOK_PREFIX = "webhook:"


def webhook_destination(name: str) -> str:
    """The outbox destination of the webhook called ``name``."""
    return f"{WEBHOOK_PREFIX}{name}"


# -- episodes ------------------------------------------------------------------------------

_OPEN = """
SELECT episode_id::text, rule, enterprise, site, area, line, equipment,
       condition_since, breached_at
  FROM ops.alert_episodes WHERE resolved_at IS NULL
"""


def open_episodes(conn: psycopg.Connection) -> dict[Key, OpenEpisode]:
    """Every open episode, by (rule, subject key)."""
    out: dict[Key, OpenEpisode] = {}
    for episode_id, rule, ent, site, area, line, equipment, since, breached in conn.execute(
        _OPEN
    ).fetchall():
        subject = Subject(ent, site, area, line, equipment)
        out[(rule, subject.key)] = OpenEpisode(episode_id, rule, subject, since, breached)
    return out


_OPEN_EPISODE = """
INSERT INTO ops.alert_episodes (
    episode_id, rule, rule_kind, severity, subject, enterprise, site, area, line, equipment,
    condition_since, breached_at, breach_value, threshold, breach_event_id)
VALUES (%(episode_id)s, %(rule)s, %(rule_kind)s, %(severity)s, %(subject)s, %(enterprise)s,
        %(site)s, %(area)s, %(line)s, %(equipment)s, %(since)s, %(at)s, %(value)s,
        %(threshold)s, %(event_id)s)
ON CONFLICT (rule, subject) WHERE resolved_at IS NULL DO NOTHING
RETURNING episode_id
"""

_CLOSE_EPISODE = """
UPDATE ops.alert_episodes
   SET resolved_at = %(at)s, resolve_reason = %(reason)s, resolve_event_id = %(event_id)s
 WHERE episode_id = %(episode_id)s AND resolved_at IS NULL
RETURNING episode_id
"""

_INSERT_EVENT = """
INSERT INTO audit.alert_events (event_id, type, occurred_at, rule, subject, episode_id, payload)
VALUES (%s, %s, %s, %s, %s, %s, %s)
"""

_QUEUE = """
INSERT INTO ops.alert_outbox (event_id, episode_id, destination)
SELECT %s, %s, unnest(%s::text[])
"""


def store_breach(conn: psycopg.Connection, event: AlertEvent, destinations: Sequence[str]) -> bool:
    """Open the episode of ``event`` (a breach), store the event and queue it for
    ``destinations``; False (nothing written) when the episode is open already."""
    s = event.subject
    params = {
        "episode_id": event.episode_id,
        "rule": event.rule,
        "rule_kind": event.rule_kind,
        "severity": event.severity,
        "subject": s.id,
        "enterprise": s.enterprise,
        "site": s.site,
        "area": s.area,
        "line": s.line,
        "equipment": s.equipment,
        "since": event.condition_since,
        "at": event.breached_at,
        "value": event.value,
        "threshold": event.threshold,
        "event_id": event.event_id,
    }
    with conn.transaction():
        if conn.execute(_OPEN_EPISODE, params).fetchone() is None:
            return False
        _store_event(conn, event, destinations)
    return True


def store_resolve(conn: psycopg.Connection, event: AlertEvent, destinations: Sequence[str]) -> bool:
    """Close the episode of ``event`` (a resolve), store the event and queue it; False
    (nothing written) when the episode was closed already."""
    params = {
        "episode_id": event.episode_id,
        "at": event.resolved_at,
        "reason": event.resolve_reason,
        "event_id": event.event_id,
    }
    with conn.transaction():
        if conn.execute(_CLOSE_EPISODE, params).fetchone() is None:
            return False
        _store_event(conn, event, destinations)
    return True


def _store_event(conn: psycopg.Connection, event: AlertEvent, destinations: Sequence[str]) -> None:
    conn.execute(
        _INSERT_EVENT,
        (
            event.event_id,
            event.type,
            event.occurred_at,
            event.rule,
            event.subject.id,
            event.episode_id,
            Jsonb(event.model_dump(mode="json")),
        ),
    )
    if destinations:
        conn.execute(_QUEUE, (event.event_id, event.episode_id, list(destinations)))


# -- outbox --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One event to send to one destination (claimed: leased to this process)."""

    id: int
    event: AlertEvent
    destination: str
    attempts: int
    """Attempts so far, this one included."""

    @property
    def body(self) -> bytes:
        return encode_alert(self.event)


# An event waits while an earlier event of its episode is undelivered at the same
# destination: receivers get an episode's breach before its resolve.
_CLAIM = """
WITH due AS (
    SELECT o.id FROM ops.alert_outbox o
     WHERE o.destination = %(destination)s
       AND o.delivered_at IS NULL AND o.abandoned_at IS NULL
       AND o.next_attempt_at <= now()
       AND NOT EXISTS (
            SELECT 1 FROM ops.alert_outbox p
             WHERE p.episode_id = o.episode_id AND p.destination = o.destination
               AND p.id < o.id AND p.delivered_at IS NULL AND p.abandoned_at IS NULL)
     ORDER BY o.next_attempt_at, o.id
     LIMIT %(limit)s
     FOR UPDATE OF o SKIP LOCKED)
UPDATE ops.alert_outbox o
   SET attempts = o.attempts + 1,
       next_attempt_at = now() + make_interval(secs => %(lease_s)s)
  FROM due, audit.alert_events e
 WHERE o.id = due.id AND e.event_id = o.event_id
RETURNING o.id, o.attempts, e.payload
"""


def claim_due(
    conn: psycopg.Connection, destination: str, limit: int, lease_s: float
) -> list[OutboxItem]:
    """Take up to ``limit`` due rows of ``destination``, oldest first, for ``lease_s``:
    no other process takes them until then (or until marked failed)."""
    rows = conn.execute(
        _CLAIM, {"destination": destination, "limit": limit, "lease_s": lease_s}
    ).fetchall()
    items = [
        OutboxItem(row_id, AlertEvent.model_validate(payload), destination, attempts)
        for row_id, attempts, payload in rows
    ]
    items.sort(key=lambda item: item.id)
    return items


def mark_delivered(conn: psycopg.Connection, item_id: int) -> None:
    """The destination took the event."""
    conn.execute(
        "UPDATE ops.alert_outbox SET delivered_at = now(), last_error = NULL WHERE id = %s",
        (item_id,),
    )


def mark_failed(conn: psycopg.Connection, item_id: int, error: str, retry_in_s: float) -> None:
    """The destination did not take it: try again in ``retry_in_s`` (error kept)."""
    conn.execute(
        "UPDATE ops.alert_outbox SET last_error = %s,"
        " next_attempt_at = now() + make_interval(secs => %s) WHERE id = %s",
        (error[:500], retry_in_s, item_id),
    )


def abandon_expired(conn: psycopg.Connection, max_age_s: float) -> dict[str, int]:
    """Give up rows stored more than ``max_age_s`` ago; how many, by destination."""
    rows = conn.execute(
        "UPDATE ops.alert_outbox SET abandoned_at = now()"
        " WHERE delivered_at IS NULL AND abandoned_at IS NULL"
        "   AND created_at < now() - make_interval(secs => %s)"
        " RETURNING destination",
        (max_age_s,),
    ).fetchall()
    counts: dict[str, int] = {}
    for (destination,) in rows:
        counts[destination] = counts.get(destination, 0) + 1
    return counts


def prune_finished(conn: psycopg.Connection, retention_s: float) -> int:
    """Delete outbox rows delivered or given up more than ``retention_s`` ago; how many.
    The events stay in audit.alert_events."""
    cursor = conn.execute(
        "DELETE FROM ops.alert_outbox"
        " WHERE coalesce(delivered_at, abandoned_at) < now() - make_interval(secs => %s)",
        (retention_s,),
    )
    return cursor.rowcount


def outbox_backlog(conn: psycopg.Connection) -> dict[str, int]:
    """Rows not delivered (nor given up) yet, by destination."""
    rows = conn.execute(
        "SELECT destination, count(*) FROM ops.alert_outbox"
        " WHERE delivered_at IS NULL AND abandoned_at IS NULL GROUP BY destination"
    ).fetchall()
    return {destination: int(count) for destination, count in rows}


# -- read model (HTTP API) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One episode as the API lists it."""

    episode_id: str
    rule: str
    rule_kind: str
    severity: str
    subject: str
    scope: str
    site: str
    condition_since: datetime
    breached_at: datetime
    value: float | None
    threshold: float
    resolved_at: datetime | None
    resolve_reason: str | None


_LIST = """
SELECT episode_id::text, rule, rule_kind, severity, subject, equipment IS NULL, site,
       condition_since, breached_at, breach_value, threshold, resolved_at, resolve_reason
  FROM ops.alert_episodes
 WHERE (NOT %(open_only)s OR resolved_at IS NULL)
   AND (%(sites)s::text[] IS NULL OR site = ANY(%(sites)s::text[]))
 ORDER BY breached_at DESC, episode_id DESC
 LIMIT %(limit)s
"""


def list_alerts(
    conn: psycopg.Connection, *, open_only: bool, sites: Sequence[str] | None, limit: int
) -> list[AlertRow]:
    """Episodes, newest breach first (open ones only, of ``sites`` only, when asked)."""
    params: dict[str, Any] = {
        "open_only": open_only,
        "sites": None if sites is None else list(sites),
        "limit": limit,
    }
    return [
        AlertRow(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            "line" if row[5] else "equipment",
            *row[6:],
        )
        for row in conn.execute(_LIST, params).fetchall()
    ]
