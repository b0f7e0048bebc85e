//! Session lookups on a SQLite file, read on the caller's own thread.
//!
//! Every refresh and every authenticated request reads one session row by a unique key.
//! Through sqlx, each such read is handed to the connection's worker thread and its answer
//! handed back: two thread switches and their wake-ups, which were about 40 % of a refresh's
//! server CPU (docs/benchmarks.md §5.14). [`InlineReads`] runs these point lookups with
//! rusqlite on the thread that asks, from a few connections of its own:
//!
//! * **Bounded.** A lookup is one index probe and one row on a memory-mapped file
//!   ([`MMAP_SIZE`](super::sqlite)): microseconds, with no lock to wait for, since in WAL
//!   mode readers never wait for the writer. Only these lookups run here; anything that
//!   scans, writes or may wait stays on sqlx's worker threads.
//! * **Never stale.** Every statement runs in its own read transaction, which sees every
//!   commit made before it began, by this process or another (`sesame admin` revoking a
//!   session): revocation still takes effect at once. Nothing is cached but connections and
//!   prepared statements.
//! * **Read-only.** The connections set `query_only`, so a bug here cannot write.
//!
//! An in-memory database has no file to open a second connection on; it keeps sqlx's path.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension as _, Row};
use uuid::Uuid;

use super::sqlite::parse_id;
use super::{decode_methods, decode_status, AccountStatus, SessionRecord, StoreError};

/// Idle connections kept for reuse, at least: one per thread that reads at the same moment
/// (the runtime's workers, one per core), so the number kept is the larger of this and the
/// machine's cores; more are opened when needed and closed after use.
const MIN_IDLE_KEPT: usize = 8;
/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 8;

/// The session columns, in the order [`raw_session`] reads them.
macro_rules! columns {
    () => {
        "id, user_id, token_hash, created_at, last_seen_at, idle_expires_at, \
         absolute_expires_at, client_addr, user_agent, methods"
    };
}

/// A session and its owner's status by token hash (the status is column 10).
const BY_TOKEN_HASH: &str = concat!(
    "SELECT ",
    columns!(),
    ", (SELECT status FROM users WHERE users.id = sessions.user_id) \
     FROM sessions WHERE token_hash = ?1"
);
/// A session by id.
const BY_ID: &str = concat!("SELECT ", columns!(), " FROM sessions WHERE id = ?1");

/// Point lookups of sessions on the caller's thread (see the module documentation).
#[derive(Debug)]
pub struct InlineReads {
    path: PathBuf,
    mmap_size: u64,
    busy_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
}

impl InlineReads {
    /// Reads the database file at `path` with the given `mmap_size` and busy timeout (those of
    /// sqlx's connections). Opens one connection now, so a path that cannot be read fails here.
    pub fn open(path: &Path, mmap_size: u64, busy_timeout: Duration) -> Result<Self, StoreError> {
        let reads = InlineReads {
            path: path.to_owned(),
            mmap_size,
            busy_timeout,
            idle: Mutex::new(Vec::new()),
            max_idle: std::thread::available_parallelism()
                .map_or(MIN_IDLE_KEPT, |n| n.get().max(MIN_IDLE_KEPT)),
        };
        let first = reads.connect()?;
        reads.give_back(first);
        Ok(reads)
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags).map_err(sqlite)?;
        conn.busy_timeout(self.busy_timeout).map_err(sqlite)?;
        conn.pragma_update(None, "query_only", true)
            .map_err(sqlite)?;
        conn.pragma_update(None, "mmap_size", self.mmap_size)
            .map_err(sqlite)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
    }

    /// Runs `f` on an idle connection (or a new one), then returns the connection.
    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let taken = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match taken {
            Some(conn) => conn,
            None => self.connect()?,
        };
        let result = f(&conn);
        self.give_back(conn);
        result
    }

    /// The session whose token hashes to `token_hash`, with its owner's status (`None` if the
    /// owner is gone), as [`Store::session_and_owner_by_token_hash`](super::Store).
    pub fn session_and_owner(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<(SessionRecord, Option<AccountStatus>)>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(BY_TOKEN_HASH).map_err(sqlite)?;
            let found = stmt
                .query_row([token_hash], |row| {
                    Ok((raw_session(row)?, row.get::<_, Option<String>>(10)?))
                })
                .optional()
                .map_err(sqlite)?;
            let Some((raw, status)) = found else {
                return Ok(None);
            };
            let status = status.as_deref().map(decode_status).transpose()?;
            Ok(Some((raw.decode()?, status)))
        })
    }

    /// The session `id`, as [`Store::session_by_id`](super::Store).
    pub fn session_by_id(&self, id: Uuid) -> Result<Option<SessionRecord>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(BY_ID).map_err(sqlite)?;
            let id = id.hyphenated().to_string();
            let found = stmt
                .query_row([id], raw_session)
                .optional()
                .map_err(sqlite)?;
            found.map(RawSession::decode).transpose()
        })
    }
}

/// A session row as stored, before its text columns are decoded.
struct RawSession {
    id: String,
    user_id: String,
    record: SessionRecord,
    methods: String,
}

impl RawSession {
    fn decode(self) -> Result<SessionRecord, StoreError> {
        Ok(SessionRecord {
            id: parse_id(&self.id)?,
            user_id: parse_id(&self.user_id)?,
            methods: decode_methods(&self.methods)?,
            ..self.record
        })
    }
}

fn raw_session(row: &Row<'_>) -> rusqlite::Result<RawSession> {
    Ok(RawSession {
        id: row.get(0)?,
        user_id: row.get(1)?,
        record: SessionRecord {
            id: Uuid::nil(),
            user_id: Uuid::nil(),
            token_hash: row.get(2)?,
            created_at: row.get(3)?,
            last_seen_at: row.get(4)?,
            idle_expires_at: row.get(5)?,
            absolute_expires_at: row.get(6)?,
            client_addr: row.get(7)?,
            user_agent: row.get(8)?,
            methods: Vec::new(),
        },
        methods: row.get(9)?,
    })
}

fn sqlite(e: rusqlite::Error) -> StoreError {
    StoreError::Sqlite(e)
}
