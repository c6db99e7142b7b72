-- missedcalld schema, migration 3: the queue member's display name on agent attempts, and
-- forwards: external numbers dialled for a call (follow-me, call forward to a mobile), which
-- are not agents. Documented in docs/schema.md.

ALTER TABLE agent_attempts ADD COLUMN name TEXT;

CREATE TABLE forwards (
    id           INTEGER PRIMARY KEY,
    call_id      INTEGER NOT NULL REFERENCES calls (id),
    seq          INTEGER NOT NULL,
    number       TEXT NOT NULL,
    ring_start   TEXT NOT NULL,
    ring_seconds REAL NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN
                     ('answered', 'no_answer', 'busy', 'congestion', 'unavailable',
                      'caller_hung_up', 'other')),
    UNIQUE (call_id, seq)
);
CREATE INDEX forwards_by_number ON forwards (number);
