//! Backup codes: ten single-use codes of ten Crockford base32 characters (50 bits each), shown
//! once as `xxxxx-xxxxx`, stored only as keyed hashes; each is consumed atomically.

use uuid::Uuid;

use super::Sesame;
use crate::error::ApiError;
use crate::store::FactorRecord;
use crate::store::{FactorKind, Slot};

/// The factor kind of backup codes (one slot per code: its keyed hash).
pub(crate) const KIND: FactorKind = FactorKind::BackupCode;
const BACKUP_CODES: usize = 10;
const BACKUP_CODE_CHARS: usize = 10;
/// Crockford's base32 alphabet: no i, l, o, u.
const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Canonical form of a typed backup code: lowercase, no separators, Crockford aliases mapped.
fn normalize_backup_code(code: &str) -> Option<String> {
    normalize_code(code, BACKUP_CODE_CHARS)
}

/// Canonical form of a typed Crockford base32 code of `len` characters: lowercase, no
/// separators, aliases mapped; `None` if it is not one.
pub(super) fn normalize_code(code: &str, len: usize) -> Option<String> {
    let mut out = String::with_capacity(len);
    for c in code.chars() {
        let c = match c.to_ascii_lowercase() {
            '-' | ' ' => continue,
            'i' | 'l' => '1',
            'o' => '0',
            c => c,
        };
        if !CROCKFORD.contains(&(c as u8)) || !c.is_ascii() {
            return None;
        }
        out.push(c);
    }
    (out.len() == len).then_some(out)
}

impl Sesame {
    /// Consumes one backup code; `false` if it is not one of the user's unused codes.
    pub async fn consume_backup_code(&self, user: Uuid, code: &str) -> Result<bool, ApiError> {
        let Some(code) = normalize_backup_code(code) else {
            return Ok(false);
        };
        let slot = self.backup_slot(user, &code);
        Ok(self
            .inner
            .store
            .use_factor(user, KIND, &slot, self.now_i64())
            .await?)
    }

    fn backup_slot(&self, user: Uuid, normalized: &str) -> Slot {
        let h = self
            .inner
            .secrets
            .fields
            .index("backup_code", &format!("{user}:{normalized}"));
        Slot::Key(h.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Replaces the user's backup codes with a fresh set and returns it (shown once).
    pub async fn issue_backup_codes(&self, user: Uuid) -> Result<Vec<String>, ApiError> {
        let (codes, records) = self.new_backup_codes(user);
        self.inner
            .store
            .replace_factors(user, KIND, &records)
            .await?;
        Ok(codes)
    }

    /// A fresh set of backup codes: the codes to show once, and the records (keyed hashes)
    /// to store.
    pub(crate) fn new_backup_codes(&self, user: Uuid) -> (Vec<String>, Vec<FactorRecord>) {
        let now = self.now_i64();
        let mut codes = Vec::with_capacity(BACKUP_CODES);
        let mut records = Vec::with_capacity(BACKUP_CODES);
        for _ in 0..BACKUP_CODES {
            let code = self.crockford_code(BACKUP_CODE_CHARS);
            records.push(FactorRecord {
                user_id: user,
                kind: KIND,
                slot: self.backup_slot(user, &code),
                value: Vec::new(),
                counter: 0,
                created_at: now,
                used_at: None,
            });
            codes.push(format!("{}-{}", &code[..5], &code[5..]));
        }
        (codes, records)
    }

    /// A uniformly random code of `chars` Crockford base32 characters (5 bits each).
    pub(super) fn crockford_code(&self, chars: usize) -> String {
        let mut raw = vec![0u8; chars];
        self.rng().fill(&mut raw);
        raw.iter()
            .map(|b| CROCKFORD[usize::from(b & 31)] as char)
            .collect()
    }

    /// Unused backup codes left.
    pub async fn backup_codes_left(&self, user: Uuid) -> Result<usize, ApiError> {
        let all = self.inner.store.factors(user, KIND).await?;
        Ok(all.iter().filter(|f| f.used_at.is_none()).count())
    }
}

#[cfg(test)]
mod tests;
