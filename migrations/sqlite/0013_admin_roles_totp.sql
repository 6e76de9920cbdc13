-- Admin roles and a second factor.
--
-- role: what the admin may do (owner, editor, reader; see src/domain/admin.rs). Admins made
-- before roles existed could do everything, so they become owners.
-- totp_secret: the TOTP key (RFC 6238), sealed with the app's data key like reply texts;
-- NULL until enrolled. totp_pending: a key shown on the enrolment page, not yet confirmed
-- with a code. totp_last_step: the last 30-second step whose code was accepted, so that a
-- code works once.
-- session_generation: sessions remember the generation they began in; changing the
-- password or the second factor moves it on, which ends every earlier session.
ALTER TABLE admins ADD COLUMN role TEXT NOT NULL DEFAULT 'owner' CHECK (role IN ('owner', 'editor', 'reader'));
ALTER TABLE admins ADD COLUMN totp_secret BLOB;
ALTER TABLE admins ADD COLUMN totp_pending BLOB;
ALTER TABLE admins ADD COLUMN totp_last_step INTEGER;
ALTER TABLE admins ADD COLUMN session_generation INTEGER NOT NULL DEFAULT 0;

-- A session is 'code' between a right password and the second factor's code, 'full' after.
ALTER TABLE admin_sessions ADD COLUMN stage TEXT NOT NULL DEFAULT 'full' CHECK (stage IN ('full', 'code'));
ALTER TABLE admin_sessions ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;

-- Ten one-time codes per enrolment, for a lost authenticator; only their SHA-256 is kept.
CREATE TABLE admin_recovery_codes (
    id         INTEGER PRIMARY KEY,
    admin_id   INTEGER NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    code_hash  TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    UNIQUE (admin_id, code_hash)
);
