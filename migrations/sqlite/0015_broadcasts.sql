-- Broadcasts: one mail to a course's readers, sent through the outbox like a lesson (one
-- delivery per person, UNIQUE (broadcast_id, subscriber_id)). Deliveries gain two kinds,
-- 'broadcast' and 'answer' (an author's answer to a reply, threaded), and the broadcast
-- a mail belongs to.
--
-- SQLite changes a CHECK only by rebuilding the table, and replies and bounces refer to
-- deliveries (ON DELETE SET NULL): with foreign keys on, dropping the old table would empty
-- their delivery_id, and renaming it would point them at the old name. SQLite's own
-- procedure for such a change needs foreign keys off, which cannot change inside a
-- transaction, and sqlx 0.8 runs every migration in one. So this file ends the
-- migrator's transaction, runs the rebuild in a transaction of its own with foreign keys
-- off (new table, rows copied with their ids, old table dropped, new one renamed into its
-- place), turns foreign keys back on and opens a transaction again, in which the migrator
-- records this migration and commits. Every reference stays true.

COMMIT;
PRAGMA foreign_keys = OFF;
BEGIN;

CREATE TABLE broadcasts (
    id           INTEGER PRIMARY KEY,
    course_id    INTEGER NOT NULL REFERENCES courses(id),
    subject      TEXT    NOT NULL,
    body         TEXT    NOT NULL,   -- Markdown, with the lesson body's variables
    audience     TEXT    NOT NULL CHECK (audience IN ('active', 'everyone', 'completed')),
    send_at      INTEGER,            -- a moment (UTC); NULL when local_time is set
    local_time   TEXT,               -- 'HH:MM' in each reader's own time zone
    local_date   TEXT,               -- 'YYYY-MM-DD' with local_time; NULL: the next one
    created_by   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    queued_at    INTEGER,            -- when its deliveries were made
    cancelled_at INTEGER,
    CHECK ((send_at IS NULL) <> (local_time IS NULL))
);
-- The scheduler's question: which broadcasts are still to be queued.
CREATE INDEX broadcasts_waiting ON broadcasts (id) WHERE queued_at IS NULL AND cancelled_at IS NULL;

CREATE TABLE deliveries_rebuilt (
    id            INTEGER PRIMARY KEY,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    enrollment_id INTEGER REFERENCES enrollments(id) ON DELETE CASCADE,
    lesson_id     INTEGER REFERENCES lessons(id),
    kind          TEXT    NOT NULL CHECK (kind IN ('lesson', 'confirm', 'welcome', 'goodbye', 'notice', 'broadcast', 'answer')),
    status        TEXT    NOT NULL CHECK (status IN ('queued', 'sent', 'failed', 'bounced')),
    due_at        INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    lease_owner   TEXT,
    revision      INTEGER,
    payload       TEXT    NOT NULL DEFAULT '{}',
    last_error    TEXT,
    created_at    INTEGER NOT NULL,
    sent_at       INTEGER,
    failed_at     INTEGER,
    course_id     INTEGER REFERENCES courses(id),
    broadcast_id  INTEGER REFERENCES broadcasts(id),
    UNIQUE (enrollment_id, lesson_id)
);
INSERT INTO deliveries_rebuilt
    (id, subscriber_id, enrollment_id, lesson_id, kind, status, due_at, attempts, lease_owner,
     revision, payload, last_error, created_at, sent_at, failed_at, course_id)
SELECT id, subscriber_id, enrollment_id, lesson_id, kind, status, due_at, attempts, lease_owner,
       revision, payload, last_error, created_at, sent_at, failed_at, course_id
FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_rebuilt RENAME TO deliveries;
CREATE INDEX deliveries_claimable ON deliveries (due_at) WHERE status = 'queued';
CREATE INDEX deliveries_subscriber ON deliveries (subscriber_id, id);
CREATE INDEX deliveries_lesson_status ON deliveries (lesson_id, status);
CREATE UNIQUE INDEX deliveries_broadcast ON deliveries (broadcast_id, subscriber_id) WHERE broadcast_id IS NOT NULL;

COMMIT;
PRAGMA foreign_keys = ON;
BEGIN;
