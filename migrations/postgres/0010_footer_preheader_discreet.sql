-- A course's own line for the foot of every lesson mail (course.toml's `footer`, e.g. where
-- to find help), a lesson's preheader (the line mail apps show after the subject), and a
-- subscriber's choice of discreet mails (neutral sender name, subject and preheader, for a
-- phone other people can see).

ALTER TABLE courses ADD COLUMN footer TEXT NOT NULL DEFAULT '';
ALTER TABLE lesson_revisions ADD COLUMN preheader TEXT;
ALTER TABLE subscribers ADD COLUMN discreet BIGINT NOT NULL DEFAULT 0 CHECK (discreet IN (0, 1));
