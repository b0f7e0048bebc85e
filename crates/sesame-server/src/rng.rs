//! The one source of randomness the service draws from.
//!
//! Tokens, session ids, second-factor tickets, login and recovery ids and one-time codes
//! all come from an [`Rng`] handle: the operating system's generator in production, a
//! seeded [`ChaCha20Rng`] in tests (reproducible runs). Long-term server keys
//! (`secrets.rs`) are always drawn from the operating system.

use std::sync::{Arc, Mutex};

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng as _};

/// A cheap-to-clone handle on the service's random number generator.
#[derive(Clone, Default)]
pub struct Rng(Option<Arc<Mutex<ChaCha20Rng>>>);

impl std::fmt::Debug for Rng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Rng(seeded)"
        } else {
            "Rng(os)"
        })
    }
}

impl Rng {
    /// The operating system's generator (the default).
    pub fn os() -> Self {
        Rng(None)
    }

    /// A deterministic generator seeded with `seed` (tests only: never in production).
    pub fn seeded(seed: u64) -> Self {
        Rng(Some(Arc::new(Mutex::new(ChaCha20Rng::seed_from_u64(seed)))))
    }

    /// Fills `dest` with random bytes.
    // The one place the service reaches the operating system's generator.
    #[allow(clippy::disallowed_types)]
    pub fn fill(&self, dest: &mut [u8]) {
        match &self.0 {
            None => rand_core::OsRng.fill_bytes(dest),
            Some(seeded) => seeded
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .fill_bytes(dest),
        }
    }

    /// A random `u32`.
    pub fn next_u32(&self) -> u32 {
        let mut b = [0u8; 4];
        self.fill(&mut b);
        u32::from_le_bytes(b)
    }

    /// A random (version 4) UUID.
    pub fn uuid(&self) -> uuid::Uuid {
        let mut b = [0u8; 16];
        self.fill(&mut b);
        uuid::Builder::from_random_bytes(b).into_uuid()
    }

    /// A generator borrowing this handle, for APIs that take `&mut impl RngCore + CryptoRng`.
    pub fn handle(&self) -> RngHandle<'_> {
        RngHandle(self)
    }
}

/// [`RngCore`] over an [`Rng`] handle (see [`Rng::handle`]).
#[derive(Debug)]
pub struct RngHandle<'a>(&'a Rng);

impl RngCore for RngHandle<'_> {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

// Both sources are cryptographically secure.
impl CryptoRng for RngHandle<'_> {}
