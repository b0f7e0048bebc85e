-- Per-user factors and data that come in kinds: the TOTP secret, backup codes, security
-- questions, the profile, device and identity keys. One row per (user, kind, slot); the
-- server seals or hashes `value` before it gets here.
CREATE TABLE user_factors (
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL,
    slot       TEXT    NOT NULL,
    value      BLOB    NOT NULL,
    -- A monotonic counter (the last TOTP time step used), advanced atomically.
    counter    INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    -- When a single-use value (a backup code) was consumed.
    used_at    INTEGER,
    PRIMARY KEY (user_id, kind, slot)
);
