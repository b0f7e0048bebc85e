//! A passkey as the second factor of a password sign-in: the ticket (`mfa_token`) asks for
//! an assertion by one of the account's passkeys, and a verified one completes the ticket
//! with the `hwk` method (the session's `amr` is then `pwd hwk mfa`).
//!
//! A refused assertion (another account's or an unknown credential, a wrong origin, a
//! replay, a counter that went backwards) counts against the ticket like a wrong code.

use sesame_api::passkeys::{PasskeyCeremony, PasskeySecondFactorFinish};
use sesame_api::sessions::AuthMethod;
use webauthn_rs::prelude::{PasskeyAuthentication, PublicKeyCredential};

use super::super::passkeys::{no_passkey, CEREMONY_TTL_SECS};
use super::super::{RequestContext, Sesame, SessionIssued};
use super::{ticket_key, Ticket};
use crate::error::{ApiError, CredentialError};

/// The ceremony kind of a second-factor assertion.
const SECOND_FACTOR: &str = "pk_mfa";

fn mfa_expired() -> ApiError {
    ApiError::new(
        CredentialError::MfaExpired,
        "The second-factor step expired; log in again.",
    )
}

fn rejected() -> ApiError {
    ApiError::new(
        CredentialError::PasskeyRejected,
        "The passkey was not accepted. Try again, or use a backup code.",
    )
}

impl Sesame {
    async fn peek_ticket(&self, mfa_token: &str) -> Result<Ticket, ApiError> {
        let bytes = self
            .inner
            .ephemeral
            .get(&ticket_key(mfa_token), self.now_ms())
            .await?
            .ok_or_else(mfa_expired)?;
        serde_json::from_slice(&bytes).map_err(|_| mfa_expired())
    }

    /// Second factor by passkey, step 1: the assertion options for the ticket's account.
    pub async fn passkey_second_factor_start(
        &self,
        mfa_token: &str,
    ) -> Result<PasskeyCeremony, ApiError> {
        let ticket = self.peek_ticket(mfa_token).await?;
        let passkeys: Vec<_> = self
            .user_passkeys(ticket.user_id)
            .await?
            .into_iter()
            .map(|(_, _, p)| p)
            .collect();
        if passkeys.is_empty() {
            return Err(no_passkey());
        }
        let (options, state) = self
            .webauthn()
            .start_passkey_authentication(&passkeys)
            .map_err(ApiError::internal)?;
        let options = serde_json::to_value(options).map_err(ApiError::internal)?;
        let ceremony_id = self
            .put_ceremony(SECOND_FACTOR, Some(ticket.user_id), state)
            .await?;
        Ok(PasskeyCeremony {
            ceremony_id,
            options,
            expires_in: CEREMONY_TTL_SECS,
        })
    }

    /// Second factor by passkey, step 2: verifies the assertion and creates the session.
    pub async fn passkey_second_factor_finish(
        &self,
        req: &PasskeySecondFactorFinish,
        ctx: &RequestContext,
    ) -> Result<SessionIssued, ApiError> {
        let key = ticket_key(&req.mfa_token);
        // Take the ticket so two parallel attempts cannot both use it (as with codes).
        let bytes = self
            .inner
            .ephemeral
            .take(&key, self.now_ms())
            .await?
            .ok_or_else(mfa_expired)?;
        let ticket: Ticket = serde_json::from_slice(&bytes).map_err(|_| mfa_expired())?;
        let state: PasskeyAuthentication = match self
            .take_ceremony(SECOND_FACTOR, &req.ceremony_id, Some(ticket.user_id))
            .await
        {
            Ok(state) => state,
            Err(e) => {
                self.put_ticket(&key, &ticket).await?;
                return Err(e);
            }
        };
        match self
            .check_second_factor_assertion(&ticket, req, &state, ctx)
            .await?
        {
            Ok(()) => self.complete_ticket(ticket, AuthMethod::Hwk, ctx).await,
            Err(reason) => {
                self.ticket_failure(&key, ticket, reason, ctx).await?;
                Err(rejected())
            }
        }
    }

    /// Verifies the assertion against the ticket's account and records the use; the audit
    /// reason when it is refused.
    async fn check_second_factor_assertion(
        &self,
        ticket: &Ticket,
        req: &PasskeySecondFactorFinish,
        state: &PasskeyAuthentication,
        ctx: &RequestContext,
    ) -> Result<Result<(), &'static str>, ApiError> {
        let Ok(credential) = serde_json::from_value::<PublicKeyCredential>(req.credential.clone())
        else {
            return Ok(Err("passkey"));
        };
        let Some((record, passkey)) = self
            .passkey_by_credential(credential.raw_id.as_slice())
            .await?
        else {
            return Ok(Err("passkey_unknown"));
        };
        if record.user_id != ticket.user_id {
            return Ok(Err("passkey_unknown"));
        }
        let verified = self
            .webauthn()
            .finish_passkey_authentication(&credential, state);
        Ok(self
            .record_passkey_use(&record, passkey, verified, ctx)
            .await?
            .map_err(|r| r.reason()))
    }
}
