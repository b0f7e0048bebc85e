//! End-to-end encrypted messaging, **sans-IO**: identity keys, the sealed message format, the
//! encrypted key backup and safety numbers. `docs/messaging.md` is the specification.
//!
//! Every user has an [`IdentityKeys`]: an Ed25519 signing key and an X25519 encryption key.
//! The public halves travel as a [`PublicIdentity`], in which the signing key signs the
//! encryption key. A message is a [`SealedMessage`]: the plaintext in a libsodium-compatible
//! sealed box (`crypto_box_seal`) to the recipient's X25519 key, signed with the sender's
//! Ed25519 key over sender, recipient, message id, timestamp and ciphertext
//! ([`signing_bytes`]). [`open`] checks that signature *before* decrypting.
//!
//! The private keys are encrypted at rest and backed up to the server under a [`WrapKey`]
//! derived from OPAQUE's export key, which the server never learns ([`wrap_identity`],
//! [`unwrap_identity`]). Two users compare a [`safety_number`] out of band to verify each
//! other's keys.
//!
//! Nothing here does I/O; randomness is injected (`impl RngCore + CryptoRng`), the time is a
//! parameter. The relay's JSON frames ([`ClientFrame`], [`ServerFrame`]) are defined here so
//! that the client and the server share one definition.
//!
//! ```
//! use rand_core::OsRng;
//! use sesame_proto::e2e::{self, IdentityKeys};
//!
//! let alice = IdentityKeys::generate(&mut OsRng);
//! let bob = IdentityKeys::generate(&mut OsRng);
//! let id = e2e::new_message_id(&mut OsRng);
//! let msg = e2e::seal(
//!     &mut OsRng, &alice, "alice", "bob", &bob.public(), &id, 1_767_225_600_000, b"hi",
//! ).unwrap();
//! let text = e2e::open(&bob, "alice", "bob", &msg, &alice.public()).unwrap();
//! assert_eq!(&text[..], b"hi");
//! ```

use std::fmt;

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use x25519_dalek::StaticSecret;
use zeroize::{Zeroize as _, Zeroizing};

use crate::b64::{self, Bytes};

mod backup;
mod frames;
mod safety;

pub use backup::{unwrap_identity, wrap_identity, WrapKey};
pub use frames::{ClientFrame, FrameError, ServerFrame, MAX_ACK_IDS};
pub use safety::safety_number;

/// Domain separator of the signature over the encryption key in a [`PublicIdentity`].
pub const IDENTITY_KEY_CONTEXT: &[u8] = b"sesame/v1/identity-encryption-key";
/// Domain separator, first field of [`signing_bytes`].
pub const MESSAGE_CONTEXT: &[u8] = b"sesame/v1/message";
/// HKDF salt of the [`WrapKey`], and the associated data of a wrapped identity.
pub const KEY_BACKUP_CONTEXT: &[u8] = b"sesame/v1/key-backup";
/// HKDF `info` of the [`WrapKey`].
pub const KEY_BACKUP_INFO: &[u8] = b"identity-keys";
/// Domain separator of the [`safety_number`] hash.
pub const SAFETY_NUMBER_CONTEXT: &[u8] = b"sesame/v1/safety-number";
/// Domain separator of [`PublicIdentity::fingerprint`].
pub const FINGERPRINT_CONTEXT: &[u8] = b"sesame/v1/identity-fingerprint";
/// The version byte that starts every [`WrapKey`] blob.
pub const WRAP_VERSION: u8 = 1;
/// Length of the XChaCha20-Poly1305 nonce in a [`WrapKey`] blob.
pub const WRAP_NONCE_LEN: usize = 24;
/// Bytes a [`WrapKey`] blob adds to its plaintext: version, nonce and the Poly1305 tag.
pub const WRAP_OVERHEAD: usize = 1 + WRAP_NONCE_LEN + 16;
/// Length of [`IdentityKeys::to_bytes`]: Ed25519 seed (32) then X25519 secret (32).
pub const IDENTITY_SECRET_LEN: usize = 64;
/// Bytes a sealed box adds to its plaintext: the ephemeral public key (32) and the tag (16).
pub const SEAL_OVERHEAD: usize = 48;
/// The longest message id, in bytes.
pub const MAX_MESSAGE_ID_LEN: usize = 64;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// What can go wrong with end-to-end keys and messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum E2eError {
    /// A public key does not decode, is of low order, or the signature over the encryption
    /// key in a [`PublicIdentity`] does not verify.
    #[error("invalid identity key")]
    InvalidKey,
    /// The message's signature does not verify against the sender's signing key: forged,
    /// tampered (any signed field), or not from this sender to this recipient.
    #[error("the message signature does not verify")]
    BadSignature,
    /// The sealed box (or a wrapped blob) does not open: not for this key, or tampered.
    #[error("the ciphertext does not decrypt")]
    DecryptFailed,
    /// A field is malformed (for example a message id that is empty, too long or has
    /// characters outside `[A-Za-z0-9_-]`). Names the field.
    #[error("invalid message: field `{0}` is malformed")]
    InvalidMessage(&'static str),
    /// A wrapped blob starts with a version this code does not know.
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u8),
    /// The local cryptography failed.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl E2eError {
    /// The stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            E2eError::InvalidKey => "invalid_key",
            E2eError::BadSignature => "bad_signature",
            E2eError::DecryptFailed => "decrypt_failed",
            E2eError::InvalidMessage(_) => "invalid_message",
            E2eError::UnsupportedVersion(_) => "unsupported_version",
            E2eError::Internal(_) => "internal",
        }
    }
}

// ---------------------------------------------------------------------------------------
// Identity keys
// ---------------------------------------------------------------------------------------

/// A user's private identity: an Ed25519 signing key and an X25519 encryption key.
///
/// Both are zeroized on drop. `Debug` shows only the public halves.
#[derive(Clone)]
pub struct IdentityKeys {
    signing: SigningKey,
    encryption: StaticSecret,
}

impl fmt::Debug for IdentityKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityKeys")
            .field("public", &self.public())
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl IdentityKeys {
    /// Fresh keys: 32 bytes from `rng` for the Ed25519 seed, then 32 for the X25519 secret
    /// (the same layout as [`IdentityKeys::to_bytes`]).
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> IdentityKeys {
        let mut bytes = Zeroizing::new([0u8; IDENTITY_SECRET_LEN]);
        rng.fill_bytes(&mut bytes[..]);
        IdentityKeys::from_array(&bytes)
    }

    fn from_array(bytes: &[u8; IDENTITY_SECRET_LEN]) -> IdentityKeys {
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&bytes[..32]);
        let mut secret = Zeroizing::new([0u8; 32]);
        secret.copy_from_slice(&bytes[32..]);
        IdentityKeys {
            signing: SigningKey::from_bytes(&seed),
            encryption: StaticSecret::from(*secret),
        }
    }

    /// The 64-byte secret: Ed25519 seed (32) || X25519 secret (32).
    pub fn to_bytes(&self) -> Zeroizing<[u8; IDENTITY_SECRET_LEN]> {
        let mut out = Zeroizing::new([0u8; IDENTITY_SECRET_LEN]);
        out[..32].copy_from_slice(self.signing.as_bytes());
        let mut secret = self.encryption.to_bytes();
        out[32..].copy_from_slice(&secret);
        secret.zeroize();
        out
    }

    /// Keys from [`IdentityKeys::to_bytes`]; [`E2eError::InvalidKey`] unless exactly 64 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<IdentityKeys, E2eError> {
        let array: &[u8; IDENTITY_SECRET_LEN] =
            bytes.try_into().map_err(|_| E2eError::InvalidKey)?;
        Ok(IdentityKeys::from_array(array))
    }

    /// The public identity, with the encryption key signed by the signing key over
    /// [`IDENTITY_KEY_CONTEXT`] `|| encryption_key` (Ed25519 is deterministic: the same keys
    /// always give the same bytes).
    pub fn public(&self) -> PublicIdentity {
        let encryption_key = x25519_dalek::PublicKey::from(&self.encryption).to_bytes();
        let signature = self
            .signing
            .sign(&identity_signing_bytes(&encryption_key))
            .to_bytes();
        PublicIdentity {
            signing_key: self.signing.verifying_key().to_bytes(),
            encryption_key,
            encryption_key_signature: signature,
        }
    }

    /// Signs `message` with the Ed25519 signing key, as is: callers must domain-separate
    /// (this module does so with [`signing_bytes`] and [`IDENTITY_KEY_CONTEXT`]).
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(message).to_bytes()
    }

    /// Whether `public` is this identity's public half (constant time on the public keys).
    pub fn matches(&self, public: &PublicIdentity) -> bool {
        self.public().same_keys(public)
    }
}

fn identity_signing_bytes(encryption_key: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(IDENTITY_KEY_CONTEXT.len() + 32);
    out.extend_from_slice(IDENTITY_KEY_CONTEXT);
    out.extend_from_slice(encryption_key);
    out
}

/// A user's public identity, as published in the key directory (`PUT /api/keys`).
///
/// JSON: `{"signing_key": b64url(32), "encryption_key": b64url(32),
/// "encryption_key_signature": b64url(64)}` (base64url without padding). Always
/// [`PublicIdentity::verify`] one received from elsewhere; [`seal`] and [`open`] do.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublicIdentity {
    /// The Ed25519 public key that signs messages and the encryption key.
    #[serde(with = "fixed_b64")]
    pub signing_key: [u8; 32],
    /// The X25519 public key that messages are sealed to.
    #[serde(with = "fixed_b64")]
    pub encryption_key: [u8; 32],
    /// Ed25519 signature by `signing_key` over [`IDENTITY_KEY_CONTEXT`] `|| encryption_key`.
    #[serde(with = "fixed_b64")]
    pub encryption_key_signature: [u8; 64],
}

impl fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicIdentity")
            .field("signing_key", &b64::encode(self.signing_key))
            .field("encryption_key", &b64::encode(self.encryption_key))
            .finish_non_exhaustive()
    }
}

impl PublicIdentity {
    /// Checks the identity: the signing key is a valid Ed25519 point, not of small order;
    /// the signature over the encryption key verifies (strict Ed25519); and the encryption key
    /// is not of low order (a Diffie-Hellman with it is contributory).
    pub fn verify(&self) -> Result<(), E2eError> {
        let vk = self.verifying_key()?;
        let sig = ed25519_dalek::Signature::from_bytes(&self.encryption_key_signature);
        vk.verify_strict(&identity_signing_bytes(&self.encryption_key), &sig)
            .map_err(|_| E2eError::InvalidKey)?;
        // Any clamped scalar is a multiple of the cofactor: a low-order point gives zero.
        let probe = StaticSecret::from([0x5a; 32]);
        let shared = probe.diffie_hellman(&x25519_dalek::PublicKey::from(self.encryption_key));
        if !shared.was_contributory() {
            return Err(E2eError::InvalidKey);
        }
        Ok(())
    }

    fn verifying_key(&self) -> Result<VerifyingKey, E2eError> {
        let vk = VerifyingKey::from_bytes(&self.signing_key).map_err(|_| E2eError::InvalidKey)?;
        if vk.is_weak() {
            return Err(E2eError::InvalidKey);
        }
        Ok(vk)
    }

    /// Whether both public keys are the same as `other`'s (constant time; the signatures are
    /// not compared, as Ed25519 signatures of the same key are the same bytes anyway).
    pub fn same_keys(&self, other: &PublicIdentity) -> bool {
        let a = self.signing_key.ct_eq(&other.signing_key);
        let b = self.encryption_key.ct_eq(&other.encryption_key);
        bool::from(a & b)
    }

    /// A short fingerprint to show next to a username: the first 16 bytes of
    /// SHA-256([`FINGERPRINT_CONTEXT`] `|| signing_key || encryption_key`) in lowercase hex,
    /// in 8 groups of 4 separated by `:`. For display only; compare [`safety_number`]s to
    /// verify a contact.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(FINGERPRINT_CONTEXT);
        h.update(self.signing_key);
        h.update(self.encryption_key);
        let digest = h.finalize();
        digest[..16]
            .chunks(2)
            .map(|c| format!("{:02x}{:02x}", c[0], c[1]))
            .collect::<Vec<_>>()
            .join(":")
    }
}

// ---------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------

/// One end-to-end encrypted message, as the sender makes it and the recipient receives it.
///
/// Sender and recipient usernames are not part of it: the relay carries `to` (set by the
/// sender) and `from` (set by the server from the authenticated sender) beside it, and both
/// are covered by the signature.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedMessage {
    /// Chosen by the sender, unique per message (a UUID v4 string, [`new_message_id`]); at
    /// most [`MAX_MESSAGE_ID_LEN`] bytes of `[A-Za-z0-9_-]`. Resending the same id is
    /// idempotent at the relay.
    pub id: String,
    /// When the sender sealed it, Unix milliseconds by the sender's clock (unverified).
    pub sent_at: u64,
    /// `crypto_box_seal(plaintext, recipient.encryption_key)`: ephemeral X25519 public key
    /// (32) || XSalsa20-Poly1305 box ([`SEAL_OVERHEAD`] bytes longer than the plaintext).
    pub ciphertext: Bytes,
    /// Ed25519 signature by the sender's signing key over [`signing_bytes`] (64 bytes).
    pub signature: Bytes,
}

impl fmt::Debug for SealedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedMessage")
            .field("id", &self.id)
            .field("sent_at", &self.sent_at)
            .field("ciphertext_len", &self.ciphertext.0.len())
            .finish_non_exhaustive()
    }
}

/// Checks a message id: 1 to [`MAX_MESSAGE_ID_LEN`] bytes, each ASCII alphanumeric, `-` or
/// `_` (UUIDs and ULIDs qualify). [`E2eError::InvalidMessage`]`("id")` otherwise.
pub fn validate_message_id(id: &str) -> Result<(), E2eError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_MESSAGE_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(E2eError::InvalidMessage("id"))
    }
}

/// A fresh random message id: a UUID version 4 in lowercase hyphenated form, from 16 bytes
/// of `rng` with the version and variant bits set (RFC 9562).
pub fn new_message_id(rng: &mut (impl RngCore + CryptoRng)) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn put_lp(out: &mut Vec<u8>, field: &[u8]) {
    // Every field this module signs is far below 4 GiB (the relay caps messages at 64 KiB).
    let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(field);
}

/// The bytes a message signature covers:
///
/// ```text
/// lp("sesame/v1/message") || lp(from) || lp(to) || lp(id) || u64be(sent_at) || lp(ciphertext)
/// ```
///
/// where `lp(x)` = `u32be(len(x)) || x` and `from`/`to` are the canonical usernames as
/// UTF-8.
pub fn signing_bytes(from: &str, to: &str, id: &str, sent_at: u64, ciphertext: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        4 * 5 + 8 + MESSAGE_CONTEXT.len() + from.len() + to.len() + id.len() + ciphertext.len(),
    );
    put_lp(&mut out, MESSAGE_CONTEXT);
    put_lp(&mut out, from.as_bytes());
    put_lp(&mut out, to.as_bytes());
    put_lp(&mut out, id.as_bytes());
    out.extend_from_slice(&sent_at.to_be_bytes());
    put_lp(&mut out, ciphertext);
    out
}

/// Seals `plaintext` from `from` (whose keys are `sender`) to `to` (whose public identity is
/// `recipient`): checks `recipient` ([`PublicIdentity::verify`]) and `id`
/// ([`validate_message_id`]), seals the plaintext to the recipient's encryption key with an
/// ephemeral key from `rng`, and signs [`signing_bytes`].
#[allow(clippy::too_many_arguments)]
pub fn seal(
    rng: &mut (impl RngCore + CryptoRng),
    sender: &IdentityKeys,
    from: &str,
    to: &str,
    recipient: &PublicIdentity,
    id: &str,
    sent_at: u64,
    plaintext: &[u8],
) -> Result<SealedMessage, E2eError> {
    recipient.verify()?;
    validate_message_id(id)?;
    let pk = crypto_box::PublicKey::from_bytes(recipient.encryption_key);
    let ciphertext = pk
        .seal(rng, plaintext)
        .map_err(|_| E2eError::Internal("crypto_box_seal failed"))?;
    let signature = sender.sign(&signing_bytes(from, to, id, sent_at, &ciphertext));
    Ok(SealedMessage {
        id: id.to_owned(),
        sent_at,
        ciphertext: Bytes(ciphertext),
        signature: Bytes(signature.to_vec()),
    })
}

/// Checks the signature of `msg` from `from` to `to` against `sender`'s signing key (strict
/// Ed25519), without decrypting. [`open`] calls it; a relay may too.
pub fn verify_message(
    from: &str,
    to: &str,
    msg: &SealedMessage,
    sender: &PublicIdentity,
) -> Result<(), E2eError> {
    let vk = sender.verifying_key()?;
    validate_message_id(&msg.id)?;
    let sig: [u8; SIGNATURE_LEN] = msg
        .signature
        .as_slice()
        .try_into()
        .map_err(|_| E2eError::BadSignature)?;
    let sig = ed25519_dalek::Signature::from_bytes(&sig);
    vk.verify_strict(
        &signing_bytes(from, to, &msg.id, msg.sent_at, msg.ciphertext.as_slice()),
        &sig,
    )
    .map_err(|_| E2eError::BadSignature)
}

/// Opens `msg` sent by `from` (public identity `sender`) to `to` (keys `recipient`): checks
/// `sender` ([`PublicIdentity::verify`]), then the signature ([`verify_message`]), and only
/// then decrypts the sealed box.
pub fn open(
    recipient: &IdentityKeys,
    from: &str,
    to: &str,
    msg: &SealedMessage,
    sender: &PublicIdentity,
) -> Result<Zeroizing<Vec<u8>>, E2eError> {
    sender.verify()?;
    verify_message(from, to, msg, sender)?;
    let sk = crypto_box::SecretKey::from_bytes(*Zeroizing::new(recipient.encryption.to_bytes()));
    sk.unseal(msg.ciphertext.as_slice())
        .map(Zeroizing::new)
        .map_err(|_| E2eError::DecryptFailed)
}

// ---------------------------------------------------------------------------------------
// Key backup and local encryption
// ---------------------------------------------------------------------------------------

/// Serde for fixed-size byte arrays as base64url without padding.
mod fixed_b64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(v: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::b64::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let bytes = crate::b64::decode(&text)
            .ok_or_else(|| serde::de::Error::custom("not canonical base64url without padding"))?;
        bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom(format_args!("expected {N} bytes")))
    }
}

#[cfg(test)]
mod tests;
