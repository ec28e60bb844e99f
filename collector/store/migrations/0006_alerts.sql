-- Threshold alerts (collector/alerts, docs/alerts.md).
--
--   ops.alert_episodes  one row per episode: a rule's condition holding for one subject
--                       (a line or an equipment), from its breach to its resolve
--   audit.alert_events  every alert event, as sent (oee.threshold_breached/_resolved)
--   ops.alert_outbox    one row per event and destination, until delivered
--
-- Several collector processes may evaluate the same rules against this database. The
-- partial unique index on open episodes admits one open episode per rule and subject:
-- INSERT ... ON CONFLICT DO NOTHING RETURNING tells each process whether it opened the
-- episode (and sends the event) or another one did (and it sends nothing). Closing is an
-- UPDATE ... WHERE resolved_at IS NULL RETURNING: one process wins there too.
--
-- The episode change, its event and its outbox rows are written in one transaction, so a
-- crash between storing and sending loses nothing. Deliverers claim due outbox rows with
-- FOR UPDATE SKIP LOCKED and lease them (next_attempt_at moves ahead) while they send, so
-- two processes never send one row at the same time; delivery is at least once overall
-- (a process that dies after sending and before marking the row sends it again), and
-- receivers drop repeats by event_id.

CREATE TABLE ops.alert_episodes (
    episode_id        uuid PRIMARY KEY,
    rule              text COLLATE "C" NOT NULL,
    rule_kind         text NOT NULL
                      CHECK (rule_kind IN ('oee_below', 'stop_longer_than', 'offline')),
    severity          text NOT NULL,
    subject           text COLLATE "C" NOT NULL,   -- site/area/line[/equipment], the API id
    enterprise        text COLLATE "C" NOT NULL,
    site              text COLLATE "C" NOT NULL,   -- what API access is granted to
    area              text COLLATE "C" NOT NULL,
    line              text COLLATE "C" NOT NULL,
    equipment         text COLLATE "C",            -- NULL for a line alert
    condition_since   timestamptz NOT NULL,
    breached_at       timestamptz NOT NULL,
    breach_value      double precision,
    threshold         double precision NOT NULL,
    breach_event_id   uuid NOT NULL,
    resolved_at       timestamptz,
    resolve_reason    text CHECK (resolve_reason IN ('cleared', 'out_of_scope')),
    resolve_event_id  uuid,
    CHECK ((resolved_at IS NULL) = (resolve_event_id IS NULL)),
    CHECK ((resolved_at IS NULL) = (resolve_reason IS NULL))
);
CREATE UNIQUE INDEX alert_episodes_one_open
    ON ops.alert_episodes (rule, subject) WHERE resolved_at IS NULL;
CREATE INDEX alert_episodes_breached_at ON ops.alert_episodes (breached_at DESC);

-- Few rows (one per breach and resolve): not partitioned, kept like the audit trail.
CREATE TABLE audit.alert_events (
    event_id     uuid PRIMARY KEY,
    type         text NOT NULL
                 CHECK (type IN ('oee.threshold_breached', 'oee.threshold_resolved')),
    occurred_at  timestamptz NOT NULL,
    rule         text COLLATE "C" NOT NULL,
    subject      text COLLATE "C" NOT NULL,
    episode_id   uuid NOT NULL,
    payload      jsonb NOT NULL,                -- the event as sent (lineside_protocol.AlertEvent)
    stored_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_events_episode ON audit.alert_events (episode_id);
CREATE INDEX alert_events_occurred_at ON audit.alert_events (occurred_at DESC);

-- episode_id is repeated here so a deliverer can keep each episode's events in order per
-- destination (a resolve is not sent before its breach was delivered or given up).
CREATE TABLE ops.alert_outbox (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id         uuid NOT NULL REFERENCES audit.alert_events (event_id),
    episode_id       uuid NOT NULL,
    destination      text COLLATE "C" NOT NULL,  -- 'mqtt' or 'webhook:<name>'
    created_at       timestamptz NOT NULL DEFAULT now(),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    abandoned_at     timestamptz,                -- given up (alerts.give_up_after_s)
    last_error       text,
    UNIQUE (event_id, destination)
);
CREATE INDEX alert_outbox_due ON ops.alert_outbox (destination, next_attempt_at)
    WHERE delivered_at IS NULL AND abandoned_at IS NULL;
CREATE INDEX alert_outbox_pending_episode ON ops.alert_outbox (episode_id, destination)
    WHERE delivered_at IS NULL AND abandoned_at IS NULL;
