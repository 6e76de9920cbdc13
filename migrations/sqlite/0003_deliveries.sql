-- The outbox: one row per mail. A queued row is claimable once due_at has passed; a claim
-- moves due_at forward by the lease, so a worker that dies leaves rows that come back on
-- their own. UNIQUE (enrollment_id, lesson_id) makes a second enqueue of a lesson fail.

CREATE TABLE deliveries (
    id            INTEGER PRIMARY KEY,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    enrollment_id INTEGER REFERENCES enrollments(id) ON DELETE CASCADE,
    lesson_id     INTEGER REFERENCES lessons(id),
    kind          TEXT    NOT NULL CHECK (kind IN ('lesson', 'confirm', 'welcome', 'goodbye', 'notice')),
    status        TEXT    NOT NULL CHECK (status IN ('queued', 'sent', 'failed', 'bounced')),
    due_at        INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    lease_owner   TEXT,
    revision      INTEGER,             -- the lesson revision that was sent
    payload       TEXT    NOT NULL DEFAULT '{}',  -- JSON for non-lesson mails (e.g. which command)
    last_error    TEXT,
    created_at    INTEGER NOT NULL,
    sent_at       INTEGER,
    failed_at     INTEGER,
    UNIQUE (enrollment_id, lesson_id)
);
CREATE INDEX deliveries_claimable ON deliveries (due_at) WHERE status = 'queued';
CREATE INDEX deliveries_subscriber ON deliveries (subscriber_id, id);
CREATE INDEX deliveries_lesson_status ON deliveries (lesson_id, status);

-- Hard and soft bounces, counted over a window to decide when an address is dead.
CREATE TABLE bounces (
    id            INTEGER PRIMARY KEY,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    delivery_id   INTEGER REFERENCES deliveries(id) ON DELETE SET NULL,
    hard          INTEGER NOT NULL CHECK (hard IN (0, 1)),
    status_code   TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL
);
CREATE INDEX bounces_subscriber ON bounces (subscriber_id, created_at);
