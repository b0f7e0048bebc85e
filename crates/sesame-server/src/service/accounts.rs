//! Registration: client-side OPAQUE and server-assisted.

use sesame_proto::messages::{RegistrationChallenge, RegistrationFinish, RegistrationStart};
use sesame_proto::policy::{check_password, Username};
use sesame_proto::server as proto;
use sesame_proto::{CredentialRecord, KsfPolicy};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::email::{email_taken, EmailAddress};
use super::{Registered, RequestContext, Sesame};
use crate::error::{ApiError, InputError};
use crate::store::{AccountStatus, ConflictOn, NewUser, StoreError};

fn username_taken() -> ApiError {
    ApiError::new(InputError::UsernameTaken, "That username is already taken.")
}

impl Sesame {
    /// Client-side registration, step 1: answers the OPRF request. 409 if the name is taken.
    pub async fn register_start(
        &self,
        msg: &RegistrationStart,
        ctx: &RequestContext,
    ) -> Result<RegistrationChallenge, ApiError> {
        self.throttle_address(ctx).await?;
        let username = Username::parse(&msg.username)?;
        self.ensure_available(&username).await?;
        Ok(proto::registration_challenge(
            &self.inner.secrets.opaque,
            &username,
            msg,
            self.inner.settings.ksf,
        )?)
    }

    /// Client-side registration, step 2: stores the uploaded record.
    pub async fn register_finish(
        &self,
        msg: &RegistrationFinish,
        ctx: &RequestContext,
    ) -> Result<Registered, ApiError> {
        let (registered, _) = self.register_finish_with_email(msg, None, ctx).await?;
        Ok(registered)
    }

    /// [`Sesame::register_finish`] with an optional email address: an account with one is
    /// created `pending` and a code is mailed to it (see [`super::email`]).
    pub async fn register_finish_with_email(
        &self,
        msg: &RegistrationFinish,
        email: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<(Registered, AccountStatus), ApiError> {
        self.throttle_address(ctx).await?;
        let username = Username::parse(&msg.username)?;
        let email = email.map(EmailAddress::parse).transpose()?;
        let record = proto::registration_record(msg, &KsfPolicy::DEFAULT)?;
        self.create_account(&username, &record, "opaque", email.as_ref(), ctx)
            .await
    }

    /// Server-assisted registration: the client sent the password; the server runs the client
    /// half of OPAQUE on the hashing pool, stores the same record and drops the password.
    pub async fn register_password(
        &self,
        username: &str,
        password: Zeroizing<String>,
        ctx: &RequestContext,
    ) -> Result<Registered, ApiError> {
        let (registered, _) = self
            .register_password_with_email(username, password, None, ctx)
            .await?;
        Ok(registered)
    }

    /// [`Sesame::register_password`] with an optional email address: an account with one is
    /// created `pending` and a code is mailed to it (see [`super::email`]).
    pub async fn register_password_with_email(
        &self,
        username: &str,
        password: Zeroizing<String>,
        email: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<(Registered, AccountStatus), ApiError> {
        self.throttle_address(ctx).await?;
        let username = Username::parse(username)?;
        check_password(&password, &username)?;
        let email = email.map(EmailAddress::parse).transpose()?;
        // Refuse a taken name before spending a hash on it.
        self.ensure_available(&username).await?;
        let record = self.record_for_password(&username, password).await?;
        self.create_account(&username, &record, "pwd", email.as_ref(), ctx)
            .await
    }

    /// Runs the client half of OPAQUE registration for `password` on the hashing pool (the
    /// server-assisted path: registration, password change, recovery). The password is
    /// dropped, and wiped, when the job finishes.
    pub(crate) async fn record_for_password(
        &self,
        username: &Username,
        password: Zeroizing<String>,
    ) -> Result<CredentialRecord, ApiError> {
        let keys = self.inner.secrets.opaque.clone();
        let ksf = self.inner.settings.ksf;
        let name = username.clone();
        let rng = self.rng().clone();
        Ok(self
            .inner
            .pool
            .run(move || {
                proto::register_with_password(&mut rng.handle(), &keys, &name, &password, ksf)
            })
            .await??)
    }

    /// Runs both halves of an OPAQUE login for `password` on the hashing pool (password
    /// login, re-authentication). `record` is `None` for an unknown user, which costs the
    /// same work and fails the same way. The outer error is the pool's (busy), the inner one
    /// the protocol's verdict.
    pub(crate) async fn verify_password_on_pool(
        &self,
        username: &Username,
        record: Option<CredentialRecord>,
        password: Zeroizing<String>,
    ) -> Result<Result<proto::PasswordVerified, sesame_proto::Error>, ApiError> {
        let keys = self.inner.secrets.opaque.clone();
        let name = username.clone();
        let rng = self.rng().clone();
        Ok(self
            .inner
            .pool
            .run(move || {
                proto::login_with_password(
                    &mut rng.handle(),
                    &keys,
                    &name,
                    record.as_ref(),
                    &password,
                )
            })
            .await?)
    }

    async fn ensure_available(&self, username: &Username) -> Result<(), ApiError> {
        let index = self.username_index(username.as_str());
        match self.inner.store.user_by_index(&index).await? {
            Some(_) => Err(username_taken()),
            None => Ok(()),
        }
    }

    async fn create_account(
        &self,
        username: &Username,
        record: &CredentialRecord,
        how: &str,
        email: Option<&EmailAddress>,
        ctx: &RequestContext,
    ) -> Result<(Registered, AccountStatus), ApiError> {
        let id = Uuid::new_v4();
        let fields = &self.inner.secrets.fields;
        // An account with an email address waits for its code.
        let (status, sealed_email) = match email {
            Some(e) => (AccountStatus::Pending, Some(self.seal_email(id, e))),
            None => (AccountStatus::Active, None),
        };
        let (email_index, email_sealed) = sealed_email.unzip();
        let user = NewUser {
            id,
            username_index: fields.index("username", username.as_str()),
            username_sealed: fields.seal("username", id.as_bytes(), username.as_str()),
            email_index,
            email_sealed,
            credential: record.to_bytes(),
            status,
            created_at: self.now_i64(),
        };
        let (backup_codes, code_records) = self.new_backup_codes(id);
        let reason = match email {
            Some(_) => format!("method={how} status=pending"),
            None => format!("method={how}"),
        };
        let audit = self.audit_event("register", Some(id), Some(reason), ctx);
        // The user, its backup codes and the audit row commit together.
        match self
            .inner
            .store
            .create_account(&user, &code_records, &audit)
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict(ConflictOn::Username)) => return Err(username_taken()),
            Err(StoreError::Conflict(ConflictOn::Email)) => return Err(email_taken()),
            Err(e) => return Err(e.into()),
        }
        if let Some(e) = email {
            // The account exists either way; a failed hand-over is retried with a resend.
            if let Err(err) = self
                .send_verification_code(id, username.as_str(), e.as_str())
                .await
            {
                tracing::warn!(%err, "verification code not sent");
            }
        }
        let registered = Registered {
            user_id: id,
            username: username.as_str().to_owned(),
            backup_codes,
        };
        Ok((registered, status))
    }
}
