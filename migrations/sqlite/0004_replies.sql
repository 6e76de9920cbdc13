-- Inbound mail: answers to prompts, auto-replies and bounces. text and raw are bytes so
-- they can be stored encrypted. message_id is unique: the same mail ingested twice is
-- stored once.

CREATE TABLE replies (
    id            INTEGER PRIMARY KEY,
    message_id    TEXT    UNIQUE,
    subscriber_id INTEGER REFERENCES subscribers(id) ON DELETE CASCADE,
    delivery_id   INTEGER REFERENCES deliveries(id) ON DELETE SET NULL,
    lesson_id     INTEGER REFERENCES lessons(id),
    kind          TEXT    NOT NULL CHECK (kind IN ('reply', 'auto_reply', 'bounce')),
    matched_by    TEXT    CHECK (matched_by IN ('token', 'in_reply_to', 'sender')),
    command       TEXT    CHECK (command IN ('pause', 'resume', 'stop')),
    from_addr     TEXT    NOT NULL DEFAULT '',
    subject       TEXT    NOT NULL DEFAULT '',
    text          BLOB    NOT NULL,
    raw           BLOB,
    flagged       INTEGER NOT NULL DEFAULT 0 CHECK (flagged IN (0, 1)),
    flag_reason   TEXT    NOT NULL DEFAULT '',
    read_at       INTEGER,
    received_at   INTEGER NOT NULL
);
CREATE INDEX replies_received ON replies (received_at);
CREATE INDEX replies_subscriber ON replies (subscriber_id, received_at);
CREATE INDEX replies_lesson ON replies (lesson_id, kind);
