//! The bench's OPAQUE client: registration and login over REST with [`BenchSuite`].
//!
//! It does what [`sesame_client::Client::register`] and [`sesame_client::Client::login`] do,
//! step for step and with the same wire messages ([`sesame_proto::messages`]), except that
//! the key stretching is memoized ([`crate::ksf`]). It checks the key-stretching parameters
//! against [`KsfPolicy::DEFAULT`], the server key against the pin taken at setup, and opens
//! the confirmation (transcript hash, HKDF-SHA256, ChaCha20-Poly1305 as in
//! docs/protocol.md §5.5) before it counts a login as done.
//!
//! Everything else (password login, server-assisted registration, refresh, health, the
//! relay) goes through the real client library.

use std::time::Duration;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialResponse, Identifiers, RegistrationResponse,
};
use rand_core::OsRng;
use reqwest::Url;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sesame_client::{Client, ClientPolicy, SessionIssued};
use sesame_proto::b64::Bytes;
use sesame_proto::messages::{
    LoginChallenge, LoginConfirmation, LoginFinish, LoginStart, RegistrationChallenge,
    RegistrationFinish, RegistrationStart,
};
use sesame_proto::policy::normalize_password;
use sesame_proto::KsfPolicy;
use sha2::{Digest, Sha256};

use crate::ksf::{BenchSuite, CachingKsf};

/// Per-request timeout of the bench's HTTP client.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an operation failed, as a short stable kind for the error table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError(pub String);

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OpError {}

impl OpError {
    /// An error of kind `kind`.
    pub fn new(kind: impl Into<String>) -> OpError {
        OpError(kind.into())
    }
}

impl From<reqwest::Error> for OpError {
    fn from(e: reqwest::Error) -> Self {
        OpError::new(if e.is_timeout() {
            "timeout"
        } else if e.is_connect() {
            "connect"
        } else if e.is_decode() {
            "decode"
        } else {
            "http"
        })
    }
}

impl From<sesame_client::Error> for OpError {
    fn from(e: sesame_client::Error) -> Self {
        use sesame_client::Error as E;
        match &e {
            E::Server {
                status, wire_code, ..
            } => OpError::new(format!("{}_{wire_code}", status.unwrap_or(0))),
            E::AuthenticationFailed => OpError::new("authentication_failed"),
            E::Timeout => OpError::new("timeout"),
            E::Http(h) if h.is_timeout() => OpError::new("timeout"),
            E::Http(h) if h.is_connect() => OpError::new("connect"),
            other => OpError::new(format!("client: {other}")),
        }
    }
}

/// A connection to one server: the shared HTTP pool, the library client on it and the pinned
/// server key.
#[derive(Clone)]
pub struct BenchClient {
    /// The HTTP connection pool (shared by every virtual client).
    pub http: reqwest::Client,
    /// The library client, on the same pool.
    pub client: Client,
    /// The server's base URL (ends in `/`).
    pub base: Url,
    /// The server key pinned at setup (`GET /.well-known/sesame`).
    pub pinned: [u8; 32],
}

/// What a bench login gives back.
pub struct BenchLogin {
    /// The session from the opened confirmation.
    pub session: SessionIssued,
    /// OPAQUE's export key.
    pub export_key: [u8; 64],
}

impl BenchClient {
    /// Connects to `base_url` and pins the server's OPAQUE key.
    pub async fn connect(base_url: &str) -> anyhow::Result<BenchClient> {
        let http = reqwest::Client::builder()
            .user_agent("sesame-bench")
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(4096)
            .tcp_nodelay(true)
            .build()?;
        let unpinned = Client::with_http_client(base_url, ClientPolicy::default(), http.clone())?;
        let info = unpinned.server_info().await?;
        let key = sesame_proto::b64::decode(&info.opaque_public_key)
            .ok_or_else(|| anyhow::anyhow!("the server's key is not base64url"))?;
        let pinned: [u8; 32] = key
            .try_into()
            .map_err(|_| anyhow::anyhow!("the server's key is not 32 bytes"))?;
        let policy = ClientPolicy {
            pinned_server_key: Some(pinned),
            ..ClientPolicy::default()
        };
        let client = Client::with_http_client(base_url, policy, http.clone())?;
        Ok(BenchClient {
            base: client.base_url().clone(),
            http,
            client,
            pinned,
        })
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, OpError> {
        let url = self.base.join(path).map_err(|_| OpError::new("bad_url"))?;
        let resp = self.http.post(url).json(body).send().await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        if !status.is_success() {
            let code = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "unknown".into());
            return Err(OpError::new(format!("{}_{code}", status.as_u16())));
        }
        serde_json::from_slice(&bytes).map_err(|_| OpError::new("malformed_body"))
    }

    fn check_challenge(&self, ksf: &sesame_proto::KsfParams, key: &Bytes) -> Result<(), OpError> {
        KsfPolicy::DEFAULT
            .check(ksf)
            .map_err(|_| OpError::new("key_stretching_rejected"))?;
        if key.as_slice() != self.pinned.as_slice() {
            return Err(OpError::new("server_key_mismatch"));
        }
        Ok(())
    }

    /// Client-side OPAQUE registration (`/api/register/start`, `/api/register/finish`), the
    /// password policy checked first as the library does. Leaves the stretched password in the
    /// memo, so the user's logins need no Argon2id on the client.
    pub async fn register(&self, username: &str, password: &str) -> Result<(), OpError> {
        let canonical = sesame_proto::policy::Username::parse(username)
            .map_err(|_| OpError::new("bad_username"))?;
        sesame_proto::policy::check_password(password, &canonical)
            .map_err(|_| OpError::new("bad_password"))?;
        let password = normalize_password(password);
        let start = ClientRegistration::<BenchSuite>::start(&mut OsRng, password.as_bytes())
            .map_err(|_| OpError::new("registration_start"))?;
        let msg = RegistrationStart {
            username: username.to_owned(),
            registration_request: Bytes(start.message.serialize().to_vec()),
        };
        let challenge: RegistrationChallenge = self.post("api/register/start", &msg).await?;
        let ksf = challenge.key_stretching.params();
        self.check_challenge(&ksf, &challenge.server_public_key)?;
        let response = RegistrationResponse::<BenchSuite>::deserialize(
            challenge.registration_response.as_slice(),
        )
        .map_err(|_| OpError::new("invalid_registration_response"))?;
        let stretch = CachingKsf::new(ksf);
        let finish = start
            .state
            .finish(
                &mut OsRng,
                password.as_bytes(),
                response,
                ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&stretch)),
            )
            .map_err(|_| OpError::new("invalid_registration_response"))?;
        if finish.server_s_pk.serialize().as_slice() != self.pinned.as_slice() {
            return Err(OpError::new("server_key_mismatch"));
        }
        let done = RegistrationFinish {
            username: username.to_owned(),
            registration_record: Bytes(finish.message.serialize().to_vec()),
            key_stretching: ksf.into(),
        };
        let _: serde_json::Value = self.post("api/register/finish", &done).await?;
        Ok(())
    }

    /// OPAQUE login over REST: start, finish, and the confirmation opened into the session.
    pub async fn login(&self, username: &str, password: &str) -> Result<BenchLogin, OpError> {
        let password = normalize_password(password);
        let start = ClientLogin::<BenchSuite>::start(&mut OsRng, password.as_bytes())
            .map_err(|_| OpError::new("login_start"))?;
        let ke1 = start.message.serialize().to_vec();
        let msg = LoginStart {
            username: username.to_owned(),
            ke1: Bytes(ke1.clone()),
        };
        let challenge: LoginChallenge = self.post("api/login/start", &msg).await?;
        let ksf = challenge.key_stretching.params();
        self.check_challenge(&ksf, &challenge.server_public_key)?;
        let response = CredentialResponse::<BenchSuite>::deserialize(challenge.ke2.as_slice())
            .map_err(|_| OpError::new("invalid_ke2"))?;
        let stretch = CachingKsf::new(ksf);
        let result = start
            .state
            .finish(
                &mut OsRng,
                password.as_bytes(),
                response,
                ClientLoginFinishParameters::new(None, Identifiers::default(), Some(&stretch)),
            )
            .map_err(|_| OpError::new("authentication_failed"))?;
        if result.server_s_pk.serialize().as_slice() != self.pinned.as_slice() {
            return Err(OpError::new("server_key_mismatch"));
        }
        let ke3 = result.message.serialize().to_vec();
        let th = transcript_hash(&challenge.login_id, &ke1, challenge.ke2.as_slice(), &ke3);
        let key = confirmation_key(th, &result.session_key);
        let finish = LoginFinish {
            login_id: challenge.login_id.clone(),
            ke3: Bytes(ke3),
            device_key_id: None,
            device_signature: None,
        };
        let confirmation: LoginConfirmation = self.post("api/login/finish", &finish).await?;
        if confirmation.login_id != challenge.login_id {
            return Err(OpError::new("confirmation_invalid"));
        }
        let payload = open_confirmation(&key, &th, confirmation.sealed.as_slice())
            .ok_or_else(|| OpError::new("confirmation_invalid"))?;
        let session: SessionIssued =
            serde_json::from_slice(&payload).map_err(|_| OpError::new("confirmation_payload"))?;
        let mut export_key = [0u8; 64];
        export_key.copy_from_slice(&result.export_key);
        Ok(BenchLogin {
            session,
            export_key,
        })
    }
}

const TRANSCRIPT_LABEL: &[u8] = b"sesame/v1/login";
const KEY_INFO: &[u8] = b"sesame/v1/login-confirmation";

/// docs/protocol.md §5.5: `SHA-256(lp(label) || lp(login_id) || lp(KE1) || lp(KE2) || lp(KE3))`.
fn transcript_hash(login_id: &str, ke1: &[u8], ke2: &[u8], ke3: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [TRANSCRIPT_LABEL, login_id.as_bytes(), ke1, ke2, ke3] {
        h.update((part.len() as u32).to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

fn confirmation_key(th: [u8; 32], session_key: &[u8]) -> [u8; 32] {
    let mut key = [0u8; 32];
    // 32 bytes is always a valid HKDF-SHA256 output length.
    let _ = Hkdf::<Sha256>::new(Some(&th), session_key).expand(KEY_INFO, &mut key);
    key
}

fn open_confirmation(key: &[u8; 32], th: &[u8; 32], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < 12 + 16 {
        return None;
    }
    let (nonce, ct) = sealed.split_at(12);
    ChaCha20Poly1305::new(Key::from_slice(key))
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: th })
        .ok()
}
