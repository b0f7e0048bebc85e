//! Passkeys (WebAuthn, issue #15): registration, listing, renaming, removal, the
//! "phishing-resistant second factor required" setting, and what both sign-ins share
//! (ceremony state, verifying an assertion, recording its use).
//!
//! The WebAuthn checks themselves are webauthn-rs's (it draws its own challenges and may
//! read the system clock inside; the ceremony's expiry is ours, on the service clock). A
//! ceremony's state lives server-side in the short-lived store (memory or Redis, so any node
//! can finish it), is taken exactly once and expires after [`CEREMONY_TTL_SECS`].
//!
//! A stored passkey (`store::PasskeyRecord`) seals the serialized credential and its name
//! under the field key, bound to the owner and the row id, so a database writer without the
//! master key cannot add or move one. Every use updates the signature counter and the backup
//! flags with a compare-and-swap; a counter that does not move forward (a cloned
//! authenticator) is audited as `passkey.counter_regression` and refused.
//!
//! The sign-ins: `second_factor/passkey.rs` (after a password) and `passkey_login.rs`
//! (passwordless). Audit events: `passkey.added`, `passkey.renamed`, `passkey.removed`,
//! `passkey.counter_regression`, `passkey.phishing_resistant` (`on`/`off`).

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sesame_api::passkeys::{PasskeyCeremony, PasskeyList, PasskeyView, MAX_PASSKEY_NAME_CHARS};
use uuid::Uuid;
use webauthn_rs::prelude::{AuthenticationResult, Passkey, PasskeyRegistration, WebauthnError};
use webauthn_rs::Webauthn;

use super::{Authenticated, RequestContext, Sesame};
use crate::error::{ApiError, InputError};
use crate::store::{FactorKind, FactorRecord, PasskeyRecord, PasskeyUse, Slot};

/// How long a WebAuthn ceremony's state lives, seconds.
pub const CEREMONY_TTL_SECS: u64 = 300;
/// Most passkeys one account may register.
pub const MAX_PASSKEYS: usize = 20;

const PASSKEY_FIELD: &str = "passkey";
const LABEL_FIELD: &str = "passkey:label";
const REGISTER: &str = "pk_reg";

/// The server-side state of one ceremony.
#[derive(Serialize, Deserialize)]
struct Ceremony<S> {
    user_id: Option<Uuid>,
    expires_ms: u64,
    state: S,
}

fn row_id(user: Uuid, id: Uuid) -> Vec<u8> {
    let mut ad = user.as_bytes().to_vec();
    ad.extend_from_slice(id.as_bytes());
    ad
}

pub(super) fn ceremony_expired() -> ApiError {
    ApiError::new(
        InputError::PasskeyCeremonyExpired,
        "The passkey step expired or was already used; start again.",
    )
}

fn passkey_invalid(message: &'static str) -> ApiError {
    ApiError::new(InputError::PasskeyInvalid, message)
}

fn not_found() -> ApiError {
    ApiError::new(InputError::PasskeyNotFound, "No such passkey.")
}

/// A passkey name, trimmed; 400 `invalid_passkey_name` unless 1–64 printable characters.
fn check_name(name: &str) -> Result<&str, ApiError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_PASSKEY_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(ApiError::new(
            InputError::InvalidPasskeyName,
            format!("Passkey names are 1 to {MAX_PASSKEY_NAME_CHARS} printable characters."),
        ));
    }
    Ok(name)
}

/// Parses a `PasskeyView` id; unknown ids and malformed ones are both "no such passkey".
fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| not_found())
}

/// Why a verified-looking assertion was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    /// The signature, origin, challenge or flags did not verify.
    Invalid,
    /// The counter did not move forward (or a parallel use won).
    CounterRegression,
}

impl Refused {
    /// The audit reason.
    pub(super) fn reason(self) -> &'static str {
        match self {
            Refused::Invalid => "passkey",
            Refused::CounterRegression => "passkey_counter_regression",
        }
    }
}

impl Sesame {
    pub(super) fn webauthn(&self) -> &Webauthn {
        self.inner.settings.relying_party.webauthn()
    }

    /// Keeps a ceremony's state under a new single-use id.
    pub(super) async fn put_ceremony<S: Serialize>(
        &self,
        kind: &str,
        user_id: Option<Uuid>,
        state: S,
    ) -> Result<String, ApiError> {
        let mut raw = [0u8; 32];
        self.rng().fill(&mut raw);
        let id = format!("pkc_{}", sesame_proto::b64::encode(raw));
        let ttl = Duration::from_secs(CEREMONY_TTL_SECS);
        let ceremony = Ceremony {
            user_id,
            expires_ms: self.now_ms().saturating_add(CEREMONY_TTL_SECS * 1000),
            state,
        };
        let bytes = serde_json::to_vec(&ceremony).map_err(ApiError::internal)?;
        self.inner
            .ephemeral
            .put(&format!("{kind}:{id}"), &bytes, self.now_ms(), ttl)
            .await?;
        Ok(id)
    }

    /// Takes a ceremony's state (once); 400 `passkey_ceremony_expired` if it is gone, expired
    /// or another user's.
    pub(super) async fn take_ceremony<S: DeserializeOwned>(
        &self,
        kind: &str,
        id: &str,
        user_id: Option<Uuid>,
    ) -> Result<S, ApiError> {
        if id.len() > 128 {
            return Err(ceremony_expired());
        }
        let bytes = self
            .inner
            .ephemeral
            .take(&format!("{kind}:{id}"), self.now_ms())
            .await?
            .ok_or_else(ceremony_expired)?;
        let ceremony: Ceremony<S> =
            serde_json::from_slice(&bytes).map_err(|_| ceremony_expired())?;
        if ceremony.expires_ms <= self.now_ms() || ceremony.user_id != user_id {
            return Err(ceremony_expired());
        }
        Ok(ceremony.state)
    }

    fn open_passkey(&self, r: &PasskeyRecord) -> Result<(PasskeyView, Passkey), ApiError> {
        let corrupt =
            || ApiError::internal(format!("passkey {} of {} does not open", r.id, r.user_id));
        let ad = row_id(r.user_id, r.id);
        let fields = &self.inner.secrets.fields;
        let name = fields
            .open(LABEL_FIELD, &ad, &r.label)
            .ok_or_else(corrupt)?;
        let passkey: Passkey = fields
            .open(PASSKEY_FIELD, &ad, &r.passkey)
            .and_then(|json| serde_json::from_str(&json).ok())
            .ok_or_else(corrupt)?;
        let view = PasskeyView {
            id: r.id.to_string(),
            name,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            backup_eligible: r.backup_eligible,
            backed_up: r.backup_state,
        };
        Ok((view, passkey))
    }

    fn seal_passkey(&self, user: Uuid, id: Uuid, passkey: &Passkey) -> Result<Vec<u8>, ApiError> {
        let json = serde_json::to_string(passkey).map_err(ApiError::internal)?;
        Ok(self
            .inner
            .secrets
            .fields
            .seal(PASSKEY_FIELD, &row_id(user, id), &json))
    }

    /// A user's passkeys, opened.
    pub(super) async fn user_passkeys(
        &self,
        user: Uuid,
    ) -> Result<Vec<(PasskeyRecord, PasskeyView, Passkey)>, ApiError> {
        let rows = self.inner.store.passkeys_of(user).await?;
        rows.into_iter()
            .map(|r| self.open_passkey(&r).map(|(v, p)| (r, v, p)))
            .collect()
    }

    /// The passkey with credential id `credential`, opened.
    pub(super) async fn passkey_by_credential(
        &self,
        credential: &[u8],
    ) -> Result<Option<(PasskeyRecord, Passkey)>, ApiError> {
        match self.inner.store.passkey_by_credential(credential).await? {
            Some(r) => self.open_passkey(&r).map(|(_, p)| Some((r, p))),
            None => Ok(None),
        }
    }

    /// After webauthn-rs checked an assertion of `record`: refuses a counter that did not
    /// move forward (audited), and records the use (counter, backup flags, time).
    pub(super) async fn record_passkey_use(
        &self,
        record: &PasskeyRecord,
        mut passkey: Passkey,
        verified: Result<AuthenticationResult, WebauthnError>,
        ctx: &RequestContext,
    ) -> Result<Result<(), Refused>, ApiError> {
        let result = match verified {
            Ok(result) => result,
            Err(WebauthnError::CredentialPossibleCompromise) => {
                return self.counter_regression(record, ctx).await;
            }
            Err(_) => return Ok(Err(Refused::Invalid)),
        };
        let counter = i64::from(result.counter());
        // Compared with the row as it is now, not as it was when the ceremony started.
        if (counter > 0 || record.counter > 0) && counter <= record.counter {
            return self.counter_regression(record, ctx).await;
        }
        passkey.update_credential(&result);
        let change = PasskeyUse {
            expected_counter: record.counter,
            counter,
            passkey: self.seal_passkey(record.user_id, record.id, &passkey)?,
            backup_eligible: result.backup_eligible(),
            backup_state: result.backup_state(),
            now: self.now_i64(),
        };
        if !self
            .inner
            .store
            .record_passkey_use(record.id, &change)
            .await?
        {
            return Ok(Err(Refused::CounterRegression));
        }
        Ok(Ok(()))
    }

    async fn counter_regression(
        &self,
        record: &PasskeyRecord,
        ctx: &RequestContext,
    ) -> Result<Result<(), Refused>, ApiError> {
        self.audit(
            "passkey.counter_regression",
            Some(record.user_id),
            Some(format!("passkey={}", record.id)),
            ctx,
        )
        .await;
        Ok(Err(Refused::CounterRegression))
    }

    /// Whether the account accepts only a phishing-resistant second factor.
    pub async fn phishing_resistant_required(&self, user: Uuid) -> Result<bool, ApiError> {
        Ok(self
            .inner
            .store
            .factor(user, FactorKind::PhishingResistantRequired, &Slot::Only)
            .await?
            .is_some())
    }

    /// Starts registering a passkey for the caller (fresh authentication required); the
    /// options exclude the caller's registered credentials.
    pub async fn passkey_register_start(
        &self,
        who: &Authenticated,
    ) -> Result<PasskeyCeremony, ApiError> {
        self.require_fresh(who).await?;
        let existing = self.user_passkeys(who.user_id).await?;
        if existing.len() >= MAX_PASSKEYS {
            return Err(too_many());
        }
        let user = self
            .inner
            .store
            .user_by_id(who.user_id)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        let name = self.username_of(&user)?;
        let exclude = existing
            .iter()
            .map(|(_, _, p)| p.cred_id().clone())
            .collect();
        let (options, state) = self
            .webauthn()
            .start_passkey_registration(who.user_id, &name, &name, Some(exclude))
            .map_err(ApiError::internal)?;
        let mut options = serde_json::to_value(options).map_err(ApiError::internal)?;
        // A discoverable credential, so the passkey can also sign in without a password.
        if let Some(sel) = options.pointer_mut("/publicKey/authenticatorSelection") {
            sel["residentKey"] = "required".into();
            sel["requireResidentKey"] = true.into();
        }
        let ceremony_id = self
            .put_ceremony(REGISTER, Some(who.user_id), state)
            .await?;
        Ok(PasskeyCeremony {
            ceremony_id,
            options,
            expires_in: CEREMONY_TTL_SECS,
        })
    }

    /// Finishes a registration: verifies the authenticator's answer and stores the passkey.
    pub async fn passkey_register_finish(
        &self,
        who: &Authenticated,
        req: &sesame_api::passkeys::PasskeyRegisterFinish,
        ctx: &RequestContext,
    ) -> Result<PasskeyView, ApiError> {
        self.require_fresh(who).await?;
        let name = check_name(&req.name)?;
        let state: PasskeyRegistration = self
            .take_ceremony(REGISTER, &req.ceremony_id, Some(who.user_id))
            .await?;
        let credential = serde_json::from_value(req.credential.clone())
            .map_err(|_| passkey_invalid("The credential is not a WebAuthn registration."))?;
        let passkey = self
            .webauthn()
            .finish_passkey_registration(&credential, &state)
            .map_err(|_| passkey_invalid("The passkey registration does not verify."))?;
        if self.inner.store.passkeys_of(who.user_id).await?.len() >= MAX_PASSKEYS {
            return Err(too_many());
        }
        let id = self.rng().uuid();
        let record = PasskeyRecord {
            id,
            user_id: who.user_id,
            credential_id: passkey.cred_id().to_vec(),
            passkey: self.seal_passkey(who.user_id, id, &passkey)?,
            label: self.seal_label(who.user_id, id, name),
            counter: 0,
            backup_eligible: false,
            backup_state: false,
            created_at: self.now_i64(),
            last_used_at: None,
        };
        if !self.inner.store.insert_passkey(&record).await? {
            return Err(passkey_invalid("This passkey is already registered."));
        }
        self.audit(
            "passkey.added",
            Some(who.user_id),
            Some(format!("passkey={id}")),
            ctx,
        )
        .await;
        Ok(self.open_passkey(&record)?.0)
    }

    fn seal_label(&self, user: Uuid, id: Uuid, name: &str) -> Vec<u8> {
        self.inner
            .secrets
            .fields
            .seal(LABEL_FIELD, &row_id(user, id), name)
    }

    /// The caller's passkeys and whether a phishing-resistant factor is required.
    pub async fn passkeys(&self, who: &Authenticated) -> Result<PasskeyList, ApiError> {
        self.passkeys_of_user(who.user_id).await
    }

    async fn passkeys_of_user(&self, user: Uuid) -> Result<PasskeyList, ApiError> {
        let passkeys = self.user_passkeys(user).await?;
        Ok(PasskeyList {
            passkeys: passkeys.into_iter().map(|(_, v, _)| v).collect(),
            phishing_resistant_required: self.phishing_resistant_required(user).await?,
        })
    }

    /// Renames one of the caller's passkeys.
    pub async fn rename_passkey(
        &self,
        who: &Authenticated,
        id: &str,
        name: &str,
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        let name = check_name(name)?;
        let id = parse_id(id)?;
        let label = self.seal_label(who.user_id, id, name);
        if !self
            .inner
            .store
            .rename_passkey(who.user_id, id, &label)
            .await?
        {
            return Err(not_found());
        }
        self.audit(
            "passkey.renamed",
            Some(who.user_id),
            Some(format!("passkey={id}")),
            ctx,
        )
        .await;
        Ok(())
    }

    /// Removes one of the caller's passkeys (fresh authentication required); 409
    /// `passkey_required` for the last one while a phishing-resistant factor is required.
    pub async fn delete_passkey(
        &self,
        who: &Authenticated,
        id: &str,
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        self.require_fresh(who).await?;
        self.remove_passkey(who.user_id, id, "", ctx).await
    }

    async fn remove_passkey(
        &self,
        user: Uuid,
        id: &str,
        by: &str,
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        let id = parse_id(id)?;
        let rows = self.inner.store.passkeys_of(user).await?;
        if !rows.iter().any(|r| r.id == id) {
            return Err(not_found());
        }
        if rows.len() <= 1 && self.phishing_resistant_required(user).await? {
            return Err(ApiError::new(
                InputError::PasskeyRequired,
                "The account requires a passkey: turn that off before removing the last one.",
            ));
        }
        if !self.inner.store.delete_passkey(user, id).await? {
            return Err(not_found());
        }
        self.audit(
            "passkey.removed",
            Some(user),
            Some(format!("passkey={id}{by}")),
            ctx,
        )
        .await;
        Ok(())
    }

    /// Turns the phishing-resistant requirement on or off (fresh authentication required); 400
    /// `no_passkey` to turn it on without a passkey.
    pub async fn set_phishing_resistant(
        &self,
        who: &Authenticated,
        required: bool,
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        self.require_fresh(who).await?;
        let store = &self.inner.store;
        let kind = FactorKind::PhishingResistantRequired;
        if required {
            if store.passkeys_of(who.user_id).await?.is_empty() {
                return Err(no_passkey());
            }
            store
                .put_factor(&FactorRecord {
                    user_id: who.user_id,
                    kind,
                    slot: Slot::Only,
                    value: b"1".to_vec(),
                    counter: 0,
                    created_at: self.now_i64(),
                    used_at: None,
                })
                .await?;
        } else {
            store.delete_factors(who.user_id, kind, None).await?;
        }
        let state = if required { "on" } else { "off" };
        self.audit(
            "passkey.phishing_resistant",
            Some(who.user_id),
            Some(state.into()),
            ctx,
        )
        .await;
        Ok(())
    }

    /// Operator: a user's passkeys.
    pub async fn admin_passkeys(&self, name: &str) -> Result<PasskeyList, ApiError> {
        let user = self.admin_find(name).await?;
        self.passkeys_of_user(user.id).await
    }

    /// Operator: removes one of a user's passkeys (audited `passkey.removed`, `by=admin`).
    /// The last one goes even while a passkey is required: the requirement goes with it.
    pub async fn admin_remove_passkey(&self, name: &str, id: &str) -> Result<(), ApiError> {
        let user = self.admin_find(name).await?;
        let ctx = RequestContext::new(None, Some("sesame-admin"));
        let rows = self.inner.store.passkeys_of(user.id).await?;
        if rows.len() <= 1 && rows.iter().any(|r| Some(r.id) == Uuid::parse_str(id).ok()) {
            self.inner
                .store
                .delete_factors(user.id, FactorKind::PhishingResistantRequired, None)
                .await?;
        }
        self.remove_passkey(user.id, id, " by=admin", &ctx).await
    }
}

pub(super) fn no_passkey() -> ApiError {
    ApiError::new(
        InputError::NoPasskey,
        "The account has no passkey; register one first (POST /api/passkeys/register/start).",
    )
}

fn too_many() -> ApiError {
    ApiError::new(
        InputError::TooManyPasskeys,
        format!("At most {MAX_PASSKEYS} passkeys; remove one first."),
    )
}
