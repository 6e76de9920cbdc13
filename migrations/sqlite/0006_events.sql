-- The event log: who did what to whom, and when. A subscriber's timeline and the audit
-- trail of admin views of replies are read from here.

CREATE TABLE events (
    id            INTEGER PRIMARY KEY,
    subscriber_id INTEGER REFERENCES subscribers(id) ON DELETE SET NULL,
    actor         TEXT    NOT NULL,   -- 'system', 'subscriber', 'file' or an admin's name
    kind          TEXT    NOT NULL,
    detail        TEXT    NOT NULL DEFAULT '{}',
    created_at    INTEGER NOT NULL
);
CREATE INDEX events_subscriber ON events (subscriber_id, id);
CREATE INDEX events_kind ON events (kind, created_at);
