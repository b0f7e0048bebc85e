//! Registration: client-side OPAQUE, the server-assisted path, and the name check that comes
//! before any password is typed.

use rand_core::OsRng;
use sesame_proto::client::{self as proto, ClientRegistrationFinished};
use sesame_proto::messages::RegistrationChallenge;
use sesame_proto::policy::{check_password, Username};

use sesame_api::auth::{
    EmailVerified, Message as MessageBody, RegisterFinishRequest, ResendRequest, VerifyEmailRequest,
};
use sesame_api::messaging::{IdentityUpload, KeyBackup};
use sesame_proto::b64;
use sesame_proto::e2e::{IdentityKeys, PublicIdentity, WrapKey};

use crate::api::Registered;
use crate::client::{blocking, password_body, Client, Registration};
use crate::error::Result;

impl Client {
    /// Registers `username` with client-side OPAQUE: the password never leaves this process.
    ///
    /// Checks the username and the password policy locally first and returns
    /// [`Error::Username`] or [`Error::Password`] without contacting the server. Refuses a
    /// server whose key differs from the pinned one, and key-stretching parameters outside the
    /// policy's bounds.
    pub async fn register(&self, username: &str, password: &str) -> Result<Registration> {
        self.register_with_identity(username, password, None, None)
            .await
    }

    /// [`Client::register`], publishing `identity` (its public half, and its private half
    /// wrapped under the new export key as the key backup) with the account, so that others
    /// can write to it before its first login, and with an `email` address (the account then
    /// stays `pending` until [`Client::verify_email`] when the server sends mail).
    pub async fn register_with_identity(
        &self,
        username: &str,
        password: &str,
        identity: Option<&IdentityKeys>,
        email: Option<&str>,
    ) -> Result<Registration> {
        let canonical = Username::parse(username)?;
        check_password(password, &canonical)?;
        let (state, start) = proto::start_registration(&mut OsRng, username, password)?;
        let challenge: RegistrationChallenge = self
            .send_json(
                self.http()
                    .post(self.url("api/register/start")?)
                    .json(&start),
            )
            .await?;
        self.check_pin(&challenge.server_public_key)?;
        let policy = *self.policy();
        let done: ClientRegistrationFinished =
            blocking(move || state.finish(&mut OsRng, &challenge, &policy)).await?;
        let body = RegisterFinishRequest {
            username: done.message.username.clone(),
            registration_record: done.message.registration_record.clone(),
            key_stretching: done.message.key_stretching,
            email: email.map(str::to_owned),
            identity: identity.map(|keys| upload(&keys.public())),
            key_backup: identity.map(|keys| KeyBackup {
                blob: b64::encode(
                    WrapKey::derive(&done.export_key).wrap_identity(&mut OsRng, keys),
                ),
            }),
        };
        let registered: Registered = self
            .send_json(
                self.http()
                    .post(self.url("api/register/finish")?)
                    .json(&body),
            )
            .await?;
        Ok(Registration {
            registered,
            export_key: done.export_key,
            server_public_key: done.server_public_key,
        })
    }

    /// Whether `username` can be registered, asked before any password is typed: the name's
    /// rules locally, then `POST /api/register/start` with a throwaway blinded element (the
    /// server keeps no state between the two registration steps). `Ok` when it is free; the
    /// server's `username_taken` (or a rule's code) otherwise.
    pub async fn check_username(&self, username: &str) -> Result<()> {
        Username::parse(username)?;
        let mut throwaway = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut OsRng, &mut throwaway);
        let throwaway: String = throwaway.iter().map(|b| format!("{b:02x}")).collect();
        let (_state, start) = proto::start_registration(&mut OsRng, username, &throwaway)?;
        let _: RegistrationChallenge = self
            .send_json(
                self.http()
                    .post(self.url("api/register/start")?)
                    .json(&start),
            )
            .await?;
        Ok(())
    }

    /// Registers with the server-assisted path (`POST /api/register`): the password is sent
    /// to the server, which runs OPAQUE on the client's behalf. For clients that cannot run
    /// OPAQUE; prefer [`Client::register`]. The policy is checked locally first, as there.
    pub async fn register_with_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Registered> {
        let canonical = Username::parse(username)?;
        check_password(password, &canonical)?;
        self.send_json(
            self.http()
                .post(self.url("api/register")?)
                .json(&password_body(username, password)),
        )
        .await
    }
}

impl Client {
    /// Activates a pending account with the code mailed to it (`POST /api/verify-email`).
    pub async fn verify_email(&self, username: &str, code: &str) -> Result<EmailVerified> {
        let body = VerifyEmailRequest {
            username: username.to_owned(),
            code: code.trim().to_owned(),
        };
        self.send_json(self.http().post(self.url("api/verify-email")?).json(&body))
            .await
    }

    /// Asks for a new verification code (`POST /api/verify-email/resend`; the same answer
    /// whatever the account).
    pub async fn resend_verification(&self, username: &str) -> Result<()> {
        let body = ResendRequest {
            username: username.to_owned(),
        };
        let _: MessageBody = self
            .send_json(
                self.http()
                    .post(self.url("api/verify-email/resend")?)
                    .json(&body),
            )
            .await?;
        Ok(())
    }
}

/// The directory's upload form of a public identity.
fn upload(public: &PublicIdentity) -> IdentityUpload {
    IdentityUpload {
        signing_key: b64::encode(public.signing_key),
        encryption_key: b64::encode(public.encryption_key),
        encryption_key_signature: b64::encode(public.encryption_key_signature),
    }
}
