-- Pending alert timers: for a rule whose condition start is not in the facts (oee_below),
-- when an evaluation first saw the condition hold, per rule and subject. Kept in the
-- database rather than in each collector's memory, so that a restart does not start the
-- timer again (delaying the alert by up to the rule's for_s) and so that every collector
-- process evaluating the rules counts from the same start. A row goes when the condition
-- clears or the alert fires; rows left by rules no longer configured are pruned once
-- older than any for_s allows (collector/alerts/store.py, prune_stale_pending).
CREATE TABLE ops.alert_pending (
    rule     text COLLATE "C" NOT NULL,
    subject  text COLLATE "C" NOT NULL,   -- site/area/line[/equipment], as in alert_episodes
    since    timestamptz NOT NULL,
    PRIMARY KEY (rule, subject)
);
