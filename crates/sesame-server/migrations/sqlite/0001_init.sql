-- Sesame storage schema, SQLite flavour (keep in step with ../postgres/0001_init.sql).
-- Timestamps are unix seconds; ids are hyphenated lowercase UUID text; every secret
-- value, credential and identifier arrives sealed or hashed by the server.
-- Applied migrations are immutable: change the schema in a new, higher-numbered file.

-- Server-wide secrets (encrypted under the master key), created once.
CREATE TABLE server_secrets (
    name       TEXT    NOT NULL PRIMARY KEY,
    value      BLOB    NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE users (
    id              TEXT    NOT NULL PRIMARY KEY,
    username_index  BLOB    NOT NULL,
    username_sealed BLOB    NOT NULL,
    email_index     BLOB,
    email_sealed    BLOB,
    credential      BLOB    NOT NULL,
    -- 'active' | 'pending' | 'banned' (validated by the server, no CHECK so that a
    -- later status needs no table rebuild)
    status          TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    last_login_at   INTEGER,
    -- Constraint names mention the column: the store maps violations by name.
    CONSTRAINT users_username_index_key UNIQUE (username_index),
    -- NULLs are distinct: any number of users may have no email.
    CONSTRAINT users_email_index_key UNIQUE (email_index)
);

CREATE INDEX users_created_at_idx ON users (created_at, id);

CREATE TABLE sessions (
    id                  TEXT    NOT NULL PRIMARY KEY,
    user_id             TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash          BLOB    NOT NULL,
    created_at          INTEGER NOT NULL,
    last_seen_at        INTEGER NOT NULL,
    idle_expires_at     INTEGER NOT NULL,
    absolute_expires_at INTEGER NOT NULL,
    client_addr         TEXT,
    user_agent          TEXT,
    -- JSON array of method names, e.g. '["opaque","totp"]'
    methods             TEXT    NOT NULL DEFAULT '[]',
    CONSTRAINT sessions_token_hash_key UNIQUE (token_hash)
);

CREATE INDEX sessions_user_id_idx ON sessions (user_id, created_at);
CREATE INDEX sessions_idle_expires_at_idx ON sessions (idle_expires_at);
CREATE INDEX sessions_absolute_expires_at_idx ON sessions (absolute_expires_at);

-- Append-only log. user_id deliberately has no foreign key: entries outlive the user.
CREATE TABLE audit_log (
    id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    event       TEXT    NOT NULL,
    user_id     TEXT,
    reason      TEXT,
    client_addr TEXT,
    user_agent  TEXT
);

CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_user_id_at_idx ON audit_log (user_id, at);
