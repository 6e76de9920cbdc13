-- Many courses in one instance. What a person does in one course (pause, resume, stop,
-- pacing) belongs to the enrollment; the subscriber keeps what is about the person
-- (address, name, time zone, unsubscribed from everything, bounced, erased).
--
-- A paused subscriber was a person whose enrollments were all paused: the enrollments
-- already say so, so the person becomes active and every enrollment keeps its status,
-- position and next due time. The CHECK on subscribers.status still lists 'paused', as on
-- SQLite (which cannot change a CHECK without rebuilding the table): the two backends keep
-- one schema. No row has it after this migration and drip never writes it.

UPDATE subscribers SET status = 'active' WHERE status = 'paused';

-- course.toml's `evergreen = true`, and the address part of `from = "Name <address>"`
-- (empty: [mail] from's address).
ALTER TABLE courses ADD COLUMN evergreen BIGINT NOT NULL DEFAULT 0 CHECK (evergreen IN (0, 1));
ALTER TABLE courses ADD COLUMN from_address TEXT NOT NULL DEFAULT '';
-- Set when the course's folder is no longer in lessons/: the course and its lessons stay
-- (deliveries and replies refer to them), unpublished.
ALTER TABLE courses ADD COLUMN removed_at BIGINT;

-- A subscriber's own pacing for one course, overriding the course's window: the days of
-- the week (bit 0 Monday … bit 6 Sunday) and the local hour. NULL: the course's window.
ALTER TABLE enrollments ADD COLUMN pace_days BIGINT CHECK (pace_days BETWEEN 1 AND 127);
ALTER TABLE enrollments ADD COLUMN pace_hour BIGINT CHECK (pace_hour BETWEEN 0 AND 23);

-- The course a mail belongs to, for every kind (a confirmation is for one course, a goodbye
-- says which course was left): its sender, its language, its List-Id.
ALTER TABLE deliveries ADD COLUMN course_id BIGINT REFERENCES courses(id);
UPDATE deliveries SET course_id = (SELECT l.course_id FROM lessons l WHERE l.id = deliveries.lesson_id)
    WHERE lesson_id IS NOT NULL;
UPDATE deliveries SET course_id = COALESCE(
        (SELECT MIN(e.course_id) FROM enrollments e WHERE e.subscriber_id = deliveries.subscriber_id),
        (SELECT MIN(c.id) FROM courses c))
    WHERE course_id IS NULL;

-- NEXT joins PAUSE, RESUME and STOP as a reply command.
ALTER TABLE replies DROP CONSTRAINT replies_command_check;
ALTER TABLE replies ADD CONSTRAINT replies_command_check CHECK (command IN ('pause', 'resume', 'stop', 'next'));
