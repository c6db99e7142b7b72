-- missedcalld schema, migration 2: views for the common questions (docs/schema.md).
-- 'overdue' is not stored: a task is overdue while it is open and its deadline is in the past.

CREATE VIEW v_open_tasks AS
SELECT
    t.id,
    t.number,
    CASE WHEN t.deadline < strftime('%Y-%m-%dT%H:%M:%fZ', 'now') THEN 'overdue' ELSE 'open' END
        AS status,
    t.missed_count,
    t.first_missed_at,
    t.last_missed_at,
    t.deadline,
    t.assignee,
    t.attempts,
    (SELECT group_concat(linkedid, ',')
       FROM (SELECT c.linkedid FROM missed_calls m JOIN calls c ON c.id = m.call_id
              WHERE m.task_id = t.id ORDER BY c.ended_at)) AS missed_linkedids,
    (SELECT group_concat(did, ',')
       FROM (SELECT DISTINCT c.did FROM missed_calls m JOIN calls c ON c.id = m.call_id
              WHERE m.task_id = t.id AND c.did IS NOT NULL)) AS dids
FROM callback_tasks t
WHERE t.status = 'open';

CREATE VIEW v_missed_with_agents AS
SELECT
    c.id AS call_id,
    c.linkedid,
    c.number AS caller,
    c.number_normalized,
    c.name AS caller_name,
    c.did,
    c.queue,
    c.started_at,
    c.ended_at,
    c.wait_seconds,
    m.loss_reason,
    m.voicemail,
    m.withheld,
    m.first_time_caller,
    c.gap,
    m.task_id,
    (SELECT group_concat(agent, ',')
       FROM (SELECT agent FROM agent_attempts a WHERE a.call_id = c.id ORDER BY seq)) AS agents,
    (SELECT json_group_array(json_object('agent', agent, 'ring_start', ring_start,
                                         'ring_seconds', ring_seconds, 'outcome', outcome))
       FROM (SELECT * FROM agent_attempts a WHERE a.call_id = c.id ORDER BY seq)) AS agents_json
FROM missed_calls m
JOIN calls c ON c.id = m.call_id;

-- Per UTC day: inbound/answered/missed calls (by the day the call ended) and the callback
-- outcome of the tasks opened that day. `missedcalld report` gives the same in the calendar's
-- timezone.
CREATE VIEW v_daily_sla AS
WITH
days AS (
    SELECT substr(ended_at, 1, 10) AS day FROM calls
    UNION
    SELECT substr(first_missed_at, 1, 10) FROM callback_tasks
),
call_counts AS (
    SELECT substr(c.ended_at, 1, 10) AS day,
           sum(c.direction = 'inbound') AS inbound,
           sum(c.direction = 'inbound' AND c.answered = 1) AS answered,
           count(m.id) AS missed,
           avg(CASE WHEN m.id IS NOT NULL THEN c.wait_seconds END) AS avg_wait_missed_seconds
      FROM calls c LEFT JOIN missed_calls m ON m.call_id = c.id
     GROUP BY 1
),
task_counts AS (
    SELECT substr(first_missed_at, 1, 10) AS day,
           count(*) AS tasks,
           sum(status = 'done_on_time') AS callback_on_time,
           sum(status = 'done_late') AS callback_late,
           sum(status = 'open') AS callback_never
      FROM callback_tasks
     GROUP BY 1
)
SELECT
    d.day,
    coalesce(cc.inbound, 0) AS inbound,
    coalesce(cc.answered, 0) AS answered,
    coalesce(cc.missed, 0) AS missed,
    cc.avg_wait_missed_seconds,
    coalesce(tc.tasks, 0) AS tasks,
    coalesce(tc.callback_on_time, 0) AS callback_on_time,
    coalesce(tc.callback_late, 0) AS callback_late,
    coalesce(tc.callback_never, 0) AS callback_never
FROM days d
LEFT JOIN call_counts cc ON cc.day = d.day
LEFT JOIN task_counts tc ON tc.day = d.day
ORDER BY d.day;
