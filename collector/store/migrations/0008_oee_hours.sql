-- OEE components per equipment and hour, computed ahead by the collector (the engine's
-- own output for whole past UTC days), so that a month of a line is summed in SQL instead
-- of being recomputed from every state change. See collector/oee_hours.py.
--
-- A day's hours are valid while the day's fact revision (ops.fact_revisions) and the
-- master data fingerprint are what they were computed with (lineside.oee_days); the OEE
-- reader uses only valid days and computes everything else from the facts. Times are
-- microseconds, ideal times exact decimal seconds (the binary value of the float ideal
-- cycle time times the parts), as in collector.oee.components.
CREATE TABLE lineside.oee_days (
    equipment_id    integer NOT NULL,
    day             date NOT NULL,
    fingerprint     text NOT NULL,       -- master data the hours were computed with
    revision        bigint NOT NULL,     -- ops.fact_revisions of the day when computed (0: none)
    computed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (equipment_id, day)
);

CREATE TABLE lineside.oee_hours (
    equipment_id        integer NOT NULL,
    hour_end            timestamptz NOT NULL,   -- the hour [hour_end - 1 h, hour_end)
    day                 date NOT NULL,          -- UTC day of the hour (lineside.oee_days)
    all_time_us         bigint NOT NULL,
    planned_time_us     bigint NOT NULL,
    pd_breaks_us        bigint NOT NULL,
    pd_states_us        bigint NOT NULL,
    unscheduled_us      bigint NOT NULL,
    pbt_us              bigint NOT NULL,
    apt_us              bigint NOT NULL,
    running_us          bigint NOT NULL,
    micro_stop_us       bigint NOT NULL,
    performance_us      bigint NOT NULL,
    downtime_us         bigint NOT NULL,
    setup_us            bigint NOT NULL,
    offline_us          bigint NOT NULL,
    no_data_us          bigint NOT NULL,
    good_ideal_s        numeric NOT NULL,
    scrap_ideal_s       numeric NOT NULL,
    startup_ideal_s     numeric NOT NULL,
    good                bigint NOT NULL,
    scrap               bigint NOT NULL,
    startup_scrap       bigint NOT NULL,
    without_ict         bigint NOT NULL,
    unknown_states      text[] NOT NULL,
    PRIMARY KEY (equipment_id, hour_end)
);

-- The maps of the components: downtime by state ('d') and unplanned stop time by state
-- and reason code ('s', the Pareto).
CREATE TABLE lineside.oee_hour_losses (
    equipment_id    integer NOT NULL,
    hour_end        timestamptz NOT NULL,
    day             date NOT NULL,
    kind            "char" NOT NULL CHECK (kind IN ('d', 's')),
    state           text NOT NULL,
    reason_code     bigint,
    time_us         bigint NOT NULL
);
CREATE INDEX oee_hour_losses_equipment_hour ON lineside.oee_hour_losses (equipment_id, hour_end);
