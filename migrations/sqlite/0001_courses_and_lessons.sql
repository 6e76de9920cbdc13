-- Courses and their lessons. A lesson's content lives in lesson_revisions: every change,
-- from a file sync or the admin UI, adds a revision and never rewrites an old one.
-- Times are Unix seconds (UTC) on both backends, so queries are the same text.

CREATE TABLE courses (
    id            INTEGER PRIMARY KEY,
    slug          TEXT    NOT NULL UNIQUE,
    title         TEXT    NOT NULL,
    description   TEXT    NOT NULL,
    from_name     TEXT    NOT NULL,
    send_window   TEXT    NOT NULL,
    phases        TEXT    NOT NULL DEFAULT '[]',  -- JSON array of the course's phases, in order
    source        TEXT    NOT NULL,                -- course.toml as last synced
    updated_at    INTEGER NOT NULL
);

CREATE TABLE lessons (
    id               INTEGER PRIMARY KEY,
    course_id        INTEGER NOT NULL REFERENCES courses(id),
    slug             TEXT    NOT NULL,
    position         INTEGER NOT NULL,
    status           TEXT    NOT NULL DEFAULT 'published' CHECK (status IN ('published', 'draft')),
    current_revision INTEGER NOT NULL,
    -- The revision that matched the file at the last sync or export, and that file's hash:
    -- a file change is only applied while nobody edited the lesson since.
    synced_revision  INTEGER,
    synced_hash      TEXT,
    file_name        TEXT    NOT NULL,
    UNIQUE (course_id, slug)
);

CREATE TABLE lesson_revisions (
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
