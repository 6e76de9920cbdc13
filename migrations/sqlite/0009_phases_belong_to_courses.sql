-- Phases belong to each course: course.toml declares them as an ordered [[phases]] array,
-- and a lesson revision stores the name its course gave. Databases made before this had a
-- CHECK on lesson_revisions.phase naming one course's phases; SQLite cannot drop a CHECK,
-- so the table is rebuilt with the same rows. Nothing references lesson_revisions, so the
-- rebuild runs inside the migration's transaction with no foreign-key side effect.

CREATE TABLE lesson_revisions_rebuilt (
    id             INTEGER PRIMARY KEY,
    lesson_id      INTEGER NOT NULL REFERENCES lessons(id),
    revision       INTEGER NOT NULL,
    title          TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    phase          TEXT    NOT NULL,  -- one of the course's [[phases]] names
    after_days     INTEGER NOT NULL,
    send_window    TEXT,              -- NULL: the course's window
    prompt         TEXT    NOT NULL,
    wait_for_reply INTEGER NOT NULL DEFAULT 0 CHECK (wait_for_reply IN (0, 1)),
    max_wait_days  INTEGER,
    body           TEXT    NOT NULL,
    source         TEXT    NOT NULL,  -- the whole lesson file, byte for byte
    author         TEXT    NOT NULL,  -- 'file' or the admin's user name
    note           TEXT    NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    UNIQUE (lesson_id, revision)
);
INSERT INTO lesson_revisions_rebuilt
    (id, lesson_id, revision, title, subject, phase, after_days, send_window, prompt,
     wait_for_reply, max_wait_days, body, source, author, note, created_at)
SELECT id, lesson_id, revision, title, subject, phase, after_days, send_window, prompt,
       wait_for_reply, max_wait_days, body, source, author, note, created_at
FROM lesson_revisions;
DROP TABLE lesson_revisions;
ALTER TABLE lesson_revisions_rebuilt RENAME TO lesson_revisions;

-- courses.phases was a JSON object (phase name -> description) whose order was compiled
-- into drip. It becomes the ordered array the course declares. The order is recovered from
-- the lessons themselves (each phase where its first lesson stands); the title is the name
-- until the next sync of course.toml, which drip runs at start-up, writes the real one.
UPDATE courses SET phases = COALESCE((
    SELECT json_group_array(json_object(
               'name', p.name,
               'title', p.name,
               'description', COALESCE(json_extract(courses.phases, '$."' || p.name || '"'), '')))
    FROM (
        SELECT r.phase AS name, MIN(l.position) AS first
        FROM lessons l
        JOIN lesson_revisions r ON r.lesson_id = l.id AND r.revision = l.current_revision
        WHERE l.course_id = courses.id
        GROUP BY r.phase
        ORDER BY first
    ) p
), '[]')
WHERE json_type(phases) = 'object';
