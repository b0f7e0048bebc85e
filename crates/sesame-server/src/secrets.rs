//! The master key, the server secrets it protects, and field encryption.
//!
//! Server secrets (the OPAQUE setup, the JWT signing key, the keys for keyed indexes and field
//! encryption) are generated once and stored **in the database**, each sealed with
//! ChaCha20-Poly1305 under the master key with its name as associated data. Several nodes that
//! share one database and one master key therefore agree on every secret, and a database dump
//! without the master key reveals none of them. A wrong master key fails to open the first
//! secret and start-up stops with a clear error; nothing is ever regenerated silently.
//!
//! Stored form of a secret: version byte `1`, 12-byte nonce, ciphertext with 16-byte tag.

use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use ed25519_dalek::SigningKey;
use hmac::{Hmac, Mac};
use rand_core::{CryptoRng, RngCore};

use crate::rng::Rng;
use sesame_proto::server::ServerKeys;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::store::{Store, StoreError};

const SEAL_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

/// Why the secrets could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsError {
    /// The master key is not 32 bytes of base64url or hex.
    #[error("the master key must be 32 bytes, as 43 base64url characters or 64 hex digits")]
    MasterKeyFormat,
    /// The master key file could not be read or created.
    #[error("master key file {path}: {source}")]
    MasterKeyFile {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A stored secret does not open under this master key.
    #[error(
        "the master key does not match this database (secret `{0}` does not decrypt); \
         use the key the database was initialised with"
    )]
    WrongMasterKey(String),
    /// A stored secret opened but does not decode.
    #[error("stored secret `{0}` is corrupt")]
    Corrupt(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The 32-byte key that seals every server secret.
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl MasterKey {
    /// Parses 43 base64url characters or 64 hex digits (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<MasterKey, SecretsError> {
        let text = text.trim();
        let decoded = match text.len() {
            43 => sesame_proto::b64::decode(text),
            64 => hex::decode(text).ok(),
            _ => None,
        };
        let bytes = Zeroizing::new(decoded.ok_or(SecretsError::MasterKeyFormat)?);
        let mut key = Zeroizing::new([0u8; 32]);
        if bytes.len() != 32 {
            return Err(SecretsError::MasterKeyFormat);
        }
        key.copy_from_slice(&bytes);
        Ok(MasterKey(key))
    }

    /// A fresh random key.
    pub fn generate() -> MasterKey {
        let mut key = Zeroizing::new([0u8; 32]);
        Rng::os().fill(key.as_mut());
        MasterKey(key)
    }

    /// The key as base64url (for writing to a key file).
    pub fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(sesame_proto::b64::encode(self.0.as_ref()))
    }

    /// Reads the key file, or creates it (mode 0600) with a fresh key if it does not exist
    /// and `create` is set. Returns the key and whether it was created.
    pub fn load_or_create(path: &Path, create: bool) -> Result<(MasterKey, bool), SecretsError> {
        let err = |source| SecretsError::MasterKeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((MasterKey::parse(&Zeroizing::new(text))?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let key = MasterKey::generate();
                write_private(path, key.to_text().as_bytes()).map_err(err)?;
                Ok((key, true))
            }
            Err(e) => Err(err(e)),
        }
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(self.0.as_ref()))
    }

    fn seal(&self, name: &str, plaintext: &[u8]) -> Vec<u8> {
        seal_with(&self.cipher(), &secret_aad(name), plaintext)
    }

    fn open(&self, name: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
        open_with(&self.cipher(), &secret_aad(name), sealed)
            .ok_or_else(|| SecretsError::WrongMasterKey(name.to_owned()))
    }
}

/// Creates `path` with mode 0600 (owner only) and writes `contents`; refuses to overwrite.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn secret_aad(name: &str) -> Vec<u8> {
    [b"sesame/v1/secret/".as_slice(), name.as_bytes()].concat()
}

fn seal_with(cipher: &ChaCha20Poly1305, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    Rng::os().fill(&mut nonce);
    // Encryption with a 32-byte key and 12-byte nonce cannot fail for inputs under 256 GiB.
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .unwrap_or_default();
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
    out.push(SEAL_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

fn open_with(cipher: &ChaCha20Poly1305, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != SEAL_VERSION {
        return None;
    }
    let (nonce, ct) = sealed[1..].split_at(NONCE_LEN);
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .ok()
        .map(Zeroizing::new)
}

/// Names of the stored secrets.
mod names {
    pub const OPAQUE: &str = "opaque_server_setup";
    pub const JWT: &str = "jwt_ed25519_seed";
    pub const INDEX: &str = "field_index_key";
    pub const FIELD: &str = "field_encryption_key";
    pub const ENVELOPE: &str = "envelope_x25519_secret";
}

/// Every server secret, loaded and opened.
pub struct ServerSecrets {
    /// The OPAQUE setup.
    pub opaque: ServerKeys,
    /// The Ed25519 key that signs access tokens.
    pub jwt: SigningKey,
    /// Keyed indexes and field encryption.
    pub fields: FieldCrypto,
    /// The X25519 key that opens sealed request envelopes ([`crate::envelope`]).
    pub envelope: crypto_box::SecretKey,
}

impl ServerSecrets {
    /// Loads every secret from `store`, creating the missing ones. Safe to run on several nodes
    /// at once: the first writer wins and everyone reads back the same value.
    pub async fn load_or_create(
        store: &dyn Store,
        master: &MasterKey,
        now: i64,
    ) -> Result<ServerSecrets, SecretsError> {
        let os = Rng::os();
        let mut rng = os.handle();
        let opaque = load(store, master, names::OPAQUE, now, || {
            ServerKeys::generate(&mut Rng::os().handle()).to_bytes()
        })
        .await?;
        let opaque = ServerKeys::from_bytes(&opaque)
            .map_err(|_| SecretsError::Corrupt(names::OPAQUE.into()))?;
        let jwt = load(store, master, names::JWT, now, || random32(&mut rng)).await?;
        let jwt = SigningKey::from_bytes(
            jwt.as_slice()
                .try_into()
                .map_err(|_| SecretsError::Corrupt(names::JWT.into()))?,
        );
        let index = load(store, master, names::INDEX, now, || {
            random32(&mut Rng::os().handle())
        })
        .await?;
        let field = load(store, master, names::FIELD, now, || {
            random32(&mut Rng::os().handle())
        })
        .await?;
        let fields = FieldCrypto::new(&index, &field)
            .ok_or_else(|| SecretsError::Corrupt(names::FIELD.into()))?;
        let envelope = load(store, master, names::ENVELOPE, now, || {
            random32(&mut Rng::os().handle())
        })
        .await?;
        let envelope = crypto_box::SecretKey::from_slice(&envelope)
            .map_err(|_| SecretsError::Corrupt(names::ENVELOPE.into()))?;
        Ok(ServerSecrets {
            opaque,
            jwt,
            fields,
            envelope,
        })
    }
}

fn random32<R: RngCore + CryptoRng>(rng: &mut R) -> Zeroizing<Vec<u8>> {
    let mut v = Zeroizing::new(vec![0u8; 32]);
    rng.fill_bytes(&mut v);
    v
}

async fn load(
    store: &dyn Store,
    master: &MasterKey,
    name: &str,
    now: i64,
    fresh: impl FnOnce() -> Zeroizing<Vec<u8>>,
) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
    let sealed = match store.secret(name).await? {
        Some(sealed) => sealed,
        None => {
            let value = fresh();
            store
                .insert_secret_if_absent(name, &master.seal(name, &value), now)
                .await?
        }
    };
    master.open(name, &sealed)
}

/// Keyed indexes and row-bound encryption for identifying fields (usernames, emails).
///
/// A database dump holds only `HMAC-SHA256(index_key, kind || 0 || value)` (for lookups and
/// uniqueness) and `ChaCha20-Poly1305(field_key, aad = "sesame/v1/field/" || field || 0 ||
/// row id)` (to show the value back). Binding the row id into the associated data means a
/// ciphertext copied to another row does not open.
#[derive(Clone)]
pub struct FieldCrypto {
    index: Hmac<Sha256>,
    cipher: ChaCha20Poly1305,
}

impl FieldCrypto {
    fn new(index_key: &[u8], field_key: &[u8]) -> Option<FieldCrypto> {
        if field_key.len() != 32 {
            return None;
        }
        Some(FieldCrypto {
            index: <Hmac<Sha256> as Mac>::new_from_slice(index_key).ok()?,
            cipher: ChaCha20Poly1305::new(Key::from_slice(field_key)),
        })
    }

    /// The keyed index of `value` for the field kind `kind` (e.g. `"username"`).
    pub fn index(&self, kind: &str, value: &str) -> Vec<u8> {
        let mut mac = self.index.clone();
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// Encrypts `value` of field `field` for the row `row_id`.
    pub fn seal(&self, field: &str, row_id: &[u8], value: &str) -> Vec<u8> {
        seal_with(&self.cipher, &field_aad(field, row_id), value.as_bytes())
    }

    /// Decrypts what [`FieldCrypto::seal`] made for the same field and row.
    pub fn open(&self, field: &str, row_id: &[u8], sealed: &[u8]) -> Option<String> {
        let plain = open_with(&self.cipher, &field_aad(field, row_id), sealed)?;
        String::from_utf8(plain.to_vec()).ok()
    }

    /// [`FieldCrypto::seal`] for arbitrary bytes (short-lived state, see
    /// [`crate::ephemeral::SealedEphemeral`]).
    pub fn seal_bytes(&self, field: &str, row_id: &[u8], value: &[u8]) -> Vec<u8> {
        seal_with(&self.cipher, &field_aad(field, row_id), value)
    }

    /// Decrypts what [`FieldCrypto::seal_bytes`] made for the same field and row.
    pub fn open_bytes(
        &self,
        field: &str,
        row_id: &[u8],
        sealed: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        open_with(&self.cipher, &field_aad(field, row_id), sealed)
    }
}

fn field_aad(field: &str, row_id: &[u8]) -> Vec<u8> {
    [
        b"sesame/v1/field/".as_slice(),
        field.as_bytes(),
        &[0],
        row_id,
    ]
    .concat()
}

#[cfg(test)]
mod tests;
