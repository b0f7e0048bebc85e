//! Errors of the storage layer, whichever backend answers.

use std::fmt;

/// Which unique key a write collided with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConflictOn {
    /// Another user has this username index.
    Username,
    /// Another user has this email index.
    Email,
    /// Any other unique key (a user's or session's id, a session's token hash); holds
    /// the constraint name or the database's message.
    Other(String),
}

impl fmt::Display for ConflictOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConflictOn::Username => f.write_str("username"),
            ConflictOn::Email => f.write_str("email"),
            ConflictOn::Other(what) => write!(f, "unique key ({what})"),
        }
    }
}

/// Errors from the storage layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A unique key is already taken.
    #[error("already taken: {0}")]
    Conflict(ConflictOn),
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// Applying the embedded migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database URL (or a connect option such as
    /// [`ConnectOptions::pg_schema`]) is not usable.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// A stored value could not be decoded (bad id, unknown status, bad JSON …).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// SQLite failed on the path that reads sessions on the caller's thread
    /// ([`InlineReads`](super::sqlite_reads::InlineReads)).
    #[error("database error: {0}")]
    Sqlite(#[source] rusqlite::Error),
}

impl StoreError {
    /// A foreign key refused the write: the row it points at (a user) does not exist, for
    /// example a message to an account deleted a moment ago.
    pub fn is_missing_reference(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(db)) if db.is_foreign_key_violation())
    }
}

impl From<sqlx::Error> for StoreError {
    /// Maps unique-key violations to [`StoreError::Conflict`], undecodable columns to
    /// [`StoreError::Corrupt`], everything else to [`StoreError::Database`].
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            if db.is_unique_violation() {
                // PostgreSQL names the constraint (`users_email_index_key`); SQLite only
                // says `UNIQUE constraint failed: users.email_index` in the message.
                let what = db.constraint().unwrap_or_else(|| db.message());
                let on = if what.contains("username_index") {
                    ConflictOn::Username
                } else if what.contains("email_index") {
                    ConflictOn::Email
                } else {
                    ConflictOn::Other(what.to_owned())
                };
                return StoreError::Conflict(on);
            }
        }
        if let sqlx::Error::ColumnDecode { index, source } = &err {
            return StoreError::Corrupt(format!("column {index}: {source}"));
        }
        StoreError::Database(err)
    }
}
