-- Hourly sums of production counts, per equipment and product, kept by the writer in the
-- same transaction as the counts themselves (only counts that were new add to them).
--
-- An hour is the interval (hour_end - 1 hour, hour_end]: the same "(lo, hi]" convention
-- the OEE engine uses for counts, so a whole hour lies inside one bucket whenever bucket
-- boundaries are full hours. The OEE reader takes these rows for hours with no bucket
-- boundary or production-run change inside, and the raw counts for the few hours that
-- have one (collector.oee_facts): a month of one machine is ~720 rows instead of every
-- count. last_time (the latest count of the hour) places the sum inside its hour.
CREATE TABLE lineside.count_hours (
    equipment_id    integer NOT NULL,
    hour_end        timestamptz NOT NULL,
    product_id      text,
    good            bigint NOT NULL,
    scrap           bigint NOT NULL,
    counts          bigint NOT NULL,
    last_time       timestamptz NOT NULL,
    CONSTRAINT count_hours_key UNIQUE NULLS NOT DISTINCT (equipment_id, hour_end, product_id)
);
-- rows of the current hour are updated by every write: leave room for HOT updates
ALTER TABLE lineside.count_hours SET (fillfactor = 70);

INSERT INTO lineside.count_hours (equipment_id, hour_end, product_id, good, scrap, counts,
                                  last_time)
SELECT equipment_id,
       date_trunc('hour', event_time - interval '1 microsecond') + interval '1 hour',
       product_id, sum(good), sum(scrap), count(*), max(event_time)
  FROM lineside.production_counts
 GROUP BY 1, 2, 3;
