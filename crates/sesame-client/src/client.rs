//! [`Client`]: registration, login and the session routes over HTTP.

use std::fmt;
use std::time::Duration;

use rand_core::OsRng;
use reqwest::{RequestBuilder, Url};
use serde::de::DeserializeOwned;
use sesame_proto::b64::Bytes;
use sesame_proto::client::{
    self as proto, ClientLoginFinished, ClientPolicy, ExpectLoginChallenge, ExpectLoginConfirmation,
};
use sesame_proto::messages::{LoginChallenge, LoginConfirmation};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::account::{parse_login_payload, Confirmed, LoginOutcome, PasswordLogin, PendingLogin};
use crate::api::{Me, Refreshed, Registered, ServerInfo, SessionInfo, SessionIssued, SessionList};
use crate::error::{Error, Result};
use sesame_api::auth::PasswordLoginRequest;
use sesame_api::messaging::{DeviceCreated, NewDevice, RequireDevice};
use sesame_api::sessions::{RefreshRequest, Revoked};

pub(crate) use crate::answer::{checked, error_from_body, from_detail, retry_after};

/// How long one HTTP request, or one WebSocket step, may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The `User-Agent` this library sends.
pub const USER_AGENT: &str = concat!("sesame-client/", env!("CARGO_PKG_VERSION"));

/// A client of one Sesame server.
///
/// Cheap to clone (the HTTP connection pool is shared). Every method that runs the OPAQUE
/// key stretching (Argon2id) does so on Tokio's blocking pool, so none of them stalls the
/// runtime.
///
/// # Pinning the server key
///
/// The [`ClientPolicy`] carries the server key pinned for this server, if any. A server that
/// presents another key is refused with [`Error::ServerKeyMismatch`] before the password is
/// used. When nothing is pinned, [`Client::register`] and [`Client::login`] return the key
/// the exchange authenticated so the caller can pin it (trust on first use; see
/// [`crate::profile::Profile::trust_server`]).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    server_id: String,
    policy: ClientPolicy,
    timeout: Duration,
    /// The device key that signs every OPAQUE login (id registered with the server, key).
    device: Option<std::sync::Arc<(String, ed25519_dalek::SigningKey)>>,
    /// The TLS verification of [`Client::with_tls`] (HTTPS and WSS); `None`: the default.
    pub(crate) tls: Option<crate::tls::TlsOptions>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.server_id)
            .field("policy", &self.policy)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The outcome of a client-side [`Client::register`].
pub struct Registration {
    /// What the server stored.
    pub registered: Registered,
    /// OPAQUE's export key: known to this client only and the same after every login with
    /// this password; the root of client-side encryption keys.
    pub export_key: Zeroizing<[u8; 64]>,
    /// The server's public key (32 bytes): pin it if nothing was pinned yet.
    pub server_public_key: [u8; 32],
}

impl Registration {
    /// The fingerprint of [`Registration::server_public_key`] (`SHA256:…`).
    pub fn server_fingerprint(&self) -> String {
        sesame_proto::fingerprint(&self.server_public_key)
    }
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("registered", &self.registered)
            .field("export_key", &"<redacted>")
            .field("server_fingerprint", &self.server_fingerprint())
            .finish()
    }
}

/// The outcome of an OPAQUE login ([`Client::login`], [`Client::login_ws`]).
pub struct Login {
    /// The session the server issued.
    pub session: SessionIssued,
    /// OPAQUE's export key (the one registration produced).
    pub export_key: Zeroizing<[u8; 64]>,
    /// The server's public key (32 bytes), authenticated by the password: pin it if nothing
    /// was pinned yet.
    pub server_public_key: [u8; 32],
}

impl Login {
    /// The fingerprint of [`Login::server_public_key`] (`SHA256:…`).
    pub fn server_fingerprint(&self) -> String {
        sesame_proto::fingerprint(&self.server_public_key)
    }
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("session", &self.session)
            .field("export_key", &"<redacted>")
            .field("server_fingerprint", &self.server_fingerprint())
            .finish()
    }
}

/// Parses a server URL into the base every route is joined to (path ending in `/`).
///
/// Only `http` and `https` are accepted; query and fragment are dropped.
pub fn parse_server_url(url: &str) -> Result<Url> {
    let invalid = |reason: &str| Error::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let url_text = url.trim();
    // `127.0.0.1:7878` or `example.com`: plain HTTP is meant (a scheme is added, as a browser
    // would). Anything with `://` keeps its scheme.
    let with_scheme = if url_text.contains("://") {
        url_text.to_owned()
    } else {
        format!("http://{url_text}")
    };
    let mut base = Url::parse(&with_scheme).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if base.host_str().is_none() {
        return Err(invalid("the URL has no host"));
    }
    if !base.username().is_empty() || base.password().is_some() {
        return Err(invalid("credentials in the URL are not supported"));
    }
    base.set_query(None);
    base.set_fragment(None);
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    Ok(base)
}

/// The canonical name of a server: its base URL without the trailing `/`, e.g.
/// `http://127.0.0.1:7878` or `https://example.com/sesame`. The profile store keys pinned
/// keys and sessions by it.
pub fn server_id(url: &str) -> Result<String> {
    Ok(id_of(&parse_server_url(url)?))
}

fn id_of(base: &Url) -> String {
    base.as_str().trim_end_matches('/').to_owned()
}

impl Client {
    /// A client of the server at `base_url` (e.g. `http://127.0.0.1:7878`), with
    /// [`DEFAULT_TIMEOUT`] per request and redirects disabled.
    pub fn new(base_url: &str, policy: ClientPolicy) -> Result<Client> {
        let http = crate::tls::http_builder(None).build()?;
        Client::with_http_client(base_url, policy, http)
    }

    /// A client that sends its HTTP requests through `http` (for custom TLS roots, proxies or
    /// timeouts). Following redirects is not recommended: the API never redirects.
    pub fn with_http_client(
        base_url: &str,
        policy: ClientPolicy,
        http: reqwest::Client,
    ) -> Result<Client> {
        let base = parse_server_url(base_url)?;
        Ok(Client {
            http,
            server_id: id_of(&base),
            base,
            policy,
            timeout: DEFAULT_TIMEOUT,
            device: None,
            tls: None,
        })
    }

    /// Signs every OPAQUE login's challenge with this device key (registered with the
    /// server as `id`), for accounts that require a device key at login.
    pub fn with_device_key(mut self, id: String, key: ed25519_dalek::SigningKey) -> Client {
        self.device = Some(std::sync::Arc::new((id, key)));
        self
    }

    /// Sets how long each step of the WebSocket login may take (HTTP timeouts are those of
    /// the `reqwest::Client`).
    pub fn with_ws_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// The base URL routes are joined to (ends in `/`).
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The canonical server name (see [`server_id`]).
    pub fn server_id(&self) -> &str {
        &self.server_id
    }

    /// The policy: key-stretching bounds and the pinned server key.
    pub fn policy(&self) -> &ClientPolicy {
        &self.policy
    }

    /// Pins `key` (or un-pins with `None`) for the following calls.
    pub fn set_pinned_server_key(&mut self, key: Option<[u8; 32]>) {
        self.policy.pinned_server_key = key;
    }

    /// `GET /.well-known/sesame`: the server's self-description (unauthenticated).
    pub async fn server_info(&self) -> Result<ServerInfo> {
        self.send_json(self.http.get(self.url(".well-known/sesame")?))
            .await
    }

    /// `GET /healthz`: succeeds when the server reports `ok`.
    pub async fn health(&self) -> Result<()> {
        let body: serde_json::Value = self.send_json(self.http.get(self.url("healthz")?)).await?;
        match body.get("status").and_then(|s| s.as_str()) {
            Some("ok") => Ok(()),
            _ => Err(Error::UnexpectedResponse(format!(
                "healthz answered {body}"
            ))),
        }
    }

    /// Logs in with OPAQUE over REST (`/api/login/start`, `/api/login/finish`) and opens the
    /// server's confirmation, which carries the session, or, when the account has a second
    /// factor, the ticket for it ([`LoginOutcome::SecondFactor`]).
    ///
    /// A wrong password is detected here, before anything but KE1 was sent, and returns
    /// [`Error::AuthenticationFailed`], as does an unknown user.
    pub async fn login(&self, username: &str, password: &str) -> Result<LoginOutcome> {
        let (state, start) = proto::start_login(&mut OsRng, username, password)?;
        let challenge: LoginChallenge = self
            .send_json(self.http.post(self.url("api/login/start")?).json(&start))
            .await?;
        let done = self.finish_login(state, challenge).await?;
        let confirmation: LoginConfirmation = self
            .send_json(
                self.http
                    .post(self.url("api/login/finish")?)
                    .json(&done.message),
            )
            .await?;
        Ok(match open_confirmation(done.confirmation, &confirmation)? {
            Confirmed::Session(session) => LoginOutcome::Session(Login {
                session,
                export_key: done.export_key,
                server_public_key: done.server_public_key,
            }),
            Confirmed::SecondFactor(required) => LoginOutcome::SecondFactor(PendingLogin::new(
                self.clone(),
                required,
                done.export_key,
                done.server_public_key,
                None,
            )),
        })
    }

    /// Logs in with the server-assisted path (`POST /api/login`): the password is sent to the
    /// server. Prefer [`Client::login`]; nothing authenticates the server key here. An
    /// account with a second factor answers [`PasswordLogin::SecondFactor`]: finish with
    /// [`Client::second_factor`].
    pub async fn login_password(&self, username: &str, password: &str) -> Result<PasswordLogin> {
        let body: serde_json::Value = self
            .send_json(
                self.http
                    .post(self.url("api/login")?)
                    .json(&password_body(username, password)),
            )
            .await?;
        let bytes = serde_json::to_vec(&body).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(match parse_login_payload(&bytes)? {
            Confirmed::Session(s) => PasswordLogin::Session(s),
            Confirmed::SecondFactor(r) => PasswordLogin::SecondFactor(r),
        })
    }

    /// Exchanges a session token for a fresh access token. A revoked or expired session
    /// answers 401 `session_invalid` (see [`Error::is_unauthorized`]).
    pub async fn refresh(&self, session_token: &str) -> Result<Refreshed> {
        self.send_json(
            self.http
                .post(self.url("api/session/refresh")?)
                .json(&RefreshRequest {
                    session_token: session_token.to_owned(),
                }),
        )
        .await
    }

    /// `GET /api/me`: the account behind `access_token`.
    pub async fn me(&self, access_token: &str) -> Result<Me> {
        self.send_json(self.http.get(self.url("api/me")?).bearer_auth(access_token))
            .await
    }

    /// `GET /api/sessions`: the account's live sessions.
    pub async fn sessions(&self, access_token: &str) -> Result<Vec<SessionInfo>> {
        let list: SessionList = self
            .send_json(
                self.http
                    .get(self.url("api/sessions")?)
                    .bearer_auth(access_token),
            )
            .await?;
        Ok(list.sessions)
    }

    /// `DELETE /api/sessions/{id}`: revokes one of the account's sessions (404
    /// `session_not_found` if it is not one of them).
    pub async fn revoke_session(&self, access_token: &str, id: Uuid) -> Result<()> {
        self.send_empty(
            self.http
                .delete(self.url(&format!("api/sessions/{id}"))?)
                .bearer_auth(access_token),
        )
        .await
    }

    /// `POST /api/logout`: revokes the session of `access_token`.
    pub async fn logout(&self, access_token: &str) -> Result<()> {
        self.send_empty(
            self.http
                .post(self.url("api/logout")?)
                .bearer_auth(access_token),
        )
        .await
    }

    /// `POST /api/logout-all`: revokes every session of the account; returns how many.
    pub async fn logout_all(&self, access_token: &str) -> Result<u64> {
        let count: Revoked = self
            .send_json(
                self.http
                    .post(self.url("api/logout-all")?)
                    .bearer_auth(access_token),
            )
            .await?;
        Ok(count.revoked)
    }

    /// The URL of a route, `path` relative to the base (no leading `/`).
    pub(crate) fn url(&self, path: &str) -> Result<Url> {
        self.base.join(path).map_err(|e| Error::InvalidUrl {
            url: format!("{}{path}", self.base),
            reason: e.to_string(),
        })
    }

    pub(crate) fn ws_timeout(&self) -> Duration {
        self.timeout
    }

    /// The HTTP client requests go through.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Refuses a server key other than the pinned one, naming both fingerprints.
    pub(crate) fn check_pin(&self, announced: &Bytes) -> Result<()> {
        match &self.policy.pinned_server_key {
            Some(pin) if pin.as_slice() != announced.as_slice() => Err(Error::ServerKeyMismatch {
                server: self.server_id.clone(),
                pinned: sesame_proto::fingerprint(pin),
                presented: sesame_proto::fingerprint(announced.as_slice()),
            }),
            _ => Ok(()),
        }
    }

    /// Login step 3: checks the pin, then stretches the password off the runtime.
    pub(crate) async fn finish_login(
        &self,
        state: ExpectLoginChallenge,
        challenge: LoginChallenge,
    ) -> Result<ClientLoginFinished> {
        self.check_pin(&challenge.server_public_key)?;
        let policy = self.policy;
        let device = self.device.clone();
        blocking(move || {
            let mut done = state.finish(&mut OsRng, &challenge, &policy)?;
            if let Some(device) = device {
                let (id, key) = device.as_ref();
                let sig = sesame_proto::device::sign_device_login(
                    key,
                    &challenge.login_id,
                    challenge.ke2.as_slice(),
                );
                done.message.device_key_id = Some(id.clone());
                done.message.device_signature = Some(sesame_proto::b64::Bytes(sig.to_vec()));
            }
            Ok(done)
        })
        .await
    }

    /// Registers a device public key for login signatures; returns its id. Needs a fresh
    /// authentication.
    pub async fn add_device(
        &self,
        access_token: &str,
        name: &str,
        public_key: &[u8; 32],
    ) -> Result<String> {
        let body = NewDevice {
            name: name.to_owned(),
            public_key: sesame_proto::b64::encode(public_key),
        };
        let created: DeviceCreated = self
            .send_json(
                self.http
                    .post(self.url("api/devices")?)
                    .bearer_auth(access_token)
                    .json(&body),
            )
            .await?;
        Ok(created.id)
    }

    /// Turns the device-key requirement at login on or off. Needs a fresh authentication.
    pub async fn set_device_required(&self, access_token: &str, required: bool) -> Result<()> {
        let req = self
            .http
            .put(self.url("api/2fa/device")?)
            .bearer_auth(access_token)
            .json(&RequireDevice { required });
        checked(req.send().await?).await?;
        Ok(())
    }

    pub(crate) async fn send_json<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T> {
        let resp = checked(req.send().await?).await?;
        let url = resp.url().path().to_owned();
        let body = resp.bytes().await?;
        serde_json::from_slice(&body)
            .map_err(|e| Error::UnexpectedResponse(format!("{url}: malformed body: {e}")))
    }

    pub(crate) async fn send_empty(&self, req: RequestBuilder) -> Result<()> {
        checked(req.send().await?).await.map(drop)
    }
}

/// Opens the confirmation and reads what it carries: the [`SessionIssued`], or the ticket
/// for the second factor.
pub(crate) fn open_confirmation(
    state: ExpectLoginConfirmation,
    confirmation: &LoginConfirmation,
) -> Result<Confirmed> {
    let payload = state
        .open(confirmation)
        .map_err(|_| Error::ConfirmationInvalid)?;
    parse_login_payload(&payload)
}

/// Runs a protocol step that stretches a password on the blocking pool.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, sesame_proto::Error> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("key-stretching task failed: {e}")))?
        .map_err(Error::from)
}

/// The body of the server-assisted routes (`/api/register`, `/api/login`).
pub(crate) fn password_body(username: &str, password: &str) -> PasswordLoginRequest {
    PasswordLoginRequest {
        username: username.to_owned(),
        password: Zeroizing::new(password.to_owned()),
    }
}

#[cfg(test)]
mod tests;
