-- Who answered which lesson, without what they wrote. A reply deleted by the retention sweep
-- ([privacy] reply_retention_days) or by erasure leaves its mark here first, so the answer
-- rate per lesson does not change when the words are gone.

CREATE TABLE answered_lessons (
    subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    lesson_id     INTEGER NOT NULL REFERENCES lessons(id),
    PRIMARY KEY (subscriber_id, lesson_id)
);
