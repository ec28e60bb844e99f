-- Facts derived from audit.events, written in the same transaction as the events they
-- come from, and only from events that were new (a duplicate delivery adds nothing).
--
-- The OEE engine asks "what happened at equipment E between t1 and t2", newest first,
-- so every fact table has a btree on (equipment_id, time DESC) that INCLUDEs the columns
-- the engine sums, allowing index-only scans once autovacuum has set the visibility map.

-- State intervals: one row per equipment.state_changed event. The interval runs from the
-- event's time to the next state change of the same equipment (end_time NULL while it is
-- current). end_time is derived: when a change arrives late, the writer recomputes the
-- end_time of the intervals from the one before the late change onwards.
-- Ties at the same millisecond are ordered by seq (the agent numbers events in the order
-- it emitted them), then event_id.
-- To find intervals overlapping [t1, t2) with the btree: start_time < t2 AND
-- start_time >= (the start_time of the interval containing t1, found by
-- "start_time <= t1 ORDER BY start_time DESC LIMIT 1").
CREATE TABLE lineside.state_intervals (
    equipment_id    integer NOT NULL,
    start_time      timestamptz NOT NULL,
    end_time        timestamptz,
    state           text NOT NULL,
    previous_state  text,            -- as reported by the agent (null: it did not know)
    raw_value       jsonb,           -- the PLC value the state came from, with its JSON type
    reason_code     bigint,
    seq             bigint NOT NULL,
    event_id        uuid NOT NULL
);
CREATE UNIQUE INDEX state_intervals_equipment_time
    ON lineside.state_intervals (equipment_id, start_time DESC, event_id)
    INCLUDE (end_time, state, reason_code);
-- "current state of every machine" for dashboards
CREATE INDEX state_intervals_current
    ON lineside.state_intervals (equipment_id) INCLUDE (start_time, state)
    WHERE end_time IS NULL;

-- Production counts: one row per production.counted event (increments, not absolute
-- counter values). High volume, so partitioned by day like audit.events and with no
-- unique key of its own (uniqueness comes from audit.events' primary key).
CREATE TABLE lineside.production_counts (
    equipment_id    integer NOT NULL,
    event_time      timestamptz NOT NULL,
    interval_start  timestamptz,     -- the interval is (interval_start, event_time]
    good            bigint NOT NULL,
    scrap           bigint NOT NULL,
    total           bigint NOT NULL,
    counter_reset   boolean NOT NULL,
    product_id      text,
    order_id        text,
    event_id        uuid NOT NULL
) PARTITION BY RANGE (event_time);
CREATE INDEX production_counts_equipment_time
    ON lineside.production_counts (equipment_id, event_time DESC)
    INCLUDE (good, scrap, total);

-- Production events: production.started and production.ended, the (rare) source of
-- production runs. Kept as facts of their own so runs can be recomputed from them
-- without scanning the high-volume event store, and independently of its retention.
CREATE TABLE lineside.production_events (
    equipment_id        integer NOT NULL,
    event_time          timestamptz NOT NULL,
    seq                 bigint NOT NULL,
    event_id            uuid NOT NULL,
    kind                text NOT NULL CHECK (kind IN ('started', 'ended')),
    order_id            text,
    product_id          text,
    ideal_cycle_time_s  double precision,    -- started only
    end_reason          text,                -- ended only
    PRIMARY KEY (equipment_id, event_time, event_id)
);

-- Production runs: one row per production.started. A run ends at the next production
-- event of the same equipment: a production.ended (end_reason from it) or, when the
-- agent sent none, the next production.started (end_reason NULL). A production.ended
-- without a run open before it ends nothing (its start was never received).
-- Recomputed from the run open before a late production event onwards.
CREATE TABLE lineside.production_runs (
    equipment_id        integer NOT NULL,
    start_time          timestamptz NOT NULL,
    end_time            timestamptz,         -- NULL while the run is open
    order_id            text,
    product_id          text,
    ideal_cycle_time_s  double precision,
    end_reason          text,
    started_event_id    uuid NOT NULL,
    ended_event_id      uuid
);
CREATE UNIQUE INDEX production_runs_equipment_time
    ON lineside.production_runs (equipment_id, start_time DESC, started_event_id)
    INCLUDE (end_time, order_id, product_id, ideal_cycle_time_s);

-- Process values (historian): one row per tag.sampled event, the bulk of the volume.
-- Partitioned by day. The value keeps its JSON type in one of three columns (numbers,
-- integers included, as double precision; the exact JSON stays in audit.events).
-- Trends ask for one tag of one machine over a time range; rows arrive in time order,
-- so the heap is already clustered by time and a plain (non-covering) btree keeps the
-- per-insert cost down.
CREATE TABLE lineside.process_values (
    equipment_id    integer NOT NULL,
    event_time      timestamptz NOT NULL,
    tag             text COLLATE "C" NOT NULL,   -- byte order: cheap index comparisons in any locale
    value_num       double precision,
    value_text      text,
    value_bool      boolean,
    unit            text,
    quality         text NOT NULL,       -- good | uncertain | bad
    status          text NOT NULL,       -- the source's own status text
    event_id        uuid NOT NULL
) PARTITION BY RANGE (event_time);
CREATE INDEX process_values_equipment_tag_time
    ON lineside.process_values (equipment_id, tag, event_time DESC);
