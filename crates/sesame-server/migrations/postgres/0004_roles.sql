-- Account roles (keep in step with ../sqlite/0004_roles.sql): 'user' | 'admin', validated by
-- the server (no CHECK, like `status`, so a later role needs no table rebuild in SQLite).
-- Every existing account is an ordinary user; the operator grants 'admin' with
-- `sesame admin user grant-admin NAME`.
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'user';
