//! The OpenID Connect provider's tables (`migrations/*/0006_oidc.sql`): clients, consents,
//! grants with their token families, signing keys and groups. The layer above hashes every
//! secret and token and seals every private key before it gets here.

use async_trait::async_trait;
use sqlx::Row;
use uuid::Uuid;

use super::{PostgresStore, SqliteStore, StoreError};

/// A registered relying party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcClientRecord {
    /// The `client_id`.
    pub id: String,
    /// Shown on the consent screen.
    pub name: String,
    /// SHA-256 of the secret; `None` for a public client.
    pub secret_hash: Option<Vec<u8>>,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Exact post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Scopes the client may ask for.
    pub scopes: Vec<String>,
    /// Whether the consent screen is skipped (first-party apps).
    pub skip_consent: bool,
    /// `RS256` or `EdDSA`.
    pub id_token_alg: String,
    /// `cli` or `config`.
    pub source: String,
    /// Registered (unix seconds).
    pub created_at: i64,
}

/// One authorization and its token family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    /// Random id.
    pub id: String,
    /// The client.
    pub client_id: String,
    /// The user.
    pub user_id: Uuid,
    /// The Sesame session signed in with.
    pub session_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// When the user authenticated (unix seconds).
    pub auth_time: i64,
    /// RFC 8176 methods.
    pub amr: Vec<String>,
    /// Created (unix seconds).
    pub created_at: i64,
    /// Revoked (unix seconds).
    pub revoked_at: Option<i64>,
}

/// What a stored token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// An access token (userinfo).
    Access,
    /// A refresh token.
    Refresh,
}

impl TokenKind {
    /// The stored text.
    pub const fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }

    fn parse(s: &str) -> Result<TokenKind, StoreError> {
        match s {
            "access" => Ok(TokenKind::Access),
            "refresh" => Ok(TokenKind::Refresh),
            other => Err(StoreError::Corrupt(format!("oidc token kind {other:?}"))),
        }
    }
}

/// A stored token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// SHA-256 of the token.
    pub hash: Vec<u8>,
    /// Its grant.
    pub grant_id: String,
    /// Access or refresh.
    pub kind: TokenKind,
    /// Issued (unix seconds).
    pub created_at: i64,
    /// Expires (unix seconds).
    pub expires_at: i64,
    /// When a refresh token was rotated.
    pub used_at: Option<i64>,
}

/// A signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// Key id.
    pub kid: String,
    /// `RS256` or `EdDSA`.
    pub alg: String,
    /// The sealed private key.
    pub private_sealed: Vec<u8>,
    /// Published from (unix seconds).
    pub created_at: i64,
    /// Signs from (unix seconds), until a newer key of its algorithm is active.
    pub active_from: i64,
}

/// The OpenID Connect part of the storage contract.
#[async_trait]
pub trait OidcStore: Send + Sync {
    /// Inserts or replaces a client.
    async fn put_client(&self, c: &OidcClientRecord) -> Result<(), StoreError>;
    /// One client.
    async fn client(&self, id: &str) -> Result<Option<OidcClientRecord>, StoreError>;
    /// Every client, by id.
    async fn clients(&self) -> Result<Vec<OidcClientRecord>, StoreError>;
    /// Removes a client with its consents and grants; `false` if none.
    async fn delete_client(&self, id: &str) -> Result<bool, StoreError>;
    /// The scopes `user` allowed `client`.
    async fn consent(&self, user: Uuid, client: &str) -> Result<Option<Vec<String>>, StoreError>;
    /// Records what `user` allowed `client`.
    async fn put_consent(
        &self,
        user: Uuid,
        client: &str,
        scopes: &[String],
        now: i64,
    ) -> Result<(), StoreError>;
    /// Stores a grant with its first tokens, in one transaction.
    async fn create_grant(&self, g: &GrantRecord, tokens: &[TokenRecord])
        -> Result<(), StoreError>;
    /// A token and its grant.
    async fn token(&self, hash: &[u8]) -> Result<Option<(TokenRecord, GrantRecord)>, StoreError>;
    /// Marks the refresh token `old` used and stores `new`, in one transaction; `false` (and
    /// nothing stored) if `old` was already used.
    async fn rotate_refresh(
        &self,
        old: &[u8],
        now: i64,
        new: &[TokenRecord],
    ) -> Result<bool, StoreError>;
    /// Revokes a grant: marks it and deletes its tokens; `false` if it was already revoked.
    async fn revoke_grant(&self, id: &str, now: i64) -> Result<bool, StoreError>;
    /// Deletes the tokens that expired before `now`, then the grants revoked a day before
    /// `now` or left without tokens for a day; returns how many tokens.
    async fn delete_expired_oidc_tokens(&self, now: i64) -> Result<u64, StoreError>;
    /// Deletes one token; `false` if none.
    async fn delete_token(&self, hash: &[u8]) -> Result<bool, StoreError>;
    /// Every signing key, oldest first.
    async fn oidc_keys(&self) -> Result<Vec<KeyRecord>, StoreError>;
    /// Adds a signing key.
    async fn insert_oidc_key(&self, k: &KeyRecord) -> Result<(), StoreError>;
    /// Deletes a signing key; `false` if none.
    async fn delete_oidc_key(&self, kid: &str) -> Result<bool, StoreError>;
    /// Creates a group; `false` if it exists.
    async fn create_group(&self, name: &str, now: i64) -> Result<bool, StoreError>;
    /// Deletes a group; `false` if none.
    async fn delete_group(&self, name: &str) -> Result<bool, StoreError>;
    /// Adds or removes a member; `false` if nothing changed.
    async fn set_group_member(
        &self,
        name: &str,
        user: Uuid,
        member: bool,
    ) -> Result<bool, StoreError>;
    /// Every group with its members.
    async fn groups(&self) -> Result<Vec<(String, Vec<Uuid>)>, StoreError>;
    /// The groups of `user`, by name.
    async fn groups_of(&self, user: Uuid) -> Result<Vec<String>, StoreError>;
}

fn json_list(text: &str, what: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn to_json(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

const CLIENT_COLUMNS: &str = "id, name, secret_hash, redirect_uris, post_logout_redirect_uris, \
                              scopes, skip_consent, id_token_alg, source, created_at";
const GRANT_COLUMNS: &str =
    "g.id, g.client_id, g.user_id, g.session_id, g.scopes, g.auth_time, g.amr, \
     g.created_at, g.revoked_at";

macro_rules! oidc_rows {
    ($store:ty, $db:ty, $decode:ident) => {
        impl $store {
            fn oidc_client_from_row(row: &<$db as sqlx::Database>::Row) -> Result<OidcClientRecord, StoreError> {
                Ok(OidcClientRecord {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    secret_hash: row.try_get("secret_hash")?,
                    redirect_uris: json_list(row.try_get("redirect_uris")?, "redirect_uris")?,
                    post_logout_redirect_uris: json_list(
                        row.try_get("post_logout_redirect_uris")?,
                        "post_logout_redirect_uris",
                    )?,
                    scopes: row.try_get::<String, _>("scopes")?.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
                    skip_consent: row.try_get("skip_consent")?,
                    id_token_alg: row.try_get("id_token_alg")?,
                    source: row.try_get("source")?,
                    created_at: row.try_get("created_at")?,
                })
            }

            fn oidc_grant_from_row(row: &<$db as sqlx::Database>::Row) -> Result<GrantRecord, StoreError> {
                Ok(GrantRecord {
                    id: row.try_get("id")?,
                    client_id: row.try_get("client_id")?,
                    user_id: $decode(row, "user_id")?,
                    session_id: row.try_get("session_id")?,
                    scopes: json_list(row.try_get("scopes")?, "scopes")?,
                    auth_time: row.try_get("auth_time")?,
                    amr: json_list(row.try_get("amr")?, "amr")?,
                    created_at: row.try_get("created_at")?,
                    revoked_at: row.try_get("revoked_at")?,
                })
            }

            fn oidc_key_from_row(row: &<$db as sqlx::Database>::Row) -> Result<KeyRecord, StoreError> {
                Ok(KeyRecord {
                    kid: row.try_get("kid")?,
                    alg: row.try_get("alg")?,
                    private_sealed: row.try_get("private_sealed")?,
                    created_at: row.try_get("created_at")?,
                    active_from: row.try_get("active_from")?,
                })
            }

            async fn insert_oidc_tokens<'e, E>(executor: E, tokens: &[TokenRecord]) -> Result<(), StoreError>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                if tokens.is_empty() {
                    return Ok(());
                }
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO oidc_tokens (hash, grant_id, kind, created_at, expires_at, used_at) ",
                );
                q.push_values(tokens, |mut row, t| {
                    row.push_bind(t.hash.clone())
                        .push_bind(t.grant_id.clone())
                        .push_bind(t.kind.as_str())
                        .push_bind(t.created_at)
                        .push_bind(t.expires_at)
                        .push_bind(t.used_at);
                });
                q.build().execute(executor).await?;
                Ok(())
            }
        }
    };
}

mod imp;

fn sqlite_id(id: Uuid) -> String {
    id.hyphenated().to_string()
}

fn sqlite_uuid(row: &sqlx::sqlite::SqliteRow, col: &str) -> Result<Uuid, StoreError> {
    let text: String = row.try_get(col)?;
    Uuid::parse_str(&text).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

fn pg_id(id: Uuid) -> Uuid {
    id
}

fn pg_uuid(row: &sqlx::postgres::PgRow, col: &str) -> Result<Uuid, StoreError> {
    Ok(row.try_get(col)?)
}

oidc_rows!(SqliteStore, sqlx::Sqlite, sqlite_uuid);
oidc_rows!(PostgresStore, sqlx::Postgres, pg_uuid);
imp::oidc_store!(SqliteStore, sqlx::Sqlite, sqlite_id, sqlite_uuid);
imp::oidc_store!(PostgresStore, sqlx::Postgres, pg_id, pg_uuid);
