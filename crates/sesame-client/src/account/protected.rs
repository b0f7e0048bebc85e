//! Re-authentication and the operations that need a fresh one: TOTP, backup codes, password
//! change, profile and account deletion.

use std::fmt;

use rand_core::OsRng;
use sesame_proto::client::{self as proto, ClientRegistrationFinished};
use sesame_proto::messages::{LoginChallenge, LoginConfirmation, RegistrationChallenge};
use sesame_proto::policy::{check_password, Username};
use zeroize::Zeroizing;

use crate::client::{blocking, Client};
use crate::error::{Error, Result};

use sesame_api::account::BackupCodes;
use sesame_api::auth::Message as MessageBody;

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

pub use sesame_api::account::TotpEnrolment;

pub use sesame_api::account::Profile;

pub use sesame_api::account::ProfileUpdate;

/// `GET /api/me` in full: the account, its profile and the state of its factors.
pub type Account = sesame_api::account::Me;

impl Client {
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
        let payload: sesame_api::account::Reauthenticated = serde_json::from_slice(&payload)
            .map_err(|e| {
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
        let body = sesame_api::account::PasswordBody {
            password: zeroize::Zeroizing::new(password.to_owned()),
        };
        let answer: sesame_api::account::Reauthenticated = self
            .send_json(self.post("api/reauth", Some(access_token))?.json(&body))
            .await?;
        Ok(answer.expires_in)
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
        let body = sesame_api::account::PasswordChangeFinish {
            registration: done.message,
            revoke_other_sessions,
        };
        let answer: sesame_api::account::PasswordChanged = self
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
        self.send_json(self.post("api/generate-qr", Some(access_token))?)
            .await
    }

    /// `POST /api/enable-authenticator`: confirms the enrolment with a code from the app;
    /// logins need a second factor from then on. A wrong code answers `invalid_code`.
    pub async fn enable_authenticator(&self, access_token: &str, code: &str) -> Result<String> {
        let body: MessageBody = self
            .send_json(
                self.post("api/enable-authenticator", Some(access_token))?
                    .json(&totp_code(code)),
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
                    .json(&totp_code(code)),
            )
            .await?;
        Ok(body.message)
    }

    /// `POST /api/backup-codes/regenerate`: a fresh set of backup codes (needs a fresh
    /// authentication); the old set stops working.
    pub async fn regenerate_backup_codes(&self, access_token: &str) -> Result<Vec<String>> {
        let body: BackupCodes = self
            .send_json(self.post("api/backup-codes/regenerate", Some(access_token))?)
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
        let body: sesame_api::account::ProfileUpdated = self
            .send_json(
                self.http()
                    .put(self.url("api/me")?)
                    .bearer_auth(access_token)
                    .json(update),
            )
            .await?;
        Ok(body.profile)
    }

    /// `POST /api/me/email`: asks to change the account's address to `email`; a code is
    /// mailed to it (needs a fresh authentication). Returns the code's lifetime in seconds.
    pub async fn change_email_start(&self, access_token: &str, email: &str) -> Result<u64> {
        let body = sesame_api::email::EmailChange {
            email: email.to_owned(),
        };
        let started: sesame_api::email::EmailChangeStarted = self
            .send_json(
                self.http()
                    .post(self.url("api/me/email")?)
                    .bearer_auth(access_token)
                    .json(&body),
            )
            .await?;
        Ok(started.expires_in)
    }

    /// `POST /api/me/email/verify`: confirms the new address with the mailed code; returns
    /// the address now on the account.
    pub async fn change_email_finish(&self, access_token: &str, code: &str) -> Result<String> {
        let body = sesame_api::email::EmailChangeCode {
            code: code.to_owned(),
        };
        let changed: sesame_api::email::EmailChanged = self
            .send_json(
                self.http()
                    .post(self.url("api/me/email/verify")?)
                    .bearer_auth(access_token)
                    .json(&body),
            )
            .await?;
        changed
            .email
            .ok_or_else(|| crate::Error::UnexpectedResponse("no address in the answer".into()))
    }

    /// `DELETE /api/me/email`: removes the account's address (needs a fresh
    /// authentication); recovery by email stops working.
    pub async fn remove_email(&self, access_token: &str) -> Result<()> {
        let _: sesame_api::email::EmailChanged = self
            .send_json(
                self.http()
                    .delete(self.url("api/me/email")?)
                    .bearer_auth(access_token),
            )
            .await?;
        Ok(())
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
}

/// The body of the routes that take an authenticator code.
fn totp_code(code: &str) -> sesame_api::account::TotpCode {
    sesame_api::account::TotpCode {
        totp_code: code.trim().to_owned(),
    }
}
