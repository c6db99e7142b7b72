-- missedcalld schema, migration 4: the window in which a call's unseen end or answer happened
-- (link lost, daemon restarted, PBX restarted). Both NULL unless `gap` is 1; RFC 3339 UTC like
-- every other time column. A true end between the two counts as right.

ALTER TABLE calls ADD COLUMN gap_started_at TEXT;
ALTER TABLE calls ADD COLUMN gap_ended_at TEXT;
