-- Webhooks: the endpoints that asked to hear of events, the events themselves, and one
-- delivery per endpoint and event.
--
-- webhook_events is an outbox: a row is written in the transaction of the change that
-- causes it (a confirmation, a sent lesson, a reply), so an event exists exactly when its
-- change was committed. Its payload is the exact body posted, every attempt the same bytes,
-- with the same event_id (128 random bits as hex) for receivers to fold retries.
--
-- webhook_deliveries: one row per (endpoint, event). A pending row is claimable once
-- next_attempt_at has passed; a claim moves next_attempt_at by the lease, so a worker that
-- dies mid-request leaves rows that come back on their own. A 2xx answer makes it
-- delivered; anything else is retried with backoff until 24 hours after the event, then
-- failed, with the last answer's code and error kept for the admin page.

CREATE TABLE webhooks (
    id          INTEGER PRIMARY KEY,
    url         TEXT    NOT NULL CHECK (url LIKE 'http://%' OR url LIKE 'https://%'),
    -- The HMAC-SHA256 key of Drip-Signature, sealed with the data key like TOTP keys;
    -- shown once, when the endpoint is added.
    secret      BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  TEXT    NOT NULL DEFAULT ''
);

-- The events an endpoint wants; no row, no delivery.
CREATE TABLE webhook_event_types (
    webhook_id  INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_type  TEXT    NOT NULL CHECK (event_type IN ('subscriber.confirmed', 'enrollment.started', 'lesson.sent', 'reply.received', 'enrollment.completed', 'subscriber.unsubscribed', 'delivery.bounced', 'broadcast.sent')),
    PRIMARY KEY (webhook_id, event_type)
);
CREATE INDEX webhook_event_types_type ON webhook_event_types (event_type);

CREATE TABLE webhook_events (
    id            INTEGER PRIMARY KEY,
    event_id      TEXT    NOT NULL UNIQUE,
    type          TEXT    NOT NULL CHECK (type IN ('subscriber.confirmed', 'enrollment.started', 'lesson.sent', 'reply.received', 'enrollment.completed', 'subscriber.unsubscribed', 'delivery.bounced', 'broadcast.sent')),
    -- Whom the event is about, so that erasing them also removes their address here.
    subscriber_id INTEGER REFERENCES subscribers(id) ON DELETE SET NULL,
    payload       TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX webhook_events_subscriber ON webhook_events (subscriber_id);
CREATE INDEX webhook_events_created ON webhook_events (created_at);

CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY,
    webhook_id       INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_id         INTEGER NOT NULL REFERENCES webhook_events(id) ON DELETE CASCADE,
    status           TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    lease_owner      TEXT,
    last_status_code INTEGER,          -- the HTTP status of the last answer; NULL: none came
    last_error       TEXT,
    last_attempt_at  INTEGER,
    created_at       INTEGER NOT NULL,
    delivered_at     INTEGER,
    failed_at        INTEGER,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_claimable ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
CREATE INDEX webhook_deliveries_recent ON webhook_deliveries (webhook_id, id);
