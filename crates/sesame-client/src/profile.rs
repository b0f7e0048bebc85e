//! The per-user profile: pinned server keys and the current login of each server.
//!
//! The profile directory is `$SESAME_HOME` when set, else `sesame` in the platform's
//! configuration directory (`~/.config/sesame` on Linux). It holds:
//!
//! - `known_servers.json`: `{"<server>": "<base64url public key>"}`, the server keys pinned on
//!   first use, like ssh's `known_hosts`. `<server>` is the canonical server URL
//!   ([`crate::server_id`]).
//! - `known_tls_certs.json`: `{"<server>": "<SHA-256 of the certificate>"}`, the TLS
//!   certificates pinned on first contact with `https://` servers whose certificate the public
//!   roots do not vouch for (a self-signed one); see [`crate::tls::TlsOptions::pinned`].
//! - `sessions/<host>-<port>.json`: the current login on that server ([`StoredSession`]).
//!
//! On Unix the directories this module creates are `0700` and every file it writes is `0600`.
//! Files are written atomically (a temporary file in the same directory, synced, then
//! renamed over the old one), so a crash never leaves half a file behind.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::{Refreshed, SessionIssued};

/// The environment variable that overrides the profile directory.
pub const HOME_ENV: &str = "SESAME_HOME";
/// The file of pinned server keys, inside the profile directory.
pub const KNOWN_SERVERS_FILE: &str = "known_servers.json";
/// The file of pinned TLS certificates, inside the profile directory.
pub const KNOWN_TLS_FILE: &str = "known_tls_certs.json";
/// The directory of stored logins, inside the profile directory.
pub const SESSIONS_DIR: &str = "sessions";
/// An access token this close to its expiry (seconds) counts as expired, so it is refreshed
/// before a request rather than failing in flight.
pub const EXPIRY_MARGIN_SECS: u64 = 30;

/// What can go wrong reading or writing the profile.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// Neither `SESAME_HOME` nor a platform configuration directory is available.
    #[error("cannot locate a configuration directory; set {HOME_ENV} to choose one")]
    NoHome,
    /// A file or directory could not be read or written.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done (`read`, `write`, `create`, `remove`).
        action: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A profile file does not parse.
    #[error("{} is corrupt; fix or delete it", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A pinned key in `known_servers.json` is not a 32-byte base64url key.
    #[error(
        "the key pinned for {server} in {} is not a valid key; remove that entry",
        path.display()
    )]
    BadPinnedKey {
        /// The server.
        server: String,
        /// `known_servers.json`.
        path: PathBuf,
    },
    /// The server presented a key other than the pinned one.
    #[error(
        "the server at {server} presented the key {presented}, but the key pinned for it is \
         {pinned}. Either the server's key was replaced, or someone is impersonating the \
         server. If you know the key was changed on purpose, run `sesame server forget \
         {server}` (it edits {}) and try again.",
        path.display()
    )]
    KeyChanged {
        /// The server.
        server: String,
        /// Fingerprint of the pinned key.
        pinned: String,
        /// Fingerprint of the key the server presented.
        presented: String,
        /// `known_servers.json`.
        path: PathBuf,
    },
    /// The server presented a TLS certificate other than the pinned one.
    #[error(
        "the server at {server} presented the TLS certificate with SHA-256 fingerprint \
         {presented}, but the certificate pinned for it is {pinned}. Either the server's \
         certificate was replaced (a new self-signed one), or someone is impersonating the \
         server. If you know the certificate was changed on purpose, run `sesame server \
         forget {server}` (it edits {}) and try again.",
        path.display()
    )]
    TlsCertificateChanged {
        /// The server.
        server: String,
        /// SHA-256 fingerprint of the pinned certificate.
        pinned: String,
        /// SHA-256 fingerprint of the certificate the server presented.
        presented: String,
        /// `known_tls_certs.json`.
        path: PathBuf,
    },
    /// A pinned certificate in `known_tls_certs.json` is not a SHA-256 fingerprint.
    #[error(
        "the TLS certificate pinned for {server} in {} is not a SHA-256 fingerprint; remove \
         that entry",
        path.display()
    )]
    BadPinnedCertificate {
        /// The server.
        server: String,
        /// `known_tls_certs.json`.
        path: PathBuf,
    },
}

/// What [`Profile::trust_server`] and [`Profile::trust_tls_certificate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// The key was not known and is now pinned (first use).
    Pinned,
    /// The same key was already pinned.
    AlreadyPinned,
}

/// The login kept for one server.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSession {
    /// The canonical server URL this session belongs to.
    pub server: String,
    /// The canonical username.
    pub username: String,
    /// The account's id.
    pub user_id: Uuid,
    /// The session's id.
    pub session_id: Uuid,
    /// The session token (secret), exchanged for access tokens.
    pub session_token: String,
    /// The current access token (secret).
    pub access_token: String,
    /// When the access token expires, in Unix seconds.
    pub access_expires_at: u64,
    /// When the session expires at the latest, in Unix seconds.
    pub session_expires_at: u64,
    /// Seconds without use after which the server ends the session earlier (0: unknown).
    #[serde(default)]
    pub session_idle_timeout: u64,
}

impl fmt::Debug for StoredSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSession")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("user_id", &self.user_id)
            .field("session_id", &self.session_id)
            .field("session_token", &"<redacted>")
            .field("access_token", &"<redacted>")
            .field("access_expires_at", &self.access_expires_at)
            .field("session_expires_at", &self.session_expires_at)
            .field("session_idle_timeout", &self.session_idle_timeout)
            .finish()
    }
}

impl StoredSession {
    /// The session a login on `server` issued at `now` (Unix seconds).
    pub fn from_issued(server: &str, issued: &SessionIssued, now: u64) -> StoredSession {
        StoredSession {
            server: server.to_owned(),
            username: issued.username.clone(),
            user_id: issued.user_id,
            session_id: issued.session_id,
            session_token: issued.session_token.clone(),
            access_token: issued.access_token.clone(),
            access_expires_at: now.saturating_add(issued.expires_in),
            session_expires_at: u64::try_from(issued.session_expires_at).unwrap_or(0),
            session_idle_timeout: issued.session_idle_timeout,
        }
    }

    /// Whether the access token is expired at `now`, or within [`EXPIRY_MARGIN_SECS`] of it.
    pub fn access_expired(&self, now: u64) -> bool {
        now.saturating_add(EXPIRY_MARGIN_SECS) >= self.access_expires_at
    }

    /// Whether the session itself is past its absolute expiry at `now`.
    pub fn session_expired(&self, now: u64) -> bool {
        now >= self.session_expires_at
    }

    /// Takes the access token of a refresh made at `now`.
    pub fn apply_refresh(&mut self, refreshed: &Refreshed, now: u64) {
        self.access_token = refreshed.access_token.clone();
        self.access_expires_at = now.saturating_add(refreshed.expires_in);
    }
}

/// The current time in Unix seconds (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A profile directory. Nothing is created until something is written.
#[derive(Debug, Clone)]
pub struct Profile {
    root: PathBuf,
}

impl Profile {
    /// The profile of this user: `$SESAME_HOME` if set and not empty, else
    /// `<config dir>/sesame`.
    pub fn open() -> Result<Profile, ProfileError> {
        resolve_root(std::env::var_os(HOME_ENV), dirs::config_dir()).map(Profile::at)
    }

    /// The profile in the directory `root`.
    pub fn at(root: impl Into<PathBuf>) -> Profile {
        Profile { root: root.into() }
    }

    /// The profile directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of `known_servers.json`.
    pub fn known_servers_path(&self) -> PathBuf {
        self.root.join(KNOWN_SERVERS_FILE)
    }

    /// Every pinned server and its base64url key.
    pub fn known_servers(&self) -> Result<BTreeMap<String, String>, ProfileError> {
        Ok(read_json(&self.known_servers_path())?.unwrap_or_default())
    }

    /// The key pinned for `server` (a canonical server URL), if any.
    pub fn pinned_key(&self, server: &str) -> Result<Option<[u8; 32]>, ProfileError> {
        let known = self.known_servers()?;
        let Some(text) = known.get(server) else {
            return Ok(None);
        };
        sesame_proto::b64::decode(text)
            .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
            .map(Some)
            .ok_or_else(|| ProfileError::BadPinnedKey {
                server: server.to_owned(),
                path: self.known_servers_path(),
            })
    }

    /// Pins `key` for `server` on first use. A key other than the one already pinned is
    /// refused with [`ProfileError::KeyChanged`], which names both fingerprints and the entry
    /// to remove.
    pub fn trust_server(&self, server: &str, key: &[u8; 32]) -> Result<Trust, ProfileError> {
        if let Some(pinned) = self.pinned_key(server)? {
            if &pinned == key {
                return Ok(Trust::AlreadyPinned);
            }
            return Err(self.key_changed(server, &pinned, key));
        }
        let mut known = self.known_servers()?;
        known.insert(server.to_owned(), sesame_proto::b64::encode(key));
        write_json(&self.known_servers_path(), &known)?;
        Ok(Trust::Pinned)
    }

    /// The error for `server` presenting `presented` while `pinned` is pinned.
    pub fn key_changed(&self, server: &str, pinned: &[u8], presented: &[u8]) -> ProfileError {
        ProfileError::KeyChanged {
            server: server.to_owned(),
            pinned: sesame_proto::fingerprint(pinned),
            presented: sesame_proto::fingerprint(presented),
            path: self.known_servers_path(),
        }
    }

    /// Removes the key pinned for `server`; `false` if none was.
    pub fn forget_server(&self, server: &str) -> Result<bool, ProfileError> {
        let mut known = self.known_servers()?;
        if known.remove(server).is_none() {
            return Ok(false);
        }
        write_json(&self.known_servers_path(), &known)?;
        Ok(true)
    }

    /// The file that keeps the login on `server`: `sessions/<host>-<port>.json`.
    pub fn session_path(&self, server: &str) -> PathBuf {
        self.root
            .join(SESSIONS_DIR)
            .join(format!("{}.json", session_file_stem(server)))
    }

    /// The login stored for `server`, if any. A file that belongs to another server sharing
    /// the same host and port (another scheme or path) does not count.
    pub fn load_session(&self, server: &str) -> Result<Option<StoredSession>, ProfileError> {
        let stored: Option<StoredSession> = read_json(&self.session_path(server))?;
        Ok(stored.filter(|s| s.server == server))
    }

    /// Stores `session` as the login on `session.server`, replacing any previous one.
    pub fn save_session(&self, session: &StoredSession) -> Result<(), ProfileError> {
        write_json(&self.session_path(&session.server), session)
    }

    /// Forgets the login on `server`; `false` if there was none.
    pub fn remove_session(&self, server: &str) -> Result<bool, ProfileError> {
        let path = self.session_path(server);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(ProfileError::Io {
                action: "remove",
                path,
                source,
            }),
        }
    }
}

/// `$SESAME_HOME` if set and not empty, else `<config dir>/sesame`.
fn resolve_root(
    home: Option<OsString>,
    config_dir: Option<PathBuf>,
) -> Result<PathBuf, ProfileError> {
    match home {
        Some(home) if !home.is_empty() => Ok(PathBuf::from(home)),
        _ => config_dir
            .map(|dir| dir.join("sesame"))
            .ok_or(ProfileError::NoHome),
    }
}

/// `<host>-<port>` of a canonical server URL, reduced to `[A-Za-z0-9._-]`.
fn session_file_stem(server: &str) -> String {
    let stem = match reqwest::Url::parse(server) {
        Ok(url) => {
            let host = url.host_str().unwrap_or("server");
            let host = host.trim_start_matches('[').trim_end_matches(']');
            match url.port_or_known_default() {
                Some(port) => format!("{host}-{port}"),
                None => host.to_owned(),
            }
        }
        Err(_) => server.to_owned(),
    };
    stem.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, ProfileError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ProfileError::Io {
                action: "read",
                path: path.to_owned(),
                source,
            })
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| ProfileError::Corrupt {
            path: path.to_owned(),
            source,
        })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), ProfileError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| ProfileError::Corrupt {
        path: path.to_owned(),
        source,
    })?;
    bytes.push(b'\n');
    write_atomic(path, &bytes).map_err(|(action, source)| ProfileError::Io {
        action,
        path: path.to_owned(),
        source,
    })
}

/// Writes `bytes` to `path` atomically (a private temporary file renamed over it), creating
/// owner-only directories; the file is mode 0600. Errors name the action (`create`, `write`).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), (&'static str, io::Error)> {
    let dir = path.parent().ok_or_else(|| {
        (
            "write",
            io::Error::other("the path has no parent directory"),
        )
    })?;
    create_private_dir(dir).map_err(|e| ("create", e))?;
    // tempfile creates the file with mode 0600 on Unix; set it anyway, in case that changes.
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| ("write", e))?;
    set_private_file(tmp.as_file()).map_err(|e| ("write", e))?;
    tmp.write_all(bytes).map_err(|e| ("write", e))?;
    tmp.as_file().sync_all().map_err(|e| ("write", e))?;
    tmp.persist(path).map_err(|e| ("write", e.error))?;
    sync_dir(dir);
    Ok(())
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn set_private_file(file: &std::fs::File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn set_private_file(_file: &std::fs::File) -> io::Result<()> {
    Ok(())
}

/// Makes the rename durable; best effort (not every platform can sync a directory).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

mod tls_pins;

#[cfg(test)]
mod tests;
