-- Lineside collector storage, part 1: the three schemas and the equipment register.
--
--   lineside  facts derived from events (what the OEE engine and the API read)
--   audit     the event store: every accepted event exactly once, as received
--   ops       bookkeeping of the collector itself (migrations, dead letters, sequences)
--
-- Facts refer to equipment by a small integer id rather than the five path levels, so
-- the high-volume tables carry 4 bytes per row instead of five strings. There are no
-- foreign keys from the high-volume tables to lineside.equipment: a foreign key is a
-- trigger fired per inserted row, and equipment rows are never deleted.
-- Text columns that are index keys use COLLATE "C": identifiers compare byte by byte,
-- which is much cheaper than a locale's rules and means the same in every database.

CREATE SCHEMA IF NOT EXISTS lineside;
CREATE SCHEMA IF NOT EXISTS audit;
CREATE SCHEMA IF NOT EXISTS ops;

CREATE TABLE lineside.equipment (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    enterprise  text COLLATE "C" NOT NULL,
    site        text COLLATE "C" NOT NULL,
    area        text COLLATE "C" NOT NULL,
    line        text COLLATE "C" NOT NULL,
    equipment   text COLLATE "C" NOT NULL,
    -- earliest and latest event_time stored for this equipment (a replayed backlog can
    -- move first_seen back); wall-clock liveness belongs to the agent status topic
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    CONSTRAINT equipment_path_key UNIQUE (enterprise, site, area, line, equipment)
);
-- rows are updated (first_seen/last_seen) by nearly every write: leave room for HOT
ALTER TABLE lineside.equipment SET (fillfactor = 50);

COMMENT ON TABLE lineside.equipment IS
    'ISA-95 equipment paths seen in event batches; id is what every fact row refers to';
