//! Keeping the conversation histories readable when the wrap key changes (a password change
//! re-keys them), and setting aside the ones that cannot be read (after a recovery, the old
//! password's key is gone).

use std::path::{Path, PathBuf};

use rand_core::OsRng;
use sesame_proto::e2e::WrapKey;
use zeroize::Zeroizing;

use super::{history_aad, MessagingError, MessagingStore};
use crate::profile::write_atomic;

/// A history file that did not decrypt, and where it was moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    /// Where the history was.
    pub from: PathBuf,
    /// Where it is now (`<peer>.bin.unreadable`, numbered if that exists).
    pub to: PathBuf,
}

/// What [`MessagingStore::rekey_history`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RekeyReport {
    /// Conversations now encrypted under the new key.
    pub rekeyed: usize,
    /// Conversations that did not open under the old key and were set aside.
    pub set_aside: Vec<SetAside>,
}

impl MessagingStore {
    /// Re-encrypts every conversation of `username` on `server` from `old` to `new` (after a
    /// password change, whose export key, and so wrap key, changes). A conversation that does
    /// not open under `old` is set aside instead.
    pub fn rekey_history(
        &self,
        old: &WrapKey,
        new: &WrapKey,
        server: &str,
        username: &str,
    ) -> Result<RekeyReport, MessagingError> {
        let mut report = RekeyReport::default();
        for peer in self.contacts(server)?.keys() {
            let path = self.history_path(server, username, peer);
            let Ok(blob) = std::fs::read(&path) else {
                continue; // no conversation with this contact
            };
            let aad = history_aad(server, username, peer);
            match old.open(&aad, &blob) {
                Ok(plain) => {
                    let plain = Zeroizing::new(plain);
                    let sealed = new.seal(&mut OsRng, &aad, &plain);
                    write_atomic(&path, &sealed).map_err(|(action, source)| {
                        MessagingError::Io {
                            action,
                            path: path.clone(),
                            source,
                        }
                    })?;
                    report.rekeyed += 1;
                }
                Err(_) => report.set_aside.push(self.set_aside_history(&path)?),
            }
        }
        Ok(report)
    }

    /// Moves an unreadable history to `<file>.unreadable` (or `.unreadable.N`), remembers it
    /// for [`MessagingStore::take_set_aside`], and returns where it went.
    pub(super) fn set_aside_history(&self, path: &Path) -> Result<SetAside, MessagingError> {
        let mut to = path.with_extension("bin.unreadable");
        let mut n = 1;
        while to.exists() {
            to = path.with_extension(format!("bin.unreadable.{n}"));
            n += 1;
        }
        std::fs::rename(path, &to).map_err(|source| MessagingError::Io {
            action: "set aside",
            path: path.to_owned(),
            source,
        })?;
        let moved = SetAside {
            from: path.to_owned(),
            to,
        };
        if let Ok(mut all) = self.set_aside.lock() {
            all.push(moved.clone());
        }
        Ok(moved)
    }

    /// The histories set aside since the last call (to tell the person).
    pub fn take_set_aside(&self) -> Vec<SetAside> {
        self.set_aside
            .lock()
            .map(|mut all| std::mem::take(&mut *all))
            .unwrap_or_default()
    }
}
