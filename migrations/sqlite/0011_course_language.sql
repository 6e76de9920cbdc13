-- The language of a course's readers (course.toml's `language`, a BCP 47 tag): drip's own
-- words in its pages and mails for that course are taken from templates/i18n/<tag>.toml.
-- Courses synced before this knew only English.

ALTER TABLE courses ADD COLUMN language TEXT NOT NULL DEFAULT 'en';
