-- The OpenID Connect provider (docs/oidc.md), PostgreSQL flavour (keep in step with
-- ../sqlite/0006_oidc.sql). Secrets and tokens are stored as SHA-256 hashes only; signing
-- keys sealed by the server.

-- Relying parties, registered by the operator (`sesame admin oidc client add`) or declared
-- in the configuration file (`source` = 'config').
CREATE TABLE oidc_clients (
    id                        TEXT    NOT NULL PRIMARY KEY,
    name                      TEXT    NOT NULL,
    -- SHA-256 of the client secret; NULL for a public client (PKCE, no secret).
    secret_hash               BYTEA,
    -- JSON arrays of exact URLs.
    redirect_uris             TEXT    NOT NULL,
    post_logout_redirect_uris TEXT    NOT NULL,
    -- The scopes the client may ask for, space-separated.
    scopes                    TEXT    NOT NULL,
    skip_consent              BOOLEAN NOT NULL,
    -- 'RS256' | 'EdDSA'
    id_token_alg              TEXT    NOT NULL,
    source                    TEXT    NOT NULL,
    created_at                BIGINT  NOT NULL
);

-- What a user allowed a client, so the consent screen is shown once.
CREATE TABLE oidc_consents (
    user_id    UUID    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT    NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    scopes     TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- One authorization (a redeemed code) and the family of tokens issued from it.
CREATE TABLE oidc_grants (
    id         TEXT    NOT NULL PRIMARY KEY,
    client_id  TEXT    NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    user_id    UUID    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The Sesame session the user signed in with (`sid`); not a reference: the grant
    -- outlives the browser session.
    session_id TEXT    NOT NULL,
    scopes     TEXT    NOT NULL,
    auth_time  BIGINT  NOT NULL,
    -- RFC 8176 values, JSON array.
    amr        TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX oidc_grants_user ON oidc_grants (user_id);

-- Access and refresh tokens of a grant, by hash. A refresh token's `used_at` is set when it
-- is rotated; presenting it again revokes the grant.
CREATE TABLE oidc_tokens (
    hash       BYTEA   NOT NULL PRIMARY KEY,
    grant_id   TEXT    NOT NULL REFERENCES oidc_grants (id) ON DELETE CASCADE,
    -- 'access' | 'refresh'
    kind       TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    used_at    BIGINT
);
CREATE INDEX oidc_tokens_grant ON oidc_tokens (grant_id);

-- ID token signing keys. A key is published from `created_at` and signs from `active_from`
-- until a newer key of its algorithm is active; it stays published for the longest ID token
-- lifetime after that (docs/oidc.md, key rotation).
CREATE TABLE oidc_keys (
    kid            TEXT    NOT NULL PRIMARY KEY,
    -- 'RS256' | 'EdDSA'
    alg            TEXT    NOT NULL,
    private_sealed BYTEA   NOT NULL,
    created_at     BIGINT  NOT NULL,
    active_from    BIGINT  NOT NULL
);

-- Groups, for the `groups` claim.
CREATE TABLE oidc_groups (
    name       TEXT    NOT NULL PRIMARY KEY,
    created_at BIGINT  NOT NULL
);
CREATE TABLE oidc_group_members (
    group_name TEXT    NOT NULL REFERENCES oidc_groups (name) ON DELETE CASCADE,
    user_id    UUID    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_name, user_id)
);
