-- missedcalld schema, migration 5: the daily SLA view by the calendar's LOCAL day, with the
-- same figures and rules as `missedcalld report --by day --json` (docs/schema.md).
-- SQLite has no timezone database, so the writer keeps the calendar's UTC offsets in
-- `calendar_offsets` (rewritten at every start) and `short_abandon_seconds` in `meta`.

CREATE TABLE calendar_offsets (
    from_utc       TEXT PRIMARY KEY NOT NULL,  -- same format as every time column
    offset_seconds INTEGER NOT NULL            -- local time minus UTC from then on
) WITHOUT ROWID;

DROP VIEW v_daily_sla;

CREATE VIEW v_daily_sla AS
WITH
params AS (
    SELECT coalesce((SELECT CAST(value AS REAL) FROM meta WHERE key = 'short_abandon_seconds'), 0)
               AS short,
           strftime('%Y-%m-%dT%H:%M:%fZ', 'now') AS now
),
inbound AS (
    SELECT c.answered, c.wait_seconds,
           m.id IS NOT NULL AND c.wait_seconds >= p.short AS missed,
           m.id IS NOT NULL AND c.wait_seconds < p.short AS short_abandon,
           date(c.ended_at, coalesce((SELECT o.offset_seconds FROM calendar_offsets o
                                        WHERE o.from_utc <= c.ended_at
                                        ORDER BY o.from_utc DESC LIMIT 1), 0) || ' seconds') AS day
      FROM calls c LEFT JOIN missed_calls m ON m.call_id = c.id, params p
     WHERE c.direction = 'inbound'
),
-- Tasks count unless every one of their misses was a short abandon.
tasks AS (
    SELECT t.status,
           t.status = 'open' AND t.deadline < p.now AS never,
           t.status = 'open' AND t.deadline >= p.now AS still_open,
           (julianday(t.closed_at) - julianday(t.first_missed_at)) * 86400.0 AS delay,
           date(t.first_missed_at, coalesce((SELECT o.offset_seconds FROM calendar_offsets o
                                               WHERE o.from_utc <= t.first_missed_at
                                               ORDER BY o.from_utc DESC LIMIT 1), 0) || ' seconds')
               AS day
      FROM callback_tasks t, params p
     WHERE EXISTS (SELECT 1 FROM missed_calls m JOIN calls c ON c.id = m.call_id
                    WHERE m.task_id = t.id AND c.wait_seconds >= p.short)
),
call_counts AS (
    SELECT day,
           count(*) AS inbound,
           sum(answered) AS answered,
           sum(missed) AS missed,
           sum(short_abandon) AS short_abandons,
           avg(CASE WHEN missed THEN wait_seconds END) AS avg_wait,
           max(CASE WHEN missed THEN wait_seconds END) AS max_wait
      FROM inbound
     GROUP BY day
),
task_counts AS (
    SELECT day,
           count(*) AS tasks,
           sum(status = 'done_on_time') AS callback_on_time,
           sum(status = 'done_late') AS callback_late,
           sum(never) AS callback_never,
           sum(still_open) AS callback_open
      FROM tasks
     GROUP BY day
),
-- Nearest-rank percentiles of the callback delay: the value at rank ceil(p * n / 100).
ranked AS (
    SELECT day, delay,
           row_number() OVER (PARTITION BY day ORDER BY delay) AS rn,
           count(*) OVER (PARTITION BY day) AS n
      FROM tasks
     WHERE status IN ('done_on_time', 'done_late')
),
percentiles AS (
    SELECT day,
           max(CASE WHEN rn = max(1, (50 * n + 99) / 100) THEN delay END) AS p50,
           max(CASE WHEN rn = max(1, (90 * n + 99) / 100) THEN delay END) AS p90
      FROM ranked
     GROUP BY day
),
days AS (
    SELECT day FROM call_counts UNION SELECT day FROM task_counts
)
SELECT
    d.day,
    coalesce(cc.inbound, 0) AS inbound,
    coalesce(cc.answered, 0) AS answered,
    coalesce(cc.missed, 0) AS missed,
    coalesce(cc.short_abandons, 0) AS short_abandons,
    round(cc.missed * 1.0 / nullif(cc.inbound - cc.short_abandons, 0), 4) AS missed_rate,
    coalesce(tc.tasks, 0) AS tasks,
    coalesce(tc.callback_on_time, 0) AS callback_on_time,
    coalesce(tc.callback_late, 0) AS callback_late,
    coalesce(tc.callback_never, 0) AS callback_never,
    coalesce(tc.callback_open, 0) AS callback_open,
    round(pc.p50, 3) AS callback_delay_p50_seconds,
    round(pc.p90, 3) AS callback_delay_p90_seconds,
    round(coalesce(cc.avg_wait, 0), 3) AS avg_wait_missed_seconds,
    round(coalesce(cc.max_wait, 0), 3) AS max_wait_missed_seconds
FROM days d
LEFT JOIN call_counts cc ON cc.day = d.day
LEFT JOIN task_counts tc ON tc.day = d.day
LEFT JOIN percentiles pc ON pc.day = d.day
ORDER BY d.day;
