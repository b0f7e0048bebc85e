//! Second factors, re-authentication, protected operations and account recovery.
//!
//! * **Login with a second factor.** When the account has TOTP, the password proof alone does
//!   not make a session: [`Client::login`] and [`Client::login_ws`] return
//!   [`LoginOutcome::SecondFactor`] with a [`PendingLogin`], and the session comes from
//!   [`PendingLogin::submit`] with a TOTP code or a backup code (a wrong code may be retried).
//!   The server-assisted [`Client::login_password`] returns [`PasswordLogin`], finished with
//!   [`Client::second_factor`].
//! * **Fresh authentication.** The sensitive routes (TOTP on and off, backup codes, password,
//!   security questions, deleting the account) need a login or a re-authentication within
//!   the last few minutes; otherwise they fail with `reauthentication_required`
//!   ([`Error::is_reauthentication_required`]). Re-authenticate with OPAQUE
//!   ([`Client::reauth`]) and retry.
//! * **Password change** ([`Client::change_password`]) is client-side OPAQUE: the new password
//!   never leaves the process, and the result carries the old and the new export key so that
//!   whatever was encrypted under the old one can be re-wrapped.
//! * **Recovery** ([`Client::recover_start`], [`Client::recover_finish`]) sets a new
//!   client-side OPAQUE record after proving a backup code, an emailed code (plus a TOTP or
//!   backup code when the account has TOTP), or a TOTP code plus two security answers.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use futures_util::SinkExt as _;
use rand_core::OsRng;
use reqwest::RequestBuilder;
use serde::{Deserialize, Serialize};
use sesame_proto::client::{
    self as proto, ClientRegistrationFinished, ExpectRegistrationChallenge,
};
use sesame_proto::messages::{LoginChallenge, LoginConfirmation, RegistrationChallenge};
use sesame_proto::policy::{check_password, Username};
use sesame_proto::KeyStretching;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::api::SessionIssued;
use crate::client::{blocking, Client, Login};
use crate::error::{Error, Result};

/// The WebSocket of a login waiting for its second factor.
pub(crate) type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How often [`PendingLogin::keep_alive_while`] pings the server.
const KEEPALIVE: Duration = Duration::from_secs(10);

/// What the server answers instead of a session when the account has a second factor: the
/// body of `POST /api/login`, or the sealed payload of the OPAQUE confirmation.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondFactorRequired {
    /// Always `true`.
    #[serde(default)]
    pub second_factor_required: bool,
    /// The ticket to present with the code. Secret.
    pub mfa_token: String,
    /// The kinds of code the server accepts (`totp`, `backup_code`).
    #[serde(default)]
    pub methods: Vec<String>,
    /// Seconds the ticket stays valid.
    #[serde(default)]
    pub expires_in: u64,
}

impl fmt::Debug for SecondFactorRequired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecondFactorRequired")
            .field("mfa_token", &"<redacted>")
            .field("methods", &self.methods)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// What a verified password leads to, as the server says it.
pub(crate) enum Confirmed {
    Session(SessionIssued),
    SecondFactor(SecondFactorRequired),
}

/// Reads a login answer: a [`SecondFactorRequired`] (`"second_factor_required": true`) or a
/// [`SessionIssued`].
pub(crate) fn parse_login_payload(bytes: &[u8]) -> Result<Confirmed> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::UnexpectedResponse(format!("the login answer is not JSON: {e}")))?;
    if value.get("second_factor_required") == Some(&serde_json::Value::Bool(true)) {
        let required = serde_json::from_value(value)
            .map_err(|e| Error::UnexpectedResponse(format!("malformed second-factor step: {e}")))?;
        return Ok(Confirmed::SecondFactor(required));
    }
    serde_json::from_value(value)
        .map(Confirmed::Session)
        .map_err(|e| Error::UnexpectedResponse(format!("the login does not carry a session: {e}")))
}

/// The outcome of an OPAQUE login ([`Client::login`], [`Client::login_ws`]).
#[derive(Debug)]
pub enum LoginOutcome {
    /// Logged in.
    Session(Login),
    /// The password was right and the server is authenticated, but the account needs a
    /// second factor: finish with [`PendingLogin::submit`].
    SecondFactor(PendingLogin),
}

impl LoginOutcome {
    /// The login, or [`Error::SecondFactorRequired`] when the account needs a second factor
    /// (for callers that do not handle one).
    pub fn into_login(self) -> Result<Login> {
        match self {
            LoginOutcome::Session(login) => Ok(login),
            LoginOutcome::SecondFactor(_) => Err(Error::SecondFactorRequired),
        }
    }

    /// The server's public key, authenticated by the password in both cases: pin it if
    /// nothing was pinned yet.
    pub fn server_public_key(&self) -> &[u8; 32] {
        match self {
            LoginOutcome::Session(login) => &login.server_public_key,
            LoginOutcome::SecondFactor(pending) => &pending.server_public_key,
        }
    }
}

/// A login waiting for its second factor (a TOTP code or a backup code).
///
/// Over REST it holds the ticket; over the WebSocket it also holds the open connection, which
/// the server closes when no frame arrives for 30 seconds: while asking a person for the code,
/// wrap the wait in [`PendingLogin::keep_alive_while`].
pub struct PendingLogin {
    client: Client,
    required: SecondFactorRequired,
    export_key: Zeroizing<[u8; 64]>,
    server_public_key: [u8; 32],
    ws: Option<Box<WsStream>>,
}

impl fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingLogin")
            .field("required", &self.required)
            .field("websocket", &self.ws.is_some())
            .finish_non_exhaustive()
    }
}

impl PendingLogin {
    pub(crate) fn new(
        client: Client,
        required: SecondFactorRequired,
        export_key: Zeroizing<[u8; 64]>,
        server_public_key: [u8; 32],
        ws: Option<Box<WsStream>>,
    ) -> PendingLogin {
        PendingLogin {
            client,
            required,
            export_key,
            server_public_key,
            ws,
        }
    }

    /// The second-factor ticket. Secret.
    pub fn mfa_token(&self) -> &str {
        &self.required.mfa_token
    }

    /// The kinds of code the server accepts (`totp`, `backup_code`).
    pub fn methods(&self) -> &[String] {
        &self.required.methods
    }

    /// Seconds the ticket was valid for when the server issued it.
    pub fn expires_in(&self) -> u64 {
        self.required.expires_in
    }

    /// The server's public key (authenticated by the password already).
    pub fn server_public_key(&self) -> &[u8; 32] {
        &self.server_public_key
    }

    /// Whether the login runs over the WebSocket.
    pub fn is_websocket(&self) -> bool {
        self.ws.is_some()
    }

    /// Sends a TOTP code or a backup code and returns the login.
    ///
    /// A wrong code fails with the server error `invalid_code` and may be retried (the server
    /// allows a few tries per ticket); `mfa_expired` means the ticket is gone: log in again.
    pub async fn submit(&mut self, code: &str) -> Result<Login> {
        let code = code.trim();
        let session = match self.ws.as_deref_mut() {
            Some(ws) => {
                self.client
                    .ws_second_factor(ws, &self.required, code)
                    .await?
            }
            None => {
                self.client
                    .second_factor(&self.required.mfa_token, code)
                    .await?
            }
        };
        if let Some(mut ws) = self.ws.take() {
            let _ = tokio::time::timeout(self.client.ws_timeout(), WsStream::close(&mut ws, None))
                .await;
        }
        Ok(Login {
            session,
            export_key: self.export_key.clone(),
            server_public_key: self.server_public_key,
        })
    }

    /// Runs `fut` (typically: asking a person for the code) while keeping the WebSocket
    /// alive with pings. Over REST it just runs `fut`.
    pub async fn keep_alive_while<F: Future>(&mut self, fut: F) -> F::Output {
        let Some(ws) = self.ws.as_deref_mut() else {
            return fut.await;
        };
        tokio::pin!(fut);
        let mut tick = tokio::time::interval(KEEPALIVE);
        tick.tick().await; // the first tick is immediate
        loop {
            tokio::select! {
                out = &mut fut => return out,
                _ = tick.tick() => {
                    // A failed ping shows up as an error at the next submit.
                    let _ = ws.send(Message::Ping(Vec::new().into())).await;
                }
            }
        }
    }

    /// Gives up: closes the WebSocket, if any. The ticket expires by itself.
    pub async fn cancel(mut self) {
        if let Some(mut ws) = self.ws.take() {
            let _ = tokio::time::timeout(self.client.ws_timeout(), WsStream::close(&mut ws, None))
                .await;
        }
    }
}

/// The outcome of a server-assisted login ([`Client::login_password`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordLogin {
    /// Logged in.
    Session(SessionIssued),
    /// The account needs a second factor: finish with [`Client::second_factor`].
    SecondFactor(SecondFactorRequired),
}

impl PasswordLogin {
    /// The session, or [`Error::SecondFactorRequired`].
    pub fn into_session(self) -> Result<SessionIssued> {
        match self {
            PasswordLogin::Session(s) => Ok(s),
            PasswordLogin::SecondFactor(_) => Err(Error::SecondFactorRequired),
        }
    }
}

/// A successful re-authentication ([`Client::reauth`]).
pub struct Reauthenticated {
    /// Seconds the session now counts as freshly authenticated.
    pub expires_in: u64,
    /// OPAQUE's export key for the current password.
    pub export_key: Zeroizing<[u8; 64]>,
    /// The server's public key, authenticated by the password.
    pub server_public_key: [u8; 32],
}

impl fmt::Debug for Reauthenticated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reauthenticated")
            .field("expires_in", &self.expires_in)
            .field("export_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A changed password ([`Client::change_password`], [`Client::set_password`]).
pub struct PasswordChanged {
    /// The server's message.
    pub message: String,
    /// How many other sessions were revoked.
    pub revoked_sessions: u64,
    /// OPAQUE's export key for the **new** password (what logins now produce).
    pub export_key: Zeroizing<[u8; 64]>,
    /// The export key of the **old** password, when this call re-authenticated with it
    /// ([`Client::change_password`]): what client-side secrets were wrapped with until now.
    pub previous_export_key: Option<Zeroizing<[u8; 64]>>,
    /// The server's public key.
    pub server_public_key: [u8; 32],
}

impl fmt::Debug for PasswordChanged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordChanged")
            .field("message", &self.message)
            .field("revoked_sessions", &self.revoked_sessions)
            .field("export_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// `POST /api/generate-qr`: a pending TOTP secret, to confirm with
/// [`Client::enable_authenticator`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TotpEnrolment {
    /// The server's message.
    #[serde(default)]
    pub message: String,
    /// The base32 secret, for typing into an authenticator app. Secret.
    pub secret: String,
    /// The `otpauth://totp/…` URI (what the QR code encodes). Secret.
    pub otpauth_url: String,
    /// The QR code as `data:image/png;base64,…`.
    #[serde(default)]
    pub qr_code_url: String,
}

impl fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpEnrolment")
            .field("message", &self.message)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The public profile fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Display name (at most 64 characters).
    #[serde(default)]
    pub display_name: Option<String>,
    /// Free text (at most 500 characters).
    #[serde(default)]
    pub bio: Option<String>,
    /// An `https://` picture URL.
    #[serde(default)]
    pub picture_url: Option<String>,
}

/// A profile change ([`Client::update_profile`]): `None` leaves a field alone, `Some(None)`
/// clears it, `Some(Some(v))` sets it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProfileUpdate {
    /// New display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<Option<String>>,
    /// New bio.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bio: Option<Option<String>>,
    /// New picture URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picture_url: Option<Option<String>>,
}

impl ProfileUpdate {
    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        self.display_name.is_none() && self.bio.is_none() && self.picture_url.is_none()
    }
}

/// `GET /api/me` in full: the account, its profile and the state of its factors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The account's id.
    pub user_id: Uuid,
    /// The canonical username.
    pub username: String,
    /// `active`, `pending` (email not verified) or `banned`.
    pub status: String,
    /// When the account was created (Unix seconds).
    pub created_at: i64,
    /// When the account last logged in.
    #[serde(default)]
    pub last_login_at: Option<i64>,
    /// The public profile.
    #[serde(default)]
    pub profile: Profile,
    /// Whether logins need a TOTP code.
    #[serde(default)]
    pub totp_enabled: bool,
    /// Unused backup codes left.
    #[serde(default)]
    pub backup_codes_left: u64,
    /// How many security questions are set.
    #[serde(default)]
    pub security_questions: u64,
    /// The email address, if any.
    #[serde(default)]
    pub email: Option<String>,
}

/// One security question and its answer ([`Client::set_security_questions`]).
#[derive(Clone)]
pub struct QuestionAnswer {
    /// The question (from [`Client::security_questions_catalog`] or the user's own).
    pub question: String,
    /// The answer; the server normalises case and whitespace.
    pub answer: Zeroizing<String>,
}

impl fmt::Debug for QuestionAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuestionAnswer")
            .field("question", &self.question)
            .field("answer", &"<redacted>")
            .finish()
    }
}

/// An open recovery ([`Client::recover_start`]): show [`RecoveryStarted::questions`] when
/// recovering with a TOTP code and answers, then [`Client::recover_finish`].
pub struct RecoveryStarted {
    /// The recovery's id.
    pub recovery_id: String,
    /// The account's security questions, in order (stand-ins for accounts without any, so
    /// they do not tell whether the account exists).
    pub questions: Vec<String>,
    /// Seconds the recovery stays open.
    pub expires_in: u64,
    /// The server's message (whether a code may have been mailed).
    pub message: String,
    username: String,
    state: ExpectRegistrationChallenge,
    challenge: RegistrationChallenge,
}

impl fmt::Debug for RecoveryStarted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoveryStarted")
            .field("questions", &self.questions)
            .field("expires_in", &self.expires_in)
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

/// What proves the right to recover: a backup code; or an emailed code (plus a TOTP or a
/// backup code when the account has TOTP); or a TOTP code plus answers to at least two of the
/// security questions.
#[derive(Clone, Default, Serialize)]
pub struct RecoveryProof {
    /// A backup code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_code: Option<String>,
    /// The code mailed by [`Client::recover_start`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_code: Option<String>,
    /// A TOTP code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totp_code: Option<String>,
    /// Answers to [`RecoveryStarted::questions`], in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answers: Option<Vec<String>>,
}

impl fmt::Debug for RecoveryProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoveryProof")
            .field(
                "backup_code",
                &self.backup_code.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "email_code",
                &self.email_code.as_ref().map(|_| "<redacted>"),
            )
            .field("totp_code", &self.totp_code.as_ref().map(|_| "<redacted>"))
            .field("answers", &self.answers.as_ref().map(Vec::len))
            .finish()
    }
}

/// A finished recovery.
pub struct Recovered {
    /// The server's message.
    pub message: String,
    /// The fresh backup codes (the old ones no longer work): show them once.
    pub backup_codes: Vec<String>,
    /// OPAQUE's export key for the new password.
    pub export_key: Zeroizing<[u8; 64]>,
    /// The server's public key, as the new record binds it.
    pub server_public_key: [u8; 32],
}

impl fmt::Debug for Recovered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recovered")
            .field("message", &self.message)
            .field("backup_codes", &self.backup_codes.len())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct MessageBody {
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct BackupCodes {
    #[serde(rename = "backupCodes")]
    backup_codes: Vec<String>,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct ProfileBody {
    profile: Profile,
}

#[derive(Deserialize)]
struct Catalog {
    questions: Vec<String>,
}

#[derive(Deserialize)]
struct PasswordChangedBody {
    #[serde(default)]
    message: String,
    #[serde(default)]
    revoked_sessions: u64,
}

#[derive(Deserialize)]
struct ReauthPayload {
    reauthenticated: bool,
    #[serde(default)]
    expires_in: u64,
}

#[derive(Deserialize)]
struct RecoverStartedBody {
    recovery_id: String,
    #[serde(default)]
    questions: Vec<String>,
    registration_challenge: Option<RegistrationChallenge>,
    #[serde(default)]
    expires_in: u64,
    #[serde(default)]
    message: String,
}

impl Client {
    fn post(&self, path: &str, token: Option<&str>) -> Result<RequestBuilder> {
        let req = self.http().post(self.url(path)?);
        Ok(match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        })
    }

    /// `POST /api/login/second-factor`: finishes a login that asked for a second factor
    /// ([`PasswordLogin::SecondFactor`], or a REST [`PendingLogin`]) with a TOTP code or a
    /// backup code. A wrong code answers `invalid_code` and may be retried.
    pub async fn second_factor(&self, mfa_token: &str, code: &str) -> Result<SessionIssued> {
        let body = serde_json::json!({ "mfa_token": mfa_token, "code": code.trim() });
        self.send_json(self.post("api/login/second-factor", None)?.json(&body))
            .await
    }

    /// Re-authenticates the session of `access_token` with OPAQUE (`/api/reauth/start`,
    /// `/api/reauth/finish`), so the sensitive operations work for the next few minutes. The
    /// password never leaves the process; a wrong one is [`Error::AuthenticationFailed`].
    pub async fn reauth(
        &self,
        access_token: &str,
        username: &str,
        password: &str,
    ) -> Result<Reauthenticated> {
        let (state, start) = proto::start_login(&mut OsRng, username, password)?;
        let challenge: LoginChallenge = self
            .send_json(
                self.post("api/reauth/start", Some(access_token))?
                    .json(&start),
            )
            .await?;
        let done = self.finish_login(state, challenge).await?;
        let confirmation: LoginConfirmation = self
            .send_json(
                self.post("api/reauth/finish", Some(access_token))?
                    .json(&done.message),
            )
            .await?;
        let payload = done
            .confirmation
            .open(&confirmation)
            .map_err(|_| Error::ConfirmationInvalid)?;
        let payload: ReauthPayload = serde_json::from_slice(&payload).map_err(|e| {
            Error::UnexpectedResponse(format!("the re-authentication answer is malformed: {e}"))
        })?;
        if !payload.reauthenticated {
            return Err(Error::UnexpectedResponse(
                "the server did not confirm the re-authentication".into(),
            ));
        }
        Ok(Reauthenticated {
            expires_in: payload.expires_in,
            export_key: done.export_key,
            server_public_key: done.server_public_key,
        })
    }

    /// Re-authenticates with the password sent to the server (`POST /api/reauth`), for
    /// clients that cannot run OPAQUE; prefer [`Client::reauth`]. Returns the seconds the
    /// session counts as fresh.
    pub async fn reauth_password(&self, access_token: &str, password: &str) -> Result<u64> {
        let body: serde_json::Value = self
            .send_json(
                self.post("api/reauth", Some(access_token))?
                    .json(&serde_json::json!({ "password": password })),
            )
            .await?;
        Ok(body
            .get("expires_in")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or_default())
    }

    /// Changes the password with client-side OPAQUE: re-authenticates with
    /// `current_password` ([`Client::reauth`]), then stores a record for `new_password`
    /// ([`Client::set_password`]). The result carries both export keys.
    ///
    /// The new password is checked against the policy locally first ([`Error::Password`]).
    pub async fn change_password(
        &self,
        access_token: &str,
        username: &str,
        current_password: &str,
        new_password: &str,
        revoke_other_sessions: bool,
    ) -> Result<PasswordChanged> {
        check_password(new_password, &Username::parse(username)?)?;
        let reauth = self
            .reauth(access_token, username, current_password)
            .await?;
        let mut changed = self
            .set_password(access_token, username, new_password, revoke_other_sessions)
            .await?;
        changed.previous_export_key = Some(reauth.export_key);
        Ok(changed)
    }

    /// Stores a new client-side OPAQUE record for `new_password` (`/api/password/start`,
    /// `/api/password/finish`) on a freshly authenticated session (otherwise
    /// `reauthentication_required`). [`PasswordChanged::previous_export_key`] is `None`.
    pub async fn set_password(
        &self,
        access_token: &str,
        username: &str,
        new_password: &str,
        revoke_other_sessions: bool,
    ) -> Result<PasswordChanged> {
        check_password(new_password, &Username::parse(username)?)?;
        let (state, start) = proto::start_registration(&mut OsRng, username, new_password)?;
        let challenge: RegistrationChallenge = self
            .send_json(
                self.post("api/password/start", Some(access_token))?
                    .json(&start),
            )
            .await?;
        self.check_pin(&challenge.server_public_key)?;
        let policy = *self.policy();
        let done: ClientRegistrationFinished =
            blocking(move || state.finish(&mut OsRng, &challenge, &policy)).await?;
        let body = serde_json::json!({
            "registration": done.message,
            "revoke_other_sessions": revoke_other_sessions,
        });
        let answer: PasswordChangedBody = self
            .send_json(
                self.post("api/password/finish", Some(access_token))?
                    .json(&body),
            )
            .await?;
        Ok(PasswordChanged {
            message: answer.message,
            revoked_sessions: answer.revoked_sessions,
            export_key: done.export_key,
            previous_export_key: None,
            server_public_key: done.server_public_key,
        })
    }

    /// `POST /api/generate-qr`: starts TOTP enrolment (needs a fresh authentication).
    pub async fn generate_qr(&self, access_token: &str) -> Result<TotpEnrolment> {
        self.send_json(
            self.post("api/generate-qr", Some(access_token))?
                .json(&serde_json::json!({})),
        )
        .await
    }

    /// `POST /api/enable-authenticator`: confirms the enrolment with a code from the app;
    /// logins need a second factor from then on. A wrong code answers `invalid_code`.
    pub async fn enable_authenticator(&self, access_token: &str, code: &str) -> Result<String> {
        let body: MessageBody = self
            .send_json(
                self.post("api/enable-authenticator", Some(access_token))?
                    .json(&serde_json::json!({ "totpCode": code.trim() })),
            )
            .await?;
        Ok(body.message)
    }

    /// `POST /api/2fa/totp/disable`: turns TOTP off; needs a valid TOTP or backup code and a
    /// fresh authentication.
    pub async fn disable_authenticator(&self, access_token: &str, code: &str) -> Result<String> {
        let body: MessageBody = self
            .send_json(
                self.post("api/2fa/totp/disable", Some(access_token))?
                    .json(&serde_json::json!({ "totpCode": code.trim() })),
            )
            .await?;
        Ok(body.message)
    }

    /// `POST /api/backup-codes/regenerate`: a fresh set of backup codes (needs a fresh
    /// authentication); the old set stops working.
    pub async fn regenerate_backup_codes(&self, access_token: &str) -> Result<Vec<String>> {
        let body: BackupCodes = self
            .send_json(
                self.post("api/backup-codes/regenerate", Some(access_token))?
                    .json(&serde_json::json!({})),
            )
            .await?;
        Ok(body.backup_codes)
    }

    /// `GET /api/me` in full: the account, profile and factor state.
    pub async fn account(&self, access_token: &str) -> Result<Account> {
        self.send_json(
            self.http()
                .get(self.url("api/me")?)
                .bearer_auth(access_token),
        )
        .await
    }

    /// The public profile of the account (from `GET /api/me`).
    pub async fn profile(&self, access_token: &str) -> Result<Profile> {
        Ok(self.account(access_token).await?.profile)
    }

    /// `PUT /api/me`: changes the fields `update` names; returns the whole profile.
    pub async fn update_profile(
        &self,
        access_token: &str,
        update: &ProfileUpdate,
    ) -> Result<Profile> {
        let body: ProfileBody = self
            .send_json(
                self.http()
                    .put(self.url("api/me")?)
                    .bearer_auth(access_token)
                    .json(update),
            )
            .await?;
        Ok(body.profile)
    }

    /// `DELETE /api/me`: deletes the account and everything of it (needs a fresh
    /// authentication). Every session dies with it.
    pub async fn delete_account(&self, access_token: &str) -> Result<()> {
        self.send_empty(
            self.http()
                .delete(self.url("api/me")?)
                .bearer_auth(access_token),
        )
        .await
    }

    /// `GET /api/security-questions/catalog`: the questions the server suggests.
    pub async fn security_questions_catalog(&self) -> Result<Vec<String>> {
        let body: Catalog = self
            .send_json(self.http().get(self.url("api/security-questions/catalog")?))
            .await?;
        Ok(body.questions)
    }

    /// `PUT /api/security-questions`: replaces the account's questions (2 or 3; needs a fresh
    /// authentication).
    pub async fn set_security_questions(
        &self,
        access_token: &str,
        questions: &[QuestionAnswer],
    ) -> Result<()> {
        #[derive(Serialize)]
        struct Item<'a> {
            question: &'a str,
            answer: &'a str,
        }
        let items: Vec<Item<'_>> = questions
            .iter()
            .map(|q| Item {
                question: &q.question,
                answer: &q.answer,
            })
            .collect();
        self.send_empty(
            self.http()
                .put(self.url("api/security-questions")?)
                .bearer_auth(access_token)
                .json(&serde_json::json!({ "questions": items })),
        )
        .await
    }

    /// `POST /api/recover/start`: opens a recovery of `username` that will set `new_password`
    /// with client-side OPAQUE (the password never leaves the process). Checks the username
    /// and the password policy locally first. The answer looks the same for unknown users.
    pub async fn recover_start(
        &self,
        username: &str,
        new_password: &str,
    ) -> Result<RecoveryStarted> {
        let canonical = Username::parse(username)?;
        check_password(new_password, &canonical)?;
        let (state, start) = proto::start_registration(&mut OsRng, username, new_password)?;
        let body = serde_json::json!({
            "username": username,
            "registration_request": start.registration_request,
        });
        let started: RecoverStartedBody = self
            .send_json(self.post("api/recover/start", None)?.json(&body))
            .await?;
        let challenge = started.registration_challenge.ok_or_else(|| {
            Error::UnexpectedResponse("the recovery answer has no registration challenge".into())
        })?;
        self.check_pin(&challenge.server_public_key)?;
        Ok(RecoveryStarted {
            recovery_id: started.recovery_id,
            questions: started.questions,
            expires_in: started.expires_in,
            message: started.message,
            username: username.to_owned(),
            state,
            challenge,
        })
    }

    /// `POST /api/recover/finish`: proves the right to recover, sets the new record, and
    /// returns fresh backup codes. Every session of the account is revoked. A proof that
    /// does not check out is the server error `recovery_failed`.
    pub async fn recover_finish(
        &self,
        started: RecoveryStarted,
        proof: &RecoveryProof,
    ) -> Result<Recovered> {
        let RecoveryStarted {
            recovery_id,
            username,
            state,
            challenge,
            ..
        } = started;
        let policy = *self.policy();
        let done: ClientRegistrationFinished =
            blocking(move || state.finish(&mut OsRng, &challenge, &policy)).await?;
        debug_assert_eq!(done.message.username, username);
        let mut body = serde_json::to_value(proof)
            .map_err(|e| Error::Internal(format!("cannot encode the recovery proof: {e}")))?;
        body["recovery_id"] = serde_json::Value::String(recovery_id);
        body["registration_record"] = serde_json::to_value(&done.message.registration_record)
            .map_err(|e| Error::Internal(e.to_string()))?;
        body["key_stretching"] =
            serde_json::to_value::<&KeyStretching>(&done.message.key_stretching)
                .map_err(|e| Error::Internal(e.to_string()))?;
        let answer: BackupCodes = self
            .send_json(self.post("api/recover/finish", None)?.json(&body))
            .await?;
        Ok(Recovered {
            message: answer.message,
            backup_codes: answer.backup_codes,
            export_key: done.export_key,
            server_public_key: done.server_public_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_answers_are_told_apart() {
        let step = br#"{"second_factor_required":true,"mfa_token":"mfa_x","methods":["totp","backup_code"],"expires_in":300,"message":"Second factor required."}"#;
        match parse_login_payload(step).unwrap() {
            Confirmed::SecondFactor(r) => {
                assert_eq!(r.mfa_token, "mfa_x");
                assert_eq!(r.methods, ["totp", "backup_code"]);
                assert_eq!(r.expires_in, 300);
                assert!(!format!("{r:?}").contains("mfa_x"));
            }
            Confirmed::Session(_) => panic!("not a session"),
        }
        let session = br#"{"user_id":"6f1b0c1e-8a53-4b57-9d0f-2c1d2a9e6b11","username":"alice",
            "session_id":"0d6e2b4c-1b5e-4a8f-a0a4-46b3c1f0e2d9","session_token":"s",
            "access_token":"a","token_type":"Bearer","expires_in":900,"session_expires_at":1}"#;
        assert!(matches!(
            parse_login_payload(session).unwrap(),
            Confirmed::Session(_)
        ));
        assert!(parse_login_payload(br#"{"reauthenticated":true}"#).is_err());
        assert!(parse_login_payload(b"not json").is_err());
    }

    #[test]
    fn profile_updates_send_only_what_changes() {
        let update = ProfileUpdate {
            display_name: Some(Some("Alice".into())),
            bio: Some(None),
            picture_url: None,
        };
        assert_eq!(
            serde_json::to_string(&update).unwrap(),
            r#"{"display_name":"Alice","bio":null}"#
        );
        assert!(ProfileUpdate::default().is_empty());
    }

    #[test]
    fn recovery_proofs_send_only_what_is_given_and_hide_it_in_debug() {
        let proof = RecoveryProof {
            totp_code: Some("123456".into()),
            answers: Some(vec!["rex".into(), "paris".into()]),
            ..RecoveryProof::default()
        };
        assert_eq!(
            serde_json::to_string(&proof).unwrap(),
            r#"{"totp_code":"123456","answers":["rex","paris"]}"#
        );
        let debug = format!("{proof:?}");
        assert!(
            !debug.contains("123456") && !debug.contains("rex"),
            "{debug}"
        );
    }

    #[test]
    fn account_reads_the_full_me_body() {
        let body = r#"{"user_id":"6f1b0c1e-8a53-4b57-9d0f-2c1d2a9e6b11","uuid":"6f1b0c1e-8a53-4b57-9d0f-2c1d2a9e6b11",
            "username":"alice","status":"active","created_at":5,"last_login_at":null,
            "profile":{"display_name":"Alice"},"totp_enabled":true,"backup_codes_left":9,
            "security_questions":2,"email":null}"#;
        let a: Account = serde_json::from_str(body).unwrap();
        assert!(a.totp_enabled);
        assert_eq!(a.backup_codes_left, 9);
        assert_eq!(a.profile.display_name.as_deref(), Some("Alice"));
        assert_eq!(a.profile.bio, None);
    }
}
