-- Author answers: an admin's answer to a reader's reply, sent to them threaded under it
-- (In-Reply-To / References the reply's Message-ID) as a delivery of kind 'answer'. The
-- text is sealed with the data key, as a reply's is. A reply that answers an answer names
-- it (in_answer_to), so a conversation is the chain reply, answer, reply, ...
--
-- An answer goes with the reply it answers (retention, erasure) and with its reader.

CREATE TABLE answers (
    id            INTEGER PRIMARY KEY,
    reply_id      INTEGER NOT NULL REFERENCES replies(id) ON DELETE CASCADE,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    delivery_id   INTEGER UNIQUE REFERENCES deliveries(id) ON DELETE SET NULL,
    author        TEXT    NOT NULL,
    text          BLOB    NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX answers_reply ON answers (reply_id);
CREATE INDEX answers_subscriber ON answers (subscriber_id, created_at);

ALTER TABLE replies ADD COLUMN in_answer_to INTEGER REFERENCES answers(id) ON DELETE SET NULL;
