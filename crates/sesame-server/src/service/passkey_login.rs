//! Passwordless sign-in with a discoverable passkey (browser autofill or a "Sign in with a
//! passkey" button).
//!
//! Step 1 hands out assertion options with no account named (conditional mediation); step 2
//! reads the account from the assertion's user handle, finds the credential by its id and
//! verifies it. Every failure — an unknown credential, one whose user handle is not its
//! owner, a bad signature, a wrong origin, a replay, a counter that went backwards, a banned
//! account's passkey excepted — answers the same `authentication_failed` as a wrong
//! password, so the answer never tells whether an account or a credential exists. A verified
//! passkey (with user verification, which webauthn-rs requires) is the whole sign-in: the
//! session's `amr` is `hwk`. Accounts that require a device key (`devices.rs`) cannot sign
//! in this way: their logins must carry a device signature.

use sesame_api::passkeys::{PasskeyCeremony, PasskeySignIn};
use uuid::Uuid;
use webauthn_rs::prelude::{DiscoverableAuthentication, PublicKeyCredential};

use super::login::refuse_inactive;
use super::passkeys::CEREMONY_TTL_SECS;
use super::proof::LoginComplete;
use super::{RequestContext, Sesame, SessionIssued};
use crate::error::ApiError;

/// The ceremony kind of a passwordless sign-in.
const SIGN_IN: &str = "pk_login";

/// Proof that a passkey of this account verified: only this module makes one, and a
/// passwordless session is made from it through `LoginComplete`.
#[derive(Debug)]
pub(crate) struct PasskeyVerified {
    user_id: Uuid,
    username: String,
}

impl PasskeyVerified {
    /// The account.
    pub(crate) fn user_id(&self) -> Uuid {
        self.user_id
    }

    /// The canonical username.
    pub(crate) fn username(&self) -> &str {
        &self.username
    }
}

impl Sesame {
    /// Passwordless sign-in, step 1: options for any discoverable passkey of this site.
    pub async fn passkey_sign_in_start(
        &self,
        ctx: &RequestContext,
    ) -> Result<PasskeyCeremony, ApiError> {
        self.throttle_address(ctx)
            .await
            .inspect_err(|e| crate::metrics::login_throttled("passkey", e))?;
        let (options, state) = self
            .webauthn()
            .start_discoverable_authentication()
            .map_err(ApiError::internal)?;
        let options = serde_json::to_value(options).map_err(ApiError::internal)?;
        let ceremony_id = self.put_ceremony(SIGN_IN, None, state).await?;
        Ok(PasskeyCeremony {
            ceremony_id,
            options,
            expires_in: CEREMONY_TTL_SECS,
        })
    }

    /// Passwordless sign-in, step 2: verifies the assertion and creates the session.
    pub async fn passkey_sign_in_finish(
        &self,
        req: &PasskeySignIn,
        ctx: &RequestContext,
    ) -> Result<SessionIssued, ApiError> {
        let state: DiscoverableAuthentication =
            self.take_ceremony(SIGN_IN, &req.ceremony_id, None).await?;
        let proof = match self.verify_sign_in(req, state, ctx).await? {
            Ok(proof) => proof,
            Err((user, reason)) => {
                crate::metrics::login("passkey", "failure");
                self.audit("login.failure", user, Some(reason.into()), ctx)
                    .await;
                return Err(ApiError::authentication_failed());
            }
        };
        let login = LoginComplete::passkey_only(proof);
        let issued = self.create_session(login, ctx).await?;
        crate::metrics::login("passkey", "success");
        Ok(issued)
    }

    /// The checks of step 2; the account (when known) and the audit reason on failure.
    async fn verify_sign_in(
        &self,
        req: &PasskeySignIn,
        state: DiscoverableAuthentication,
        ctx: &RequestContext,
    ) -> Result<Result<PasskeyVerified, (Option<Uuid>, &'static str)>, ApiError> {
        let Ok(credential) = serde_json::from_value::<PublicKeyCredential>(req.credential.clone())
        else {
            return Ok(Err((None, "passkey")));
        };
        let webauthn = self.webauthn();
        let Ok((handle, credential_id)) =
            webauthn.identify_discoverable_authentication(&credential)
        else {
            return Ok(Err((None, "passkey_unknown")));
        };
        let found = self.passkey_by_credential(credential_id).await?;
        let Some((record, passkey)) = found.filter(|(r, _)| r.user_id == handle) else {
            return Ok(Err((None, "passkey_unknown")));
        };
        let Some(user) = self.inner.store.user_by_id(record.user_id).await? else {
            return Ok(Err((None, "passkey_unknown")));
        };
        let verified = webauthn.finish_discoverable_authentication_v2(&credential, state, &passkey);
        if let Err(refused) = self
            .record_passkey_use(&record, passkey.clone(), verified, ctx)
            .await?
        {
            return Ok(Err((Some(user.id), refused.reason())));
        }
        // Only now, with the passkey proven, may the answer say the account is banned or
        // pending (as after a password).
        refuse_inactive(self, &user, "passkey", ctx).await?;
        if self.device_required(user.id).await? {
            return Ok(Err((Some(user.id), "passkey device_key")));
        }
        Ok(Ok(PasskeyVerified {
            user_id: user.id,
            username: self.username_of(&user)?,
        }))
    }
}
