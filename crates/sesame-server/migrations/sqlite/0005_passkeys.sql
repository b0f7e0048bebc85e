-- Passkeys (WebAuthn credentials), one row each. `credential_id` is the authenticator's
-- credential id, unique across all accounts (a discoverable sign-in finds the row by it).
-- `passkey` (the serialized credential: public key, counter, flags) and `label` are sealed
-- by the server under the field key, bound to the owner and the row id. `counter` and the
-- backup flags repeat what the sealed credential holds, so a use can be recorded with a
-- compare-and-swap on the counter.
CREATE TABLE passkeys (
    id              TEXT    PRIMARY KEY,
    user_id         TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id   BLOB   NOT NULL UNIQUE,
    passkey         BLOB   NOT NULL,
    label           BLOB   NOT NULL,
    counter         INTEGER NOT NULL DEFAULT 0,
    backup_eligible BOOLEAN NOT NULL DEFAULT FALSE,
    backup_state    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER
);
CREATE INDEX passkeys_user ON passkeys (user_id);
