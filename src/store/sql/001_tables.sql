-- missedcalld schema, migration 1: tables. Documented column by column in docs/schema.md.
-- Times are TEXT, RFC 3339 in UTC with milliseconds ('2026-11-22T19:13:24.077Z'): fixed width,
-- so they sort and compare as strings, and SQLite's date functions read them.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE calls (
    id                INTEGER PRIMARY KEY,
    linkedid          TEXT NOT NULL UNIQUE,
    direction         TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    number            TEXT NOT NULL,
    number_normalized TEXT,
    name              TEXT,
    did               TEXT,
    queue             TEXT,
    started_at        TEXT NOT NULL,
    ended_at          TEXT NOT NULL,
    wait_seconds      REAL NOT NULL,
    answered          INTEGER NOT NULL CHECK (answered IN (0, 1)),
    agent             TEXT,
    talk_seconds      REAL NOT NULL,
    gap               INTEGER NOT NULL CHECK (gap IN (0, 1))
);
CREATE INDEX calls_by_number ON calls (number_normalized, started_at);
CREATE INDEX calls_by_end ON calls (ended_at);

CREATE TABLE callback_tasks (
    id                  INTEGER PRIMARY KEY,
    number              TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('open', 'done_on_time', 'done_late')),
    missed_count        INTEGER NOT NULL CHECK (missed_count >= 1),
    first_missed_at     TEXT NOT NULL,
    last_missed_at      TEXT NOT NULL,
    deadline            TEXT NOT NULL,
    assignee            TEXT,
    attempts            INTEGER NOT NULL DEFAULT 0,
    closed_at           TEXT,
    closed_by_direction TEXT CHECK (closed_by_direction IN ('inbound', 'outbound')),
    closed_by_agent     TEXT,
    closed_by_linkedid  TEXT,
    CHECK ((status = 'open') = (closed_at IS NULL))
);
-- One open task per number: a repeated miss joins it, never a second task.
CREATE UNIQUE INDEX callback_tasks_one_open ON callback_tasks (number) WHERE status = 'open';
CREATE INDEX callback_tasks_by_first_missed ON callback_tasks (first_missed_at);

CREATE TABLE missed_calls (
    id                INTEGER PRIMARY KEY,
    call_id           INTEGER NOT NULL UNIQUE REFERENCES calls (id),
    loss_reason       TEXT NOT NULL CHECK (loss_reason IN
                          ('ivr', 'queue', 'ringing', 'timeout', 'no_agents', 'busy', 'after_hours')),
    voicemail         INTEGER NOT NULL CHECK (voicemail IN (0, 1)),
    withheld          INTEGER NOT NULL CHECK (withheld IN (0, 1)),
    first_time_caller INTEGER NOT NULL CHECK (first_time_caller IN (0, 1)),
    task_id           INTEGER REFERENCES callback_tasks (id)
);
CREATE INDEX missed_calls_by_task ON missed_calls (task_id);

CREATE TABLE agent_attempts (
    id           INTEGER PRIMARY KEY,
    call_id      INTEGER NOT NULL REFERENCES calls (id),
    seq          INTEGER NOT NULL,
    agent        TEXT NOT NULL,
    ring_start   TEXT NOT NULL,
    ring_seconds REAL NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN
                     ('no_answer', 'busy', 'answered', 'caller_hung_up', 'other')),
    UNIQUE (call_id, seq)
);
CREATE INDEX agent_attempts_by_agent ON agent_attempts (agent);

CREATE TABLE task_events (
    id       INTEGER PRIMARY KEY,
    task_id  INTEGER NOT NULL REFERENCES callback_tasks (id),
    kind     TEXT NOT NULL CHECK (kind IN ('missed_joined', 'attempt', 'closed')),
    at       TEXT NOT NULL,
    linkedid TEXT NOT NULL
);
CREATE INDEX task_events_by_task ON task_events (task_id, at);
