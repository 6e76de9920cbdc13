-- Many courses in one instance. What a person does in one course (pause, resume, stop,
-- pacing) belongs to the enrollment; the subscriber keeps what is about the person
-- (address, name, time zone, unsubscribed from everything, bounced, erased).
--
-- A paused subscriber was a person whose enrollments were all paused: the enrollments
-- already say so, so the person becomes active and every enrollment keeps its status,
-- position and next due time. The CHECK on subscribers.status still lists 'paused' (SQLite
-- cannot change a CHECK without rebuilding the table, and the tables referring to it would
-- cascade); no row has it after this migration and drip never writes it.

UPDATE subscribers SET status = 'active' WHERE status = 'paused';

-- course.toml's `evergreen = true`, and the address part of `from = "Name <address>"`
-- (empty: [mail] from's address).
ALTER TABLE courses ADD COLUMN evergreen INTEGER NOT NULL DEFAULT 0 CHECK (evergreen IN (0, 1));
ALTER TABLE courses ADD COLUMN from_address TEXT NOT NULL DEFAULT '';
-- Set when the course's folder is no longer in lessons/: the course and its lessons stay
-- (deliveries and replies refer to them), unpublished.
ALTER TABLE courses ADD COLUMN removed_at INTEGER;

-- A subscriber's own pacing for one course, overriding the course's window: the days of
-- the week (bit 0 Monday … bit 6 Sunday) and the local hour. NULL: the course's window.
ALTER TABLE enrollments ADD COLUMN pace_days INTEGER CHECK (pace_days BETWEEN 1 AND 127);
ALTER TABLE enrollments ADD COLUMN pace_hour INTEGER CHECK (pace_hour BETWEEN 0 AND 23);

-- The course a mail belongs to, for every kind (a confirmation is for one course, a goodbye
-- says which course was left): its sender, its language, its List-Id.
ALTER TABLE deliveries ADD COLUMN course_id INTEGER REFERENCES courses(id);
UPDATE deliveries SET course_id = (SELECT l.course_id FROM lessons l WHERE l.id = deliveries.lesson_id)
    WHERE lesson_id IS NOT NULL;
UPDATE deliveries SET course_id = COALESCE(
        (SELECT MIN(e.course_id) FROM enrollments e WHERE e.subscriber_id = deliveries.subscriber_id),
        (SELECT MIN(c.id) FROM courses c))
    WHERE course_id IS NULL;

-- NEXT joins PAUSE, RESUME and STOP as a reply command. SQLite changes a CHECK by
-- rebuilding the table; nothing refers to replies, so dropping the old one cascades nowhere.
CREATE TABLE replies_new (
    id            INTEGER PRIMARY KEY,
    message_id    TEXT    UNIQUE,
    subscriber_id INTEGER REFERENCES subscribers(id) ON DELETE CASCADE,
    delivery_id   INTEGER REFERENCES deliveries(id) ON DELETE SET NULL,
    lesson_id     INTEGER REFERENCES lessons(id),
    kind          TEXT    NOT NULL CHECK (kind IN ('reply', 'auto_reply', 'bounce')),
    matched_by    TEXT    CHECK (matched_by IN ('token', 'in_reply_to', 'sender')),
    command       TEXT    CHECK (command IN ('pause', 'resume', 'stop', 'next')),
    from_addr     TEXT    NOT NULL DEFAULT '',
    subject       TEXT    NOT NULL DEFAULT '',
    text          BLOB    NOT NULL,
    raw           BLOB,
    flagged       INTEGER NOT NULL DEFAULT 0 CHECK (flagged IN (0, 1)),
    flag_reason   TEXT    NOT NULL DEFAULT '',
    read_at       INTEGER,
    received_at   INTEGER NOT NULL
);
INSERT INTO replies_new (id, message_id, subscriber_id, delivery_id, lesson_id, kind, matched_by, command, from_addr, subject, text, raw, flagged, flag_reason, read_at, received_at)
    SELECT id, message_id, subscriber_id, delivery_id, lesson_id, kind, matched_by, command, from_addr, subject, text, raw, flagged, flag_reason, read_at, received_at FROM replies;
DROP TABLE replies;
ALTER TABLE replies_new RENAME TO replies;
CREATE INDEX replies_received ON replies (received_at);
CREATE INDEX replies_subscriber ON replies (subscriber_id, received_at);
CREATE INDEX replies_lesson ON replies (lesson_id, kind);
CREATE INDEX replies_raw_kept ON replies (received_at) WHERE raw IS NOT NULL;
