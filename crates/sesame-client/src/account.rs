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
//!   ([`Error::is_reauthentication_required`](crate::Error::is_reauthentication_required)). Re-authenticate with OPAQUE
//!   ([`Client::reauth`]) and retry.
//! * **Password change** ([`Client::change_password`]) is client-side OPAQUE: the new password
//!   never leaves the process, and the result carries the old and the new export key so that
//!   whatever was encrypted under the old one can be re-wrapped.
//! * **Recovery** ([`Client::recover_start`], [`Client::recover_finish`]) sets a new
//!   client-side OPAQUE record after proving a backup code, an emailed code (plus a TOTP or
//!   backup code when the account has TOTP), or a TOTP code plus two security answers.
//!
//! Layout: `account/second_factor.rs` (the login step that asks for a code),
//! `account/protected.rs` (re-authentication and the operations that need it, TOTP, backup
//! codes, password, profile, account deletion) and `account/recovery.rs` (security questions
//! and account recovery).

use reqwest::RequestBuilder;

use crate::client::Client;
use crate::error::Result;

mod protected;
mod recovery;
mod registration;
mod second_factor;
#[cfg(test)]
mod tests;

pub use protected::{
    Account, PasswordChanged, Profile, ProfileUpdate, Reauthenticated, TotpEnrolment,
};
pub use recovery::{QuestionAnswer, Recovered, RecoveryProof, RecoveryStarted};
pub(crate) use second_factor::{parse_login_payload, Confirmed};
pub use second_factor::{LoginOutcome, PasswordLogin, PendingLogin, SecondFactorRequired};

impl Client {
    fn post(&self, path: &str, token: Option<&str>) -> Result<RequestBuilder> {
        let req = self.http().post(self.url(path)?);
        Ok(match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        })
    }
}
