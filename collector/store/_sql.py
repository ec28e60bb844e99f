"""SQL text of the writer: staging table, the insert-and-derive statement, recomputations."""

from __future__ import annotations

from ._copy import EVENT_COLUMNS
from ._facts import (
    PROCESS_VALUE_COLUMNS,
    PRODUCTION_COUNT_COLUMNS,
    PRODUCTION_EVENT_COLUMNS,
    STATE_INTERVAL_COLUMNS,
)

# A temp table lives as long as the connection and is private to it; it is not WAL
# logged, and ON COMMIT DELETE ROWS empties it at every commit (and a rollback removes
# what a failed write copied in).
CREATE_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS lineside_staging_events (
    event_id        uuid NOT NULL,
    event_time      timestamptz NOT NULL,
    equipment_id    integer NOT NULL,
    agent_id        text NOT NULL,
    type            text NOT NULL,
    seq             bigint NOT NULL,
    received_time   timestamptz NOT NULL,
    correlation_id  text,
    causation_id    text,
    historical      boolean NOT NULL,
    payload         jsonb NOT NULL,
    batch_id        uuid NOT NULL
) ON COMMIT DELETE ROWS
"""

COPY_STAGING = f"COPY pg_temp.lineside_staging_events ({', '.join(EVENT_COLUMNS)}) FROM STDIN"

# Fresh batches (see INSERT_AND_DERIVE) skip the staging table: their events and facts are
# copied straight into their tables (facts built in Python by _facts.encode_facts).
COPY_EVENTS = f"COPY audit.events ({', '.join(EVENT_COLUMNS)}) FROM STDIN"
COPY_PROCESS_VALUES = (
    f"COPY lineside.process_values ({', '.join(PROCESS_VALUE_COLUMNS)}) FROM STDIN"
)
COPY_PRODUCTION_COUNTS = (
    f"COPY lineside.production_counts ({', '.join(PRODUCTION_COUNT_COLUMNS)}) FROM STDIN"
)
COPY_STATE_INTERVALS = (
    f"COPY lineside.state_intervals ({', '.join(STATE_INTERVAL_COLUMNS)}) FROM STDIN"
)
COPY_PRODUCTION_EVENTS = (
    f"COPY lineside.production_events ({', '.join(PRODUCTION_EVENT_COLUMNS)}) FROM STDIN"
)

# Per-stream bookkeeping shared by both write paths (``groups``: one row per agent and
# equipment with its highest seq and first/last event time): the highest seq stored,
# and the equipment's first_seen/last_seen.
_STREAM_SEQUENCES = """sequences AS (
    INSERT INTO ops.sequence_state AS s (agent_id, equipment_id, max_seq)
    SELECT agent_id, equipment_id, hi FROM groups
    ON CONFLICT (agent_id, equipment_id) DO UPDATE
       SET max_seq = EXCLUDED.max_seq, updated_at = now()
     WHERE EXCLUDED.max_seq > s.max_seq
)"""
_STREAM_SEEN = """UPDATE lineside.equipment q
   SET first_seen = LEAST(q.first_seen, g.first_time),
       last_seen = GREATEST(q.last_seen, g.last_time)
  FROM (SELECT equipment_id, min(first_time) AS first_time, max(last_time) AS last_time
          FROM groups GROUP BY equipment_id) g
 WHERE q.id = g.equipment_id
   AND (g.first_time < q.first_seen OR g.last_time > q.last_seen)"""

# The bookkeeping INSERT_AND_DERIVE does for the staged events (its "sequences" and
# "seen" parts), for the copied ones: one row per (agent, equipment) stream.
UPDATE_STREAMS = (
    """
WITH groups AS (
    SELECT * FROM unnest(%s::text[], %s::integer[], %s::bigint[], %s::timestamptz[],
                         %s::timestamptz[]) AS g(agent_id, equipment_id, hi, first_time,
                                                 last_time)
), """
    + _STREAM_SEQUENCES
    + "\n"
    + _STREAM_SEEN
)

# Serialises writers per equipment for the whole transaction: sequence state, gaps and the
# recomputed intervals/runs of one equipment are read and written by one writer at a
# time. Ids come sorted, so two writers always lock in the same order (no deadlock).
# An advisory lock (not a row lock) also covers an equipment's first write, when no
# sequence row exists yet to lock.
# The same round trip makes this transaction's prepared statements use their generic
# plans: re-planning them for every write (PostgreSQL keeps trying custom plans when it
# has no statistics to compare against) cost about 0.5 ms per statement.
LOCK_EQUIPMENT = (
    "SET LOCAL plan_cache_mode = force_generic_plan; "
    "SELECT pg_advisory_xact_lock({lock_class}, id) FROM unnest({ids}::integer[]) AS id"
)

READ_SEQUENCE_STATE = """
SELECT s.agent_id, s.equipment_id, s.max_seq
  FROM ops.sequence_state s
  JOIN unnest(%s::text[], %s::integer[]) AS w(agent_id, equipment_id)
    ON s.agent_id = w.agent_id AND s.equipment_id = w.equipment_id
"""

# One statement inserts the new events and every fact derived from them. Only rows the
# INSERTs really added (their RETURNING) reach the facts, so a duplicate delivery, or the
# same batch written by two collectors one after the other, adds nothing.
#
# Two inserts, because ON CONFLICT costs about 20% of the whole write: batches whose
# seqs are all above the highest seq stored for their stream (checked under the
# equipment lock, so no other writer can store them meanwhile) cannot hold a stored
# event and go in with a plain INSERT ("fresh"); the others (resends, backlog replays
# filling gaps) with ON CONFLICT DO NOTHING. Should a fresh batch still hit a stored
# event (an agent that reused seqs or ids), the unique violation rolls the write back and
# the writer does it again with every batch going through ON CONFLICT.
INSERT_AND_DERIVE = (
    """
WITH fresh AS (
    INSERT INTO audit.events (event_id, event_time, equipment_id, agent_id, type, seq,
                              received_time, correlation_id, causation_id, historical,
                              payload, batch_id)
    SELECT event_id, event_time, equipment_id, agent_id, type, seq, received_time,
           correlation_id, causation_id, historical, payload, batch_id
      FROM pg_temp.lineside_staging_events
     WHERE batch_id = ANY(%(fresh)s::uuid[])
    RETURNING event_id, event_time, equipment_id, agent_id, type, seq, payload
), known AS (
    INSERT INTO audit.events (event_id, event_time, equipment_id, agent_id, type, seq,
                              received_time, correlation_id, causation_id, historical,
                              payload, batch_id)
    SELECT event_id, event_time, equipment_id, agent_id, type, seq, received_time,
           correlation_id, causation_id, historical, payload, batch_id
      FROM pg_temp.lineside_staging_events
     WHERE NOT batch_id = ANY(%(fresh)s::uuid[])
    ON CONFLICT DO NOTHING
    RETURNING event_id, event_time, equipment_id, agent_id, type, seq, payload
), ins AS (
    SELECT * FROM fresh UNION ALL SELECT * FROM known
), process_values AS (
    INSERT INTO lineside.process_values (equipment_id, event_time, tag, value_num,
                                         value_text, value_bool, unit, quality, status,
                                         event_id)
    SELECT equipment_id, event_time, payload->>'tag',
           CASE WHEN v.kind = 'number' THEN (payload->>'value')::float8 END,
           CASE WHEN v.kind = 'string' THEN payload->>'value' END,
           CASE WHEN v.kind = 'boolean' THEN (payload->>'value')::boolean END,
           payload->>'unit', payload->>'quality', payload->>'status', event_id
      FROM ins CROSS JOIN LATERAL (SELECT jsonb_typeof(payload->'value') AS kind) v
     WHERE type = 'tag.sampled'
), counts AS (
    INSERT INTO lineside.production_counts (equipment_id, event_time, interval_start, good,
                                            scrap, total, counter_reset, product_id,
                                            order_id, event_id)
    SELECT equipment_id, event_time, (payload->>'interval_start')::timestamptz,
           (payload->>'good')::bigint, (payload->>'scrap')::bigint,
           (payload->>'total')::bigint,
           COALESCE((payload->>'counter_reset')::boolean, false),
           payload->>'product_id', payload->>'order_id', event_id
      FROM ins
     WHERE type = 'production.counted'
), hours AS (
    INSERT INTO lineside.count_hours AS h (equipment_id, hour_end, product_id, good, scrap,
                                           counts, last_time)
    SELECT equipment_id,
           date_trunc('hour', event_time - interval '1 microsecond') + interval '1 hour',
           payload->>'product_id', sum((payload->>'good')::bigint),
           sum((payload->>'scrap')::bigint), count(*), max(event_time)
      FROM ins
     WHERE type = 'production.counted'
     GROUP BY 1, 2, 3
    ON CONFLICT ON CONSTRAINT count_hours_key DO UPDATE
       SET good = h.good + EXCLUDED.good, scrap = h.scrap + EXCLUDED.scrap,
           counts = h.counts + EXCLUDED.counts,
           last_time = GREATEST(h.last_time, EXCLUDED.last_time)
), states AS (
    INSERT INTO lineside.state_intervals (equipment_id, start_time, state, previous_state,
                                          raw_value, reason_code, seq, event_id)
    SELECT equipment_id, event_time, payload->>'state', payload->>'previous_state',
           NULLIF(payload->'raw_value', 'null'::jsonb), (payload->>'reason_code')::bigint,
           seq, event_id
      FROM ins
     WHERE type = 'equipment.state_changed'
), production AS (
    INSERT INTO lineside.production_events (equipment_id, event_time, seq, event_id, kind,
                                            order_id, product_id, ideal_cycle_time_s,
                                            end_reason)
    SELECT equipment_id, event_time, seq, event_id,
           CASE type WHEN 'production.started' THEN 'started' ELSE 'ended' END,
           payload->>'order_id', payload->>'product_id',
           (payload->>'ideal_cycle_time_s')::float8, payload->>'reason'
      FROM ins
     WHERE type IN ('production.started', 'production.ended')
), groups AS (
    SELECT agent_id, equipment_id, min(seq) AS lo, max(seq) AS hi, count(*) AS n,
           min(event_time) AS first_time, max(event_time) AS last_time
      FROM ins
     GROUP BY agent_id, equipment_id
), """
    + _STREAM_SEQUENCES
    + """, seen AS (
"""
    + _STREAM_SEEN
    + """
), islands AS (
    -- runs of consecutive seqs ("gaps and islands": seq - row_number is constant in a
    -- run), sorted out only for streams whose new seqs are not one run already
    SELECT i.agent_id, i.equipment_id, i.seq,
           i.seq - row_number() OVER (PARTITION BY i.agent_id, i.equipment_id
                                      ORDER BY i.seq) AS island
      FROM ins i
      JOIN groups g ON g.agent_id = i.agent_id AND g.equipment_id = i.equipment_id
     WHERE g.n <> g.hi - g.lo + 1
)
SELECT 'arrived' AS kind, agent_id, equipment_id, lo, hi, NULL::timestamptz AS t, n
  FROM groups
 WHERE n = hi - lo + 1
UNION ALL
SELECT 'arrived', agent_id, equipment_id, min(seq), max(seq), NULL, count(*)
  FROM islands
 GROUP BY agent_id, equipment_id, island
UNION ALL
SELECT 'dropped', agent_id, equipment_id, (payload->>'first_seq')::bigint,
       (payload->>'last_seq')::bigint, NULL, 1
  FROM ins
 WHERE type = 'buffer.overflowed'
UNION ALL
SELECT 'state', NULL, equipment_id, NULL, NULL, min(event_time), count(*)
  FROM ins
 WHERE type = 'equipment.state_changed'
 GROUP BY equipment_id
UNION ALL
SELECT 'production', NULL, equipment_id, NULL, NULL, min(event_time), count(*)
  FROM ins
 WHERE type IN ('production.started', 'production.ended')
 GROUP BY equipment_id
"""
)

# State intervals from the interval before the earliest new change onwards: end_time is
# the next change's start_time. In the live case (the new change is the latest) that
# touches two rows: the interval it ends and itself.
RECOMPUTE_STATE_INTERVALS = """
WITH affected AS (
    SELECT * FROM unnest(%s::integer[], %s::timestamptz[]) AS a(equipment_id, t0)
), bounds AS (
    SELECT a.equipment_id,
           COALESCE((SELECT max(s.start_time) FROM lineside.state_intervals s
                      WHERE s.equipment_id = a.equipment_id AND s.start_time < a.t0),
                    a.t0) AS t_from
      FROM affected a
), recomputed AS (
    SELECT s.ctid AS row_id, s.end_time,
           lead(s.start_time) OVER (PARTITION BY s.equipment_id
                                    ORDER BY s.start_time, s.seq, s.event_id) AS new_end
      FROM lineside.state_intervals s
      JOIN bounds b ON s.equipment_id = b.equipment_id AND s.start_time >= b.t_from
), changed AS MATERIALIZED (
    SELECT row_id, new_end FROM recomputed WHERE end_time IS DISTINCT FROM new_end
)
-- by ctid, and with the ctid list as a TID scan condition: whatever the planner thinks
-- of the row counts (no statistics yet), it never scans the whole table
UPDATE lineside.state_intervals s
   SET end_time = c.new_end
  FROM changed c
 WHERE s.ctid = c.row_id
   AND s.ctid = ANY (ARRAY(SELECT row_id FROM changed))
"""

# Production runs from the run started before the earliest new production event onwards.
# Runs are one per production.started and never disappear, so an upsert is enough.
RECOMPUTE_PRODUCTION_RUNS = """
WITH affected AS (
    SELECT * FROM unnest(%s::integer[], %s::timestamptz[]) AS a(equipment_id, t0)
), bounds AS (
    SELECT a.equipment_id,
           COALESCE((SELECT max(p.event_time) FROM lineside.production_events p
                      WHERE p.equipment_id = a.equipment_id AND p.kind = 'started'
                        AND p.event_time < a.t0),
                    a.t0) AS t_from
      FROM affected a
), ordered AS (
    SELECT p.*,
           lead(p.event_time) OVER w AS next_time,
           lead(p.kind) OVER w AS next_kind,
           lead(p.end_reason) OVER w AS next_reason,
           lead(p.event_id) OVER w AS next_event_id
      FROM lineside.production_events p
      JOIN bounds b ON p.equipment_id = b.equipment_id AND p.event_time >= b.t_from
    WINDOW w AS (PARTITION BY p.equipment_id ORDER BY p.event_time, p.seq, p.event_id)
)
INSERT INTO lineside.production_runs AS r (equipment_id, start_time, end_time, order_id,
                                           product_id, ideal_cycle_time_s, end_reason,
                                           started_event_id, ended_event_id)
SELECT equipment_id, event_time, next_time, order_id, product_id, ideal_cycle_time_s,
       CASE WHEN next_kind = 'ended' THEN next_reason END, event_id,
       CASE WHEN next_kind = 'ended' THEN next_event_id END
  FROM ordered
 WHERE kind = 'started'
ON CONFLICT (equipment_id, start_time, started_event_id) DO UPDATE
   SET end_time = EXCLUDED.end_time, end_reason = EXCLUDED.end_reason,
       ended_event_id = EXCLUDED.ended_event_id
 WHERE (r.end_time, r.end_reason, r.ended_event_id)
       IS DISTINCT FROM (EXCLUDED.end_time, EXCLUDED.end_reason, EXCLUDED.ended_event_id)
"""

INSERT_DEAD_LETTER = """
INSERT INTO ops.dead_letters (received_at, topic, reason, detail, agent_id, batch_id,
                              payload, payload_bytes)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
"""

UPSERT_EQUIPMENT = """
INSERT INTO lineside.equipment (enterprise, site, area, line, equipment, first_seen, last_seen)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
                     %s::timestamptz[], %s::timestamptz[])
ON CONFLICT (enterprise, site, area, line, equipment) DO NOTHING
"""

SELECT_EQUIPMENT = """
SELECT q.id, q.enterprise, q.site, q.area, q.line, q.equipment
  FROM lineside.equipment q
  JOIN unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[])
       AS w(enterprise, site, area, line, equipment)
    ON (q.enterprise, q.site, q.area, q.line, q.equipment)
     = (w.enterprise, w.site, w.area, w.line, w.equipment)
"""

# Raise the fact revision of every (equipment, UTC day) a write touched (see
# migrations/0005_fact_revisions.sql). Pairs come sorted, so concurrent writers of
# different equipment never wait on each other and never deadlock.
BUMP_FACT_REVISIONS = """
INSERT INTO ops.fact_revisions AS r (equipment_id, day, revision)
SELECT equipment_id, day, 1
  FROM unnest(%s::integer[], %s::date[]) AS t(equipment_id, day)
ON CONFLICT (equipment_id, day) DO UPDATE SET revision = r.revision + 1
"""

# Hourly count sums of the counts COPYed by the fast path (summed in Python per
# equipment, hour and product; see migrations/0007_count_hours.sql).
UPSERT_COUNT_HOURS = """
INSERT INTO lineside.count_hours AS h (equipment_id, hour_end, product_id, good, scrap, counts,
                                       last_time)
SELECT * FROM unnest(%s::integer[], %s::timestamptz[], %s::text[], %s::bigint[], %s::bigint[],
                     %s::bigint[], %s::timestamptz[])
ON CONFLICT ON CONSTRAINT count_hours_key DO UPDATE
   SET good = h.good + EXCLUDED.good, scrap = h.scrap + EXCLUDED.scrap,
       counts = h.counts + EXCLUDED.counts,
       last_time = GREATEST(h.last_time, EXCLUDED.last_time)
"""
