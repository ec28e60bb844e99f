-- Fact revisions: a counter per equipment and UTC day, raised by every write that stores
-- or may change facts of that equipment on that day (a late event, a replayed backlog).
-- Readers that cache results (the API's OEE cache) keep the sum of the revisions of the
-- days and equipment behind a result and compare it with the current sum: any write in
-- between raises it, so a cached answer is never served after its facts changed.
--
-- A write marks the days of its events and the day one hour before its earliest event
-- (a late state change can turn a stop that began up to the micro-stop threshold earlier
-- into a micro-stop; the threshold is limited to one hour for this reason). A state or
-- production change also marks every day from it until today: it decides the state, or
-- the ideal cycle time, in force until the next stored change.
CREATE TABLE ops.fact_revisions (
    equipment_id    integer NOT NULL,
    day             date NOT NULL,
    revision        bigint NOT NULL,
    PRIMARY KEY (equipment_id, day)
);
-- one row per equipment and day, updated by every write of that day: room for HOT
ALTER TABLE ops.fact_revisions SET (fillfactor = 50);
