//! Encryption of every short-lived value before it reaches the backend.
//!
//! The database keeps identifying fields only as a keyed index plus a row-bound ciphertext
//! ([`FieldCrypto`]); [`SealedEphemeral`] keeps the same rule for the short-lived store, which
//! may be a shared Redis: login states, recovery states and second-factor tickets carry the
//! username, and they reach the backend only as `ChaCha20-Poly1305(field_key, aad =
//! "sesame/v1/field/ephemeral" || 0 || key)`. Binding the key into the associated data means a
//! value copied under another key does not open; a value that does not open reads as absent.
//! Keys themselves never hold a username: they are random ids, user ids or hex keyed indexes.
//! Limiter state (counts and times) is not a value and stays as it is.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{Ephemeral, EphemeralError};
use crate::limiter::{Mode, Rule, Verdict};
use crate::secrets::FieldCrypto;

/// The field name of sealed short-lived values.
const FIELD: &str = "ephemeral";

/// An [`Ephemeral`] that seals every value with the server's field key before handing it to
/// `inner` (see the module documentation).
pub struct SealedEphemeral {
    inner: Arc<dyn Ephemeral>,
    fields: FieldCrypto,
}

impl SealedEphemeral {
    /// Wraps `inner`, sealing values with `fields`.
    pub fn new(inner: Arc<dyn Ephemeral>, fields: FieldCrypto) -> SealedEphemeral {
        SealedEphemeral { inner, fields }
    }

    fn seal(&self, key: &str, value: &[u8]) -> Vec<u8> {
        self.fields.seal_bytes(FIELD, key.as_bytes(), value)
    }

    fn open(&self, key: &str, sealed: Option<Vec<u8>>) -> Option<Vec<u8>> {
        let sealed = sealed?;
        let plain = self.fields.open_bytes(FIELD, key.as_bytes(), &sealed)?;
        Some(plain.to_vec())
    }
}

#[async_trait]
impl Ephemeral for SealedEphemeral {
    async fn put(
        &self,
        key: &str,
        value: &[u8],
        now_ms: u64,
        ttl: Duration,
    ) -> Result<(), EphemeralError> {
        let sealed = self.seal(key, value);
        self.inner.put(key, &sealed, now_ms, ttl).await
    }

    async fn take(&self, key: &str, now_ms: u64) -> Result<Option<Vec<u8>>, EphemeralError> {
        let sealed = self.inner.take(key, now_ms).await?;
        Ok(self.open(key, sealed))
    }

    async fn get(&self, key: &str, now_ms: u64) -> Result<Option<Vec<u8>>, EphemeralError> {
        let sealed = self.inner.get(key, now_ms).await?;
        Ok(self.open(key, sealed))
    }

    async fn set_nx(
        &self,
        key: &str,
        value: &[u8],
        now_ms: u64,
        ttl: Duration,
    ) -> Result<bool, EphemeralError> {
        let sealed = self.seal(key, value);
        self.inner.set_nx(key, &sealed, now_ms, ttl).await
    }

    async fn hit(
        &self,
        key: &str,
        rule: &Rule,
        now_ms: u64,
        mode: Mode,
    ) -> Result<Verdict, EphemeralError> {
        self.inner.hit(key, rule, now_ms, mode).await
    }

    async fn delete(&self, key: &str) -> Result<(), EphemeralError> {
        self.inner.delete(key).await
    }

    async fn ping(&self) -> Result<(), EphemeralError> {
        self.inner.ping().await
    }
}
