-- A row shaped like an account's, which is never an account: a lookup by a username that no
-- account has reads and decodes this row instead, so that a miss costs what a hit costs
-- (timing-safe account lookups, docs/security.md "Timing"). Its values are never used.
CREATE TABLE user_stand_in (
    id              UUID   NOT NULL PRIMARY KEY,
    username_index  BYTEA  NOT NULL,
    username_sealed BYTEA  NOT NULL,
    email_index     BYTEA,
    email_sealed    BYTEA,
    credential      BYTEA  NOT NULL,
    status          TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    last_login_at   BIGINT,
    role            TEXT   NOT NULL
);

-- The sizes of a real account's fields: a 32-byte index, a sealed name, a credential record.
INSERT INTO user_stand_in (id, username_index, username_sealed, email_index, email_sealed,
                           credential, status, created_at, updated_at, last_login_at, role)
VALUES ('00000000-0000-0000-0000-000000000000', decode(repeat('00', 32), 'hex'),
        decode(repeat('00', 56), 'hex'), NULL, NULL, decode(repeat('00', 205), 'hex'),
        'active', 0, 0, NULL, 'user');
