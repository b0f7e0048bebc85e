//! Security questions and account recovery.

use std::fmt;

use rand_core::OsRng;
use serde::Serialize;
use sesame_proto::client::{
    self as proto, ClientRegistrationFinished, ExpectRegistrationChallenge,
};
use sesame_proto::messages::RegistrationChallenge;
use sesame_proto::policy::{check_password, Username};
use zeroize::Zeroizing;

use crate::client::{blocking, Client};
use crate::error::{Error, Result};

use sesame_api::account::BackupCodes;

pub use sesame_api::account::QuestionAnswer;

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
    /// A one-time reset code an operator issued (`sesame admin user reset-password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_code: Option<String>,
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
            .field(
                "reset_code",
                &self.reset_code.as_ref().map(|_| "<redacted>"),
            )
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

impl Client {
    /// `GET /api/security-questions/catalog`: the questions the server suggests.
    pub async fn security_questions_catalog(&self) -> Result<Vec<String>> {
        let body: sesame_api::account::QuestionCatalog = self
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
        self.send_empty(
            self.http()
                .put(self.url("api/security-questions")?)
                .bearer_auth(access_token)
                .json(&sesame_api::account::Questions {
                    questions: questions.to_vec(),
                }),
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
        let body = sesame_api::account::RecoverStart {
            username: username.to_owned(),
            registration_request: Some(start.registration_request),
        };
        let started: sesame_api::account::RecoverStarted = self
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
        let body = sesame_api::account::RecoverFinish {
            recovery_id,
            backup_code: proof.backup_code.clone(),
            email_code: proof.email_code.clone(),
            totp_code: proof.totp_code.clone(),
            answers: proof.answers.clone(),
            reset_code: proof.reset_code.clone(),
            new_password: None,
            registration_record: Some(done.message.registration_record),
            key_stretching: Some(done.message.key_stretching),
        };
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
