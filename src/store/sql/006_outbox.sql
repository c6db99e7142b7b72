-- missedcalld schema, migration 6: the notification outbox (SPEC section 7, docs/schema.md).
-- A notification is written in the same transaction as the missed call or task change that
-- causes it, with one outbox row per sink and recipient; the delivery worker works the outbox.

CREATE TABLE notifications (
    -- Stable id receivers dedupe on (webhook Idempotency-Key, MC_ID): 32 random hex digits.
    id         TEXT PRIMARY KEY NOT NULL,
    event      TEXT NOT NULL CHECK (event IN ('missed_call', 'task_overdue', 'daily_digest')),
    created_at TEXT NOT NULL,
    call_id    INTEGER REFERENCES calls (id),
    task_id    INTEGER REFERENCES callback_tasks (id),
    -- missed_call: the task's missed_count right after this miss (the payload shows the task
    -- as it was then, even when the payload is rendered later, e.g. after a backfill).
    task_missed_count INTEGER,
    -- daily_digest: the local day it sums up (YYYY-MM-DD).
    digest_day TEXT,
    -- The JSON payload, rendered once when first picked up, then never changed.
    payload    TEXT
);
CREATE INDEX notifications_by_task ON notifications (task_id, event);
-- task_overdue: once per task; daily_digest: once per day.
CREATE UNIQUE INDEX notifications_overdue_once ON notifications (task_id)
    WHERE event = 'task_overdue';
CREATE UNIQUE INDEX notifications_digest_once ON notifications (digest_day)
    WHERE event = 'daily_digest';

CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    notification_id  TEXT NOT NULL REFERENCES notifications (id),
    -- Sink key: kind and a hash of its target ('webhook:1f2e3d4c'), so a reordered config
    -- keeps its rows.
    sink             TEXT NOT NULL,
    -- For people: the URL without query or user info, 'telegram', or the command.
    target           TEXT NOT NULL,
    -- Telegram chat id; '' for webhook and exec.
    recipient        TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    first_attempt_at TEXT,
    next_attempt_at  TEXT NOT NULL,
    last_error       TEXT,
    done_at          TEXT,
    UNIQUE (notification_id, sink, recipient)
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending';
