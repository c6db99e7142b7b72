-- missedcalld schema, migration 7: `v_missed_with_agents` shows the gap window of migration 4
-- (`gap_started_at`, `gap_ended_at`, both NULL unless `gap` is 1). The columns before them are
-- unchanged, in the same order.

DROP VIEW v_missed_with_agents;

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
       FROM (SELECT * FROM agent_attempts a WHERE a.call_id = c.id ORDER BY seq)) AS agents_json,
    c.gap_started_at,
    c.gap_ended_at
FROM missed_calls m
JOIN calls c ON c.id = m.call_id;
