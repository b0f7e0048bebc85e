//! The client half: client-side registration and login.
//!
//! Passwords are NFKC-normalised ([`crate::policy::normalize_password`]) and held in zeroizing
//! buffers between steps. Before stretching anything the client checks the server's
//! key-stretching parameters against a [`KsfPolicy`](crate::KsfPolicy) and, when it has one,
//! the server's public key against its pin.

mod login;
mod registration;

pub use login::{start_login, ClientLoginFinished, ExpectLoginChallenge, ExpectLoginConfirmation};
pub use registration::{
    start_registration, ClientRegistrationFinished, ExpectRegistrationChallenge,
};

use subtle::ConstantTimeEq;

use crate::error::Error;

/// What the client trusts: the key-stretching bounds and, optionally, a pinned server key.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientPolicy {
    /// Bounds on the parameters a server may ask for.
    pub ksf: crate::suite::KsfPolicy,
    /// The server public key pinned on first use; `None` trusts whatever key the OPAQUE
    /// exchange authenticates (trust on first use), and the caller should pin it then.
    pub pinned_server_key: Option<[u8; 32]>,
}

impl ClientPolicy {
    pub(crate) fn check_pin(&self, key: &[u8]) -> Result<(), Error> {
        match &self.pinned_server_key {
            Some(pin) if !bool::from(pin.as_slice().ct_eq(key)) => Err(Error::ServerKeyMismatch),
            _ => Ok(()),
        }
    }
}

/// Copies a 32-byte key out of the wire, or names the field that was the wrong length.
pub(crate) fn key32(bytes: &[u8], field: &'static str) -> Result<[u8; 32], Error> {
    bytes.try_into().map_err(|_| Error::InvalidMessage(field))
}

/// Copies a 64-byte OPAQUE export key into a zeroizing array.
pub(crate) fn export_key(bytes: &[u8]) -> zeroize::Zeroizing<[u8; 64]> {
    let mut out = zeroize::Zeroizing::new([0u8; 64]);
    out.copy_from_slice(bytes);
    out
}
