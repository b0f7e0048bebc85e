-- The relay's mailboxes: end-to-end encrypted messages waiting for their recipient
-- (keep in step with ../postgres/0003_messages.sql). The server cannot read `ciphertext`
-- or check `signature`; it keeps them until the recipient acknowledges the message or it
-- is older than `message_max_age_days`.
CREATE TABLE messages (
    -- Delivery order: increasing, never reused (AUTOINCREMENT), so a connection can tell
    -- which messages it has already sent.
    seq           INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    recipient_id  TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- No foreign key: a message outlives its sender's account.
    sender_id     TEXT    NOT NULL,
    -- The sender's username sealed exactly as in users.username_sealed (same key, same
    -- row id), so `from` survives the sender's deletion and is never stored in clear.
    sender_sealed BLOB    NOT NULL,
    -- Chosen by the sender; a resend with the same id is the same message.
    msg_id        TEXT    NOT NULL,
    -- The sender's clock, unix milliseconds (unverified, covered by the signature).
    sent_at       INTEGER NOT NULL,
    -- The server's clock, unix seconds (age limit).
    stored_at     INTEGER NOT NULL,
    ciphertext    BLOB    NOT NULL,
    signature     BLOB    NOT NULL,
    CONSTRAINT messages_recipient_msg_id_key UNIQUE (recipient_id, msg_id)
);

CREATE INDEX messages_recipient_seq_idx ON messages (recipient_id, seq);
CREATE INDEX messages_stored_at_idx ON messages (stored_at);
