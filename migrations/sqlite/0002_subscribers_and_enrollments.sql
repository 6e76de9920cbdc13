-- People and their place in a course. The scheduler reads only enrollments that are due,
-- through the partial index below, so its work grows with the number due.

CREATE TABLE subscribers (
    id              INTEGER PRIMARY KEY,
    email           TEXT    NOT NULL UNIQUE,   -- lowercased; NULL-free even after erasure
    name            TEXT    NOT NULL DEFAULT '',
    timezone        TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'active', 'paused', 'unsubscribed', 'bounced', 'erased')),
    created_at      INTEGER NOT NULL,
    confirmed_at    INTEGER,
    confirm_sent_at INTEGER,
    status_at       INTEGER NOT NULL
);
CREATE INDEX subscribers_status ON subscribers (status, id);
CREATE INDEX subscribers_name ON subscribers (name);

CREATE TABLE enrollments (
    id           INTEGER PRIMARY KEY,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    course_id    INTEGER NOT NULL REFERENCES courses(id),
    status       TEXT    NOT NULL CHECK (status IN ('active', 'paused', 'completed', 'stopped')),
    position     INTEGER NOT NULL DEFAULT 0,   -- position of the last lesson queued; 0: none yet
    next_due_at  INTEGER,                       -- NULL: nothing to plan until a send or a reply
    waiting_reply INTEGER NOT NULL DEFAULT 0 CHECK (waiting_reply IN (0, 1)),
    last_sent_at INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (subscriber_id, course_id)
);
CREATE INDEX enrollments_due ON enrollments (next_due_at) WHERE status = 'active' AND next_due_at IS NOT NULL;
CREATE INDEX enrollments_course_position ON enrollments (course_id, position);
