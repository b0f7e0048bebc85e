-- A row shaped like an account's, which is never an account: a lookup by a username that no
-- account has reads and decodes this row instead, so that a miss costs what a hit costs
-- (timing-safe account lookups, docs/security.md "Timing"). Its values are never used.
CREATE TABLE user_stand_in (
    id              TEXT    NOT NULL PRIMARY KEY,
    username_index  BLOB    NOT NULL,
    username_sealed BLOB    NOT NULL,
    email_index     BLOB,
    email_sealed    BLOB,
    credential      BLOB    NOT NULL,
    status          TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    last_login_at   INTEGER,
    role            TEXT    NOT NULL
);

-- The sizes of a real account's fields: a 32-byte index, a sealed name, a credential record.
INSERT INTO user_stand_in (id, username_index, username_sealed, email_index, email_sealed,
                           credential, status, created_at, updated_at, last_login_at, role)
VALUES ('00000000-0000-0000-0000-000000000000', zeroblob(32), zeroblob(56), NULL, NULL,
        zeroblob(205), 'active', 0, 0, NULL, 'user');
