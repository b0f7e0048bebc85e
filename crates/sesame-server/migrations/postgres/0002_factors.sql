-- Per-user factors and data that come in kinds: the TOTP secret, backup codes, security
-- questions, the profile, device and identity keys. One row per (user, kind, slot); the
-- server seals or hashes `value` before it gets here.
CREATE TABLE user_factors (
    user_id    UUID    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL,
    slot       TEXT    NOT NULL,
    value      BYTEA   NOT NULL,
    -- A monotonic counter (the last TOTP time step used), advanced atomically.
    counter    BIGINT  NOT NULL DEFAULT 0,
    created_at BIGINT  NOT NULL,
    -- When a single-use value (a backup code) was consumed.
    used_at    BIGINT ,
    PRIMARY KEY (user_id, kind, slot)
);
