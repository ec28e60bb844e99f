-- The event store: every accepted event exactly once.
--
-- Partitioned by day on event_time so that retention drops whole partitions instead of
-- deleting rows, and so that time-bounded queries touch only the days they ask for.
-- Partitions are created by collector.store.partitions (ahead of time, and on demand
-- for whatever day a batch needs); there is deliberately no DEFAULT partition, because
-- adding a partition next to a non-empty default partition has to scan it.
--
-- The primary key is the idempotency key. A primary key on a partitioned table must
-- contain the partition column, so it is (event_id, event_time): a replayed event
-- carries the same event_time (the wire contract keeps events unchanged on resend),
-- and UUIDv7 ids grow with time, so the index is appended to at its right edge.

CREATE TABLE audit.events (
    event_id        uuid NOT NULL,
    event_time      timestamptz NOT NULL,
    equipment_id    integer NOT NULL,        -- lineside.equipment.id
    agent_id        text NOT NULL,
    type            text NOT NULL,
    seq             bigint NOT NULL,
    received_time   timestamptz NOT NULL,
    correlation_id  text,
    causation_id    text,                    -- text, not uuid: the contract does not check it
    historical      boolean NOT NULL,
    payload         jsonb NOT NULL,
    batch_id        uuid NOT NULL,
    ingested_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, event_time)
) PARTITION BY RANGE (event_time);

-- Events arrive roughly in time order, so a BRIN index answers time-range scans over
-- all equipment for almost nothing per insert.
CREATE INDEX events_event_time_brin ON audit.events USING brin (event_time);

-- "Events of this equipment, newest first" (audit views, replays, recomputation).
CREATE INDEX events_equipment_time ON audit.events (equipment_id, event_time DESC);

COMMENT ON TABLE audit.events IS
    'Every accepted event once (idempotency key event_id, event_time), partitioned by day';
