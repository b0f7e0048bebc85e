-- Passkeys (WebAuthn credentials), one row each. `credential_id` is the authenticator's
-- credential id, unique across all accounts (a discoverable sign-in finds the row by it).
-- `passkey` (the serialized credential: public key, counter, flags) and `label` are sealed
-- by the server under the field key, bound to the owner and the row id. `counter` and the
-- backup flags repeat what the sealed credential holds, so a use can be recorded with a
-- compare-and-swap on the counter.
CREATE TABLE passkeys (
    id              UUID    PRIMARY KEY,
    user_id         UUID    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id   BYTEA   NOT NULL UNIQUE,
    passkey         BYTEA   NOT NULL,
    label           BYTEA   NOT NULL,
    counter         BIGINT NOT NULL DEFAULT 0,
    backup_eligible BOOLEAN NOT NULL DEFAULT FALSE,
    backup_state    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      BIGINT NOT NULL,
    last_used_at    BIGINT
);
CREATE INDEX passkeys_user ON passkeys (user_id);
