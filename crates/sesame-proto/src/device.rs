//! Device keys as a login factor ("something you have"), **sans-IO**.
//!
//! A user may register Ed25519 device public keys with the server and require that every
//! OPAQUE login also proves possession of one of them. The proof is a signature over the
//! login's fresh server challenge: the login id and the server's KE2 (which carries the
//! server's nonce and ephemeral key share), so a signature is good for exactly one login and
//! cannot be replayed into another. The client sends it in
//! [`LoginFinish`](crate::messages::LoginFinish) (`device_key_id`, `device_signature`).
//!
//! The signed bytes ([`device_login_bytes`]) are length-prefixed fields, each prefix a 4-byte
//! big-endian length (`lp(x) = u32be(len(x)) || x`), as in the rest of the protocol:
//!
//! ```text
//! lp("sesame/v1/device-login") || lp(login_id) || lp(ke2)
//! ```
//!
//! ```
//! use ed25519_dalek::SigningKey;
//! use rand_core::OsRng;
//! use sesame_proto::device;
//!
//! let key = SigningKey::generate(&mut OsRng);
//! let sig = device::sign_device_login(&key, "login-id", b"ke2 bytes");
//! let pk = key.verifying_key().to_bytes();
//! assert!(device::verify_device_login(&pk, "login-id", b"ke2 bytes", &sig));
//! assert!(!device::verify_device_login(&pk, "other-login", b"ke2 bytes", &sig));
//! ```

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

/// Domain separator, first field of [`device_login_bytes`].
pub const DEVICE_LOGIN_CONTEXT: &[u8] = b"sesame/v1/device-login";
/// Length of a device signature (Ed25519).
pub const DEVICE_SIGNATURE_LEN: usize = 64;
/// Length of a device public key (Ed25519).
pub const DEVICE_PUBLIC_KEY_LEN: usize = 32;

fn lp(out: &mut Vec<u8>, part: &[u8]) {
    // Every part is far below 4 GiB (a context, a 22-character id, a 320-byte KE2).
    let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(part);
}

/// The bytes a device key signs to prove possession during the login `login_id` whose
/// challenge carried `ke2`: `lp(DEVICE_LOGIN_CONTEXT) || lp(login_id) || lp(ke2)`.
pub fn device_login_bytes(login_id: &str, ke2: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + DEVICE_LOGIN_CONTEXT.len() + login_id.len() + ke2.len());
    lp(&mut out, DEVICE_LOGIN_CONTEXT);
    lp(&mut out, login_id.as_bytes());
    lp(&mut out, ke2);
    out
}

/// Signs the login challenge (`login_id`, `ke2` from the
/// [`LoginChallenge`](crate::messages::LoginChallenge)) with a device key.
pub fn sign_device_login(
    key: &SigningKey,
    login_id: &str,
    ke2: &[u8],
) -> [u8; DEVICE_SIGNATURE_LEN] {
    key.sign(&device_login_bytes(login_id, ke2)).to_bytes()
}

/// Whether `sig` is a valid device signature by `pk` over this login's challenge. Strict
/// Ed25519 verification; a malformed or small-order (weak) public key, or a signature of the
/// wrong length, never verifies.
pub fn verify_device_login(
    pk: &[u8; DEVICE_PUBLIC_KEY_LEN],
    login_id: &str,
    ke2: &[u8],
    sig: &[u8],
) -> bool {
    let Ok(vk) = VerifyingKey::from_bytes(pk) else {
        return false;
    };
    if vk.is_weak() {
        return false;
    }
    let Ok(sig) = <[u8; DEVICE_SIGNATURE_LEN]>::try_from(sig) else {
        return false;
    };
    vk.verify_strict(
        &device_login_bytes(login_id, ke2),
        &Signature::from_bytes(&sig),
    )
    .is_ok()
}

/// Whether `pk` is usable as a device key: a valid Ed25519 point that is not of small order.
pub fn is_valid_device_key(pk: &[u8]) -> bool {
    <[u8; DEVICE_PUBLIC_KEY_LEN]>::try_from(pk)
        .ok()
        .and_then(|pk| VerifyingKey::from_bytes(&pk).ok())
        .is_some_and(|vk| !vk.is_weak())
}

#[cfg(test)]
mod tests;
