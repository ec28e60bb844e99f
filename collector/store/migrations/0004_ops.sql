-- Collector bookkeeping: dead letters and sequence tracking.
-- (ops.schema_migrations is created by collector.store.migrate itself.)

-- Refused messages, kept for inspection and replay. The payload is capped (the writer's
-- payload_cap_bytes); payload_bytes keeps the size of what was received.
CREATE TABLE ops.dead_letters (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at     timestamptz NOT NULL,
    stored_at       timestamptz NOT NULL DEFAULT now(),
    topic           text NOT NULL,
    reason          text NOT NULL,       -- lineside_protocol.RejectReason value
    detail          text NOT NULL,
    agent_id        text,                -- NULL when the message named no readable agent
    batch_id        text,                -- and batch (then no ack was sent)
    payload         bytea NOT NULL,
    payload_bytes   integer NOT NULL,
    replayed_at     timestamptz
);
CREATE INDEX dead_letters_received_at ON ops.dead_letters (received_at DESC);
CREATE INDEX dead_letters_not_replayed ON ops.dead_letters (received_at)
    WHERE replayed_at IS NULL;

-- Highest seq seen per agent and equipment. Updated by every write of that equipment,
-- so it is kept small and HOT-friendly.
CREATE TABLE ops.sequence_state (
    agent_id        text COLLATE "C" NOT NULL,
    equipment_id    integer NOT NULL,
    max_seq         bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, equipment_id)
);
ALTER TABLE ops.sequence_state SET (fillfactor = 50);

-- Missing seq ranges (inclusive). An open gap shrinks or splits as late events arrive
-- (the remaining parts keep detected_at); it is closed when nothing of it is missing any
-- more ('arrived') or when a buffer.overflowed event says the agent dropped those events
-- ('dropped_by_agent').
CREATE TABLE ops.sequence_gaps (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id        text COLLATE "C" NOT NULL,
    equipment_id    integer NOT NULL,
    first_seq       bigint NOT NULL,
    last_seq        bigint NOT NULL,
    detected_at     timestamptz NOT NULL DEFAULT now(),
    closed_at       timestamptz,
    closed_by       text CHECK (closed_by IN ('arrived', 'dropped_by_agent')),
    CHECK (last_seq >= first_seq),
    CHECK ((closed_at IS NULL) = (closed_by IS NULL))
);
CREATE INDEX sequence_gaps_open ON ops.sequence_gaps (agent_id, equipment_id, first_seq)
    WHERE closed_at IS NULL;
CREATE INDEX sequence_gaps_detected_at ON ops.sequence_gaps (detected_at DESC);
