//! The SQLite [`Store`](super::Store), the embedded default.
//!
//! Every connection is opened with:
//!
//! * `create_if_missing`: a fresh install starts with just a path. The file is created
//!   owner-only (0600) before SQLite opens it, and SQLite gives its `-wal` and `-shm` files
//!   the database file's mode; an existing file (and journal) readable by others is
//!   narrowed to 0600 at start ([`restrict_files`]).
//! * `journal_mode=WAL`: readers never block the writer nor the writer the readers, so
//!   session lookups keep flowing during writes.
//! * `synchronous=FULL`: each commit is fsynced (WAL included) before it is
//!   acknowledged, so no acknowledged write (a new account, a revoked session) is lost
//!   on a process crash nor on power loss. `NORMAL` would be faster but may drop the
//!   last commits on power loss, which is not acceptable for security state.
//! * `foreign_keys=ON`: SQLite leaves foreign keys off by default, and deleting a user
//!   must cascade to the user's sessions.
//! * `busy_timeout` of 5 s: a connection waits for the write lock instead of failing at
//!   once with `SQLITE_BUSY` when another connection is writing.
//! * `mmap_size` of 256 MiB ([`MMAP_SIZE`]): pages are read from a memory map, so a
//!   lookup's cost does not depend on how many pages it touches (timing-safe lookups).
//!
//! Session lookups by token hash or id, the reads of every refresh and authenticated
//! request, run on the caller's own thread through [`InlineReads`] instead of a pool
//! connection's worker thread (`store/sqlite_reads.rs`).
//!
//! Connections are not pinged before each use (`test_before_acquire(false)`): a connection
//! to a local file does not go stale, and with sqlx's SQLite driver the ping is a round
//! trip to the connection's worker thread, which doubled the thread hand-offs of every
//! statement (docs/benchmarks.md, F1).
//!
//! **Two pools.** Reads use a small pool (at most 4 connections), so a few reads run beside a
//! write. Writes use a pool of exactly **one** connection ([`SqliteStore::writer`]). SQLite
//! has one writer at a time; with writers on several connections, the ones that find the
//! lock taken wait in SQLite's busy handler, which *sleeps* (1, 2, 5, 10 … 100 ms) instead
//! of being woken when the lock frees. Measured: 32 concurrent logins ran at ~50 ms each
//! with the server's CPU half idle. With one writer connection, writes queue in the pool
//! (woken in order the moment the connection is free) and SQLite never sees contention
//! from this process; the busy timeout remains for other processes (`sesame admin` on the
//! same file).
//!
//! An in-memory database (`sqlite::memory:`) uses exactly one connection that is never
//! recycled, since the database lives only as long as its connections; it serves reads
//! and writes.
//!
//! Ids are stored as hyphenated lowercase UUID text ([`bind_id`], [`decode_id`]).
//!
//! The queries themselves are shared with PostgreSQL (`store/common.rs`).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::Row;
use uuid::fmt::Hyphenated;
use uuid::Uuid;

use super::sqlite_reads::InlineReads;
use super::{ConnectOptions, StoreError};

/// Most connections a SQLite pool opens.
const MAX_SQLITE_CONNECTIONS: u32 = 4;
/// How long a connection waits for another's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes of the database file each connection maps into memory (`PRAGMA mmap_size`): reading
/// a page is then a memory access, not a `pread` call, so a lookup that reads one page more
/// than another (an existing account's row against a miss in the index) is not measurably
/// slower (docs/security.md, "Timing"). Address space only; the kernel shares the pages.
const MMAP_SIZE: u64 = 256 * 1024 * 1024;

/// A [`Store`](super::Store) on a SQLite database file (or an in-memory database).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: SqlitePool,
    /// In memory: `writer` is `pool`.
    shared: bool,
    /// Session lookups on the caller's thread; `None` in memory.
    inline: Option<Arc<InlineReads>>,
}

/// Creates the database file `db` owner-only (0600) if it is missing, and narrows it and its
/// `-wal`, `-shm` and `-journal` files to 0600 if they exist with a wider mode. SQLite creates
/// the `-wal` and `-shm` files with the database file's mode.
pub fn restrict_files(db: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        if db.as_os_str().is_empty() {
            return Ok(());
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(db)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            let path = std::path::Path::new(&name);
            if let Ok(meta) = std::fs::metadata(path) {
                if meta.permissions().mode() & 0o077 != 0 {
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = db;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path` or
    /// `sqlite::memory:`) and applies the embedded migrations.
    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Self, StoreError> {
        let connect_options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::InvalidUrl(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("mmap_size", MMAP_SIZE.to_string());

        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if !in_memory {
            restrict_files(connect_options.get_filename()).map_err(|e| {
                StoreError::InvalidUrl(format!(
                    "cannot create the database file {} owner-only: {e}",
                    connect_options.get_filename().display()
                ))
            })?;
        }
        let pool_options = if in_memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new()
                .max_connections(options.max_connections.clamp(1, MAX_SQLITE_CONNECTIONS))
        };
        let pool = pool_options
            .test_before_acquire(false)
            .connect_with(connect_options.clone())
            .await
            .map_err(StoreError::Database)?;

        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        let writer = if in_memory {
            pool.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .connect_with(connect_options.clone())
                .await
                .map_err(StoreError::Database)?
        };
        let inline = if in_memory {
            None
        } else {
            let path = connect_options.get_filename();
            Some(Arc::new(InlineReads::open(path, MMAP_SIZE, BUSY_TIMEOUT)?))
        };
        tracing::debug!(in_memory, "SQLite store ready");
        Ok(SqliteStore {
            pool,
            writer,
            shared: in_memory,
            inline,
        })
    }

    /// The read pool, for code that needs SQLite-specific access.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The session lookups that run on the caller's thread, for a database file.
    pub(super) fn inline_reads(&self) -> Option<&InlineReads> {
        self.inline.as_deref()
    }

    /// The single-connection pool every write goes through.
    pub fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// Begins a write transaction on the writer, taking SQLite's write lock at once
    /// (`BEGIN IMMEDIATE`): a transaction that read first and wrote later would fail with
    /// `SQLITE_BUSY` if another process (`sesame admin`) wrote in between, while waiting for
    /// the lock up front goes through the busy timeout like any write.
    pub async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.writer.begin_with("BEGIN IMMEDIATE").await
    }

    /// (open connections, idle connections), both pools together.
    pub(super) fn pool_sizes(&self) -> (u32, usize) {
        if self.shared {
            return (self.pool.size(), self.pool.num_idle());
        }
        (
            self.pool.size() + self.writer.size(),
            self.pool.num_idle() + self.writer.num_idle(),
        )
    }
}

/// Binds an id: SQLite stores ids as hyphenated lowercase text.
pub(super) fn bind_id(id: Uuid) -> Hyphenated {
    id.hyphenated()
}

pub(super) fn parse_id(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|e| StoreError::Corrupt(format!("bad id {text:?}: {e}")))
}

/// Reads back an id column.
pub(super) fn decode_id(row: &SqliteRow, column: &str) -> Result<Uuid, StoreError> {
    parse_id(row.try_get(column)?)
}

/// Reads back a nullable id column.
pub(super) fn decode_opt_id(row: &SqliteRow, column: &str) -> Result<Option<Uuid>, StoreError> {
    let text: Option<String> = row.try_get(column)?;
    text.as_deref().map(parse_id).transpose()
}
